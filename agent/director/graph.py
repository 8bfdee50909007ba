"""The Director loop as a LangGraph state graph with a SQLite checkpointer.

understand -> analyse -> plan -> build -> validate(+repair) -> execute -> evaluate
-> decide: approve | refine (back to plan with concrete edits) | stop at the budget.

Every step's state is checkpointed in <run dir>/checkpoints.sqlite under the
run id, so a killed run continues with `resume=True` from the last finished
step. What cannot be checkpointed (engine, LLM backend, catalog, memory) lives
in a DirectorContext rebuilt by the caller.
"""
from __future__ import annotations

import json
import sqlite3
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

from ...configs.settings import load_settings
from ..validate import validate_graph
from . import recipes as recipe_registry
from .analyse import first_answer, look_at_inputs
from .builder import BuildError, GraphBuilder, summarize
from .evaluator import evaluate
from .memory import Memory
from .planner import IntentError, LLMCaller, LLMTimeout, choose_recipe, fill_slots, refine, understand
from .repair import validate_and_repair
from .security import check_graph
from .state import Brief, DirectorState

CHECKPOINT_FILE = "checkpoints.sqlite"
INPUT_KINDS = {"image": (".png", ".jpg", ".jpeg", ".webp", ".bmp"), "video": (".mp4", ".mov", ".webm", ".mkv", ".avi", ".gif"),
               "audio": (".wav", ".mp3", ".flac", ".ogg", ".m4a")}


class DirectorError(RuntimeError):
    """A run that cannot start or continue (unknown run id for --resume, run already finished...)."""


@dataclass
class DirectorContext:
    engine: Any
    llm: LLMCaller
    run_dir: Path
    memory: Memory | None = None
    max_iterations: int = 3
    max_seconds: float = 900.0
    max_tokens: int = 60000
    approve_score: float = 0.7
    max_repair_rounds: int = 3
    on_event: Callable[[str, dict], None] = lambda kind, data: None
    catalog: Any = None
    fail_after: str | None = None  # tests: raise after this step to simulate a kill
    extra: dict = field(default_factory=dict)

    def get_catalog(self):
        if self.catalog is None:
            self.catalog = self.engine.catalog()
        return self.catalog


def classify_inputs(names: list[str]) -> dict:
    kinds: dict[str, list[str]] = {}
    for name in names or []:
        kind = next((k for k, sfx in INPUT_KINDS.items() if str(name).lower().endswith(sfx)), "file")
        kinds.setdefault(kind, []).append(str(name))
    return kinds


# ---------------------------------------------------------------- steps
def _step(name: str, ctx: DirectorContext, fn):
    """Time the step, collect its LLM calls into the state, count active seconds for the budget."""

    def run(state: DirectorState) -> dict:
        started = time.perf_counter()
        log_start, tokens_start, llm_s_start = len(ctx.llm.log), ctx.llm.tokens, ctx.llm.seconds
        update = fn(state) or {}
        seconds = time.perf_counter() - started
        update["llm_log"] = list(state.get("llm_log", [])) + ctx.llm.log[log_start:]
        update["tokens"] = state.get("tokens", 0) + (ctx.llm.tokens - tokens_start)
        update["llm_seconds"] = state.get("llm_seconds", 0.0) + (ctx.llm.seconds - llm_s_start)
        update["elapsed_s"] = state.get("elapsed_s", 0.0) + seconds
        times = dict(state.get("step_times", {}))
        key = f"{state.get('iteration', 0)}:{name}"
        times[key] = round(times.get(key, 0.0) + seconds, 4)
        update["step_times"] = times
        if name in ("understand", "analyse", "plan", "build", "validate"):
            update["planning_seconds"] = state.get("planning_seconds", 0.0) + seconds - (ctx.llm.seconds - llm_s_start)
        if ctx.fail_after == name:
            ctx.fail_after = None
            raise RuntimeError(f"simulated kill after step {name!r}")
        return update

    return run


def _inputs(state: DirectorState) -> dict:
    return classify_inputs(state.get("inputs", []))


def _recipe_ctx(state: DirectorState) -> dict:
    return {"intent": state.get("intent", ""), "inputs": _inputs(state), "run_id": state.get("run_id", ""),
            "analysis": first_answer(state.get("analysis", {}))}


