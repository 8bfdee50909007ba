"""The command line: exit codes, one clear message, run folders that never overwrite."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
TITLE = ROOT / "workflows" / "api" / "title_card.api.json"


def cli(*args, cwd, env=None):
    e = dict(os.environ, **(env or {}))
    return subprocess.run([sys.executable, "-m", "animation_studio.agent.cli", *map(str, args)], cwd=cwd,
                          capture_output=True, text=True, env=e, timeout=300)


@pytest.fixture
def env(studio_dirs):
    return {f"ANIMATION_STUDIO__PATHS__{k.upper()}": str(v) for k, v in
            {"input": studio_dirs["input"], "output": studio_dirs["outputs"], "temp": studio_dirs["temp"],
             "models": studio_dirs["models"]}.items()}


def test_run_writes_run_folder_with_artifacts_and_record(tmp_path, env, studio_dirs):
    out = cli("run", TITLE, "--set", '3.text="Ciao Luca"', cwd=tmp_path, env=env)
    assert out.returncode == 0, out.stderr
    runs = list(studio_dirs["outputs"].iterdir())
    assert len(runs) == 1
    record = json.loads((runs[0] / "run.json").read_text())
    assert record["status"] == "success" and record["engine"] == "embedded"
    assert record["graph"]["3"]["inputs"]["text"] == "Ciao Luca"
    assert set(record["timings"]) == {"1", "2", "3", "4"}
    files = [Path(p) for p in record["files"]]
    assert any(p.suffix == ".png" for p in files) and all(p.is_relative_to(runs[0]) for p in files)
    assert (runs[0] / "title_card" / "line_00001.txt").read_text() == "Ciao Luca"
    # a second run gets its own folder; nothing from the first is touched
    before = {p: p.stat().st_mtime_ns for p in runs[0].rglob("*")}
    assert cli("run", TITLE, "--out", studio_dirs["outputs"], cwd=tmp_path, env=env).returncode == 0
    assert len(list(studio_dirs["outputs"].iterdir())) == 2
    assert before == {p: p.stat().st_mtime_ns for p in runs[0].rglob("*")}


@pytest.mark.parametrize("content, fragment", [
    ("{not json", "not valid JSON"),
    ('{"1": {"class_type": "AnimStudio_Text", "inputs": {"text": ["1", 0]}}, '
     '"2": {"class_type": "AnimStudio_SaveText", "inputs": {"text": ["1", 0], "filename_prefix": "x"}}}',
     "cycle"),
    ('{"1": {"class_type": "MakeItPixar", "inputs": {}}}', "node MakeItPixar does not exist. Node ID '#1'"),
    ('{"1": {"class_type": "AnimStudio_SaveText", "inputs": {"text": ["7", 0], "filename_prefix": "x"}}}',
     "node 1 (AnimStudio_SaveText), input 'text': Linked node 7 does not exist"),
    ('{"1": {"class_type": "AnimStudio_SolidImage", "inputs": {"width": "wide", "height": 8, "top_color": "red",'
     ' "bottom_color": "red"}}, "2": {"class_type": "AnimStudio_SaveImage", "inputs": {"images": ["1", 0],'
     ' "filename_prefix": "x"}}}', "node 1 (AnimStudio_SolidImage), input 'width'"),
    ('{"1": {"class_type": "AnimStudio_LoadImage", "inputs": {"image": "../../etc/passwd"}},'
     ' "2": {"class_type": "AnimStudio_SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "x"}}}',
     "outside the input folder"),
])
def test_bad_input_gets_one_clear_message(tmp_path, env, content, fragment):
    wf = tmp_path / "wf.json"
    wf.write_text(content)
    for command in ("validate", "run"):
        out = cli(command, wf, cwd=tmp_path, env=env)
        assert out.returncode != 0
        assert fragment in out.stderr, out.stderr
        assert "Traceback" not in out.stderr


def test_unreachable_server_is_reported(tmp_path, env):
    out = cli("run", TITLE, "--engine", "http://127.0.0.1:9", cwd=tmp_path, env=env)
    assert out.returncode != 0 and "Traceback" not in out.stderr
    assert "127.0.0.1:9" in out.stderr


def test_set_rejects_unknown_node(tmp_path, env):
    out = cli("run", TITLE, "--set", "42.text=x", cwd=tmp_path, env=env)
    assert out.returncode == 2 and "node '42' is not in the graph" in out.stderr


def test_nodes_lists_the_catalog(tmp_path, env):
    out = cli("nodes", "--json", cwd=tmp_path, env=env)
    assert out.returncode == 0
    info = json.loads(out.stdout)
    assert info["AnimStudio_SaveImage"]["output_node"] is True
