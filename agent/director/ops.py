"""The Director's plan language: typed operations on the studio's media.

A plan is an ordered list of `Op`s. Each operation has a bounded JSON schema for its parameters (the parser and
the LLM answer against it), says which input kind it consumes and what it produces, compiles to a fragment of
the pack's nodes with the catalog-aware GraphBuilder, and declares the post-conditions its output must meet
(verify.py measures them on the real output files). Units: seconds; speeds are multipliers (0.25 = quarter
speed, i.e. four times as long).

The media flow through a plan as a `Stream` of links (the current video, image, audio...). An operation on a
clip takes the stream's video, or loads the input clip when the plan has none yet. Nothing is added that the
plan does not name, except the final save when the plan ends without an `export`.
"""
from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from typing import Any, Callable

from .builder import GraphBuilder

MAX_OPS = 8
FEATURES = ("mouth", "eyes", "brows", "all")
MOODS = ("heroic", "tense", "comedic", "sad")
STINGS = ("dun_dun_dun", "suspense", "triumph", "sad_trombone")
VOICE_EMOTIONS = ("neutral", "happy", "sad", "angry", "determined", "excited", "scared", "surprised", "calm", "whisper")
LANGUAGES = ("", "en", "it", "en-it")  # "" = the character's profile default
FORMATS = ("mp4", "gif", "webm", "png", "wav")
CONTROLS = ("pose", "depth", "canny")
KINDS = ("video", "image", "audio")


class PlanError(ValueError):
    """A plan (from the parser, an LLM or JSON) that cannot be used; the message says why in words."""


class Unavailable(RuntimeError):
    """An operation that cannot be compiled here: a missing model or node, named with its folder."""


@dataclass(frozen=True)
class Op:
    op: str
    params: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        return {"op": self.op, "params": dict(self.params)}

    def __str__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.params.items())
        return f"{self.op}({args})"


# ---------------------------------------------------------------- schema helpers
def num(minimum: float, maximum: float, default: float, doc: str = "") -> dict:
    return {"type": "number", "minimum": minimum, "maximum": maximum, "default": default, "description": doc}


def integer(minimum: int, maximum: int, default: int, doc: str = "") -> dict:
    return {"type": "integer", "minimum": minimum, "maximum": maximum, "default": default, "description": doc}


def enum(values, default, doc: str = "") -> dict:
    return {"type": "string", "enum": list(values), "default": default, "description": doc}


def text(max_length: int, default: str = "", doc: str = "") -> dict:
    return {"type": "string", "maxLength": max_length, "default": default, "description": doc}


def obj(**props: dict) -> dict:
    return {"type": "object", "properties": props, "additionalProperties": False}


# ---------------------------------------------------------------- the stream of links through a plan
@dataclass
class Stream:
    """The links an operation reads and writes: the current media of each kind and what was saved."""

    video: list | None = None
    image: list | None = None
    audio: list | None = None
    scenes: list | None = None
    text: list | None = None
    dataset: list | None = None
    saved: list = field(default_factory=list)  # kinds already written by an export
    export: str | None = None  # the result's format when the verifier saves it (inside ComfyUI)


def _input(ctx: dict, kind: str, index: int = 0) -> str:
    names = (ctx.get("inputs") or {}).get(kind) or []
    if len(names) <= index:
        raise PlanError(f"needs an input {kind} file{' (a second one)' if index else ''} (--input)")
    return names[index]


def _video(b: GraphBuilder, up: Stream, ctx: dict) -> list:
    if up.video is None:
        up.video = b.node("AnimStudio_LoadVideo", video=_input(ctx, "video"),
                          max_size=int(ctx.get("max_size", 0))).out(0)
    return up.video


def _image(b: GraphBuilder, up: Stream, ctx: dict) -> list:
    if up.image is None:
        up.image = b.node("AnimStudio_LoadImage", image=_input(ctx, "image")).out(0)
    return up.image


def _add_to_soundtrack(b: GraphBuilder, up: Stream, sound: list, gain_db: float = 0.0, offset: float = 0.0) -> None:
    """Mix `sound` into the current video's track (its own sound kept) or make it the current audio."""
    if up.video is None:
        if up.audio is None:
            up.audio = sound
        else:
            up.audio = b.node("AnimStudio_MixAudio", audio_a=up.audio, audio_b=sound, gain_b_db=gain_db,
                              offset=offset).out(0)
        return
    track = b.node("AnimStudio_ExtractAudio", video=up.video).out(0)
    mixed = b.node("AnimStudio_MixAudio", audio_a=track, audio_b=sound, gain_b_db=gain_db, offset=offset).out(0)
    up.video = b.node("AnimStudio_MuxAudio", video=up.video, audio=mixed).out(0)


def _prefix(ctx: dict, what: str) -> str:
    return f"{ctx.get('prefix') or 'director'}/{what}"


