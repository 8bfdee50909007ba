"""Objective metrics of an exaggerated clip against its source (the parody workflow's report).

- achieved_factor: landmarks are re-detected on the result, both clips are aligned (head pose removed)
  and the feature points' deviation from the source's neutral (the mean shape of its calmest frames,
  as the warp uses) is compared: sum |result - neutral| / sum |source - neutral|, overall and per
  feature. The target is the factor asked for; the warp's smoothing and the detector (which reads a
  very wide mouth as less open than it is) make it land below. A single photo's neutral is the same face
  at rest (photo_achieved_factors, warp.photo_neutral).
- intensity: the geometric expression intensity (expression.py) of both, against the source's calm values.
- seams: at the most expressive frame, gradient energy in the band where the warp fades out (a tear
  or a blend seam raises it: 1.0 = unchanged) and Laplacian energy over the face (speckles raise it;
  a smooth stretch lowers it a little).
- identity: likeness of the result's face to the source's at the most expressive frame (identity.py;
  the report names the path: insightface, dlib or stylized).
- flicker: mean absolute frame-to-frame change of the result over that of the source
  (1.0 = the warp adds no flicker), plus landmark jitter of both.
"""
from __future__ import annotations

import numpy as np

from .expression import (FEATURES, STABLE, calm_frames, find_expressive_moment, gate_short_runs, intensity,
                         measures, neutral_measures)
from .warp import apply, landmark_jitter, photo_neutral, similarity


def _aligned(points: np.ndarray, ref: np.ndarray) -> np.ndarray:
    out = np.full(points.shape[:2] + (2,), np.nan)
    for i in np.flatnonzero(~np.isnan(points[:, 0, 0])):
        out[i] = apply(similarity(points[i, STABLE, :2], ref[STABLE, :2]), points[i, :, :2])
    return out


def achieved_factors(source: np.ndarray, result: np.ndarray, frames: np.ndarray | None = None) -> dict[str, float]:
    """Result's deviation from the source's calm shape over the source's, for all features and each one,
    over `frames` (bool [N]; default all) where both tracks hold a face in runs of at least MIN_RUN frames."""
    both = gate_short_runs(~np.isnan(source[:, 0, 0])) & gate_short_runs(~np.isnan(result[:, 0, 0]))
    if both.sum() < 2:
        return {}
    ref = source[np.flatnonzero(both)[0]]
    neutral = _aligned(source[both], ref)[calm_frames(source[both])].mean(0)
    if frames is not None:
        both &= np.asarray(frames, bool)
        if not both.any():
            return {}
    a, b = _aligned(source[both], ref), _aligned(result[both], ref)
    groups = {"all": sorted({i for f in FEATURES.values() for i in f}), **FEATURES}
    out = {}
    for name, idx in groups.items():
        dev_in = np.linalg.norm(a[:, idx] - neutral[idx], axis=-1).sum()
        dev_out = np.linalg.norm(b[:, idx] - neutral[idx], axis=-1).sum()
        out[name] = float(dev_out / max(dev_in, 1e-9))
    return out


# A photo feature whose points sit on average closer than this (eye distances) to the rest face shows no
# expression to scale: its factor is not reported (re-detection noise would dominate the ratio).
PHOTO_MIN_DEVIATION = 0.01


def photo_achieved_factors(source: np.ndarray, result: np.ndarray) -> dict[str, float]:
    """The factor k that best explains one photo's result ([478,>=2] each, re-detected) as its rest face plus k
    times the source's expression: least squares of (result - rest) ~ k (source - rest) over the feature
    points, after aligning the result to the source (head pose removed). The rest face is the one the
    photo's warp uses (warp.photo_neutral). Detector noise across the expression averages out instead of
    adding up as it would in a ratio of distances. {} when either has no face or no feature shows
    expression; a feature without it (PHOTO_MIN_DEVIATION) is left out, "all" covers every feature point."""
    source, result = np.asarray(source, np.float64)[..., :2], np.asarray(result, np.float64)[..., :2]
    if np.isnan(source[0, 0]) or np.isnan(result[0, 0]):
        return {}
    neutral = photo_neutral(source)
    iod = float(np.linalg.norm(source[33] - source[263]))
    a, b = source - neutral, apply(similarity(result[STABLE], source[STABLE]), result) - neutral

    def fit(idx) -> float:
        return float((a[idx] * b[idx]).sum() / (a[idx] ** 2).sum())

    out = {name: fit(idx) for name, idx in FEATURES.items()
           if np.linalg.norm(a[idx], axis=-1).mean() >= PHOTO_MIN_DEVIATION * iod}
    return {"all": fit(sorted({i for f in FEATURES.values() for i in f})), **out} if out else {}


def achieved_factor(source: np.ndarray, result: np.ndarray) -> float:
    return achieved_factors(source, result).get("all", float("nan"))


