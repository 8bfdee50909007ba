"""The ComfyUI tier: a real ComfyUI server (`--cpu`) with this pack loaded.

Runs only when COMFYUI_PATH points at a ComfyUI checkout (COMFYUI_PYTHON: its
interpreter; default COMFYUI_PATH/../comfyui-venv/bin/python if present, else
this one). Checks that the pack loads there without errors, that /object_info
publishes every node with the schema the pack declares, that shipped workflows
run through the server engine, and that ComfyUI's own validation reports the
same error types as agent/validate.py.
"""
from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
import comfyui_harness  # noqa: E402

pytestmark = [
    pytest.mark.comfyui,
    pytest.mark.timeout(300),
    pytest.mark.skipif(comfyui_harness.comfyui_path() is None, reason="COMFYUI_PATH not set"),
]

REPO = comfyui_harness.REPO_ROOT
WORKFLOWS = sorted((REPO / "workflows").glob("*.api.json"))


@pytest.fixture(scope="module")
def server():
    with comfyui_harness.ComfyUIServer(comfyui_harness.comfyui_path()) as srv:
        yield srv


@pytest.fixture(scope="module")
def object_info(server):
    return server.get_json("/object_info")


@pytest.fixture
def server_engine(server):
    from animation_studio.agent.server_engine import ServerEngine

    return ServerEngine(server.url, timeout=120)


def pack_log_problems(log: str) -> list[str]:
    """Lines of a ComfyUI log that say our pack (or one of its families) failed to load."""
    folder = comfyui_harness.PACK_FOLDER_NAME
    problems = [line for line in log.splitlines()
                if ("IMPORT FAILED" in line and folder in line)
                or "node family" in line and "failed to load" in line
                or "Animation Studio routes not registered" in line]
    # A traceback whose frames run through the pack's files.
    for block in re.split(r"(?=Traceback \(most recent call last\))", log)[1:]:
        frames = block.split("\n\n")[0]
        if f"custom_nodes/{folder}/" in frames or str(REPO) in frames:
            problems.append(frames.strip()[-600:])
    return problems


def test_the_pack_loads_without_import_failures(server):
    log = server.log_text()
    assert f"custom_nodes/{comfyui_harness.PACK_FOLDER_NAME}" in log, "ComfyUI did not list the pack among its custom nodes"
    problems = pack_log_problems(log)
    assert not problems, "the pack failed to load inside ComfyUI:\n" + "\n".join(problems)


def _schema(info: dict) -> dict:
    """What must agree between the pack and /object_info: input names/types/options per section, outputs."""
    from animation_studio.agent.catalog import spec_from_info

    spec = spec_from_info(info.get("name", ""), json.loads(json.dumps(info, default=str)))
    return {
        "inputs": {name: (s.section, s.type, list(s.options) if s.options is not None else None)
                   for name, s in spec.inputs.items() if s.section != "hidden"},
        "outputs": spec.outputs,
        "output_names": spec.output_names,
        "output_is_list": spec.output_is_list,
        "output_node": spec.output_node,
    }


def test_every_pack_node_is_published_with_the_same_schema(object_info):
    import animation_studio
    from animation_studio.agent.catalog import info_from_class

    mappings = animation_studio.NODE_CLASS_MAPPINGS
    assert mappings, "the pack registers no nodes"
    missing = sorted(set(mappings) - set(object_info))
    assert not missing, f"{len(missing)} pack nodes are not in ComfyUI's /object_info: {missing}"
    different = {}
    for key, cls in mappings.items():
        ours, theirs = _schema(info_from_class(key, cls)), _schema(object_info[key])
        if ours != theirs:
            different[key] = {field: (ours[field], theirs[field]) for field in ours if ours[field] != theirs[field]}
    assert not different, "schemas differ (pack, /object_info):\n" + json.dumps(different, indent=1, default=str)[:4000]


def _runnable(graph: dict, object_info: dict) -> str | None:
    missing = sorted({n["class_type"] for n in graph.values()} - set(object_info))
    return f"nodes not on the server: {missing}" if missing else None