# ---------------------------------------------------------------- compile functions: (b, params, up, ctx) -> up
def _length(ctx: dict, what: str) -> float:
    """Seconds of the clip an operation gets (carried from the input's facts through the plan)."""
    if ctx.get("length") is None:
        raise PlanError(f"{what} needs the clip's length, which is not known at this step (after a scene pick)")
    return float(ctx["length"])


def c_trim(b, p, up, ctx):
    start, end = p["start"], p["end"]
    if p["last"] > 0:  # the last N seconds: from N before the end to the end
        start, end = round(max(0.0, _length(ctx, f"keeping the last {p['last']:g} s") - p["last"]), 4), 0.0
    up.video = b.node("AnimStudio_TrimVideo", video=_video(b, up, ctx), start=start, end=end).out(0)
    return up


def c_scenes(b, p, up, ctx):
    node = b.node("AnimStudio_DetectScenes", video=_video(b, up, ctx), detector=p["detector"], threshold=p["threshold"])
    up.scenes = node.out(0)
    return up


def c_pick_scene(b, p, up, ctx):
    video = _video(b, up, ctx)
    if up.scenes is None:  # picking a scene means finding the scenes first
        c_scenes(b, defaults("scenes"), up, ctx)
    if p["by"] == "expressive":
        marks = b.node("AnimStudio_FaceLandmarksVideo", video=video, analysis_size=int(ctx.get("analysis_size", 320)))
        moment = b.node("AnimStudio_ExpressiveMoment", landmarks=marks.out(0), scenes=up.scenes)
        pick = b.node("AnimStudio_PickScene", video=video, scenes=up.scenes, by="index", index=moment.out("scene_index"))
    else:
        pick = b.node("AnimStudio_PickScene", video=video, scenes=up.scenes, by=p["by"], index=p["index"])
    up.video, up.scenes = pick.out(0), None
    return up


def c_retime(b, p, up, ctx):
    speed = p["speed"]
    if p["seconds"] > 0:  # a target length: the speed that makes the clip last that long
        speed = round(_length(ctx, f"making the clip {p['seconds']:g} s long") / p["seconds"], 4)
    up.video = b.node("AnimStudio_SlowMotion", video=_video(b, up, ctx), factor=speed, mode="blend",
                      audio_mode="stretch").out(0)
    return up


def c_speed_ramp(b, p, up, ctx):
    video = _video(b, up, ctx)
    start, end = p["start"], p["end"]
    if p["on"] == "peak":  # the ramp sits on the expression's peak, found on this very clip
        marks = b.node("AnimStudio_FaceLandmarksVideo", video=video, analysis_size=int(ctx.get("analysis_size", 320)))
        moment = b.node("AnimStudio_ExpressiveMoment", landmarks=marks.out(0), window_seconds=p["end"] - p["start"] or 1.0)
        start, end = moment.out("start_time"), moment.out("end_time")
    up.video = b.node("AnimStudio_SpeedRamp", video=video, start=start, end=end, speed=p["speed"], ramp=RAMP_S,
                      curve="linear" if p["curve"] == "linear" else "ease_in_out",
                      # on an expression's peak the face moves: blending would ghost a double head there
                      mode="optical_flow" if p["on"] == "peak" else "blend", audio_mode="stretch").out(0)
    return up


def c_freeze(b, p, up, ctx):
    up.video = b.node("AnimStudio_FreezeFrame", video=_video(b, up, ctx), at=p["at"], hold=p["hold"], zoom=p["zoom"],
                      zoom_time=0.2 if p["zoom"] > 1 else 0.0, audio_mode="stretch").out(0)
    return up


def c_interpolate(b, p, up, ctx):
    up.video = b.node("AnimStudio_FrameInterpolation", video=_video(b, up, ctx), target_fps=p["fps"],
                      mode="blend").out(0)
    return up


def c_exaggerate(b, p, up, ctx):
    feats = p["features"] or ["all"]
    weights = {f: (1.0 if "all" in feats or f in feats else 0.0) for f in ("brows", "eyes", "mouth")}
    if up.video is not None or (up.image is None and (ctx.get("inputs") or {}).get("video")):
        node = b.node("AnimStudio_ExaggerateExpressionVideo", video=_video(b, up, ctx), factor=p["factor"], **weights)
        up.video = node.out(0)
    else:
        node = b.node("AnimStudio_ExaggerateExpression", images=_image(b, up, ctx), factor=p["factor"], **weights)
        up.image = node.out(0)
    b.node("AnimStudio_SaveText", text=node.out(1), filename_prefix=_prefix(ctx, "exaggeration_report"))
    return up


def c_landmarks_preview(b, p, up, ctx):
    if up.image is None and up.video is not None:
        up.image = b.node("AnimStudio_VideoToImages", video=up.video, max_frames=1).out(0)
    images = _image(b, up, ctx)
    marks = b.node("AnimStudio_FaceLandmarks", images=images)
    up.image = b.node("AnimStudio_FacePreview", images=images, landmarks=marks.out(0), point_size=2).out(0)
    b.node("AnimStudio_SaveText", text=marks.out(1), filename_prefix=_prefix(ctx, "landmarks_report"))
    return up


