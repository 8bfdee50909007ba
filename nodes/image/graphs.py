"""Graph recipes for the character image: a native ComfyUI graph (core nodes only, for a ComfyUI server)
and the same image on the pack's diffusers nodes (for the embedded engine). Both are API-format dicts."""
from __future__ import annotations

from dataclasses import dataclass

from ...configs import characters as registry


@dataclass
class CharacterBrief:
    """What the image should show and how to make it (defaults: the seed's seaside shot)."""

    action: str = "running"
    expression: str = "excited"
    background: str = "sunny Italian seaside"
    checkpoint: str = "sd_xl_base_1.0.safetensors"
    pose_image: str = "luca_running_pose.png"  # an OpenPose skeleton image in the input folder
    pose_controlnet: str = "controlnet-openpose-sdxl-1.0"
    pose_strength: float = 0.9
    style_lora: str = "seaside_background_style.safetensors"
    style_lora_weight: float = 0.6
    steps: int = 30
    cfg: float = 7.5
    seed: int = 42
    width: int = 1024
    height: int = 1024
    filename_prefix: str = "animation_studio/character"


def _character(character: registry.Character | str) -> registry.Character:
    return registry.load_character(character) if isinstance(character, str) else character


def native_character_graph(character: registry.Character | str, brief: CharacterBrief | None = None) -> dict:
    """CheckpointLoaderSimple -> LoraLoader (character) -> LoraLoader (style) -> CLIPTextEncode x2 ->
    ControlNetApplyAdvanced (OpenPose) -> KSampler on EmptyLatentImage -> VAEDecode -> SaveImage."""
    char, b = _character(character), brief or CharacterBrief()
    positive, negative = registry.build_prompt(char, b.action, b.expression, b.background)
    lora = char.lora
    return {
        "1": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": b.checkpoint}},
        "2": {"class_type": "LoraLoader", "inputs": {"model": ["1", 0], "clip": ["1", 1], "lora_name": lora.file,
                                                     "strength_model": lora.weight, "strength_clip": lora.weight}},
        "3": {"class_type": "LoraLoader", "inputs": {"model": ["2", 0], "clip": ["2", 1], "lora_name": b.style_lora,
                                                     "strength_model": b.style_lora_weight,
                                                     "strength_clip": b.style_lora_weight}},
        "4": {"class_type": "CLIPTextEncode", "inputs": {"text": positive, "clip": ["3", 1]}},
        "5": {"class_type": "CLIPTextEncode", "inputs": {"text": negative, "clip": ["3", 1]}},
        "6": {"class_type": "ControlNetLoader", "inputs": {"control_net_name": b.pose_controlnet}},
        "7": {"class_type": "LoadImage", "inputs": {"image": b.pose_image}},
        "8": {"class_type": "ControlNetApplyAdvanced", "inputs": {
            "positive": ["4", 0], "negative": ["5", 0], "control_net": ["6", 0], "image": ["7", 0],
            "strength": b.pose_strength, "start_percent": 0.0, "end_percent": 1.0, "vae": ["1", 2]}},
        "9": {"class_type": "EmptyLatentImage", "inputs": {"width": b.width, "height": b.height, "batch_size": 1}},
        "10": {"class_type": "KSampler", "inputs": {
            "model": ["3", 0], "seed": b.seed, "steps": b.steps, "cfg": b.cfg, "sampler_name": "euler",
            "scheduler": "normal", "positive": ["8", 0], "negative": ["8", 1], "latent_image": ["9", 0],
            "denoise": 1.0}},
        "11": {"class_type": "VAEDecode", "inputs": {"samples": ["10", 0], "vae": ["1", 2]}},
        "12": {"class_type": "SaveImage", "inputs": {"images": ["11", 0], "filename_prefix": b.filename_prefix}},
    }


def diffusers_character_graph(character: registry.Character | str, brief: CharacterBrief | None = None) -> dict:
    """The same image on the pack's nodes: Character -> SDXL checkpoint + character LoRA + style LoRA,
    OpenPose ControlNet stack -> SDXL Sampler -> Save Image."""
    char, b = _character(character), brief or CharacterBrief()
    return {
        "1": {"class_type": "AnimStudio_Character", "inputs": {
            "name": char.name, "action": b.action, "expression": b.expression, "background": b.background}},
        "2": {"class_type": "AnimStudio_SDXLCheckpointLoader", "inputs": {"ckpt_name": b.checkpoint}},
        "3": {"class_type": "AnimStudio_SDXLCharacterLora", "inputs": {
            "model": ["2", 0], "character": ["1", 0], "weight": char.lora.weight if char.lora else -1.0}},
        "4": {"class_type": "AnimStudio_SDXLLora", "inputs": {
            "model": ["3", 0], "lora_name": b.style_lora, "weight": b.style_lora_weight}},
        "5": {"class_type": "AnimStudio_LoadImage", "inputs": {"image": b.pose_image}},
        "6": {"class_type": "AnimStudio_ControlNetStack", "inputs": {
            "controlnet_name": b.pose_controlnet, "image": ["5", 0], "strength": b.pose_strength,
            "start_percent": 0.0, "end_percent": 1.0}},
        "7": {"class_type": "AnimStudio_SDXLSampler", "inputs": {
            "model": ["4", 0], "positive": ["1", 1], "negative": ["1", 2], "seed": b.seed, "steps": b.steps,
            "cfg": b.cfg, "width": b.width, "height": b.height, "denoise": 1.0, "controls": ["6", 0]}},
        "8": {"class_type": "AnimStudio_SaveImage", "inputs": {"images": ["7", 0], "filename_prefix": b.filename_prefix}},
    }
