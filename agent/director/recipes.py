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
        if self.type == "array":
            out["maxItems"] = int(self.maximum or 12)
        return out

    def coerce(self, value: Any) -> Any:
        """The value as this slot's type, clamped to its range; ValueError when it cannot be."""
        if self.type == "array":
            if not isinstance(value, list):
                raise ValueError(f"slot {self.name} expects a list")
            return list(value)[:int(self.maximum or 12)]
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
    check: Callable[[Catalog], str | None] | None = None  # e.g. "no SDXL checkpoint in models/checkpoints"
    # Fills the slots itself instead of the generic slot-filling LLM call: (recipe, brief, ctx, llm, slots)
    # -> (slots, notes); ctx["catalog"] is the live catalog. Free composition uses it.
    fill: Callable | None = None

    def missing(self, catalog: Catalog) -> list[str]:
        return [n for n in self.needs if n not in catalog]

    def unavailable_reason(self, catalog: Catalog, inputs: dict | None = None) -> str | None:
        missing = self.missing(catalog)
        if missing:
            return f"needs node(s) not in the catalog: {', '.join(missing)}"
        if self.check is not None:
            why = self.check(catalog)
            if why:
                return why
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
    from ...configs.characters import CharacterError, build_prompt, load_character

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


# ---------------------------------------------------------------- recipes on the real tool nodes
VOICE_EMOTIONS = {"funny": "happy", "dramatic": "excited", "neutral": "neutral"}
STING_FOR = {"funny": "sad_trombone", "dramatic": "dun_dun_dun", "scared": "suspense", "determined": "triumph",
             "excited": "triumph"}


def _combo(catalog_spec_options, value, fallback):
    options = list(catalog_spec_options or ())
    return value if value in options else (fallback if fallback in options else (options[0] if options else value))


def _seed_voice(brief: Brief, ctx: dict) -> dict:
    name = brief.characters[0] if brief.characters else "luca"
    emotion = VOICE_EMOTIONS.get(brief.emotion, brief.emotion)
    return {"text": brief.dialogue or brief.action or "Ciao!", "character": name, "emotion": emotion,
            "strength": 0.7 if brief.emotion != "neutral" else 0.4, "language": "profile default",
            "filename_prefix": f"director/{name}_voice"}


def _build_voice(b: GraphBuilder, s: dict, ctx: dict) -> dict:
    spec = b.catalog["AnimStudio_CharacterVoice"]
    voice = b.node("AnimStudio_CharacterVoice", text=s["text"], strength=s["strength"],
                   emotion=_combo(spec.inputs["emotion"].options, s["emotion"], "neutral"),
                   character=_combo(spec.inputs["character"].options, s["character"], None),
                   language=_combo(spec.inputs["language"].options, s["language"], "profile default"), backend="auto")
    loud = b.node("AnimStudio_NormalizeLoudness", audio=voice.out(0))
    b.node("AnimStudio_SaveAudio", audio=loud.out(0), filename_prefix=s["filename_prefix"], format="wav")
    b.node("AnimStudio_SaveText", text=voice.out(1), filename_prefix=s["filename_prefix"] + "_report")
    if "AnimStudio_VoiceAnalysis" in b.catalog:
        # The evaluator's figures for speech: similarity to the character's voice, duration, rate, loudness.
        aspec = b.catalog["AnimStudio_VoiceAnalysis"]
        analysis = b.node("AnimStudio_VoiceAnalysis", audio=loud.out(0), text=s["text"], synthesis_report=voice.out(1),
                          character=_combo(aspec.inputs["character"].options, s["character"], "none"))
        b.node("AnimStudio_SaveText", text=analysis.out(0), filename_prefix=s["filename_prefix"] + "_analysis")
    return {"audio": loud.out(0)}


register(Recipe(
    name="character_voice_tts", task_kind="character_voice",
    title="Character voice: the character's TTS voice with emotion prosody, loudness-normalised WAV",
    needs=("AnimStudio_CharacterVoice", "AnimStudio_NormalizeLoudness", "AnimStudio_SaveAudio", "AnimStudio_SaveText"),
    slots=(Slot("text", "string", "", "the words to say"), Slot("character", "string", "luca", "speaker"),
           Slot("emotion", "string", "neutral", "emotion of the delivery"),
           Slot("strength", "number", 0.7, "emotion strength", 0, 1),
           Slot("language", "string", "profile default", "language"), _PREFIX),
    seed=_seed_voice, build=_build_voice, priority=80,
    scored=("files_produced", "audible", "speech_length", "readable"),
    refinements=(Refinement("audible", 0.5, "strength", step=0.15, reason="too quiet / flat: stronger delivery"),),
))


