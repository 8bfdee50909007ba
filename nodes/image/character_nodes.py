"""Character and 3D-prompt nodes: the registry (configs/characters) as ComfyUI nodes."""
from __future__ import annotations

from ...configs import characters as registry

CATEGORY = "Animation Studio/image"


def _character_names() -> list[str]:
    return registry.list_characters() or ["(no characters in configs/characters)"]


class Character:
    CATEGORY = CATEGORY
    RETURN_TYPES = ("CHARACTER", "STRING", "STRING", "STRING", "FLOAT")
    RETURN_NAMES = ("character", "positive", "negative", "lora_name", "lora_weight")
    FUNCTION = "run"
    DESCRIPTION = ("A character from configs/characters (LoRA, trigger words, negatives, reference images, voice) "
                   "and its 3D-animation prompts for the given action, expression and background.")

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "name": (_character_names(),),
            "action": ("STRING", {"default": "running", "multiline": False}),
            "expression": ("STRING", {"default": "excited"}),
            "background": ("STRING", {"default": "sunny Italian seaside"}),
        }}

    def run(self, name, action, expression, background):
        character = registry.load_character(name)
        positive, negative = registry.build_prompt(character, action, expression, background)
        lora_name = character.lora.file if character.lora else ""
        lora_weight = character.lora.weight if character.lora else 0.0
        return (character.as_dict(), positive, negative, lora_name, lora_weight)


class Prompt3D:
    CATEGORY = CATEGORY
    RETURN_TYPES = ("STRING", "STRING")
    RETURN_NAMES = ("positive", "negative")
    FUNCTION = "run"
    DESCRIPTION = ("Pixar-style 3D prompt from a subject, action, expression and background "
                   "(style and negative style default to configs/global.yaml studio settings).")

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "subject": ("STRING", {"default": "a young boy with brown hair and green eyes", "multiline": True}),
            "action": ("STRING", {"default": "running"}),
            "expression": ("STRING", {"default": "excited"}),
            "background": ("STRING", {"default": "sunny Italian seaside"}),
            "style": ("STRING", {"default": "", "tooltip": "empty = the studio style from configs/global.yaml"}),
            "extra_negative": ("STRING", {"default": ""}),
        }, "optional": {"character": ("CHARACTER",)}}

    def run(self, subject, action, expression, background, style, extra_negative, character=None):
        positive, negative = registry.build_prompt(character, ", ".join(p for p in (subject, action) if p.strip()),
                                                   expression, background, style=style or None)
        if extra_negative.strip():
            negative = f"{negative}, {extra_negative.strip()}"
        return (positive, negative)


NODES = {
    "Character": (Character, "Character"),
    "Prompt3D": (Prompt3D, "3D Prompt"),
}
