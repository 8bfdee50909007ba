"""Intent -> typed brief -> recipe + filled slots, and feedback -> concrete slot edits.

A deterministic keyword parse of the intent is the floor: it alone yields a
usable brief and plan, so a tiny local model (SmolLM2-135M gives poor answers)
can never make the plan worse than the floor. LLM answers are asked for
against a JSON schema and merged field by field, only where they validate.
"""
from __future__ import annotations

import hashlib
import json
import re
import time
from dataclasses import dataclass, field
from typing import Any

from ..catalog import Catalog
from . import recipes as recipe_registry
from .recipes import Recipe
from .state import TASK_KINDS, Brief


class IntentError(ValueError):
    """The intent is empty, gibberish or asks for something no recipe or node can do."""


class LLMTimeout(RuntimeError):
    """The LLM did not answer in time; the run stops with this message."""


# ---------------------------------------------------------------- LLM calls, recorded
@dataclass
class LLMCaller:
    """Calls the backend, records every prompt and raw answer, counts tokens and LLM seconds."""

    backend: Any = None
    log: list = field(default_factory=list)
    tokens: int = 0
    seconds: float = 0.0
    memo: dict | None = None  # (role, prompt) -> data; the ComfyUI node memoises calls across re-executions

    def ask(self, role: str, system: str, user: str, schema: dict | None, images: list | None = None,
            max_tokens: int = 512) -> dict | None:
        """The validated JSON answer, or None when there is no backend or the answer was rejected."""
        if self.backend is None:
            return None
        # The images are part of the question: the same rubric on a new render must be asked again.
        seen = hashlib.sha256(b"".join(images or [])).hexdigest() if images else ""
        key = (role, system, user, json.dumps(schema, sort_keys=True), seen)
        if self.memo is not None and key in self.memo:
            return self.memo[key]
        messages = [{"role": "system", "content": system}, {"role": "user", "content": user}]
        entry: dict = {"role": role, "messages": messages, "schema": schema, "images": len(images or [])}
        started = time.perf_counter()
        try:
            reply = self.backend.chat(messages, schema=schema, images=images or None, temperature=0.0,
                                      max_tokens=max_tokens)
        except Exception as exc:  # noqa: BLE001 - recorded; a timeout stops the run, anything else falls back
            entry.update(error=f"{type(exc).__name__}: {exc}", seconds=time.perf_counter() - started)
            self.seconds += entry["seconds"]
            self.log.append(entry)
            text = f"{type(exc).__name__} {exc}".lower()
            if "timeout" in text or "timed out" in text:
                raise LLMTimeout(f"the LLM ({getattr(self.backend, 'model', '?')}) did not answer in time: {exc}") from None
            return None
        seconds = getattr(reply, "seconds", None) or (time.perf_counter() - started)
        tokens = int(getattr(reply, "prompt_tokens", 0) or 0) + int(getattr(reply, "completion_tokens", 0) or 0)
        self.tokens += tokens
        self.seconds += seconds
        data = getattr(reply, "data", None)
        if data is None and schema is not None:
            data, why = _parse_json(getattr(reply, "text", ""))
            if why:
                entry["rejected"] = why
        entry.update(raw=getattr(reply, "text", ""), data=data, tokens=tokens, seconds=seconds,
                     model=getattr(reply, "model", ""), backend=getattr(reply, "backend", ""))
        self.log.append(entry)
        if not isinstance(data, dict):
            entry.setdefault("rejected", "the answer is not a JSON object")
            data = None
        if self.memo is not None:
            self.memo[key] = data
        return data


def _parse_json(text: str) -> tuple[Any, str]:
    """Repair the usual small-model damage (code fences, prose around the object); else say why not."""
    text = (text or "").strip()
    text = re.sub(r"^```(?:json)?|```$", "", text, flags=re.M).strip()
    try:
        return json.loads(text), ""
    except json.JSONDecodeError:
        pass
    start, end = text.find("{"), text.rfind("}")
    if start >= 0 and end > start:
        try:
            return json.loads(text[start:end + 1]), ""
        except json.JSONDecodeError as exc:
            return None, f"invalid JSON from the LLM: {exc.msg} at column {exc.colno}"
    return None, "invalid JSON from the LLM: no JSON object in the answer"


