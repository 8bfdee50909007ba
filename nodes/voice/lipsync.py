"""Lip sync: Wav2Lip when its checkpoint is present, else a toon-friendly energy-driven mouth.

The fallback needs no model and suits 3D/toon faces that photo-trained lip-sync models
miss: the audio's energy envelope (one value per video frame, with a fast attack and a
slower release like a real jaw) opens the mouth; the chin region below the mouth is
warped down with the jaw and a dark mouth interior is painted into the mouth box with a
feathered edge. The mouth box comes from the face family's landmarks when they find a
face, else from the `mouth_box` input.
"""
from __future__ import annotations

import math

import numpy as np

from .. import bridge
from .audio import frame_rms

MOUTH_POINTS = [61, 291, 0, 17, 13, 14, 78, 308, 81, 178, 311, 402]  # MediaPipe lip contour indices


def openness_per_frame(samples: np.ndarray, rate: int, fps: float, n_frames: int) -> np.ndarray:
    """0..1 mouth openness per video frame from the audio's RMS envelope."""
    hop = 1.0 / fps
    rms = frame_rms(samples, rate, frame_s=min(2 * hop, 0.08), hop_s=hop)
    rms = np.pad(rms, (0, max(0, n_frames - len(rms))))[:n_frames]
    db = 20 * np.log10(np.maximum(rms, 1e-6))
    top = np.percentile(db, 95) if db.size else 0.0
    level = np.clip((db - (top - 30.0)) / 30.0, 0.0, 1.0)  # 30 dB of range under the loud parts
    out = np.zeros(n_frames, np.float32)
    prev = 0.0
    for i, target in enumerate(level):
        k = 0.8 if target > prev else 0.45  # fast attack, slower release
        prev = prev + k * (target - prev)
        out[i] = prev
    return out ** 0.8


def parse_box(text: str, width: int, height: int):
    """'x,y,w,h' in pixels, or in fractions of the image when every value is <= 1 -> (x0, y0, x1, y1)."""
    try:
        values = [float(v) for v in text.replace(" ", "").split(",")]
    except ValueError:
        values = []
    if len(values) != 4 or values[2] <= 0 or values[3] <= 0:
        raise ValueError(f"Input 'mouth_box' must be 'x,y,w,h' (pixels or 0-1 fractions), got {text!r}.")
    if all(v <= 1.0 for v in values):
        values = [values[0] * width, values[1] * height, values[2] * width, values[3] * height]
    x, y, w, h = values
    x0, y0 = max(0, int(round(x))), max(0, int(round(y)))
    x1, y1 = min(width, int(round(x + w))), min(height, int(round(y + h)))
    if x1 - x0 < 4 or y1 - y0 < 2:
        raise ValueError(f"Input 'mouth_box' {text!r} lies outside the {width}x{height} image or is too small.")
    return x0, y0, x1, y1


def mouth_from_landmarks(frame: np.ndarray):
    """Mouth box from the face family's MediaPipe landmarks, or (None, why)."""
    try:
        from ..face.landmarks import track_images
    except Exception as exc:  # noqa: BLE001 - the face family is optional
        return None, f"face landmarks unavailable ({type(exc).__name__}: {exc})"
    try:
        track = track_images(frame[None], as_video=False)
    except Exception as exc:  # noqa: BLE001
        return None, f"face landmarks failed ({type(exc).__name__}: {exc})"
    if not track.valid.any():
        return None, "no face found by the landmark detector"
    pts = track.points[int(np.flatnonzero(track.valid)[0])][MOUTH_POINTS, :2]
    x0, y0 = pts.min(axis=0)
    x1, y1 = pts.max(axis=0)
    pad_x, pad_y = 0.1 * (x1 - x0), 0.25 * (y1 - y0) + 2
    h, w = frame.shape[:2]
    return (max(0, int(x0 - pad_x)), max(0, int(y0 - pad_y)), min(w, int(x1 + pad_x)), min(h, int(y1 + pad_y))), \
        f"landmarks ({track.source})"