@pytest.mark.parametrize("workflow", WORKFLOWS, ids=[w.name for w in WORKFLOWS])
def test_a_shipped_workflow_runs_on_the_server_like_on_the_embedded_engine(workflow, object_info, server_engine,
                                                                           engine, studio_dirs, tmp_path):
    graph = json.loads(workflow.read_text())
    reason = _runnable(graph, object_info)
    if reason:
        pytest.skip(reason)
    # Empty model and input folders on both sides: a workflow that needs a model or an input file cannot run
    # embedded either, and is skipped with the embedded engine's own message.
    local = engine.run(graph, run_dir=tmp_path / "embedded-run")
    if local.status != "success":
        pytest.skip(f"needs models or inputs that neither engine has here: {local.message()[:300]}")
    result = server_engine.run(graph, tmp_path / "server-run")
    if result.status == "error" and "Install the '" in result.message():
        # The node asked for an optional extra that this venv has and ComfyUI's interpreter has not.
        pytest.skip(f"ComfyUI's Python lacks an optional extra: {result.message()[:300]}")
    assert result.status == "success", result.message()
    assert result.files, "the server produced no files to download"
    for path in result.files:
        assert Path(path).is_file() and Path(path).stat().st_size > 0
        assert Path(path).is_relative_to(tmp_path / "server-run")
    # The same files, and for text the same content, as the embedded engine wrote.
    served = {Path(p).relative_to(tmp_path / "server-run"): Path(p).read_bytes() for p in result.files}
    embedded = {Path(p).relative_to(tmp_path / "embedded-run"): Path(p).read_bytes() for p in local.files}
    assert sorted(served) == sorted(embedded)
    for name in served:
        if name.suffix in (".txt", ".json"):
            assert served[name] == embedded[name], name


def test_an_invalid_second_output_is_reported_while_the_first_still_runs(server_engine, tmp_path):
    graph = json.loads((REPO / "workflows" / "title_card.api.json").read_text())
    graph["3"]["inputs"]["text"] = "only this line"
    del graph["2"]["inputs"]["filename_prefix"]
    result = server_engine.run(graph, tmp_path / "run")
    assert result.status == "invalid" and result.error["type"] == "prompt_outputs_failed_validation"
    assert [e["type"] for e in result.node_errors["2"]["errors"]] == ["required_input_missing"]
    assert [Path(p).read_text() for p in result.files] == ["only this line"]


def _bad_graphs() -> dict[str, dict]:
    """One broken graph per error type, each with a single output so ComfyUI answers 400 (pack and core nodes)."""
    title = json.loads((REPO / "workflows" / "title_card.api.json").read_text())
    image_only = {"1": title["1"], "2": title["2"]}
    graphs = {}

    def variant(node_id: str, name: str, value, base=image_only) -> dict:
        graph = json.loads(json.dumps(base))
        if value is None:
            del graph[node_id]["inputs"][name]
        else:
            graph[node_id]["inputs"][name] = value
        return graph

    graphs["required_input_missing"] = variant("2", "filename_prefix", None)
    graphs["value_bigger_than_max"] = variant("1", "width", 100_000)
    graphs["value_smaller_than_min"] = variant("1", "height", 0)
    graphs["return_type_mismatch"] = variant("2", "images", ["3", 0], {**image_only, "3": title["3"]})
    graphs["bad_linked_input"] = variant("2", "images", ["1"])  # a link is [node_id, output_index]
    graphs["value_not_in_list"] = {
        "1": {"class_type": "EmptyImage", "inputs": {"width": 64, "height": 64, "batch_size": 1, "color": 0}},
        "2": {"class_type": "ImageScale", "inputs": {"image": ["1", 0], "upscale_method": "no-such-method",
                                                      "width": 32, "height": 32, "crop": "disabled"}},
        "3": {"class_type": "PreviewImage", "inputs": {"images": ["2", 0]}},
    }
    graphs["prompt_no_outputs"] = {"1": title["1"]}
    return graphs


def _error_types(error: dict | None, node_errors: dict) -> dict:
    return {"top": (error or {}).get("type"),
            "nodes": {node_id: sorted(e["type"] for e in entry["errors"]) for node_id, entry in node_errors.items()}}


@pytest.mark.parametrize("expected", sorted(_bad_graphs()))
def test_comfyui_and_our_validator_report_the_same_error_types(expected, server_engine):
    _compare_validators(_bad_graphs()[expected], expected, server_engine)


@pytest.mark.xfail(strict=True, reason="ComfyUI 0.8.0 reports a link to a missing node or output index as "
                                       "exception_during_validation (a KeyError/IndexError in validate_inputs); "
                                       "agent/validate.py names it bad_linked_input")
@pytest.mark.parametrize("link", [["99", 0], ["1", 5]], ids=["missing_node", "missing_output_index"])
def test_a_link_to_a_missing_node_or_output(link, server_engine):
    title = json.loads((REPO / "workflows" / "title_card.api.json").read_text())
    graph = {"1": title["1"], "2": {**title["2"], "inputs": {**title["2"]["inputs"], "images": link}}}
    _compare_validators(graph, "bad_linked_input", server_engine)


def _compare_validators(graph: dict, expected: str, server_engine) -> None:
    result = server_engine.run(graph)
    assert result.status == "invalid", result.message()
    theirs = _error_types(result.error, result.node_errors)
    report = server_engine.validate(graph)  # agent/validate.py over the server's own catalog
    ours = _error_types(report.error, report.node_errors)
    assert ours == theirs, f"ComfyUI said {theirs}, agent/validate.py said {ours}"
    assert expected == theirs["top"] or any(expected in types for types in theirs["nodes"].values()), theirs
