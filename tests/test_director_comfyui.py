"""The Director inside a real ComfyUI: an `AnimStudio_LLMDirector` prompt queued through POST /prompt.

Runs only when COMFYUI_PATH points at a ComfyUI checkout (see tests/comfyui_harness.py). A scripted
LLM (a replies file in the server's input folder) answers the brief, the slots and one refinement,
so the run must iterate twice by node expansion; /history and the `animation_studio.director`
websocket events show both iterations, their `<unique_id>.it<k>.` node ids, the evaluator's scores
and the files made. The character image recipe is used: it needs no extra in ComfyUI's Python.
"""
from __future__ import annotations

import json
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

IMAGE_INTENT = "Luca running, excited, sunny Italian seaside"
DIRECTOR_EVENT = "animation_studio.director"

# In call order: the brief, the recipe's slots (all of them: the schema has no optional slot), the vision judge's
# rubric on iteration 1 (low: the run must go on), one refinement, the rubric on iteration 2 (high: approved).
RUBRIC_LOW = {"scores": {"likeness": 0.1, "pose": 0.2, "background": 0.3, "expression": 0.2, "style": 0.2},
              "feedback": ["the frame is too narrow for a running pose"]}
RUBRIC_HIGH = {"scores": {"likeness": 0.9, "pose": 0.9, "background": 0.9, "expression": 0.9, "style": 0.9},
               "feedback": []}
SCRIPTED_IMAGE_RUN = [
    {"task_kind": "character_image", "characters": ["luca"], "emotion": "excited", "setting": "sunny Italian seaside",
     "action": "running", "dialogue": ""},
    {"character": "luca", "action": "running", "expression": "excited", "background": "sunny Italian seaside",
     "width": 256, "height": 256, "top_color": "#ffb347", "bottom_color": "#ffe08a",
     "filename_prefix": "director/luca"},
    RUBRIC_LOW,
    {"edits": [{"slot": "width", "value": 320, "reason": "wider framing for the run"}]},
    RUBRIC_HIGH,
]


@pytest.fixture(scope="module")
def server():
    with comfyui_harness.ComfyUIServer(comfyui_harness.comfyui_path()) as srv:
        yield srv


@pytest.fixture
def server_engine(server):
    from animation_studio.agent.server_engine import ServerEngine

    return ServerEngine(server.url, timeout=240)


def scripted(server, replies: list) -> str:
    """A replies file in the server's input folder; a fresh name, as the server caches a backend per spec."""
    name = f"director_{uuid.uuid4().hex[:8]}.json"
    (server.input_dir / name).write_text(json.dumps(replies))
    return f"scripted:{name}"


def director_prompt(intent: str, llm: str, max_iterations: int = 3, approve_score: float = 0.7) -> dict:
    return {"1": {"class_type": "AnimStudio_LLMDirector", "inputs": {
                "intent": intent, "character": "", "llm": llm, "max_iterations": max_iterations,
                "approve_score": approve_score, "input_files": ""}},
            "2": {"class_type": "AnimStudio_SaveText", "inputs": {"text": ["1", 2], "filename_prefix": "director_report"}}}


