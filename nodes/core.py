"""Core nodes: text and numbers, image load/save/preview, and the bits every workflow needs."""
from __future__ import annotations

import json
from pathlib import Path

from . import bridge
from ..configs import paths

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


def save_image_batch(images, filename_prefix: str, node: str = "SaveImage") -> list[dict]:
    """One PNG per image in the output folder: reserved names, written through a random .part file."""
    from PIL import Image

    folder, stem = paths.save_prefix(bridge.output_directory(), filename_prefix, node=node)
    entries = []
    for frame in image_to_numpy(images):
        path = paths.reserve_new(folder, stem, ".png")
        try:
            write_reserved(path, lambda fh: Image.fromarray(frame).save(fh, format="PNG"))
        except BaseException:
            path.unlink(missing_ok=True)
            raise
        entries.append(bridge.ui_file_entry(path))
    return entries


def write_reserved(path: Path, write) -> None:
    """Fill a reserved output name: `write(binary file)` into a random .part sibling, then rename over the name."""
    part = paths.temp_sibling(path)
    try:
        with open(part, "wb") as fh:
            write(fh)
        paths.replace_reserved(part, path)
    finally:
        part.unlink(missing_ok=True)


def pil_to_rgba(img) -> "np.ndarray":
    """float32 [H,W,4] in 0..1 for any PIL mode, scaled by the mode's own range.

    16- and 32-bit grey ("I;16", "I") are divided by 65535 rather than clipped
    at 255 (PIL's convert("RGBA") would turn a 16-bit PNG almost white);
    float images ("F") are taken as 0..1; palette (with its transparency),
    LA, 1-bit, CMYK and the rest go through PIL's own conversion to RGBA.
    """
    import numpy as np

    if img.mode.startswith("I") or img.mode == "F":
        grey = np.asarray(img, dtype=np.float32)
        if img.mode != "F":
            grey = grey / 65535.0
        grey = np.clip(np.nan_to_num(grey), 0.0, 1.0)
        return np.dstack([grey, grey, grey, np.ones_like(grey)])
    return np.asarray(img.convert("RGBA"), dtype=np.float32) / 255.0


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
        path = paths.save_path(bridge.output_directory(), filename_prefix, ".txt", node="SaveText")
        try:
            write_reserved(path, lambda fh: fh.write(str(text).encode("utf-8")))
        except BaseException:
            path.unlink(missing_ok=True)
            raise
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
        rgba = pil_to_rgba(img)
        torch = bridge.require("torch", "image")
        mask = 1.0 - torch.from_numpy(np.ascontiguousarray(rgba[..., 3]))[None]
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
        return {"ui": {"images": save_image_batch(images, filename_prefix)}}


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
