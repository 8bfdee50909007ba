"""ComfyUI's official workflow templates (PyPI `comfyui-workflow-templates*`), converted and validated.

Every template whose node types are all in the ComfyUI 0.8.0 catalog must convert, and the
graph must pass the validator, except for errors that the template or the capture
environment explains (each kind is named below). Anything else fails the test.
"""
from __future__ import annotations

import importlib.util
import json
import re
from collections import Counter
from pathlib import Path

import pytest

from animation_studio.agent.catalog import Catalog
from animation_studio.agent.convert import (VIRTUAL_TYPES, ConversionError, core_catalog, has_control_widget,
                                            has_upload_widget, read_core_object_info, ui_to_api)
from animation_studio.agent.validate import validate_graph

OBJECT_INFO = Path(__file__).parent / "fixtures" / "object_info_comfyui_0.8.0.json"
# The templates ComfyUI 0.8.0 itself requires (system_stats required_templates_version).
MATCHING_BUNDLE = "0.7.67"
TEMPLATE_PACKAGES = ["comfyui_workflow_templates_media_api", "comfyui_workflow_templates_media_image",
                     "comfyui_workflow_templates_media_video", "comfyui_workflow_templates_media_other",
                     "comfyui_workflow_templates_json"]
# Defects in the templates themselves, checked by hand (ComfyUI would refuse them as well).
KNOWN_TEMPLATE_DEFECTS = {
    "video_ltx2_i2v_lora.json": "its subgraph's VIDEO output is linked to nothing inside (link 265 missing)",
    "gsc_starter_1.json": "SaveImage 76 'images' is left unconnected",
    "api_stability_ai_audio_to_audio.json": "RecordAudio holds no recording (frontend-only AUDIO_RECORD widget)",
}
FILE_NAME = re.compile(r"\.[A-Za-z0-9]{2,12}$")


def template_files() -> list[Path]:
    files = []
    for package in TEMPLATE_PACKAGES:
        spec = importlib.util.find_spec(package)
        if spec and spec.submodule_search_locations:
            for location in spec.submodule_search_locations:
                files += sorted(Path(location, "templates").glob("*.json"))
    return files


def all_nodes(workflow: dict) -> list[dict]:
    nodes = list(workflow.get("nodes") or [])
    for sub in (workflow.get("definitions") or {}).get("subgraphs") or []:
        nodes += sub.get("nodes") or []
    return nodes


def expected_widget_count(spec) -> int:
    """How many positional values the frontend stores for this node (without dynamic children)."""
    count = 0
    for s in spec.inputs.values():
        if s.is_widget:
            count += 1 + has_control_widget(s) + has_upload_widget(s)
    return count


def explain(error: dict, node_id: str, class_type: str, ui_node: dict | None, catalog: Catalog,
            newer_bundle: bool) -> str | None:
    """Why a validation error is the template's or the environment's, or None when unexplained."""
    kind = error["type"]
    value = error.get("extra_info", {}).get("received_value")
    if kind == "value_not_in_list" and isinstance(value, str) and FILE_NAME.search(value):
        return "file absent on the server that captured the catalog"
    if ui_node is not None and isinstance(ui_node.get("widgets_values"), list) \
            and not any(s.type == "COMFY_DYNAMICCOMBO_V3" for s in catalog[class_type].inputs.values()):
        spec = catalog[class_type]
        stored, expected = len(ui_node["widgets_values"]), expected_widget_count(spec)
        # Upload widgets may be followed by more frontend-only values (LoadAudio: two).
        has_upload = any(has_upload_widget(s) for s in spec.inputs.values())
        if stored < expected or (stored > expected and not has_upload):
            return "saved with another version of the node (widget count differs)"
    if newer_bundle and kind == "value_not_in_list":
        return "option added after ComfyUI 0.8.0"
    if newer_bundle and kind == "bad_linked_input" and "has no output" in error.get("message", ""):
        return "output added after ComfyUI 0.8.0"
    return None


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    """ComfyUI 0.8.0's core nodes, from the snapshot the package ships (what `convert` uses with no server)."""
    return core_catalog()


def test_the_shipped_snapshot_is_the_test_fixture():
    """One catalog: the package's gzip snapshot and the validator tests' fixture hold the same /object_info, in the
    same order (an input's position is its widget's position in a saved workflow)."""
    assert json.dumps(read_core_object_info()) == json.dumps(json.loads(OBJECT_INFO.read_text(encoding="utf-8")))


