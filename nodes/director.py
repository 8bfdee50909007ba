"""Director nodes: `LLM Director` (plans and runs by node expansion), `Director Plan`, `Quality Evaluator`.

Inside ComfyUI the Director never queues a prompt on its own server and waits
(the single worker would deadlock, comfyui-internals.md §3.2). Each iteration
returns its generated graph as a node EXPANSION with an explicit id prefix from
the node's unique id; the expansion ends in a Quality Evaluator and, while the
iteration cap allows, a clone of the Director whose `feedback` input is linked
to that evaluator, so the next plan is made after the evaluation has run.
"""
from __future__ import annotations

import json
import time

from . import bridge

CATEGORY = "Animation Studio/director"
# The one message the Director panel (web/animation_studio.js) listens to. Its data:
# {run_id, node, stage: plan|brief|graph|evaluate|done, iteration, text, score?, scores?, edits?, graph?}
DIRECTOR_EVENT = "animation_studio.director"
_LLM_MEMO: dict = {}  # (role, prompt, schema) -> answer; ComfyUI may re-run expanded nodes (PR #10499)
_BACKENDS: dict = {}


def _backend(spec: str):
    spec = (spec or "none").strip()
    if spec == "none":
        return None
    if spec not in _BACKENDS:
        from ..agent.llm import make_backend

        _BACKENDS[spec] = make_backend(spec, role="creative_director")
    return _BACKENDS[spec]


def _caller(spec: str):
    from ..agent.director.planner import LLMCaller

    return LLMCaller(_backend(spec), memo=_LLM_MEMO)


def _catalog():
    """The live catalog: ComfyUI's own node mappings inside ComfyUI, the pack's outside."""
    from ..agent.catalog import Catalog, pack_catalog

    if bridge.in_comfyui():
        import nodes as comfy_nodes  # ComfyUI's top-level module, only inside ComfyUI

        return Catalog.from_mappings(comfy_nodes.NODE_CLASS_MAPPINGS, getattr(comfy_nodes, "NODE_DISPLAY_NAME_MAPPINGS", {}),
                                     source="comfyui")
    return pack_catalog()


def comfyui_node_errors(graph: dict, outer: dict | None = None, timeout: float = 60.0) -> dict:
    """ComfyUI's own validator (`execution.validate_inputs`) over every node of `graph` -> node_errors.

    Expanded graphs are never validated by ComfyUI itself (comfyui-internals.md §1.6), so the Director calls
    the internal coroutine on a prompt that also holds the outer nodes its links point at (marked valid: they
    were validated when the prompt was queued). It coerces literals in `graph` in place. The node runs on
    the worker's event loop, so the coroutine gets a loop of its own in a helper thread.
    """
    import asyncio
    import uuid
    from concurrent.futures import ThreadPoolExecutor

    import execution  # ComfyUI's module: only called inside ComfyUI

    outer = {k: v for k, v in (outer or {}).items() if k not in graph}
    prompt = {**outer, **graph}
    validated: dict = {node_id: (True, [], node_id) for node_id in outer}
    prompt_id = f"director-validate-{uuid.uuid4().hex[:8]}"

    async def validate_all():
        for node_id in graph:
            try:
                await execution.validate_inputs(prompt_id, prompt, node_id, validated)
            except Exception as exc:  # noqa: BLE001 - ComfyUI reports these as exception_during_validation
                validated[node_id] = (False, [{"type": "exception_during_validation",
                                               "message": "Exception when validating node", "details": str(exc),
                                               "extra_info": {}}], node_id)

    with ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(lambda: asyncio.run(validate_all())).result(timeout=timeout)
    return {node_id: {"errors": errors, "dependent_outputs": [], "class_type": graph[node_id].get("class_type")}
            for node_id, (ok, errors, _) in validated.items() if node_id in graph and not ok and errors}


def _outer_nodes(graph: dict, dynprompt) -> dict:
    """The nodes outside `graph` that its links point at (from ComfyUI's DYNPROMPT), for ComfyUI's validator."""
    outer = {}
    for node in graph.values():
        for value in (node.get("inputs") or {}).values():
            if isinstance(value, list) and len(value) == 2 and value[0] not in graph and dynprompt is not None:
                try:
                    outer[value[0]] = dynprompt.get_node(value[0])
                except Exception:  # noqa: BLE001 - an unknown id is the validator's finding, not ours
                    pass
    return outer


