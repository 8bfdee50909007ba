"""SAM2 segmentation nodes: a character's soft matte in an image, and tracked through a clip.

The model runs through `SAM2Base`'s own modelling API (image encoder ->
`track_step`, which drives the prompt encoder, mask decoder and memory
encoder), never through `SAM2ImagePredictor`: that wrapper imports
torchvision for three transforms (ToTensor, Resize, Normalize), and
torchvision cannot be installed next to the CPU torch the pack runs on. The
preprocessing here is the same maths in plain torch (`_encode`), so there is
no shim module to slip onto sys.path and nothing global changes while sam2
runs.

Image segmentation is the first step of tracking: the prompted frame is an
"initial conditioning frame". Tracking a clip then feeds every further frame
through `track_step` with SAM2's memory bank (the last few frames' memory
features and object pointers), exactly what `SAM2VideoPredictor` does, but
streamed: frames come in uint8 chunks from `video_io.iter_frames`, and only
the memory SAM2 actually reads is kept, so a long clip never sits in memory
(the video predictor loads every frame as a 1024x1024 float tensor first).

Masks come out soft: the decoder's logits are upsampled to the picture and
squashed with a sigmoid, then alpha below `dataset.alpha_threshold` (0.15 in
configs/global.yaml) is zeroed while the soft edge above it is kept.
"""
from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from . import bridge
from . import video_io as vio
from .video_io import VIDEO_TYPE

log = logging.getLogger("animation_studio.segment")
CATEGORY = "Animation Studio/segment"
MODEL_TYPE = "SAM2_MODEL"
MODEL_KIND = "sam2"  # models/sam2, as in ComfyUI's folder_paths
CHUNK = 8
# ImageNet statistics SAM2 was trained with (SAM2Transforms' Normalize).
MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)
# Checkpoint size word -> the size code in the config file names.
SIZE_CODES = {"tiny": "t", "t": "t", "small": "s", "s": "s", "base_plus": "b+", "b+": "b+", "baseplus": "b+",
              "large": "l", "l": "l"}
KNOWN_CHECKPOINTS = ["sam2.1_hiera_large.pt", "sam2.1_hiera_base_plus.pt", "sam2.1_hiera_small.pt",
                     "sam2.1_hiera_tiny.pt", "sam2_hiera_large.pt", "sam2_hiera_base_plus.pt",
                     "sam2_hiera_small.pt", "sam2_hiera_tiny.pt"]
# Memory SAM2 reads while tracking: the last num_maskmem (7) frames and up to 16 object pointers.
KEEP_NON_COND_FRAMES = 16


def _np():
    import numpy as np

    return np


def _torch():
    return bridge.require("torch", "segment")


def alpha_threshold() -> float:
    from ..configs.settings import load_settings

    return float(load_settings().dataset.alpha_threshold)


# ================================================================ model
@dataclass
class SAM2Model:
    """A built SAM2Base (eval mode, CPU unless moved) and where it came from."""

    model: object
    name: str
    config: str

    @property
    def image_size(self) -> int:
        return int(self.model.image_size)


def config_for(checkpoint_name: str) -> str:
    """sam2.1_hiera_large.pt -> configs/sam2.1/sam2.1_hiera_l.yaml (the config shipped in the sam2 package)."""
    stem = Path(checkpoint_name).name.lower()
    match = re.match(r"(sam2(?:\.1)?)_hiera_(tiny|small|base_plus|baseplus|b\+|large|t|s|l)\b", stem)
    if not match:
        raise ValueError(f"Cannot tell the SAM2 config from the file name {checkpoint_name!r}: name it like the "
                         f"official checkpoints ({', '.join(KNOWN_CHECKPOINTS[:5])}, ...).")
    version, size = match.group(1), SIZE_CODES[match.group(2)]
    return f"configs/{version}/{version}_hiera_{size}.yaml"


