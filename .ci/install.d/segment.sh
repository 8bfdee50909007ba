#!/usr/bin/env bash
# Segment family: SAM2 from its PyPI sdist (no wheel exists). Built with
#   SAM2_BUILD_CUDA=0  - no CUDA extension (it only fills small mask holes; CPU has no nvcc anyway)
#   --no-build-isolation - an isolated build env would pull a CUDA torch from PyPI for `torch>=2.5.1`
#   --no-deps          - its deps are torch (already here), hydra-core, iopath, pillow, tqdm, numpy:
#                        installed here first and listed in the `segment` extra.
# The nodes never import torchvision (SAM2ImagePredictor needs it); see nodes/segment.py.
# Idempotent: skipped when sam2 already imports.
set -euo pipefail
VPY="${VPY:-.venv/bin/python}"
PIP=("$VPY" -m pip install --disable-pip-version-check -q)
if ! "$VPY" -c "import sam2.build_sam" 2>/dev/null; then
  "${PIP[@]}" "hydra-core>=1.3" "iopath>=0.1.10" pillow tqdm
  SAM2_BUILD_CUDA=0 "${PIP[@]}" --no-deps --no-build-isolation "sam2==1.1.0"
fi
