"""The one Director core: plan, compile, verify, decide. The CLI's LangGraph loop (graph.py) and the ComfyUI
node (node.py) both call these functions, with the same budgets and stopping rules.

- plan: the parser's plan (intent.py); with an LLM configured, llm_plan.plan_with_llm refines it (the words
  win where they are explicit). A refused intent is an IntentError.
- compile: the plan's operations -> a graph of the pack's nodes, validated (+ bounded repair) and allow-listed.
- verify: every post-condition of the plan measured on the real output files (verify.py); approval needs every
  hard one to hold. A failed check's edit becomes the next iteration's change.
- decide: approved | refine | a stop (budget, nothing left to change, unavailable), each said in words.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from ..catalog import Catalog
from .builder import BuildError, GraphBuilder
from .intent import IntentError, parse_intent
from .ops import Op, PlanError, Unavailable, compile_plan, make, parse_plan_json, plan_json, postconditions
from .repair import validate_and_repair
from .security import check_graph

INPUT_KINDS = {"image": (".png", ".jpg", ".jpeg", ".webp", ".bmp"),
               "video": (".mp4", ".mov", ".webm", ".mkv", ".avi", ".gif"),
               "audio": (".wav", ".mp3", ".flac", ".ogg", ".m4a")}
# The one parser refusal an LLM may still read (a paraphrase the parser does not know); every other reason
# (empty, nonsense, injection, paths, a missing input, a caption with no words...) is decided by the words alone.
LLM_MAY_READ = ("out_of_scope",)


class InputError(ValueError):
    """An input file that is missing or unreadable; the message names it (no other file is ever used instead)."""


@dataclass(frozen=True)
class Budgets:
    max_iterations: int = 3
    max_seconds: float = 900.0
    max_tokens: int = 60000

    @classmethod
    def from_settings(cls, max_iterations: int | None = None) -> "Budgets":
        from ...configs.settings import load_settings

        d = load_settings().director
        return cls(max_iterations or d.max_iterations, d.max_seconds, d.max_tokens)


def classify_inputs(names: list[str]) -> dict:
    kinds: dict[str, list[str]] = {}
    for name in names or []:
        kind = next((k for k, sfx in INPUT_KINDS.items() if str(name).lower().endswith(sfx)), None)
        if kind is None:
            raise InputError(f"input {name!r}: not a video, photo or audio file ({', '.join(sum(INPUT_KINDS.values(), ()))})")
        kinds.setdefault(kind, []).append(str(name))
    return kinds


def input_facts(kinds: dict) -> dict:
    """What the plan and the checks need to know about each input; InputError names a missing/unreadable one."""
    from ...nodes import bridge
    from ...nodes import video_io as vio

    facts: dict = {"paths": {}, "inputs": {k: list(v) for k, v in kinds.items()}}
    for kind, names in kinds.items():
        for name in names:
            try:
                path = bridge.safe_input_path(name)
            except (OSError, ValueError) as exc:
                raise InputError(f"input {name!r}: {exc}") from None
            if not path.is_file():
                raise InputError(f"input {name!r}: no such file in the input folder ({bridge.input_directory()})")
            facts["paths"].setdefault(kind, []).append(str(path))
            try:
                if kind == "video":
                    info = vio.probe(path)
                    fact = {"path": str(path), "duration": round(info.duration, 4), "fps": info.fps,
                            "frames": info.frame_count, "has_audio": info.has_audio, "width": info.width,
                            "height": info.height}
                elif kind == "image":
                    from PIL import Image

                    with Image.open(path) as img:
                        img.verify()
                    with Image.open(path) as img:
                        fact = {"path": str(path), "width": img.width, "height": img.height}
                else:
                    wave, rate = vio.decode_audio(path)
                    fact = {"path": str(path), "duration": round(wave.shape[-1] / rate, 4), "sample_rate": rate}
            except Exception as exc:  # noqa: BLE001 - any decoder error means the file cannot be used
                raise InputError(f"input {name!r}: cannot be read as {kind} ({type(exc).__name__}: {exc})") from None
            facts.setdefault(kind, fact)  # the first of each kind is the one the plan works on
    return facts


# ---------------------------------------------------------------- plan
def plan(intent: str, kinds: dict, character: str, llm, facts: dict, memory=None) -> tuple[list[Op], list[str], float]:
    """(ops, notes, llm_seconds). The parser first; then the LLM planner when one is configured and installed.

    `memory` (memory.Memory): approved plans of similar intents join the LLM planner's worked examples, so a
    request the parser cannot read is planned like the ones that were verified before. Without an LLM the
    parser decides alone: it is deterministic and has no uncertain reading for a memory to break a tie on."""
    notes: list[str] = []
    refusal = None
    try:
        parser_ops, parser_notes = parse_intent(intent, kinds, character)
        notes += parser_notes
    except IntentError as exc:
        if getattr(llm, "backend", llm) is None or exc.reason not in LLM_MAY_READ:  # no LLM: the refusal stands
            raise
        parser_ops, refusal = None, exc
        notes.append(f"parser: {exc}")
    if llm is None or getattr(llm, "backend", llm) is None:
        return parser_ops, notes, 0.0
    try:
        from .llm_plan import plan_with_llm
    except ImportError:  # the LLM planner is not installed in this build: the parser's plan stands
        notes.append("LLM planner not available: the parser's plan is used")
        if parser_ops is None:
            raise IntentError("out_of_scope", notes[-2].removeprefix("parser: ")) from None
        return parser_ops, notes, 0.0
    examples = _ExamplesWithMemory(memory, intent, kinds)
    started = time.perf_counter()
    ops, llm_notes = plan_with_llm(intent, facts, llm, parser_ops, examples=examples)
    if examples.remembered:
        notes.append("memory: approved plans of similar requests were the LLM's worked examples: " + "; ".join(
            f"{ex['intent']!r} ({ex['similarity']:.2f})" for ex in examples.remembered))
    notes += llm_notes
    seconds = time.perf_counter() - started
    if not ops:  # the parser's refusal stands, with what the LLM tried
        raise IntentError(refusal.reason if refusal else "out_of_scope",
                          f"{refusal or 'no plan'} (the LLM found no plan either: {'; '.join(llm_notes[-2:])})")
    return ops, notes, seconds


# ---------------------------------------------------------------- compile
def compile_graph(ops: list[Op], catalog: Catalog, ctx: dict, prefix: str = "", extra_validator=None,
                  finish=None) -> tuple[dict, list[str], list[str], dict]:
    """(graph, errors, repairs, stream). Errors name what is missing (a model and its folder) or invalid.
    `finish(builder, stream)` adds nodes after the plan's (the ComfyUI node's verifier) before validation."""
    builder = GraphBuilder(catalog, prefix=prefix)
    try:
        stream = compile_plan(builder, ops, ctx)
        if finish is not None:
            finish(builder, stream)
    except Unavailable as exc:
        return {}, [f"unavailable: {exc}"], [], {}
    except (PlanError, BuildError, KeyError) as exc:
        return {}, [f"the plan could not be compiled: {exc}"], [], {}
    outcome = validate_and_repair(builder.finalize(), catalog, extra_validator=extra_validator)
    errors = list(outcome.errors) + check_graph(outcome.graph, catalog)
    return outcome.graph, errors, list(outcome.actions), stream.__dict__


# ---------------------------------------------------------------- verify
def check(ops: list[Op], facts: dict, files: list[str]) -> tuple[list[dict], dict]:
    """(checks as plain dicts, verdict). Every post-condition of the plan measured on the output files."""
    from .verify import verdict, verify

    conditions = postconditions(ops, facts)
    inputs = {k: v for k, v in (facts.get("paths") or {}).items()}
    checks = verify(conditions, files, inputs)
    return [c.as_dict() for c in checks], verdict(checks)


# ---------------------------------------------------------------- decide
def apply_edits(ops: list[Op], edits: list[dict]) -> tuple[list[Op], list[str]]:
    """The plan with the verifier's edits applied (each validated against its operation's schema)."""
    new = list(ops)
    changes: list[str] = []
    for edit in edits or []:
        index = edit.get("op_index")
        if not isinstance(index, int):
            index = next((i for i, o in enumerate(new) if o.op == edit.get("op")), None)
        if index is None or not 0 <= index < len(new):
            changes.append(f"edit for {edit.get('op_index', edit.get('op'))!r} refused: no such step")
            continue
        params = dict(new[index].params)
        params.update(edit.get("params") or {})
        for name, factor in (edit.get("multiply") or {}).items():
            if isinstance(params.get(name), (int, float)):
                params[name] = round(params[name] * factor, 4)
        for name, delta in (edit.get("add") or {}).items():
            if isinstance(params.get(name), (int, float)):
                params[name] = round(params[name] + delta, 4)
        try:
            op = make(new[index].op, **params)
        except PlanError as exc:
            changes.append(f"edit of step {index + 1} refused: {exc}")
            continue
        if op != new[index]:
            changes.append(f"step {index + 1}: {new[index]} -> {op} ({edit.get('reason', 'verifier')})")
            new[index] = op
    return new, changes


def decide(verdict: dict | None, iteration: int, budgets: Budgets, elapsed_s: float, tokens: int,
           errors: list[str] | None = None) -> tuple[str, str]:
    """(status, message): approved | refine | not_approved | budget | unavailable | invalid."""
    if errors:
        unavailable = [e for e in errors if e.startswith("unavailable:")]
        if unavailable:
            return "unavailable", "not approved: " + "; ".join(e.removeprefix("unavailable: ") for e in unavailable)
        return "invalid", "not approved: the graph is invalid: " + "; ".join(errors)[:600]
    verdict = verdict or {}
    if verdict.get("approved"):
        return "approved", f"approved at iteration {iteration}: {verdict.get('reason', '')}"
    failed = "; ".join(f"{f['check']}: {f['detail']}" for f in verdict.get("failed", []) if f.get("hard"))[:600]
    if iteration >= budgets.max_iterations:
        return "budget", f"not approved after {iteration} iteration(s) (the iteration budget): {failed}"
    if elapsed_s >= budgets.max_seconds:
        return "budget", f"not approved: time budget ({budgets.max_seconds:g} s) spent: {failed}"
    if tokens >= budgets.max_tokens:
        return "budget", f"not approved: token budget ({budgets.max_tokens}) spent: {failed}"
    if not verdict.get("edits"):
        return "not_approved", f"not approved: no edit can fix what failed: {failed}"
    return "refine", f"iteration {iteration} not approved ({failed}); trying the verifier's edits"


def memory_path() -> Path:
    """Where approved plans are remembered, for the CLI and the node alike."""
    from ...configs.settings import load_settings

    return Path(load_settings().paths.output) / "director_memory.sqlite"


def remember(memory, intent: str, plan: list[dict], graph: dict, kinds: dict | None = None) -> None:
    """An approved plan joins the experience memory (read back by remembered_examples)."""
    if memory is not None:
        memory.add(intent, {"inputs": sorted(kinds or {})}, "plan", {"ops": plan}, graph or {}, 1.0)


MEMORY_EXAMPLES = 2  # a short prompt matters more on 2 cores than a third example
MEMORY_MIN_SIMILARITY = 0.6


class _ExamplesWithMemory:
    """The LLM planner's worked examples followed by remembered ones, looked up only when a prompt is built:
    a sure parser's plan never asks the LLM, and the lookup may load an embedding model."""

    def __init__(self, memory, intent: str, kinds: dict):
        self.memory, self.intent, self.kinds = memory, intent, kinds
        self.remembered: list[dict] | None = None

    def __iter__(self):
        from .llm_plan import WORKED_EXAMPLES

        if self.remembered is None:
            self.remembered = remembered_examples(self.memory, self.intent, self.kinds)
        return iter(WORKED_EXAMPLES + self.remembered)


def remembered_examples(memory, intent: str, kinds: dict) -> list[dict]:
    """Approved plans of intents like this one, on the same kinds of input, as worked examples
    ({intent, facts, plan, similarity}). A row that is not a valid plan (the file is in the output folder,
    anyone may have written it) is skipped."""
    if memory is None:
        return []
    examples = []
    for hit in memory.similar(intent, k=MEMORY_EXAMPLES * 3, min_similarity=MEMORY_MIN_SIMILARITY):
        stored_kinds = (hit.get("brief") or {}).get("inputs")
        if hit.get("recipe") != "plan" or stored_kinds != sorted(kinds or {}):
            continue
        try:
            ops = parse_plan_json({"ops": (hit.get("slots") or {}).get("ops")})
        except PlanError:
            continue
        if ops and all(ex["intent"] != hit["intent"] for ex in examples):
            examples.append({"intent": hit["intent"], "facts": {k: {} for k in stored_kinds}, "plan": plan_json(ops),
                             "similarity": hit["similarity"]})
    return examples[:MEMORY_EXAMPLES]


def output_prefix(run_id: str) -> str:
    return f"director/{run_id}"
