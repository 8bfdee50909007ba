"""UI->API conversion on hand-written edge cases, with the exact API graph the frontend would send."""
from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from animation_studio.agent.catalog import Catalog
from animation_studio.agent.convert import ConversionError, bypass_input_slot, map_widget_values, ui_to_api
from animation_studio.agent.validate import validate_graph

FIXTURES = Path(__file__).parent / "fixtures" / "ui_workflows"
CASES = sorted(p.name for p in FIXTURES.glob("*.json") if not p.name.startswith("object_info"))


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    # Real ComfyUI 0.8.0 definitions of the few nodes the fixtures use.
    return Catalog.from_file(FIXTURES / "object_info_subset_comfyui_0.8.0.json")


def load_case(name: str) -> dict:
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


@pytest.mark.parametrize("name", CASES)
def test_fixture_converts_to_the_expected_graph(name, catalog):
    case = load_case(name)
    assert ui_to_api(case["workflow"], catalog) == case["expected"]


def test_converted_fixtures_validate(catalog):
    for name in ("primitive_reroute_note.json", "subgraph_nested.json"):
        result = validate_graph(ui_to_api(load_case(name)["workflow"], catalog), catalog)
        assert result.ok, (name, result.summary())
    # The preview fed only by a muted node lost its input, as ComfyUI would report.
    result = validate_graph(ui_to_api(load_case("bypass_mute.json")["workflow"], catalog), catalog)
    assert list(result.node_errors) == ["7"]
    assert result.node_errors["7"]["errors"][0]["type"] == "required_input_missing"


def test_control_after_generate_value_is_skipped_and_optional(catalog):
    ksampler = catalog["KSampler"]
    with_control = map_widget_values(ksampler, [7, "fixed", 30, 6.0, "euler", "karras", 0.5])
    without_control = map_widget_values(ksampler, [7, 30, 6.0, "euler", "karras", 0.5])  # older frontends
    expected = {"seed": 7, "steps": 30, "cfg": 6.0, "sampler_name": "euler", "scheduler": "karras", "denoise": 0.5}
    assert with_control == expected
    assert without_control == expected


def test_missing_trailing_widgets_get_defaults_and_dict_values_map_by_name(catalog):
    assert map_widget_values(catalog["EmptyLatentImage"], [640]) == {"width": 640, "height": 512, "batch_size": 1}
    named = {"width": 320, "height": 200, "batch_size": 2, "not_an_input": 1}
    assert map_widget_values(catalog["EmptyLatentImage"], named) == {"width": 320, "height": 200, "batch_size": 2}


def test_list_widget_value_is_wrapped(catalog):
    workflow = {"nodes": [
        {"id": 1, "type": "PrimitiveString", "mode": 0, "inputs": [], "outputs": [], "widgets_values": [["a", "b"]]}],
        "links": []}
    assert ui_to_api(workflow, catalog)["1"]["inputs"] == {"value": {"__value__": ["a", "b"]}}


def test_bypass_prefers_same_slot_then_first_input_of_the_wanted_type():
    node = {"inputs": [{"type": "LATENT", "link": 1}, {"type": "VAE", "link": 2}, {"type": "IMAGE", "link": 3}],
            "outputs": [{"type": "IMAGE"}]}
    assert bypass_input_slot(node, 0, "IMAGE") == 2
    node["outputs"] = [{"type": "LATENT"}]
    assert bypass_input_slot(node, 0, "LATENT") == 0
    assert bypass_input_slot({"inputs": [{"type": "VAE"}], "outputs": [{"type": "IMAGE"}]}, 0, "IMAGE") is None


def test_unknown_node_type_is_named_or_kept_raw(catalog):
    workflow = {"nodes": [{"id": 9, "type": "VHS_VideoCombine", "mode": 0, "inputs": [], "outputs": [],
                           "widgets_values": {"frame_rate": 8, "format": "video/h264-mp4"}}], "links": []}
    with pytest.raises(ConversionError, match=r"node 9: type 'VHS_VideoCombine' is not in the node catalog"):
        ui_to_api(workflow, catalog)
    raw = ui_to_api(workflow, catalog, strict=False)
    assert raw["9"]["class_type"] == "VHS_VideoCombine"
    assert raw["9"]["inputs"] == {"frame_rate": 8, "format": "video/h264-mp4"}


@pytest.mark.parametrize("mutate, message", [
    (lambda w: w.pop("nodes"), "no 'nodes' list"),
    (lambda w: w["nodes"][2]["inputs"].__setitem__(0, {"name": "samples", "type": "LATENT", "link": 999}),
     r"node 8 \(VAEDecode\): input 'samples' uses link 999, which is not in 'links'"),
    (lambda w: w["links"].append([40, 1]), r"malformed link \[40, 1\]"),
    (lambda w: w["nodes"].append({"id": 4, "type": "ImageInvert"}), "node id 4 appears twice"),
    (lambda w: w["nodes"].append({"id": 77}), "node #14 needs an 'id' and a 'type'"),
    (lambda w: w["nodes"][0].__setitem__("widgets_values", 5), r"node 4 \(CheckpointLoaderSimple\): 'widgets_values'"),
])
def test_malformed_workflows_get_a_clear_error(catalog, mutate, message):
    workflow = copy.deepcopy(load_case("primitive_reroute_note.json")["workflow"])
    order = {n["id"]: n for n in workflow["nodes"]}
    workflow["nodes"] = [order[i] for i in (4, 10, 8, 11, 12, 6, 7, 13, 5, 14, 3, 9, 15, 16)]
    mutate(workflow)
    with pytest.raises(ConversionError, match=message):
        ui_to_api(workflow, catalog)
    assert issubclass(ConversionError, ValueError)


def test_api_graph_is_refused_as_a_ui_workflow(catalog):
    with pytest.raises(ConversionError, match="already an API-format graph"):
        ui_to_api({"1": {"class_type": "SaveImage", "inputs": {}}}, catalog)


def test_reroute_loop_is_reported(catalog):
    workflow = {"nodes": [
        {"id": 1, "type": "Reroute", "mode": 0, "inputs": [{"name": "", "type": "*", "link": 2}], "outputs": []},
        {"id": 2, "type": "Reroute", "mode": 0, "inputs": [{"name": "", "type": "*", "link": 1}], "outputs": []},
        {"id": 3, "type": "PreviewImage", "mode": 0, "inputs": [{"name": "images", "type": "IMAGE", "link": 3}], "outputs": []}],
        "links": [[1, 1, 0, 2, 0, "*"], [2, 2, 0, 1, 0, "*"], [3, 2, 0, 3, 0, "IMAGE"]]}
    with pytest.raises(ConversionError, match="loop"):
        ui_to_api(workflow, catalog)
