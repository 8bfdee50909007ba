"""Recipes: typed, pre-validated workflow templates the planner fills (ComfyMind's lesson).

A recipe names the node classes it needs, declares typed slots (a JSON schema
the LLM answers against), seeds those slots from the brief without any LLM,
and builds the graph with the catalog-aware GraphBuilder. Several recipes may
serve one task kind: the planner takes the best one whose nodes exist in the
live catalog and reports the others as unavailable with the reason. Node
families add recipes with `register()` as they land.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any, Callable

from ..catalog import Catalog
from .builder import GraphBuilder
from .state import Brief


@dataclass(frozen=True)
class Slot:
    name: str
    type: str  # string | number | integer | boolean
    default: Any
    description: str = ""
    minimum: float | None = None
    maximum: float | None = None
    enum: tuple | None = None

    def schema(self) -> dict:
        out: dict = {"type": self.type, "description": self.description}
        if self.minimum is not None:
            out["minimum"] = self.minimum
        if self.maximum is not None:
            out["maximum"] = self.maximum
        if self.enum:
            out["enum"] = list(self.enum)
        if self.type == "string":
            out["maxLength"] = 400  # tiny models loop inside strings; bound them
        return out

    def coerce(self, value: Any) -> Any:
        """The value as this slot's type, clamped to its range; ValueError when it cannot be."""
        if self.type == "integer":
            value = int(round(float(value)))
        elif self.type == "number":
            value = float(value)
        elif self.type == "boolean":
            if isinstance(value, str):
                value = value.strip().lower() in ("true", "1", "yes")
            value = bool(value)
        else:
            if isinstance(value, (dict, list)):
                raise ValueError(f"slot {self.name} expects text")
            value = str(value).strip()[:400]
        if self.type in ("integer", "number"):
            if self.minimum is not None:
                value = max(value, type(value)(self.minimum))
            if self.maximum is not None:
                value = min(value, type(value)(self.maximum))
        if self.enum and value not in self.enum:
            raise ValueError(f"slot {self.name}: {value!r} is not one of {list(self.enum)}")
        return value


@dataclass(frozen=True)
class Refinement:
    """When `metric` scores below `below`, change `slot` by `step` (added, or multiplied with `factor`)."""

    metric: str
    below: float
    slot: str
    step: float = 0.0
    factor: float = 1.0
    reason: str = ""


@dataclass(frozen=True)
class Recipe:
    name: str
    task_kind: str
    title: str
    needs: tuple[str, ...]
    slots: tuple[Slot, ...]
    seed: Callable[[Brief, dict], dict]  # brief, context -> slot values
    build: Callable[[GraphBuilder, dict, dict], dict]  # builder, slots, context -> {"image"|"audio"|"video": link}
    priority: int = 50
    last_resort: bool = False  # built from core nodes only: a placeholder, said so in the plan
    refinements: tuple[Refinement, ...] = ()
    needs_input: tuple[str, ...] = ()  # kinds of user input the recipe cannot work without: image | video | audio
    tags: tuple[str, ...] = field(default=())
    scored: tuple[str, ...] | None = None  # objective metrics that mean something for this recipe (None: all)

    def missing(self, catalog: Catalog) -> list[str]:
        return [n for n in self.needs if n not in catalog]

    def unavailable_reason(self, catalog: Catalog, inputs: dict | None = None) -> str | None:
        missing = self.missing(catalog)
        if missing:
            return f"needs node(s) not in the catalog: {', '.join(missing)}"
        for kind in self.needs_input:
            if not (inputs or {}).get(kind):
                return f"needs an input {kind} file (--input)"
        return None

    def slot(self, name: str) -> Slot | None:
        return next((s for s in self.slots if s.name == name), None)

    def schema(self) -> dict:
        return {"type": "object", "properties": {s.name: s.schema() for s in self.slots},
                "required": [s.name for s in self.slots], "additionalProperties": False}

    def defaults(self) -> dict:
        return {s.name: s.default for s in self.slots}

    def clean(self, values: dict) -> tuple[dict, list[str]]:
        """Keep the values that fit their slot; return them and the reasons for the ones rejected."""
        kept, rejected = {}, []
        for name, value in (values or {}).items():
            slot = self.slot(name)
            if slot is None:
                rejected.append(f"unknown slot {name!r}")
                continue
            try:
                kept[name] = slot.coerce(value)
            except (TypeError, ValueError) as exc:
                rejected.append(f"slot {name}: {exc}")
        return kept, rejected