def _no_checkpoint(catalog: Catalog) -> str | None:
    spec = catalog.get("AnimStudio_SDXLCheckpointLoader")
    options = [o for o in (spec.inputs["ckpt_name"].options or ()) if not str(o).startswith("(")] if spec else []
    return None if options else "no SDXL checkpoint in models/checkpoints"


def _seed_sdxl(brief: Brief, ctx: dict) -> dict:
    name = brief.characters[0] if brief.characters else "luca"
    return {"character": name, "action": brief.action or "standing", "expression": brief.emotion,
            "background": brief.setting or "sunny Italian seaside", "steps": 30, "cfg": 7.0, "width": 1024,
            "height": 1024, "seed": stable_seed(ctx.get("intent", "")), "filename_prefix": f"director/{name}"}


def _build_sdxl(b: GraphBuilder, s: dict, ctx: dict) -> dict:
    char = b.node("AnimStudio_Character", name=_combo(b.catalog["AnimStudio_Character"].inputs["name"].options,
                                                        s["character"], None),
                  action=s["action"], expression=s["expression"], background=s["background"])
    ckpt = b.node("AnimStudio_SDXLCheckpointLoader")
    model = b.node("AnimStudio_SDXLCharacterLora", model=ckpt.out(0), character=char.out(0))
    img = b.node("AnimStudio_SDXLSampler", model=model.out(0), positive=char.out(1), negative=char.out(2),
                 seed=s["seed"], steps=s["steps"], cfg=s["cfg"], width=s["width"], height=s["height"])
    b.node("AnimStudio_SaveImage", images=img.out(0), filename_prefix=s["filename_prefix"])
    return {"image": img.out(0)}


register(Recipe(
    name="character_image_sdxl", task_kind="character_image",
    title="Character image: SDXL + the character's LoRA and 3D-style prompt",
    needs=("AnimStudio_Character", "AnimStudio_SDXLCheckpointLoader", "AnimStudio_SDXLCharacterLora",
           "AnimStudio_SDXLSampler", "AnimStudio_SaveImage"),
    slots=(Slot("character", "string", "luca", "character name"), Slot("action", "string", "standing", "what they do"),
           Slot("expression", "string", "neutral", "facial expression"), Slot("background", "string", "", "setting"),
           Slot("steps", "integer", 30, "sampling steps", 10, 80), Slot("cfg", "number", 7.0, "guidance", 1, 15),
           Slot("width", "integer", 1024, "width", 512, 2048), Slot("height", "integer", 1024, "height", 512, 2048),
           Slot("seed", "integer", 0, "seed", 0, 2**31 - 1), _PREFIX),
    seed=_seed_sdxl, build=_build_sdxl, priority=90, check=_no_checkpoint,
    refinements=(Refinement("sharpness", 0.5, "steps", step=10, reason="soft image: more steps"),
                 Refinement("likeness", 0.6, "cfg", step=1.0, reason="off-model: follow the prompt more")),
))


def _seed_prompt_card(brief: Brief, ctx: dict) -> dict:
    name = brief.characters[0] if brief.characters else "luca"
    top, bottom = EMOTION_COLOURS.get(brief.emotion, EMOTION_COLOURS["neutral"])
    return {"character": name, "action": brief.action or "standing", "expression": brief.emotion,
            "background": brief.setting or "sunny Italian seaside", "width": 512, "height": 512, "top_color": top,
            "bottom_color": bottom, "filename_prefix": f"director/{name}"}


def _build_prompt_card(b: GraphBuilder, s: dict, ctx: dict) -> dict:
    char = b.node("AnimStudio_Character", name=_combo(b.catalog["AnimStudio_Character"].inputs["name"].options,
                                                        s["character"], None),
                  action=s["action"], expression=s["expression"], background=s["background"])
    card = b.node("AnimStudio_SolidImage", width=s["width"], height=s["height"], top_color=s["top_color"],
                  bottom_color=s["bottom_color"])
    b.node("AnimStudio_SaveImage", images=card.out(0), filename_prefix=s["filename_prefix"] + "_mood")
    b.node("AnimStudio_SaveText", text=char.out(1), filename_prefix=s["filename_prefix"] + "_prompt")
    return {"image": card.out(0)}


register(Recipe(
    name="character_image_prompt", task_kind="character_image",
    title="Character prompt sheet: the registry's 3D-style prompt + a mood card (no image model installed)",
    needs=("AnimStudio_Character", "AnimStudio_SolidImage", "AnimStudio_SaveImage", "AnimStudio_SaveText"),
    slots=(Slot("character", "string", "luca", "character name"), Slot("action", "string", "standing", "what they do"),
           Slot("expression", "string", "neutral", "facial expression"), Slot("background", "string", "", "setting"),
           Slot("width", "integer", 512, "width", 64, 2048), Slot("height", "integer", 512, "height", 64, 2048),
           *_COLOUR_SLOTS, _PREFIX),
    seed=_seed_prompt_card, build=_build_prompt_card, priority=20,
    scored=("files_produced", "brief_coverage", "readable"),
))