def test_director_iterates_twice_by_expansion_inside_comfyui(server, server_engine, tmp_path):
    events = []
    graph = director_prompt(IMAGE_INTENT, scripted(server, SCRIPTED_IMAGE_RUN))
    result = server_engine.run(graph, tmp_path / "run",
                               on_event=lambda kind, data: events.append(data) if kind == DIRECTOR_EVENT else None)
    assert result.status == "success", result.message() + "\n" + server.log_tail()

    # /history: every ephemeral node carries the Director's unique id and the iteration as its prefix.
    ephemeral = [n for n in result.outputs if n not in graph]
    assert ephemeral and all(n.startswith(("1.it1.", "1.it2.")) for n in ephemeral), sorted(result.outputs)
    assert {"1.it1.eval", "1.it2.eval"} <= set(result.outputs), (sorted(result.outputs), [e["text"] for e in events])
    assert not any(n.startswith("1.it3.") for n in result.outputs)  # approved at iteration 2
    evaluations = [json.loads(result.outputs[f"1.it{k}.eval"]["text"][0]) for k in (1, 2)]
    scores = [e["score"] for e in evaluations]
    assert scores[0] < 0.7 <= scores[1], evaluations
    assert evaluations[0]["vision"]["likeness"] == 0.1 and evaluations[1]["vision"]["likeness"] == 0.9
    assert all(n.startswith("1.") or n in graph for n in result.executed)
    assert any(n.startswith("1.it2.") for n in result.executed), result.executed

    # The websocket events the panel reads: two planned graphs, two evaluations, one verdict.
    graphs = [e for e in events if e["stage"] == "graph"]
    assert [e["iteration"] for e in graphs] == [1, 2], events
    assert graphs[0]["recipe"] == "character_image_prompt"
    assert graphs[0]["slots"]["width"] == 256 and graphs[1]["slots"]["width"] == 320
    assert all(node_id.startswith(f"1.it{e['iteration']}.") for e in graphs for node_id in e["graph"])
    # Each expansion passed ComfyUI's own validator (execution.validate_inputs) as well as ours.
    assert all(e["validation"]["validators"] == ["animation_studio", "comfyui"] for e in graphs), graphs
    assert [round(e["score"], 4) for e in events if e["stage"] == "evaluate"] == [round(s, 4) for s in scores]
    assert events[-1]["stage"] == "done" and events[-1]["iteration"] == 2

    # The outputs: both iterations' images, downloaded from /view, and the Director's report.
    pngs = [Path(f) for f in result.files if f.endswith(".png")]
    assert len(pngs) == 2 and all(p.stat().st_size > 0 for p in pngs)
    from PIL import Image

    assert sorted(Image.open(p).size for p in pngs) == [(256, 256), (320, 256)]
    (report_file,) = [Path(f) for f in result.files if Path(f).name.startswith("director_report")]
    report = json.loads(report_file.read_text())
    assert report["status"] == "approved" and report["iterations"] == 2 and report["recipe"] == "character_image_prompt" and len(report["scores"]) == 2
    assert [v["validators"] for v in report["validation"]] == [["animation_studio", "comfyui"]] * 2


def test_comfyuis_validator_checks_a_composed_graph_and_its_errors_are_repaired(server, server_engine, tmp_path):
    """No recipe makes a title card: the scripted tool_executor composes one with a height below SolidImage's
    minimum; ComfyUI's execution.validate_inputs reports it inside the server and the repair clamps it."""
    replies = [
        {"task_kind": "composition", "characters": [], "emotion": "neutral", "setting": "", "action": "",
         "dialogue": ""},
        {"nodes": [{"id": "1", "class_type": "AnimStudio_SolidImage",
                    "inputs": {"width": 192, "height": 1, "top_color": "#203040", "bottom_color": "#ffcc00"}},
                   {"id": "2", "class_type": "AnimStudio_SaveImage", "inputs": {"images": ["1", 0],
                                                                                 "filename_prefix": "card"}}]},
        RUBRIC_HIGH | {"scores": {"overall": 0.9}},
    ]
    events = []
    graph = director_prompt("make a gradient title card in blue and gold", scripted(server, replies), max_iterations=2)
    result = server_engine.run(graph, tmp_path / "run",
                               on_event=lambda kind, data: events.append(data) if kind == DIRECTOR_EVENT else None)
    assert result.status == "success", result.message() + "\n" + server.log_tail()
    (planned,) = [e for e in events if e["stage"] == "graph"]
    assert planned["recipe"] == "composed_graph"
    validation = planned["validation"]
    assert validation["validators"] == ["animation_studio", "comfyui"]
    # What ComfyUI's own validator said about the LLM's graph, and the repair that followed.
    assert any("input 'height'" in e and "smaller than min" in e for e in validation["errors_seen"]), validation
    assert any("height" in r and "value_smaller_than_min" in r for r in validation["repairs"]), validation
    (card,) = [n for n in planned["graph"].values() if n["class_type"] == "AnimStudio_SolidImage"]
    (png,) = [Path(f) for f in result.files if f.endswith(".png")]
    from PIL import Image

    assert Image.open(png).size == (192, card["inputs"]["height"]) and card["inputs"]["height"] > 1
    assert events[-1]["stage"] == "done" and "approved" in events[-1]["text"]