def _card(b, up, ctx, seconds: float) -> list:
    """A plain backdrop clip for a title with no picture under it (the title is what was asked for)."""
    card = b.node("AnimStudio_SolidImage", width=1280, height=720, top_color="#1d2b53", bottom_color="#7e2553")
    clip = b.node("AnimStudio_ImagesToVideo", images=card.out(0), fps=25.0)
    return b.node("AnimStudio_FreezeFrame", video=clip.out(0), at=0.0, hold=seconds, zoom=1.0, zoom_time=0.0,
                  audio_mode="mute").out(0)


def _picture(b, up, ctx, seconds: float) -> list:
    if up.video is not None or (ctx.get("inputs") or {}).get("video"):
        return _video(b, up, ctx)
    if up.image is not None or (ctx.get("inputs") or {}).get("image"):
        clip = b.node("AnimStudio_ImagesToVideo", images=_image(b, up, ctx), fps=25.0)
        return b.node("AnimStudio_FreezeFrame", video=clip.out(0), at=0.0, hold=seconds, zoom=1.0, zoom_time=0.0,
                      audio_mode="mute").out(0)
    return _card(b, up, ctx, seconds)


def _font_size(ctx: dict, scale: float) -> int:
    """Pixels for a text `scale` times BurnCaption's default (picture height / 12); 0 = that default."""
    height = ((ctx.get("facts") or {}).get("video") or {}).get("height") or 720
    return 0 if scale == 1.0 else max(8, min(512, int(round(height / 12 * scale))))


def c_caption(b, p, up, ctx):
    video = _picture(b, up, ctx, max(p["end"], 3.0))
    up.video = b.node("AnimStudio_BurnCaption", video=video, text=p["text"], start=p["start"], end=p["end"],
                      position=p["position"], font_size=_font_size(ctx, p["size"])).out(0)
    return up


def c_title(b, p, up, ctx):
    video = _picture(b, up, ctx, p["seconds"])
    up.video = b.node("AnimStudio_BurnCaption", video=video, text=p["text"], start=0.0, end=p["seconds"],
                      position="center", font_size=_font_size(ctx, p["size"])).out(0)
    return up


def _length_link(b, up):
    return b.node("AnimStudio_VideoInfo", video=up.video).out("duration") if up.video is not None else None


def c_music(b, p, up, ctx):
    seconds = _length_link(b, up) or 10.0
    bed = b.node("AnimStudio_MusicBed", seconds=seconds, mood=p["mood"])
    _add_to_soundtrack(b, up, bed.out(0), gain_db=p["level_db"])
    return up


def c_sting(b, p, up, ctx):
    sting = b.node("AnimStudio_DramaticSting", style=p["style"], sample_rate=44100)
    _add_to_soundtrack(b, up, sting.out(0), offset=p["at"])
    return up


def c_voice(b, p, up, ctx):
    spec = b.catalog["AnimStudio_CharacterVoice"]
    options = list(spec.inputs["character"].options or ())
    if options and p["character"] not in options:
        raise Unavailable(f"no voice profile for {p['character']!r} (configs/voices: {', '.join(options)})")
    voice = b.node("AnimStudio_CharacterVoice", text=p["line"], character=p["character"], emotion=p["emotion"],
                   language=p["language"] or "profile default", backend="auto")
    loud = b.node("AnimStudio_NormalizeLoudness", audio=voice.out(0))
    b.node("AnimStudio_SaveText", text=voice.out(1), filename_prefix=_prefix(ctx, f"{p['character']}_voice_report"))
    up.text = voice.out(1)
    _add_to_soundtrack(b, up, loud.out(0))
    return up


def c_mux(b, p, up, ctx):
    audio = b.node("AnimStudio_LoadAudio", audio_file=_input(ctx, "audio")).out(0)
    up.video = b.node("AnimStudio_MuxAudio", video=_video(b, up, ctx), audio=audio).out(0)
    return up


def c_concat(b, p, up, ctx):
    first = _video(b, up, ctx)
    second = b.node("AnimStudio_LoadVideo", video=_input(ctx, "video", 1), max_size=int(ctx.get("max_size", 0))).out(0)
    up.video = b.node("AnimStudio_ConcatVideos", video_a=first, video_b=second, transition=p["transition"],
                      duration=0.0 if p["transition"] == "cut" else 0.5).out(0)
    return up


def _sam2_checkpoint(b) -> str:
    spec = b.catalog.get("AnimStudio_LoadSAM2Model")
    if spec is None:
        raise Unavailable("the SAM2 nodes are not installed")
    from ...nodes import bridge

    found = bridge.list_models("sam2", (".pt", ".pth"))
    if not found:
        folders = ", ".join(str(f) for f in bridge.model_folders("sam2")) or "models/sam2"
        raise Unavailable(f"segment needs a SAM2 checkpoint (.pt) in {folders}")
    return found[0]


