"""The parser's plans on the development set (tests/fixtures/intents.yaml), asserted exactly.

Each intent's expected operations are normalised with the operations' defaults and compared with the parser's
full plan: same operations, same order, same parameters. Refusals must give the named reason. Intents marked
`paraphrase_llm_only` are counted, not asserted (the LLM planner is measured on them by bench_director.py).
"""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from animation_studio.agent.director.intent import IntentError, parse_intent
from animation_studio.agent.director.ops import normalize

FIXTURES = Path(__file__).parent / "fixtures" / "intents.yaml"
CASES = yaml.safe_load(FIXTURES.read_text(encoding="utf-8"))


def inputs_of(case: dict) -> dict:
    return {k: (v if isinstance(v, list) else [v]) for k, v in (case.get("inputs") or {}).items()}


def expected_plan(case: dict) -> list[dict]:
    return [normalize({"op": e["op"], "params": e.get("params") or {}}).to_json() for e in case["expect"]]


def outcome(case: dict):
    """('plan', [...]) or ('refuse', reason)."""
    try:
        ops, _ = parse_intent(case["intent"], inputs_of(case))
    except IntentError as exc:
        return "refuse", exc.reason
    return "plan", [op.to_json() for op in ops]


def wanted(case: dict):
    return ("refuse", case["refuse"]) if "refuse" in case else ("plan", expected_plan(case))


def test_development_set_is_large_and_varied():
    assert len(CASES) >= 60
    assert len({c["id"] for c in CASES}) == len(CASES)
    ops = {e["op"] for c in CASES for e in c.get("expect", [])}
    assert {"trim", "pick_scene", "retime", "speed_ramp", "freeze", "interpolate", "exaggerate", "landmarks_preview",
            "caption", "title", "music", "sting", "voice", "mux", "concat", "segment", "dataset", "image",
            "export", "scenes"} <= ops
    assert sum("refuse" in c for c in CASES) >= 8


@pytest.mark.parametrize("case", [c for c in CASES if not c.get("paraphrase_llm_only")], ids=lambda c: c["id"])
def test_parser_plans_exactly(case):
    assert outcome(case) == wanted(case), case["intent"]


def test_parser_accuracy_on_the_whole_set(capsys):
    right = [c["id"] for c in CASES if outcome(c) == wanted(c)]
    llm_only = [c["id"] for c in CASES if c.get("paraphrase_llm_only")]
    accuracy = len(right) / len(CASES)
    with capsys.disabled():
        print(f"\nparser: {len(right)}/{len(CASES)} intents planned exactly ({accuracy:.1%}); "
              f"{len(llm_only)} marked paraphrase_llm_only: {', '.join(llm_only)}")
    assert accuracy >= 0.95
