"""Ollama and OpenAI-compatible backends against loopback HTTP servers written here.

No Ollama binary or vLLM can run on this machine, so each server below speaks just
enough of the real protocol; the tests assert what the real client put on the wire."""
from __future__ import annotations

import base64
import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from animation_studio.agent import llm
from animation_studio.configs.settings import DEFAULT_CONFIG, load_settings_from

SCHEMA = {
    "type": "object",
    "properties": {"mood": {"enum": ["happy", "sad"]}, "frames": {"type": "integer", "maximum": 240}},
    "required": ["mood", "frames"],
}
ASK = [{"role": "system", "content": "You plan shots."}, {"role": "user", "content": "What mood is this frame?"}]
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(32))
JPEG = b"\xff\xd8\xff\xe0" + bytes(16)


class LoopbackServer:
    """An HTTP server on 127.0.0.1 (ephemeral port) whose answers come from `route(method, path, body)`."""

    def __init__(self, route):
        self.requests: list[dict] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def _handle(self, method):
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                body = json.loads(raw) if raw else None
                server.requests.append({"method": method, "path": self.path, "body": body,
                                        "headers": dict(self.headers)})
                status, answer = route(method, self.path, body)
                data = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):
                self._handle("GET")

            def do_POST(self):
                self._handle("POST")

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def serve():
    servers = []

    def start(route):
        servers.append(LoopbackServer(route))
        return servers[-1]

    yield start
    for s in servers:
        s.close()


def free_port_url() -> str:
    """A loopback URL where nothing listens."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def settings(**env):
    return load_settings_from([DEFAULT_CONFIG], {f"ANIMATION_STUDIO__LLM__{k.upper()}": str(v) for k, v in env.items()})


# ---------------------------------------------------------------- Ollama
PULLED = {"qwen2.5vl:latest", "llama3.3:latest"}


def ollama_route(answers):
    """/api/chat answers from `answers` in order; /api/tags lists PULLED; unknown models get Ollama's 404."""
    def route(method, path, body):
        if path == "/api/tags" and method == "GET":
            return 200, {"models": [{"name": m, "model": m, "modified_at": "2025-01-01T00:00:00Z", "size": 1000,
                                     "digest": "abc", "details": {"family": "qwen2"}} for m in sorted(PULLED)]}
        name = body.get("model", "")
        if name not in PULLED and f"{name}:latest" not in PULLED:
            return 404, {"error": f"model '{name}' not found"}
        if path == "/api/chat":
            if name.startswith("slow"):
                time.sleep(1.0)
            answer = answers.pop(0)
            return 200, {"model": name, "created_at": "2025-01-01T00:00:00Z",
                         "message": {"role": "assistant", "content": answer if isinstance(answer, str) else json.dumps(answer)},
                         "done": True, "done_reason": "stop", "prompt_eval_count": 41, "eval_count": 9}
        if path == "/api/generate":
            return 200, {"model": name, "created_at": "2025-01-01T00:00:00Z", "response": "", "done": True,
                         "done_reason": "unload"}
        return 404, {"error": "not found"}
    return route


def test_ollama_chat_sends_schema_images_keep_alive_and_num_ctx(serve):
    server = serve(ollama_route([{"mood": "happy", "frames": 24}]))
    backend = llm.make_backend("ollama:qwen2.5vl", settings=settings(ollama_host=server.url, num_ctx=16384, keep_alive="7m"))
    reply = backend.chat(ASK, schema=SCHEMA, images=[PNG], temperature=0.2, max_tokens=300)

    assert reply.data == {"mood": "happy", "frames": 24}
    assert (reply.backend, reply.model, reply.prompt_tokens, reply.completion_tokens) == ("ollama", "qwen2.5vl", 41, 9)
    sent = server.requests[0]
    assert (sent["method"], sent["path"]) == ("POST", "/api/chat")
    body = sent["body"]
    assert body["model"] == "qwen2.5vl" and body["stream"] is False
    assert body["format"] == SCHEMA
    assert body["keep_alive"] == "7m"
    assert body["options"] == {"num_ctx": 16384, "temperature": 0.2, "num_predict": 300}
    assert [m["role"] for m in body["messages"]] == ["system", "user"]
    # The image rides on the user message, base64-encoded by the client.
    assert body["messages"][1]["images"] == [base64.b64encode(PNG).decode()]
    assert "images" not in body["messages"][0]