def c_segment(b, p, up, ctx):
    model = b.node("AnimStudio_LoadSAM2Model", model_name=_sam2_checkpoint(b))
    if up.video is not None or (up.image is None and (ctx.get("inputs") or {}).get("video")):
        node = b.node("AnimStudio_SAM2TrackVideo", video=_video(b, up, ctx), sam2_model=model.out(0), points="",
                      box="")
        up.video = node.out(0)
    else:
        up.image = b.node("AnimStudio_SAM2SegmentImage", image=_image(b, up, ctx), sam2_model=model.out(0), points="",
                          box="").out(0)
    return up


def c_dataset(b, p, up, ctx):
    name = f"director_{p['subject']}_{ctx.get('run_id', 'run')}"[:80]
    curate = b.node("AnimStudio_CurateDataset", video=_video(b, up, ctx), character=p["subject"], dataset_name=name,
                    frames_per_scene=p["frames_per_scene"], workers=1)
    b.node("AnimStudio_SaveText", text=curate.out(0), filename_prefix=_prefix(ctx, f"{p['subject']}_dataset_summary"))
    up.dataset = curate.out(1)
    up.saved.append("dataset")
    return up


def _sdxl_checkpoint(b) -> str:
    spec = b.catalog.get("AnimStudio_SDXLCheckpointLoader")
    if spec is None:
        raise Unavailable("the SDXL image nodes are not installed")
    options = [o for o in (spec.inputs["ckpt_name"].options or ()) if not str(o).startswith("(")]
    if not options:
        from ...nodes import bridge

        folders = ", ".join(str(f) for f in bridge.model_folders("checkpoints")) or "models/checkpoints"
        raise Unavailable(f"image needs an SDXL checkpoint (.safetensors) in {folders}")
    return options[0]


def c_image(b, p, up, ctx):
    names = list(b.catalog["AnimStudio_Character"].inputs["name"].options or ())
    if p["character"] not in names:
        raise Unavailable(f"no character {p['character']!r} in configs/characters ({', '.join(names)})")
    char = b.node("AnimStudio_Character", name=p["character"], action=p["action"], expression=p["expression"],
                  background=p["background"])
    ckpt = b.node("AnimStudio_SDXLCheckpointLoader", ckpt_name=_sdxl_checkpoint(b))
    model = b.node("AnimStudio_SDXLCharacterLora", model=ckpt.out(0), character=char.out(0))
    up.image = b.node("AnimStudio_SDXLSampler", model=model.out(0), positive=char.out(1), negative=char.out(2),
                      seed=int(ctx.get("seed", 0)), width=1024, height=1024).out(0)
    return up


def c_export(b, p, up, ctx):
    fmt = p["format"]
    if fmt in ("mp4", "gif", "webm"):
        b.node("AnimStudio_SaveVideo", video=_picture(b, up, ctx, 2.0), filename_prefix=_prefix(ctx, "video"),
               format=fmt)
        up.saved.append("video")
    elif fmt == "png":
        if up.image is None and up.video is not None:
            up.image = b.node("AnimStudio_VideoToImages", video=up.video, max_frames=1).out(0)
        b.node("AnimStudio_SaveImage", images=_image(b, up, ctx), filename_prefix=_prefix(ctx, "image"))
        up.saved.append("image")
    else:
        audio = up.audio
        if audio is None:
            audio = b.node("AnimStudio_ExtractAudio", video=_video(b, up, ctx)).out(0)
        b.node("AnimStudio_SaveAudio", audio=audio, filename_prefix=_prefix(ctx, "audio"), format="wav")
        up.saved.append("audio")
    return up


RAMP_S = 0.3  # seconds SpeedRamp eases in and out


# ---------------------------------------------------------------- post-conditions
def _check(name: str, expect: dict, hard: bool = True) -> dict:
    return {"check": name, "hard": hard, "expect": expect}


def pc_caption(p, ctx):
    timed = not ctx.get("retimed_after")  # a later retime moves the times: then only the words are checked
    return [_check("caption_ocr", {"text": p["text"], "language": ctx.get("ocr_language", "eng"),
                                   "start": p["start"] if timed else None,
                                   "end": (p["end"] or None) if timed else None})]


def pc_title(p, ctx):
    timed = not ctx.get("retimed_after")
    return [_check("caption_ocr", {"text": p["text"], "language": ctx.get("ocr_language", "eng"),
                                   "start": 0.0 if timed else None, "end": p["seconds"] if timed else None})]


def pc_voice(p, ctx):
    lang = {"it": "it", "en": "en", "en-it": "en"}.get(p["language"], ctx.get("voice_language", "en"))
    return [_check("audio_present", {"min_rms_dbfs": -40.0}),
            _check("speech", {"text": p["line"], "language": lang, "max_wer": 0.35})]


def pc_pick_scene(p, ctx):
    if p["by"] == "most_active" and ctx.get("source"):
        return [_check("most_active_scene", {"source": ctx["source"], "start": None, "end": None})]
    return []


def pc_exaggerate(p, ctx):
    return [_check("exaggeration", {"factor": p["factor"], "min_ratio": 0.6})]


