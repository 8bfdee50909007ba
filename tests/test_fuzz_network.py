"""Hostile servers and hostile URLs, on loopback only (bounded in count and time).

Servers written here with raw sockets: an answer that never ends, one that trickles a byte at a time,
one that declares a giant body, garbage instead of JSON, an error page full of secrets, a redirect.
Every HTTP client of the pack (configs/net.py underneath the ComfyUI, Ollama, OpenAI-compatible and
GPT-SoVITS clients) must end within its deadline, refuse oversized answers, and never copy more than a
short excerpt of what the server said. Every node input that names a server must refuse a server the
settings do not configure, before any request leaves the process.
"""
from __future__ import annotations

import json
import socket
import threading
import time

import pytest

from animation_studio.agent import llm
from animation_studio.configs import net
from animation_studio.configs.settings import DEFAULT_CONFIG, load_settings_from

SECRET = "TOP-SECRET-INTERNAL-VALUE"
SLACK_S = 2.5  # scheduling slack on a shared, loaded machine: a deadline may end this late, never more


class RawServer:
    """A loopback TCP server whose every connection is handled by `behaviour(conn)`; counts connections."""

    def __init__(self, behaviour):
        self.behaviour = behaviour
        self.connections = 0
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.stop = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn):
        try:
            _read_request(conn)
            self.behaviour(conn, self.stop)
        except OSError:
            pass
        finally:
            conn.close()

    def close(self):
        self.stop.set()
        self.sock.close()


def _read_request(conn) -> bytes:
    conn.settimeout(5)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            break
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")), 0)
    while len(rest) < length:
        chunk = conn.recv(65536)
        if not chunk:
            break
        rest += chunk
    return data


def endless(conn, stop):
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n{\"models\": [")
    block = b'{"name": "x"},' * 4096
    while not stop.is_set():
        conn.sendall(block)


def trickle(conn, stop):
    for byte in b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 40\r\n\r\n" + b" " * 40:
        if stop.is_set():
            return
        conn.sendall(bytes([byte]))
        time.sleep(0.4)


def silent(conn, stop):
    stop.wait(30)


def giant_length(conn, stop):
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 900000000000\r\n\r\n{")
    stop.wait(30)


def garbage(conn, stop):
    body = b"\x00\xff<html>" + SECRET.encode() * 2000 + b"\x1b[31m"
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body) + body)


def secret_error(conn, stop):
    body = ('{"error": {"message": "' + SECRET * 5000 + '"}, "message": "' + SECRET * 5000 + '"}').encode()
    conn.sendall(b"HTTP/1.1 500 Internal Server Error\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n"
                 % len(body) + body)


def half_close(conn, stop):
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 5000\r\n\r\n{\"ab")


HOSTILE = {"endless": endless, "trickle": trickle, "silent": silent, "giant_length": giant_length,
           "garbage": garbage, "secret_error": secret_error, "half_close": half_close}


@pytest.fixture
def hostile(monkeypatch):
    """Start hostile servers; each is allowed by the settings (so the test reaches the transfer itself)."""
    servers = []

    def start(name):
        server = RawServer(HOSTILE[name])
        servers.append(server)
        monkeypatch.setenv("ANIMATION_STUDIO__NETWORK__ALLOWED_URLS", "[" + ", ".join(s.url for s in servers) + "]")
        return server

    monkeypatch.setenv("ANIMATION_STUDIO__NETWORK__MAX_RESPONSE_MB", "2")
    yield start
    for server in servers:
        server.close()


def _bounded(call, deadline_s: float):
    """Run `call`, which must fail; returns (exception, seconds) and asserts the deadline held."""
    started = time.monotonic()
    with pytest.raises(Exception) as info:
        call()
    seconds = time.monotonic() - started
    assert seconds < deadline_s + SLACK_S, f"took {seconds:.1f} s for a {deadline_s} s deadline"
    message = str(info.value)
    assert len(message) < 800, f"{len(message)} characters: {message[:300]}"
    assert SECRET * 9 not in message  # at most a short excerpt of what the server sent
    assert "\x00" not in message and "\x1b" not in message
    return info.value, seconds


# ---------------------------------------------------------------- every client against every hostile server
def _comfyui_catalog(url):
    from animation_studio.agent.server_engine import ServerEngine

    return ServerEngine(url, timeout=5, request_timeout=2.0).catalog()


def _openai_chat(url):
    settings = load_settings_from([DEFAULT_CONFIG], {})
    return llm.make_backend(f"openai:{url}/v1#m", settings=settings).chat([{"role": "user", "content": "hi"}],
                                                                          timeout=2.0)


