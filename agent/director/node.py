"""The Director inside ComfyUI: the same core (plan, compile, verify, decide) as the CLI, run by node expansion.

ComfyUI's single worker cannot queue a prompt and wait for it (comfyui-internals.md §3.2), so each iteration
returns its compiled graph as an EXPANSION. The expansion ends in `Director Verify`, which takes the final media
of the plan, saves it (the plan's export) and only then measures every post-condition on the saved file: the
verdict exists after the output it checks. A clone of the Director takes that verdict as its `feedback` and
decides with core.decide: approved, refine with the verifier's edits, or stop. Registered from the pack's entry
module (agent side), so nodes/ never imports agent/.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

from ...nodes import bridge
from . import core
from .intent import IntentError
from .llm_caller import LLMCaller
from .ops import normalize, plan_json

CATEGORY = "Animation Studio/director"
# The one message the Director panel (web/animation_studio.js) listens to. Its data:
# {run_id, node, stage: plan|decision|check|graph|evaluate|done, iteration, text, plan?, decisions?, checks?}
DIRECTOR_EVENT = "animation_studio.director"
_LLM_MEMO: dict = {}  # (role, prompt, schema) -> answer; ComfyUI may re-run expanded nodes
_BACKENDS: dict = {}


def _caller(spec: str) -> LLMCaller:
    spec = (spec or "none").strip()
    if spec == "none":
        return LLMCaller(None)
    if spec not in _BACKENDS:
        from ..llm import check_graph_spec, make_backend

        check_graph_spec(spec)  # a graph may name only the LLM servers the settings allow
        _BACKENDS[spec] = make_backend(spec, role="creative_director")
    return LLMCaller(_BACKENDS[spec], memo=_LLM_MEMO)


def _catalog():
    from ..catalog import Catalog, pack_catalog

    if bridge.in_comfyui():
        import nodes as comfy_nodes  # ComfyUI's top-level module, only inside ComfyUI

        return Catalog.from_mappings(comfy_nodes.NODE_CLASS_MAPPINGS,
                                     getattr(comfy_nodes, "NODE_DISPLAY_NAME_MAPPINGS", {}), source="comfyui")
    return pack_catalog()


def tell(node_id: str, run_id: str, stage: str, iteration: int, text: str, **extra) -> None:
    """One line of the Director's log: the node's progress text and the panel's event."""
    bridge.send_progress_text(text, node_id)
    bridge.send_message(DIRECTOR_EVENT, {"run_id": run_id, "node": node_id, "stage": stage,
                                         "iteration": iteration, "text": text, **extra})


def _files_of(ui: dict) -> list[str]:
    base = bridge.output_directory()
    out = []
    for entries in (ui or {}).values():
        for e in entries if isinstance(entries, list) else []:
            if isinstance(e, dict) and e.get("filename"):
                path = str(Path(base, e.get("subfolder") or "", e["filename"]))
                if path not in out:
                    out.append(path)
    return out


def _fact_paths(facts: dict) -> list[str]:
    paths = [p for names in (facts.get("paths") or {}).values() for p in names or []]
    return [str(p) for p in paths + [f.get("path") for f in facts.values() if isinstance(f, dict) and f.get("path")]]


def _in_input_folder(path: str) -> bool:
    base = bridge.input_directory().resolve()
    resolved = Path(path).resolve()
    return resolved == base or base in resolved.parents