def pc_interpolate(p, ctx):
    return [_check("fps", {"fps": p["fps"]})]


def pc_sound(p, ctx):
    return [_check("audio_present", {"min_rms_dbfs": -45.0})]


def pc_image(p, ctx):
    return [_check("image_content", {}), _check("image_size", {"width": 1024, "height": 1024})]


def pc_dataset(p, ctx):
    return [_check("exists", {"kind": "dataset"}), _check("dataset_subject", {"subject": p["subject"]})]


def pc_landmarks(p, ctx):
    return [_check("image_content", {})]


def pc_none(p, ctx):
    return []


# ---------------------------------------------------------------- duration through a plan (None = unknown)
def d_same(p, before):
    return before


def d_trim(p, before):
    if p["last"] > 0:
        return p["last"] if before is None else min(p["last"], before)
    end = p["end"] if p["end"] > 0 else before
    return None if end is None else max(0.0, end - p["start"])


def d_retime(p, before):
    if p["seconds"] > 0:
        return p["seconds"]
    return None if before is None else before / p["speed"]


def d_speed_ramp(p, before):
    if before is None or p["on"] == "peak":
        return None
    return before + (p["end"] - p["start"]) * (1.0 / p["speed"] - 1.0)


def d_freeze(p, before):
    return None if before is None else before + p["hold"]


def d_unknown(p, before):
    return None


def d_concat(p, before):
    return None  # needs the second clip's length: verify.py compares against the inputs when it has them


@dataclass(frozen=True)
class OpSpec:
    name: str
    schema: dict
    needs: str | None  # "video" | "image" | "audio" | "media" (video or image) | None (makes from nothing)
    produces: str  # "video" | "image" | "audio" | "text" | "dataset"
    doc: str
    compile: Callable[[GraphBuilder, dict, Stream, dict], Stream]
    postconditions: Callable[[dict, dict], list] = pc_none
    duration: Callable[[dict, float | None], float | None] = d_same
    retimes: bool = False  # changes when things happen (captions before it can no longer be timed)


def _spec(name, schema, needs, produces, doc, comp, post=pc_none, duration=d_same, retimes=False) -> OpSpec:
    return OpSpec(name, schema, needs, produces, doc, comp, post, duration, retimes)


SPECS = [
    _spec("trim", obj(start=num(0, 3600, 0.0, "seconds"), end=num(0, 3600, 0.0, "seconds; 0 = to the end"),
                      last=num(0, 3600, 0.0, "keep only the last N seconds (start/end unused); 0 = off")),
          "video", "video", "keep the part of the clip between start and end (or its last seconds)", c_trim,
          duration=d_trim, retimes=True),
    _spec("scenes", obj(detector=enum(("content", "adaptive"), "content"), threshold=num(0.5, 100, 27.0)),
          "video", "video", "find the scene cuts of the clip", c_scenes),
    _spec("pick_scene", obj(by=enum(("most_active", "index", "expressive"), "most_active"),
                            index=integer(0, 500, 0, "scene number from 0 when by=index")),
          "video", "video", "keep one scene: the most active, the n-th or the most expressive face", c_pick_scene,
          pc_pick_scene, d_unknown, True),
    _spec("retime", obj(speed=num(0.05, 8.0, 0.5, "0.25 = quarter speed (4x longer), 2 = double speed"),
                        seconds=num(0, 3600, 0.0, "a target length: speed = the clip's length / seconds; 0 = off")),
          "video", "video", "play the whole clip slower or faster (or to last a given time), sound stretched",
          c_retime, pc_none, d_retime, True),
    _spec("speed_ramp", obj(start=num(0, 3600, 0.0), end=num(0, 3600, 1.0), speed=num(0.05, 8.0, 0.25),
                            curve=enum(("linear", "ease"), "ease"),
                            on=enum(("times", "peak"), "times", "peak = on the expression's peak")),
          "video", "video", "slow (or speed) only between start and end, easing in and out", c_speed_ramp, pc_none,
          d_speed_ramp, True),
    _spec("freeze", obj(at=num(0, 3600, 0.0), hold=num(0.1, 30, 1.0), zoom=num(1.0, 4.0, 1.0, "punch-in zoom")),
          "video", "video", "hold the picture at a time, optionally punching in", c_freeze, pc_none, d_freeze, True),
    _spec("interpolate", obj(fps=num(1, 240, 48.0)), "video", "video",
          "change the frame rate with in-between frames", c_interpolate, pc_interpolate),
    _spec("exaggerate", obj(factor=num(1.0, 5.0, 2.0), features={
        "type": "array", "items": {"type": "string", "enum": list(FEATURES)}, "maxItems": 4, "default": ["all"]}),
          "media", "same", "exaggerate the facial expression of a clip or a photo", c_exaggerate, pc_exaggerate),
    _spec("landmarks_preview", obj(), "media", "image", "draw the face landmarks over the photo (or first frame)",
          c_landmarks_preview, pc_landmarks),
    _spec("caption", obj(text=text(120), position=enum(("bottom", "top", "center"), "bottom"),
                         start=num(0, 3600, 0.0), end=num(0, 3600, 0.0, "0 = to the end"),
                         size=num(0.5, 3.0, 1.0, "text size, 1 = a twelfth of the picture's height")),
          None, "video", "burn words into the picture", c_caption, pc_caption),
    _spec("title", obj(text=text(80), seconds=num(0.5, 30, 2.0),
                       size=num(0.5, 3.0, 1.0, "text size, 1 = a twelfth of the picture's height")), None, "video",
          "a centred title over the first seconds (or on a plain card)", c_title, pc_title),
    _spec("music", obj(mood=enum(MOODS, "comedic"), level_db=num(-40, 6, -12.0)), None, "audio",
          "a synthesised music bed under the clip", c_music, pc_sound),
    _spec("sting", obj(style=enum(STINGS, "dun_dun_dun"), at=num(0, 3600, 0.0, "seconds")), None, "audio",
          "a short orchestral sting at a time", c_sting, pc_sound),
    _spec("voice", obj(character=text(40, "luca"), line=text(300), emotion=enum(VOICE_EMOTIONS, "neutral"),
                       language=enum(LANGUAGES, "")), None, "audio",
          "a character speaks a line (over the clip when there is one)", c_voice, pc_voice),
    _spec("mux", obj(audio=enum(("input",), "input")), "video", "video",
          "put the input song/audio on the clip as its sound", c_mux, pc_sound),
    _spec("concat", obj(transition=enum(("cut", "crossfade", "fade_black", "wipe"), "cut")), "video", "video",
          "join the first input clip and the second", c_concat, pc_none, d_concat),
    _spec("segment", obj(subject=text(60, "character")), "media", "same", "cut the subject out (SAM2)", c_segment),
    _spec("dataset", obj(subject=text(40, "luca"), frames_per_scene=integer(1, 200, 8)), "video", "dataset",
          "a LoRA training dataset of the subject from the clip", c_dataset, pc_dataset, d_unknown),
    _spec("image", obj(character=text(40, "luca"), action=text(80, "standing"), expression=text(40, "neutral"),
                       background=text(120, ""), controls={"type": "array", "items": {"type": "string",
                                                                                     "enum": list(CONTROLS)},
                                                            "maxItems": 3, "default": []}),
          None, "image", "a picture of a character (SDXL + its LoRA)", c_image, pc_image, d_unknown),
    _spec("export", obj(format=enum(FORMATS, "mp4")), None, "same", "save the result in a format", c_export),
]
OPERATIONS: dict[str, OpSpec] = {s.name: s for s in SPECS}