# ---------------------------------------------------------------- keyword floor
TASK_WORDS = {
    "parody_video": ("parody", "video", "clip", "scene", "slow motion", "slow-motion", "slowmo", "footage", "movie",
                     "film", "spoof", "replay", "reenact"),
    "character_voice": ("saying", "says", "say ", "said", "voice", "speak", "speaks", "speaking", "shout", "shouts",
                        "whisper", "whispers", "line", "dialogue", "tts", "yell", "yells", "sing", "sings"),
    "character_image": ("image", "picture", "portrait", "poster", "render", "drawing", "still", "photo", "running",
                        "standing", "jumping", "pose", "sitting", "illustration", "frame of", "shot of", "character sheet"),
    "lora_dataset": ("lora dataset", "training set", "training data", "dataset", "lora", "train a lora", "curate"),
    # Simple edits no recipe covers: the free composer (compose.py) makes a small graph for them.
    "composition": ("gif", "title card", "text card", "gradient", "convert", "turn this", "turn it", "slow down",
                    "slow it down", "add a caption", "caption", "subtitle", "add music", "with music", "background music"),
}
EMOTIONS = {
    "excited": ("excited", "exciting", "thrilled", "joyful"), "happy": ("happy", "cheerful", "smiling", "glad"),
    "determined": ("determined", "determination", "resolute", "firm"), "angry": ("angry", "furious", "mad", "annoyed"),
    "sad": ("sad", "crying", "gloomy", "tearful"), "scared": ("scared", "afraid", "terrified", "fear"),
    "surprised": ("surprised", "shocked", "amazed", "astonished"), "dramatic": ("dramatic", "epic", "intense"),
    "funny": ("funny", "silly", "hilarious", "comic", "goofy"),
}
ACTIONS = ("running", "jumping", "swimming", "walking", "standing", "sitting", "dancing", "flying", "riding", "eating",
           "laughing", "shouting", "diving", "falling", "looking", "waving")
NUMBER_WORDS = {"two": 2, "three": 3, "four": 4, "half": 0.5, "double": 2, "triple": 3}


# Single quotes count only at word edges, so "Luca's ... Alberto's" is not dialogue.
QUOTED = re.compile(r"[\"“«]([^\"”»]{2,})[\"”»]|(?:^|(?<=\s))'([^']{2,}?)'(?=[\s.,!?;:]|$)")


def _quoted(text: str) -> list[str]:
    return [a or b for a, b in QUOTED.findall(text)]


def _has(text: str, words) -> bool:
    return any(re.search(r"\b" + re.escape(w.strip()) + r"\b", text) for w in words)


def _first_emotion(lowered: str) -> str:
    """The mood named first in the text ("funny parody ... dramatic slow motion" is funny)."""
    found = []
    for emotion, ws in EMOTIONS.items():
        for w in ws:
            m = re.search(r"\b" + re.escape(w) + r"\b", lowered)
            if m:
                found.append((m.start(), emotion))
    return min(found)[1] if found else "neutral"


def known_characters() -> list[str]:
    from ...configs.characters import list_characters

    return list_characters()


def keyword_brief(intent: str, inputs: dict | None = None, character: str = "") -> tuple[Brief, dict]:
    """The deterministic brief and, per field, whether keywords decided it."""
    text = " " + (intent or "").strip() + " "
    if not (intent or "").strip():
        raise IntentError("the intent is empty: describe what to make, e.g. \"Luca running, excited, sunny Italian seaside\"")
    lowered = text.lower()
    words = re.findall(r"[a-zà-ÿ']+", lowered)
    if not words or sum(len(w) > 1 for w in words) == 0:
        raise IntentError(f"the intent {intent!r} has no words to understand")
    inputs = inputs or {}
    decided: dict[str, str] = {}

    quoted = _quoted(text)
    dialogue = max(quoted, key=len).strip() if quoted else ""
    scores = {kind: sum(1 for w in ws if _has(lowered, [w])) for kind, ws in TASK_WORDS.items()}
    names = known_characters()
    named = any(_has(lowered, [n.lower()]) for n in names) or bool(character)
    if dialogue:
        # Quoted words are a line to speak when someone speaks them; on a title card with no one, a caption.
        scores["character_voice" if named or not scores["composition"] else "composition"] += 2
    if inputs.get("video"):
        # An input clip means a parody unless the words ask for a dataset or a simple edit of it.
        edit = max(("lora_dataset", "composition"), key=scores.get)
        scores[edit if scores[edit] and not _has(lowered, ["parody", "spoof"]) else "parody_video"] += 2
    if inputs.get("audio"):
        scores["character_voice"] += 1
    characters = [n for n in names if _has(lowered, [n.lower()])]
    if character:
        characters = [character.lower()] + [c for c in characters if c != character.lower()]
    best = max(scores, key=scores.get)
    if scores[best] == 0:
        if characters:  # "Luca, excited, at the beach": a character with no medium is a picture
            best = "character_image"
        else:
            raise IntentError(f"cannot tell what to make from {intent!r}")
    decided["task_kind"] = "keywords"
    emotion = _first_emotion(lowered)
    if emotion != "neutral":
        decided["emotion"] = "keywords"
    slow = 1.0
    if _has(lowered, ["slow motion", "slow-motion", "slowmo"]):
        slow = 2.0
        m = re.search(r"(\d+(?:\.\d+)?)\s*x\b|x\s*(\d+(?:\.\d+)?)", lowered)
        if m:
            slow = float(m.group(1) or m.group(2))
        elif _has(lowered, ["dramatic", "very", "super", "extreme", "ultra"]):
            slow = 4.0
        decided["slow_motion"] = "keywords"
    exaggeration = 1.0
    if _has(lowered, ["exaggerated", "exaggerate", "over the top", "cartoonish", "extreme", "exaggerating"]):
        exaggeration = 1.8
        decided["exaggeration"] = "keywords"
    duration = 0.0
    m = re.search(r"(\d+(?:\.\d+)?)\s*-?\s*(?:s|sec|secs|second|seconds)\b", lowered)
    if m:
        duration = float(m.group(1))
        decided["duration_s"] = "keywords"
    action = next((a for a in ACTIONS if _has(lowered, [a])), "")
    # The setting is whatever comma-separated phrase names neither the character nor the mood.
    parts = [p.strip(" .!") for p in re.split(r"[,;]", intent.replace(dialogue, "") if dialogue else intent) if p.strip(" .!")]
    setting_parts = [p for p in parts[1:] if not _has(p.lower(), [w for ws in EMOTIONS.values() for w in ws])
                     and not _has(p.lower(), [c for c in names])]
    setting = ", ".join(setting_parts)[:200]
    constraints = []
    if slow > 1:
        constraints.append(f"slow motion x{slow:g}")
    if exaggeration > 1:
        constraints.append("exaggerated expressions")
    if duration:
        constraints.append(f"{duration:g} seconds")
    style = "pixar" if not _has(lowered, ["anime", "2d", "sketch"]) else next(
        s for s in ("anime", "2d", "sketch") if _has(lowered, [s]))
    brief = Brief(task_kind=best, characters=characters, emotion=emotion, style=style, setting=setting,
                  action=action, dialogue=dialogue, constraints=constraints,
                  inputs=[f"{k}:{v}" for k, vs in inputs.items() for v in (vs if isinstance(vs, list) else [vs])],
                  slow_motion=min(max(slow, 1.0), 8.0), exaggeration=exaggeration, duration_s=duration)
    for name in ("characters", "setting", "action", "dialogue"):
        if getattr(brief, name):
            decided[name] = "keywords"
    return brief, decided