def build_model(config: str, checkpoint: Path | None = None, overrides: tuple[str, ...] = ()) -> SAM2Model:
    """SAM2 from one of the package's configs; weights from `checkpoint`, random when None (tests)."""
    torch = _torch()
    build_sam = bridge.require("sam2.build_sam", "segment", "sam2")
    model = build_sam.build_sam2(config, ckpt_path=None, device="cpu", mode="eval",
                                 hydra_overrides_extra=list(overrides))
    if checkpoint is not None:
        name = Path(checkpoint).name
        try:
            state = torch.load(str(checkpoint), map_location="cpu", weights_only=True)
        except Exception as exc:  # noqa: BLE001 - torch raises many types for a bad archive
            raise ValueError(f"Cannot read the SAM2 checkpoint {name}: {exc}") from None
        state = state.get("model", state) if isinstance(state, dict) else None
        if not isinstance(state, dict):
            raise ValueError(f"{name} holds no SAM2 state dict (expected {{'model': {{...}}}}).")
        missing, unexpected = model.load_state_dict(state, strict=False)
        if missing or unexpected:
            raise ValueError(f"{name} does not match {config} ({len(missing)} missing, {len(unexpected)} unexpected "
                             f"weights, e.g. {(missing or unexpected)[0]}); is the file name's size right?")
    return SAM2Model(model=model.eval(), name=Path(checkpoint).name if checkpoint else "random", config=config)


def load_model(name: str) -> SAM2Model:
    """A checkpoint from models/sam2 with the config its name implies; MissingModel names file and folder."""
    if not name or name.startswith("("):
        where = ", ".join(str(f) for f in bridge.model_folders(MODEL_KIND))
        raise bridge.MissingModel(f"No SAM2 checkpoint chosen. Put one (e.g. sam2.1_hiera_large.pt) in the "
                                  f"'{MODEL_KIND}' models folder ({where}).")
    config = config_for(name)
    path = bridge.find_model(MODEL_KIND, name)
    return _load_cached(str(path), path.stat().st_mtime, config)


@lru_cache(maxsize=2)
def _load_cached(path: str, mtime: float, config: str) -> SAM2Model:
    return build_model(config, Path(path))


def checkpoint_choices() -> list[str]:
    # ComfyUI validates combo values against this list, so unfound official names stay
    # choosable: picking one gives the MissingModel message instead of "value not in list".
    found = bridge.list_models(MODEL_KIND, (".pt", ".pth"))
    return found + [n for n in KNOWN_CHECKPOINTS if n not in found]


# ================================================================ prompts
def _parse_json(text: str, what: str):
    text = (text or "").strip()
    if not text:
        return None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{what} must be JSON, e.g. {'[[320, 240]]' if 'point' in what else '[100, 50, 400, 460]'}; "
                         f"got {text[:60]!r} ({exc.msg}).") from None


def _as_points(value, what: str) -> list[tuple[float, float]]:
    if value is None:
        return []
    if isinstance(value, dict) or (isinstance(value, list) and value and isinstance(value[0], (int, float))):
        value = [value]  # a single point
    points = []
    for p in value:
        if isinstance(p, dict) and "x" in p and "y" in p:
            p = (p["x"], p["y"])
        if not (isinstance(p, (list, tuple)) and len(p) == 2 and all(isinstance(v, (int, float)) for v in p)):
            raise ValueError(f"{what}: each point must be [x, y] in pixels; got {p!r}.")
        points.append((float(p[0]), float(p[1])))
    return points


def parse_prompts(points: str, negative_points: str, box: str, width: int, height: int):
    """JSON prompts -> (coords [N,2] in pixels, labels [N]) in SAM2's convention (box corners 2/3, clicks 1/0)."""
    np = _np()
    pos = _as_points(_parse_json(points, "points"), "points")
    neg = _as_points(_parse_json(negative_points, "negative_points"), "negative_points")
    coords, labels = [], []
    raw_box = _parse_json(box, "box")
    if raw_box is not None:
        if isinstance(raw_box, dict):
            raw_box = [raw_box.get(k) for k in ("x0", "y0", "x1", "y1")]
        if not (isinstance(raw_box, list) and len(raw_box) == 4 and all(isinstance(v, (int, float)) for v in raw_box)):
            raise ValueError(f"box must be [x0, y0, x1, y1] in pixels; got {raw_box!r}.")
        x0, y0, x1, y1 = map(float, raw_box)
        if x1 <= x0 or y1 <= y0:
            raise ValueError(f"box [{x0:g}, {y0:g}, {x1:g}, {y1:g}] is empty: x1 must exceed x0 and y1 exceed y0.")
        _check_inside("box corner", [(x0, y0), (x1, y1)], width, height)
        coords += [(x0, y0), (x1, y1)]
        labels += [2, 3]
    _check_inside("point", pos, width, height)
    _check_inside("negative point", neg, width, height)
    coords += pos + neg
    labels += [1] * len(pos) + [0] * len(neg)
    return np.array(coords, np.float32).reshape(-1, 2), np.array(labels, np.int32)


