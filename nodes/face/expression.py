"""Expression measures from the 478 landmarks, per-frame intensity, and the expressive-moment finder.

The legacy FaceMesh gives no blendshapes, so expression is measured geometrically. Every measure is a
distance divided by the inter-ocular distance (outer eye corners), so it does not depend on the
face's size in the frame:
- mouth_open: inner upper lip (13) to inner lower lip (14);
- smile_width: mouth corners (61, 291);
- brow_raise: mean of brow-middle (105 / 334) to upper eyelid (159 / 386);
- eye_open: mean of upper to lower eyelid (159-145, 386-374).
Intensity is signed toward "more expressive": every measure grows when the face gets more
expressive (mouth opens, smile widens, brows rise, eyes widen), so a frame scores
sum max(0, measure - neutral) / typical_range. The neutral is the clip's calmest values (a low
percentile of each measure: the least expressive frames, not the mean or median, so a closed mouth
is never a peak) or typical neutral values for a single image. `calm_frames` names the frames
closest to that neutral; the warp uses their mean shape as the neutral face.
"""
from __future__ import annotations

import numpy as np

# MediaPipe face-mesh topology: which points belong to which feature (from mediapipe's connection sets).
LIPS = [0, 13, 14, 17, 37, 39, 40, 61, 78, 80, 81, 82, 84, 87, 88, 91, 95, 146, 178, 181, 185, 191, 267, 269,
        270, 291, 308, 310, 311, 312, 314, 317, 318, 321, 324, 375, 402, 405, 409, 415]
LEFT_EYE = [249, 263, 362, 373, 374, 380, 381, 382, 384, 385, 386, 387, 388, 390, 398, 466]
RIGHT_EYE = [7, 33, 133, 144, 145, 153, 154, 155, 157, 158, 159, 160, 161, 163, 173, 246]
LEFT_BROW = [276, 282, 283, 285, 293, 295, 296, 300, 334, 336]
RIGHT_BROW = [46, 52, 53, 55, 63, 65, 66, 70, 105, 107]
# Chin and lower cheeks follow the jaw when the mouth opens.
JAW = [148, 149, 150, 152, 176, 377, 378, 379, 400, 136, 365, 18, 200, 199, 175, 83, 313, 201, 421, 32, 262]
# Points that do not move with expression: used to align frames (head pose) before comparing shapes.
STABLE = [1, 4, 5, 6, 168, 197, 195, 33, 263, 133, 362, 234, 454, 10, 127, 356, 93, 323]

FEATURES = {"brows": LEFT_BROW + RIGHT_BROW, "eyes": LEFT_EYE + RIGHT_EYE, "mouth": LIPS + JAW}
MEASURES = ("mouth_open", "smile_width", "brow_raise", "eye_open")
# How far each measure moves between neutral and a strong expression (inter-ocular units).
TYPICAL_RANGE = {"mouth_open": 0.35, "smile_width": 0.15, "brow_raise": 0.10, "eye_open": 0.08}
# Typical neutral values, used only when there is no clip to take a median from.
TYPICAL_NEUTRAL = {"mouth_open": 0.02, "smile_width": 0.55, "brow_raise": 0.20, "eye_open": 0.11}


def _dist(points: np.ndarray, a: int, b: int) -> np.ndarray:
    return np.linalg.norm(points[..., a, :2] - points[..., b, :2], axis=-1)


def measures(points: np.ndarray) -> dict[str, np.ndarray]:
    """Geometric expression measures for [N,478,>=2] points -> {name: [N]} (NaN where no face)."""
    points = np.asarray(points, np.float64)
    iod = np.maximum(_dist(points, 33, 263), 1e-6)
    return {
        "mouth_open": _dist(points, 13, 14) / iod,
        "smile_width": _dist(points, 61, 291) / iod,
        "brow_raise": (_dist(points, 105, 159) + _dist(points, 334, 386)) / 2 / iod,
        "eye_open": (_dist(points, 159, 145) + _dist(points, 386, 374)) / 2 / iod,
    }


