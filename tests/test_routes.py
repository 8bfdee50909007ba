"""The pack's HTTP routes as plain functions: validated input, nothing outside the pack's folders."""
import json

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
    assert routes.register(agent_routes.ROUTES) is True
    assert routes.register(agent_routes.ROUTES) is False  # once only

    async def fetch_all():
        app = web.Application()
        app.add_routes(table)
        async with TestClient(TestServer(app)) as client:
            answers = {}
            for path in ("/animation_studio/recipes", "/animation_studio/health",
                         "/animation_studio/workflows/title_card?kind=api", "/animation_studio/workflows/..%2fx"):
                response = await client.get(path)
                answers[path.split("?")[0]] = (response.status, await response.json())
            return answers

    answers = asyncio.run(fetch_all())
    status, body = answers["/animation_studio/recipes"]
    assert status == 200 and len(body["operations"]) >= 10
    assert answers["/animation_studio/health"][0] == 200
    assert answers["/animation_studio/workflows/title_card"][1]["2"]["class_type"] == "AnimStudio_SaveImage"
    assert answers["/animation_studio/workflows/..%2fx"][0] in (400, 404)
