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


# ---------------------------------------------------------------- a hostile ComfyUI websocket (/ws had no size cap)
def _ws_frame(payload: bytes, opcode: int = 0x1) -> bytes:
    """One unmasked server frame (RFC 6455 section 5.2)."""
    size = len(payload)
    if size < 126:
        head = bytes([0x80 | opcode, size])
    elif size < 1 << 16:
        head = bytes([0x80 | opcode, 126]) + size.to_bytes(2, "big")
    else:
        head = bytes([0x80 | opcode, 127]) + size.to_bytes(8, "big")
    return head + payload


def _ws_accept(request: bytes) -> bytes:
    import base64
    import hashlib

    key = next(line.split(b":", 1)[1].strip() for line in request.split(b"\r\n")
               if line.lower().startswith(b"sec-websocket-key"))
    accept = base64.b64encode(hashlib.sha1(key + b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11").digest())
    return (b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Accept: " + accept + b"\r\n\r\n")


def ws_giant_frame(conn, stop):
    """Declares a 1 TB text frame and streams it as fast as the socket takes it."""
    conn.sendall(b"\x81\x7f" + (1 << 40).to_bytes(8, "big"))
    block = b"x" * 65536
    while not stop.is_set():
        conn.sendall(block)


def ws_endless_frames(conn, stop):
    """Small, valid progress messages for the prompt, forever."""
    frame = _ws_frame(json.dumps({"type": "progress", "data": {"prompt_id": "p1", "node": "1", "value": 1,
                                                               "max": 2, "pad": "x" * 8000}}).encode())
    while not stop.is_set():
        conn.sendall(frame * 16)


def ws_trickled_frame(conn, stop):
    """A 1 MB frame sent one byte every 0.2 s: each read is quick, the frame never ends."""
    conn.sendall(b"\x81\x7f" + (1 << 20).to_bytes(8, "big"))
    while not stop.wait(0.2):
        conn.sendall(b"x")


def ws_not_utf8_then_done(conn, stop):
    """A text frame that is not UTF-8 (skipped), a node the graph does not have (ignored), then the end."""
    conn.sendall(_ws_frame(b"\xff\xfe{\"type\": \"executing\"}") + _ws_frame(json.dumps(
        {"type": "executing", "data": {"node": "999", "prompt_id": "p1"}}).encode()) + _ws_frame(json.dumps(
        {"type": "executing", "data": {"node": None, "prompt_id": "p1"}}).encode()))
    stop.wait(5)


class HostileComfyUI(RawServer):
    """Answers ComfyUI's HTTP routes sanely (the prompt is queued and running) and misbehaves on /ws."""

    def __init__(self, ws_behaviour):
        self.ws_behaviour = ws_behaviour
        self.interrupted = 0
        super().__init__(None)

    def _serve(self, conn):
        try:
            request = _read_request(conn)
            line = request.split(b"\r\n", 1)[0].decode("latin-1")
            if " /ws" in line:
                conn.sendall(_ws_accept(request))
                self.ws_behaviour(conn, self.stop)
                return
            if line.startswith("POST /interrupt"):
                self.interrupted += 1
            body = {"POST /prompt": {"prompt_id": "p1", "number": 1, "node_errors": {}},
                    "GET /queue": {"queue_running": [[0, "p1", {}, {}, []]], "queue_pending": []}}
            answer = json.dumps(next((v for k, v in body.items() if line.startswith(k)), {})).encode()
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n"
                         % len(answer) + answer)
        except OSError:
            pass
        finally:
            conn.close()


def _run_on_hostile_ws(behaviour, timeout_s: float):
    from animation_studio.agent.server_engine import ServerEngine

    server = HostileComfyUI(behaviour)
    graph = {"1": {"class_type": "FakeText", "inputs": {"text": "hi"}}}
    started = time.monotonic()
    try:
        result = ServerEngine(server.url, timeout=timeout_s, request_timeout=2.0, silence_probe_s=1.0).run(graph)
    finally:
        server.close()
    return result, time.monotonic() - started, server


@pytest.mark.timeout(60)
def test_a_giant_websocket_frame_is_cut_off_at_the_message_cap(monkeypatch):
    """Before: websocket-client read a frame of any declared length into memory (1 TB here) until the run's
    timeout; now the message cap (network.max_response_mb) ends it with one clear error."""
    import tracemalloc

    monkeypatch.setenv("ANIMATION_STUDIO__NETWORK__MAX_RESPONSE_MB", "2")
    tracemalloc.start()
    try:
        result, seconds, server = _run_on_hostile_ws(ws_giant_frame, 20)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    message = result.error["message"]
    assert result.status == "error" and "websocket message grew past the 2.0 MB" in message, result.error
    assert server.url in message and len(message) < 400
    assert seconds < 20 and peak < 16 * 2**20, (seconds, peak)
    assert server.interrupted == 1  # the prompt is stopped on the server too
    print(f"\ngiant frame cut off after {seconds:.2f} s; peak Python memory {peak / 2**20:.1f} MB")


@pytest.mark.timeout(60)
def test_an_endless_stream_of_websocket_frames_is_cut_off_at_the_run_cap(monkeypatch):
    monkeypatch.setenv("ANIMATION_STUDIO__NETWORK__MAX_WS_RUN_MB", "4")
    result, seconds, _ = _run_on_hostile_ws(ws_endless_frames, 30)
    assert result.status == "error" and "more than the 4.0 MB allowed for one run" in result.error["message"]
    assert seconds < 30 and len(result.executed) == 0
    print(f"\nendless frames cut off at 4 MB after {seconds:.2f} s")


@pytest.mark.timeout(60)
def test_a_trickled_websocket_frame_cannot_hold_the_run_past_its_deadline():
    """Each byte arrives well within the 1 s silence probe, so only the run's own deadline can end the read."""
    result, seconds, server = _run_on_hostile_ws(ws_trickled_frame, 2.0)
    assert result.status == "error" and result.error["type"] == "timeout", result.error
    assert seconds < 2.0 + 2.0 + SLACK_S, seconds  # the deadline, then one bounded /interrupt request
    assert server.interrupted == 1


@pytest.mark.timeout(60)
def test_a_websocket_text_frame_that_is_not_utf8_is_skipped():
    result, seconds, _ = _run_on_hostile_ws(ws_not_utf8_then_done, 10)
    assert result.status == "success" and result.executed == [] and seconds < 10, (result.status, result.error)


# ---------------------------------------------------------------- DNS rebinding (a fake resolver; loopback only)
class FakeResolver:
    """socket.getaddrinfo for made-up names (IP literals resolve as usual); counts lookups per name."""

    def __init__(self, monkeypatch, answers: dict[str, list[str]]):
        self.answers, self.calls = answers, {}
        real = socket.getaddrinfo

        def getaddrinfo(host, port, *args, **kwargs):
            if host not in self.answers:
                return real(host, port, *args, **kwargs)
            self.calls[host] = self.calls.get(host, 0) + 1
            return [(socket.AF_INET6 if ":" in ip else socket.AF_INET, socket.SOCK_STREAM, 6, "",
                     (ip, port, 0, 0) if ":" in ip else (ip, port)) for ip in self.answers[host]]

        monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


def _settings(private_names=()):
    return load_settings_from([DEFAULT_CONFIG], {"ANIMATION_STUDIO__NETWORK__PRIVATE_NAMES":
                                                 "[" + ", ".join(private_names) + "]"})


@pytest.mark.parametrize("addresses", [["127.0.0.1"], ["10.0.0.7"], ["192.168.1.20"], ["169.254.169.254"],
                                       ["8.8.8.8", "127.0.0.1"], ["::1"], ["::ffff:127.0.0.1"], ["fe80::1"],
                                       ["0.0.0.0"], ["100.64.0.1"], ["224.0.0.1"]])
def test_a_name_that_resolves_inside_the_network_is_refused(addresses, monkeypatch):
    FakeResolver(monkeypatch, {"comfy.example": addresses})
    with pytest.raises(net.NetError, match="comfy.example resolves to .* network.private_names") as info:
        net.resolve("comfy.example", 8188, _settings())
    assert info.value.kind == "refused"


def test_names_resolving_as_configured_are_used(monkeypatch):
    FakeResolver(monkeypatch, {"public.example": ["8.8.8.8", "2001:4860:4860::8888"], "comfy.lan": ["10.0.0.7"],
                               "localhost": ["127.0.0.1", "::1"], "evil.localhost": ["127.0.0.1"],
                               "localhost.": ["127.0.0.1"]})
    settings = _settings(["comfy.lan"])
    assert [e[4][0] for e in net.resolve("public.example", 80, settings)] == ["8.8.8.8", "2001:4860:4860::8888"]
    assert [e[4][0] for e in net.resolve("comfy.lan", 80, settings)] == ["10.0.0.7"]  # configured as private
    assert len(net.resolve("localhost", 80, settings)) == 2 and net.resolve("evil.localhost", 80, settings)
    # an IP address the settings name is used as written (the allow-list decided about it)
    assert net.resolve("10.0.0.5", 80, settings)[0][4][0] == "10.0.0.5"


def test_a_loopback_name_must_resolve_to_loopback(monkeypatch):
    FakeResolver(monkeypatch, {"localhost": ["10.1.2.3"]})
    with pytest.raises(net.NetError, match="loopback name must resolve to loopback") as info:
        net.resolve("localhost", 80, _settings())
    assert info.value.kind == "refused"


@pytest.mark.timeout(30)
def test_a_rebound_name_gets_no_connection(monkeypatch):
    """The name a ComfyUI/LLM server is configured by answers 127.0.0.1: no byte is sent there."""
    victim = RawServer(lambda conn, stop: conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}"))
    port = victim.url.rsplit(":", 1)[1]
    FakeResolver(monkeypatch, {"comfy.example": ["127.0.0.1"]})
    try:
        with pytest.raises(net.NetError, match="refused") as info:
            net.request("GET", f"http://comfy.example:{port}/object_info", timeout=2)
        assert info.value.kind == "refused" and victim.connections == 0
        from animation_studio.agent.server_engine import ServerEngine, ServerError

        with pytest.raises(ServerError, match="comfy.example resolves to 127.0.0.1"):
            ServerEngine(f"http://comfy.example:{port}", timeout=5, request_timeout=2.0).catalog()
        assert victim.connections == 0
    finally:
        victim.close()


@pytest.mark.timeout(60)
def test_each_connection_goes_to_the_address_looked_up_once(monkeypatch, tmp_path):
    """A private name (network.private_names) on the fake ComfyUI: a whole run over HTTP and the websocket
    looks the name up once per connection, in configs/net.py only (websocket-client gets the checked socket)."""
    import sys as _sys
    from pathlib import Path as _Path

    _sys.path.insert(0, str(_Path(__file__).parent))
    from fake_comfyui import FakeComfyUI

    from animation_studio.agent.server_engine import ServerEngine

    monkeypatch.setenv("ANIMATION_STUDIO__NETWORK__PRIVATE_NAMES", "[comfy.lan]")
    resolver = FakeResolver(monkeypatch, {"comfy.lan": ["127.0.0.1"]})
    connects = []
    real_connect = net.connect
    monkeypatch.setattr(net, "connect", lambda host, *a, **k: connects.append(host) or real_connect(host, *a, **k))
    server = FakeComfyUI(tmp_path / "server").start()
    try:
        port = server.url.rsplit(":", 1)[1]
        graph = {"1": {"class_type": "FakeText", "inputs": {"text": "hello"}},
                 "2": {"class_type": "FakeSave", "inputs": {"text": ["1", 0], "filename_prefix": "dns"}}}
        result = ServerEngine(f"http://comfy.lan:{port}", timeout=30).run(graph, tmp_path / "run")
    finally:
        server.stop()
    assert result.status == "success", result.error
    assert result.files and _Path(result.files[0]).read_text() == "hello"
    assert len(connects) >= 4 and set(connects) == {"comfy.lan"}  # /queue, /ws, /prompt, /history, /view
    assert resolver.calls["comfy.lan"] == len(connects)


def test_allowed_names_match_exactly():
    settings = load_settings_from([DEFAULT_CONFIG], {"ANIMATION_STUDIO__NETWORK__ALLOWED_URLS":
                                                     "[http://comfy.example:8188]"})
    assert net.url_allowed("http://comfy.example:8188/", settings)
    assert net.url_allowed("http://COMFY.example.:8188", settings)  # DNS names are case-insensitive; root dot
    for url in ("http://sub.comfy.example:8188", "http://comfy.example.evil.test:8188", "http://comfy.exampl:8188",
                "https://comfy.example:8188", "http://comfy.example:8189", "http://xcomfy.example:8188"):
        assert not net.url_allowed(url, settings), url



# ---------------------------------------------------------------- what an LLM server answers, in records and prompts
def _read_whole_request(conn) -> bytes:
    conn.settimeout(5)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            return data
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                   if line.lower().startswith(b"content-length")), 0)
    while len(body) < length:
        chunk = conn.recv(65536)
        if not chunk:
            break
        body += chunk
    return body


