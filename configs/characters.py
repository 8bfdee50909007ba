"""The character registry (configs/characters/<name>.yaml) and 3D-style prompt engineering.

A character names its LoRA, trigger words, description, negatives, reference images
and voice profile. Files are looked up only when they are needed (`lora_path()`,
`reference_paths()`), so a character can be planned with before its LoRA is trained.
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..nodes import bridge
from .settings import PACK_ROOT, load_settings

CHARACTERS_DIR = PACK_ROOT / "configs" / "characters"


class CharacterError(ValueError):
    """An unknown character or a malformed character file; the message says which and what is known."""


class LoraRef(BaseModel):
    model_config = ConfigDict(extra="forbid")
    file: str
    weight: float = Field(default=0.8, ge=-4.0, le=4.0)


class Character(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    display_name: str
    description: str
    trigger_words: list[str] = []
    lora: LoraRef | None = None
    negative_prompt: str = ""
    reference_images: list[str] = []
    voice_profile: str = ""

    def lora_path(self) -> Path:
        """The LoRA file in the 'loras' models folder, or MissingModel naming file and folder."""
        if self.lora is None:
            raise bridge.MissingModel(f"Character '{self.name}' has no LoRA in its config.")
        try:
            return bridge.find_model("loras", self.lora.file)
        except bridge.MissingModel as exc:
            raise bridge.MissingModel(f"LoRA of character '{self.name}': {exc}") from None

    def reference_folders(self) -> list[Path]:
        return [bridge.input_directory()] + [folder / self.name for folder in bridge.model_folders("characters")]

    def reference_paths(self) -> list[Path]:
        """Every reference image, found in the input folder or models/characters/<name>/."""
        if not self.reference_images:
            raise bridge.MissingModel(f"Character '{self.name}' lists no reference images in its config.")
        return [self._find_reference(name) for name in self.reference_images]

    def _find_reference(self, name: str) -> Path:
        for folder in self.reference_folders():
            candidate = (folder / name).resolve()
            # Names come from a config file; keep them inside their folder all the same.
            if folder.resolve() in candidate.parents and candidate.is_file():
                return candidate
        where = ", ".join(str(f) for f in self.reference_folders())
        raise bridge.MissingModel(f"Reference image '{name}' of character '{self.name}' not found. "
                                  f"Put it in one of: {where}.")

    def as_dict(self) -> dict:
        """The CHARACTER value passed between nodes (plain data, JSON-able)."""
        return self.model_dump()


def _folder(folder: str | Path | None) -> Path:
    return Path(folder) if folder is not None else CHARACTERS_DIR


def list_characters(folder: str | Path | None = None) -> list[str]:
    root = _folder(folder)
    return sorted(p.stem for p in root.glob("*.yaml")) if root.is_dir() else []


@lru_cache(maxsize=64)
def _load(path: str, mtime: float) -> Character:
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise CharacterError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise CharacterError(f"{path}: expected a mapping at the top level")
    data.setdefault("name", Path(path).stem)
    try:
        return Character.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise CharacterError(f"{path}: invalid character: {problems}") from None


def load_character(name: str, folder: str | Path | None = None) -> Character:
    """The character called `name` (file stem, case-insensitive)."""
    root = _folder(folder)
    key = (name or "").strip().lower()
    path = root / f"{key}.yaml"
    if not key or "/" in key or "\\" in key or not path.is_file():
        known = ", ".join(list_characters(root)) or "none"
        raise CharacterError(f"Unknown character {name!r}. Known characters: {known} (in {root}).")
    return _load(str(path), path.stat().st_mtime)


def _join(parts) -> str:
    # Drop empty bits and duplicates while keeping order, so prompts stay tidy.
    seen, out = set(), []
    for part in parts:
        part = (part or "").strip().strip(",").strip()
        if part and part.lower() not in seen:
            seen.add(part.lower())
            out.append(part)
    return ", ".join(out)


def build_prompt(character: Character | dict | None, action: str = "", expression: str = "", background: str = "",
                 style: str | None = None, negative_style: str | None = None) -> tuple[str, str]:
    """(positive, negative) prompts for a 3D-animation still of the character doing `action`.

    Trigger words come first (LoRA triggers work best early), then who, what, mood, where, and the style.
    """
    studio = load_settings().studio
    style = studio.style if style is None else style
    negative_style = studio.negative_style if negative_style is None else negative_style
    if isinstance(character, dict):
        character = Character.model_validate(character)
    triggers = character.trigger_words if character else []
    description = character.description if character else ""
    mood = f"{expression.strip()} expression" if expression and "expression" not in expression.lower() else expression
    positive = _join([*triggers, description, action, mood, background, style])
    negative = _join([negative_style, character.negative_prompt if character else ""])
    return positive, negative