def _ollama_chat(url):
    settings = load_settings_from([DEFAULT_CONFIG], {"ANIMATION_STUDIO__LLM__OLLAMA_HOST": url})
    return llm.make_backend("ollama:m", settings=settings).chat([{"role": "user", "content": "hi"}], timeout=2.0)


def _sovits_tts(url):
    from animation_studio.nodes.voice import sovits

    return sovits.tts(url, "hello", "en", "ref.wav", "hi", "en", timeout=2.0)


CLIENTS = {"comfyui_object_info": _comfyui_catalog, "openai_chat": _openai_chat, "ollama_chat": _ollama_chat,
           "gpt_sovits_tts": _sovits_tts}


@pytest.mark.timeout(60)
@pytest.mark.parametrize("behaviour", sorted(HOSTILE))
@pytest.mark.parametrize("client", sorted(CLIENTS))
def test_every_client_survives_every_hostile_server(client, behaviour, hostile):
    server = hostile(behaviour)
    error, seconds = _bounded(lambda: CLIENTS[client](server.url), 2.0)
    # A clear error of the client's own kind, never a bare socket or JSON exception.
    assert not isinstance(error, (socket.timeout, ValueError)) or isinstance(error, net.URLNotAllowed) is False
    assert type(error).__name__ in ("ServerError", "LLMError", "LLMUnavailable", "LLMTimeout", "LLMModelMissing",
                                    "ServerUnavailable", "RuntimeError"), (type(error), error)


@pytest.mark.timeout(60)
def test_a_trickling_server_cannot_hold_a_request_past_its_total_deadline(hostile):
    """Before: the timeout was per read, so one byte every 5 s held `nodes --engine URL` beyond 240 s."""
    server = hostile("trickle")
    error, seconds = _bounded(lambda: net.request("GET", server.url + "/object_info", timeout=1.5), 1.5)
    assert isinstance(error, net.NetError) and error.kind == "timeout"
    assert "whole-request deadline" in str(error)
    print(f"\ntrickling server cut off after {seconds:.2f} s (deadline 1.5 s)")


@pytest.mark.timeout(60)
def test_an_endless_answer_is_cut_off_at_the_cap_without_growing_memory(hostile):
    """Before: `nodes --engine URL` and the OpenAI backend grew an endless answer to 3 GB in seconds."""
    import tracemalloc

    server = hostile("endless")
    tracemalloc.start()
    try:
        error, seconds = _bounded(lambda: net.request("GET", server.url + "/object_info", timeout=20), 20)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert isinstance(error, net.NetError) and error.kind == "too_large"
    print(f"\nendless answer cut off at 2 MB after {seconds:.2f} s; peak Python memory {peak / 2**20:.1f} MB")
    assert peak < 12 * 2**20


@pytest.mark.timeout(60)
def test_nodes_engine_url_against_an_endless_server_is_one_line(hostile, capsys):
    from animation_studio.agent.cli import main

    server = hostile("endless")
    started = time.monotonic()
    code = main(["nodes", "--engine", server.url])
    err = capsys.readouterr().err
    assert code != 0 and time.monotonic() - started < 30
    assert len(err.strip().splitlines()) == 1 and "MB" in err, err


def test_a_redirect_is_not_followed(monkeypatch):
    victim = RawServer(lambda conn, stop: conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}"))
    redirect = RawServer(lambda conn, stop: conn.sendall(
        f"HTTP/1.1 302 Found\r\nLocation: {victim.url}/secret\r\nContent-Length: 0\r\n\r\n".encode()))
    try:
        response = net.request("GET", redirect.url + "/x", timeout=2)
        assert response.status == 302 and victim.connections == 0
    finally:
        victim.close()
        redirect.close()


# ---------------------------------------------------------------- hostile URLs in every node input that names a server
HOSTILE_URLS = [
    "http://127.0.0.1:22/",                       # loopback, but not a configured server
    "http://169.254.169.254/latest/meta-data/",   # cloud metadata
    "http://localhost:9880",                      # the configured server under another name
    "http://127.1:9880", "http://2130706433:9880", "http://[::1]:9880", "http://0.0.0.0:9880",
    "http://127.0.0.1:9880@evil.example/",        # userinfo trick
    "http://user:pw@127.0.0.1:9880",
    "file:///etc/passwd", "gopher://127.0.0.1:9880/_x", "ftp://127.0.0.1/", "javascript:alert(1)",
    "http://127.0.0.1:9880\r\nX-Injected: 1", "http://127.0.0.1:9880 /x", "http://%31%32%37.0.0.1:9880",
    "http://127.0.0.1:99999", "http://", "http:///x", "//127.0.0.1:9880", "\x00http://127.0.0.1:9880",
    "http://evil.example:9880",
]


