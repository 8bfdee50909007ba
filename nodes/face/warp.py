"""Expression exaggeration: scale the face's deviation from neutral with a smooth landmark-driven warp.

Plan (computed once per clip from the landmarks, cheap) then apply (per frame, streamable):
1. landmarks are smoothed over time (zero-phase Gaussian, NaN-aware) so the warp does not flicker;
2. each frame is aligned to a reference by a similarity transform on points that do not move with
   expression (nose bridge, eye corners, temples), so head motion is not mistaken for expression;
3. neutral = the mean shape of the clip's calmest frames (expression.calm_frames), or the clip mean,
   the first frame, or a given neutral face; for a single photo, the same face at rest (photo_neutral);
4. every landmark moves to neutral + (1 + w * (factor - 1)) * deviation, w = the feature's weight
   (brows, eyes, mouth) blended smoothly over the points between features, so the face moves as one;
5. the image is warped backwards through a smoothing thin-plate spline fitted to the moved landmarks
   plus a ring of fixed anchors around the face: one smooth displacement field (no mesh edges, so no
   saw-tooth, no tears), faded to zero towards the ring (the frame outside is untouched). Where the
   field would fold (the map's Jacobian near zero) the frame's moves are shortened, smoothly over time.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .expression import FEATURES, MIN_RUN, STABLE, calm_frames, gate_short_runs, ramp_envelope

MAX_FACTOR = 5.0
RING_POINTS = 24
RING_SCALE = 1.45  # ring radius relative to the face's half extent
# Longer moves would fold the warp; they are clipped and counted.
MAX_SHIFT_IOD = 0.7
# The feather starts at this fraction of the ring's radius (the face itself sits inside ~0.7).
FEATHER_INNER = 0.78
# Thin-plate spline smoothing (eye-distance units): irons out single-landmark jitter, keeps lip shapes.
TPS_SMOOTHING = 0.1
# Displacement grid density: samples per eye distance (upsampled bicubically to every pixel).
GRID_PER_IOD = 8.0
# The warp may magnify the source up to 1 / MIN_JACOBIAN in area (an opening mouth) but never fold.
MIN_JACOBIAN = 0.08
# Inner-lip pairs (upper, lower). Control points a little way down each pair's gap ride with the upper
# lip, as the upper teeth do, so an opening mouth stretches its dark interior and not the teeth.
UPPER_INNER_LIP = [191, 80, 81, 82, 13, 312, 311, 310, 415]
LOWER_INNER_LIP = [95, 88, 178, 87, 14, 317, 402, 318, 324]
TEETH_SHARE = 0.3
MOVING = 478 + len(UPPER_INNER_LIP)  # control points that move: the landmarks, then the teeth points
# How far (eye distances) a feature's weight reaches the landmarks between features.
NEIGHBOUR_REACH_IOD = 0.3
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


def point_weights(weights: dict[str, float], shape: np.ndarray, iod: float) -> np.ndarray:
    """Each landmark's share of the factor, [478].

    A feature's points get its weight; every other point (cheeks, nose, chin, face oval) a blend of the
    features' weights by nearness, so the whole face's deviation is scaled as one smooth field: an
    opening lip never slides over a neighbour left in place (which is what folds the mesh).
    """
    per = np.array([float(weights.get(name, 1.0)) for name in FEATURES])
    near = np.stack([np.linalg.norm(shape[:, None, :2] - shape[None, idx, :2], axis=-1).min(1)
                     for idx in FEATURES.values()], 1)  # [478, features]: distance to each feature
    k = np.exp(-(near / (NEIGHBOUR_REACH_IOD * iod)) ** 2) + 1e-12
    w = (k * per).sum(1) / k.sum(1)
    own = np.full(478, -1.0)
    for name, idx in FEATURES.items():
        own[idx] = np.maximum(own[idx], float(weights.get(name, 1.0)))
    return np.where(own >= 0, own, w)


# A single photo has no calm frames to take a neutral from: its neutral is the same face at rest, with these
# rest proportions (eye-distance units; expression.TYPICAL_NEUTRAL) and the mouth corners this far above the
# lips' centre. Each rest move is bounded, so a face the detector misreads is not rebuilt into another face.
NEUTRAL_CORNER_LIFT = 0.02
REST_MOVE_LIMIT = {"mouth_open": 0.35, "corner": 0.12, "brow": 0.08}
REST_RATIO_LIMIT = (0.75, 1.35)  # mouth width and eye opening: rest / photo


def photo_neutral(points: np.ndarray) -> np.ndarray:
    """One face's landmarks [478,>=2] -> the same face at rest [478,2], for exaggerating a single photo.

    In the face's own frame (x along the eyes, y towards the chin, eye-distance units): the lower lip, jaw
    and chin rise until the inner lips are TYPICAL_NEUTRAL apart; the mouth narrows or widens to the typical
    width; each mouth corner moves to NEUTRAL_CORNER_LIFT above the lips' centre; each eye opens or closes
    about its middle to the typical opening; each brow moves to the typical height over its eye. Every move
    fades out over the neighbouring points, so the rest face is as smooth as the face itself.
    """
    from .expression import LEFT_BROW, LEFT_EYE, LIPS, RIGHT_BROW, RIGHT_EYE, TYPICAL_NEUTRAL

    p = np.asarray(points, np.float64)[:, :2]
    origin = (p[33] + p[263]) / 2
    iod = max(float(np.linalg.norm(p[263] - p[33])), 1e-6)
    ex = (p[263] - p[33]) / iod
    ey = np.array([-ex[1], ex[0]])
    u, v = (p - origin) @ ex / iod, (p - origin) @ ey / iod
    du, dv = np.zeros(len(p)), np.zeros(len(p))

    def near(idx, reach: float) -> np.ndarray:
        """1 on the points `idx`, fading with distance (eye-distance units) to 0 about 2 * reach away."""
        d = np.hypot(u[:, None] - u[None, idx], v[:, None] - v[None, idx]).min(1)
        return np.exp(-(d / reach) ** 2)

    mouth_u = (u[61] + u[291]) / 2
    gap = v[14] - v[13]
    shut = float(np.clip(gap - TYPICAL_NEUTRAL["mouth_open"], 0.0, REST_MOVE_LIMIT["mouth_open"]))
    if shut > 0:
        below = np.clip((v - v[13]) / max(gap, 1e-6), 0.0, 1.0)
        dv -= shut * below * below * (3 - 2 * below) * np.exp(-((u - mouth_u) / 0.6) ** 2)
    width = u[291] - u[61]
    ratio = float(np.clip(TYPICAL_NEUTRAL["smile_width"] / max(width, 1e-6), *REST_RATIO_LIMIT))
    du += (ratio - 1.0) * (u - mouth_u) * near(LIPS, 0.12)
    lips_mid = (v[13] + v[14]) / 2
    for corner in (61, 291):
        lift = float(np.clip(lips_mid - v[corner] - NEUTRAL_CORNER_LIFT, -REST_MOVE_LIMIT["corner"],
                             REST_MOVE_LIMIT["corner"]))
        dv += lift * near([corner], 0.18)
    for eye, upper, lower, brow, brow_mid in ((RIGHT_EYE, 159, 145, RIGHT_BROW, 105),
                                              (LEFT_EYE, 386, 374, LEFT_BROW, 334)):
        opening = v[lower] - v[upper]
        ratio = float(np.clip(TYPICAL_NEUTRAL["eye_open"] / max(opening, 1e-6), *REST_RATIO_LIMIT))
        centre = (v[upper] + v[lower]) / 2
        dv += (ratio - 1.0) * (v - centre) * near(eye, 0.06)
        raise_ = v[upper] - v[brow_mid]
        drop = float(np.clip(raise_ - TYPICAL_NEUTRAL["brow_raise"], -REST_MOVE_LIMIT["brow"], REST_MOVE_LIMIT["brow"]))
        dv += drop * near(brow, 0.1)
    return p + iod * (du[:, None] * ex + dv[:, None] * ey)


@dataclass
class WarpPlan:
    src: np.ndarray  # [N, MOVING+R, 2] where each output pixel comes from (landmarks, teeth points, ring)
    dst: np.ndarray  # [N, MOVING+R, 2] where those points go
    kept: np.ndarray  # [N] share of the planned moves each frame gets (fold guard x ramp in/out)
    valid: np.ndarray  # [N] frames with a face (others pass through unchanged)
    report: dict


def plan_exaggeration(points: np.ndarray, factor: float, weights: dict[str, float] | None = None,
                      neutral: str = "calmest frames", neutral_points: np.ndarray | None = None,
                      smooth_sigma: float = 1.0, appearance: dict | None = None) -> WarpPlan:
    """Source and target control points for every frame, from [N,478,>=2] landmarks (NaN = no face).

    Detections in runs under expression.MIN_RUN frames are dropped first (never warped), and the warp eases
    in and out over RAMP_FRAMES where the face appears or is lost (ramp_envelope)."""
    factor, clamp_note = clamp_factor(factor)
    weights = {"brows": 1.0, "eyes": 1.0, "mouth": 1.0, **(weights or {})}
    raw = np.array(points, np.float64)[..., :2]
    found = ~np.isnan(raw[:, 0, 0])
    gated = gate_short_runs(found)
    raw[found & ~gated] = np.nan
    pts = fill_and_smooth(raw, smooth_sigma)
    valid = ~np.isnan(pts[:, 0, 0])
    n = len(pts)
    report = {"factor": factor, "factor_requested": None, "weights": weights, "smooth_sigma": smooth_sigma,
              "frames": n, "frames_with_face": int(valid.sum()), "notes": []}
    if clamp_note:
        report["notes"].append(clamp_note)
    if (found & ~gated).any():
        report["notes"].append(f"{int((found & ~gated).sum())} frames with a face in runs under {MIN_RUN} "
                               "frames were left unwarped (detector blips: a warp there would pop)")
    if not valid.any():
        report["notes"].append("no face in any frame: nothing was warped")
        return WarpPlan(np.zeros((n, 0, 2)), np.zeros((n, 0, 2)), np.ones(n), valid, report)

    ref = pts[np.flatnonzero(valid)[0]]
    to_ref = np.zeros((n, 2, 3))
    aligned = np.full_like(pts, np.nan)
    for i in np.flatnonzero(valid):
        to_ref[i] = similarity(pts[i, STABLE], ref[STABLE])
        aligned[i] = apply(to_ref[i], pts[i])

    if neutral_points is not None:
        npts = np.asarray(neutral_points, np.float64)[..., :2].reshape(478, 2)
        base = apply(similarity(npts[STABLE], ref[STABLE]), npts)
        neutral_from = "the given neutral face"
    elif valid.sum() >= 2 and neutral == "calmest frames":
        # The mean would put half the clip "below neutral" (a closed mouth pushed to cross its lips); the
        # calmest frames are the face at rest, so every expression is scaled away from rest.
        calm = calm_frames(pts, appearance)
        base = aligned[calm].mean(0)
        neutral_from = f"the clip's {len(calm)} calmest frames {calm.tolist()[:8]}"
    elif valid.sum() >= 2 and neutral == "clip mean":
        base = np.nanmean(aligned[valid], axis=0)
        neutral_from = "clip mean"
    elif valid.sum() >= 2:
        base = aligned[np.flatnonzero(valid)[0]]
        neutral_from = "first frame with a face"
    else:
        base = photo_neutral(aligned[np.flatnonzero(valid)[0]])
        neutral_from = "a single photo: the same face at rest (mouth shut, corners level, eyes and brows at " \
                       "typical rest proportions), built from its own landmarks"
    report["neutral_from"] = neutral_from

    iod = np.linalg.norm(ref[33] - ref[263])
    gain = 1.0 + point_weights(weights, ref, iod)[:, None] * (factor - 1.0)
    centre = np.nanmean(aligned[valid], axis=0).mean(0)
    half = (np.nanmax(aligned[valid], axis=(0, 1)) - np.nanmin(aligned[valid], axis=(0, 1))) / 2
    ang = np.linspace(0, 2 * np.pi, RING_POINTS, endpoint=False)
    ring = centre + np.stack([np.cos(ang), np.sin(ang)], 1) * half * RING_SCALE

    src = np.zeros((n, MOVING + RING_POINTS, 2))
    shifts = np.zeros((n, MOVING, 2))
    aligned_shift = np.zeros((n, 478, 2))
    clipped = 0
    for i in np.flatnonzero(valid):
        a = aligned[i]
        target = base + gain * (a - base)
        shift = target - a
        length = np.linalg.norm(shift, axis=1, keepdims=True)
        limit = MAX_SHIFT_IOD * iod
        over = length[:, 0] > limit
        clipped += int(over.sum())
        shift[over] *= limit / length[over]
        # Back in the frame's own pose: the move is a vector, so only the linear part applies.
        shifts[i, :478] = shift @ invert(to_ref[i])[:, :2].T
        aligned_shift[i] = shift
        shifts[i, 478:] = shifts[i, UPPER_INNER_LIP]
        teeth = pts[i, UPPER_INNER_LIP] + TEETH_SHARE * (pts[i, LOWER_INNER_LIP] - pts[i, UPPER_INNER_LIP])
        src[i] = np.vstack([pts[i], teeth, apply(invert(to_ref[i]), ring)])
    kept = fold_guard(src, shifts, valid)
    strength = kept * ramp_envelope(valid)
    dst = src.copy()
    dst[:, :MOVING] += strength[:, None, None] * shifts
    report["warp_strength"] = [round(float(x), 3) for x in strength]
    if base is not None:
        report["applied_factor"] = applied_factor(aligned, aligned_shift, strength, base)
    if (kept[valid] < 0.999).any():
        report["notes"].append(f"{int((kept[valid] < 0.999).sum())} frames had their moves shortened (keeping at "
                               f"least {kept[valid].min():.0%}) so the warp never folds (lips crossing, eyelids "
                               "inverting); eased over neighbouring frames so it does not flicker")
    report["fold_guard_min_kept"] = round(float(kept[valid].min()), 3)
    if clipped:
        report["notes"].append(f"{clipped} point moves were longer than {MAX_SHIFT_IOD} eye distances and were "
                               "shortened to avoid folds")
    report["landmark_jitter_raw"] = landmark_jitter(raw)
    report["landmark_jitter_smoothed"] = landmark_jitter(pts)
    return WarpPlan(src, dst, strength, valid, report)


def applied_factor(aligned: np.ndarray, aligned_shift: np.ndarray, strength: np.ndarray, base: np.ndarray) -> dict:
    """The factor the picture is actually moved by, on the frames the warp reaches (strength > 0.5): the feature
    points' deviation from neutral after the applied moves over before them (head pose removed). The warp
    carries the picture exactly with these points, so this is what a viewer sees, also where a detector
    cannot re-find the warped toon face."""
    frames = np.flatnonzero(strength > 0.5)
    if not len(frames):
        return {"all": None, "frames": 0}
    idx = sorted({i for f in FEATURES.values() for i in f})
    before = aligned[frames][:, idx] - base[idx]
    after = before + strength[frames, None, None] * aligned_shift[frames][:, idx]
    dev_in = np.linalg.norm(before, axis=-1).sum()
    return {"all": round(float(np.linalg.norm(after, axis=-1).sum() / max(dev_in, 1e-9)), 3), "frames": int(len(frames))}


def fold_guard(src: np.ndarray, shifts: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Per frame, the largest share (0..1) of its moves whose warp does not fold, eased over time.

    A frame's share is found by bisection on the warp's smallest Jacobian; the shares are then
    min-filtered and smoothed over neighbouring frames, so a shortened frame does not pop.
    """
    kept = np.ones(len(src))
    for i in np.flatnonzero(valid):
        def ok(share: float) -> bool:
            dst = src[i].copy()
            dst[:MOVING] += share * shifts[i]
            return min_jacobian(src[i], dst) >= MIN_JACOBIAN

        if ok(1.0):
            continue
        lo, hi = 0.0, 1.0
        for _ in range(6):
            mid = (lo + hi) / 2
            lo, hi = (mid, hi) if ok(mid) else (lo, mid)
        kept[i] = lo
    if (kept < 1).any() and len(kept) > 2:
        from scipy.ndimage import gaussian_filter1d, minimum_filter1d

        kept = np.minimum(kept, gaussian_filter1d(minimum_filter1d(kept, 5, mode="nearest"), 1.0, mode="nearest"))
    return kept


