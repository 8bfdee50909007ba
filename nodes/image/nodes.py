"""Thin ComfyUI node layer over sdxl.py, control.py and identity.py (diffusers engine for embedded runs)."""
from __future__ import annotations

from pathlib import Path

from .. import bridge
from ..core import image_to_numpy, numpy_to_image
from ...configs import characters as registry
from . import control, identity, sdxl

CATEGORY = "Animation Studio/image"


def _choices(kind: str, suffixes: tuple[str, ...] = ()) -> list[str]:
    return bridge.list_models(kind, suffixes) or [f"(put files in models/{kind})"]


def _controlnet_choices() -> list[str]:
    # Files, or diffusers folders (a config.json inside): report the folder name.
    names = set()
    for name in bridge.list_models("controlnet"):
        if name.endswith((".safetensors", ".bin", ".pth")) and "/" not in name:
            names.add(name)
        elif name.endswith("/config.json") or name == "config.json":
            names.add(name.rsplit("/config.json", 1)[0])
    return sorted(names) or ["(put files in models/controlnet)"]


def _first(image):
    """First frame of an IMAGE batch as uint8 [H,W,3]."""
    return image_to_numpy(image)[0]


class SDXLCheckpointLoader:
    CATEGORY = CATEGORY
    RETURN_TYPES = ("SDXL_MODEL",)
    RETURN_NAMES = ("model",)
    FUNCTION = "run"
    DESCRIPTION = ("An SDXL single-file checkpoint from models/checkpoints, loaded with diffusers and the pack's "
                   "offline SDXL configs (configs/sdxl). Loading happens once per process, at the first sampling.")

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"ckpt_name": (_choices("checkpoints", sdxl.CHECKPOINT_SUFFIXES),)}}

    def run(self, ckpt_name):
        path = bridge.find_model("checkpoints", ckpt_name)
        return ({"checkpoint": str(path), "config": str(sdxl.SDXL_CONFIG_DIR), "loras": []},)


def _with_lora(model: dict, path: Path, weight: float) -> dict:
    return {**model, "loras": [*model["loras"], (str(path), float(weight))]}


class SDXLLora:
    CATEGORY = CATEGORY
    RETURN_TYPES = ("SDXL_MODEL",)
    RETURN_NAMES = ("model",)
    FUNCTION = "run"
    DESCRIPTION = "Add a LoRA from models/loras with a weight; chain several for a LoRA stack."

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"model": ("SDXL_MODEL",), "lora_name": (_choices("loras", sdxl.LORA_SUFFIXES),),
                             "weight": ("FLOAT", {"default": 0.8, "min": -4.0, "max": 4.0, "step": 0.05})}}

    def run(self, model, lora_name, weight):
        return (_with_lora(model, bridge.find_model("loras", lora_name), weight),)


class SDXLCharacterLora:
    CATEGORY = CATEGORY
    RETURN_TYPES = ("SDXL_MODEL",)
    RETURN_NAMES = ("model",)
    FUNCTION = "run"
    DESCRIPTION = "Add a character's own LoRA (file and weight from configs/characters); weight < 0 keeps the config's."

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"model": ("SDXL_MODEL",), "character": ("CHARACTER",),
                             "weight": ("FLOAT", {"default": -1.0, "min": -1.0, "max": 4.0, "step": 0.05})}}

    def run(self, model, character, weight):
        char = registry.Character.model_validate(character)
        path = char.lora_path()
        return (_with_lora(model, path, char.lora.weight if weight < 0 else weight),)


