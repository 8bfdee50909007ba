"""SDXL through diffusers, for graphs run outside ComfyUI: single-file checkpoints loaded offline,
LoRA stacks, several ControlNets at once, txt2img / img2img / inpaint, per-step progress and interruption.

Checkpoints come from the ComfyUI `models/checkpoints` layout (one .safetensors file). diffusers needs
a diffusers-format config folder to build the models; the pack ships SDXL base's in configs/sdxl, so no
hub call happens at load time.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path

from .. import bridge
from ...configs.settings import PACK_ROOT

EXTRA = "image"
SDXL_CONFIG_DIR = PACK_ROOT / "configs" / "sdxl"
CHECKPOINT_SUFFIXES = (".safetensors", ".ckpt")
LORA_SUFFIXES = (".safetensors",)


@dataclass(frozen=True)
class ControlSpec:
    """One ControlNet with its control image (uint8 [H,W,3]) and strength window."""

    controlnet: str  # path of a file or diffusers folder
    image: object = field(compare=False)
    strength: float = 1.0
    start: float = 0.0
    end: float = 1.0
    # What this ControlNet reads instead of the prompt embeddings ([negative, positive] batch); InstantID's
    # IdentityNet reads the face tokens.
    hidden_states: object = field(default=None, compare=False)


# ---------------------------------------------------------------- devices and memory
def pick_device() -> tuple[str, object]:
    """('cuda', float16) on a GPU, ('cpu', float32) otherwise."""
    torch = bridge.require("torch", EXTRA)
    if torch.cuda.is_available():
        return "cuda", torch.float16
    return "cpu", torch.float32


def small_gpu(threshold_gib: float = 12.0) -> bool:
    """SDXL in fp16 with a ControlNet needs about 10-12 GiB; below that, offload and slice attention."""
    torch = bridge.require("torch", EXTRA)
    if not torch.cuda.is_available():
        return False
    return torch.cuda.get_device_properties(0).total_memory / 2**30 < threshold_gib


def place_pipeline(pipe) -> str:
    """Put a pipeline where it fits: whole on a big GPU, offloaded per model on a small one, CPU otherwise."""
    device, _ = pick_device()
    if device == "cpu":
        return "cpu"  # from_single_file already built it on the CPU
    if small_gpu():
        pipe.enable_model_cpu_offload()
        pipe.enable_attention_slicing()
        pipe.enable_vae_tiling()
        return "cuda-offload"
    pipe.to("cuda")
    return "cuda"


# ---------------------------------------------------------------- tokenizers
def _clip_vocab_folders(config_dir: Path) -> list[Path]:
    folders = [config_dir / "tokenizer"]
    folders += [f / "clip" for f in bridge.model_folders("tokenizers")]
    try:  # ComfyUI ships the CLIP vocabulary next to its SD1 text encoder
        import comfy  # noqa: F401 - present only inside ComfyUI

        folders.append(Path(comfy.__file__).parent / "sd1_tokenizer")
    except ImportError:
        pass
    import os

    if os.environ.get("COMFYUI_PATH"):
        folders.append(Path(os.environ["COMFYUI_PATH"]) / "comfy" / "sd1_tokenizer")
    return folders


def load_tokenizers(config_dir: Path):
    """SDXL's two CLIP tokenizers (same vocabulary, different pad token), from local files only."""
    transformers = bridge.require("transformers", EXTRA)
    for folder in _clip_vocab_folders(config_dir):
        if ((folder / "vocab.json").is_file() and (folder / "merges.txt").is_file()) or (folder / "tokenizer.json").is_file():
            tok1 = transformers.CLIPTokenizer.from_pretrained(str(folder), local_files_only=True,
                                                              pad_token="<|endoftext|>")
            tok2 = transformers.CLIPTokenizer.from_pretrained(str(folder), local_files_only=True, pad_token="!")
            return tok1, tok2
    where = ", ".join(str(f) for f in _clip_vocab_folders(config_dir))
    raise bridge.MissingModel("The CLIP tokenizer vocabulary (vocab.json + merges.txt, or tokenizer.json) was not found. "
                              f"Put it in one of: {where}.")