def test_every_known_template_converts_and_validates(catalog):
    files = template_files()
    if not files:
        pytest.skip("comfyui-workflow-templates is not installed (pip install -e .[dev])")
    counts, reasons, unexplained = Counter(), Counter(), []
    for path in files:
        workflow = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(workflow, dict) or "nodes" not in workflow:
            continue  # index / schema files
        counts["templates"] += 1
        subgraph_ids = {s["id"] for s in (workflow.get("definitions") or {}).get("subgraphs") or []}
        types = {n["type"] for n in all_nodes(workflow)} - subgraph_ids - VIRTUAL_TYPES
        if any(t not in catalog for t in types):
            continue
        counts["all_nodes_known"] += 1
        try:
            graph = ui_to_api(workflow, catalog)
        except ConversionError as exc:
            if "was saved by another version of that node" in str(exc):
                counts["refused_naming_a_node_of_another_version"] += 1
            else:
                unexplained.append(f"{path.name}: conversion failed: {exc}")
            continue
        counts["converted"] += 1
        result = validate_graph(graph, catalog)
        if result.ok:
            counts["validated"] += 1
            continue
        if path.name in KNOWN_TEMPLATE_DEFECTS:
            reasons["known template defect"] += 1
            continue
        newer = "comfyui_workflow_templates_json" in str(path)
        by_id = {}
        for node in workflow.get("nodes") or []:
            by_id[str(node["id"])] = node
        for sub in (workflow.get("definitions") or {}).get("subgraphs") or []:
            for node in sub.get("nodes") or []:
                by_id.setdefault(str(node["id"]), node)
        if not result.node_errors:
            unexplained.append(f"{path.name}: {result.summary()}")
        file_reasons = set()
        for node_id, entry in result.node_errors.items():
            ui_node = by_id.get(node_id.split(":")[-1])
            for error in entry["errors"]:
                why = explain(error, node_id, entry["class_type"], ui_node, catalog, newer)
                if why is None:
                    unexplained.append(f"{path.name}: node {node_id} ({entry['class_type']}): "
                                       f"{error['type']} {error.get('details', '')[:120]}")
                else:
                    file_reasons.add(why)
        for why in file_reasons:
            reasons[why] += 1
        counts["validated_but_for_explained_errors"] += 1
    print(f"\ntemplate counts: {dict(counts)}\nexplained failures (templates): {dict(reasons)}")
    assert counts["all_nodes_known"] >= 100, counts
    assert counts["converted"] + counts["refused_naming_a_node_of_another_version"] == counts["all_nodes_known"]
    assert counts["refused_naming_a_node_of_another_version"] <= 2, counts
    assert counts["validated"] >= 60, counts
    assert not unexplained, "\n".join(unexplained)


