"""The Director loop as a LangGraph state graph, checkpointed in SQLite (a killed run resumes).

    plan -> build -> execute -> verify -> decide -> (refine: plan again with the verifier's edits) | end

The nodes are the module-level functions below; what cannot be checkpointed (engine, LLM caller, catalog,
event sink, budgets) is passed in as `Deps` through LangGraph's config (`configurable["deps"]`). Lists that grow
over the run (decisions, iterations, files) have `operator.add` reducers: a node returns only what it
adds. Tests stop the loop with LangGraph's own `interrupt_after`.
"""
from __future__ import annotations

import operator
import sqlite3
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Annotated, Any, Callable, TypedDict

from . import core
from .intent import IntentError
from .llm_caller import LLMCaller, LLMTimeout
from .ops import Op, normalize, plan_json

CHECKPOINT_FILE = "checkpoints.sqlite"
STOPS = ("approved", "not_approved", "budget", "unavailable", "invalid", "refused", "llm_timeout", "failed")


class DirectorError(RuntimeError):
    """A run that cannot start or continue (unknown run id for --resume...)."""


@dataclass
class Deps:
    engine: Any
    llm: LLMCaller
    run_dir: Path
    budgets: core.Budgets = field(default_factory=core.Budgets)
    memory: Any = None
    on_event: Callable[[str, dict], None] = lambda kind, data: None
    catalog: Any = None

    def get_catalog(self):
        if self.catalog is None:
            self.catalog = self.engine.catalog()
        return self.catalog


class DirectorState(TypedDict, total=False):
    run_id: str
    intent: str
    inputs: list[str]
    character: str
    facts: dict
    plan: list[dict]  # the current plan: [{op, params}]
    edits: list[dict]  # the verifier's edits for the next iteration
    graph: dict
    errors: list[str]
    execution: dict
    checks: list[dict]
    verdict: dict
    iteration: int
    started: float
    status: str
    message: str
    llm_seconds: float
    planning_seconds: float
    decisions: Annotated[list, operator.add]  # everything decided, in words (printed and sent to the panel)
    iterations: Annotated[list, operator.add]
    files: Annotated[list, operator.add]


def _deps(config) -> Deps:
    return config["configurable"]["deps"]


def _ops(state: DirectorState) -> list[Op]:
    return [normalize(o) for o in state.get("plan") or []]


def _said(deps: Deps, kind: str, text: str, **data) -> str:
    deps.on_event(kind, {"text": text, **data})
    return text


# ---------------------------------------------------------------- nodes
def plan_node(state: DirectorState, config) -> dict:
    deps = _deps(config)
    started = time.perf_counter()
    iteration = state.get("iteration", 0) + 1
    if state.get("plan") and state.get("edits"):
        ops, changes = core.apply_edits(_ops(state), state["edits"])
        if ops == _ops(state):
            return {"status": "not_approved", "iteration": iteration - 1,
                    "message": "not approved: the verifier's edits change nothing (" + "; ".join(changes) + ")",
                    "decisions": changes}
        said = [_said(deps, "refine", f"iteration {iteration}: {c}") for c in changes]
        return {"plan": plan_json(ops), "iteration": iteration, "edits": [], "decisions": said,
                "planning_seconds": state.get("planning_seconds", 0.0) + time.perf_counter() - started}
    try:
        kinds = core.classify_inputs(state.get("inputs", []))
        facts = core.input_facts(kinds)
    except core.InputError as exc:
        return {"status": "invalid", "message": str(exc), "decisions": [_said(deps, "decision", str(exc))]}
    llm_before = deps.llm.seconds
    try:
        ops, notes, _ = core.plan(state["intent"], kinds, state.get("character", ""), deps.llm, facts, deps.memory)
    except IntentError as exc:
        return {"status": "refused", "message": str(exc), "facts": facts,
                "decisions": [_said(deps, "decision", f"refused ({exc.reason}): {exc}")]}
    except LLMTimeout as exc:
        return {"status": "llm_timeout", "message": str(exc)}
    llm_s = deps.llm.seconds - llm_before
    said = [_said(deps, "note", n) for n in notes]
    said.append(_said(deps, "plan", "plan: " + " -> ".join(str(o) for o in ops), plan=plan_json(ops)))
    return {"plan": plan_json(ops), "facts": facts, "iteration": iteration, "decisions": said,
            "llm_seconds": state.get("llm_seconds", 0.0) + llm_s,
            "planning_seconds": state.get("planning_seconds", 0.0) + time.perf_counter() - started - llm_s}