class ControlNetStack:
    CATEGORY = CATEGORY
    RETURN_TYPES = ("CONTROL_STACK",)
    RETURN_NAMES = ("controls",)
    FUNCTION = "run"
    DESCRIPTION = "Add a ControlNet (OpenPose, Depth, Canny...) from models/controlnet with its control image."

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "controlnet_name": (_controlnet_choices(),),
            "image": ("IMAGE",),
            "strength": ("FLOAT", {"default": 1.0, "min": 0.0, "max": 10.0, "step": 0.01}),
            "start_percent": ("FLOAT", {"default": 0.0, "min": 0.0, "max": 1.0, "step": 0.001}),
            "end_percent": ("FLOAT", {"default": 1.0, "min": 0.0, "max": 1.0, "step": 0.001}),
        }, "optional": {"controls": ("CONTROL_STACK",)}}

    def run(self, controlnet_name, image, strength, start_percent, end_percent, controls=None):
        if start_percent > end_percent:
            raise ValueError(f"start_percent ({start_percent}) must not exceed end_percent ({end_percent}).")
        path = bridge.find_model("controlnet", controlnet_name)
        spec = sdxl.ControlSpec(str(path), _first(image), float(strength), float(start_percent), float(end_percent))
        return ([*(controls or []), spec],)


class SDXLSampler:
    CATEGORY = CATEGORY
    RETURN_TYPES = ("IMAGE",)
    RETURN_NAMES = ("images",)
    FUNCTION = "run"
    DESCRIPTION = ("Generate with SDXL: text to image; image to image with init_image (denoise < 1); inpaint with "
                   "init_image + mask. ControlNets, LoRAs and a character reference apply in every mode.")

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "model": ("SDXL_MODEL",),
            "positive": ("STRING", {"multiline": True, "default": ""}),
            "negative": ("STRING", {"multiline": True, "default": ""}),
            "seed": ("INT", {"default": 0, "min": 0, "max": 2**64 - 1}),
            "steps": ("INT", {"default": 30, "min": 1, "max": 200}),
            "cfg": ("FLOAT", {"default": 7.5, "min": 0.0, "max": 30.0, "step": 0.1}),
            "width": ("INT", {"default": 1024, "min": 64, "max": 4096, "step": 8}),
            "height": ("INT", {"default": 1024, "min": 64, "max": 4096, "step": 8}),
            "denoise": ("FLOAT", {"default": 1.0, "min": 0.0, "max": 1.0, "step": 0.01}),
        }, "optional": {"controls": ("CONTROL_STACK",), "init_image": ("IMAGE",), "mask": ("MASK",),
                        "reference": ("REFERENCE",)}}

    def run(self, model, positive, negative, seed, steps, cfg, width, height, denoise,
            controls=None, init_image=None, mask=None, reference=None):
        if mask is not None and init_image is None:
            raise ValueError("mask needs init_image: inpainting paints into an existing image.")
        pipe = sdxl.load_sdxl_pipeline(Path(model["checkpoint"]), Path(model["config"]))
        sdxl.apply_loras(pipe, [tuple(x) for x in model["loras"]])
        extra, identity_controls = identity.attach_reference(pipe, reference, guided=cfg > 1.0)
        init = _first(init_image) if init_image is not None else None
        mask_arr = None
        if mask is not None:
            import numpy as np

            mask_arr = (np.clip(mask[0].cpu().numpy(), 0, 1) * 255).astype(np.uint8)
        images = sdxl.generate(pipe, positive, negative, seed=seed, steps=steps, cfg=cfg, width=width, height=height,
                               controls=[*(controls or []), *identity_controls], init_image=init, mask=mask_arr,
                               denoise=denoise, extra=extra)
        return (numpy_to_image(images),)


class CannyEdges:
    CATEGORY = CATEGORY
    RETURN_TYPES = ("IMAGE",)
    FUNCTION = "run"
    DESCRIPTION = "Canny edge map (OpenCV) for a Canny ControlNet."

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"image": ("IMAGE",), "low_threshold": ("INT", {"default": 100, "min": 0, "max": 1000}),
                             "high_threshold": ("INT", {"default": 200, "min": 0, "max": 1000})}}

    def run(self, image, low_threshold, high_threshold):
        import numpy as np

        frames = image_to_numpy(image)
        progress = bridge.ProgressBar(len(frames), "canny")
        out = []
        for frame in frames:
            out.append(control.canny_edges(frame, low_threshold, high_threshold))
            progress.update(1)
        return (numpy_to_image(np.stack(out)),)


