"""Dataset curation nodes: the stages on IMAGE batches, and the whole film-to-dataset job."""
from __future__ import annotations

import json

from .. import bridge

CATEGORY = "Animation Studio/dataset"


def _settings():
    from ...configs.settings import load_settings

    return load_settings().dataset


class AlphaMatte:
    CATEGORY = CATEGORY
    RETURN_TYPES = ("MASK",)
    FUNCTION = "run"
    DESCRIPTION = "Soft alpha matte with the 3D threshold: alpha below it is background, the anti-aliased edge is kept."

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"mask": ("MASK",),
                             "threshold": ("FLOAT", {"default": 0.15, "min": 0.0, "max": 1.0, "step": 0.01})}}

    def run(self, mask, threshold):
        import torch

        return (torch.where(mask < threshold, torch.zeros_like(mask), mask),)


class SharpnessFilter:
    CATEGORY = CATEGORY
    RETURN_TYPES = ("IMAGE", "MASK", "STRING")
    RETURN_NAMES = ("kept_images", "kept_masks", "report")
    FUNCTION = "run"
    DESCRIPTION = "Keep frames whose character is sharp: variance of the Laplacian over the mask >= threshold (80)."

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"images": ("IMAGE",), "threshold": ("FLOAT", {"default": 80.0, "min": 0.0, "max": 10000.0})},
                "optional": {"masks": ("MASK",)}}

    def run(self, images, threshold, masks=None):
        import cv2
        import torch

        from ..core import image_to_numpy
        from .curate import laplacian_variance

        frames = image_to_numpy(images)
        keep, values = [], []
        for i, frame in enumerate(frames):
            mask = None if masks is None else masks[min(i, len(masks) - 1)].cpu().numpy() > 0.15
            value = laplacian_variance(cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY), mask)
            values.append(round(value, 2))
            if value >= threshold:
                keep.append(i)
        if not keep:
            raise ValueError(f"No frame is sharp enough (variance of the Laplacian {values} < {threshold}).")
        kept_masks = masks[keep] if masks is not None else torch.ones(len(keep), *images.shape[1:3])
        report = json.dumps({"threshold": threshold, "sharpness": values, "kept": keep})
        return (images[keep], kept_masks, report)


class DedupeFrames:
    CATEGORY = CATEGORY
    RETURN_TYPES = ("IMAGE", "STRING")
    RETURN_NAMES = ("images", "report")
    FUNCTION = "run"
    DESCRIPTION = "Remove near-duplicate frames by perceptual hash (Hamming distance <= max_distance)."

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"images": ("IMAGE",), "max_distance": ("INT", {"default": 6, "min": 0, "max": 64})}}

    def run(self, images, max_distance):
        from ..core import image_to_numpy
        from .curate import hamming, perceptual_hash

        kept, hashes, dupes = [], [], {}
        for i, frame in enumerate(image_to_numpy(images)):
            h = perceptual_hash(frame)
            match = next((j for j, k in zip(kept, hashes) if hamming(h, k) <= max_distance), None)
            if match is None:
                kept.append(i)
                hashes.append(h)
            else:
                dupes[i] = match
        return (images[kept], json.dumps({"kept": kept, "duplicate_of": dupes}))


class BackgroundPlate:
    CATEGORY = CATEGORY
    RETURN_TYPES = ("IMAGE", "STRING")
    RETURN_NAMES = ("plates", "method")
    FUNCTION = "run"
    DESCRIPTION = "Remove the characters (mask) from frames for background LoRAs: LaMa from models/inpaint, else OpenCV."

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"images": ("IMAGE",), "masks": ("MASK",),
                             "lama_model": ("STRING", {"default": "big-lama.pt"})}}

    def run(self, images, masks, lama_model):
        import numpy as np

        from ..core import image_to_numpy, numpy_to_image
        from .curate import background_plate

        frames, plates, methods = image_to_numpy(images), [], set()
        bar = bridge.ProgressBar(len(frames), "background plates")
        for i, frame in enumerate(frames):
            alpha = masks[min(i, len(masks) - 1)].cpu().numpy()
            plate, method = background_plate(frame, alpha, lama_model)
            plates.append(plate)
            methods.add(method)
            bar.update(1)
        return (numpy_to_image(np.stack(plates)), ",".join(sorted(methods)))


class CurateDataset:
    CATEGORY = CATEGORY
    RETURN_TYPES = ("STRING", "STRING")
    RETURN_NAMES = ("report", "dataset_folder")
    FUNCTION = "run"
    OUTPUT_NODE = True
    DESCRIPTION = ("Film -> a kohya-style LoRA dataset for one character (scene-aware sampling, 0.15 alpha matte "
                   "with a quality gate, sharpness >= 80, dedupe, identity verified against reference images and "
                   "the set, diverse selection, captions); resumable. References: the IMAGE input, else the "
                   "character's reference images; with neither it stops (unknown subject).")

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "video": ("STUDIO_VIDEO",),
            "character": ("STRING", {"default": "luca"}),
            "dataset_name": ("STRING", {"default": "lora_dataset"}),
            "frames_per_scene": ("INT", {"default": 8, "min": 1, "max": 200}),
            "workers": ("INT", {"default": 1, "min": 1, "max": 64}),
        }, "optional": {"references": ("IMAGE",)}}

    def run(self, video, character, dataset_name, frames_per_scene, workers, references=None):
        from ..core import image_to_numpy
        from .curate import CurationSettings
        from .pipeline import curate_film, profile_references

        settings = CurationSettings.for_character(character, frames_per_scene=frames_per_scene)
        # Without an IMAGE batch the character's own reference images verify each region; with neither the
        # job stops (unknown subject) instead of counting every region as the character.
        refs = {character: list(image_to_numpy(references))} if references is not None else \
            profile_references(character)
        safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in dataset_name) or "lora_dataset"
        out = bridge.output_directory() / "datasets" / safe / character
        summary = curate_film(video.path, out, settings, refs, workers=workers)
        short = {k: v for k, v in summary.items() if k != "records"}
        return {"ui": {"text": [json.dumps(short, indent=1)]}, "result": (json.dumps(short), str(out))}


NODE_CLASS_MAPPINGS, NODE_DISPLAY_NAME_MAPPINGS = bridge.node_mappings({
    "AlphaMatte": (AlphaMatte, "Alpha Matte (3D soft edges)"),
    "SharpnessFilter": (SharpnessFilter, "Sharpness Filter"),
    "DedupeFrames": (DedupeFrames, "Remove Near-Duplicates"),
    "BackgroundPlate": (BackgroundPlate, "Background Plate (remove characters)"),
    "CurateDataset": (CurateDataset, "Curate LoRA Dataset"),
})