def defaults(name: str) -> dict:
    return {k: copy.deepcopy(v.get("default")) for k, v in OPERATIONS[name].schema["properties"].items()}


def make(name: str, **params) -> Op:
    """An Op with every parameter present (defaults for the ones not given), validated."""
    if name not in OPERATIONS:
        raise PlanError(f"unknown operation {name!r} (known: {', '.join(OPERATIONS)})")
    full = {**defaults(name), **params}
    errors = param_errors(name, full)
    if errors:
        raise PlanError(f"{name}: " + "; ".join(errors))
    return Op(name, full)


def normalize(op: Op | dict) -> Op:
    """The same op with its defaults filled in (two plans compare equal when they mean the same)."""
    if isinstance(op, dict):
        return make(str(op.get("op")), **dict(op.get("params") or {}))
    return make(op.op, **op.params)


# ---------------------------------------------------------------- macros: today's recipes, named
MACROS: dict[str, list[Op]] = {
    "parody": [Op("scenes", {}), Op("pick_scene", {"by": "expressive"}),
               Op("exaggerate", {"factor": 2.0, "features": ["all"]}),
               Op("speed_ramp", {"on": "peak", "speed": 0.25}), Op("sting", {"style": "dun_dun_dun"}),
               Op("export", {"format": "mp4"})],
    "voice_line": [Op("voice", {}), Op("export", {"format": "wav"})],
    "character_image": [Op("image", {}), Op("export", {"format": "png"})],
    "lora_dataset": [Op("dataset", {})],
}


def expand_macro(name: str, overrides: dict[str, dict] | None = None) -> list[Op]:
    """The macro's operations, normalised, with per-operation parameter overrides from the words."""
    out = []
    for op in MACROS[name]:
        out.append(make(op.op, **{**op.params, **(overrides or {}).get(op.op, {})}))
    return out