def parody_caption(ctx: dict) -> str:
    """The caption names the scene the video analyst saw ("Meanwhile, at the harbour..."), else the classic."""
    setting = str((ctx.get("analysis") or {}).get("setting", "")).strip().rstrip(".")
    if not setting:
        return "Meanwhile..."
    return f"Meanwhile, {setting[0].lower() + setting[1:]}..."[:80]


def _seed_parody(brief: Brief, ctx: dict) -> dict:
    name = brief.characters[0] if brief.characters else "parody"
    slow = brief.slow_motion if brief.slow_motion > 1 else 2.0
    return {"exaggeration": max(brief.exaggeration * 1.4, 1.5), "slow_motion": slow, "caption": parody_caption(ctx),
            "sting": STING_FOR.get(brief.emotion, "dun_dun_dun"), "max_size": 480,
            "filename_prefix": f"director/{name}_parody"}


def _sting(b: GraphBuilder, s: dict):
    spec = b.catalog["AnimStudio_DramaticSting"]
    return b.node("AnimStudio_DramaticSting", style=_combo(spec.inputs["style"].options, s["sting"], "dun_dun_dun"),
                  sample_rate=22050)


def _build_parody(b: GraphBuilder, s: dict, ctx: dict) -> dict:
    video = ctx["inputs"]["video"][0]
    src = b.node("AnimStudio_LoadVideo", video=video, max_size=s["max_size"])
    face = b.node("AnimStudio_ExaggerateExpressionVideo", video=src.out(0), factor=s["exaggeration"])
    slow = b.node("AnimStudio_SlowMotion", video=face.out(0), factor=1.0 / s["slow_motion"], mode="blend",
                  audio_mode="stretch")
    sting = _sting(b, s)
    cap = b.node("AnimStudio_BurnCaption", video=slow.out(0), text=s["caption"])
    mixed = b.node("AnimStudio_MuxAudio", video=cap.out(0), audio=sting.out(0))
    b.node("AnimStudio_SaveVideo", video=mixed.out(0), filename_prefix=s["filename_prefix"], format="mp4")
    metrics = b.node("AnimStudio_ParodyMetrics", original=src.out(0), result=face.out(0),
                     target_factor=s["exaggeration"])
    b.node("AnimStudio_SaveText", text=metrics.out(0), filename_prefix=s["filename_prefix"] + "_metrics")
    return {}


_PARODY_SLOTS = (Slot("exaggeration", "number", 2.5, "expression exaggeration factor", 1, 5),
                 Slot("slow_motion", "number", 2.0, "slow-motion factor (2 = half speed)", 1, 8),
                 Slot("caption", "string", "Meanwhile...", "parody caption"),
                 Slot("sting", "string", "dun_dun_dun", "sound sting", enum=("dun_dun_dun", "suspense", "triumph", "sad_trombone")),
                 Slot("max_size", "integer", 480, "working resolution (long side)", 128, 2048), _PREFIX)

register(Recipe(
    name="parody_video_face", task_kind="parody_video",
    title="Parody: exaggerated expressions on the input clip, slow motion, caption and a dramatic sting",
    needs=("AnimStudio_LoadVideo", "AnimStudio_ExaggerateExpressionVideo", "AnimStudio_SlowMotion",
           "AnimStudio_BurnCaption", "AnimStudio_DramaticSting", "AnimStudio_MuxAudio", "AnimStudio_SaveVideo",
           "AnimStudio_ParodyMetrics", "AnimStudio_SaveText"),
    slots=_PARODY_SLOTS, seed=_seed_parody, build=_build_parody, priority=90, needs_input=("video",),
    scored=("files_produced", "video_readable", "report.identity.similarity", "report.achieved_ratio", "readable"),
    refinements=(Refinement("report.achieved_ratio", 0.8, "exaggeration", factor=1.25,
                            reason="expressions not exaggerated enough"),
                 Refinement("report.identity.similarity", 0.6, "exaggeration", factor=0.8,
                            reason="the character stopped looking like itself")),
))


