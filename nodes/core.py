"""Core nodes: text and numbers, image load/save/preview, and the bits every workflow needs."""
from __future__ import annotations

import json
from pathlib import Path

from . import bridge

CATEGORY = "Animation Studio/core"


# ---------------------------------------------------------------- IMAGE <-> PIL / numpy
def image_to_numpy(image) -> "np.ndarray":
    """IMAGE [B,H,W,C] float 0..1 -> uint8 [B,H,W,C]."""
    import numpy as np

    arr = image.detach().cpu().numpy() if hasattr(image, "detach") else np.asarray(image)
    return (np.clip(arr, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def numpy_to_image(arr):
    """uint8 or float [B,H,W,C] / [H,W,C] -> IMAGE tensor."""
    import numpy as np

    torch = bridge.require("torch", "image")
    arr = np.asarray(arr)
    if arr.ndim == 3:
        arr = arr[None]
    if arr.dtype == np.uint8:
        arr = arr.astype(np.float32) / 255.0
    return torch.from_numpy(np.ascontiguousarray(arr.astype(np.float32)))


def save_image_batch(images, prefix: str, subfolder: str = "") -> list[dict]:
    from PIL import Image

    entries = []
    for frame in image_to_numpy(images):
        path = bridge.unique_output_path(prefix, ".png", subfolder)
        tmp = path.with_suffix(".png.part")
        Image.fromarray(frame).save(tmp, format="PNG")
        tmp.replace(path)
        entries.append(bridge.ui_file_entry(path))
    return entries


class Text:
    CATEGORY = CATEGORY
    RETURN_TYPES = ("STRING",)
    FUNCTION = "run"
    DESCRIPTION = "A text value."

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"text": ("STRING", {"default": "", "multiline": True})}}

    def run(self, text):
        return (text,)


class JoinText:
    CATEGORY = CATEGORY
    RETURN_TYPES = ("STRING",)
    FUNCTION = "run"
    DESCRIPTION = "Join two texts with a separator."

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"a": ("STRING", {"default": ""}), "b": ("STRING", {"default": ""}),
                             "separator": ("STRING", {"default": " "})}}

    def run(self, a, b, separator):
        return (f"{a}{separator}{b}",)


class Number:
    CATEGORY = CATEGORY
    RETURN_TYPES = ("INT", "FLOAT")
    FUNCTION = "run"
    DESCRIPTION = "A number, as INT and FLOAT."

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"value": ("FLOAT", {"default": 0.0, "min": -1e9, "max": 1e9, "step": 0.01})}}

    def run(self, value):
        return (int(round(value)), float(value))


class SaveText:
    CATEGORY = CATEGORY
    RETURN_TYPES = ()
    FUNCTION = "run"
    OUTPUT_NODE = True
    DESCRIPTION = "Write a text (a report, a caption, a plan) into the output folder; never overwrites."

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"text": ("STRING", {"forceInput": True}),
                             "filename_prefix": ("STRING", {"default": "animation_studio/text"})}}

    def run(self, text, filename_prefix):
        prefix = Path(filename_prefix)
        path = bridge.unique_output_path(prefix.name, ".txt", prefix.parent.as_posix().strip("./"))
        path.write_text(text, encoding="utf-8")
        return {"ui": {"text": [text], "files": [bridge.ui_file_entry(path)]}}


class LoadImage:
    CATEGORY = CATEGORY
    RETURN_TYPES = ("IMAGE", "MASK")
    FUNCTION = "run"
    DESCRIPTION = "Load an image from the input folder (alpha becomes the mask, as in ComfyUI)."

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"image": ("STRING", {"default": "example.png"})}}

    @classmethod
    def VALIDATE_INPUTS(cls, image):
        try:
            bridge.safe_input_path(image)
        except (OSError, ValueError) as exc:
            return str(exc)
        return True

    def run(self, image):
        import numpy as np
        from PIL import Image, ImageOps

        path = bridge.safe_input_path(image)
        try:
            img = ImageOps.exif_transpose(Image.open(path))
            img.load()
        except Exception as exc:  # noqa: BLE001 - PIL raises many types for bad files
            raise ValueError(f"Cannot read image {image!r}: {exc}") from None
        rgba = np.asarray(img.convert("RGBA"))
        torch = bridge.require("torch", "image")
        mask = 1.0 - torch.from_numpy(rgba[..., 3].astype(np.float32) / 255.0)[None]
        return (numpy_to_image(rgba[..., :3]), mask)


class SaveImage:
    CATEGORY = CATEGORY
    RETURN_TYPES = ()
    FUNCTION = "run"
    OUTPUT_NODE = True
    DESCRIPTION = "Save images as PNG in the output folder; never overwrites."

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"images": ("IMAGE",),
                             "filename_prefix": ("STRING", {"default": "animation_studio/image"})}}

    def run(self, images, filename_prefix):
        prefix = Path(filename_prefix)
        return {"ui": {"images": save_image_batch(images, prefix.name, prefix.parent.as_posix().strip("./"))}}


class SolidImage:
    CATEGORY = CATEGORY
    RETURN_TYPES = ("IMAGE",)
    FUNCTION = "run"
    DESCRIPTION = "A vertical two-colour gradient image (backgrounds, title cards, tests)."

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "width": ("INT", {"default": 512, "min": 8, "max": 8192, "step": 8}),
            "height": ("INT", {"default": 512, "min": 8, "max": 8192, "step": 8}),
            "top_color": ("STRING", {"default": "#7ec8e3"}),
            "bottom_color": ("STRING", {"default": "#f6d7a7"}),
        }}

    def run(self, width, height, top_color, bottom_color):
        import numpy as np
        from PIL import ImageColor

        try:
            top = np.array(ImageColor.getrgb(top_color), np.float32)
            bottom = np.array(ImageColor.getrgb(bottom_color), np.float32)
        except ValueError as exc:
            raise ValueError(f"Bad colour: {exc}") from None
        t = np.linspace(0.0, 1.0, height, dtype=np.float32)[:, None, None]
        img = (top * (1 - t) + bottom * t) * np.ones((1, width, 1), np.float32)
        return (numpy_to_image(img / 255.0),)


class ShowJSON:
    CATEGORY = CATEGORY
    RETURN_TYPES = ("STRING",)
    FUNCTION = "run"
    OUTPUT_NODE = True
    DESCRIPTION = "Show any JSON-able value as text on the node (reports, scores, plans)."

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"text": ("STRING", {"forceInput": True})}}

    def run(self, text):
        try:
            pretty = json.dumps(json.loads(text), indent=2)
        except (TypeError, ValueError):
            pretty = str(text)
        return {"ui": {"text": [pretty]}, "result": (pretty,)}


_NODES = {
    "Text": (Text, "Text"),
    "JoinText": (JoinText, "Join Text"),
    "Number": (Number, "Number"),
    "SaveText": (SaveText, "Save Text"),
    "LoadImage": (LoadImage, "Load Image"),
    "SaveImage": (SaveImage, "Save Image"),
    "SolidImage": (SolidImage, "Gradient Image"),
    "ShowJSON": (ShowJSON, "Show Text / JSON"),
}
NODE_CLASS_MAPPINGS, NODE_DISPLAY_NAME_MAPPINGS = bridge.node_mappings(_NODES)
