#!/usr/bin/env bash
# Browser tier (tests/test_browser.py): Debian's chromium + chromedriver, only where a ComfyUI
# checkout is given (COMFYUI_PATH: .ci/test runs this after .ci/comfyui-env; `.ci/install` runs it without
# one, and then it installs nothing). As root it installs them with apt-get; otherwise it says how.
# The tier's Director test speaks a line inside ComfyUI: ComfyUI's own Python (COMFYUI_PYTHON) gets the
# pack's voice extra and jsonschema from comfyui.sh (with the other extras the ComfyUI tier needs).
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