class DirectorVerify:
    CATEGORY = CATEGORY
    RETURN_TYPES = ("STRING",)
    RETURN_NAMES = ("verdict_json",)
    FUNCTION = "run"
    OUTPUT_NODE = True
    DESCRIPTION = ("Save the plan's result, then measure every post-condition of the plan on the saved file "
                   "(duration, sound, OCR of captions, speech, scene, exaggeration...) and give the verdict.")

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"plan_json": ("STRING", {"default": "[]", "multiline": True}),
                             "facts_json": ("STRING", {"default": "{}"}),
                             "format": (["mp4", "gif", "webm", "png", "wav", "none"],),
                             "filename_prefix": ("STRING", {"default": "director/result"})},
                "optional": {"video": ("STUDIO_VIDEO",), "images": ("IMAGE",), "audio": ("AUDIO",)}}

    def run(self, plan_json, facts_json, format, filename_prefix, video=None, images=None, audio=None):
        from ...nodes import audio as audio_nodes
        from ...nodes import core as core_nodes
        from ...nodes import video as video_nodes

        try:
            ops = [normalize(o) for o in json.loads(plan_json)]
            facts = json.loads(facts_json or "{}")
        except (ValueError, TypeError) as exc:
            raise ValueError(f"Director Verify: plan_json / facts_json: not a plan ({exc})") from None
        outside = [p for p in _fact_paths(facts) if not _in_input_folder(p)]
        if outside:
            raise ValueError(f"Director Verify: input 'facts_json' names files outside the input folder: {outside[:3]}")
        ui: dict = {}
        if format in ("mp4", "gif", "webm"):
            if video is None:
                raise ValueError("Director Verify: the plan ends in a video but input 'video' is not connected")
            ui = video_nodes.SaveVideo().run(video, filename_prefix, format, True)["ui"]
        elif format == "png":
            if images is None:
                raise ValueError("Director Verify: the plan ends in a picture but input 'images' is not connected")
            ui = core_nodes.SaveImage().run(images, filename_prefix)["ui"]
        elif format == "wav":
            if audio is None:
                raise ValueError("Director Verify: the plan ends in sound but input 'audio' is not connected")
            ui = audio_nodes.SaveAudio().run(audio, filename_prefix, "wav")["ui"]
        files = _files_of(ui)
        bridge.check_interrupt()
        checks, verdict = core.check(ops, facts, files)
        result = {"verdict": verdict, "checks": checks, "files": files}
        return {"ui": {**ui, "text": [json.dumps(verdict)]}, "result": (json.dumps(result, default=str),)}