class PoseSkeleton:
    CATEGORY = CATEGORY
    RETURN_TYPES = ("IMAGE", "STRING")
    RETURN_NAMES = ("pose_image", "keypoints_json")
    FUNCTION = "run"
    DESCRIPTION = "OpenPose-style skeleton image (18 keypoints) from a photo or render, via MediaPipe Pose."

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"image": ("IMAGE",)}}

    def run(self, image):
        skeleton, keypoints = control.pose_skeleton(_first(image))
        return (numpy_to_image(skeleton), keypoints)


class DepthMap:
    CATEGORY = CATEGORY
    RETURN_TYPES = ("IMAGE",)
    FUNCTION = "run"
    DESCRIPTION = "Depth map for a Depth ControlNet, from a transformers depth model folder in models/depth."

    @classmethod
    def INPUT_TYPES(cls):
        names = sorted({n.split("/")[0] for n in bridge.list_models("depth") if n.endswith("config.json")})
        return {"required": {"image": ("IMAGE",), "model_name": (names or ["(put a model folder in models/depth)"],)}}

    def run(self, image, model_name):
        return (numpy_to_image(control.depth_map(_first(image), model_name)),)


class IPAdapterReference:
    CATEGORY = CATEGORY
    RETURN_TYPES = ("REFERENCE",)
    RETURN_NAMES = ("reference",)
    FUNCTION = "run"
    DESCRIPTION = ("Keep a character's look from a reference image with IP-Adapter (models/ipadapter); works on "
                   "stylized 3D characters where face detectors fail.")

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"image": ("IMAGE",),
                             "ipadapter_name": (_choices("ipadapter", (".safetensors", ".bin")),),
                             "scale": ("FLOAT", {"default": 0.6, "min": 0.0, "max": 2.0, "step": 0.05})}}

    def run(self, image, ipadapter_name, scale):
        return (identity.ip_adapter_reference(_first(image), ipadapter_name, scale),)


class InstantIDReference:
    CATEGORY = CATEGORY
    RETURN_TYPES = ("REFERENCE",)
    RETURN_NAMES = ("reference",)
    FUNCTION = "run"
    DESCRIPTION = ("InstantID identity from a face image (models/instantid + an ArcFace pack in models/insightface, "
                   "antelopev2 for the released weights): face embedding into the IP-Adapter and IdentityNet, "
                   "face keypoints into IdentityNet.")

    @classmethod
    def INPUT_TYPES(cls):
        from ..face.identity import insightface_packs

        packs = insightface_packs()
        packs = sorted(packs, key=lambda p: p != "antelopev2") or ["antelopev2"]
        return {"required": {"face_image": ("IMAGE",),
                             "ip_scale": ("FLOAT", {"default": 0.8, "min": 0.0, "max": 2.0, "step": 0.05}),
                             "controlnet_strength": ("FLOAT", {"default": 0.8, "min": 0.0, "max": 2.0, "step": 0.05}),
                             "insightface_pack": (packs,)}}

    def run(self, face_image, ip_scale, controlnet_strength, insightface_pack):
        return (identity.instantid_reference(_first(face_image), ip_scale, controlnet_strength, insightface_pack),)


NODES = {
    "SDXLCheckpointLoader": (SDXLCheckpointLoader, "SDXL Checkpoint (diffusers)"),
    "SDXLLora": (SDXLLora, "SDXL LoRA"),
    "SDXLCharacterLora": (SDXLCharacterLora, "SDXL Character LoRA"),
    "ControlNetStack": (ControlNetStack, "ControlNet Stack"),
    "SDXLSampler": (SDXLSampler, "SDXL Sampler (diffusers)"),
    "CannyEdges": (CannyEdges, "Canny Edges"),
    "PoseSkeleton": (PoseSkeleton, "Pose Skeleton (OpenPose style)"),
    "DepthMap": (DepthMap, "Depth Map"),
    "IPAdapterReference": (IPAdapterReference, "IP-Adapter Reference"),
    "InstantIDReference": (InstantIDReference, "InstantID Reference"),
}