# The neutral value of each measure is this low percentile over the clip: the calm end of what the face does,
# robust to a few frames of detector noise (a minimum would follow the noisiest frame).
NEUTRAL_PERCENTILE = 15.0
# Frames whose intensity is within this percentile of the clip's are its calmest (the neutral face).
CALM_PERCENTILE = 20.0


def neutral_measures(values: dict[str, np.ndarray]) -> tuple[dict[str, float], str]:
    """The clip's calm values (a low percentile of each measure), or typical values for one frame."""
    valid = ~np.isnan(values["mouth_open"])
    if valid.sum() >= 3:
        return ({k: float(np.nanpercentile(v, NEUTRAL_PERCENTILE)) for k, v in values.items()},
                f"the clip's calmest frames ({NEUTRAL_PERCENTILE:g}th percentile of each measure)")
    return dict(TYPICAL_NEUTRAL), "typical neutral values (single frame)"


def intensity(values: dict[str, np.ndarray], neutral: dict[str, float]) -> np.ndarray:
    """Per-frame expression intensity: how much more expressive than neutral, summed over the measures
    (0 = neutral or calmer; NaN = no face). Signed: a mouth closing tighter than neutral scores 0."""
    return sum(np.maximum(values[k] - neutral[k], 0.0) / TYPICAL_RANGE[k] for k in MEASURES)


def calm_frames(points: np.ndarray) -> np.ndarray:
    """Indices of the clip's least expressive frames with a face (at least one; empty when no face)."""
    values = measures(points)
    neutral, _ = neutral_measures(values)
    score = intensity(values, neutral)
    valid = np.flatnonzero(~np.isnan(score))
    if len(valid) == 0:
        return valid
    limit = np.percentile(score[valid], CALM_PERCENTILE)
    return valid[score[valid] <= limit]


def find_expressive_moment(points: np.ndarray, fps: float, window_seconds: float = 1.0,
                           scenes: list[tuple[int, int]] | None = None, smooth_frames: int = 3) -> dict:
    """The frame where expression peaks, a window around it, and the scene holding it.

    Intensity is smoothed over `smooth_frames` so a single noisy frame cannot win; the window is
    centred on the peak and kept inside the peak's scene (when scenes are given) and the clip.
    """
    values = measures(points)
    neutral, neutral_from = neutral_measures(values)
    per_frame = intensity(values, neutral)
    n = len(per_frame)
    if np.all(np.isnan(per_frame)):
        raise ValueError("No face was found in any frame, so there is no expressive moment to find.")
    filled = np.nan_to_num(per_frame, nan=0.0)
    k = max(int(smooth_frames), 1)
    smoothed = np.convolve(filled, np.ones(k) / k, mode="same") if n >= k else filled
    peak = int(np.argmax(smoothed))
    scene_index, lo, hi = -1, 0, n
    for i, (start, end) in enumerate(scenes or []):
        if start <= peak < end:
            scene_index, lo, hi = i, max(start, 0), min(end, n)
            break
    half = max(int(round(window_seconds * fps / 2)), 0)
    start, end = max(lo, peak - half), min(hi, peak + half + 1)
    per_scene = []
    for i, (s, e) in enumerate(scenes or []):
        seg = filled[max(s, 0):min(e, n)]
        per_scene.append({"scene": i, "frames": [int(s), int(e)], "mean_intensity": round(float(seg.mean()), 4)
                          if len(seg) else 0.0})
    return {
        "peak_frame": peak, "peak_time": peak / fps, "start_frame": int(start), "end_frame": int(end),
        "start_time": start / fps, "end_time": end / fps, "scene_index": scene_index,
        "peak_intensity": round(float(smoothed[peak]), 4), "mean_intensity": round(float(np.nanmean(per_frame)), 4),
        "neutral_from": neutral_from, "neutral": {k: round(v, 4) for k, v in neutral.items()},
        "per_frame_intensity": [None if np.isnan(x) else round(float(x), 4) for x in per_frame],
        "scenes": per_scene, "fps": fps,
    }