def build_node(state: DirectorState, config) -> dict:
    deps = _deps(config)
    started = time.perf_counter()
    ctx = {"inputs": core.classify_inputs(state.get("inputs", [])), "prefix": core.output_prefix(state["run_id"]),
           "run_id": state["run_id"], "facts": state.get("facts") or {}}
    graph, errors, repairs, _ = core.compile_graph(_ops(state), deps.get_catalog(), ctx)
    said = [_said(deps, "repair", f"repaired: {r}") for r in repairs]
    said += [_said(deps, "invalid", e) for e in errors]
    deps.on_event("graph", {"iteration": state.get("iteration", 1), "graph": graph,
                            "text": f"{len(graph)} nodes: " + " -> ".join(n["class_type"].removeprefix("AnimStudio_")
                                                                           for n in graph.values())})
    return {"graph": graph, "errors": errors, "decisions": said,
            "planning_seconds": state.get("planning_seconds", 0.0) + time.perf_counter() - started}


def execute_node(state: DirectorState, config) -> dict:
    deps = _deps(config)
    iteration = state.get("iteration", 1)
    result = deps.engine.run(state["graph"], run_dir=deps.run_dir / f"iter-{iteration}",
                             run_id=f"{state['run_id']}-it{iteration}")
    execution = {"status": result.status, "message": result.message(), "files": list(result.files),
                 "seconds": round(result.seconds, 3)}
    deps.on_event("executed", {"text": f"run: {execution['message']} ({execution['seconds']:.2f} s)", **execution})
    return {"execution": execution, "files": list(result.files)}


def verify_node(state: DirectorState, config) -> dict:
    deps = _deps(config)
    execution = state.get("execution") or {}
    if execution.get("status") != "success":
        checks = [{"check": "executed", "op": None, "hard": True, "passed": False, "measured": {}, "expected": {},
                   "detail": f"the graph did not run: {execution.get('message')}", "edit": None}]
        verdict = {"approved": False, "reason": "the graph did not run", "edits": [],
                   "failed": [{"check": "executed", "hard": True, "detail": checks[0]["detail"]}]}
    else:
        checks, verdict = core.check(_ops(state), state.get("facts") or {}, execution.get("files", []))
    for c in checks:
        deps.on_event("check", {"text": f"{'PASS' if c['passed'] else 'FAIL'} {c['check']}: {c['detail']}", **c})
    record = {"iteration": state.get("iteration", 1), "plan": state.get("plan"), "graph": state.get("graph"),
              "execution": execution, "checks": checks, "verdict": verdict}
    return {"checks": checks, "verdict": verdict, "iterations": [record]}


def decide_node(state: DirectorState, config) -> dict:
    deps = _deps(config)
    iteration = state.get("iteration", 1)
    status, message = core.decide(state.get("verdict"), iteration, deps.budgets,
                                  time.time() - state.get("started", time.time()), deps.llm.tokens, state.get("errors"))
    if status == "approved":
        core.remember(deps.memory, state["intent"], state["plan"], state.get("graph"),
                      core.classify_inputs(state.get("inputs", [])))
    deps.on_event("decision", {"text": f"decision: {status}: {message}", "decision": status, "iteration": iteration})
    update = {"status": "running" if status == "refine" else status, "message": message,
              "decisions": [f"decision (iteration {iteration}): {status}: {message}"]}
    if status == "refine":
        update["edits"] = (state.get("verdict") or {}).get("edits", [])
    return update