def test_ollama_lists_models_and_unloads_with_keep_alive_zero(serve):
    server = serve(ollama_route([]))
    backend = llm.make_backend("ollama:qwen2.5vl", settings=settings(ollama_host=server.url))
    assert sorted(backend.list_models()) == sorted(PULLED)
    backend.unload()
    unload = server.requests[-1]
    assert unload["path"] == "/api/generate"
    assert unload["body"]["model"] == "qwen2.5vl" and unload["body"]["keep_alive"] == 0


def test_ollama_repairs_an_invalid_answer_and_sums_tokens(serve):
    server = serve(ollama_route(['{"mood": "furious", "frames": 3}', {"mood": "sad", "frames": 3}]))
    reply = llm.make_backend("ollama:llama3.3", settings=settings(ollama_host=server.url)).chat(ASK, schema=SCHEMA)
    assert reply.data == {"mood": "sad", "frames": 3} and reply.attempts == 2
    assert (reply.prompt_tokens, reply.completion_tokens) == (82, 18)
    retry = server.requests[1]["body"]["messages"]
    assert retry[-2]["role"] == "assistant" and "furious" not in json.dumps(retry)  # the answer is not sent back
    assert "'enum' at schema properties/mood/enum" in retry[-1]["content"]


def test_ollama_down_says_how_to_start_it():
    url = free_port_url()
    backend = llm.make_backend("ollama:qwen2.5vl", settings=settings(ollama_host=url))
    with pytest.raises(llm.LLMUnavailable, match=f"Ollama is not reachable at {url}: start it with `ollama serve`"):
        backend.chat(ASK)


def test_ollama_missing_model_says_which_pull(serve):
    server = serve(ollama_route([]))
    backend = llm.make_backend("ollama:deepseek-v3", settings=settings(ollama_host=server.url))
    with pytest.raises(llm.LLMModelMissing, match=r"does not have the model 'deepseek-v3' \(model 'deepseek-v3' "
                                                  r"not found\): run `ollama pull deepseek-v3`"):
        backend.chat(ASK)


def test_ollama_role_falls_back_to_its_configured_model(serve):
    # creative_director is deepseek-v3 with fallback llama3.3; only llama3.3 is pulled.
    server = serve(ollama_route(["plan ready"]))
    backend = llm.make_backend(None, "creative_director", settings(ollama_host=server.url))
    reply = backend.chat(ASK)
    assert (reply.text, reply.model, backend.model) == ("plan ready", "llama3.3", "llama3.3")
    assert [r["body"]["model"] for r in server.requests] == ["deepseek-v3", "llama3.3"]


def test_ollama_timeout_names_the_timeout(serve):
    PULLED.add("slowpoke:latest")
    try:
        server = serve(ollama_route(["late"]))
        backend = llm.make_backend("ollama:slowpoke", settings=settings(ollama_host=server.url))
        with pytest.raises(llm.LLMTimeout, match="did not answer a chat request for model 'slowpoke' within the 0.2 s timeout"):
            backend.chat(ASK, timeout=0.2)
    finally:
        PULLED.discard("slowpoke:latest")


# ---------------------------------------------------------------- OpenAI-compatible
def openai_route(answers, *, json_schema_supported=True):
    def route(method, path, body):
        if path == "/v1/models" and method == "GET":
            return 200, {"object": "list", "data": [{"id": "qwen2.5-coder", "object": "model"},
                                                    {"id": "deepseek-v3", "object": "model"}]}
        if path != "/v1/chat/completions":
            return 404, {"detail": "Not Found"}
        if body["model"] not in ("qwen2.5-coder", "deepseek-v3"):
            return 404, {"error": {"message": f"The model `{body['model']}` does not exist.",
                                   "type": "NotFoundError", "code": 404}}
        fmt = (body.get("response_format") or {}).get("type")
        if fmt == "json_schema" and not json_schema_supported:
            return 400, {"error": {"message": "response_format.type json_schema is not supported", "code": 400}}
        answer = answers.pop(0)
        return 200, {"id": "chatcmpl-1", "object": "chat.completion", "model": body["model"],
                     "choices": [{"index": 0, "finish_reason": "stop", "message": {
                         "role": "assistant", "content": answer if isinstance(answer, str) else json.dumps(answer)}}],
                     "usage": {"prompt_tokens": 57, "completion_tokens": 11, "total_tokens": 68}}
    return route


