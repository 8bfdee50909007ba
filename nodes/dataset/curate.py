"""LoRA dataset curation for 3D characters: film -> curated, captioned kohya-style folders.

Stages (each a plain function, each also a node): scene-aware frame sampling ->
character segmentation -> alpha matte (threshold 0.15) -> sharpness filter
(variance of the Laplacian, 80) -> near-duplicate removal (perceptual hash) ->
identity per character -> diverse selection (200-500) -> captions -> dataset
folder + manifest.

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
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Iterable

from .. import bridge


def _np():
    import numpy as np

    return np


def _cv2():
    return bridge.require("cv2", "dataset", "opencv-python-headless")


@dataclass
class CurationSettings:
    character: str
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
    description: str = ""
    identity: str = "face"  # "face": the face family's identity paths (dlib / stylized); "palette": colour only
    segmenter: str = "auto"  # "auto": clean-plate matte; "sam2:<checkpoint>": refined by SAM2 from models/sam2

    @classmethod
    def for_character(cls, name: str, **overrides) -> "CurationSettings":
        from ...configs.characters import load_character
        from ...configs.settings import load_settings

        character = load_character(name)
        d = load_settings().dataset
        trigger = (getattr(character, "trigger_words", None) or [name])[0]
        base = dict(character=name, trigger=trigger, frames_per_scene=d.frames_per_scene,
                    alpha_threshold=d.alpha_threshold, blur_threshold=d.blur_threshold,
                    dedupe_distance=d.dedupe_hamming_distance, min_images=d.min_images_per_character,
                    max_images=d.max_images_per_character, description=getattr(character, "description", ""))
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


def appearance_embedding(rgb, alpha) -> "np.ndarray":
    """A stylised-character descriptor: hue/saturation histogram of the character's pixels (L2-normalised).

    3D characters are told apart by their designed palettes (hair, skin, clothes);
    real-face models fail on them (see anchors.md), so this is the offline fallback.
    """
    np, cv2 = _np(), _cv2()
    hsv = cv2.cvtColor(rgb, cv2.COLOR_RGB2HSV)
    weight = alpha.astype(np.float32)
    hist = cv2.calcHist([hsv], [0, 1], (weight > 0.5).astype(np.uint8), [18, 8], [0, 180, 0, 256]).flatten()
    hist = np.sqrt(hist)
    norm = np.linalg.norm(hist)
    return hist / norm if norm > 0 else hist


IDENTITY_MARGIN = 0.2


def cosine(a, b) -> float:
    np = _np()
    return float(np.dot(a, b) / ((np.linalg.norm(a) * np.linalg.norm(b)) or 1.0))


class IdentityJudge:
    """Scores a character crop against each character's reference images.

    `face` uses the face family's paths (InsightFace, dlib on real faces, the
    stylized descriptor on toon/3D ones) and reports which; `palette` compares
    the hue/saturation of the matte only (fast, and needs no face at all).
    """

    def __init__(self, method: str, references: dict[str, list]):
        np = _np()
        if method not in ("face", "palette"):
            raise ValueError(f"identity method must be 'face' or 'palette', got {method!r}")
        self.method = method
        self.references = {k: [np.ascontiguousarray(np.asarray(r)[..., :3]) for r in v] for k, v in references.items() if v}
        self.palettes = {}
        for name, images in references.items():
            embs = []
            for img in images:
                img = np.asarray(img)
                alpha = img[..., 3].astype(np.float32) / 255 if img.shape[-1] == 4 else np.ones(img.shape[:2], np.float32)
                embs.append(appearance_embedding(np.ascontiguousarray(img[..., :3]), alpha))
            if embs:
                mean = np.mean(embs, axis=0)
                self.palettes[name] = mean / (np.linalg.norm(mean) or 1.0)

    def __call__(self, crop, crop_alpha_embedding) -> tuple[dict[str, float], str]:
        if self.method == "face":
            try:
                from ..face.identity import character_similarity
            except ImportError:
                character_similarity = None
            if character_similarity is not None:
                scores, paths = {}, set()
                for name, refs in self.references.items():
                    result = character_similarity(crop, refs, "auto")
                    scores[name] = result["similarity"]
                    paths.add(result["path"])
                return scores, "face:" + ",".join(sorted(paths))
        return {name: cosine(crop_alpha_embedding, ref) for name, ref in self.palettes.items()}, "palette"


def measure_frame(index: int, scene: int, rgb, alpha, settings: CurationSettings,
                  judge: "IdentityJudge | None") -> list[dict]:
    """One record per character region in the frame (or one rejection record when there is none)."""
    np, cv2 = _np(), _cv2()
    h, w = alpha.shape
    alpha = apply_alpha_threshold(alpha, settings.alpha_threshold)
    regions = character_regions(alpha, int(settings.min_coverage * h * w))
    base = {"frame": index, "scene": scene}
    if not regions:
        return [{**base, "region": -1, "status": "rejected", "reason": "no_character",
                 "coverage": float((alpha > 0).mean())}]
    records = []
    gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    for r, (x, y, bw, bh) in enumerate(regions):
        crop_alpha = np.zeros_like(alpha)
        crop_alpha[y:y + bh, x:x + bw] = alpha[y:y + bh, x:x + bw]
        sharp = laplacian_variance(gray[y:y + bh, x:x + bw], crop_alpha[y:y + bh, x:x + bw] > 0)
        emb = appearance_embedding(rgb, crop_alpha)
        scores, path = judge(np.ascontiguousarray(rgb[y:y + bh, x:x + bw]), emb) if judge and judge.references \
            else ({}, "none")
        ranked = sorted(scores.values(), reverse=True)
        who = max(scores, key=scores.get) if scores else settings.character
        # Two characters overlapping make one region that looks like both: not a clean sample of either.
        ambiguous = len(ranked) > 1 and ranked[0] - ranked[1] < IDENTITY_MARGIN
        record = {**base, "region": r, "box": [x, y, bw, bh], "coverage": float((crop_alpha > 0).mean()),
                  "sharpness": round(sharp, 2), "identity": who, "identity_path": path,
                  "identity_scores": {k: round(v, 4) for k, v in scores.items()},
                  "phash": f"{perceptual_hash(rgb[y:y + bh, x:x + bw]):016x}",
                  "embedding": [round(float(v), 5) for v in emb]}
        if sharp < settings.blur_threshold:
            record.update(status="rejected", reason="blurry")
        elif ambiguous:
            record.update(status="rejected", reason="ambiguous_identity")
        elif who != settings.character:
            record.update(status="rejected", reason=f"other_character:{who}")
        else:
            record.update(status="candidate", reason="")
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
    words = [settings.trigger]
    text = describe(record) if describe else ""
    words.append(text or settings.description or f"{settings.character}, 3d animation still")
    return ", ".join(w for w in words if w)


# ---------------------------------------------------------------- manifest
class Manifest:
    """Append-only JSON lines: one record per measured frame region, plus stage markers."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)

    def read(self) -> list[dict]:
        if not self.path.exists():
            return []
        records = []
        with open(self.path, encoding="utf-8") as fh:
            for line in fh:
                line = line.strip()
                if not line:
                    continue
                try:
                    records.append(json.loads(line))
                except json.JSONDecodeError:
                    break  # a line cut by a kill: everything after it is redone
        return records

    def append(self, records: Iterable[dict]) -> None:
        with open(self.path, "a", encoding="utf-8") as fh:
            for record in records:
                fh.write(json.dumps(record, sort_keys=True) + "\n")
            fh.flush()
            os.fsync(fh.fileno())

    def done_frames(self) -> set[int]:
        return {r["frame"] for r in self.read() if "frame" in r}