def _after_plan(state: DirectorState) -> str:
    return "end" if state.get("status") in STOPS else "build"


def _after_build(state: DirectorState) -> str:
    return "decide" if state.get("errors") else "execute"


def _after_decide(state: DirectorState) -> str:
    return "plan" if state.get("status") == "running" else "end"


def build_graph(checkpointer=None):
    from langgraph.graph import END, START, StateGraph

    g = StateGraph(DirectorState)
    for name, fn in (("plan", plan_node), ("build", build_node), ("execute", execute_node), ("verify", verify_node),
                     ("decide", decide_node)):
        g.add_node(name, fn)
    g.add_edge(START, "plan")
    g.add_conditional_edges("plan", _after_plan, {"build": "build", "end": END})
    g.add_conditional_edges("build", _after_build, {"decide": "decide", "execute": "execute"})
    g.add_edge("execute", "verify")
    g.add_edge("verify", "decide")
    g.add_conditional_edges("decide", _after_decide, {"plan": "plan", "end": END})
    return g.compile(checkpointer=checkpointer)


# ---------------------------------------------------------------- running
def new_run_id() -> str:
    return datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S") + "-" + uuid.uuid4().hex[:6]


def _checkpointer(run_dir: Path):
    from langgraph.checkpoint.sqlite import SqliteSaver

    conn = sqlite3.connect(str(run_dir / CHECKPOINT_FILE), check_same_thread=False)
    return SqliteSaver(conn), conn


def saved_state(run_dir: Path, run_id: str) -> dict | None:
    """The last checkpointed state of a run, or None when it has none."""
    if not (run_dir / CHECKPOINT_FILE).is_file():
        return None
    saver, conn = _checkpointer(run_dir)
    try:
        tup = saver.get_tuple({"configurable": {"thread_id": run_id}})
        return dict(tup.checkpoint["channel_values"]) if tup else None
    finally:
        conn.close()


def run_director(intent: str, deps: Deps, *, run_id: str, inputs: list[str] | None = None, character: str = "",
                 resume: bool = False, interrupt_after: list[str] | None = None) -> dict:
    """Run (or resume) the loop; returns the state at the end (or where `interrupt_after` stopped it)."""
    deps.run_dir.mkdir(parents=True, exist_ok=True)
    saver, conn = _checkpointer(deps.run_dir)
    try:
        app = build_graph(saver)
        config = {"configurable": {"thread_id": run_id, "deps": deps},
                  "recursion_limit": 6 * deps.budgets.max_iterations + 10}
        if resume:
            snapshot = app.get_state(config)
            if not snapshot.values:
                raise DirectorError(f"run {run_id} has no saved steps to resume")
            if snapshot.next:
                app.invoke(None, config, interrupt_after=interrupt_after)
        else:
            initial: DirectorState = {"run_id": run_id, "intent": intent, "inputs": list(inputs or []),
                                      "character": character, "iteration": 0, "status": "running",
                                      "started": time.time(), "llm_seconds": 0.0, "planning_seconds": 0.0}
            app.invoke(initial, config, interrupt_after=interrupt_after)
        return dict(app.get_state(config).values)
    finally:
        conn.close()


def run_record(state: dict, extra: dict | None = None) -> dict:
    """What run.json holds: plan, graph, every check with its measured value, decisions, timings, LLM calls."""
    return {
        "run_id": state.get("run_id"), "intent": state.get("intent"), "inputs": state.get("inputs", []),
        "character": state.get("character", ""), "status": state.get("status"), "message": state.get("message", ""),
        "facts": state.get("facts"), "plan": state.get("plan"), "decisions": state.get("decisions", []),
        "final_graph": state.get("graph"), "checks": state.get("checks", []),
        "verdict": state.get("verdict"), "iterations": state.get("iterations", []),
        "llm_seconds": round(state.get("llm_seconds", 0.0), 4),
        "planning_seconds_excluding_llm": round(state.get("planning_seconds", 0.0), 4),
        "files": state.get("files", []), **(extra or {}),
    }