def test_openai_chat_sends_json_schema_and_data_url_images(serve, monkeypatch):
    monkeypatch.delenv(llm.OPENAI_KEY_ENV, raising=False)
    server = serve(openai_route([{"mood": "sad", "frames": 8}]))
    backend = llm.make_backend(f"openai:{server.url}/v1#qwen2.5-coder", settings=settings())
    reply = backend.chat(ASK, schema=SCHEMA, images=[JPEG], temperature=0.1, max_tokens=64)

    assert reply.data == {"mood": "sad", "frames": 8}
    assert (reply.backend, reply.model, reply.prompt_tokens, reply.completion_tokens) == ("openai", "qwen2.5-coder", 57, 11)
    sent = server.requests[0]
    assert (sent["method"], sent["path"]) == ("POST", "/v1/chat/completions")
    assert "Authorization" not in sent["headers"]
    body = sent["body"]
    assert (body["model"], body["temperature"], body["max_tokens"]) == ("qwen2.5-coder", 0.1, 64)
    assert body["response_format"] == {"type": "json_schema", "json_schema": {"name": "answer", "schema": SCHEMA}}
    system, user = body["messages"]
    assert system == ASK[0]
    assert user["content"][0] == {"type": "text", "text": ASK[1]["content"]}
    assert user["content"][1] == {"type": "image_url",
                                  "image_url": {"url": "data:image/jpeg;base64," + base64.b64encode(JPEG).decode()}}


def test_openai_falls_back_to_json_mode_when_json_schema_is_refused(serve):
    server = serve(openai_route([{"mood": "happy", "frames": 2}, {"mood": "sad", "frames": 2}],
                                json_schema_supported=False))
    backend = llm.make_backend(f"openai:{server.url}/v1#deepseek-v3", settings=settings())
    assert backend.chat(ASK, schema=SCHEMA).data == {"mood": "happy", "frames": 2}
    formats = [r["body"].get("response_format", {}).get("type") for r in server.requests]
    assert formats == ["json_schema", "json_object"]
    # In JSON mode the server cannot enforce the schema, so the model is shown it.
    assert json.dumps(SCHEMA) in server.requests[1]["body"]["messages"][-1]["content"]
    # The refusal is remembered: the next call goes straight to JSON mode.
    backend.chat(ASK, schema=SCHEMA)
    assert server.requests[2]["body"]["response_format"] == {"type": "json_object"}


def test_openai_lists_models_and_sends_a_key_only_when_configured(serve, monkeypatch):
    server = serve(openai_route(["hi"]))
    backend = llm.make_backend(f"openai:{server.url}/v1#qwen2.5-coder", settings=settings())
    assert backend.list_models() == ["qwen2.5-coder", "deepseek-v3"]
    monkeypatch.setenv(llm.OPENAI_KEY_ENV, "self-hosted-secret")
    assert backend.chat(ASK).text == "hi"
    assert server.requests[-1]["headers"]["Authorization"] == "Bearer self-hosted-secret"
    backend.unload()  # a remote server manages its own memory: nothing is sent
    assert len(server.requests) == 2


def test_openai_errors_say_what_to_do(serve):
    down = free_port_url()
    with pytest.raises(llm.LLMUnavailable, match=f"server at {down}/v1 is not reachable: start it"):
        llm.make_backend(f"openai:{down}/v1#qwen2.5-coder", settings=settings()).chat(ASK)
    server = serve(openai_route([]))
    with pytest.raises(llm.LLMModelMissing, match=r"does not serve the model 'llama3.3' \(The model `llama3.3` does not exist"):
        llm.make_backend(f"openai:{server.url}/v1#llama3.3", settings=settings()).chat(ASK)
    with pytest.raises(llm.LLMUnavailable, match="base URL should end in /v1"):
        llm.make_backend(f"openai:{server.url}#qwen2.5-coder", settings=settings()).chat(ASK)


def test_openai_role_fallback_uses_the_served_model(serve):
    server = serve(openai_route(["ok"]))
    conf = load_settings_from([DEFAULT_CONFIG], {
        "ANIMATION_STUDIO__LLM__OPENAI_BASE_URL": f"{server.url}/v1",
        "ANIMATION_STUDIO__LLM__ROLES__CREATIVE_DIRECTOR": "{backend: openai, model: llama3.3, fallback: deepseek-v3}"})
    reply = llm.make_backend(None, "creative_director", conf).chat(ASK)
    assert (reply.text, reply.model) == ("ok", "deepseek-v3")