def face_box_from_mouth(mouth, width: int, height: int):
    """A square face crop around a mouth box, mouth in its lower half (what Wav2Lip expects)."""
    x0, y0, x1, y1 = mouth
    side = int(2.8 * (x1 - x0))
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    fx0, fy0 = int(cx - side / 2), int(cy - 0.7 * side)
    fx0, fy0 = max(0, min(fx0, width - side)), max(0, min(fy0, height - side))
    return fx0, fy0, min(width, fx0 + side), min(height, fy0 + side)


def draw_mouth(frame: np.ndarray, box, openness: float) -> np.ndarray:
    """Jaw drop (warp of the region under the mouth) plus a feathered dark mouth interior."""
    from scipy.ndimage import gaussian_filter, map_coordinates

    if openness < 0.04:
        return frame
    x0, y0, x1, y1 = box
    bw, bh = x1 - x0, y1 - y0
    h, w = frame.shape[:2]
    cx, cy = (x0 + x1) / 2.0, (y0 + y1) / 2.0
    out = frame.astype(np.float32)
    # Jaw: pixels under the mouth centre move down by up to half the box height, fading out sideways and below.
    drop = 0.5 * bh * openness
    ry0, ry1 = int(cy), min(h, int(y1 + 1.5 * bh))
    rx0, rx1 = max(0, int(x0 - 0.3 * bw)), min(w, int(x1 + 0.3 * bw))
    if ry1 > ry0 + 1 and rx1 > rx0 + 1:
        yy, xx = np.mgrid[ry0:ry1, rx0:rx1].astype(np.float32)
        fall_x = np.clip(1.0 - np.abs(xx - cx) / (0.65 * bw + 1e-6), 0, 1)
        fall_y = np.clip(1.0 - (yy - cy) / (ry1 - cy + 1e-6), 0, 1)
        src_y = yy - drop * fall_x * np.minimum(1.0, (yy - cy) / (0.3 * bh + 1e-6)) * fall_y
        for c in range(3):
            out[ry0:ry1, rx0:rx1, c] = map_coordinates(frame[..., c].astype(np.float32), [src_y, xx], order=1,
                                                       mode="nearest")
    # Mouth interior: an ellipse that opens with the jaw, coloured from the lips, darkened.
    ew, eh = 0.5 * bw * (0.75 + 0.25 * openness), 0.5 * (0.12 * bh + (bh * 0.45 + drop) * openness)
    ecy = cy + 0.35 * drop
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    inside = (((xx - cx) / max(ew, 1)) ** 2 + ((yy - ecy) / max(eh, 1)) ** 2 <= 1.0).astype(np.float32)
    mask = gaussian_filter(inside, sigma=max(0.6, 0.04 * bw))[..., None]
    lips = frame[y0:y1, x0:x1].reshape(-1, 3).mean(axis=0)
    interior = np.clip(lips * 0.28 + np.array([18.0, 4.0, 6.0]), 0, 255)
    out = out * (1.0 - mask) + interior[None, None] * mask
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