def make_steps(ctx: DirectorContext) -> dict:
    def do_understand(state):
        try:
            brief, source, notes = understand(state["intent"], _inputs(state), state.get("character", ""), ctx.llm)
        except IntentError as exc:
            what = recipe_registry.describe_capabilities(ctx.get_catalog())
            return {"status": "invalid", "message": f"{exc}. What I can do: {what}"}
        except LLMTimeout as exc:
            return {"status": "llm_timeout", "message": str(exc)}
        ctx.on_event("brief", {"brief": brief.model_dump(), "source": source, "notes": notes})
        return {"brief": brief.model_dump(), "brief_source": source, "notes": notes}

    def do_analyse(state):
        facts: dict = {}
        for kind, names in _inputs(state).items():
            for name in names:
                facts[name] = {"kind": kind}
                if kind == "image":
                    try:
                        from PIL import Image

                        from ...nodes import bridge

                        with Image.open(bridge.safe_input_path(name)) as img:
                            facts[name].update(width=img.width, height=img.height)
                    except Exception as exc:  # noqa: BLE001 - a fact we could not get is noted, not fatal
                        facts[name]["error"] = str(exc)
        update: dict = {}
        try:
            seen, notes = look_at_inputs(_inputs(state), state["intent"], ctx.llm)
        except LLMTimeout as exc:
            seen, notes = {}, [f"video analyst: {exc}"]
        for name, answer in seen.items():
            facts.setdefault(name, {})["vision"] = answer
        vision = first_answer(facts)
        brief = dict(state["brief"])
        if vision.get("setting") and not brief.get("setting"):
            # What the analyst saw fills what the words left open; it never overrides the intent.
            brief["setting"] = vision["setting"][:200]
            update.update(brief=brief, brief_source={**state.get("brief_source", {}), "setting": "vision"})
        if vision.get("faces_visible") == "no" and brief.get("task_kind") == "parody_video":
            notes.append("the video analyst sees no faces: expression exaggeration may change little")
        hits = []
        if ctx.memory is not None:
            hits = ctx.memory.similar(state["intent"], state["brief"]["task_kind"])
        ctx.on_event("analysis", {"inputs": facts, "memory_hits": [(h["intent"], h["similarity"]) for h in hits]})
        return {"analysis": facts, "memory_hits": hits, "notes": list(state.get("notes", [])) + notes, **update}

    def do_plan(state):
        brief = Brief.model_validate(state["brief"])
        catalog = ctx.get_catalog()
        rctx = {**_recipe_ctx(state), "catalog": catalog}
        try:
            if state.get("recipe") and state.get("feedback") is not None and state.get("iteration", 0) > 0:
                recipe = recipe_registry.RECIPES[state["recipe"]]
                slots, changes = refine(recipe, state["slots"], state.get("feedback", []), state.get("evaluation", {}),
                                        rctx, ctx.llm)
                ctx.on_event("refine", {"iteration": state["iteration"], "changes": changes})
                if slots == state["slots"]:
                    return {"status": "stalled", "iteration": state["iteration"] - 1,
                            "message": f"no edit left to try after iteration {state['iteration'] - 1}; "
                                       f"best score {_best(state):.2f}"}
                return {"slots": slots, "notes": list(state.get("notes", [])) + changes}
            hits = state.get("memory_hits", [])
            excluded = state.get("unavailable", {})
            recipe, reason, unavailable = choose_recipe(
                brief, catalog, _inputs(state), [h["recipe"] for h in hits],
                exclude=set(excluded))
            seeded = next((h["slots"] for h in hits if h["recipe"] == recipe.name), None)
            slots, notes = fill_slots(recipe, brief, rctx, ctx.llm, seeded)
        except IntentError as exc:
            return {"status": "invalid", "message": str(exc)}
        except LLMTimeout as exc:
            return {"status": "llm_timeout", "message": str(exc)}
        unavailable = {**unavailable, **excluded}
        ctx.on_event("plan", {"recipe": recipe.name, "reason": reason, "slots": slots, "unavailable": unavailable})
        return {"recipe": recipe.name, "recipe_reason": reason, "slots": slots, "unavailable": unavailable,
                "notes": list(state.get("notes", [])) + notes, "iteration": state.get("iteration", 0) or 1}

    def do_build(state):
        recipe = recipe_registry.RECIPES[state["recipe"]]
        builder = GraphBuilder(ctx.get_catalog())
        try:
            recipe.build(builder, state["slots"], {**_recipe_ctx(state), "catalog": ctx.get_catalog()})
        except (BuildError, KeyError, ValueError) as exc:
            return {"graph": {}, "validation_errors": [f"recipe {recipe.name} could not build: {exc}"]}
        graph = builder.finalize()
        ctx.on_event("graph", {"iteration": state.get("iteration", 1), "summary": summarize(graph)})
        return {"graph": graph, "validation_errors": []}

    def do_validate(state):
        graph = state.get("graph") or {}
        errors = list(state.get("validation_errors", []))
        repairs: list[str] = []
        if graph:
            outcome = validate_and_repair(graph, ctx.get_catalog(), ctx.max_repair_rounds)
            graph, repairs = outcome.graph, outcome.actions
            errors += outcome.errors
            errors += check_graph(graph, ctx.get_catalog())  # security after repair: a repair cannot widen it
        ctx.on_event("validation", {"ok": not errors, "repairs": repairs, "errors": errors})
        if errors:
            unavailable = {**state.get("unavailable", {}), state["recipe"]: "graph failed validation: " + "; ".join(errors)[:300]}
            return {"graph": graph, "repairs": repairs, "validation_errors": errors, "unavailable": unavailable,
                    "iterations": list(state.get("iterations", [])) + [{
                        "iteration": state.get("iteration", 1), "recipe": state["recipe"], "slots": state["slots"],
                        "graph": graph, "validation_errors": errors, "repairs": repairs, "score": None}]}
        return {"graph": graph, "repairs": repairs, "validation_errors": []}

    def do_execute(state):
        settings = load_settings()
        if settings.llm.share_gpu_with_comfyui and ctx.llm.backend is not None and hasattr(ctx.llm.backend, "unload"):
            try:
                ctx.llm.backend.unload()  # VRAM hand-off: the LLM leaves the GPU before the heavy graph runs
                ctx.on_event("vram", {"unloaded": True})
            except Exception as exc:  # noqa: BLE001 - a failed unload only costs VRAM
                ctx.on_event("vram", {"unloaded": False, "error": str(exc)})
        iteration = state.get("iteration", 1)
        run_dir = ctx.run_dir / f"iter-{iteration}"
        ctx.on_event("execute", {"iteration": iteration, "engine": getattr(ctx.engine, "name", "engine")})
        result = ctx.engine.run(state["graph"], run_dir=run_dir, run_id=f"{state['run_id']}-it{iteration}")
        execution = {"status": result.status, "message": result.message(), "files": list(result.files),
                     "seconds": round(result.seconds, 4), "error": _plain(result.error),
                     "node_errors": _plain(result.node_errors)}
        ctx.on_event("executed", execution)
        return {"execution": execution}

    def do_evaluate(state):
        execution = state.get("execution", {})
        recipe = recipe_registry.RECIPES[state["recipe"]]
        brief = Brief.model_validate(state["brief"])
        if execution.get("status") != "success":
            evaluation = {"score": 0.0, "metrics": {}, "vision": {},
                          "notes": [f"execution failed: {execution.get('message')}"], "edits": []}
        else:
            try:
                evaluation = evaluate(execution.get("files", []), brief, recipe, state["slots"], ctx.llm,
                                      load_settings().dataset.blur_threshold)
            except LLMTimeout as exc:
                evaluation = {"score": 0.0, "metrics": {}, "vision": {}, "notes": [f"evaluator could not score: {exc}"],
                              "edits": []}
        record = {"iteration": state.get("iteration", 1), "recipe": state["recipe"], "slots": state["slots"],
                  "graph": state["graph"], "repairs": state.get("repairs", []), "execution": execution,
                  "evaluation": evaluation, "score": evaluation["score"]}
        ctx.on_event("score", {"iteration": record["iteration"], "score": evaluation["score"],
                               "metrics": evaluation["metrics"], "notes": evaluation["notes"]})
        return {"evaluation": evaluation, "feedback": evaluation.get("edits", []),
                "iterations": list(state.get("iterations", [])) + [record],
                "files": list(state.get("files", [])) + list(execution.get("files", []))}

    def do_decide(state):
        evaluation = state.get("evaluation", {})
        iteration = state.get("iteration", 1)
        failed_validation = bool(state.get("validation_errors"))
        score = 0.0 if failed_validation else float(evaluation.get("score", 0.0))
        if not failed_validation and state.get("execution", {}).get("status") == "success" and score >= ctx.approve_score:
            if ctx.memory is not None:
                ctx.memory.add(state["intent"], state["brief"], state["recipe"], state["slots"], state["graph"], score)
            status, message = "approved", f"approved at iteration {iteration} with score {score:.2f}"
        elif iteration >= ctx.max_iterations:
            status, message = "budget", f"stopped at the iteration budget ({ctx.max_iterations}); best score {_best(state):.2f}"
        elif state.get("elapsed_s", 0.0) >= ctx.max_seconds:
            status, message = "budget", f"stopped at the time budget ({ctx.max_seconds:g} s); best score {_best(state):.2f}"
        elif state.get("tokens", 0) >= ctx.max_tokens:
            status, message = "budget", f"stopped at the token budget ({ctx.max_tokens}); best score {_best(state):.2f}"
        else:
            ctx.on_event("decision", {"iteration": iteration, "decision": "refine", "score": score})
            if failed_validation:  # try the next recipe from scratch
                return {"status": "running", "iteration": iteration + 1, "recipe": "", "feedback": None}
            return {"status": "running", "iteration": iteration + 1}
        ctx.on_event("decision", {"iteration": iteration, "decision": status, "message": message})
        return {"status": status, "message": message}

    return {"understand": do_understand, "analyse": do_analyse, "plan": do_plan, "build": do_build,
            "validate": do_validate, "execute": do_execute, "evaluate": do_evaluate, "decide": do_decide}


