"""Emotion label + strength -> what each backend can change.

Reference-clip backends (GPT-SoVITS, XTTS) get their emotion from the clip:
the profile names one clip (or a list) per emotion. The default Piper voice
has no emotion input, so emotion becomes prosody: speaking rate, pitch,
energy and VITS noise (expressiveness), interpolated from neutral by strength.
"""
from __future__ import annotations

from dataclasses import dataclass

from ...configs.voices import EMOTIONS


@dataclass(frozen=True)
class Prosody:
    rate: float = 1.0        # speaking-rate multiplier (>1 faster)
    pitch: float = 0.0       # semitones added to the character's base pitch
    energy: float = 1.0      # output gain multiplier
    expressiveness: float = 1.0  # multiplier of VITS noise_scale/noise_w (more variation in pitch and timing)


# At strength 1. The directions follow the acoustic correlates of emotion in speech
# (arousal raises rate, pitch and energy; sadness lowers all three).
EMOTION_PROSODY: dict[str, Prosody] = {
    "neutral": Prosody(),
    "happy": Prosody(rate=1.10, pitch=2.0, energy=1.10, expressiveness=1.25),
    "sad": Prosody(rate=0.80, pitch=-2.0, energy=0.70, expressiveness=0.70),
    "angry": Prosody(rate=1.12, pitch=1.0, energy=1.35, expressiveness=1.30),
    "determined": Prosody(rate=0.92, pitch=-1.0, energy=1.25, expressiveness=0.85),
    "excited": Prosody(rate=1.22, pitch=3.0, energy=1.25, expressiveness=1.40),
    "scared": Prosody(rate=1.18, pitch=2.5, energy=0.85, expressiveness=1.45),
    "surprised": Prosody(rate=1.00, pitch=3.5, energy=1.15, expressiveness=1.35),
    "calm": Prosody(rate=0.88, pitch=-1.0, energy=0.85, expressiveness=0.75),
    "whisper": Prosody(rate=0.90, pitch=-0.5, energy=0.45, expressiveness=0.60),
}


def check_emotion(emotion: str) -> str:
    label = (emotion or "neutral").strip().lower()
    if label not in EMOTION_PROSODY:
        raise ValueError(f"Unknown emotion {emotion!r}; choose one of: {', '.join(EMOTIONS)}.")
    return label


def check_strength(strength: float) -> float:
    value = float(strength)
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"Input 'strength' must be between 0 and 1, got {strength}.")
    return value


def prosody_for(emotion: str, strength: float, overrides: dict | None = None) -> Prosody:
    """Neutral blended toward the emotion's prosody by strength; a profile may override the table entry."""
    label, s = check_emotion(emotion), check_strength(strength)
    target = EMOTION_PROSODY[label]
    if overrides and label in overrides:
        target = Prosody(**{**target.__dict__, **overrides[label]})
    return Prosody(
        rate=1.0 + (target.rate - 1.0) * s,
        pitch=target.pitch * s,
        energy=1.0 + (target.energy - 1.0) * s,
        expressiveness=1.0 + (target.expressiveness - 1.0) * s,
    )