def plan_graph(intent: str, character: str, llm: str, inputs: list[str], history: dict | None = None,
               feedback: dict | None = None, prefix: str = "", dynprompt=None) -> dict:
    """One planning pass (no execution): brief, recipe, slots, and the validated, allow-listed graph."""
    from ..agent.director import recipes as recipe_registry
    from ..agent.director.analyse import look_at_inputs
    from ..agent.director.builder import GraphBuilder
    from ..agent.director.graph import classify_inputs
    from ..agent.director.planner import choose_recipe, fill_slots, refine, understand
    from ..agent.director.repair import validate_and_repair
    from ..agent.director.security import SecurityError, check_graph
    from ..agent.director.state import Brief

    catalog = _catalog()
    caller = _caller(llm)
    kinds = classify_inputs(inputs)
    ctx = {"intent": intent, "inputs": kinds, "catalog": catalog}
    if history and history.get("recipe"):
        brief = Brief.model_validate(history["brief"])
        recipe = recipe_registry.RECIPES[history["recipe"]]
        slots, changes = refine(recipe, history["slots"], (feedback or {}).get("edits", []), feedback or {}, ctx, caller)
        reason = "refined: " + ("; ".join(changes) or "no change")
    else:
        brief, _, _ = understand(intent, kinds, character, caller)
        seen, _ = look_at_inputs(kinds, intent, caller)  # a vision LLM looks at the input media first
        ctx["analysis"] = next(iter(seen.values()), {})
        if ctx["analysis"].get("setting") and not brief.setting:
            brief = brief.model_copy(update={"setting": ctx["analysis"]["setting"][:200]})
        recipe, reason, _ = choose_recipe(brief, catalog, kinds)
        slots, _ = fill_slots(recipe, brief, ctx, caller)
    builder = GraphBuilder(catalog, prefix=prefix)
    primary = recipe.build(builder, slots, ctx)
    graph = builder.finalize()
    # Inside ComfyUI its own validator checks the expansion too (ours alone outside), and both feed the repair.
    extra = (lambda g: comfyui_node_errors(g, _outer_nodes(g, dynprompt))) if bridge.in_comfyui() else None
    outcome = validate_and_repair(graph, catalog, extra_validator=extra)
    if not outcome.ok:
        raise ValueError(f"the planned graph is invalid: {'; '.join(outcome.errors)}")
    problems = check_graph(outcome.graph, catalog)
    if problems:
        raise SecurityError(problems)
    return {"brief": brief.model_dump(), "recipe": recipe.name, "reason": reason, "slots": slots,
            "graph": outcome.graph, "primary": primary, "tokens": caller.tokens,
            "validation": {"validators": outcome.validators, "repairs": outcome.actions,
                           "errors_seen": outcome.external_errors}}


def tell(node_id: str, run_id: str, stage: str, iteration: int, text: str, **extra) -> None:
    """One line of the Director's log: the node's progress text and the panel's event."""
    bridge.send_progress_text(text, node_id)
    bridge.send_message(DIRECTOR_EVENT, {"run_id": run_id, "node": node_id, "stage": stage,
                                         "iteration": iteration, "text": text, **extra})


def _graph_summary(graph: dict) -> str:
    names = [node["class_type"].removeprefix(bridge.NODE_PREFIX) for node in graph.values()]
    return f"{len(names)} nodes: " + " -> ".join(names)


def _verdict(score: float, approve_score: float, iteration: int, max_iterations: int) -> str:
    if score >= approve_score:
        return "approved"
    return "stopped at the iteration cap" if iteration >= max_iterations else "stopped: no edit left to try"


class DirectorPlan:
    CATEGORY = CATEGORY
    RETURN_TYPES = ("STRING", "STRING")
    RETURN_NAMES = ("graph_json", "plan")
    FUNCTION = "run"
    OUTPUT_NODE = True
    DESCRIPTION = "Turn an intent into a validated API-format graph (JSON) without running it."

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"intent": ("STRING", {"default": "Luca running, excited, sunny Italian seaside",
                                                   "multiline": True}),
                             "character": ("STRING", {"default": ""}),
                             "llm": ("STRING", {"default": "none", "tooltip": "none | local | ollama:MODEL | openai:URL#MODEL"})}}

    @classmethod
    def IS_CHANGED(cls, **_):
        return float("nan")  # an LLM plan is not a pure function of the inputs

    def run(self, intent, character, llm):
        plan = plan_graph(intent, character, llm, [])
        graph_json = json.dumps(plan["graph"], indent=1)
        summary = json.dumps({k: plan[k] for k in ("brief", "recipe", "reason", "slots")}, indent=1)
        return {"ui": {"text": [summary]}, "result": (graph_json, summary)}