def face_bands(points: np.ndarray, width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
    """Boolean masks of one frame: the face (inside the landmarks' ellipse) and the band around it where
    the warp fades to nothing (1.1 to 1.45 face radii: warp.FEATHER_INNER and RING_SCALE)."""
    from .warp import RING_SCALE

    centre = points[:, :2].mean(0)
    half = np.maximum((points[:, :2].max(0) - points[:, :2].min(0)) / 2, 1.0)
    ys, xs = np.mgrid[0:height, 0:width]
    r = np.sqrt(((xs - centre[0]) / half[0]) ** 2 + ((ys - centre[1]) / half[1]) ** 2)
    return r < 0.9, (r > 1.1) & (r < RING_SCALE)


def seam_measures(before: np.ndarray, after: np.ndarray, points: np.ndarray) -> dict[str, float]:
    """Tearing/speckle measures of one warped frame against its source (ratios; 1.0 = unchanged)."""
    import cv2

    g0, g1 = (cv2.cvtColor(np.ascontiguousarray(f), cv2.COLOR_RGB2GRAY).astype(np.float32) for f in (before, after))
    face, band = face_bands(points, before.shape[1], before.shape[0])

    def grad(g):
        return np.hypot(cv2.Sobel(g, cv2.CV_32F, 1, 0), cv2.Sobel(g, cv2.CV_32F, 0, 1))

    lap0, lap1 = np.abs(cv2.Laplacian(g0, cv2.CV_32F)), np.abs(cv2.Laplacian(g1, cv2.CV_32F))
    return {"boundary_gradient_ratio": round(float(grad(g1)[band].mean() / max(grad(g0)[band].mean(), 1e-6)), 3),
            "face_laplacian_ratio": round(float(lap1[face].mean() / max(lap0[face].mean(), 1e-6)), 3)}


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


# A frame counts as visibly warped when its face box changed by more than this mean absolute level (0-255).
VISIBLE_CHANGE = 1.0


def visibly_changed(original_iter, result_iter, points: np.ndarray) -> np.ndarray:
    """Per frame: whether the result's picture differs from the original's inside the face's box (what a
    viewer can see changed), from two iterators of uint8 chunks of the same size as the points."""
    out = []
    pairs = zip((f for c in original_iter for f in c), (f for c in result_iter for f in c))
    for i, (a, b) in enumerate(pairs):
        p = points[i] if i < len(points) else None
        if p is None or np.isnan(p[0, 0]):
            out.append(False)
            continue
        x0, y0 = np.maximum(np.floor(p[:, :2].min(0)).astype(int), 0)
        x1, y1 = np.ceil(p[:, :2].max(0)).astype(int) + 1
        box = (slice(y0, y1), slice(x0, x1))
        out.append(bool(np.abs(a[box].astype(np.int16) - b[box].astype(np.int16)).mean() > VISIBLE_CHANGE))
    return np.array(out + [False] * (len(points) - len(out)), bool)


def frame_metrics(source_points: np.ndarray, result_points: np.ndarray, target: float,
                  warped: np.ndarray | None = None) -> dict:
    """Intensity and achieved factors; with `warped` (bool [N]) the factor is measured on those frames only."""
    values_in, values_out = measures(source_points), measures(result_points)
    neutral, _ = neutral_measures(values_in)
    i_in, i_out = intensity(values_in, neutral), intensity(values_out, neutral)
    factors = achieved_factors(source_points, result_points, warped)
    factor = factors.get("all", float("nan"))
    return {"target_factor": target, "achieved_factor": round(factor, 3) if np.isfinite(factor) else 0.0,
            "factor_frames": "the visibly warped frames" if warped is not None else "every frame with a face",
            "achieved_per_feature": {k: round(v, 3) for k, v in factors.items() if k != "all"},
            "intensity": {"source_mean": round(float(np.nanmean(i_in)), 4),
                          "result_mean": round(float(np.nanmean(i_out)), 4),
                          "ratio": round(float(np.nanmean(i_out) / max(np.nanmean(i_in), 1e-9)), 3)},
            "landmark_jitter": {"source": landmark_jitter(source_points), "result": landmark_jitter(result_points)}}


def _size_from_notes(track) -> int:
    """The analysis size an automatic track chose (its first note says it), else 0 (full size)."""
    import re

    for note in track.notes:
        found = re.match(r"analysis size (\d+) chosen automatically", note)
        if found:
            return int(found.group(1))
    return 0


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
    if analysis_size < 0:  # the result is re-detected at the size that found the source's face best
        analysis_size = _size_from_notes(src)
    out = rescale_track(track_video(result, analysis_size=analysis_size), original.width, original.height)
    size = analysis_size if analysis_size > 0 else None
    # The factor a viewer sees: only frames whose face visibly changed (untouched frames would pull it to 1).
    warped = visibly_changed(vio.iter_frames(original), vio.iter_frames(result), src.points)
    report = frame_metrics(src.points, out.points, target, warped)
    report["frames_visibly_warped"] = int(warped.sum())
    if warped.sum() and report["achieved_factor"] < 1.1:
        report.setdefault("notes", []).append(
            f"{int(warped.sum())} frames visibly changed but the re-detected landmarks barely moved (factor "
            f"{report['achieved_factor']}): the detector does not follow this warped face, so this figure understates "
            "the screen; the exaggeration report's applied_factor is what the picture was moved by")
    change_in = temporal_change(vio.iter_frames(original, max_size=size))
    change_out = temporal_change(vio.iter_frames(result, max_size=size))
    report["flicker"] = {"source_mean_abs_change": round(change_in, 3), "result_mean_abs_change": round(change_out, 3),
                         "ratio": round(change_out / max(change_in, 1e-9), 3)}
    try:
        peak = find_expressive_moment(src.points, original.fps, appearance=src.appearance)["peak_frame"]
    except ValueError:  # no trustworthy face: the identity check looks at the first frame
        peak = 0
    a = next(vio.iter_frames(original, peak, peak + 1))[0]
    b = next(vio.iter_frames(result, peak, peak + 1))[0]
    pa = src.points[peak] if src.valid[peak] else None
    pb = out.points[peak] if out.valid[peak] else None
    ident = character_similarity(b, [a], "auto", lambda img: pb if img is b else pa)
    report["identity"] = {"similarity": ident["similarity"], "path": ident["path"], "frame": peak,
                          "note": ident["note"]}
    if pa is not None:
        report["seams"] = {"frame": peak, **seam_measures(a, b, pa)}
    report["frames"] = original.frame_count
    return report
