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
sum max(0, measure - neutral) / typical_range.

On real footage the landmarks are not trusted frame by frame (a toon face tilted back gets its eyes and
lips misplaced; a detector blip gives a 1-2-frame face):
- detections in runs shorter than MIN_RUN frames are dropped (gate_short_runs): never a peak, never warped;
- each measure is median-filtered over MEDIAN_FRAMES inside a run, so one misplaced frame cannot win;
- `mouth_cavity` (when the frames were seen: FaceTrack.appearance) measures what the picture shows: the
  largest dark blob inside the face, as a share of the face. The landmark mesh does not see a toon's open
  mouth when the head tilts back (Big Buck Bunny's yawn reads as mouth_open 0.02); the dark cavity does;
- the neutral comes from frames that are NOT expressive: a first pass against a low percentile of each
  measure scores every frame, the lowest CALM_PERCENTILE of those scores are the calm frames, and the
  neutral is the median of each measure over them (the yawn is never among them);
- the peak must be sustained: the best window of `sustain` frames by its weakest frame, the peak frame
  the strongest frame inside it.
For a single image there is no clip: typical neutral values stand in.
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


def measures(points: np.ndarray, appearance: dict | None = None) -> dict[str, np.ndarray]:
    """Geometric expression measures for [N,478,>=2] points -> {name: [N]} (NaN where no face), plus the
    appearance measures (mouth_cavity) when given."""
    points = np.asarray(points, np.float64)
    iod = np.maximum(_dist(points, 33, 263), 1e-6)
    values = {
        "mouth_open": _dist(points, 13, 14) / iod,
        "smile_width": _dist(points, 61, 291) / iod,
        "brow_raise": (_dist(points, 105, 159) + _dist(points, 334, 386)) / 2 / iod,
        "eye_open": (_dist(points, 159, 145) + _dist(points, 386, 374)) / 2 / iod,
    }
    for name, series in (appearance or {}).items():
        series = np.asarray(series, np.float64)
        if name in TYPICAL_RANGE and series.shape == values["mouth_open"].shape:
            values[name] = series
    return values


# Detections in runs shorter than this many frames are detector blips (a 2-frame face on a toon's belly).
MIN_RUN = 3
# Each measure is median-filtered over this many frames inside a run of detections.
MEDIAN_FRAMES = 5
# A peak must hold this long (seconds; at least one frame).
SUSTAIN_SECONDS = 0.2
# First pass: each measure's neutral is this low percentile over the clip.
NEUTRAL_PERCENTILE = 15.0
# Frames whose first-pass intensity is within this percentile are the calm ones (the neutral face).
CALM_PERCENTILE = 30.0
# A pixel of the face darker than this share of the face's median brightness is cavity (open mouth).
CAVITY_DARKNESS = 0.4
TYPICAL_RANGE["mouth_cavity"] = 0.02
TYPICAL_NEUTRAL["mouth_cavity"] = 0.0


def detection_runs(valid: np.ndarray) -> list[tuple[int, int]]:
    """[start, end) of each run of consecutive frames with a face."""
    runs, start = [], None
    for i, v in enumerate(list(np.asarray(valid, bool)) + [False]):
        if v and start is None:
            start = i
        elif not v and start is not None:
            runs.append((start, i))
            start = None
    return runs


# Where the face appears or is lost inside the clip, the warp eases in/out over this many frames (no pop).
RAMP_FRAMES = 4


def ramp_envelope(valid: np.ndarray, ramp: int = RAMP_FRAMES) -> np.ndarray:
    """Per-frame warp strength 0..1: 1 inside a run of detections, easing to 0 towards a run's ends inside
    the clip (a run touching the clip's first or last frame starts or ends at full strength)."""
    n = len(valid)
    env = np.zeros(n)
    for a, b in detection_runs(valid):
        i = np.arange(a, b)
        rise = np.ones(b - a) if a == 0 else np.minimum(1.0, (i - a + 1) / (ramp + 1))
        fall = np.ones(b - a) if b == n else np.minimum(1.0, (b - i) / (ramp + 1))
        env[a:b] = np.minimum(rise, fall)
    return env


def gate_short_runs(valid: np.ndarray, min_run: int = MIN_RUN) -> np.ndarray:
    """`valid` without the detections in runs shorter than min_run frames (clips shorter than min_run keep all)."""
    valid = np.asarray(valid, bool)
    if len(valid) < min_run:
        return valid.copy()
    out = np.zeros_like(valid)
    for a, b in detection_runs(valid):
        if b - a >= min_run:
            out[a:b] = True
    return out


def mouth_cavity(frame: np.ndarray, points: np.ndarray) -> float:
    """Share of the face (the landmarks' hull) covered by its largest dark blob away from the hull's border
    (an open mouth's interior; a shadow along the face's edge does not count). uint8 RGB frame, pixel points."""
    import cv2

    pts = np.ascontiguousarray(np.asarray(points, np.float32)[:, :2])
    hull = cv2.convexHull(pts).astype(np.int32)
    face = np.zeros(frame.shape[:2], np.uint8)
    cv2.fillConvexPoly(face, hull, 1)
    area = int(face.sum())
    if area < 16:
        return float("nan")
    k = max(3, int(0.12 * np.ptp(pts[:, 0]))) | 1
    inner = cv2.erode(face, np.ones((k, k), np.uint8))
    luma = frame[..., :3].astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
    dark = ((luma < CAVITY_DARKNESS * np.median(luma[face > 0])) & (inner > 0)).astype(np.uint8)
    n, _, stats, _ = cv2.connectedComponentsWithStats(dark, connectivity=8)
    return float(stats[1:, cv2.CC_STAT_AREA].max() / area) if n > 1 else 0.0


def robust_measures(points: np.ndarray, appearance: dict | None = None) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Measures of the gated track (short runs dropped), median-filtered inside each run -> (values, valid)."""
    from scipy.ndimage import median_filter

    values = measures(points, appearance)
    valid = gate_short_runs(~np.isnan(values["mouth_open"]))
    out = {}
    for name, series in values.items():
        clean = np.full(len(series), np.nan)
        for a, b in detection_runs(valid):
            seg = series[a:b]
            if np.isnan(seg).any():  # an appearance value may be missing where the geometry is not
                seg = np.where(np.isnan(seg), np.nanmedian(seg) if np.isfinite(seg).any() else 0.0, seg)
            clean[a:b] = median_filter(seg, min(MEDIAN_FRAMES, b - a), mode="nearest")
        out[name] = clean
    return out, valid


def _first_pass(values: dict[str, np.ndarray]) -> dict[str, float]:
    return {k: float(np.nanpercentile(v, NEUTRAL_PERCENTILE)) for k, v in values.items()}


def neutral_measures(values: dict[str, np.ndarray]) -> tuple[dict[str, float], str]:
    """The face at rest: each measure's median over the calm frames (those that are not expressive), or
    typical values when there are fewer than three frames with a face."""
    valid = ~np.isnan(values["mouth_open"])
    if valid.sum() < 3:
        return {k: TYPICAL_NEUTRAL[k] for k in values}, "typical neutral values (single frame)"
    calm = _calm(values, valid)
    return ({k: float(np.median(v[calm])) for k, v in values.items()},
            f"the clip's calmest frames ({len(calm)} frames in the lowest {CALM_PERCENTILE:g}% of expression)")


def _calm(values: dict[str, np.ndarray], valid: np.ndarray) -> np.ndarray:
    score = intensity(values, _first_pass(values))
    idx = np.flatnonzero(valid & ~np.isnan(score))
    limit = np.percentile(score[idx], CALM_PERCENTILE)
    return idx[score[idx] <= limit]


def intensity(values: dict[str, np.ndarray], neutral: dict[str, float]) -> np.ndarray:
    """Per-frame expression intensity: how much more expressive than neutral, summed over the measures
    (0 = neutral or calmer; NaN = no face). Signed: a mouth closing tighter than neutral scores 0."""
    return sum(np.maximum(values[k] - neutral[k], 0.0) / TYPICAL_RANGE[k] for k in values if k in neutral)


def calm_frames(points: np.ndarray, appearance: dict | None = None) -> np.ndarray:
    """Indices of the clip's least expressive frames with a (gated) face (at least one; empty when no face)."""
    values, valid = robust_measures(points, appearance)
    if not valid.any():
        return np.flatnonzero(valid)
    if valid.sum() < 3:
        return np.flatnonzero(valid)
    return _calm(values, valid)


def sustained_peak(per_frame: np.ndarray, sustain: int, pick: np.ndarray | None = None, reach: int = 0) -> int:
    """The window of `sustain` frames whose weakest frame of per_frame is strongest (NaN = 0), and in it
    (widened by `reach` frames each side) the strongest frame by `pick` (default per_frame)."""
    filled = np.nan_to_num(np.asarray(per_frame, np.float64), nan=0.0)
    chooser = filled if pick is None else np.nan_to_num(np.asarray(pick, np.float64), nan=0.0)
    k = int(min(max(sustain, 1), len(filled)))
    held = np.lib.stride_tricks.sliding_window_view(filled, k).min(axis=1)
    start = int(np.argmax(held))
    lo, hi = max(start - reach, 0), min(start + k + reach, len(filled))
    return lo + int(np.argmax(chooser[lo:hi]))


def find_expressive_moment(points: np.ndarray, fps: float, window_seconds: float = 1.0,
                           scenes: list[tuple[int, int]] | None = None, smooth_frames: int = 0,
                           appearance: dict | None = None) -> dict:
    """The frame where expression peaks (sustained, on the gated track), a window around it, and its scene.

    `smooth_frames` is how long the peak must hold (0 = SUSTAIN_SECONDS at the clip's rate); the window is
    centred on the peak and kept inside the peak's scene (when scenes are given) and the clip.
    """
    raw_valid = ~np.isnan(np.asarray(points, np.float64)[:, 0, 0])
    if not raw_valid.any():
        raise ValueError("No face was found in any frame, so there is no expressive moment to find.")
    values, valid = robust_measures(points, appearance)
    if not valid.any():
        raise ValueError(f"A face was found only in isolated runs of under {MIN_RUN} frames (detector blips), so "
                         "there is no expressive moment to trust.")
    neutral, neutral_from = neutral_measures(values)
    per_frame = intensity(values, neutral)
    n = len(per_frame)
    sustain = int(smooth_frames) if smooth_frames and smooth_frames > 0 else max(1, round(SUSTAIN_SECONDS * fps))
    # The median filter finds where the expression holds; the exact frame comes from the unfiltered measures.
    unfiltered = intensity(measures(points, appearance), neutral)
    # Only frames the warp reaches at full strength can be the peak (not the frames where a face appears).
    full = ramp_envelope(valid) >= 1.0
    if not full.any():
        full = valid
    peak = sustained_peak(np.where(full, per_frame, np.nan), sustain, np.where(full, unfiltered, np.nan),
                          reach=MEDIAN_FRAMES // 2)
    filled = np.nan_to_num(per_frame, nan=0.0)
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
    dropped = int(raw_valid.sum() - valid.sum())
    notes = [f"{dropped} frames with a face in runs under {MIN_RUN} frames were ignored (detector blips)"] if dropped else []
    if "mouth_cavity" in values:
        contribution = {k: round(float(np.maximum(values[k][peak] - neutral[k], 0) / TYPICAL_RANGE[k]), 3)
                        for k in values}
        if contribution.get("mouth_cavity", 0) > 2 * max(contribution.get("mouth_open", 0), 0.05):
            notes.append("at the peak the picture shows an open mouth that the landmarks do not follow "
                         f"(cavity {contribution['mouth_cavity']} vs landmark mouth opening "
                         f"{contribution.get('mouth_open', 0)}): a landmark warp will barely change it")
    else:
        contribution = {}
    return {
        "peak_frame": peak, "peak_time": peak / fps, "start_frame": int(start), "end_frame": int(end),
        "start_time": start / fps, "end_time": end / fps, "scene_index": scene_index,
        "peak_intensity": round(float(filled[peak]), 4), "mean_intensity": round(float(np.nanmean(per_frame)), 4),
        "sustain_frames": sustain, "peak_contributions": contribution,
        "neutral_from": neutral_from, "neutral": {k: round(v, 4) for k, v in neutral.items()},
        "per_frame_intensity": [None if np.isnan(x) else round(float(x), 4) for x in per_frame],
        "scenes": per_scene, "fps": fps, "notes": notes,
    }