# ---------------------------------------------------------------- loading
_lock = threading.Lock()
_pipelines: dict[tuple, object] = {}
_controlnets: dict[str, object] = {}


def load_sdxl_pipeline(checkpoint: Path, config_dir: Path = SDXL_CONFIG_DIR):
    """StableDiffusionXLPipeline from a single-file checkpoint, built from local configs only.

    Cached per process by (checkpoint, config); LoRAs are loaded into the cached pipeline as named
    adapters and switched per call, so changing a LoRA weight never reloads the checkpoint.
    """
    diffusers = bridge.require("diffusers", EXTRA)
    checkpoint, config_dir = Path(checkpoint).resolve(), Path(config_dir).resolve()
    key = (str(checkpoint), checkpoint.stat().st_mtime, str(config_dir))
    with _lock:
        if key in _pipelines:
            return _pipelines[key]
        # Keep one SDXL at a time: a second full pipeline would not fit beside the first on most machines.
        _pipelines.clear()
        _, dtype = pick_device()
        tokenizer, tokenizer_2 = load_tokenizers(config_dir)
        pipe = diffusers.StableDiffusionXLPipeline.from_single_file(
            str(checkpoint), config=str(config_dir), local_files_only=True, torch_dtype=dtype,
            tokenizer=tokenizer, tokenizer_2=tokenizer_2)
        pipe.set_progress_bar_config(disable=True)
        pipe._studio_device = place_pipeline(pipe)
        pipe._studio_adapters = {}
        _pipelines[key] = pipe
        return pipe


def load_controlnet(path: str | Path, config_dir: Path = SDXL_CONFIG_DIR):
    """A ControlNet from a diffusers folder (config.json + weights) or a single file (with a config folder
    beside it named like the file, or configs/sdxl/controlnet)."""
    diffusers = bridge.require("diffusers", EXTRA)
    path = Path(path)
    cache_key = f"{path.resolve()}:{path.stat().st_mtime}"
    if cache_key in _controlnets:
        return _controlnets[cache_key]
    _, dtype = pick_device()
    if path.is_dir():
        model = diffusers.ControlNetModel.from_pretrained(str(path), local_files_only=True, torch_dtype=dtype)
    else:
        sidecar = path.with_suffix("")
        config = sidecar if (sidecar / "config.json").is_file() else config_dir / "controlnet"
        if not (config / "config.json").is_file():
            raise bridge.MissingModel(f"ControlNet '{path.name}' needs a diffusers config.json to load offline: "
                                      f"put it in {sidecar}/ or {config_dir / 'controlnet'}/.")
        model = diffusers.ControlNetModel.from_single_file(str(path), config=str(config), local_files_only=True,
                                                           torch_dtype=dtype)
    _controlnets.clear()
    _controlnets[cache_key] = model
    return model


def apply_loras(pipe, loras: list[tuple[str, float]]) -> None:
    """Activate exactly these LoRAs (path, weight) on the pipeline; others stay loaded but off."""
    if not loras:
        if pipe._studio_adapters:
            pipe.disable_lora()
        return
    bridge.require("peft", EXTRA)
    names = []
    for lora_path, _weight in loras:
        name = pipe._studio_adapters.get(lora_path)
        if name is None:
            name = f"lora{len(pipe._studio_adapters)}"
            pipe.load_lora_weights(str(lora_path), adapter_name=name)
            pipe._studio_adapters[lora_path] = name
        names.append(name)
    pipe.enable_lora()
    pipe.set_adapters(names, adapter_weights=[float(w) for _, w in loras])


# ---------------------------------------------------------------- generation
def _pipeline_class(mode: str, with_control: bool):
    diffusers = bridge.require("diffusers", EXTRA)
    names = {
        ("txt2img", False): "StableDiffusionXLPipeline",
        ("img2img", False): "StableDiffusionXLImg2ImgPipeline",
        ("inpaint", False): "StableDiffusionXLInpaintPipeline",
        ("txt2img", True): "StableDiffusionXLControlNetPipeline",
        ("img2img", True): "StableDiffusionXLControlNetImg2ImgPipeline",
        ("inpaint", True): "StableDiffusionXLControlNetInpaintPipeline",
    }
    return getattr(diffusers, names[(mode, with_control)])