def landmark_jitter(points: np.ndarray) -> float:
    """Mean second difference of landmark positions over time, in eye distances (0 = perfectly smooth)."""
    p = np.asarray(points, np.float64)[..., :2]
    if len(p) < 3:
        return 0.0
    acc = np.linalg.norm(p[2:] - 2 * p[1:-1] + p[:-2], axis=-1).mean(-1)
    iod = np.linalg.norm(p[1:-1, 33] - p[1:-1, 263], axis=-1)
    ratio = acc / np.maximum(iod, 1e-6)
    return round(float(np.nanmean(ratio)), 5) if np.isfinite(ratio).any() else 0.0


def _ring_ellipse(ring: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Centre and the 2x2 map unit circle -> the anchor ring (an ellipse, rotated with the head)."""
    centre = ring.mean(0)
    return centre, np.stack([ring[0] - centre, ring[RING_POINTS // 4] - centre], 1)


def feather(xs: np.ndarray, ys: np.ndarray, ring: np.ndarray) -> np.ndarray:
    """1 over the face, easing (smoothstep) to 0 at the anchor ring: how much of the warp each pixel gets."""
    centre, m = _ring_ellipse(ring)
    inv = np.linalg.inv(m)
    u = inv[0, 0] * (xs - centre[0]) + inv[0, 1] * (ys - centre[1])
    v = inv[1, 0] * (xs - centre[0]) + inv[1, 1] * (ys - centre[1])
    t = np.clip((1.0 - np.sqrt(u * u + v * v)) / (1.0 - FEATHER_INNER), 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


def displacement(src: np.ndarray, dst: np.ndarray):
    """Backward displacement field (output pixel -> where to sample) as a function of pixel arrays.

    A thin-plate spline through the moved points, in eye-distance units so its smoothing does not
    depend on the resolution; the smoothing lets a few jittery landmarks bend the field gently
    instead of kinking it. Multiplied by the feather, so it is exactly zero at and beyond the ring.
    """
    from scipy.interpolate import RBFInterpolator

    centre = dst[:478].mean(0)
    scale = max(float(np.linalg.norm(dst[33] - dst[263])), 1e-6)
    rbf = RBFInterpolator((dst - centre) / scale, (src - dst) / scale, kernel="thin_plate_spline",
                          smoothing=TPS_SMOOTHING)
    ring = dst[MOVING:]

    def field(xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
        q = np.stack([(xs.ravel() - centre[0]) / scale, (ys.ravel() - centre[1]) / scale], 1)
        return rbf(q).reshape(xs.shape + (2,)) * scale * feather(xs, ys, ring)[..., None]

    return field


def _ring_box(ring: np.ndarray, width: int, height: int) -> tuple[int, int, int, int]:
    x0, y0 = np.floor(ring.min(0)).astype(int)
    x1, y1 = np.ceil(ring.max(0)).astype(int) + 1
    return max(x0, 0), max(y0, 0), min(x1, width), min(y1, height)


def min_jacobian(src: np.ndarray, dst: np.ndarray, samples: int = 28) -> float:
    """Smallest determinant of the backward map over the face (<= 0: the warp folds, mirroring pixels)."""
    ring = dst[MOVING:]
    x0, y0 = ring.min(0)
    x1, y1 = ring.max(0)
    xs, ys = np.meshgrid(np.linspace(x0, x1, samples), np.linspace(y0, y1, samples))
    d = displacement(src, dst)(xs, ys)
    hx, hy = (x1 - x0) / (samples - 1), (y1 - y0) / (samples - 1)
    dxx = np.gradient(d[..., 0], hx, axis=1)
    dxy = np.gradient(d[..., 0], hy, axis=0)
    dyx = np.gradient(d[..., 1], hx, axis=1)
    dyy = np.gradient(d[..., 1], hy, axis=0)
    return float(((1 + dxx) * (1 + dyy) - dxy * dyx).min())


def warp_frame(frame: np.ndarray, src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Warp one uint8 frame so its `src` control points (landmarks, teeth points, ring) land on `dst`."""
    import cv2

    h, w = frame.shape[:2]
    x0, y0, x1, y1 = _ring_box(dst[MOVING:], w, h)
    if x1 - x0 < 2 or y1 - y0 < 2:
        return frame
    bw, bh = x1 - x0, y1 - y0
    # The spline is evaluated on a coarse grid and upsampled (bicubic: the field is smooth, so this
    # costs nothing visible); grid points sit where cv2.resize expects its source pixel centres.
    step = max(2.0, float(np.linalg.norm(dst[33] - dst[263])) / GRID_PER_IOD)
    nx, ny = max(int(np.ceil(bw / step)), 2), max(int(np.ceil(bh / step)), 2)
    gx = x0 + (np.arange(nx) + 0.5) * bw / nx - 0.5
    gy = y0 + (np.arange(ny) + 0.5) * bh / ny - 0.5
    coarse = displacement(src, dst)(*np.meshgrid(gx, gy)).astype(np.float32)
    dense = cv2.resize(coarse, (bw, bh), interpolation=cv2.INTER_CUBIC)
    xs, ys = np.meshgrid(np.arange(x0, x1, dtype=np.float32), np.arange(y0, y1, dtype=np.float32))
    out = frame.copy()
    out[y0:y1, x0:x1] = cv2.remap(frame, xs + dense[..., 0], ys + dense[..., 1], cv2.INTER_CUBIC,
                                  borderMode=cv2.BORDER_REPLICATE)
    return out


def apply_plan(chunks, plan: WarpPlan, progress=None):
    """Warp a stream of uint8 [n,H,W,3] chunks with a plan; yields chunks (frames without a face unchanged)."""
    index = 0
    for chunk in chunks:
        out = np.array(chunk, copy=True)
        for j in range(len(out)):
            if index < len(plan.valid) and plan.valid[index]:
                out[j] = warp_frame(out[j], plan.src[index], plan.dst[index])
            index += 1
            if progress is not None:
                progress.update(1)
        yield out