BRIEF_SCHEMA = {
    "type": "object",
    "properties": {
        "task_kind": {"type": "string", "enum": list(TASK_KINDS)},
        "characters": {"type": "array", "items": {"type": "string", "maxLength": 40}, "maxItems": 4},
        "emotion": {"type": "string", "maxLength": 40},
        "setting": {"type": "string", "maxLength": 200},
        "action": {"type": "string", "maxLength": 120},
        "dialogue": {"type": "string", "maxLength": 300},
        "slow_motion": {"type": "number", "minimum": 1, "maximum": 8},
        "exaggeration": {"type": "number", "minimum": 0, "maximum": 3},
    },
    "required": ["task_kind", "characters", "emotion", "setting", "action", "dialogue"],
    "additionalProperties": False,
}


def understand(intent: str, inputs: dict, character: str, llm: LLMCaller) -> tuple[Brief, dict, list[str]]:
    """Brief = keyword floor, then LLM fields that validate and do not contradict what keywords decided."""
    brief, decided = keyword_brief(intent, inputs, character)
    source = {k: "keywords" for k in decided}
    notes: list[str] = []
    answer = llm.ask("creative_director",
                     "You turn an animation request into a JSON brief. Answer with JSON only.",
                     f"Request: {intent}\nKnown characters: {', '.join(known_characters())}\n"
                     f"Task kinds: {', '.join(TASK_KINDS)}", BRIEF_SCHEMA, max_tokens=200)
    if answer is None:
        return brief, source, notes
    merged = brief.model_dump()
    names = set(known_characters())
    for key, value in answer.items():
        if key not in BRIEF_SCHEMA["properties"] or key in decided:
            continue  # keywords that decided a field win over a (possibly tiny) model
        if key == "characters":
            value = [str(v).lower() for v in value or [] if str(v).lower() in names]
            if not value:
                continue
        candidate = {**merged, key: value}
        try:
            Brief.model_validate(candidate)
        except Exception as exc:  # noqa: BLE001 - pydantic's error names the field
            notes.append(f"LLM brief field {key!r} rejected: {exc.__class__.__name__}")
            continue
        if value in ("", [], None):
            continue
        merged[key] = value
        source[key] = "llm"
    return Brief.model_validate(merged), source, notes


# ---------------------------------------------------------------- recipe choice and slots
@dataclass
class Plan:
    recipe: Recipe
    slots: dict
    reason: str
    unavailable: dict
    notes: list[str]


