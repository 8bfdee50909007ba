"""The pack's HTTP routes as plain functions: validated input, nothing outside the pack's folders."""
import json
from pathlib import Path

import pytest

from animation_studio.nodes import routes


def test_health_counts_nodes():
    status, body = routes.health()
    assert status == 200 and body["nodes"] > 0


def test_characters_lists_the_registry():
    status, body = routes.characters()
    names = {c["name"] for c in body["characters"]}
    assert status == 200 and {"luca", "alberto", "giulia"} <= names


def test_workflows_list_and_fetch():
    status, body = routes.workflows()
    assert status == 200 and "title_card" in body["api"]
    status, graph = routes.workflow("title_card", "api")
    assert status == 200 and graph["2"]["class_type"] == "AnimStudio_SaveImage"
    # The UI form, by its twin's name (its file is named for a person: the Templates browser shows the name).
    assert body["ui"]["parody_video"] == "Parody video, exaggerate the funniest moment"
    status, ui = routes.workflow("parody_video", "ui")
    assert status == 200 and ui["extra"]["animation_studio_api"] == "parody_video" and ui["nodes"]
    assert routes.workflow("no_such_workflow", "ui")[0] == 404


@pytest.mark.parametrize("name", ["../pyproject", "..", "/etc/passwd", "a/b", "", "x" * 200, "..%2f..%2fetc"])
def test_names_outside_the_pack_are_refused(name):
    status, body = routes.workflow(name, "api")
    assert status == 400 and "invalid" in body["error"]
    status, body = routes.run_report(name)
    assert status == 400


def test_runs_and_reports(studio_dirs):
    folder = routes.runs_root() / "20261124-abc"
    folder.mkdir(parents=True)
    (folder / "run.json").write_text(json.dumps({"intent": "parody", "status": "approved", "iterations": [{}, {}]}))
    status, body = routes.runs()
    assert body["runs"] == [{"run_id": "20261124-abc", "intent": "parody", "status": "approved", "iterations": 2}]
    status, report = routes.run_report("20261124-abc")
    assert status == 200 and report["intent"] == "parody"
    assert routes.run_report("nope")[0] == 404


def test_register_is_a_no_op_outside_comfyui():
    assert routes.register() is False


def test_a_director_cli_run_is_listed_and_its_report_fetched(studio_dirs, capsys):
    """`animation-studio direct` writes <output>/<run-id>/run.json; the runs routes find it there."""
    from animation_studio.agent.cli import main

    intent = "make a 3-second title card that says 'Ciao Portorosso'"
    assert main(["direct", intent, "--llm", "none", "--no-memory"]) == 0
    status, body = routes.runs()
    (run,) = [r for r in body["runs"] if r["intent"] == intent]
    assert status == 200 and run["status"] == "approved" and run["iterations"] >= 1
    status, report = routes.run_report(run["run_id"])
    assert status == 200 and report["final_graph"] and report["files"]


def test_a_json_file_that_is_not_a_run_is_not_listed(studio_dirs):
    folder = routes.runs_root() / "some-tool"
    folder.mkdir(parents=True)
    (folder / "run.json").write_text(json.dumps([1, 2, 3]))
    assert routes.runs() == (200, {"runs": []})


def test_recipes_lists_the_directors_operations_and_macros():
    """It once imported a function that did not exist and answered [] for ever; now it reads the Director's
    plan language (agent/director/ops.py)."""
    from animation_studio.agent import routes as agent_routes
    from animation_studio.agent.director.ops import MACROS, OPERATIONS

    status, body = agent_routes.recipes()
    assert status == 200
    assert [o["name"] for o in body["operations"]] == list(OPERATIONS) and len(OPERATIONS) >= 10
    retime = next(o for o in body["operations"] if o["name"] == "retime")
    assert retime["doc"] and "speed" in retime["params"] and retime["needs"]
    assert {m["name"] for m in body["macros"]} == set(MACROS) and body["recipes"] == body["macros"]
    assert all(op["op"] in OPERATIONS for m in body["macros"] for op in m["ops"])
    json.dumps(body)  # served as JSON