def _pil(arr):
    from PIL import Image

    return Image.fromarray(arr)


def _feed_hidden_states(controlnet, hidden_states):
    """Make `controlnet` read `hidden_states` as its encoder hidden states for the next calls; returns the hook."""
    def swap(_module, args, kwargs):
        batch = kwargs["encoder_hidden_states"].shape[0]
        # [negative, positive] with guidance; only the positive half without it.
        states = hidden_states[-batch:] if batch <= hidden_states.shape[0] else hidden_states.repeat(
            batch // hidden_states.shape[0], 1, 1)
        kwargs["encoder_hidden_states"] = states.to(kwargs["encoder_hidden_states"])
        return args, kwargs

    return controlnet.register_forward_pre_hook(swap, with_kwargs=True)


def generate(pipe, positive: str, negative: str, *, seed: int, steps: int, cfg: float, width: int, height: int,
             controls: list[ControlSpec] = (), init_image=None, mask=None, denoise: float = 1.0,
             extra: dict | None = None):
    """Images as uint8 [1,H,W,3]. txt2img without `init_image`, img2img with it, inpaint with `mask` too.

    Each denoising step reports progress and is an interrupt point (bridge.ProgressBar).
    """
    import numpy as np

    torch = bridge.require("torch", EXTRA)
    if width % 8 or height % 8:
        raise ValueError(f"width and height must be multiples of 8 (got {width}x{height}).")
    mode = "txt2img" if init_image is None else ("img2img" if mask is None else "inpaint")
    components = dict(pipe.components)
    kwargs = dict(prompt=positive, negative_prompt=negative or None, num_inference_steps=int(steps),
                  guidance_scale=float(cfg), output_type="np")
    if controls:
        models = [load_controlnet(c.controlnet) for c in controls]
        device = getattr(pipe, "_studio_device", "cpu")
        if device == "cuda":
            models = [m.to("cuda") for m in models]
        components["controlnet"] = models[0] if len(models) == 1 else models
        images = [_pil(c.image) for c in controls]
        one = len(controls) == 1
        kwargs.update(
            controlnet_conditioning_scale=controls[0].strength if one else [c.strength for c in controls],
            control_guidance_start=controls[0].start if one else [c.start for c in controls],
            control_guidance_end=controls[0].end if one else [c.end for c in controls])
        kwargs["control_image" if mode != "txt2img" else "image"] = images[0] if one else images
    cls = _pipeline_class(mode, bool(controls))
    expected, _optional = cls._get_signature_keys(cls)
    # The variants share the loaded models; only the denoising loop differs.
    runner = cls(**{k: v for k, v in components.items() if k in expected})
    runner.set_progress_bar_config(disable=True)
    if mode != "txt2img":
        kwargs["image"] = _pil(init_image)
        kwargs["strength"] = float(denoise)
        if mask is not None:
            kwargs["mask_image"] = _pil(mask)
    kwargs["width"], kwargs["height"] = int(width), int(height)
    kwargs.update(extra or {})  # IP-Adapter / InstantID arguments
    # img2img / inpaint run only the last `denoise` share of the schedule.
    total = max(1, int(int(steps) * (float(denoise) if mode != "txt2img" else 1.0)))
    progress = bridge.ProgressBar(total, "SDXL")

    def on_step_end(_pipe, step, _timestep, callback_kwargs):
        progress.update_absolute(step + 1, total)  # raises Interrupted when the run is cancelled
        return callback_kwargs

    hooks = [_feed_hidden_states(model, c.hidden_states) for model, c in zip(models, controls)
             if c.hidden_states is not None] if controls else []
    exec_device = "cpu" if getattr(pipe, "_studio_device", "cpu") == "cpu" else "cuda"
    generator = torch.Generator(device=exec_device).manual_seed(int(seed) % 2**64)
    try:
        with torch.inference_mode():
            out = runner(generator=generator, callback_on_step_end=on_step_end, **kwargs).images
    finally:
        for hook in hooks:
            hook.remove()  # the ControlNet is cached and may serve a plain control next time
    arr = np.asarray(out)
    return (np.clip(arr, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
