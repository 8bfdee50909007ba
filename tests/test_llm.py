"""The LLM layer without any server: JSON handling, repair retries, the scripted backend, backend choice."""
from __future__ import annotations

import json

import pytest

from animation_studio.agent import llm
from animation_studio.configs.settings import DEFAULT_CONFIG, load_settings_from

SHOT_SCHEMA = {
    "type": "object",
    "properties": {
        "mood": {"enum": ["happy", "sad", "determined"]},
        "frames": {"type": "integer", "minimum": 1, "maximum": 240},
        "tags": {"type": "array", "items": {"type": "string", "maxLength": 20}, "maxItems": 3},
    },
    "required": ["mood", "frames"],
    "additionalProperties": False,
}
ASK = [{"role": "system", "content": "You plan shots."}, {"role": "user", "content": "Luca running, excited"}]


def settings(**env):
    return load_settings_from([DEFAULT_CONFIG], {f"ANIMATION_STUDIO__LLM__{k.upper()}": v for k, v in env.items()})


# ---------------------------------------------------------------- parse_json_answer
@pytest.mark.parametrize("text", [
    '{"mood": "happy", "frames": 24}',
    'Sure! Here is the plan:\n```json\n{"mood": "happy", "frames": 24}\n```',
    '<think>the user wants joy</think>{"mood": "happy", "frames": 24} hope this helps',
])
def test_parse_json_answer_finds_the_value_in_chatty_answers(text):
    assert llm.parse_json_answer(text, SHOT_SCHEMA) == {"mood": "happy", "frames": 24}


def test_parse_json_answer_names_where_the_answer_breaks_the_schema():
    with pytest.raises(llm.SchemaMismatch, match=r"\$\.frames.*1000000 is greater than the maximum of 240"):
        llm.parse_json_answer('{"mood": "happy", "frames": 1000000}', SHOT_SCHEMA)
    with pytest.raises(llm.SchemaMismatch, match="not valid JSON"):
        llm.parse_json_answer('{"mood": "happy", "frames": ', SHOT_SCHEMA)


def test_a_malformed_schema_is_refused_before_calling_the_model():
    backend = llm.ScriptedBackend(['{"a": 1}'])
    with pytest.raises(llm.LLMError, match="schema given to the LLM is itself invalid"):
        backend.chat(ASK, schema={"type": "objekt"})
    assert backend.calls == []


# ---------------------------------------------------------------- ScriptedBackend
def test_scripted_backend_answers_in_order_and_records_calls():
    backend = llm.ScriptedBackend(["first answer", {"mood": "sad", "frames": 12}])
    free = backend.chat(ASK, temperature=0.3, max_tokens=50)
    planned = backend.chat(ASK, schema=SHOT_SCHEMA, images=[b"\x89PNG\r\n\x1a\nfake"])
    assert (free.text, free.data, free.backend, free.model) == ("first answer", None, "scripted", "scripted")
    assert planned.data == {"mood": "sad", "frames": 12}
    assert json.loads(planned.text) == planned.data
    assert [c["temperature"] for c in backend.calls] == [0.3, 0.0]
    assert backend.calls[0]["max_tokens"] == 50
    assert backend.calls[1]["schema"] == SHOT_SCHEMA and backend.calls[1]["images"] == [b"\x89PNG\r\n\x1a\nfake"]
    assert backend.calls[0]["messages"] == ASK
    # Tokens are words, so a budget can be tested deterministically.
    assert free.prompt_tokens == len("You plan shots. Luca running, excited".split())
    assert free.completion_tokens == 2
    assert isinstance(backend, llm.LLMBackend)


def test_invalid_answers_are_refused_in_the_schemas_words_then_repaired():
    """The rejected answer is never sent back (a remote server may have written it): the reason is worded
    from the schema alone."""
    backend = llm.ScriptedBackend(["I think happy!", {"mood": "ecstatic", "frames": 10}, {"mood": "happy", "frames": 10}])
    reply = backend.chat(ASK, schema=SHOT_SCHEMA)
    assert reply.data == {"mood": "happy", "frames": 10} and reply.attempts == 3
    second, third = backend.calls[1]["messages"], backend.calls[2]["messages"]
    assert second[:2] == ASK and second[2]["role"] == "assistant"
    assert "not valid JSON" in second[3]["content"] and '"enum"' in second[3]["content"]
    assert "'enum' at schema properties/mood/enum" in third[-1]["content"]
    assert "happy!" not in json.dumps(second) and "ecstatic" not in json.dumps(third)
    # Tokens of every attempt count against the budget.
    assert reply.completion_tokens == 3 + 4 + 4


def test_answers_that_never_validate_end_in_an_llm_error_with_the_raw_text():
    backend = llm.ScriptedBackend(["nope", "still nope", "never"], retries=2)
    with pytest.raises(llm.LLMError, match=r"no valid JSON after 3 attempts.*Raw answer: 'never'"):
        backend.chat(ASK, schema=SHOT_SCHEMA)
    assert backend.remaining == 0


def test_a_callable_script_sees_messages_and_schema():
    seen = []

    def director(messages, schema):
        seen.append((messages[-1]["content"], schema is not None))
        return {"mood": "determined", "frames": 48} if schema else "ok"

    backend = llm.ScriptedBackend(director)
    assert backend.chat(ASK, schema=SHOT_SCHEMA).data["mood"] == "determined"
    assert backend.chat(ASK).text == "ok"
    assert seen == [("Luca running, excited", True), ("Luca running, excited", False)]


