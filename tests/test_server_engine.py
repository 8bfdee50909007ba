"""ServerEngine against loopback fake ComfyUI servers that speak the real HTTP/WS protocol (no ComfyUI needed)."""
from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from comfyui_harness import free_port  # noqa: E402
from fake_comfyui import FakeComfyUI  # noqa: E402

from animation_studio.agent.server_engine import ServerEngine  # noqa: E402

pytestmark = pytest.mark.timeout(60)


def save_graph(text: str, prefix: str = "out/line", slow: float = 0.0) -> dict:
    graph = {"1": {"class_type": "FakeText", "inputs": {"text": text}},
             "3": {"class_type": "FakeSave", "inputs": {"text": ["2" if slow else "1", 0], "filename_prefix": prefix}}}
    if slow:
        graph["2"] = {"class_type": "FakeSlow", "inputs": {"text": ["1", 0], "seconds": slow}}
    return graph


@pytest.fixture
def fake(tmp_path):
    servers = []

    def make(name="a", **kwargs) -> FakeComfyUI:
        server = FakeComfyUI(tmp_path / f"server-{name}", **kwargs).start()
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.stop()


@pytest.fixture
def killable(tmp_path):
    """A fake server in its own process, so a test can SIGKILL it mid-run."""
    processes = []

    def make(name="k") -> tuple[str, subprocess.Popen]:
        port = free_port()
        process = subprocess.Popen([sys.executable, str(Path(__file__).with_name("fake_comfyui.py")),
                                    "--port", str(port), "--base", str(tmp_path / f"proc-{name}")],
                                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        processes.append(process)
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(url + "/system_stats", timeout=1).close()
                return url, process
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("fake server process did not start")

    yield make
    for process in processes:
        if process.poll() is None:
            process.kill()
        process.wait(10)


def engine_for(*urls, **kwargs) -> ServerEngine:
    kwargs.setdefault("timeout", 30)
    kwargs.setdefault("request_timeout", 5)
    kwargs.setdefault("silence_probe_s", 0.5)
    return ServerEngine(list(urls), **kwargs)


def test_success_downloads_output_files_into_the_run_dir(fake, tmp_path):
    server = fake()
    events = []
    result = engine_for(server.url).run(save_graph("Silenzio, Bruno!"), tmp_path / "run",
                                        on_event=lambda kind, data: events.append((kind, data)))
    assert result.status == "success", result.message()
    assert result.executed == ["1", "3"]
    assert result.outputs["3"]["text"] == ["Silenzio, Bruno!"]
    # The output file came back under its subfolder; the temp preview did not.
    assert result.files == [str(tmp_path / "run" / "out" / "line_00001.txt")]
    assert Path(result.files[0]).read_text() == "Silenzio, Bruno!"
    assert not (tmp_path / "run" / "preview.txt").exists()
    kinds = [k for k, _ in events]
    assert kinds.index("execution_start") < kinds.index("executed") < kinds.index("execution_success")
    assert events[-1] == ("executing", {"node": None, "prompt_id": server.received[0]["prompt_id"]})
    assert server.received[0]["client_id"], "the prompt must carry the client_id the websocket uses"


def test_second_run_into_the_same_dir_never_overwrites(fake, tmp_path):
    server = fake()
    engine = engine_for(server.url)
    first = engine.run(save_graph("one"), tmp_path / "run")
    (server.base_dir / "output" / "out" / "line_00001.txt").unlink()  # the server reuses the name
    second = engine.run(save_graph("two"), tmp_path / "run")
    assert first.ok and second.ok
    assert Path(first.files[0]).read_text() == "one"
    assert Path(second.files[0]).name == "line_00001_1.txt" and Path(second.files[0]).read_text() == "two"


def test_validation_errors_come_back_as_invalid_with_node_errors(fake, tmp_path):
    server = fake()
    graph = save_graph("x")
    del graph["3"]["inputs"]["filename_prefix"]
    result = engine_for(server.url).run(graph, tmp_path / "run")
    assert result.status == "invalid"
    assert result.error["type"] == "prompt_outputs_failed_validation"
    error = result.node_errors["3"]["errors"][0]
    assert error["type"] == "required_input_missing" and error["extra_info"]["input_name"] == "filename_prefix"
    assert "filename_prefix" in result.message() and "node 3" in result.message()
    assert server.received == []

    unknown = engine_for(server.url).run({"1": {"class_type": "NoSuchNode", "inputs": {}}})
    assert unknown.status == "invalid" and unknown.error["type"] == "invalid_prompt"
    assert "NoSuchNode" in unknown.message()


def test_execution_error_names_the_node_and_the_exception(fake, tmp_path):
    server = fake()
    graph = save_graph("bad")
    graph["2"] = {"class_type": "FakeFail", "inputs": {"text": ["1", 0]}}
    graph["3"]["inputs"]["text"] = ["2", 0]
    result = engine_for(server.url).run(graph, tmp_path / "run")
    assert result.status == "error"
    assert result.error["type"] == "execution_error"
    assert result.error["node_id"] == "2" and result.error["exception_type"] == "ValueError"
    assert "FakeFail refused 'bad'" in result.message()
    assert result.files == []


def test_refused_connection_is_reported_with_the_address():
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    started = time.monotonic()
    result = engine_for(url).run(save_graph("x"))
    assert time.monotonic() - started < 5
    assert result.status == "error" and result.error["type"] == "server_unreachable"
    assert url in result.error["message"]


def test_a_server_that_never_answers_times_out(fake):
    server = fake(hang=True)
    started = time.monotonic()
    result = engine_for(server.url, request_timeout=0.5).run(save_graph("x"))
    assert time.monotonic() - started < 10
    assert result.status == "error" and result.error["type"] == "server_timeout"
    assert "did not answer" in result.error["message"]
    assert server.url in result.error["message"]


def test_a_run_longer_than_the_timeout_is_stopped_and_interrupted_on_the_server(fake):
    server = fake()
    started = time.monotonic()
    result = engine_for(server.url, timeout=1.0, silence_probe_s=0.2).run(save_graph("x", slow=20))
    assert time.monotonic() - started < 6
    assert result.status == "error" and result.error["type"] == "timeout"
    assert {"prompt_id": server.received[0]["prompt_id"]} in server.interrupts


def test_a_server_killed_mid_run_is_reported_and_the_prompt_retried_elsewhere(killable, fake, tmp_path):
    doomed_url, doomed = killable()
    survivor = fake(busy=1)  # busier, so the doomed server gets the prompt first
    events = []

    def on_event(kind, data):
        events.append(kind)
        if kind == "execution_start" and doomed.poll() is None:
            doomed.kill()  # SIGKILL after execution_start, as a crash would

    result = engine_for(doomed_url, survivor.url).run(save_graph("survives", slow=0.3), tmp_path / "run",
                                                      on_event=on_event)
    assert doomed.poll() is not None
    assert result.status == "success", result.message()
    assert result.engine == f"comfyui:{survivor.url}"
    assert Path(result.files[0]).read_text() == "survives"
    assert events.count("execution_start") == 2


def test_a_killed_single_server_is_reported_as_died(killable):
    url, process = killable()

    def on_event(kind, data):
        if kind == "execution_start":
            process.kill()

    result = engine_for(url).run(save_graph("x", slow=5), on_event=on_event)
    assert result.status == "error" and result.error["type"] == "server_died"
    assert url in result.error["message"]


def test_each_prompt_goes_to_the_least_busy_server(fake):
    busy, idle, medium = fake("busy", busy=3), fake("idle"), fake("medium", busy=1)
    result = engine_for(busy.url, idle.url, medium.url).run(save_graph("x"))
    assert result.ok and result.engine == f"comfyui:{idle.url}"
    assert len(idle.received) == 1 and not busy.received and not medium.received


def test_run_many_spreads_parallel_prompts_over_idle_servers(fake, tmp_path):
    a, b = fake("a"), fake("b")
    graphs = [save_graph(f"shot {i}", slow=0.3) for i in range(4)]
    results = engine_for(a.url, b.url).run_many(graphs, [tmp_path / f"run{i}" for i in range(4)])
    assert [r.status for r in results] == ["success"] * 4
    assert len(a.received) == 2 and len(b.received) == 2
    assert [Path(r.files[0]).read_text() for r in results] == [f"shot {i}" for i in range(4)]


def test_run_many_with_one_server_down_keeps_the_others_results(fake, tmp_path):
    a, b = fake("a"), fake("b")
    down = f"http://127.0.0.1:{free_port()}"
    graphs = [save_graph(f"shot {i}") for i in range(5)]
    results = engine_for(a.url, down, b.url).run_many(graphs, [tmp_path / f"run{i}" for i in range(5)])
    assert [r.status for r in results] == ["success"] * 5
    assert len(a.received) + len(b.received) == 5
    assert [Path(r.files[0]).read_text() for r in results] == [f"shot {i}" for i in range(5)]


def test_run_many_when_a_server_dies_keeps_every_result(killable, fake, tmp_path):
    doomed_url, doomed = killable()
    a = fake("a")
    killed = threading.Event()

    def on_event(kind, data):
        if kind == "progress" and not killed.is_set():
            killed.set()
            doomed.kill()

    graphs = [save_graph(f"shot {i}", slow=0.4) for i in range(4)]
    results = engine_for(doomed_url, a.url).run_many(graphs, [tmp_path / f"run{i}" for i in range(4)],
                                                     on_event=on_event)
    assert killed.is_set()
    assert [r.status for r in results] == ["success"] * 4, [r.message() for r in results]
    assert [Path(r.files[0]).read_text() for r in results] == [f"shot {i}" for i in range(4)]


def test_interrupt_stops_the_running_prompt(fake):
    server = fake()
    engine = engine_for(server.url)
    progress = threading.Event()
    holder = {}
    runner = threading.Thread(target=lambda: holder.setdefault(
        "result", engine.run(save_graph("x", slow=20), on_event=lambda k, d: k == "progress" and progress.set())))
    runner.start()
    assert progress.wait(10)
    started = time.monotonic()
    engine.interrupt()
    runner.join(10)
    assert time.monotonic() - started < 3
    result = holder["result"]
    assert result.status == "interrupted" and result.error["node_id"] == "2"
    assert server.interrupts == [{"prompt_id": server.received[0]["prompt_id"]}]


def test_catalog_and_validate_use_the_servers_object_info(fake):
    server = fake()
    engine = engine_for(f"http://127.0.0.1:{free_port()}", server.url)  # the first is down
    assert "FakeSave" in engine.catalog()
    graph = save_graph("x")
    del graph["3"]["inputs"]["filename_prefix"]
    report = engine.validate(graph)
    assert not report.ok
    assert report.node_errors["3"]["errors"][0]["type"] == "required_input_missing"


def test_put_input_uploads_to_every_server(fake, tmp_path):
    a, b = fake("a"), fake("b")
    source = tmp_path / "luca.png"
    source.write_bytes(os.urandom(64))
    name = engine_for(a.url, b.url).put_input(source)
    assert name == "animation_studio/luca.png"
    for server in (a, b):
        assert (server.base_dir / "input" / "animation_studio" / "luca.png").read_bytes() == source.read_bytes()


def test_a_graph_with_one_invalid_output_is_invalid_but_keeps_what_ran(fake, tmp_path):
    server = fake()
    graph = save_graph("kept")
    graph["4"] = {"class_type": "FakeSave", "inputs": {"text": ["1", 0]}}  # filename_prefix missing
    result = engine_for(server.url).run(graph, tmp_path / "run")
    # ComfyUI answers 200, drops output 4 and runs output 3; the engine says invalid like the embedded one would.
    assert result.status == "invalid"
    assert result.error["type"] == "prompt_outputs_failed_validation"
    assert result.node_errors["4"]["errors"][0]["type"] == "required_input_missing"
    assert result.executed == ["1", "3"]
    assert [Path(p).read_text() for p in result.files] == ["kept"]


def test_when_every_server_is_down_the_error_names_each_of_them():
    urls = [f"http://127.0.0.1:{free_port()}" for _ in range(2)]
    result = engine_for(*urls).run(save_graph("x"))
    assert result.status == "error" and result.error["type"] == "server_unreachable"
    assert all(url in result.error["message"] for url in urls)
