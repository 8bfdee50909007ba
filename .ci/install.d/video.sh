#!/usr/bin/env bash
# Video family: PySceneDetect lists `opencv-python`, which would put a second cv2 next to the
# headless one in the `video` extra; install it without deps (its deps are in the extra).
# MoviePy is not used (it pins pillow<12; editing is done on the pack's own PyAV streams).
set -euo pipefail
VPY="${VPY:-.venv/bin/python}"
if ! "$VPY" -c "import scenedetect" 2>/dev/null; then
  "$VPY" -m pip install --disable-pip-version-check -q --no-deps "scenedetect>=0.6.4,<0.8"
fi
