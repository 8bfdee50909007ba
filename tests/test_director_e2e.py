"""End to end: `animation-studio direct` on the three studio intents, embedded engine, embedded LLM (SmolLM2)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("langgraph")
try:
    import llama_cpp  # noqa: F401
except ImportError:
    pytest.skip("llama_cpp is not importable (install the local-llm extra)", allow_module_level=True)

STUDIO = [
    ("funny parody of Luca's first ocean scene with exaggerated expressions and dramatic slow motion", ".mp4"),
    ("Luca saying 'Silenzio, Bruno!' with determination", ".wav"),
    ("Luca running, excited, sunny Italian seaside", ".png"),
]


@pytest.mark.slow
@pytest.mark.parametrize("intent,suffix", STUDIO)
def test_direct_with_the_embedded_model_produces_real_files(intent, suffix, tmp_path, studio_dirs, monkeypatch):
    from animation_studio.agent.cli import main

    monkeypatch.setenv("ANIMATION_STUDIO_EMBEDDER", "ngram")
    out = tmp_path / "runs"
    code = main(["direct", intent, "--llm", "local", "--out", str(out), "--max-iterations", "1", "--no-memory"])
    (run_dir,) = [p for p in out.iterdir() if p.is_dir()]
    record = json.loads((run_dir / "run.json").read_text())
    if record["status"] == "llm_timeout":
        pytest.skip(f"the machine is too loaded for the local model: {record['message']}")
    assert code == 0, record["message"]
    assert record["llm_calls"], "the local model was never asked"
    assert any(c.get("raw") is not None or c.get("error") for c in record["llm_calls"])
    files = [Path(f) for f in record["files"]]
    assert any(f.suffix == suffix and f.stat().st_size > 0 for f in files), files