def _build_animatic(b: GraphBuilder, s: dict, ctx: dict) -> dict:
    top, bottom = EMOTION_COLOURS.get("funny")
    card = b.node("AnimStudio_SolidImage", width=s["max_size"], height=int(s["max_size"] * 9 / 16) // 8 * 8,
                  top_color=top, bottom_color=bottom)
    clip = b.node("AnimStudio_ImagesToVideo", images=card.out(0), fps=12.0)
    held = b.node("AnimStudio_FreezeFrame", video=clip.out(0), at=0.0, hold=1.5, zoom=1.0 + 0.2 * s["exaggeration"],
                  zoom_time=0.5, audio_mode="mute")
    slow = b.node("AnimStudio_SlowMotion", video=held.out(0), factor=1.0 / s["slow_motion"], mode="blend",
                  audio_mode="mute")
    cap = b.node("AnimStudio_BurnCaption", video=slow.out(0), text=s["caption"])
    mixed = b.node("AnimStudio_MuxAudio", video=cap.out(0), audio=_sting(b, s).out(0))
    b.node("AnimStudio_SaveVideo", video=mixed.out(0), filename_prefix=s["filename_prefix"], format="mp4")
    return {"image": card.out(0)}


register(Recipe(
    name="parody_animatic", task_kind="parody_video",
    title="Parody animatic (no source clip given): title card with a slow push-in, caption and a dramatic sting",
    needs=("AnimStudio_SolidImage", "AnimStudio_ImagesToVideo", "AnimStudio_FreezeFrame", "AnimStudio_SlowMotion",
           "AnimStudio_BurnCaption", "AnimStudio_DramaticSting", "AnimStudio_MuxAudio", "AnimStudio_SaveVideo"),
    slots=_PARODY_SLOTS, seed=_seed_parody, build=_build_animatic, priority=30,
    scored=("files_produced", "video_readable", "readable"),
))


def _seed_dataset(brief: Brief, ctx: dict) -> dict:
    name = brief.characters[0] if brief.characters else "luca"
    return {"character": name, "frames_per_scene": 8, "max_size": 0, "filename_prefix": f"director/{name}_dataset"}


def _build_dataset(b: GraphBuilder, s: dict, ctx: dict) -> dict:
    src = b.node("AnimStudio_LoadVideo", video=ctx["inputs"]["video"][0], max_size=s["max_size"])
    # One dataset folder per intent and sampling density: curate_film refuses other settings in an existing job,
    # and the same intent at the same density resumes its own job.
    name = f"director_{s['character']}_{stable_seed(ctx.get('intent', '')) % 10**6}_f{s['frames_per_scene']}"
    curate = b.node("AnimStudio_CurateDataset", video=src.out(0), character=s["character"], dataset_name=name,
                    frames_per_scene=s["frames_per_scene"], workers=1)
    b.node("AnimStudio_SaveText", text=curate.out(0), filename_prefix=s["filename_prefix"] + "_summary")
    return {}


register(Recipe(
    name="lora_dataset_curate", task_kind="lora_dataset",
    title="LoRA dataset: scene-aware frames of the character from the clip, matted, sharp, deduplicated, captioned",
    needs=("AnimStudio_LoadVideo", "AnimStudio_CurateDataset", "AnimStudio_SaveText"),
    slots=(Slot("character", "string", "luca", "whose dataset"),
           Slot("frames_per_scene", "integer", 8, "frames sampled per scene", 1, 200),
           Slot("max_size", "integer", 0, "analysis resolution (long side, 0 = full)", 0, 4096), _PREFIX),
    seed=_seed_dataset, build=_build_dataset, priority=80, needs_input=("video",),
    scored=("files_produced", "report.dataset_fill", "readable"),
    refinements=(Refinement("report.dataset_fill", 1.0, "frames_per_scene", factor=2.0,
                            reason="fewer kept images than the target range: sample more frames per scene"),),
))


def describe_capabilities(catalog: Catalog) -> str:
    """What the Director can make with this catalog (for the 'cannot do that' message)."""
    lines = []
    for kind in task_kinds():
        usable = [r.name for r in for_task(kind) if not r.missing(catalog)]
        lines.append(f"{kind} ({', '.join(usable) or 'no recipe available with the installed nodes'})")
    return "; ".join(lines)


# ---------------------------------------------------------------- free composition (no recipe fits)
def _register_composition() -> None:
    from . import compose

    register(Recipe(
        name="composed_graph", task_kind="composition",
        title="Free composition: a small graph over allow-listed nodes (LLM from the live catalog, or the "
              "deterministic composer for gif / slow down / caption / music / title card)",
        needs=(), slots=(Slot("nodes", "array", [], "the composed nodes [{id, class_type, inputs}]",
                              maximum=compose.MAX_NODES),),
        seed=lambda brief, ctx: {"nodes": []}, build=compose.build_composition, fill=compose.fill_composition,
        priority=10, scored=("files_produced", "video_readable", "audible", "readable"),
    ))


_register_composition()
