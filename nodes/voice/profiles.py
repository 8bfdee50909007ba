"""The voice nodes' side of character voice profiles: finding and reading reference clips.

The profiles themselves (configs/voices/<character>.yaml, their model and loader) live in the base
package, configs/voices.py, which the agent reads too; they are re-exported here for the voice nodes.
"""
from __future__ import annotations

from pathlib import Path

from ...configs.voices import PROFILE_DIR, Reference, VoiceProfile, list_profiles, load_profile
from .. import bridge

__all__ = ["PROFILE_DIR", "Reference", "VoiceProfile", "list_profiles", "load_profile", "resolve_reference",
           "load_reference"]


def resolve_reference(ref: Reference, character: str) -> Path:
    """Reference clip path: models/voices/<audio>, then input/<audio>; a clear error naming both otherwise."""
    rel = Path(ref.audio)
    if rel.is_absolute() or ".." in rel.parts:
        raise ValueError(f"Reference clip {ref.audio!r} of {character!r} must be a relative path.")
    folders = bridge.model_folders("voices") + [bridge.input_directory()]
    for folder in folders:
        candidate = folder / rel
        if candidate.is_file():
            return candidate
    raise bridge.MissingModel(
        f"Reference clip '{ref.audio}' of character '{character}' not found. Put it in the 'voices' models "
        f"folder or the input folder ({', '.join(str(f) for f in folders)}).")


def load_reference(path: Path, min_seconds: float = 1.0):
    """(samples, rate) of a reference clip, refusing silent or too-short clips (they make cloning fail)."""
    from .audio import check_samples, read_audio_file

    samples, rate = read_audio_file(path)
    check_samples(samples, rate, f"reference clip {path.name}", min_seconds=min_seconds)
    return samples, rate
