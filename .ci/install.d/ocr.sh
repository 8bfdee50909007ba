#!/usr/bin/env bash
# OCR for the Director's verifier (agent/director/verify.py, check "caption_ocr"): Debian's Tesseract
# with the English and Italian language data. The verifier calls the `tesseract` CLI, so no Python
# package is needed. Idempotent: apt runs only when a piece is missing.
set -euo pipefail
have_lang() { command -v tesseract >/dev/null && tesseract --list-langs 2>/dev/null | grep -qx "$1"; }
if ! have_lang eng || ! have_lang ita; then
  if command -v apt-get >/dev/null; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q >/dev/null
    apt-get install -y -q tesseract-ocr tesseract-ocr-eng tesseract-ocr-ita >/dev/null
  else
    echo "ocr: no apt-get here; install tesseract-ocr with eng and ita data by hand" >&2
  fi
fi
