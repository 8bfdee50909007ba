#!/usr/bin/env bash
# Video family: PySceneDetect lists `opencv-python`, which would put a second cv2 next to the
# headless one in the `video` extra; install it without deps (its deps are in the extra).
# MoviePy (the engine="moviepy" editing backend) pins pillow<12 in every 2.x release while the pack
# runs pillow 13; it is installed without deps (its other deps are in the extra) and
# tests/test_moviepy_edit.py checks the four edits it is used for on pillow 13.
set -euo pipefail
VPY="${VPY:-.venv/bin/python}"
if ! "$VPY" -c "import scenedetect" 2>/dev/null; then
  "$VPY" -m pip install --disable-pip-version-check -q --no-deps "scenedetect>=0.6.4,<0.8"
fi
if ! "$VPY" -c "import moviepy" 2>/dev/null; then
  "$VPY" -m pip install --disable-pip-version-check -q --no-deps "moviepy>=2.1,<2.3"
fi