def _url_inputs(catalog) -> list[tuple[str, str]]:
    """(class, input) for every node input that names a server: *url*/*host*/*server*/*endpoint*, and `llm`."""
    from animation_studio.agent.director.security import URL_INPUT_HINTS

    found = []
    for name in catalog.names():
        for input_name, spec in catalog[name].inputs.items():
            if spec.type == "STRING" and (any(h in input_name.lower() for h in URL_INPUT_HINTS) or input_name == "llm"):
                found.append((name, input_name))
    return found


@pytest.fixture(scope="module")
def pack():
    from animation_studio.agent.catalog import pack_catalog

    return pack_catalog()


def test_the_pack_has_url_inputs_and_the_director_check_knows_them(pack):
    inputs = _url_inputs(pack)
    assert ("AnimStudio_GPTSoVITSTTS", "server_url") in inputs and ("AnimStudio_CharacterVoice", "server_url") in inputs
    assert any(name == "llm" for _, name in inputs)


@pytest.mark.parametrize("url", HOSTILE_URLS, ids=range(len(HOSTILE_URLS)))
def test_the_director_security_check_refuses_a_hostile_url_in_every_url_input(url, pack):
    from animation_studio.agent.director.security import check_graph

    for class_type, input_name in _url_inputs(pack):
        value = f"openai:{url}#m" if input_name == "llm" else url
        graph = {"7": {"class_type": class_type, "inputs": {input_name: value}}}
        problems = check_graph(graph, pack)
        assert any(p.startswith(f"node 7 input '{input_name}'") for p in problems), (class_type, input_name, problems)


@pytest.mark.parametrize("weights", ["../../etc/passwd", "/etc/shadow", "C:\\Windows\\x.ckpt", "~root/.ssh/id_rsa",
                                     "GPT_weights/../../x.ckpt", "\\\\host\\share\\x.pth", "a\x00.ckpt"])
def test_the_director_security_check_refuses_weight_paths_outside_the_voice_servers_folder(weights, pack):
    from animation_studio.agent.director.security import check_graph

    for name in ("gpt_weights", "sovits_weights"):
        graph = {"3": {"class_type": "AnimStudio_GPTSoVITSTTS", "inputs": {name: weights}}}
        assert any(p.startswith(f"node 3 input '{name}'") for p in check_graph(graph, pack)), (name, weights)
    assert check_graph({"3": {"class_type": "AnimStudio_GPTSoVITSTTS",
                              "inputs": {"gpt_weights": "GPT_weights_v2/luca-e15.ckpt",
                                         "server_url": "http://127.0.0.1:9880"}}}, pack) == []


@pytest.mark.timeout(60)
def test_a_graph_cannot_make_the_voice_nodes_call_an_unconfigured_server(studio_dirs):
    """The server-side request forgery of issue 15: the node refuses before any byte leaves the process."""
    from animation_studio.nodes.voice import CharacterVoice, GPTSoVITSTTS

    import numpy as np
    import soundfile as sf

    victim = RawServer(secret_error)
    tone = (0.3 * np.sin(np.linspace(0, 2 * np.pi * 440, 22050))).astype(np.float32)
    sf.write(studio_dirs["input"] / "ref.wav", tone, 22050)
    clip = studio_dirs["models"] / "voices" / "luca" / "determined.wav"
    clip.parent.mkdir(parents=True)
    sf.write(clip, tone, 22050)
    try:
        for url in [victim.url] + HOSTILE_URLS[:6]:
            with pytest.raises(net.URLNotAllowed, match="server_url"):
                GPTSoVITSTTS().run("Hello", "en", "ref.wav", "hi", "en", "", "", url)
            with pytest.raises(net.URLNotAllowed, match="server_url"):
                CharacterVoice().run("Hello", "determined", 0.8, "luca", "en", "gpt_sovits", 0, url)
        assert victim.connections == 0
    finally:
        victim.close()


def test_a_graph_cannot_point_the_director_node_at_an_unconfigured_llm_server():
    with pytest.raises(net.URLNotAllowed, match="input 'llm'"):
        llm.check_graph_spec("openai:http://169.254.169.254/v1#m")
    llm.check_graph_spec("openai:http://127.0.0.1:8000/v1#m")  # the configured one
    llm.check_graph_spec("ollama:qwen2.5vl")  # the configured host


