"""The validator speaks ComfyUI's error shape for every kind of bad graph."""
import json
from pathlib import Path

import pytest

from animation_studio.agent.catalog import Catalog
from animation_studio.agent.validate import find_cycle, validate_graph

INFO = {
    "Loader": {"input": {"required": {"ckpt_name": [["a.safetensors", "b.safetensors"], {}]}},
               "output": ["MODEL", "CLIP"], "output_node": False},
    "Sampler": {"input": {"required": {"model": ["MODEL"], "seed": ["INT", {"default": 0, "min": 0, "max": 100,
                                                                           "control_after_generate": True}],
                                       "cfg": ["FLOAT", {"min": 0.0, "max": 30.0}],
                                       "sampler": ["COMBO", {"options": ["euler", "dpmpp_2m"]}],
                                       "denoise": ["BOOLEAN", {}]},
                          "optional": {"note": ["STRING", {}]}},
                "output": ["IMAGE"], "output_node": False},
    "Save": {"input": {"required": {"images": ["IMAGE"], "filename_prefix": ["STRING", {"default": "x"}]}},
             "output": [], "output_node": True},
}


@pytest.fixture
def catalog():
    return Catalog.from_object_info(INFO)


def good():
    return {"1": {"class_type": "Loader", "inputs": {"ckpt_name": "a.safetensors"}},
            "2": {"class_type": "Sampler", "inputs": {"model": ["1", 0], "seed": "7", "cfg": 7.5,
                                                      "sampler": "euler", "denoise": True}},
            "3": {"class_type": "Save", "inputs": {"images": ["2", 0], "filename_prefix": "out"}}}


def only_error(result, node_id):
    errs = result.node_errors[node_id]["errors"]
    assert len(errs) == 1, errs
    return errs[0]


def test_valid_graph_is_coerced_in_place(catalog):
    result = validate_graph(good(), catalog)
    assert result.ok, result.summary()
    assert result.graph["2"]["inputs"]["seed"] == 7 and result.outputs == ["3"]


@pytest.mark.parametrize("edit, node, kind, input_name", [
    (lambda g: g["2"]["inputs"].pop("cfg"), "2", "required_input_missing", "cfg"),
    (lambda g: g["2"]["inputs"].__setitem__("seed", 101), "2", "value_bigger_than_max", "seed"),
    (lambda g: g["2"]["inputs"].__setitem__("seed", -1), "2", "value_smaller_than_min", "seed"),
    (lambda g: g["2"]["inputs"].__setitem__("sampler", "ddim"), "2", "value_not_in_list", "sampler"),
    (lambda g: g["1"]["inputs"].__setitem__("ckpt_name", "c.safetensors"), "1", "value_not_in_list", "ckpt_name"),
    (lambda g: g["2"]["inputs"].__setitem__("cfg", "lots"), "2", "invalid_input_type", "cfg"),
    (lambda g: g["2"]["inputs"].__setitem__("model", ["9", 0]), "2", "bad_linked_input", "model"),
    (lambda g: g["2"]["inputs"].__setitem__("model", ["1", 5]), "2", "bad_linked_input", "model"),
    (lambda g: g["2"]["inputs"].__setitem__("model", ["1", 1]), "2", "return_type_mismatch", "model"),
    (lambda g: g["2"]["inputs"].__setitem__("model", "a literal"), "2", "bad_linked_input", "model"),
])
def test_each_error_kind_names_node_and_input(catalog, edit, node, kind, input_name):
    g = good()
    edit(g)
    result = validate_graph(g, catalog)
    assert not result.ok
    assert result.error["type"] == "prompt_outputs_failed_validation"
    err = only_error(result, node)
    assert err["type"] == kind
    assert err["extra_info"]["input_name"] == input_name
    assert result.node_errors[node]["dependent_outputs"] == ["3"]
    assert f"node {node}" in result.summary() and input_name in result.summary()
    json.dumps(result.as_response())


def test_unknown_class(catalog):
    g = good()
    g["2"]["class_type"] = "MakeItPixar"
    result = validate_graph(g, catalog)
    assert result.error["type"] == "invalid_prompt"
    assert "MakeItPixar" in result.error["message"]
    assert only_error(result, "2")["type"] == "unknown_node_class"