def _check_inside(what: str, points, width: int, height: int) -> None:
    for x, y in points:
        if not (0 <= x <= width and 0 <= y <= height):
            raise ValueError(f"The {what} ({x:g}, {y:g}) is outside the {width}x{height} picture; "
                             f"prompts are pixel coordinates with x in 0..{width} and y in 0..{height}.")


def mask_hint_prompt(hint):
    """A rough mask -> (box prompt around it, its logits as a dense prompt); ValueError when it is empty."""
    np = _np()
    hint = np.asarray(hint, np.float32)
    ys, xs = np.nonzero(hint > 0.5)
    if len(xs) == 0:
        raise ValueError("mask_hint is empty (no pixel above 0.5): draw the character's rough area in it.")
    box = np.array([(xs.min(), ys.min()), (xs.max() + 1, ys.max() + 1)], np.float32)
    # +-10 logits: confident inside/outside, as SAM's own mask prompts look after a first pass.
    return box, np.array([2, 3], np.int32), (hint > 0.5).astype(np.float32) * 20.0 - 10.0


# ================================================================ inference
def _encode(sam: SAM2Model, rgb):
    """uint8 [H,W,3] -> SAM2's flattened multi-level features (SAM2Transforms' maths, without torchvision)."""
    torch = _torch()
    import torch.nn.functional as F

    size = sam.image_size
    x = torch.from_numpy(rgb).permute(2, 0, 1)[None].float().div_(255.0)
    x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
    mean = torch.tensor(MEAN).view(1, 3, 1, 1)
    std = torch.tensor(STD).view(1, 3, 1, 1)
    backbone_out = sam.model.forward_image((x - mean) / std)
    _, feats, pos, sizes = sam.model._prepare_backbone_features(backbone_out)
    return feats, pos, sizes


def logits_to_alpha(logits, height: int, width: int, threshold: float):
    """Mask logits [..,h,w] -> float32 [H,W] alpha: bilinear upsample, sigmoid, below-threshold zeroed."""
    torch = _torch()
    import torch.nn.functional as F

    from .dataset.curate import apply_alpha_threshold

    logits = torch.as_tensor(logits).float().reshape(1, 1, *logits.shape[-2:])
    if logits.shape[-2:] != (height, width):
        logits = F.interpolate(logits, size=(height, width), mode="bilinear", align_corners=False)
    alpha = torch.sigmoid(logits)[0, 0].numpy()
    return apply_alpha_threshold(alpha, threshold)


class _Tracker:
    """One object through consecutive frames with SAM2's memory bank, holding only the memory it reads."""

    def __init__(self, sam: SAM2Model, num_frames: int, threshold: float):
        self.sam, self.num_frames, self.threshold = sam, max(1, num_frames), threshold
        self.memory = {"cond_frame_outputs": {}, "non_cond_frame_outputs": {}}

    def step(self, index: int, rgb, prompts=None, mask_logits=None, remember: bool = True):
        """Alpha [H,W] of frame `index`; prompts (coords, labels) make it a conditioning frame."""
        torch = _torch()
        np = _np()
        h, w = rgb.shape[:2]
        size = self.sam.image_size
        point_inputs = None
        if prompts is not None:
            coords, labels = prompts
            scaled = coords * np.array([size / w, size / h], np.float32)
            point_inputs = {"point_coords": torch.from_numpy(scaled)[None],
                            "point_labels": torch.from_numpy(labels)[None]}
        prev_logits = None
        if mask_logits is not None:
            prev_logits = torch.from_numpy(np.asarray(mask_logits, np.float32))[None, None]
        with torch.inference_mode():
            feats, pos, sizes = _encode(self.sam, rgb)
            out = self.sam.model.track_step(
                frame_idx=index, is_init_cond_frame=prompts is not None, current_vision_feats=feats,
                current_vision_pos_embeds=pos, feat_sizes=sizes, point_inputs=point_inputs, mask_inputs=None,
                output_dict=self.memory, num_frames=self.num_frames, run_mem_encoder=remember,
                prev_sam_mask_logits=prev_logits)
        alpha = logits_to_alpha(out["pred_masks_high_res"], h, w, self.threshold)
        if remember:
            self._remember(index, out, conditioning=prompts is not None)
        return alpha

    def _remember(self, index: int, out: dict, conditioning: bool) -> None:
        # What SAM2VideoPredictor keeps per frame, minus the full-resolution mask (4 MB a frame at 1024).
        kept = {k: out[k] for k in ("maskmem_features", "maskmem_pos_enc", "pred_masks", "obj_ptr",
                                    "object_score_logits") if k in out}
        store = self.memory["cond_frame_outputs" if conditioning else "non_cond_frame_outputs"]
        store[index] = kept
        recent = self.memory["non_cond_frame_outputs"]
        for old in [i for i in recent if i <= index - KEEP_NON_COND_FRAMES]:
            del recent[old]


