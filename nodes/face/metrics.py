"""Objective metrics of an exaggerated clip against its source (the parody workflow's report).

- achieved_factor: landmarks are re-detected on the result, both clips are aligned (head pose removed)
  and the feature points' deviation from the source's clip-mean shape is compared:
  sum |result - neutral| / sum |source - neutral|. The target is the factor asked for; detection noise
  and the fold guard make it land somewhat below.
- intensity: the geometric expression intensity (expression.py) of both, against the source's median.
- identity: likeness of the result's face to the source's at the most expressive frame (identity.py;
  the report names the path: insightface, dlib or stylized).
- flicker: mean absolute frame-to-frame change of the result over that of the source
  (1.0 = the warp adds no flicker), plus landmark jitter of both.
"""
from __future__ import annotations

import numpy as np

from .expression import FEATURES, STABLE, intensity, measures, neutral_measures
from .warp import apply, landmark_jitter, similarity


def _aligned(points: np.ndarray, ref: np.ndarray) -> np.ndarray:
    out = np.full(points.shape[:2] + (2,), np.nan)
    for i in np.flatnonzero(~np.isnan(points[:, 0, 0])):
        out[i] = apply(similarity(points[i, STABLE, :2], ref[STABLE, :2]), points[i, :, :2])
    return out


def achieved_factor(source: np.ndarray, result: np.ndarray) -> float:
    both = ~np.isnan(source[:, 0, 0]) & ~np.isnan(result[:, 0, 0])
    if both.sum() < 2:
        return float("nan")
    ref = source[np.flatnonzero(both)[0]]
    a, b = _aligned(source[both], ref), _aligned(result[both], ref)
    idx = sorted({i for f in FEATURES.values() for i in f})
    neutral = a.mean(0)
    dev_in = np.linalg.norm(a[:, idx] - neutral[idx], axis=-1).sum()
    dev_out = np.linalg.norm(b[:, idx] - neutral[idx], axis=-1).sum()
    return float(dev_out / max(dev_in, 1e-9))


def temporal_change(frames_iter) -> float:
    total, count, prev = 0.0, 0, None
    for chunk in frames_iter:
        for f in chunk:
            f = f.astype(np.int16)
            if prev is not None:
                total += float(np.abs(f - prev).mean())
                count += 1
            prev = f
    return total / max(count, 1)


def frame_metrics(source_points: np.ndarray, result_points: np.ndarray, target: float) -> dict:
    values_in, values_out = measures(source_points), measures(result_points)
    neutral, _ = neutral_measures(values_in)
    i_in, i_out = intensity(values_in, neutral), intensity(values_out, neutral)
    factor = achieved_factor(source_points, result_points)
    return {"target_factor": target, "achieved_factor": round(factor, 3) if np.isfinite(factor) else 0.0,
            "intensity": {"source_mean": round(float(np.nanmean(i_in)), 4),
                          "result_mean": round(float(np.nanmean(i_out)), 4),
                          "ratio": round(float(np.nanmean(i_out) / max(np.nanmean(i_in), 1e-9)), 3)},
            "landmark_jitter": {"source": landmark_jitter(source_points), "result": landmark_jitter(result_points)}}


def parody_metrics(original, result, target: float, analysis_size: int = 480, landmarks=None) -> dict:
    """Metrics for two STUDIO_VIDEOs of the same length (the source and its exaggerated version)."""
    from .. import video_io as vio
    from .identity import character_similarity
    from .nodes import rescale_track, track_video

    if original.frame_count != result.frame_count:
        raise ValueError(f"original has {original.frame_count} frames and result {result.frame_count}: compare the "
                         "exaggerated clip before any retiming.")
    src = landmarks if landmarks is not None else track_video(original, analysis_size=analysis_size)
    src = rescale_track(src, original.width, original.height)
    out = rescale_track(track_video(result, analysis_size=analysis_size), original.width, original.height)
    report = frame_metrics(src.points, out.points, target)
    size = analysis_size or None
    change_in = temporal_change(vio.iter_frames(original, max_size=size))
    change_out = temporal_change(vio.iter_frames(result, max_size=size))
    report["flicker"] = {"source_mean_abs_change": round(change_in, 3), "result_mean_abs_change": round(change_out, 3),
                         "ratio": round(change_out / max(change_in, 1e-9), 3)}
    values = intensity(measures(src.points), neutral_measures(measures(src.points))[0])
    peak = int(np.nanargmax(values)) if np.isfinite(values).any() else 0
    a = next(vio.iter_frames(original, peak, peak + 1))[0]
    b = next(vio.iter_frames(result, peak, peak + 1))[0]
    pa = src.points[peak] if src.valid[peak] else None
    pb = out.points[peak] if out.valid[peak] else None
    ident = character_similarity(b, [a], "auto", lambda img: pb if img is b else pa)
    report["identity"] = {"similarity": ident["similarity"], "path": ident["path"], "frame": peak,
                          "note": ident["note"]}
    report["frames"] = original.frame_count
    return report
