"""Shipped workflows: every UI workflow converts to its API twin, every API workflow validates."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from animation_studio.agent.catalog import Catalog, pack_catalog
from animation_studio.agent.convert import ui_to_api
from animation_studio.agent.validate import validate_graph
from animation_studio.nodes import routes

ROOT = Path(__file__).resolve().parent.parent
WORKFLOWS = ROOT / "workflows"
COMFYUI_OBJECT_INFO = Path(__file__).parent / "fixtures" / "object_info_comfyui_0.8.0.json"
FILE_NAME = re.compile(r"\.[A-Za-z0-9]{2,12}$")

API_FILES = sorted((WORKFLOWS / "api").glob("*.api.json"))
UI_TWINS = sorted(routes.ui_workflows().values())  # each UI workflow names its API twin (extra.animation_studio_api)


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    """The pack's nodes, plus ComfyUI's core nodes for workflows written for a real server."""
    pack = pack_catalog()
    if COMFYUI_OBJECT_INFO.exists():
        return Catalog.from_file(COMFYUI_OBJECT_INFO).merged(pack)
    return pack


def missing_on_this_machine(error: dict) -> bool:
    """A model or input file this machine lacks is the machine's business, not the workflow's."""
    details = str(error.get("details", ""))
    value = error.get("extra_info", {}).get("received_value")
    if error["type"] == "custom_validation_failed":
        return "not found in the input folder" in details
    if error["type"] == "value_not_in_list":
        return "(put files in" in details or (isinstance(value, str) and bool(FILE_NAME.search(value)))
    return False


def without_meta(graph: dict) -> dict:
    return {node_id: {k: v for k, v in node.items() if k != "_meta"} for node_id, node in graph.items()}


@pytest.mark.parametrize("ui_path", UI_TWINS or [None], ids=lambda p: p.name if p else "none")
def test_ui_workflow_converts_to_its_api_twin(ui_path, catalog):
    if ui_path is None:
        pytest.skip("no workflows/<name>.json has a workflows/api/<name>.api.json twin yet")
    ui = json.loads(ui_path.read_text(encoding="utf-8"))
    twin = WORKFLOWS / "api" / f"{ui['extra']['animation_studio_api']}.api.json"
    api = json.loads(twin.read_text(encoding="utf-8"))
    assert without_meta(ui_to_api(ui, catalog)) == without_meta(api)


@pytest.mark.parametrize("api_path", API_FILES or [None], ids=lambda p: p.name if p else "none")
def test_api_workflow_validates(api_path, catalog):
    if api_path is None:
        pytest.skip("no workflows/api/*.api.json yet")
    graph = json.loads(api_path.read_text(encoding="utf-8"))
    result = validate_graph(graph, catalog)
    errors = [f"node {node_id} ({entry['class_type']}): {err['type']} {err.get('details', '')}"
              for node_id, entry in result.node_errors.items() for err in entry["errors"]
              if not missing_on_this_machine(err)]
    if result.error and not result.node_errors:
        errors.append(result.summary())
    assert not errors, "\n".join(errors)
