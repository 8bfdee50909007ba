"""Expression exaggeration: scale the face's deviation from neutral with a piecewise-affine warp.

Plan (computed once per clip from the landmarks, cheap) then apply (per frame, streamable):
1. landmarks are smoothed over time (zero-phase Gaussian, NaN-aware) so the warp does not flicker;
2. each frame is aligned to a reference by a similarity transform on points that do not move with
   expression (nose bridge, eye corners, temples), so head motion is not mistaken for expression;
3. neutral = the clip mean of the aligned shapes (or the first frame, or a given neutral face);
4. feature points (brows, eyes, mouth + chin) move to neutral + (1 + w * (factor - 1)) * deviation;
   moves that would fold the mesh (lips crossing) are shortened locally (`unfold`);
5. the image is warped piecewise-affinely over the Delaunay mesh of the moved 478 points plus a ring
   of anchor points around the face that do not move, so the warp is continuous (no tearing) and is
   the identity outside the ring; the ring is also feathered into the original frame.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .expression import FEATURES, STABLE

MAX_FACTOR = 5.0
RING_POINTS = 24
RING_SCALE = 1.45  # ring radius relative to the face's half extent
# Larger displacements would fold triangles over each other; they are clipped and counted.
MAX_SHIFT_IOD = 0.7


def clamp_factor(factor: float) -> tuple[float, str]:
    f = float(factor)
    if not np.isfinite(f):
        raise ValueError(f"factor must be a number, got {factor!r}")
    if f < 0.0 or f > MAX_FACTOR:
        c = min(max(f, 0.0), MAX_FACTOR)
        return c, f"factor {f:g} clamped to {c:g} (allowed 0..{MAX_FACTOR:g})"
    return f, ""


def fill_and_smooth(points: np.ndarray, sigma: float, max_gap: int = 3) -> np.ndarray:
    """[N,P,D] with NaN rows -> short gaps filled linearly, then Gaussian-smoothed over time per valid run."""
    points = np.array(points, np.float64)
    valid = ~np.isnan(points[:, 0, 0])
    n = len(points)
    idx = np.flatnonzero(valid)
    for a, b in zip(idx[:-1], idx[1:]):
        if 1 < b - a <= max_gap + 1:
            t = (np.arange(a + 1, b) - a) / (b - a)
            points[a + 1:b] = points[a][None] * (1 - t[:, None, None]) + points[b][None] * t[:, None, None]
    valid = ~np.isnan(points[:, 0, 0])
    if sigma <= 0 or n < 2:
        return points
    from scipy.ndimage import gaussian_filter1d

    out = points.copy()
    start = None
    for i in range(n + 1):
        if i < n and valid[i]:
            start = i if start is None else start
        elif start is not None:
            if i - start >= 2:
                out[start:i] = gaussian_filter1d(points[start:i], sigma, axis=0, mode="nearest")
            start = None
    return out


def similarity(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """2x3 least-squares similarity (rotation, uniform scale, shift) taking src points onto dst (Umeyama)."""
    mu_s, mu_d = src.mean(0), dst.mean(0)
    s, d = src - mu_s, dst - mu_d
    u, sig, vt = np.linalg.svd(d.T @ s / len(src))
    sign = np.diag([1.0, np.sign(np.linalg.det(u @ vt))])
    rot = u @ sign @ vt
    scale = np.trace(np.diag(sig) @ sign) / max((s ** 2).sum() / len(src), 1e-12)
    m = np.zeros((2, 3))
    m[:, :2] = scale * rot
    m[:, 2] = mu_d - m[:, :2] @ mu_s
    return m


def apply(m: np.ndarray, pts: np.ndarray) -> np.ndarray:
    return pts @ m[:, :2].T + m[:, 2]


def invert(m: np.ndarray) -> np.ndarray:
    a = np.linalg.inv(m[:, :2])
    return np.hstack([a, -(a @ m[:, 2])[:, None]])


def point_weights(weights: dict[str, float]) -> np.ndarray:
    w = np.zeros(478)
    for name, idx in FEATURES.items():
        w[idx] = np.maximum(w[idx], float(weights.get(name, 1.0)))
    return w


@dataclass
class WarpPlan:
    src: np.ndarray  # [N, 478+R, 2] where each output pixel comes from (smoothed landmarks + ring)
    dst: np.ndarray  # [N, 478+R, 2] where those points go
    triangles: list[np.ndarray]  # per frame [T, 3]: the Delaunay mesh of that frame's targets
    valid: np.ndarray  # [N] frames with a face (others pass through unchanged)
    report: dict


def plan_exaggeration(points: np.ndarray, factor: float, weights: dict[str, float] | None = None,
                      neutral: str = "clip mean", neutral_points: np.ndarray | None = None,
                      smooth_sigma: float = 1.0) -> WarpPlan:
    """Source and target control points for every frame, from [N,478,>=2] landmarks (NaN = no face)."""
    factor, clamp_note = clamp_factor(factor)
    weights = {"brows": 1.0, "eyes": 1.0, "mouth": 1.0, **(weights or {})}
    raw = np.asarray(points, np.float64)[..., :2]
    pts = fill_and_smooth(raw, smooth_sigma)
    valid = ~np.isnan(pts[:, 0, 0])
    n = len(pts)
    report = {"factor": factor, "factor_requested": None, "weights": weights, "smooth_sigma": smooth_sigma,
              "frames": n, "frames_with_face": int(valid.sum()), "notes": []}
    if clamp_note:
        report["notes"].append(clamp_note)
    if not valid.any():
        report["notes"].append("no face in any frame: nothing was warped")
        return WarpPlan(np.zeros((n, 0, 2)), np.zeros((n, 0, 2)), [np.zeros((0, 3), int)] * n, valid, report)

    ref = pts[np.flatnonzero(valid)[0]]
    to_ref = np.zeros((n, 2, 3))
    aligned = np.full_like(pts, np.nan)
    for i in np.flatnonzero(valid):
        to_ref[i] = similarity(pts[i, STABLE], ref[STABLE])
        aligned[i] = apply(to_ref[i], pts[i])
    w = point_weights(weights)[:, None]
    gain = 1.0 + w * (factor - 1.0)

    if neutral_points is not None:
        npts = np.asarray(neutral_points, np.float64)[..., :2].reshape(478, 2)
        base = apply(similarity(npts[STABLE], ref[STABLE]), npts)
        neutral_from = "the given neutral face"
    elif valid.sum() >= 2 and neutral != "first frame":
        base = np.nanmean(aligned[valid], axis=0)
        neutral_from = "clip mean"
    elif valid.sum() >= 2:
        base = aligned[np.flatnonzero(valid)[0]]
        neutral_from = "first frame with a face"
    else:
        base = None
        neutral_from = "none (single frame): each feature scaled about its own centre, 30% of its shape " \
                       "counted as expression"
    report["neutral_from"] = neutral_from

    iod = np.linalg.norm(ref[33] - ref[263])
    centre = np.nanmean(aligned[valid], axis=0).mean(0)
    half = (np.nanmax(aligned[valid], axis=(0, 1)) - np.nanmin(aligned[valid], axis=(0, 1))) / 2
    ang = np.linspace(0, 2 * np.pi, RING_POINTS, endpoint=False)
    ring = centre + np.stack([np.cos(ang), np.sin(ang)], 1) * half * RING_SCALE
    triangles: list[np.ndarray] = [np.zeros((0, 3), int)] * n

    src = np.zeros((n, 478 + RING_POINTS, 2))
    dst = np.zeros_like(src)
    clipped = 0
    scales = np.ones(n)
    for i in np.flatnonzero(valid):
        a = aligned[i]
        if base is not None:
            target = base + gain * (a - base)
        else:
            target = a.copy()
            for name, idx in FEATURES.items():
                c = a[idx].mean(0)
                g = 1.0 + 0.3 * float(weights.get(name, 1.0)) * (factor - 1.0)
                target[idx] = c + g * (a[idx] - c)
        shift = target - a
        length = np.linalg.norm(shift, axis=1, keepdims=True)
        limit = MAX_SHIFT_IOD * iod
        over = length[:, 0] > limit
        clipped += int(over.sum())
        shift[over] *= limit / length[over]
        wanted = np.abs(shift).sum()
        shift, triangles[i] = unfold(np.vstack([a, ring]), np.vstack([shift, np.zeros_like(ring)]))
        shift = shift[:478]
        scales[i] = np.abs(shift).sum() / max(wanted, 1e-9)
        back = invert(to_ref[i])
        src[i] = np.vstack([pts[i], apply(back, ring)])
        dst[i] = np.vstack([apply(back, a + shift), apply(back, ring)])
    folded = scales[valid] < 0.999
    if folded.any():
        report["notes"].append(f"{int(folded.sum())} frames had some point moves shortened (keeping at least "
                               f"{scales[valid].min():.0%} of the total) so no mesh triangle folds over "
                               "(lips crossing, eyelids inverting)")
    report["fold_guard_min_kept"] = round(float(scales[valid].min()), 3)
    if clipped:
        report["notes"].append(f"{clipped} point moves were longer than {MAX_SHIFT_IOD} eye distances and were "
                               "shortened to avoid folds")
    report["landmark_jitter_raw"] = landmark_jitter(raw)
    report["landmark_jitter_smoothed"] = landmark_jitter(pts)
    return WarpPlan(src, dst, triangles, valid, report)


def _signed_areas(pts: np.ndarray, triangles: np.ndarray) -> np.ndarray:
    a, b, c = pts[triangles[:, 0]], pts[triangles[:, 1]], pts[triangles[:, 2]]
    return (b[:, 0] - a[:, 0]) * (c[:, 1] - a[:, 1]) - (b[:, 1] - a[:, 1]) * (c[:, 0] - a[:, 0])


def unfold(pts: np.ndarray, shift: np.ndarray, keep: float = 0.25) -> tuple[np.ndarray, np.ndarray]:
    """Moves and mesh for one frame such that the warp neither tears nor folds.

    The mesh is the Delaunay triangulation of the *target* points, so every output pixel lies in
    exactly one triangle and the backward map is continuous (no tearing, whatever the detected
    landmarks do). A triangle whose source corners run the other way would show the image mirrored: lips crossing, eyelids inverting. Only the moves
    of those triangles' corners are shortened, so the rest of the face keeps its full exaggeration.
    """
    from scipy.spatial import Delaunay

    shift = shift.copy()
    for _ in range(20):
        triangles = Delaunay(pts + shift).simplices
        after = _signed_areas(pts + shift, triangles)
        before = _signed_areas(pts, triangles)
        # A source triangle squashed to a line and opened up is only a stretch; one running the other
        # way is a mirror image (a fold). Slivers (mirrored area under `keep` of the target's, e.g. the
        # detector's slightly crossed inner lips of a closed mouth) are let through.
        bad = before * np.sign(after) < -keep * np.abs(after)
        moving = np.abs(shift[triangles]).sum(axis=(1, 2)) > 1e-9
        bad &= moving
        if not bad.any():
            break
        shift[np.unique(triangles[bad])] *= 0.7
    return shift, triangles


def landmark_jitter(points: np.ndarray) -> float:
    """Mean second difference of landmark positions over time, in eye distances (0 = perfectly smooth)."""
    p = np.asarray(points, np.float64)[..., :2]
    if len(p) < 3:
        return 0.0
    acc = np.linalg.norm(p[2:] - 2 * p[1:-1] + p[:-2], axis=-1).mean(-1)
    iod = np.linalg.norm(p[1:-1, 33] - p[1:-1, 263], axis=-1)
    ratio = acc / np.maximum(iod, 1e-6)
    return round(float(np.nanmean(ratio)), 5) if np.isfinite(ratio).any() else 0.0


def warp_frame(frame: np.ndarray, src: np.ndarray, dst: np.ndarray, triangles: np.ndarray,
               feather: float = 0.08) -> np.ndarray:
    """Piecewise-affine warp of one uint8 frame moving `src` control points onto `dst`."""
    import cv2

    h, w = frame.shape[:2]
    ring = dst[478:]
    x0, y0 = np.floor(ring.min(0)).astype(int)
    x1, y1 = np.ceil(ring.max(0)).astype(int) + 1
    x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
    if x1 - x0 < 2 or y1 - y0 < 2:
        return frame
    bw, bh = x1 - x0, y1 - y0
    # Affine map dst -> src per triangle ([x y 1] @ coef = src), identity at index 0.
    d = np.concatenate([dst[triangles], np.ones((len(triangles), 3, 1))], axis=2)  # [T,3,3]
    s = src[triangles]  # [T,3,2]
    coef = np.stack([np.linalg.lstsq(di, si, rcond=None)[0] for di, si in zip(d, s)]) \
        if np.any(np.abs(np.linalg.det(d)) < 1e-9) else np.linalg.solve(d, s)
    coef = np.concatenate([np.array([[[1, 0], [0, 1], [0, 0]]], np.float64), coef])
    # Triangle index of every pixel of the face box (0 = outside the mesh -> identity). The rasteriser
    # also claims pixels just outside a triangle's edge; a squashed triangle's map, extrapolated there,
    # points far away (speckles). So draw the most stretched triangles first and let well-behaved
    # neighbours overwrite the shared edge pixels.
    stretch = np.abs(coef[1:, :2, :]).sum(axis=(1, 2))
    tri_map = np.zeros((bh, bw), np.int32)
    shift = 4  # sub-pixel precision for the rasteriser
    local = np.round((dst - [x0, y0]) * (1 << shift)).astype(np.int32)
    for k in np.argsort(-stretch):
        cv2.fillConvexPoly(tri_map, local[triangles[k]], int(k) + 1, lineType=cv2.LINE_8, shift=shift)
    # Rounding leaves a few pixels between neighbouring triangles: give them a neighbour's map.
    inside = np.zeros((bh, bw), np.uint8)
    cv2.fillPoly(inside, [np.round(ring - [x0, y0]).astype(np.int32)], 1)
    holes = (tri_map == 0) & (inside > 0)
    if holes.any():
        grown = cv2.dilate(tri_map.astype(np.float32), np.ones((3, 3), np.uint8)).astype(np.int32)
        tri_map[holes] = grown[holes]
    ys, xs = np.mgrid[y0:y1, x0:x1].astype(np.float32)
    c = coef[tri_map].astype(np.float32)
    # Displacement per pixel, lightly blurred: piecewise-affine maps kink along triangle edges, which
    # shows as a saw-tooth on strong edges (chin line); a blur of ~1% of the face box smooths the kinks.
    disp_x = xs * c[..., 0, 0] + ys * c[..., 1, 0] + c[..., 2, 0] - xs
    disp_y = xs * c[..., 0, 1] + ys * c[..., 1, 1] + c[..., 2, 1] - ys
    sigma = max(0.01 * max(bw, bh), 0.8)
    map_x = xs + cv2.GaussianBlur(disp_x, (0, 0), sigma)
    map_y = ys + cv2.GaussianBlur(disp_y, (0, 0), sigma)
    warped = cv2.remap(frame, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    # Feather: full warp well inside the ring, fading to the original at the ring.
    mask = inside.astype(np.float32)
    radius = max(int(feather * max(bw, bh)), 1)
    mask = cv2.erode(mask, np.ones((radius, radius), np.uint8))
    mask = cv2.GaussianBlur(mask, (0, 0), radius / 2 + 0.5)[..., None]
    out = frame.copy()
    region = frame[y0:y1, x0:x1].astype(np.float32)
    out[y0:y1, x0:x1] = np.clip(region + mask * (warped.astype(np.float32) - region) + 0.5, 0, 255).astype(np.uint8)
    return out


def apply_plan(chunks, plan: WarpPlan, feather: float = 0.08, progress=None):
    """Warp a stream of uint8 [n,H,W,3] chunks with a plan; yields chunks (frames without a face unchanged)."""
    index = 0
    for chunk in chunks:
        out = np.array(chunk, copy=True)
        for j in range(len(out)):
            if index < len(plan.valid) and plan.valid[index]:
                out[j] = warp_frame(out[j], plan.src[index], plan.dst[index], plan.triangles[index], feather)
            index += 1
            if progress is not None:
                progress.update(1)
        yield out