class LLMDirector:
    CATEGORY = CATEGORY
    RETURN_TYPES = ("STRING", "STRING")
    RETURN_NAMES = ("report", "plan_json")
    FUNCTION = "run"
    OUTPUT_NODE = True
    DESCRIPTION = ("Intent -> typed plan -> graph, run inside this prompt by node expansion; every post-condition "
                   "is verified on the saved result, failed checks become the next iteration's edits.")

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"intent": ("STRING", {"default": "make this clip quarter speed and add a music sting",
                                                   "multiline": True}),
                             "character": ("STRING", {"default": ""}),
                             "llm": ("STRING", {"default": "none", "tooltip": "none | local | ollama:MODEL | openai:URL#MODEL"}),
                             "max_iterations": ("INT", {"default": 2, "min": 1, "max": 5})},
                "optional": {"input_files": ("STRING", {"default": "", "tooltip": "input-folder file names, one a line"}),
                             # Internal: set by the Director on its own clone for the next iteration.
                             "feedback": ("STRING", {"forceInput": True}),
                             "history_json": ("STRING", {"default": ""}),
                             "iteration": ("INT", {"default": 0, "min": 0, "max": 5})},
                "hidden": {"unique_id": "UNIQUE_ID", "dynprompt": "DYNPROMPT"}}

    @classmethod
    def IS_CHANGED(cls, **_):
        return float("nan")  # re-plan on every queue; the LLM calls themselves are memoised

    def run(self, intent, character, llm, max_iterations, input_files="", feedback=None, history_json="",
            iteration=0, unique_id=None, dynprompt=None):
        history = json.loads(history_json) if history_json else {}
        iteration = int(iteration or 0)
        uid = str(unique_id or "director")
        root = uid.split(".it")[0]
        run_id = history.get("run_id") or f"{time.strftime('%Y%m%d-%H%M%S')}-{root}"
        budgets = core.Budgets.from_settings(int(max_iterations))
        caller = _caller(llm)
        names = [line.strip() for line in (input_files or "").splitlines() if line.strip()]
        decisions = list(history.get("decisions", []))

        def say(stage: str, text: str, step: int, **extra) -> None:
            decisions.append(text)
            tell(uid, run_id, stage, step, text, **extra)

        def finish(status: str, message: str):
            if status == "approved":
                from .memory import Memory

                core.remember(Memory(core.memory_path()), intent, history.get("plan", []), history.get("graph", {}),
                              core.classify_inputs(names))
            say("done", f"{status}: {message}", iteration, status=status, decisions=decisions)
            report = json.dumps({"status": status, "message": message, "iterations": iteration,
                                 "plan": history.get("plan"), "checks": history.get("checks", []),
                                 "decisions": decisions, "files": history.get("files", [])}, indent=1, default=str)
            return {"ui": {"text": [report]}, "result": (report, json.dumps(history.get("plan", [])))}

        try:
            kinds = core.classify_inputs(names)
            facts = core.input_facts(kinds)  # never from history_json: a queued graph may carry anything there
        except core.InputError as exc:
            raise ValueError(f"LLM Director: input 'input_files': {exc}") from None
        if feedback is not None:
            result = json.loads(feedback)
            verdict = result.get("verdict", {})
            history.update(checks=result.get("checks", []), files=result.get("files", []))
            for c in result.get("checks", []):
                say("check", f"{'PASS' if c['passed'] else 'FAIL'} {c['check']}: {c['detail']}", iteration)
            status, message = core.decide(verdict, iteration, budgets, time.time() - history.get("started", time.time()),
                                          caller.tokens)
            if status != "refine":
                return finish(status, message)
            ops, changes = core.apply_edits([normalize(o) for o in history["plan"]], verdict.get("edits", []))
            if ops == [normalize(o) for o in history["plan"]]:
                return finish("not_approved", "the verifier's edits change nothing: " + message)
            for change in changes:
                say("refine", change, iteration + 1)
        else:
            try:
                from .memory import Memory

                memory = Memory(core.memory_path()) if caller.backend is not None else None  # read by the LLM only
                ops, notes, _ = core.plan(intent, kinds, character, caller, facts, memory)
            except IntentError as exc:
                raise ValueError(f"LLM Director: input 'intent': {exc}") from None
            for note in notes:
                say("plan", note, 1)
            history["started"] = time.time()
        step = iteration + 1
        say("plan", f"iteration {step}/{budgets.max_iterations}: " + " -> ".join(str(o) for o in ops), step,
            plan=plan_json(ops))
        prefix = f"{root}.it{step}."
        ctx = {"inputs": kinds, "prefix": core.output_prefix(run_id), "run_id": run_id, "verifier_saves": True,
               "facts": facts}
        extra = None
        if bridge.in_comfyui():
            from .comfy_validate import comfyui_validator

            extra = comfyui_validator(dynprompt)
        verify_id = f"{prefix}verify"

        def add_verifier(builder, stream) -> None:
            """Director Verify saves the plan's result and then checks it: the verdict comes after the output."""
            links = {"video": stream.video, "images": stream.image, "audio": stream.audio}
            builder.node("AnimStudio_DirectorVerify", node_id="verify", plan_json=json.dumps(plan_json(ops)),
                         facts_json=json.dumps(facts), format=stream.export or "none",
                         filename_prefix=f"{core.output_prefix(run_id)}/result",
                         **{k: v for k, v in links.items() if v is not None})

        graph, errors, repairs, _ = core.compile_graph(ops, _catalog(), ctx, prefix, extra, add_verifier)
        for r in repairs:
            say("graph", f"repaired: {r}", step)
        if errors:
            status, message = core.decide(None, step, budgets, 0.0, 0, errors)
            history["plan"] = plan_json(ops)
            iteration = step
            return finish(status, message)
        say("graph", f"{len(graph)} nodes: " + " -> ".join(n["class_type"].removeprefix(bridge.NODE_PREFIX)
                                                          for n in graph.values()), step, graph=graph)
        expansion = dict(graph)
        record = {**history, "plan": plan_json(ops), "graph": graph, "run_id": run_id,
                  "decisions": decisions}
        clone_id = f"{root}.it{step}.next"
        expansion[clone_id] = {"class_type": "AnimStudio_LLMDirector", "inputs": {
            "intent": intent, "character": character, "llm": llm, "max_iterations": max_iterations,
            "input_files": input_files, "feedback": [verify_id, 0], "history_json": json.dumps(record, default=str),
            "iteration": step}}
        return {"result": ([clone_id, 0], [clone_id, 1]), "expand": expansion}


NODE_CLASS_MAPPINGS, NODE_DISPLAY_NAME_MAPPINGS = bridge.node_mappings({
    "LLMDirector": (LLMDirector, "LLM Director"),
    "DirectorVerify": (DirectorVerify, "Director Verify"),
})