def test_registered_routes_answer_over_http_with_the_agent_routes(monkeypatch):
    """register() serves the pack's routes and the agent's (handed over by the entry module) on aiohttp."""
    import asyncio

    from aiohttp import web
    from aiohttp.test_utils import TestClient, TestServer

    from animation_studio.agent import routes as agent_routes
    from animation_studio.nodes import bridge

    table = web.RouteTableDef()
    monkeypatch.setattr(bridge, "prompt_server_routes", lambda: table)
    monkeypatch.setattr(routes, "_registered", False)
    assert routes.register(agent_routes.ROUTES, agent_routes.POST_ROUTES) is True
    assert routes.register(agent_routes.ROUTES, agent_routes.POST_ROUTES) is False  # once only

    async def fetch_all():
        app = web.Application()
        app.add_routes(table)
        async with TestClient(TestServer(app)) as client:
            answers = {}
            for path in ("/animation_studio/recipes", "/animation_studio/health",
                         "/animation_studio/workflows/title_card?kind=api", "/animation_studio/workflows/..%2fx"):
                response = await client.get(path)
                answers[path.split("?")[0]] = (response.status, await response.json())
            graph = json.loads((WORKFLOWS / "api" / "title_card.api.json").read_text())
            for name, body in (("layout", {"graph": graph}), ("layout_bad", {"graph": []})):
                response = await client.post("/animation_studio/layout", json=body)
                answers[name] = (response.status, await response.json())
            response = await client.post("/animation_studio/layout", data=b"{not json")
            answers["layout_not_json"] = (response.status, await response.json())
            return answers

    answers = asyncio.run(fetch_all())
    status, body = answers["/animation_studio/recipes"]
    assert status == 200 and len(body["operations"]) >= 10
    assert answers["/animation_studio/health"][0] == 200
    assert answers["/animation_studio/workflows/title_card"][1]["2"]["class_type"] == "AnimStudio_SaveImage"
    assert answers["/animation_studio/workflows/..%2fx"][0] in (400, 404)
    assert answers["layout"][0] == 200 and len(answers["layout"][1]["workflow"]["nodes"]) == 4
    assert answers["layout_bad"][0] == 400 and answers["layout_not_json"][0] == 400


WORKFLOWS = Path(__file__).resolve().parent.parent / "workflows"


def test_layout_puts_a_graph_in_readable_columns_that_convert_back():
    """The Director panel's "Load graph on canvas": an API graph (core and pack nodes) -> a UI workflow."""
    from animation_studio.agent import routes as agent_routes
    from animation_studio.agent.catalog import pack_catalog
    from animation_studio.agent.convert import offline_catalog, ui_to_api

    for name in ("parody_video", "character_image_native"):
        graph = json.loads((WORKFLOWS / "api" / f"{name}.api.json").read_text())
        status, body = agent_routes.layout({"graph": graph})
        assert status == 200, body
        workflow = body["workflow"]
        def strip(g):
            return {k: {"class_type": v["class_type"], "inputs": v["inputs"]} for k, v in g.items()}

        assert strip(ui_to_api(workflow, offline_catalog(pack_catalog()))) == strip(graph)
        boxes = [(n["pos"][0], n["pos"][1], n["pos"][0] + n["size"][0], n["pos"][1] + n["size"][1])
                 for n in workflow["nodes"]]
        overlaps = [(a, b) for i, a in enumerate(boxes) for b in boxes[i + 1:]
                    if a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]]
        assert not overlaps, overlaps
        links = {n["id"]: n for n in workflow["nodes"]}
        assert all(links[src]["pos"][0] < links[dst]["pos"][0] for _, src, _, dst, _, _ in workflow["links"])


@pytest.mark.parametrize("body, words", [
    (None, "expected"), ({"graph": {}}, "expected"), ({"graph": {"1": {"class_type": "rm -rf"}}}, "unknown class_type"),
    ({"graph": {"1": {"class_type": "AnimStudio_SaveText", "inputs": {"text": ["9", 0]}}}}, "missing node"),
    ({"graph": {str(i): {"class_type": "AnimStudio_Text", "inputs": {}} for i in range(501)}}, "at most 500"),
])
def test_layout_refuses_what_is_not_a_graph(body, words):
    from animation_studio.agent import routes as agent_routes

    status, answer = agent_routes.layout(body)
    assert status == 400 and words in answer["error"]