def test_no_outputs(catalog):
    g = good()
    del g["3"]
    assert validate_graph(g, catalog).error["type"] == "prompt_no_outputs"


def test_cycle(catalog):
    g = good()
    g["1"] = {"class_type": "Sampler", "inputs": {"model": ["2", 0]}}
    g["2"]["inputs"]["model"] = ["1", 0]
    result = validate_graph(g, catalog)
    assert not result.ok
    assert {result.node_errors[n]["errors"][0]["type"] for n in ("1", "2")} == {"dependency_cycle"}
    assert find_cycle(g)[0] == find_cycle(g)[-1]


@pytest.mark.parametrize("graph", [[], "x", {}, {"1": "not a node"}, {"1": {"inputs": {}}}])
def test_malformed_graphs(catalog, graph):
    result = validate_graph(graph, catalog)
    assert result.error["type"] == "invalid_prompt"


def test_list_literal_for_combo_uses_value_wrapper(catalog):
    g = good()
    g["2"]["inputs"]["sampler"] = {"__value__": "dpmpp_2m"}
    assert validate_graph(g, catalog).ok


def test_custom_validate_inputs_of_pack_nodes(studio_dirs):
    from animation_studio.agent.catalog import pack_catalog

    g = {"1": {"class_type": "AnimStudio_LoadImage", "inputs": {"image": "../../etc/passwd"}},
         "2": {"class_type": "AnimStudio_SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "x"}}}
    result = validate_graph(g, pack_catalog())
    err = only_error(result, "1")
    assert err["type"] == "custom_validation_failed" and "outside the input folder" in err["details"]


def test_both_combo_shapes_from_object_info():
    from animation_studio.agent.catalog import parse_input

    legacy = parse_input("s", [["euler", "ddim"], {"default": "euler"}], "required")
    v3 = parse_input("s", ["COMBO", {"options": ["euler", "ddim"], "default": "euler"}], "required")
    assert legacy.type == v3.type == "COMBO" and legacy.options == v3.options == ("euler", "ddim")
    assert legacy.is_widget and v3.is_widget


REAL = Path(__file__).parent / "fixtures" / "object_info_comfyui_0.8.0.json"


@pytest.mark.skipif(not REAL.exists(), reason="no /object_info snapshot of a real ComfyUI in tests/fixtures")
def test_real_comfyui_catalog_parses_and_validates_a_txt2img_graph():
    catalog = Catalog.from_file(REAL)
    assert len(catalog) > 300 and "KSampler" in catalog
    ks = catalog["KSampler"]
    assert ks.inputs["sampler_name"].type == "COMBO" and "euler" in ks.inputs["sampler_name"].options
    ckpt = "model.safetensors"
    g = {"4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": ckpt}},
         "5": {"class_type": "EmptyLatentImage", "inputs": {"width": 1024, "height": 1024, "batch_size": 1}},
         "6": {"class_type": "CLIPTextEncode", "inputs": {"text": "luca running", "clip": ["4", 1]}},
         "7": {"class_type": "CLIPTextEncode", "inputs": {"text": "2d, flat", "clip": ["4", 1]}},
         "3": {"class_type": "KSampler", "inputs": {"seed": 1, "steps": 30, "cfg": 7.5, "sampler_name": "euler",
                                                    "scheduler": "normal", "denoise": 1.0, "model": ["4", 0],
                                                    "positive": ["6", 0], "negative": ["7", 0],
                                                    "latent_image": ["5", 0]}},
         "8": {"class_type": "VAEDecode", "inputs": {"samples": ["3", 0], "vae": ["4", 2]}},
         "9": {"class_type": "SaveImage", "inputs": {"images": ["8", 0], "filename_prefix": "luca"}}}
    result = validate_graph(g, catalog)
    # A server with no checkpoints lists none: that is the one error a real ComfyUI would give too.
    kinds = {e["type"] for entry in result.node_errors.values() for e in entry["errors"]}
    assert kinds <= {"value_not_in_list"}, result.summary()