# ---------------------------------------------------------------- validation
def _type_ok(value: Any, schema: dict) -> str | None:
    kind = schema.get("type")
    if kind == "number":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return "must be a number"
        if not schema["minimum"] <= value <= schema["maximum"]:
            return f"{value} is outside {schema['minimum']}..{schema['maximum']}"
    elif kind == "integer":
        if isinstance(value, bool) or not isinstance(value, int):
            return "must be a whole number"
        if not schema["minimum"] <= value <= schema["maximum"]:
            return f"{value} is outside {schema['minimum']}..{schema['maximum']}"
    elif kind == "string":
        if not isinstance(value, str):
            return "must be text"
        if "enum" in schema and value not in schema["enum"]:
            return f"{value!r} is not one of {schema['enum']}"
        if len(value) > schema.get("maxLength", 400):
            return f"is longer than {schema.get('maxLength')} characters"
    elif kind == "array":
        if not isinstance(value, list) or len(value) > schema.get("maxItems", 8):
            return f"must be a list of at most {schema.get('maxItems', 8)}"
        for item in value:
            why = _type_ok(item, schema["items"])
            if why:
                return why
    return None


def param_errors(name: str, params: dict) -> list[str]:
    props = OPERATIONS[name].schema["properties"]
    errors = [f"unknown parameter {k!r}" for k in params if k not in props]
    for key, schema in props.items():
        if key in params:
            why = _type_ok(params[key], schema)
            if why:
                errors.append(f"{key} {why}")
    return errors


def _kinds(inputs: dict) -> set[str]:
    return {k for k in KINDS if (inputs or {}).get(k)}


def validate_plan(ops: list[Op], inputs: dict) -> list[str]:
    """Every reason the plan cannot run with these inputs, in words ([] = ok)."""
    if not ops:
        return ["the plan has no operations"]
    errors = []
    if len(ops) > MAX_OPS:
        errors.append(f"the plan has {len(ops)} operations; at most {MAX_OPS}")
    have = _kinds(inputs)
    made: set[str] = set()
    for i, op in enumerate(ops, 1):
        spec = OPERATIONS.get(op.op)
        if spec is None:
            errors.append(f"step {i}: unknown operation {op.op!r}")
            continue
        errors += [f"step {i} {op.op}: {e}" for e in param_errors(op.op, op.params)]
        available = have | made
        if spec.needs == "media" and not available & {"video", "image"}:
            errors.append(f"step {i} {op.op}: needs a photo or a clip (--input)")
        elif spec.needs in KINDS and spec.needs not in available:
            errors.append(f"step {i} {op.op}: needs an input {spec.needs} (--input)")
        if op.op == "mux" and "audio" not in have:
            errors.append(f"step {i} mux: needs an input audio file (--input)")
        if op.op == "concat" and len((inputs or {}).get("video") or []) < 2:
            errors.append(f"step {i} concat: needs two input clips (--input twice)")
        if spec.produces in KINDS:
            made.add(spec.produces)
        if op.op in ("caption", "title"):
            made.add("video")
    return errors


def plan_schema() -> dict:
    """JSON schema of {"ops": [{"op": <name>, "params": {...}}]}: one branch per operation, every value bounded."""
    branches = [{"type": "object", "properties": {"op": {"const": name}, "params": spec.schema},
                 "required": ["op", "params"], "additionalProperties": False} for name, spec in OPERATIONS.items()]
    return {"type": "object", "properties": {"ops": {"type": "array", "minItems": 1, "maxItems": MAX_OPS,
                                                     "items": {"anyOf": branches}}},
            "required": ["ops"], "additionalProperties": False}


def parse_plan_json(data: Any) -> list[Op]:
    """Ops from an LLM answer or saved JSON ({"ops": [...]}, a list, or its text); PlanError says what is wrong."""
    if isinstance(data, (str, bytes)):
        try:
            data = json.loads(data)
        except json.JSONDecodeError as exc:
            raise PlanError(f"the plan is not JSON: {exc.msg} at column {exc.colno}") from None
    if isinstance(data, dict):
        data = data.get("ops")
    if not isinstance(data, list) or not data:
        raise PlanError('the plan must be {"ops": [{"op": ..., "params": {...}}, ...]} with at least one operation')
    if len(data) > MAX_OPS:
        raise PlanError(f"the plan has {len(data)} operations; at most {MAX_OPS}")
    ops = []
    for i, item in enumerate(data, 1):
        if not isinstance(item, dict) or not isinstance(item.get("op"), str):
            raise PlanError(f"step {i}: each operation is an object with an 'op' name")
        params = item.get("params") or {}
        if not isinstance(params, dict):
            raise PlanError(f"step {i} {item['op']}: params must be an object")
        try:
            ops.append(make(item["op"], **params))
        except PlanError as exc:
            raise PlanError(f"step {i}: {exc}") from None
    return ops


def describe_operations() -> str:
    """One line per operation (the LLM's catalogue and the 'what I can do' message)."""
    lines = []
    for name, spec in OPERATIONS.items():
        params = ", ".join(spec.schema["properties"])
        lines.append(f"{name}({params}): {spec.doc}")
    return "\n".join(lines)


# ---------------------------------------------------------------- compile + post-conditions of a whole plan
OUTPUT_KIND = {"mp4": "video", "gif": "video", "webm": "video", "png": "image", "wav": "audio"}