def plan_lip_sync(frames: np.ndarray, samples: np.ndarray, rate: int, fps: float, method: str = "auto",
                  mouth_box: str = "", checkpoint: str = "", chunk: int = 16):
    """(report, iterator of uint8 [n,H,W,3] chunks): the lip-synced frames for the whole audio, made chunk by chunk.

    frames is the source batch, looped to the audio's length by index (never
    copied N times); only one chunk of output exists at a time, so memory does
    not grow with the audio's length when the chunks go straight to a video.
    """
    if frames.ndim != 4 or frames.shape[0] == 0:
        raise ValueError("Input 'image' must be an IMAGE batch with at least one frame.")
    if not 1.0 <= fps <= 120.0:
        raise ValueError(f"Input 'fps' must be between 1 and 120, got {fps}.")
    if method not in ("auto", "wav2lip", "energy"):
        raise ValueError(f"Unknown lip-sync method {method!r}; choose auto, wav2lip or energy.")
    duration = samples.size / rate
    n = max(1, int(math.ceil(duration * fps)))
    h, w = frames.shape[1:3]
    report = {"frames": n, "fps": fps, "duration_s": round(duration, 3), "source_frames": int(frames.shape[0])}
    if mouth_box.strip():
        box, report["mouth_source"] = parse_box(mouth_box, w, h), "mouth_box input"
    else:
        box, why = mouth_from_landmarks(frames[0])
        if box is None:
            raise ValueError(f"No mouth position: {why}. Give the mouth box as 'x,y,w,h' in input 'mouth_box'.")
        report["mouth_source"] = why
    report["mouth_box"] = [int(v) for v in box]
    progress = bridge.ProgressBar(n, "lip sync")
    use_wav2lip = method == "wav2lip"
    if method == "auto":
        from .wav2lip import checkpoint_path

        try:
            checkpoint_path(checkpoint)
            use_wav2lip = True
        except bridge.MissingModel as exc:
            report["wav2lip_unavailable"] = str(exc)
    if use_wav2lip:
        from . import wav2lip

        face = face_box_from_mouth(box, w, h)
        report.update(method="wav2lip", face_box=list(face))
        return report, wav2lip.iter_run(frames, n, face, samples, rate, fps, checkpoint, batch=chunk,
                                        progress=progress)
    opening = openness_per_frame(samples, rate, fps, n)
    report.update(method="energy", mean_openness=round(float(opening.mean()), 4),
                  max_openness=round(float(opening.max()), 4))

    def chunks():
        for start in range(0, n, chunk):
            idx = range(start, min(n, start + chunk))
            out = np.stack([draw_mouth(frames[i % frames.shape[0]], box, float(opening[i])) for i in idx])
            progress.update(len(idx))
            yield out

    return report, chunks()


def lip_sync(frames: np.ndarray, samples: np.ndarray, rate: int, fps: float, method: str = "auto",
             mouth_box: str = "", checkpoint: str = "") -> tuple[np.ndarray, dict]:
    """frames uint8 [B,H,W,3] (looped to the audio length) -> (uint8 [N,H,W,3], report); for short clips.

    Every frame is held in memory here; `lip_sync_video` streams to a file instead.
    """
    report, chunks = plan_lip_sync(frames, samples, rate, fps, method, mouth_box, checkpoint)
    return np.concatenate(list(chunks)), report


def lip_sync_video(frames: np.ndarray, audio: dict, fps: float, method: str = "auto", mouth_box: str = "",
                   checkpoint: str = ""):
    """(STUDIO_VIDEO with the speech muxed in, report): frames encoded chunk by chunk as they are made."""
    from .. import video_io as vio
    from .audio import from_audio

    samples, rate = from_audio(audio)
    report, chunks = plan_lip_sync(frames, samples, rate, fps, method, mouth_box, checkpoint)
    video = vio.write_video(chunks, fps, vio.temp_video_path("lipsync"), audio=audio)
    report["video_frames"] = video.frame_count
    return video, report


# The inputs of both Lip Sync nodes (IMAGE output, and streamed to a video file).
LIP_SYNC_INPUTS = {
    "image": ("IMAGE",),
    "audio": ("AUDIO",),
    "fps": ("FLOAT", {"default": 24.0, "min": 1.0, "max": 120.0, "step": 1.0}),
    "method": (["auto", "wav2lip", "energy"], {"default": "auto"}),
    "mouth_box": ("STRING", {"default": "", "tooltip": "x,y,w,h (pixels or 0-1); empty = face landmarks"}),
    "checkpoint": ("STRING", {"default": "", "tooltip": "file in models/wav2lip; empty = first found"}),
}


class LipSyncVideo:
    CATEGORY = "Animation Studio/voice"
    RETURN_TYPES = ("STUDIO_VIDEO", "STRING")
    RETURN_NAMES = ("video", "report")
    FUNCTION = "run"
    DESCRIPTION = ("Lip Sync streamed to a video file with the speech as its sound: frames are encoded as they are "
                   "made, so memory stays flat however long the speech (Lip Sync's IMAGE output holds every frame).")

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": dict(LIP_SYNC_INPUTS)}

    def run(self, image, audio, fps, method, mouth_box, checkpoint):
        import json

        from ..core import image_to_numpy

        video, report = lip_sync_video(image_to_numpy(image), audio, fps, method, mouth_box, checkpoint)
        return (video, json.dumps(report))