def write_rgba_png(path: Path, rgb, alpha) -> None:
    """Source pixels unchanged, the matte as alpha; atomic so a kill never leaves half a file."""
    np = _np()
    from PIL import Image

    rgba = np.dstack([rgb, (np.clip(alpha, 0, 1) * 255 + 0.5).astype(np.uint8)])
    tmp = path.with_name(path.name + ".part")
    Image.fromarray(rgba, "RGBA").save(tmp, format="PNG")
    tmp.replace(path)


def fingerprint(settings: CurationSettings, video_path: str) -> str:
    stat = Path(video_path).stat()
    raw = json.dumps({"settings": asdict(settings), "video": [str(video_path), stat.st_size]}, sort_keys=True)
    return hashlib.sha256(raw.encode()).hexdigest()[:16]


# ---------------------------------------------------------------- background plates
def background_plate(rgb, alpha, model_name: str = "big-lama.pt"):
    """The set without its characters: LaMa from models/inpaint when present, OpenCV Telea otherwise.

    Returns (plate uint8 RGB, which path was used).
    """
    np, cv2 = _np(), _cv2()
    hole = (cv2.dilate((alpha > 0).astype(np.uint8), np.ones((7, 7), np.uint8)) > 0).astype(np.uint8)
    try:
        model_path = bridge.find_model("inpaint", model_name)
    except bridge.MissingModel:
        model_path = None
    if model_path is not None:
        return _lama(rgb, hole, model_path), "lama"
    bgr = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
    plate = cv2.inpaint(bgr, hole * 255, 5, cv2.INPAINT_TELEA)
    return cv2.cvtColor(plate, cv2.COLOR_BGR2RGB), "opencv_telea"


def _lama(rgb, hole, model_path):
    """Big-LaMa as TorchScript (the export ComfyUI inpaint packs use): image [1,3,H,W] + mask [1,1,H,W] in 0..1."""
    np = _np()
    torch = bridge.require("torch", "dataset")
    model = torch.jit.load(str(model_path), map_location="cpu").eval()
    h, w = hole.shape
    ph, pw = (8 - h % 8) % 8, (8 - w % 8) % 8
    img = np.pad(rgb, ((0, ph), (0, pw), (0, 0)), mode="reflect").astype(np.float32) / 255
    mask = np.pad(hole, ((0, ph), (0, pw)), mode="constant").astype(np.float32)
    with torch.inference_mode():
        out = model(torch.from_numpy(img).permute(2, 0, 1)[None], torch.from_numpy(mask)[None, None])
    plate = (out[0].permute(1, 2, 0).clamp(0, 1).numpy()[:h, :w] * 255 + 0.5).astype(np.uint8)
    return np.where(hole[..., None] > 0, plate, rgb)
