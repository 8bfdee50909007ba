"""The Director's view of character voices: profiles and the single-pass voice graph it runs and retries.

The retry policy lives with the Director: after a rejected verdict it calls `voice_graph` again with
`reference_variant + 1` (another reference clip) or a lower `strength`, as the verdict's `retry` list says.
"""
from __future__ import annotations

from ..configs.voices import VoiceProfile, list_profiles, load_profile

__all__ = ["VoiceProfile", "list_profiles", "load_profile", "voice_graph"]


def voice_graph(text: str, character: str, emotion: str = "neutral", strength: float = 0.7, language: str = "",
                backend: str = "auto", reference_variant: int = 0, min_similarity: float = 0.75,
                min_duration_s: float = 0.3, max_duration_s: float = 30.0,
                prefix: str = "animation_studio/voice") -> dict:
    """API-format graph: speech -> Save Audio (WAV) -> analysis -> quality check -> saved report."""
    profile = load_profile(character)  # fails early, naming the missing profile
    stem = f"{prefix}/{profile.character}"
    return {
        "1": {"class_type": "AnimStudio_CharacterVoice",
              "inputs": {"text": text, "emotion": emotion, "strength": float(strength), "character": profile.character,
                         "language": language or "profile default", "backend": backend,
                         "reference_variant": int(reference_variant), "server_url": ""}},
        "2": {"class_type": "AnimStudio_SaveAudio",
              "inputs": {"audio": ["1", 0], "filename_prefix": stem, "format": "wav"}},
        "3": {"class_type": "AnimStudio_VoiceAnalysis",
              "inputs": {"audio": ["1", 0], "text": text, "character": profile.character,
                         "synthesis_report": ["1", 1]}},
        "4": {"class_type": "AnimStudio_VoiceQualityCheck",
              "inputs": {"report": ["3", 0], "min_similarity": float(min_similarity),
                         "min_duration_s": float(min_duration_s), "max_duration_s": float(max_duration_s)}},
        "5": {"class_type": "AnimStudio_SaveText",
              "inputs": {"text": ["3", 0], "filename_prefix": f"{stem}_report"}},
    }