def _best(state: DirectorState) -> float:
    return max((it.get("score") or 0.0 for it in state.get("iterations", [])), default=0.0)


def _plain(value):
    return json.loads(json.dumps(value, default=str)) if value is not None else None


def _stopped(state: DirectorState) -> bool:
    return state.get("status") in ("invalid", "llm_timeout", "failed", "stalled")


def build_graph(ctx: DirectorContext, checkpointer=None):
    from langgraph.graph import END, START, StateGraph

    steps = make_steps(ctx)
    g = StateGraph(DirectorState)
    for name, fn in steps.items():
        g.add_node(name, _step(name, ctx, fn))
    g.add_edge(START, "understand")
    g.add_conditional_edges("understand", lambda s: END if _stopped(s) else "analyse")
    g.add_edge("analyse", "plan")
    g.add_conditional_edges("plan", lambda s: END if _stopped(s) else "build")
    g.add_edge("build", "validate")
    g.add_conditional_edges("validate", lambda s: "decide" if s.get("validation_errors") else "execute")
    g.add_edge("execute", "evaluate")
    g.add_edge("evaluate", "decide")
    g.add_conditional_edges("decide", lambda s: "plan" if s.get("status") == "running" else END)
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


def run_director(intent: str, ctx: DirectorContext, *, run_id: str, inputs: list[str] | None = None,
                 character: str = "", resume: bool = False) -> dict:
    """Run (or resume) the loop; returns the final state. Raises only for errors outside the loop's control."""
    ctx.run_dir.mkdir(parents=True, exist_ok=True)
    saver, conn = _checkpointer(ctx.run_dir)
    try:
        app = build_graph(ctx, saver)
        config = {"configurable": {"thread_id": run_id}, "recursion_limit": 12 * ctx.max_iterations + 20}
        if resume:
            snapshot = app.get_state(config)
            if not snapshot.values:
                raise DirectorError(f"run {run_id} has no saved steps to resume")
            if not snapshot.next:
                return dict(snapshot.values)  # already finished: nothing to redo
            app.invoke(None, config)
        else:
            initial: DirectorState = {"run_id": run_id, "intent": intent, "inputs": list(inputs or []),
                                      "character": character, "iteration": 0, "iterations": [], "llm_log": [],
                                      "tokens": 0, "llm_seconds": 0.0, "planning_seconds": 0.0, "elapsed_s": 0.0,
                                      "status": "running", "started": time.time(), "files": [], "notes": []}
            app.invoke(initial, config)
        return dict(app.get_state(config).values)
    finally:
        conn.close()