def final_format(ops: list[Op], inputs: dict | None = None) -> str | None:
    """The format of the plan's saved result: its last export, else the default for what it ends with. An
    operation on "a clip or a photo" produces what it was given: the plan's video, else the input's kind."""
    exports = [op.params["format"] for op in ops if op.op == "export"]
    if exports:
        return exports[-1]
    kinds = [OPERATIONS[op.op].produces for op in ops]
    if "dataset" in kinds:
        return None
    if any(op.op in ("caption", "title") for op in ops) or any(OPERATIONS[op.op].needs == "video" for op in ops):
        return "mp4"
    have = _kinds(inputs or {})
    media = "video" if "video" in have else "image" if "image" in have else None
    last = next((media if k == "same" else k for k in reversed(kinds) if k in KINDS or k == "same"), None)
    return {"video": "mp4", "image": "png", "audio": "wav"}.get(last or "", None)


def compile_plan(b: GraphBuilder, ops: list[Op], ctx: dict) -> Stream:
    """Add every operation's nodes to the builder; save the result when the plan has no export of its own."""
    up = Stream()
    verifier_saves = bool(ctx.get("verifier_saves"))  # ComfyUI: Director Verify saves, then checks the file
    length = ((ctx.get("facts") or {}).get("video") or {}).get("duration")
    for i, op in enumerate(ops):
        if verifier_saves and op.op == "export" and i == len(ops) - 1:
            break
        ctx["length"] = length  # the clip's seconds when this op gets it (None once unknown)
        up = OPERATIONS[op.op].compile(b, op.params, up, ctx)
        length = OPERATIONS[op.op].duration(op.params, length)
    fmt = final_format(ops, ctx.get("inputs"))
    if verifier_saves:
        up.export = fmt
        if fmt in ("mp4", "gif", "webm"):
            up.video = _picture(b, up, ctx, 2.0)
        elif fmt == "png" and up.image is None and up.video is not None:
            up.image = b.node("AnimStudio_VideoToImages", video=up.video, max_frames=1).out(0)
        elif fmt == "wav" and up.audio is None:
            up.audio = b.node("AnimStudio_ExtractAudio", video=_video(b, up, ctx)).out(0)
    elif not any(op.op == "export" for op in ops) and fmt is not None:
        c_export(b, {"format": fmt}, up, ctx)
    return up


def postconditions(ops: list[Op], facts: dict | None = None) -> list[dict]:
    """Every check the result of this plan must pass, each tagged with the index of the op it comes from.

    `facts` describes the inputs ({"video": {"duration", "fps", "path"}, ...}); the expected length of the result
    is carried through the plan (0.25x -> 4x as long) and checked once, on the final file.
    """
    facts = facts or {}
    video = facts.get("video") or {}
    duration = video.get("duration")
    fmt = final_format(ops, {k: [True] for k in KINDS if facts.get(k)})
    checks: list[dict] = []
    duration_op = None
    for i, op in enumerate(ops):
        spec = OPERATIONS[op.op]
        later_retime = any(OPERATIONS[o.op].retimes for o in ops[i + 1:])
        ctx = {"retimed_after": later_retime, "source": video.get("path"), **facts.get("context", {})}
        if op.op == "pick_scene" and any(OPERATIONS[o.op].retimes for o in ops[:i]):
            ctx["source"] = None  # the scene was picked from an edited clip, not the input
        for check in spec.postconditions(op.params, ctx):
            checks.append({**check, "op": i, "params": dict(op.params)})
        if op.op in ("title", "caption") and duration is None and not video:
            duration = op.params["seconds"] if op.op == "title" else max(op.params["end"], 3.0)
            duration_op = i
        before = duration
        duration = spec.duration(op.params, duration)
        if duration != before:
            duration_op = i
    if fmt is not None:
        kind = OUTPUT_KIND[fmt]
        checks.append({"check": "exists", "op": len(ops) - 1, "hard": True, "expect": {"kind": kind}})
        checks.append({"check": "format", "op": len(ops) - 1, "hard": True, "expect": {"format": fmt}})
        if facts.get("video") or facts.get("image") or kind != "video":
            # A title card asked for with no picture under it is the requested card, not a placeholder.
            checks.append({"check": "not_placeholder", "op": len(ops) - 1, "hard": True, "expect": {}})
        if kind == "video" and duration is not None and duration_op is not None:
            ramp = any(o.op == "speed_ramp" for o in ops)
            tolerance = max(0.15, 0.04 * duration) + (RAMP_S * 4 if ramp else 0.0)
            checks.append({"check": "duration", "op": duration_op, "hard": True, "params": dict(ops[duration_op].params),
                           "expect": {"seconds": round(duration, 3), "tolerance": round(tolerance, 3)}})
        if kind == "video" and (video.get("has_audio") or any(op.op in ("music", "sting", "voice", "mux")
                                                             for op in ops)) and fmt != "gif":
            checks.append({"check": "audio_sync", "op": len(ops) - 1, "hard": True, "expect": {"max_offset_s": 0.1}})
    return checks


def plan_json(ops: list[Op]) -> list[dict]:
    return [op.to_json() for op in ops]