def test_scripted_failures_and_exhaustion_are_llm_errors():
    backend = llm.ScriptedBackend([llm.LLMTimeout("took too long")])
    with pytest.raises(llm.LLMTimeout, match="took too long"):
        backend.chat(ASK)
    with pytest.raises(llm.LLMError, match="no reply left for call 2"):
        backend.chat(ASK)
    with pytest.raises(llm.LLMError, match="non-empty list of messages"):
        backend.chat([])
    with pytest.raises(llm.LLMError, match="Bad chat message"):
        backend.chat([{"role": "wizard", "content": "hi"}])


def test_scripted_spec_reads_replies_from_a_file(tmp_path):
    replies = tmp_path / "replies.json"
    replies.write_text(json.dumps([{"mood": "happy", "frames": 1}, "plain"]))
    backend = llm.make_backend(f"scripted:{replies}", settings=settings())
    assert backend.name == "scripted" and backend.model == "replies.json"
    assert backend.chat(ASK, schema=SHOT_SCHEMA).data == {"mood": "happy", "frames": 1}
    assert backend.chat(ASK).text == "plain"
    with pytest.raises(llm.LLMError, match="not found"):
        llm.make_backend(f"scripted:{tmp_path / 'missing.json'}", settings=settings())
    (tmp_path / "bad.json").write_text("{oops")
    with pytest.raises(llm.LLMError, match="not valid JSON"):
        llm.make_backend(f"scripted:{tmp_path / 'bad.json'}", settings=settings())


# ---------------------------------------------------------------- make_backend
def test_roles_come_from_the_settings_with_their_fallback():
    conf = settings(ollama_host="http://10.0.0.5:11434", num_ctx="32768", keep_alive="10m")
    director = llm.make_backend(None, "creative_director", conf)
    assert isinstance(director, llm.OllamaBackend)
    assert (director.model, director.fallback) == ("deepseek-v3", "llama3.3")
    assert (director.host, director.num_ctx, director.keep_alive) == ("http://10.0.0.5:11434", 32768, "10m")
    analyst = llm.make_backend(None, "video_analyst", conf)
    assert (analyst.model, analyst.fallback) == ("qwen2.5vl", None)
    assert llm.make_backend(None, "tool_executor", conf).model == "qwen2.5-coder"
    # A bare backend name keeps the role's model.
    assert llm.make_backend("ollama", "quality_evaluator", conf).model == "qwen2.5vl"
    with pytest.raises(llm.LLMError, match="No LLM role 'painter'.*creative_director"):
        llm.make_backend(None, "painter", conf)


def test_specs_pick_backend_url_and_model():
    conf = settings(openai_base_url="http://gpu-box:8000/v1")
    ollama = llm.make_backend("ollama:llama3.3", settings=conf)
    assert (ollama.name, ollama.model, ollama.fallback) == ("ollama", "llama3.3", None)
    remote = llm.make_backend("openai:http://10.1.1.1:30000/v1/#deepseek-ai/DeepSeek-V3", settings=conf)
    assert (remote.name, remote.base_url, remote.model) == ("openai", "http://10.1.1.1:30000/v1", "deepseek-ai/DeepSeek-V3")
    default_url = llm.make_backend("openai:qwen2.5-coder", settings=conf)
    assert (default_url.base_url, default_url.model) == ("http://gpu-box:8000/v1", "qwen2.5-coder")
    for bad, message in [("gpt:4o", "Unknown LLM backend"), ("ollama:", "needs a model name"),
                         ("scripted", "needs a replies file")]:
        with pytest.raises(llm.LLMError, match=message):
            llm.make_backend(bad, role="nope", settings=conf)


def test_a_missing_local_gguf_names_the_models_folder(studio_dirs):
    with pytest.raises(llm.LLMModelMissing, match=r"'tiny.gguf' not found.*'llm' models folder"):
        llm.make_backend("local:tiny.gguf", settings=settings())


def test_local_threads_drop_to_one_on_a_busy_cpu(monkeypatch):
    monkeypatch.delenv(llm.THREADS_ENV, raising=False)
    monkeypatch.setattr(llm.os, "cpu_count", lambda: 2)
    monkeypatch.setattr(llm.os, "getloadavg", lambda: (2.2, 1.0, 1.0))  # our own two threads
    assert llm.local_threads() == 2
    monkeypatch.setattr(llm.os, "getloadavg", lambda: (12.0, 9.0, 5.0))  # oversubscribed
    assert llm.local_threads() == 1
    monkeypatch.setenv(llm.THREADS_ENV, "3")
    assert llm.local_threads() == 3


def test_scripted_replies_inside_comfyui_come_only_from_the_input_folder(studio_dirs, monkeypatch):
    import json
    import sys
    import types

    from animation_studio.agent.llm import LLMError, make_backend

    (studio_dirs["input"] / "replies.json").write_text(json.dumps(["hello"]))
    secret = studio_dirs["temp"] / "secret.json"
    secret.write_text(json.dumps(["do not read"]))
    assert make_backend(f"scripted:{secret}").name == "scripted"  # the CLI may name any file
    assert make_backend("scripted:replies.json").name == "scripted"
    # Inside a ComfyUI server the LLM field comes from any browser user: the input folder only.
    monkeypatch.setitem(sys.modules, "folder_paths", types.SimpleNamespace(
        get_input_directory=lambda: str(studio_dirs["input"])))
    monkeypatch.setitem(sys.modules, "comfy.model_management", types.ModuleType("comfy.model_management"))
    assert make_backend("scripted:replies.json").name == "scripted"
    with pytest.raises(LLMError, match="outside the input folder"):
        make_backend(f"scripted:{secret}")
