"""Director benchmark over an intent suite: pass rate, iterations to approval, planning latency, LLM tokens.

    .venv/bin/python tests/benchmarks/bench_director.py [--llm none|scripted|local] [--max-iterations N]

Runs every intent through the full loop on the embedded engine, in temporary
folders. The peer is the same suite planned with keywords only (no LLM), so the
table shows what the LLM adds in tokens and what planning costs without it.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

SUITE = [
    ("funny parody of Luca's first ocean scene with exaggerated expressions and dramatic slow motion", "parody_video"),
    ("Luca saying 'Silenzio, Bruno!' with determination", "character_voice"),
    ("Luca running, excited, sunny Italian seaside", "character_image"),
    ("Alberto shouting 'Piacere, Girl!' happily", "character_voice"),
    ("Giulia standing on the pier at sunset, determined", "character_image"),
    ("a dramatic slow motion spoof of Alberto jumping off the tower", "parody_video"),
    ("portrait of Alberto laughing, Portorosso piazza", "character_image"),
    ("Giulia says \"We can win the race!\" excited", "character_voice"),
    ("parody clip: Luca scared of the cat, 3x slow motion, exaggerated", "parody_video"),
    ("Luca whispering 'Silenzio Bruno' scared", "character_voice"),
    ("a poster of Luca and Alberto riding a Vespa, happy", "character_image"),
    ("make a 2-second gradient title card that says Ciao", "composition"),  # no recipe: composed from the catalog
    ("a 3 second title card with music that says 'Buongiorno Portorosso'", "composition"),
    ("write my tax return", None),  # must be refused with what the Director can do
]


class ScriptedSane:
    """A well-behaved LLM stand-in: valid, schema-shaped answers at fixed token costs (no model time)."""

    model = "scripted-sane"

    def chat(self, messages, schema=None, images=None, temperature=0.0, max_tokens=1024, timeout=None):
        props = (schema or {}).get("properties", {})
        if "edits" in props:
            data = {"edits": []}
        elif "task_kind" in props:
            data = {"emotion": "", "setting": "", "action": "", "dialogue": "", "characters": [], "task_kind": ""}
        else:
            data = {}
        reply = type("Reply", (), {})()
        reply.data, reply.text = data, json.dumps(data)
        reply.prompt_tokens = sum(len(m["content"].split()) for m in messages)
        reply.completion_tokens, reply.seconds, reply.model, reply.backend = len(reply.text.split()), 0.0, self.model, "scripted"
        return reply


def backend_for(kind: str):
    if kind == "none":
        return None
    if kind == "scripted":
        return ScriptedSane()
    from animation_studio.agent.llm import make_backend

    return make_backend(kind, role="creative_director")


def run_suite(kind: str, max_iterations: int) -> list[dict]:
    from animation_studio.agent.director.graph import DirectorContext, run_director
    from animation_studio.agent.director.planner import LLMCaller
    from animation_studio.agent.engine import EmbeddedEngine

    engine = EmbeddedEngine()
    rows = []
    root = Path(tempfile.mkdtemp(prefix="bench_director_"))
    for d in ("input", "outputs", "temp", "models"):
        (root / d).mkdir()
        os.environ[f"ANIMATION_STUDIO__PATHS__{'OUTPUT' if d == 'outputs' else d.upper()}"] = str(root / d)
    backend = backend_for(kind)
    for i, (intent, expected) in enumerate(SUITE):
        ctx = DirectorContext(engine=engine, llm=LLMCaller(backend), run_dir=root / "outputs" / f"{kind}-{i}",
                              max_iterations=max_iterations)
        started = time.perf_counter()
        state = run_director(intent, ctx, run_id=f"{kind}-{i}")
        wall = time.perf_counter() - started
        executed = [it for it in state.get("iterations", []) if it.get("execution", {}).get("status") == "success"]
        rows.append({"intent": intent, "expected": expected, "kind": state.get("brief", {}).get("task_kind"),
                     "status": state.get("status"), "recipe": state.get("recipe"), "passed": bool(executed),
                     "iterations": len(state.get("iterations", [])), "planning_ms": 1000 * state.get("planning_seconds", 0.0),
                     "llm_s": state.get("llm_seconds", 0.0), "tokens": state.get("tokens", 0), "wall_s": wall})
    return rows


def summarize(rows: list[dict]) -> dict:
    valid = [r for r in rows if r["expected"]]
    approved = [r for r in valid if r["status"] == "approved"]
    return {"intents": len(valid), "pass_rate": sum(r["passed"] for r in valid) / len(valid),
            "kind_accuracy": sum(r["kind"] == r["expected"] for r in valid) / len(valid),
            "approved": len(approved),
            "mean_iter_to_approval": statistics.mean(r["iterations"] for r in approved) if approved else float("nan"),
            "planning_ms_median": statistics.median(r["planning_ms"] for r in valid),
            "planning_ms_max": max(r["planning_ms"] for r in valid),
            "tokens_per_run": statistics.mean(r["tokens"] for r in valid),
            "refused_ok": all(r["status"] == "invalid" for r in rows if not r["expected"])}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--llm", default="scripted", help="none | scripted | local | ollama:MODEL")
    parser.add_argument("--max-iterations", type=int, default=2)
    args = parser.parse_args()
    os.environ.setdefault("ANIMATION_STUDIO_EMBEDDER", "ngram")
    results = {}
    for kind in dict.fromkeys(["none", args.llm]):
        rows = run_suite(kind, args.max_iterations)
        results[kind] = summarize(rows)
        print(f"\n== llm={kind}")
        print(f"{'intent':62} {'kind':16} {'status':9} {'recipe':24} {'it':>2} {'plan ms':>8} {'tokens':>6} {'wall s':>6}")
        for r in rows:
            print(f"{r['intent'][:62]:62} {str(r['kind'])[:16]:16} {r['status']:9} {str(r['recipe'])[:24]:24} "
                  f"{r['iterations']:>2} {r['planning_ms']:8.1f} {r['tokens']:6d} {r['wall_s']:6.2f}")
    print("\n== summary")
    keys = ["intents", "pass_rate", "kind_accuracy", "approved", "mean_iter_to_approval", "planning_ms_median",
            "planning_ms_max", "tokens_per_run", "refused_ok"]
    print(f"{'metric':24}" + "".join(f"{k:>16}" for k in results))
    for key in keys:
        print(f"{key:24}" + "".join(f"{results[k][key]:>16.3f}" if isinstance(results[k][key], float)
                                    else f"{str(results[k][key]):>16}" for k in results))
    if "none" in results and args.llm != "none":
        a, b = results["none"]["planning_ms_median"], results[args.llm]["planning_ms_median"]
        print(f"planning latency ratio llm={args.llm} / keywords-only: {b / a if a else float('nan'):.2f} "
              f"(target < 100 ms either way)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