def _prompts_for(points, negative_points, box, mask_hint, width: int, height: int):
    """(prompts, dense mask logits) from the node inputs; ValueError when nothing says what to segment."""
    np = _np()
    coords, labels = parse_prompts(points, negative_points, box, width, height)
    logits = None
    if mask_hint is not None:
        hint = mask_hint.detach().cpu().numpy() if hasattr(mask_hint, "detach") else np.asarray(mask_hint)
        hint = hint[0] if hint.ndim == 3 else hint
        if hint.shape != (height, width):
            raise ValueError(f"mask_hint is {hint.shape[1]}x{hint.shape[0]} but the picture is {width}x{height}.")
        hint_box, hint_labels, logits = mask_hint_prompt(hint)
        if not (labels == 2).any():  # no explicit box: the hint's box steers the decoder
            coords, labels = np.concatenate([hint_box, coords]), np.concatenate([hint_labels, labels])
    if len(labels) == 0:
        raise ValueError("Nothing to segment: give points, a box or a mask_hint.")
    return (coords, labels), logits


def segment_images(sam: SAM2Model, images, points: str = "", negative_points: str = "", box: str = "",
                   mask_hint=None, threshold: float | None = None):
    """uint8 [B,H,W,3] -> float32 [B,H,W] soft alpha, the same prompts on every image."""
    np = _np()
    threshold = alpha_threshold() if threshold is None else threshold
    if images.ndim != 4 or images.shape[0] == 0:
        raise ValueError(f"image must be a non-empty [B,H,W,3] batch; got shape {tuple(images.shape)}.")
    h, w = images.shape[1:3]
    prompts, logits = _prompts_for(points, negative_points, box, mask_hint, w, h)
    bar = bridge.ProgressBar(len(images), "sam2 segment")
    out = np.empty(images.shape[:3], np.float32)
    for i, rgb in enumerate(images):
        out[i] = _Tracker(sam, 1, threshold).step(0, rgb, prompts, logits, remember=False)
        bar.update(1)
    return out


def track_video(sam: SAM2Model, video, frame: int = 0, points: str = "", negative_points: str = "", box: str = "",
                mask_hint=None, max_mask_frames: int = 256, threshold: float | None = None):
    """Track the prompted object from `frame` to the clip's end -> (mask VideoFile, float32 [N,H,W] masks).

    Frames before `frame` get an empty mask (tracking runs forward only, so the
    clip streams once). The mask video holds every frame (grey = alpha); the
    array holds the first `max_mask_frames`, since a float32 1080p mask is 8 MB.
    """
    np = _np()
    threshold = alpha_threshold() if threshold is None else threshold
    if not 0 <= frame < video.frame_count:
        raise ValueError(f"frame {frame} is outside the clip, which has {video.frame_count} frames (0..{video.frame_count - 1}).")
    prompts, logits = _prompts_for(points, negative_points, box, mask_hint, video.width, video.height)
    tracker = _Tracker(sam, video.frame_count - frame, threshold)
    bar = bridge.ProgressBar(video.frame_count, "sam2 track")
    kept = []

    def mask_chunks():
        index = 0
        for chunk in vio.iter_frames(video, chunk=CHUNK):
            alphas = np.zeros(chunk.shape[:3], np.float32)
            for k, rgb in enumerate(chunk):
                if index == frame:
                    alphas[k] = tracker.step(index - frame, rgb, prompts, logits)
                elif index > frame:
                    alphas[k] = tracker.step(index - frame, rgb)
                index += 1
                bar.update(1)
            room = max_mask_frames - sum(len(a) for a in kept)
            if room > 0:
                kept.append(alphas[:room])
            grey = (alphas * 255.0 + 0.5).astype(np.uint8)
            yield np.repeat(grey[..., None], 3, axis=-1)

    # Near-lossless so the grey levels (the soft edge) survive the H.264 round trip.
    mask_video = vio.write_video(mask_chunks(), video.fps, vio.temp_video_path("sam2_mask"), crf=4)
    masks = np.concatenate(kept) if kept else np.zeros((0, video.height, video.width), np.float32)
    return mask_video, masks