RECIPES: dict[str, Recipe] = {}


def register(recipe: Recipe) -> Recipe:
    RECIPES[recipe.name] = recipe
    return recipe


def for_task(task_kind: str) -> list[Recipe]:
    return sorted((r for r in RECIPES.values() if r.task_kind == task_kind), key=lambda r: -r.priority)


def task_kinds() -> list[str]:
    return sorted({r.task_kind for r in RECIPES.values()})


def stable_seed(*parts: str) -> int:
    """A reproducible seed from the intent, so a re-run of the same intent gives the same picture."""
    return int(hashlib.sha256("|".join(parts).encode()).hexdigest()[:8], 16)


# ---------------------------------------------------------------- shared seeding
EMOTION_COLOURS = {
    "excited": ("#ffb347", "#ffe08a"), "happy": ("#ffd166", "#fff1c1"), "determined": ("#e4572e", "#f3a712"),
    "angry": ("#b22222", "#ff7f50"), "sad": ("#4b6584", "#a5b1c2"), "scared": ("#2d3436", "#636e72"),
    "surprised": ("#a29bfe", "#ffeaa7"), "dramatic": ("#2c3e50", "#c0392b"), "funny": ("#55efc4", "#ffeaa7"),
    "neutral": ("#7ec8e3", "#f6d7a7"),
}


def character_context(brief: Brief) -> tuple[str, str, str]:
    """(name, positive prompt, negative prompt) for the brief's first character, via the registry."""
    from ..characters import CharacterError, build_prompt, load_character

    name = brief.characters[0] if brief.characters else ""
    character = None
    if name:
        try:
            character = load_character(name)
        except CharacterError:
            character = None
    action = brief.action or ""
    positive, negative = build_prompt(character, action=action, expression=brief.emotion if brief.emotion != "neutral"
                                      else "", background=brief.setting)
    if character is None and name:
        positive = f"{name}, {positive}"
    return name, positive, negative


def _seed_image_card(brief: Brief, ctx: dict) -> dict:
    name, positive, negative = character_context(brief)
    top, bottom = EMOTION_COLOURS.get(brief.emotion, EMOTION_COLOURS["neutral"])
    return {"prompt": positive, "negative": negative, "width": 512, "height": 512, "top_color": top,
            "bottom_color": bottom, "filename_prefix": f"director/{name or 'image'}"}


def _build_image_card(b: GraphBuilder, s: dict, ctx: dict) -> dict:
    img = b.node("AnimStudio_SolidImage", width=s["width"], height=s["height"], top_color=s["top_color"],
                 bottom_color=s["bottom_color"])
    b.node("AnimStudio_SaveImage", images=img.out(0), filename_prefix=s["filename_prefix"])
    text = b.node("AnimStudio_Text", text=f"PROMPT: {s['prompt']}\nNEGATIVE: {s['negative']}")
    b.node("AnimStudio_SaveText", text=text.out(0), filename_prefix=s["filename_prefix"] + "_prompt")
    return {"image": img.out(0)}


def _seed_voice_script(brief: Brief, ctx: dict) -> dict:
    name = brief.characters[0] if brief.characters else "narrator"
    return {"text": brief.dialogue or brief.action or "", "speaker": name, "emotion": brief.emotion,
            "filename_prefix": f"director/{name}_line"}


def _build_voice_script(b: GraphBuilder, s: dict, ctx: dict) -> dict:
    script = b.node("AnimStudio_Text", text=f"[{s['speaker']}] ({s['emotion']}) {s['text']}")
    b.node("AnimStudio_SaveText", text=script.out(0), filename_prefix=s["filename_prefix"])
    return {}