class QualityEvaluator:
    CATEGORY = CATEGORY
    RETURN_TYPES = ("FLOAT", "STRING")
    RETURN_NAMES = ("score", "report")
    FUNCTION = "run"
    OUTPUT_NODE = True
    DESCRIPTION = ("Score generated media for a brief: sharpness/contrast of images, loudness and speech length of "
                   "audio, plus a vision model's rubric when `llm` names one that can see; returns a score 0..1 and "
                   "a JSON report with notes and slot edits for the Director.")

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"brief_json": ("STRING", {"default": '{"task_kind": "character_image"}', "multiline": True}),
                             "recipe": ("STRING", {"default": ""}),
                             "slots_json": ("STRING", {"default": "{}"})},
                "optional": {"images": ("IMAGE",), "audio": ("AUDIO",),
                             "llm": ("STRING", {"default": "none",
                                                "tooltip": "vision judge: none | ollama:MODEL | openai:URL#MODEL"})}}

    def run(self, brief_json, recipe, slots_json, images=None, audio=None, llm="none"):
        from ..configs.settings import load_settings
        from ..agent.director import recipes as recipe_registry
        from ..agent.director.evaluator import audio_metrics, character_image_metrics, image_metrics, judge, png_bytes
        from ..agent.director.state import Brief
        from .core import image_to_numpy

        try:
            brief = Brief.model_validate(json.loads(brief_json))
            slots = json.loads(slots_json or "{}")
        except Exception as exc:  # noqa: BLE001 - pydantic / json errors both mean a bad input
            raise ValueError(f"brief_json / slots_json: not a valid brief ({exc})") from None
        chosen = recipe_registry.RECIPES.get(recipe)
        per: dict[str, list[float]] = {}
        pngs: list[bytes] = []
        if images is not None:
            frames = image_to_numpy(images)
            sampled = frames[:: max(1, len(frames) // 8)]  # at most ~8 sampled frames
            bar = bridge.ProgressBar(len(sampled))
            for frame in sampled:
                for k, v in image_metrics(frame, load_settings().dataset.blur_threshold).items():
                    per.setdefault(k, []).append(v)
                bar.update(1)
            pngs = [png_bytes(f) for f in sampled[:3]]
        if audio is not None:
            wave = audio["waveform"][0].detach().cpu().numpy()
            for k, v in audio_metrics(wave, int(audio["sample_rate"]), brief.dialogue).items():
                per.setdefault(k, []).append(v)
        metrics = {"files_produced": 1.0 if per else 0.0, **{k: sum(v) / len(v) for k, v in per.items()}}
        notes: list[str] = []
        if images is not None and brief.task_kind == "character_image":
            found, notes, _ = character_image_metrics(list(sampled[:3]), brief)
            metrics.update(found)
        bridge.check_interrupt()
        evaluation = judge(metrics, pngs, brief, chosen, slots, _caller(llm), notes)
        report = json.dumps({k: evaluation[k] for k in ("score", "objective", "metrics", "vision", "edits", "notes")})
        return {"ui": {"text": [report]}, "result": (evaluation["score"], report)}


class LLMDirector:
    CATEGORY = CATEGORY
    RETURN_TYPES = ("IMAGE", "AUDIO", "STRING", "STRING")
    RETURN_NAMES = ("images", "audio", "report", "graph_json")
    FUNCTION = "run"
    OUTPUT_NODE = True
    DESCRIPTION = ("Intent -> plan -> graph, run inside this prompt by node expansion, evaluated, and re-planned "
                   "from the evaluator's feedback up to max_iterations.")

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"intent": ("STRING", {"default": "Luca running, excited, sunny Italian seaside",
                                                   "multiline": True}),
                             "character": ("STRING", {"default": ""}),
                             "llm": ("STRING", {"default": "none", "tooltip": "none | local | ollama:MODEL | openai:URL#MODEL"}),
                             "max_iterations": ("INT", {"default": 2, "min": 1, "max": 5}),
                             "approve_score": ("FLOAT", {"default": 0.7, "min": 0.0, "max": 1.0, "step": 0.05})},
                "optional": {"image": ("IMAGE",), "audio": ("AUDIO",),
                             "input_files": ("STRING", {"default": "", "tooltip": "input-folder file names, one a line"}),
                             # Internal: set by the Director on its own clone for the next iteration.
                             "feedback": ("STRING", {"forceInput": True}),
                             "previous_images": ("IMAGE",), "previous_audio": ("AUDIO",),
                             "history_json": ("STRING", {"default": ""}),
                             "iteration": ("INT", {"default": 0, "min": 0, "max": 5})},
                "hidden": {"unique_id": "UNIQUE_ID", "dynprompt": "DYNPROMPT"}}

    @classmethod
    def IS_CHANGED(cls, **_):
        return float("nan")  # re-plan on every queue; the LLM calls themselves are memoised

    def run(self, intent, character, llm, max_iterations, approve_score, image=None, audio=None, input_files="",
            feedback=None, previous_images=None, previous_audio=None, history_json="", iteration=0, unique_id=None,
            dynprompt=None):
        from .core import image_to_numpy  # noqa: F401 - keeps the core helpers importable for the expansion

        history = json.loads(history_json) if history_json else {}
        fb = json.loads(feedback) if feedback else None
        iteration = int(iteration or 0)
        uid = str(unique_id or "director")
        # The user's Director node; its clones are "<root>.it<k>.next" and every iteration's nodes are
        # prefixed "<root>.it<k>." (not the clone's own id), so ids stay short however many iterations run.
        root = uid.split(".it")[0]
        run_id = history.get("run_id") or f"{time.strftime('%Y%m%d-%H%M%S')}-{root}"
        bridge.check_interrupt()

        def finish(verdict: str, fb: dict):
            report = json.dumps({"status": verdict, "iterations": iteration, "scores": history["scores"],
                                 "recipe": history.get("recipe"), "slots": history.get("slots"),
                                 "validation": history.get("validation", []),
                                 "last_feedback": fb}, indent=1)
            tell(uid, run_id, "done", iteration,
                 f"{verdict} after {iteration} iteration(s), score {fb.get('score', 0):.2f}", scores=history["scores"])
            return {"ui": {"text": [report]},
                    "result": (previous_images, previous_audio, report, json.dumps(history.get("graph", {})))}

        if fb is not None:
            score = fb.get("score", 0.0)
            history.setdefault("scores", []).append(score)
            edits = "; ".join(f"{e.get('slot')} -> {e.get('value')} ({e.get('reason', '')})" for e in fb.get("edits", []))
            tell(uid, run_id, "evaluate", iteration, f"score {score:.2f}" + (f"; edits: {edits}" if edits else ""),
                 score=score, scores=fb.get("metrics", {}), edits=fb.get("edits", []))
            done = score >= approve_score or iteration >= max_iterations
            # Without an evaluator edit only a configured LLM can still propose one (planner.refine).
            no_edit = not fb.get("edits") and score < approve_score and _backend(llm) is None
            if done or no_edit:
                return finish(_verdict(score, approve_score, iteration, max_iterations), fb)
        step = iteration + 1
        tell(uid, run_id, "plan", step, f"iteration {step}/{max_iterations}: planning")
        inputs = [line.strip() for line in (input_files or "").splitlines() if line.strip()]
        plan = plan_graph(intent, character, llm, inputs, history or None, fb, prefix=f"{root}.it{step}.",
                          dynprompt=dynprompt)
        if fb is not None and plan["reason"] == "refined: no change":
            return finish("stopped: no edit left to try", fb)
        bridge.check_interrupt()
        if step == 1:
            brief = plan["brief"]
            tell(uid, run_id, "brief", step, ", ".join(f"{k}: {v}" for k, v in brief.items() if v not in ("", [], None)),
                 brief=brief)
        tell(uid, run_id, "graph", step, f"{plan['recipe']} ({plan['reason']}), {_graph_summary(plan['graph'])}",
             recipe=plan["recipe"], slots=plan["slots"], graph=plan["graph"], validation=plan["validation"])
        expansion = dict(plan["graph"])
        primary = plan["primary"]
        ev_id = f"{root}.it{step}.eval"
        ev_inputs = {"brief_json": json.dumps(plan["brief"]), "recipe": plan["recipe"], "slots_json": json.dumps(plan["slots"]),
                     "llm": llm}
        if primary.get("image"):
            ev_inputs["images"] = primary["image"]
        if primary.get("audio"):
            ev_inputs["audio"] = primary["audio"]
        expansion[ev_id] = {"class_type": "AnimStudio_QualityEvaluator", "inputs": ev_inputs}
        record = {"recipe": plan["recipe"], "brief": plan["brief"], "slots": plan["slots"], "graph": plan["graph"],
                  "scores": history.get("scores", []), "run_id": run_id,
                  "validation": history.get("validation", []) + [plan["validation"]]}
        clone_id = f"{root}.it{step}.next"
        clone_inputs = {"intent": intent, "character": character, "llm": llm, "max_iterations": max_iterations,
                        "approve_score": approve_score, "input_files": input_files, "feedback": [ev_id, 1],
                        "history_json": json.dumps(record), "iteration": step}
        if primary.get("image"):
            clone_inputs["previous_images"] = primary["image"]
        if primary.get("audio"):
            clone_inputs["previous_audio"] = primary["audio"]
        expansion[clone_id] = {"class_type": "AnimStudio_LLMDirector", "inputs": clone_inputs}
        links = tuple([clone_id, i] for i in range(4))
        return {"result": links, "expand": expansion}


NODE_CLASS_MAPPINGS, NODE_DISPLAY_NAME_MAPPINGS = bridge.node_mappings({
    "LLMDirector": (LLMDirector, "LLM Director"),
    "DirectorPlan": (DirectorPlan, "Director Plan"),
    "QualityEvaluator": (QualityEvaluator, "Quality Evaluator"),
})