def choose_recipe(brief: Brief, catalog: Catalog, inputs: dict, preferred: list[str] | None = None,
                  exclude: set | None = None) -> tuple[Recipe, str, dict]:
    """The best available recipe for the task (memory's past winners first), and why the others were not used."""
    candidates = recipe_registry.for_task(brief.task_kind)
    unavailable = {}
    usable = []
    for recipe in candidates:
        why = "excluded after a failed attempt" if recipe.name in (exclude or ()) else \
            recipe.unavailable_reason(catalog, inputs)
        if why:
            unavailable[recipe.name] = why
        else:
            usable.append(recipe)
    if not usable:
        raise IntentError(f"no recipe can make a {brief.task_kind} with the installed nodes "
                          f"({'; '.join(f'{k}: {v}' for k, v in unavailable.items()) or 'none registered'}). "
                          f"What I can do: {recipe_registry.describe_capabilities(catalog)}")
    rank = {name: i for i, name in enumerate(preferred or [])}
    usable.sort(key=lambda r: (rank.get(r.name, len(rank)), -r.priority))
    chosen = usable[0]
    why = f"{chosen.title}" + (" (remembered from a similar approved run)" if chosen.name in rank else "") + \
        (" — last resort: built from core nodes only, a placeholder for the real tool nodes" if chosen.last_resort else "")
    return chosen, why, unavailable


def fill_slots(recipe: Recipe, brief: Brief, ctx: dict, llm: LLMCaller, seeded: dict | None = None) -> tuple[dict, list[str]]:
    """Slots = recipe defaults <- brief-seeded values <- remembered values <- validated LLM values."""
    slots = {**recipe.defaults(), **recipe.seed(brief, ctx)}
    if recipe.fill is not None:
        return recipe.fill(recipe, brief, ctx, llm, slots)
    notes: list[str] = []
    if seeded:
        kept, _ = recipe.clean({k: v for k, v in seeded.items() if k != "filename_prefix"})
        slots.update(kept)
    answer = llm.ask("creative_director",
                     "You fill the slots of an animation workflow template. Answer with JSON only.",
                     f"Request: {ctx.get('intent', '')}\nBrief: {brief.model_dump_json()}\nTemplate: {recipe.title}\n"
                     f"Current values: {json.dumps(slots)}", recipe.schema(), max_tokens=250)
    if answer:
        kept, rejected = recipe.clean({k: v for k, v in answer.items() if k != "filename_prefix"})
        # Empty strings from a weak model would erase good seeded text.
        slots.update({k: v for k, v in kept.items() if v not in ("", None)})
        notes += [f"LLM slot value rejected: {r}" for r in rejected]
    return slots, notes


EDIT_SCHEMA = {
    "type": "object",
    "properties": {"edits": {"type": "array", "maxItems": 4, "items": {
        "type": "object", "properties": {"slot": {"type": "string", "maxLength": 40},
                                         "value": {"type": ["string", "number", "boolean"]},
                                         "reason": {"type": "string", "maxLength": 200}},
        "required": ["slot", "value"], "additionalProperties": False}}},
    "required": ["edits"], "additionalProperties": False,
}


def apply_edits(recipe: Recipe, slots: dict, edits: list[dict]) -> tuple[dict, list[str]]:
    """Apply slot edits that fit the recipe; return new slots and what changed (or why an edit was refused)."""
    new = dict(slots)
    changes = []
    for edit in edits or []:
        name = edit.get("slot")
        slot = recipe.slot(str(name))
        if slot is None or name == "filename_prefix":
            changes.append(f"refused edit of {name!r}: not a slot of {recipe.name}")
            continue
        try:
            value = slot.coerce(edit.get("value"))
        except (TypeError, ValueError) as exc:
            changes.append(f"refused edit of {name!r}: {exc}")
            continue
        if new.get(name) != value:
            changes.append(f"{name}: {new.get(name)!r} -> {value!r} ({edit.get('reason', '')})")
            new[name] = value
    return new, changes


def refine(recipe: Recipe, slots: dict, feedback: list[dict], evaluation: dict, ctx: dict, llm: LLMCaller) -> tuple[dict, list[str]]:
    """Evaluator edits first (concrete, rule-based), then LLM-proposed edits that fit the slots."""
    new, changes = apply_edits(recipe, slots, feedback)
    answer = llm.ask("creative_director",
                     "You improve an animation workflow from evaluator feedback by editing template slots. JSON only.",
                     f"Request: {ctx.get('intent', '')}\nSlots: {json.dumps(new)}\n"
                     f"Scores: {json.dumps(evaluation.get('metrics', {}))}\n"
                     f"Feedback: {json.dumps(evaluation.get('notes', []))}", EDIT_SCHEMA, max_tokens=300)
    if answer and isinstance(answer.get("edits"), list):
        new, more = apply_edits(recipe, new, answer["edits"])
        changes += [f"LLM: {c}" for c in more]
    return new, changes
