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

    assert main(["direct", "Luca running, excited, sunny Italian seaside", "--llm", "none", "--no-memory"]) == 0
    status, body = routes.runs()
    (run,) = [r for r in body["runs"] if r["intent"] == "Luca running, excited, sunny Italian seaside"]
    assert status == 200 and run["status"] == "approved" and run["iterations"] >= 1
    status, report = routes.run_report(run["run_id"])
    assert status == 200 and report["final_graph"] and report["files"]


def test_a_json_file_that_is_not_a_run_is_not_listed(studio_dirs):
    folder = routes.runs_root() / "some-tool"
    folder.mkdir(parents=True)
    (folder / "run.json").write_text(json.dumps([1, 2, 3]))
    assert routes.runs() == (200, {"runs": []})