def test_cli_converts_official_templates_with_no_server(tmp_path):
    """`animation-studio convert` on ComfyUI's own templates, default engine: no "not in the node catalog"."""
    import subprocess
    import sys

    catalog = core_catalog()
    known = []
    for path in template_files():
        workflow = json.loads(path.read_text(encoding="utf-8"))
        if isinstance(workflow, dict) and "nodes" in workflow and not workflow.get("definitions") \
                and all(n["type"] in catalog or n["type"] in VIRTUAL_TYPES for n in workflow["nodes"]):
            known.append(path)
    if not known:
        pytest.skip("comfyui-workflow-templates is not installed (pip install -e .[dev])")
    picked = [p for p in known if p.name == "default.json"] + known[::max(1, len(known) // 5)][:5]
    for path in picked:
        out = subprocess.run([sys.executable, "-m", "animation_studio.agent.cli", "convert", str(path)],
                             capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, f"{path.name}: {out.stderr}"
        graph = json.loads(out.stdout)
        assert graph == ui_to_api(json.loads(path.read_text(encoding="utf-8")), catalog), path.name
        assert {node["class_type"] for node in graph.values()} <= set(catalog.specs)


def test_cli_convert_still_names_a_node_no_catalog_knows(tmp_path):
    import subprocess
    import sys

    workflow = {"nodes": [{"id": 1, "type": "SomeNodeFromANewerComfyUI", "inputs": [], "outputs": [],
                           "widgets_values": [1]}], "links": [], "version": 0.4}
    path = tmp_path / "newer.json"
    path.write_text(json.dumps(workflow))
    out = subprocess.run([sys.executable, "-m", "animation_studio.agent.cli", "convert", str(path)],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode != 0 and "SomeNodeFromANewerComfyUI" in out.stderr and "node 1" in out.stderr


def test_cli_to_ui_and_back_with_core_nodes_and_no_server(tmp_path):
    """The shipped core-node workflow goes API -> UI (`to-ui`) -> API (`convert`) unchanged, with no server."""
    import subprocess
    import sys

    api_path = Path(__file__).resolve().parents[1] / "workflows" / "api" / "character_image_native.api.json"
    cli = [sys.executable, "-m", "animation_studio.agent.cli"]
    ui = subprocess.run([*cli, "to-ui", str(api_path)], capture_output=True, text=True, timeout=120)
    assert ui.returncode == 0, ui.stderr
    (tmp_path / "native.json").write_text(ui.stdout)
    back = subprocess.run([*cli, "convert", str(tmp_path / "native.json")], capture_output=True, text=True, timeout=120)
    assert back.returncode == 0, back.stderr

    def strip(graph):
        return {k: {"class_type": v["class_type"], "inputs": v["inputs"]} for k, v in graph.items()}

    assert strip(json.loads(back.stdout)) == strip(json.loads(api_path.read_text()))


def official_template(name: str) -> dict:
    path = next((p for p in template_files() if p.name == name), None)
    if path is None:
        pytest.skip(f"{name} is not among the installed templates (pip install -e .[dev])")
    return json.loads(path.read_text(encoding="utf-8"))


def test_audio_nodes_get_the_frontends_audio_player_widget(catalog):
    """The frontend adds an `audioUI` player to LoadAudio and the audio savers and sends it ('') in the prompt
    (the browser tier compares whole templates with the frontend's graphToPrompt)."""
    graph = ui_to_api(official_template("api_stability_ai_audio_inpaint.json"), catalog)
    audio = {node["class_type"]: node["inputs"] for node in graph.values()}
    assert audio["LoadAudio"] == {"audio": "api_stability_ai_audio_inpaint_input_audio.wav", "audioUI": ""}
    assert audio["SaveAudioMP3"]["audioUI"] == "" and audio["SaveAudioMP3"]["quality"] == "V0"
    assert "audioUI" not in validate_graph(graph, catalog).summary()  # ComfyUI ignores it; so does ours


def test_preview_any_gets_its_preview_widgets_as_the_frontend_loads_them(catalog):
    """PreviewAny's `previewMode` switch is the one saved widget after two unsaved texts: the frontend's loader
    gives it widgets_values[0] (checked in the browser: [null, null, true] -> null, [true] -> true)."""
    workflow = {"nodes": [{"id": n, "type": "PreviewAny", "mode": 0, "inputs": [], "outputs": [],
                           "widgets_values": values}
                          for n, values in ((1, []), (2, [None, None, True]), (3, [True]))], "links": []}
    graph = ui_to_api(workflow, catalog)
    assert [graph[k]["inputs"] for k in ("1", "2", "3")] == [{"preview": "", "previewMode": False},
                                                            {"preview": "", "previewMode": None},
                                                            {"preview": "", "previewMode": True}]


def test_a_template_saved_with_another_node_version_converts_where_the_values_line_up(catalog):
    """api_wan_image_to_video was saved before WanImageToVideoApi gained `shot_type` (10 values where ComfyUI
    0.8.0's node takes 11 with the seed's control): the values line up up to the new last widget, which gets its
    default as in the frontend; the bypassed RecordAudio and the unlinked LoadAudio stay out of the way."""
    graph = ui_to_api(official_template("api_wan_image_to_video.json"), catalog)
    wan = next(node["inputs"] for node in graph.values() if node["class_type"] == "WanImageToVideoApi")
    assert {k: wan[k] for k in ("resolution", "duration", "seed", "generate_audio", "prompt_extend", "watermark",
                                "shot_type")} == {"resolution": "720P", "duration": 5, "seed": 265691414,
                                                  "generate_audio": True, "prompt_extend": True, "watermark": False,
                                                  "shot_type": "single"}
    assert "RecordAudio" not in {node["class_type"] for node in graph.values()}


def test_a_node_whose_saved_values_do_not_line_up_is_named(catalog):
    """MoonvalleyVideo2VideoNode gained a widget before `steps`: the template's 'Motion Transfer' would land on
    the INT `steps` (the frontend sends it so and ComfyUI refuses it); convert names the node and the input."""
    workflow = official_template("api_moonvalley_video_to_video_motion_transfer.json")
    with pytest.raises(ConversionError, match=r"node 38 \(MoonvalleyVideo2VideoNode\) was saved by another version"
                                              r".*'Motion Transfer' lands on input 'steps' \(INT\)"):
        ui_to_api(workflow, catalog)