# ================================================================ nodes
_PROMPT_INPUTS = {
    "points": ("STRING", {"default": "[[320, 240]]", "multiline": False,
                          "tooltip": "JSON list of [x, y] pixel clicks on the character; '' for none"}),
    "negative_points": ("STRING", {"default": "", "tooltip": "JSON [[x, y], ...] clicks on what to leave out"}),
    "box": ("STRING", {"default": "", "tooltip": "JSON [x0, y0, x1, y1] pixel box around the character; '' for none"}),
}


def _to_tensor_mask(masks):
    torch = _torch()
    np = _np()
    return torch.from_numpy(np.ascontiguousarray(masks, np.float32))


class LoadSAM2Model:
    CATEGORY = CATEGORY
    FUNCTION = "run"
    RETURN_TYPES = (MODEL_TYPE,)
    RETURN_NAMES = ("sam2_model",)
    DESCRIPTION = ("Load a SAM2 checkpoint from models/sam2 (sam2_hiera_large.pt, sam2.1_hiera_*.pt); the matching "
                   "config shipped with the sam2 package is chosen from the file name.")

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"model_name": (checkpoint_choices(),)}}

    def run(self, model_name):
        return (load_model(model_name),)


class SAM2SegmentImage:
    CATEGORY = CATEGORY
    FUNCTION = "run"
    RETURN_TYPES = ("MASK",)
    RETURN_NAMES = ("mask",)
    DESCRIPTION = ("Segment a character with SAM2 from point clicks, a box or a rough MASK hint -> a soft-edged MASK "
                   "(alpha below the config's threshold, 0.15, zeroed). Prompts are JSON pixel coordinates.")

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"image": ("IMAGE",), "sam2_model": (MODEL_TYPE,), **_PROMPT_INPUTS},
                "optional": {"mask_hint": ("MASK",)}}

    def run(self, image, sam2_model, points, negative_points, box, mask_hint=None):
        from .core import image_to_numpy

        return (_to_tensor_mask(segment_images(sam2_model, image_to_numpy(image), points, negative_points, box,
                                               mask_hint)),)


class SAM2TrackVideo:
    CATEGORY = CATEGORY
    FUNCTION = "run"
    RETURN_TYPES = (VIDEO_TYPE, "MASK")
    RETURN_NAMES = ("mask_video", "masks")
    DESCRIPTION = ("Track a character through a clip with SAM2's memory, from prompts on one frame: a streamed mask "
                   "video (grey = alpha) of every frame, and a MASK batch of the first max_mask_frames frames. "
                   "Frames before the prompted one get an empty mask.")

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"video": (VIDEO_TYPE,), "sam2_model": (MODEL_TYPE,),
                             "frame": ("INT", {"default": 0, "min": 0, "max": 10_000_000,
                                               "tooltip": "the frame the prompts are drawn on"}),
                             **_PROMPT_INPUTS,
                             "max_mask_frames": ("INT", {"default": 256, "min": 0, "max": 100_000,
                                                         "tooltip": "frames in the MASK output (8 MB each at 1080p)"})},
                "optional": {"mask_hint": ("MASK",)}}

    def run(self, video, sam2_model, frame, points, negative_points, box, max_mask_frames, mask_hint=None):
        mask_video, masks = track_video(sam2_model, video, frame, points, negative_points, box, mask_hint,
                                        max_mask_frames)
        return (mask_video, _to_tensor_mask(masks))


_NODES = {
    "LoadSAM2Model": (LoadSAM2Model, "Load SAM2 Model"),
    "SAM2SegmentImage": (SAM2SegmentImage, "SAM2 Segment Image"),
    "SAM2TrackVideo": (SAM2TrackVideo, "SAM2 Track Video"),
}
NODE_CLASS_MAPPINGS, NODE_DISPLAY_NAME_MAPPINGS = bridge.node_mappings(_NODES)