def run_record(state: dict, extra: dict | None = None) -> dict:
    """What run.json holds: every prompt, raw answer, graph, validation/execution error, score and timing."""
    return {
        "run_id": state.get("run_id"), "intent": state.get("intent"), "inputs": state.get("inputs", []),
        "character": state.get("character", ""), "status": state.get("status"), "message": state.get("message", ""),
        "brief": state.get("brief"), "brief_source": state.get("brief_source"), "analysis": state.get("analysis"),
        "memory_hits": state.get("memory_hits", []), "recipe": state.get("recipe"),
        "recipe_reason": state.get("recipe_reason"), "unavailable_recipes": state.get("unavailable", {}),
        "final_slots": state.get("slots"), "final_graph": state.get("graph"), "iterations": state.get("iterations", []),
        "llm_calls": state.get("llm_log", []), "tokens": state.get("tokens", 0),
        "llm_seconds": round(state.get("llm_seconds", 0.0), 4),
        "planning_seconds_excluding_llm": round(state.get("planning_seconds", 0.0), 4),
        "active_seconds": round(state.get("elapsed_s", 0.0), 4), "step_seconds": state.get("step_times", {}),
        "files": state.get("files", []), "notes": state.get("notes", []), **(extra or {}),
    }


def validate_only(graph: dict, catalog) -> list[str]:
    result = validate_graph(graph, catalog)
    return [] if result.ok else result.messages()