@pytest.mark.parametrize("url", HOSTILE_URLS, ids=range(len(HOSTILE_URLS)))
def test_check_url_refuses_every_hostile_url(url):
    with pytest.raises(net.URLNotAllowed):
        net.check_url(url)


def test_the_configured_servers_are_allowed_and_nothing_else_by_default():
    settings = load_settings_from([DEFAULT_CONFIG], {})
    for url in ("http://127.0.0.1:9880", "http://127.0.0.1:9880/", "http://127.0.0.1:11434",
                "http://127.0.0.1:8000/v1", "HTTP://127.0.0.1:8000/v1"):
        assert net.url_allowed(url, settings), url
    extra = load_settings_from([DEFAULT_CONFIG], {"ANIMATION_STUDIO__NETWORK__ALLOWED_URLS": "[http://10.0.0.5:9880]"})
    assert net.url_allowed("http://10.0.0.5:9880", extra) and not net.url_allowed("http://10.0.0.5:9881", extra)


@pytest.mark.parametrize("answer", ['[]', '{"KSampler": 5}', '{"KSampler": {"input": [1, 2]}}',
                                    '{"KSampler": {"input": {"required": 7}}}', '{"KSampler": {"output": 3}}', '"x"'])
def test_an_object_info_that_is_json_but_not_node_schemas_is_one_clear_error(answer, monkeypatch):
    from animation_studio.agent.server_engine import ServerEngine, ServerError

    body = answer.encode()
    server = RawServer(lambda conn, stop: conn.sendall(
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body) + body))
    try:
        with pytest.raises(ServerError, match=server.url) as info:
            ServerEngine(server.url, timeout=5, request_timeout=2.0).catalog()
        assert len(str(info.value)) < 400
    finally:
        server.close()


@pytest.mark.timeout(60)
def test_a_comfyui_error_full_of_text_reaches_the_run_record_only_as_an_excerpt(tmp_path):
    """execution_error carries the server's exception text and traceback: both are kept short."""
    import sys as _sys
    from pathlib import Path as _Path

    _sys.path.insert(0, str(_Path(__file__).parent))
    from fake_comfyui import FakeComfyUI

    from animation_studio.agent.server_engine import ServerEngine

    server = FakeComfyUI(tmp_path / "server").start()
    try:
        graph = {"1": {"class_type": "FakeText", "inputs": {"text": SECRET * 2000}},
                 "2": {"class_type": "FakeFail", "inputs": {"text": ["1", 0]}},
                 "3": {"class_type": "FakeSave", "inputs": {"text": ["2", 0], "filename_prefix": "x"}}}
        result = ServerEngine(server.url, timeout=30).run(graph, tmp_path / "run")
        assert result.status == "error" and result.error["node_id"] == "2"
        record = json.dumps(result.to_json())
        assert SECRET in record and record.count(SECRET) < 40, record.count(SECRET)
        assert len(result.message()) < 500
    finally:
        server.stop()


# ---------------------------------------------------------------- say when the LLM is not used (issue 15 item 7)
@pytest.mark.timeout(300)
@pytest.mark.parametrize("server_kind", ["unreachable", "garbage"])
def test_direct_says_when_the_configured_llm_was_not_used(server_kind, studio_dirs, tmp_path, capsys, monkeypatch):
    """Before: an unreachable or garbage-answering Ollama/OpenAI backend fell back to keywords silently, exit 0."""
    from animation_studio.agent.cli import main

    server = RawServer(garbage) if server_kind == "garbage" else None
    url = server.url if server else f"http://127.0.0.1:{_free_port()}"
    try:
        code = main(["direct", "a wibbly glorious title card", "--llm", f"openai:{url}/v1#planner", "--no-memory",
                     "--out", str(tmp_path / "runs")])
    finally:
        if server:
            server.close()
    err = capsys.readouterr().err
    assert code != 0, err[-800:]
    assert f"llm: openai:{url}/v1#planner was configured but NOT used" in err, err[-800:]
    (run_dir,) = (tmp_path / "runs").iterdir()
    record_text = (run_dir / "run.json").read_text()
    record = json.loads(record_text)
    assert record["llm"]["configured"] == f"openai:{url}/v1#planner" and record["llm"]["used"] is False
    assert record["llm"]["calls"] >= 1 and record["llm"]["why"]
    # What the garbage server sent appears at most as short excerpts, never whole.
    assert SECRET * 9 not in record_text and SECRET * 9 not in err and record_text.count(SECRET) < 100


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