def _seed_storyboard(brief: Brief, ctx: dict) -> dict:
    name, positive, _ = character_context(brief)
    top, bottom = EMOTION_COLOURS.get(brief.emotion if brief.emotion != "neutral" else "funny")
    return {"shots": f"Parody of: {ctx.get('intent', '')}\nSlow motion x{brief.slow_motion:g}, "
                     f"expression exaggeration x{brief.exaggeration:g}\nLook: {positive}",
            "slow_motion": brief.slow_motion, "exaggeration": brief.exaggeration, "width": 512, "height": 288,
            "top_color": top, "bottom_color": bottom, "filename_prefix": f"director/{name or 'parody'}_storyboard"}


def _build_storyboard(b: GraphBuilder, s: dict, ctx: dict) -> dict:
    card = b.node("AnimStudio_SolidImage", width=s["width"], height=s["height"], top_color=s["top_color"],
                  bottom_color=s["bottom_color"])
    b.node("AnimStudio_SaveImage", images=card.out(0), filename_prefix=s["filename_prefix"])
    text = b.node("AnimStudio_Text", text=s["shots"])
    b.node("AnimStudio_SaveText", text=text.out(0), filename_prefix=s["filename_prefix"])
    return {"image": card.out(0)}


_PREFIX = Slot("filename_prefix", "string", "director/output", "output file prefix inside the output folder")
_COLOUR_SLOTS = (Slot("top_color", "string", "#7ec8e3", "gradient top colour, #rrggbb"),
                 Slot("bottom_color", "string", "#f6d7a7", "gradient bottom colour, #rrggbb"))

register(Recipe(
    name="character_image_card", task_kind="character_image", title="Concept card: colour mood card + the full prompt",
    needs=("AnimStudio_SolidImage", "AnimStudio_SaveImage", "AnimStudio_Text", "AnimStudio_SaveText"),
    slots=(Slot("prompt", "string", "", "positive prompt"), Slot("negative", "string", "", "negative prompt"),
           Slot("width", "integer", 512, "width in pixels", 64, 2048), Slot("height", "integer", 512, "height", 64, 2048),
           *_COLOUR_SLOTS, _PREFIX),
    seed=_seed_image_card, build=_build_image_card, priority=1, last_resort=True,
    scored=("files_produced", "brief_coverage", "readable"),
))

register(Recipe(
    name="character_voice_script", task_kind="character_voice", title="Voice script: the line, speaker and emotion as text",
    needs=("AnimStudio_Text", "AnimStudio_SaveText"),
    slots=(Slot("text", "string", "", "the words to say"), Slot("speaker", "string", "narrator", "who speaks"),
           Slot("emotion", "string", "neutral", "how it is said"), _PREFIX),
    seed=_seed_voice_script, build=_build_voice_script, priority=1, last_resort=True,
))

register(Recipe(
    name="parody_storyboard", task_kind="parody_video", title="Storyboard: a mood card and the shot list as text",
    needs=("AnimStudio_SolidImage", "AnimStudio_SaveImage", "AnimStudio_Text", "AnimStudio_SaveText"),
    slots=(Slot("shots", "string", "", "shot list"), Slot("slow_motion", "number", 1.0, "slow-motion factor", 1, 8),
           Slot("exaggeration", "number", 1.0, "expression exaggeration", 0, 3),
           Slot("width", "integer", 512, "width", 64, 2048), Slot("height", "integer", 288, "height", 64, 2048),
           *_COLOUR_SLOTS, _PREFIX),
    seed=_seed_storyboard, build=_build_storyboard, priority=1, last_resort=True,
    scored=("files_produced", "brief_coverage", "readable"),
))


def describe_capabilities(catalog: Catalog) -> str:
    """What the Director can make with this catalog (for the 'cannot do that' message)."""
    lines = []
    for kind in task_kinds():
        usable = [r.name for r in for_task(kind) if not r.missing(catalog)]
        lines.append(f"{kind} ({', '.join(usable) or 'no recipe available with the installed nodes'})")
    return "; ".join(lines)