class ScriptedOpenAI(RawServer):
    """An OpenAI-compatible chat server answering `answers` in turn (the last one repeats); keeps each request."""

    def __init__(self, answers: list[str]):
        self.answers, self.requests = list(answers), []
        super().__init__(None)

    def _serve(self, conn):
        try:
            self.requests.append(_read_whole_request(conn).decode("utf-8", "replace"))
            text = self.answers[min(len(self.requests), len(self.answers)) - 1]
            body = json.dumps({"choices": [{"message": {"role": "assistant", "content": text},
                                            "finish_reason": "stop"}],
                               "usage": {"prompt_tokens": 10, "completion_tokens": 10}}).encode()
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n"
                         % len(body) + body)
        except OSError:
            pass
        finally:
            conn.close()


@pytest.mark.timeout(300)
def test_an_llm_answer_reaches_records_only_as_its_plan_and_an_excerpt_and_prompts_only_as_its_plan(
        studio_dirs, tmp_path, capsys):
    """Before: the whole raw answer went to run.json (llm_calls[].raw), and a rejected answer went back into the
    next prompt word for word (the backend's schema repair and the planner's repair round)."""
    from animation_studio.agent.cli import main

    hostile_prose = "Sure!\x1b\x07 " + SECRET * 300  # control characters, no bracket before the plan
    retime = '{"ops": [{"op": "retime", "params": {"speed": 0.5}}]}'
    server = ScriptedOpenAI([
        hostile_prose + ' {"ops": [{"op": "' + SECRET + '", "params": {"x": "' + SECRET * 50 + '"}}]}',  # no schema
        hostile_prose + " " + retime,  # a plan, but it needs a video and none was given
        '{"ops": []}',  # no operation does it
    ])
    try:
        code = main(["direct", "a wibbly glorious title card", "--llm", f"openai:{server.url}/v1#planner",
                     "--no-memory", "--out", str(tmp_path / "runs")])
    finally:
        server.close()
    err = capsys.readouterr().err
    assert code != 0 and len(server.requests) == 3, (code, len(server.requests), err[-600:])
    # Nothing the server said is in any later prompt; the rejected plan comes back only as the parsed plan.
    assert all(SECRET not in request and "\\u001b" not in request for request in server.requests)
    third = json.loads(server.requests[2])["messages"]
    assert third[-2]["role"] == "assistant" and json.loads(third[-2]["content"])["ops"][0]["op"] == "retime"
    assert "rejected" in third[-1]["content"]
    # run.json: each answer as its parsed plan and an excerpt of at most 200 printable characters.
    (run_dir,) = (tmp_path / "runs").iterdir()
    record_text = (run_dir / "run.json").read_text()
    calls = json.loads(record_text)["llm_calls"]
    assert [c.get("plan") for c in calls] == [[{"op": "retime", "params": {"speed": 0.5, "seconds": 0.0}}], None]
    assert all("raw" not in c and len(c["answer"]) <= 206 and c["answer"].isprintable() for c in calls)
    assert record_text.count(SECRET) <= 8 and "\\u001b" not in record_text
    # The checkpoint database keeps no more of it than the record does.
    checkpoints = b"".join(p.read_bytes() for p in (tmp_path / "runs").rglob("checkpoints.sqlite*"))
    assert checkpoints and checkpoints.count(SECRET.encode()) <= 8, checkpoints.count(SECRET.encode())
    assert SECRET * 9 not in err
