"""Video nodes: load/save, converters, scenes, retiming (slow motion, ramps, interpolation), comic timing, editing.

Every node passes a file-backed `VideoFile` ("STUDIO_VIDEO") and streams frames
in uint8 chunks through `video_io`, so memory stays bounded by a few frames
whatever the clip length. Sound travels inside the files and is re-cut to the
picture's length on every write, so it cannot drift.

Editing (concatenate, captions, picture-in-picture, composite) is done on the
same streamed chunks with numpy/PIL rather than MoviePy: MoviePy 2.2 pins
pillow<12 (the pack runs pillow 13) and decodes through its own ffmpeg binary,
which would be a second video backend. Those four nodes take an optional
`engine` input: "pyav" (default, the streamed path here) or "moviepy" (the same
edits through MoviePy's clip algebra, in moviepy_edit.py).
"""
from __future__ import annotations

import json
import logging
import math
import shutil
from pathlib import Path

from ..configs import paths
from . import bridge
from . import video_io as vio
from .video_io import SCENE_LIST_TYPE, VIDEO_TYPE, VideoFile

log = logging.getLogger("animation_studio.video")
CATEGORY = "Animation Studio/video"
INTERP_MODES = ["blend", "optical_flow", "learned"]
AUDIO_MODES = ["stretch", "mute", "replace"]
CHUNK = 16


def _np():
    import numpy as np

    return np


def _cv2():
    return bridge.require("cv2", "video", "opencv-python-headless")


# ================================================================ plain functions
def _audio_segment(video: VideoFile, t0: float, t1: float):
    """(wave [C,T], rate) of video's sound between two times, or None when it has none."""
    if not video.has_audio:
        return None
    wave, rate = vio.decode_audio(video.path)
    return wave[:, int(round(t0 * rate)):int(round(t1 * rate))], rate


def transcode(video: VideoFile, start: int = 0, end: int | None = None, stride: int = 1,
              max_size: int | None = None, stem: str = "clip", audio="keep") -> VideoFile:
    """A new temp file with frames start..end (every stride-th) at fps/stride, its sound cut to match."""
    end = video.frame_count if end is None else min(int(end), video.frame_count)
    if start >= end:
        raise ValueError(f"Empty frame range {start}..{end}: the clip has {video.frame_count} frames.")
    sound = _audio_segment(video, start / video.fps, end / video.fps) if audio == "keep" else audio
    n_out = len(range(start, end, stride))
    bar = bridge.ProgressBar(n_out, "transcode")
    return vio.write_video(vio.iter_frames(video, start, end, stride, max_size, CHUNK), video.fps / stride,
                           vio.temp_video_path(stem), audio=sound, progress=bar)


def load_video(name: str, start_frame: int = 0, frame_count: int = 0, stride: int = 1,
               max_size: int = 0) -> VideoFile:
    """Probe a file of the input folder; re-encode only when a range, stride, resize or VFR needs it."""
    path = bridge.safe_input_path(name)
    video = vio.probe(path)
    if start_frame >= video.frame_count:
        raise ValueError(f"start_frame {start_frame} is past the end of {Path(name).name!r}, "
                         f"which has {video.frame_count} frames.")
    end = video.frame_count if frame_count <= 0 else start_frame + frame_count
    if end > video.frame_count:
        log.warning("%s has %d frames; the requested range %d..%d is cut to the clip's end.",
                    name, video.frame_count, start_frame, end)
        end = video.frame_count
    too_big = max_size and max(video.width, video.height) > max_size
    odd = video.width % 2 or video.height % 2
    if start_frame == 0 and end == video.frame_count and stride == 1 and not too_big and not odd \
            and not video.variable_rate and not video.missing_frames and Path(path).suffix.lower() == ".mp4":
        return video
    return transcode(video, start_frame, end, stride, max_size or None, stem=Path(name).stem)


def _is_h264_mp4(path) -> bool:
    av = bridge.require("av", "video")
    if Path(path).suffix.lower() != ".mp4":
        return False
    with av.open(str(path)) as c:
        return bool(c.streams.video) and c.streams.video[0].codec_context.name == "h264" \
            and c.streams.video[0].codec_context.pix_fmt == "yuv420p"


def save_video(video: VideoFile, filename_prefix: str, fmt: str = "mp4", with_audio: bool = True,
               audio: dict | None = None) -> Path:
    """Write the clip into the output folder (never overwriting); copies the file when nothing changes."""
    codec = {"mp4": "h264", "webm": "vp9", "gif": "gif"}.get(fmt)
    if codec is None:
        raise ValueError(f"SaveVideo: input 'format' must be mp4, webm or gif; got {fmt!r}.")
    out = paths.save_path(bridge.output_directory(), filename_prefix, vio.CODECS[codec]["suffix"], node="SaveVideo")
    if codec == "h264" and audio is None and (with_audio or not video.has_audio) and not video.missing_frames \
            and _is_h264_mp4(video.path):
        part = paths.temp_sibling(out)
        try:
            with open(video.path, "rb") as src, open(part, "wb") as dst:
                shutil.copyfileobj(src, dst)
            paths.replace_reserved(part, out)
        except BaseException:
            out.unlink(missing_ok=True)
            raise
        finally:
            part.unlink(missing_ok=True)
        return out
    sound = None
    if with_audio:
        sound = audio if audio is not None else (vio.decode_audio(video.path) if video.has_audio else None)
    try:
        vio.write_video(vio.iter_frames(video, chunk=CHUNK), video.fps, out, audio=sound, codec=codec,
                        progress=bridge.ProgressBar(video.frame_count, "save video"))
    except BaseException:
        out.unlink(missing_ok=True)  # drop the empty name reservation
        raise
    return out


def images_to_video(images, fps: float, audio: dict | None = None, stem: str = "images") -> VideoFile:
    from .core import image_to_numpy

    if images is None or len(images) == 0:
        raise ValueError("images is empty: nothing to turn into a video.")

    def chunks():
        for i in range(0, len(images), CHUNK):
            yield image_to_numpy(images[i:i + CHUNK])

    return vio.write_video(chunks(), fps, vio.temp_video_path(stem), audio=audio)


# ---------------------------------------------------------------- interpolation engines
LEARNED_ALIGN = 64  # FILM pads frames to a multiple of this (film_net's six 2x downsamplings)
class Interpolator:
    """Makes the picture at fraction w between two frames; one instance per pair stream."""

    def __init__(self, mode: str, model_name: str = ""):
        if mode not in INTERP_MODES:
            raise ValueError(f"Unknown interpolation mode {mode!r}; use one of {INTERP_MODES}.")
        self.mode = mode
        self._pair = None  # (id a, id b) the cached flow belongs to
        self._flows = None
        self._model = load_interpolation_model(model_name) if mode == "learned" else None

    def __call__(self, a, b, w: float, pair_key=None):
        """pair_key names the (a, b) pair (e.g. a's frame index) so optical flow is computed once per pair."""
        if w <= 1e-3 or b is None:
            return a
        if w >= 1 - 1e-3:
            return b
        if self.mode == "blend":
            cv2 = _cv2()
            return cv2.addWeighted(a, 1.0 - w, b, w, 0.0)
        if self.mode == "optical_flow":
            return self._flow(a, b, w, pair_key)
        return self._learned(a, b, w)

    def _flow(self, a, b, w, key):
        # Linear-motion approximation (as in Super SloMo): F_t->a ~ w*F_b->a, F_t->b ~ (1-w)*F_a->b.
        np, cv2 = _np(), _cv2()
        if key is None or self._pair != key:
            ga, gb = cv2.cvtColor(a, cv2.COLOR_RGB2GRAY), cv2.cvtColor(b, cv2.COLOR_RGB2GRAY)
            dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_FAST)
            self._flows = (dis.calc(ga, gb, None), dis.calc(gb, ga, None))
            self._pair = key
        f_ab, f_ba = self._flows
        h, wd = a.shape[:2]
        grid = np.dstack(np.meshgrid(np.arange(wd, dtype=np.float32), np.arange(h, dtype=np.float32)))
        w = float(w)  # a numpy float64 would promote the maps to float64, which remap refuses
        map_a = grid + w * f_ba
        map_b = grid + (1 - w) * f_ab
        wa = cv2.remap(a, map_a, None, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        wb = cv2.remap(b, map_b, None, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        return cv2.addWeighted(wa, 1.0 - w, wb, w, 0.0)

    def _learned(self, a, b, w):
        np = _np()
        torch = bridge.require("torch", "video")
        h, wd = a.shape[:2]
        # FILM's own loader pads every frame with zeros, centred, to a multiple of 64 (its feature pyramid
        # halves the size six times) and crops the result back; a frame of another size would misalign.
        ph, pw = -h % LEARNED_ALIGN, -wd % LEARNED_ALIGN
        top, left = ph // 2, pw // 2
        with torch.inference_mode():
            ta, tb = (torch.nn.functional.pad(torch.from_numpy(x).permute(2, 0, 1)[None].float() / 255.0,
                                              (left, pw - left, top, ph - top)) for x in (a, b))
            out = self._model(ta, tb, torch.full((1, 1), float(w)))
            out = out[0] if isinstance(out, (tuple, list)) else out
            out = out[..., top:top + h, left:left + wd]
        return (out[0].permute(1, 2, 0).clamp(0, 1).numpy() * 255 + 0.5).astype(np.uint8)


def load_interpolation_model(name: str):
    """A TorchScript frame interpolator from models/frame_interpolation: model(img0, img1, t[B,1]) -> img.

    This is the call convention of the FILM TorchScript export (film_net_fp32.pt);
    RIFE checkpoints must be exported to TorchScript with the same signature.
    """
    if not name:
        found = bridge.list_models("frame_interpolation", (".pt", ".pth", ".torchscript"))
        if not found:
            raise bridge.MissingModel(
                "The 'learned' interpolation mode needs a TorchScript model (e.g. film_net_fp32.pt) in the "
                f"'frame_interpolation' models folder ({', '.join(map(str, bridge.model_folders('frame_interpolation')))}); "
                "use mode 'blend' or 'optical_flow' without one.")
        name = found[0]
    path = bridge.find_model("frame_interpolation", name)
    torch = bridge.require("torch", "video")
    try:
        model = torch.jit.load(str(path), map_location="cpu")
    except Exception as exc:  # noqa: BLE001 - torch raises many types for a bad archive
        raise ValueError(f"{path.name} is not a TorchScript frame interpolation model: {exc}") from None
    return model.eval()


def retime(video: VideoFile, positions, out_fps: float, mode: str = "blend", model_name: str = "",
           audio=None, zoom=None, stem: str = "retimed") -> VideoFile:
    """The one retiming engine: output frame k shows source position positions[k] (in frames, fractional).

    Positions must not decrease (slow motion, ramps, interpolation, freezes).
    zoom, when given, is a per-output-frame (scale, cx, cy) for punch-ins.
    """
    np = _np()
    positions = np.asarray(positions, dtype=np.float64)
    if len(positions) == 0:
        raise ValueError("The retimed clip would have no frames.")
    if np.any(np.diff(positions) < -1e-9):
        raise ValueError("Retiming positions must not go backwards.")
    positions = np.clip(positions, 0, video.frame_count - 1)
    bar = bridge.ProgressBar(len(positions), "retime")
    if mode == "blend" and zoom is None and video.width % 2 == 0 and video.height % 2 == 0:
        # Decode + blend in a thread ahead of the encoder, as the FFmpeg CLI overlaps its stages.
        return vio.write_video(vio.prefetch(_blend_pictures(video, positions)), out_fps, vio.temp_video_path(stem),
                               audio=audio, progress=bar)
    interp = Interpolator(mode, model_name)

    def source_frames():
        for chunk in vio.iter_frames(video, chunk=CHUNK):
            yield from chunk

    def frames():
        src = source_frames()
        a = next(src)
        b = next(src, None)
        ia = 0  # index of frame a
        batch = []
        for k, p in enumerate(positions):
            base = int(math.floor(p + 1e-9))
            while ia < base and b is not None:
                a, b, ia = b, next(src, None), ia + 1
            img = interp(a, b, p - ia, pair_key=ia) if ia == base else a
            if zoom is not None:
                img = punch_in(img, *zoom[k])
            batch.append(img)
            if len(batch) == CHUNK:
                yield np.stack(batch)
                batch = []
        if batch:
            yield np.stack(batch)

    return vio.write_video(frames(), out_fps, vio.temp_video_path(stem), audio=audio, progress=bar)


def _blend_pictures(video: VideoFile, positions):
    """Blend-mode retiming on the decoder's YUV 4:2:0 planes: lists of av.VideoFrame for write_video.

    Same pictures as Interpolator("blend") (a linear mix commutes with the linear
    YUV<->RGB matrix), but half the bytes to mix, no swscale round trip to RGB and
    back, and no per-frame array copies: source pictures go to the encoder as
    decoded, and each in-between is mixed straight into a fresh frame's planes.
    """
    av = bridge.require("av", "video")
    cv2 = _cv2()

    def yuv(picture):
        if picture is None or picture.format.name == "yuv420p":
            return picture
        return picture.reformat(format="yuv420p")

    src = vio.iter_pictures(video)
    a, b, ia = yuv(next(src)), yuv(next(src, None)), 0  # ia: index of picture a
    batch = []
    for p in positions:
        base = int(math.floor(p + 1e-9))
        while ia < base and b is not None:
            a, b, ia = b, yuv(next(src, None)), ia + 1
        w = p - ia if ia == base else 0.0
        if w <= 1e-3 or b is None:
            picture = a
        elif w >= 1 - 1e-3:
            picture = b
        else:
            # A new frame per in-between: the encoder may still hold a reference to the previous one.
            picture = av.VideoFrame(a.width, a.height, "yuv420p")
            for pa, pb, out in zip(a.planes, b.planes, picture.planes):
                cv2.addWeighted(vio.plane_array(pa), 1.0 - w, vio.plane_array(pb), w, 0.0, dst=vio.plane_array(out))
        batch.append(picture)
        if len(batch) == CHUNK:
            yield batch
            batch = []
    if batch:
        yield batch


def _retimed_audio(video: VideoFile, audio_mode: str, replacement, speed_pieces):
    """The sound for a retimed clip: stretched piecewise (pitch kept), muted, or replaced."""
    np = _np()
    if audio_mode == "mute":
        return None
    if audio_mode == "replace":
        if replacement is None:
            raise ValueError("audio_mode 'replace' needs the audio input connected.")
        return replacement
    if audio_mode != "stretch":
        raise ValueError(f"Unknown audio_mode {audio_mode!r}; use one of {AUDIO_MODES}.")
    if not video.has_audio:
        return None
    wave, rate = vio.decode_audio(video.path)
    parts = []
    for t0, t1, speed in speed_pieces:
        if speed <= 0:  # a freeze: silence for the held time
            parts.append(np.zeros((wave.shape[0], int(round(t1 * rate)) - int(round(t0 * rate))), np.float32))
            continue
        piece = wave[:, int(round(t0 * rate)):int(round(t1 * rate))]
        if piece.shape[1] == 0:
            continue
        parts.append(vio.time_stretch(piece, rate, speed))
    return (np.concatenate(parts, axis=1) if parts else wave[:, :0]), rate


def slow_motion(video: VideoFile, factor: float, mode: str = "blend", audio_mode: str = "stretch",
                audio=None, model_name: str = "") -> VideoFile:
    """Constant speed factor (0.25 = four times slower) at the same frame rate."""
    np = _np()
    if not 0.01 <= factor <= 100:
        raise ValueError(f"factor must be between 0.01 and 100; got {factor}.")
    n_out = max(1, int(round(video.frame_count / factor)))
    positions = np.arange(n_out) * factor
    sound = _retimed_audio(video, audio_mode, audio, [(0.0, video.duration, factor)])
    return retime(video, positions, video.fps, mode, model_name, sound, stem="slowmo")


def interpolate_frames(video: VideoFile, target_fps: float, mode: str = "blend", model_name: str = "") -> VideoFile:
    """Frame-rate conversion (12 -> 24 fps ...) with in-between pictures; duration and sound unchanged."""
    np = _np()
    if target_fps <= 0:
        raise ValueError(f"target_fps must be positive; got {target_fps}.")
    n_out = max(1, int(round(video.duration * target_fps)))
    positions = np.arange(n_out) * (video.fps / target_fps)
    sound = vio.decode_audio(video.path) if video.has_audio else None
    return retime(video, positions, target_fps, mode, model_name, sound, stem="interp")


def ease(x, curve: str):
    np = _np()
    x = np.clip(x, 0.0, 1.0)
    if curve == "linear":
        return x
    if curve == "ease_in":
        return x * x
    if curve == "ease_out":
        return 1 - (1 - x) ** 2
    return x * x * (3 - 2 * x)  # ease_in_out (smoothstep)


def ramp_speed(t, start: float, end: float, speed: float, ramp: float, curve: str):
    """Speed at source time t: 1 outside [start,end], `speed` inside, eased over `ramp` seconds at each edge."""
    np = _np()
    t = np.asarray(t, dtype=np.float64)
    ramp = max(min(ramp, (end - start) / 2), 1e-6)
    into = ease((t - start) / ramp, curve)
    out_of = ease((end - t) / ramp, curve)
    amount = np.where(t < start, 0.0, np.where(t > end, 0.0, np.minimum(into, out_of)))
    return 1.0 + (speed - 1.0) * amount


def speed_ramp(video: VideoFile, start: float, end: float, speed: float, ramp: float, curve: str = "ease_in_out",
               mode: str = "blend", audio_mode: str = "stretch", audio=None, model_name: str = "") -> VideoFile:
    """Ease from normal speed into `speed` at `start`, and back out by `end` (a dramatic slow-motion moment)."""
    np = _np()
    if not 0 <= start < end:
        raise ValueError(f"Need 0 <= start < end; got start={start}, end={end}.")
    if not 0.01 <= speed <= 100:
        raise ValueError(f"speed must be between 0.01 and 100; got {speed}.")
    # Output time as a function of source time: integrate dt_out = dt_src / speed(t_src).
    grid = np.linspace(0.0, video.duration, max(2, int(video.duration * 1000)) + 1)
    speeds = ramp_speed(grid, start, end, speed, ramp, curve)
    t_out = np.concatenate([[0.0], np.cumsum(np.diff(grid) / ((speeds[1:] + speeds[:-1]) / 2))])
    n_out = max(1, int(round(t_out[-1] * video.fps)))
    positions = np.interp(np.arange(n_out) / video.fps, t_out, grid) * video.fps
    # Sound: pieces of ~0.1 s source time, each stretched by its mean speed.
    edges = np.unique(np.concatenate([np.arange(0.0, video.duration, 0.1), [video.duration]]))
    pieces = [(a, b, float(ramp_speed((a + b) / 2, start, end, speed, ramp, curve))) for a, b in zip(edges[:-1], edges[1:])]
    sound = _retimed_audio(video, audio_mode, audio, _merge_pieces(pieces))
    return retime(video, positions, video.fps, mode, model_name, sound, stem="ramp")


def _merge_pieces(pieces):
    """Join neighbouring audio pieces of (nearly) equal speed so constant stretches are stretched in one go."""
    merged = []
    for a, b, s in pieces:
        if merged and abs(merged[-1][2] - s) < 1e-3:
            merged[-1] = (merged[-1][0], b, merged[-1][2])
        else:
            merged.append((a, b, s))
    return merged


def punch_in(img, scale: float, cx: float, cy: float):
    """Zoom into (cx, cy) (fractions of the picture) by `scale`, same output size."""
    if scale <= 1.0001:
        return img
    cv2 = _cv2()
    h, w = img.shape[:2]
    cw, ch = w / scale, h / scale
    x0 = min(max(cx * w - cw / 2, 0), w - cw)
    y0 = min(max(cy * h - ch / 2, 0), h - ch)
    crop = img[int(y0):int(round(y0 + ch)), int(x0):int(round(x0 + cw))]
    return cv2.resize(crop, (w, h), interpolation=cv2.INTER_CUBIC)


def freeze_frame(video: VideoFile, at: float, hold: float, zoom: float = 1.3, zoom_time: float = 0.2,
                 center_x: float = 0.5, center_y: float = 0.5, audio_mode: str = "stretch", audio=None) -> VideoFile:
    """Hold the picture at `at` for `hold` seconds with a quick punch-in zoom (comic timing); sound pauses too."""
    np = _np()
    if not 0 <= at <= video.duration:
        raise ValueError(f"at={at} s is outside the clip (0..{video.duration:.2f} s).")
    if hold <= 0:
        raise ValueError(f"hold must be positive; got {hold}.")
    f_at = min(int(round(at * video.fps)), video.frame_count - 1)
    n_hold = max(1, int(round(hold * video.fps)))
    positions = np.concatenate([np.arange(f_at + 1), np.full(n_hold, f_at), np.arange(f_at + 1, video.frame_count)])
    zoom_frames = max(1, int(round(zoom_time * video.fps)))
    scales = np.ones(len(positions))
    held = 1 + (zoom - 1) * ease(np.arange(1, n_hold + 1) / zoom_frames, "ease_out")
    scales[f_at + 1:f_at + 1 + n_hold] = held
    zooms = [(s, center_x, center_y) for s in scales]
    t_at = (f_at + 1) / video.fps
    sound = _retimed_audio(video, audio_mode, audio,
                           [(0.0, t_at, 1.0), (t_at, t_at + n_hold / video.fps, 0.0), (t_at, video.duration, 1.0)])
    return retime(video, positions, video.fps, "blend", "", sound, zoom=zooms, stem="freeze")


# ---------------------------------------------------------------- scenes
def detect_scenes(video: VideoFile, detector: str = "content", threshold: float = 27.0, min_scene_len: float = 0.5,
                  analysis_size: int = 256) -> dict:
    """PySceneDetect over downscaled streamed frames -> SCENE_LIST {fps, frame_count, scenes: [[start, end), ...]}."""
    cv2 = _cv2()
    sd = bridge.require("scenedetect", "video")
    from scenedetect.common import FrameTimecode

    min_len = max(1, int(round(min_scene_len * video.fps)))
    if detector == "content":
        det = sd.ContentDetector(threshold=threshold, min_scene_len=min_len)
    elif detector == "adaptive":
        det = sd.AdaptiveDetector(adaptive_threshold=threshold, min_scene_len=min_len)
    else:
        raise ValueError(f"Unknown detector {detector!r}; use 'content' or 'adaptive'.")
    bar = bridge.ProgressBar(video.frame_count, "detect scenes")
    cuts, i = [], 0
    for chunk in vio.iter_frames(video, max_size=analysis_size, chunk=32):
        for img in chunk:
            tc = FrameTimecode(i, video.fps)
            cuts += [c.frame_num for c in det.process_frame(tc, cv2.cvtColor(img, cv2.COLOR_RGB2BGR))]
            i += 1
        bar.update(len(chunk))
    if hasattr(det, "post_process"):
        cuts += [c.frame_num for c in det.post_process(FrameTimecode(i, video.fps))]
    bounds = [0] + sorted(c for c in set(cuts) if 0 < c < i) + [i]
    scenes = [[a, b] for a, b in zip(bounds[:-1], bounds[1:]) if b > a]
    return {"fps": video.fps, "frame_count": i, "path": video.path, "scenes": scenes}


def scene_activity(video: VideoFile, scene_list: dict, analysis_size: int = 128) -> list[float]:
    """Mean absolute difference between consecutive frames inside each scene (how much happens)."""
    np = _np()
    sums = [0.0] * len(scene_list["scenes"])
    counts = [0] * len(scene_list["scenes"])
    prev, i, s = None, 0, 0
    scenes = scene_list["scenes"]
    bar = bridge.ProgressBar(video.frame_count, "scene activity")
    for chunk in vio.iter_frames(video, max_size=analysis_size, chunk=32):
        for img in chunk:
            while s < len(scenes) - 1 and i >= scenes[s][1]:
                s, prev = s + 1, None
            cur = img.astype(np.int16)
            if prev is not None:
                sums[s] += float(np.abs(cur - prev).mean())
                counts[s] += 1
            prev, i = cur, i + 1
        bar.update(len(chunk))
    return [a / c if c else 0.0 for a, c in zip(sums, counts)]


def parse_scores(text: str) -> list[float]:
    text = (text or "").strip()
    if not text:
        return []
    try:
        values = json.loads(text) if text.startswith("[") else [float(x) for x in text.replace(";", ",").split(",") if x.strip()]
        return [float(v) for v in values]
    except (ValueError, TypeError):
        raise ValueError(f"scores must be a list of numbers like '0.2, 0.9, 0.4'; got {text[:60]!r}.") from None


def pick_scene(video: VideoFile, scene_list: dict, by: str, index: int = 0, scores: str = "") -> tuple[int, list[int]]:
    scenes = scene_list.get("scenes") or []
    if not scenes:
        raise ValueError("The scene list is empty.")
    if by == "index":
        if not -len(scenes) <= index < len(scenes):
            raise ValueError(f"Scene index {index} is out of range: there are {len(scenes)} scenes.")
        chosen = index % len(scenes)
    elif by == "most_active":
        activity = scene_activity(video, scene_list)
        chosen = max(range(len(scenes)), key=lambda k: activity[k])
    elif by == "score":
        values = parse_scores(scores)
        if len(values) != len(scenes):
            raise ValueError(f"scores has {len(values)} numbers but there are {len(scenes)} scenes.")
        chosen = max(range(len(scenes)), key=lambda k: values[k])
    else:
        raise ValueError(f"Unknown 'by' {by!r}.")
    return chosen, scenes[chosen]


# ---------------------------------------------------------------- editing
def _resampled_frames(video: VideoFile, fps: float, size: tuple[int, int]):
    """Frames of `video` at another rate (nearest picture) and size (w, h), one by one."""
    np, cv2 = _np(), _cv2()
    n_out = max(1, int(round(video.duration * fps)))
    wanted = np.minimum((np.arange(n_out) * video.fps / fps + 1e-6).astype(int), video.frame_count - 1)
    k, i = 0, 0
    for chunk in vio.iter_frames(video, chunk=CHUNK):
        for img in chunk:
            if (img.shape[1], img.shape[0]) != size:
                img = cv2.resize(img, size, interpolation=cv2.INTER_AREA)
            while k < n_out and wanted[k] == i:
                yield img
                k += 1
            i += 1
    while k < n_out:  # a short source: hold its last picture
        yield img
        k += 1


def _track(video: VideoFile, channels: int = 2, rate: int = 48000):
    """float32 [C,T] sound of a clip at a common rate/channel count (silence when it has none)."""
    np = _np()
    n = int(round(video.duration * rate))
    if not video.has_audio:
        return np.zeros((channels, n), np.float32)
    wave, _ = vio.decode_audio(video.path, sample_rate=rate)
    wave = vio.to_channels(wave, channels)  # a downmix: the first two of 5.1 would drop the centre (the voice)
    return vio.fit_length(wave, n)


def concatenate(a: VideoFile, b: VideoFile, transition: str = "crossfade", duration: float = 0.5) -> VideoFile:
    """a then b (b resized/re-timed to a's size and rate), joined by a cut, crossfade, fade through black or wipe."""
    np = _np()
    fps, size = a.fps, (a.width, a.height)
    n_tr = 0 if transition == "cut" else int(round(min(duration, a.duration, b.duration) * fps))
    n_a = a.frame_count
    bar = bridge.ProgressBar(n_a + int(round(b.duration * fps)) - n_tr, "concatenate")

    def mix(fa, fb, w):
        if transition == "crossfade":
            return (fa * (1 - w) + fb * w).astype(np.uint8)
        if transition == "fade_black":
            return (fa * max(0.0, 1 - 2 * w)).astype(np.uint8) if w < 0.5 else (fb * (2 * w - 1)).astype(np.uint8)
        if transition == "wipe":
            out = fa.copy()
            x = int(round(w * fa.shape[1]))
            out[:, :x] = fb[:, :x]
            return out
        raise ValueError(f"Unknown transition {transition!r}.")

    def frames():
        src_a = (img for chunk in vio.iter_frames(a, chunk=CHUNK) for img in chunk)
        src_b = _resampled_frames(b, fps, size)
        batch = []
        for k, img in enumerate(src_a):
            if k >= n_a - n_tr:
                w = (k - (n_a - n_tr) + 1) / (n_tr + 1)
                img = mix(img.astype(np.float32), next(src_b).astype(np.float32), w)
            batch.append(img)
            if len(batch) == CHUNK:
                yield np.stack(batch)
                batch = []
        for img in src_b:
            batch.append(img)
            if len(batch) == CHUNK:
                yield np.stack(batch)
                batch = []
        if batch:
            yield np.stack(batch)

    rate = 48000
    sound = None
    if a.has_audio or b.has_audio:
        ta, tb = _track(a, rate=rate), _track(b, rate=rate)
        overlap = int(round(n_tr / fps * rate))
        if overlap:
            fade = np.linspace(0, 1, overlap, dtype=np.float32)
            ta[:, -overlap:] = ta[:, -overlap:] * (1 - fade) + tb[:, :overlap] * fade
            tb = tb[:, overlap:]
        sound = (np.concatenate([ta, tb], axis=1), rate)
    return vio.write_video(frames(), fps, vio.temp_video_path("concat"), audio=sound, progress=bar)


def render_text(text: str, width: int, height: int, font_size: int, position: str, color: str = "#ffffff",
                box: bool = True, outline: int = -1, node: str = "BurnCaption"):
    """An RGBA [H,W,4] overlay with the text (wrapped to the width), an optional dark box behind it and an
    outline (fonts.outline_width: automatic = only without a box) in the caption font (fonts.py)."""
    np = _np()
    from PIL import Image, ImageColor, ImageDraw, ImageFilter

    from . import fonts

    fonts.check_text(text, node)
    font = fonts.load_font(font_size)
    canvas = Image.new("RGBA", (width, height), (0, 0, 0, 0))
    draw = ImageDraw.Draw(canvas)
    lines, words = [], text.split()
    line = ""
    for word in words:
        trial = f"{line} {word}".strip()
        if line and draw.textlength(trial, font=font) > width * 0.9:
            lines.append(line)
            line = word
        else:
            line = trial
    if line:
        lines.append(line)
    block = "\n".join(lines) or " "
    x0, y0, x1, y1 = draw.multiline_textbbox((0, 0), block, font=font, align="center")
    tw, th = x1 - x0, y1 - y0
    margin = max(4, height // 20)
    x = (width - tw) // 2
    y = {"top": margin, "center": (height - th) // 2}.get(position, height - th - margin)
    try:
        rgb = ImageColor.getrgb(color)[:3]
    except ValueError as exc:
        raise ValueError(f"Bad text colour {color!r}: {exc}") from None
    if box:
        pad = max(2, font_size // 4)
        draw.rectangle((x - pad, y - pad, x + tw + pad, y + th + pad), fill=(0, 0, 0, 150))
    stroke = fonts.outline_width(outline, font_size, box)
    edge = fonts.outline_colour(rgb)
    if stroke:
        # A soft dark halo (the letters drawn `stroke` px fatter, blurred) under a crisp thin outline: the
        # letters read as light shapes on a dark ground even over a bright sky, for eyes and for OCR alike.
        halo = Image.new("RGBA", canvas.size, edge + (0,))
        ImageDraw.Draw(halo).multiline_text((x - x0, y - y0), block, font=font, fill=edge + (255,), align="center",
                                            stroke_width=stroke, stroke_fill=edge + (255,))
        halo = halo.filter(ImageFilter.GaussianBlur(stroke / 2))
        canvas = Image.alpha_composite(canvas, halo)
        draw = ImageDraw.Draw(canvas)
    draw.multiline_text((x - x0, y - y0), block, font=font, fill=rgb + (255,), align="center",
                        stroke_width=max(1, stroke // 3) if stroke else 0, stroke_fill=edge + (255,))
    return np.asarray(canvas)


def _map_frames(video: VideoFile, fn, stem: str, audio="keep") -> VideoFile:
    """Apply fn(frame_index, uint8 [H,W,3]) -> frame to every picture, streamed; sound kept."""
    np = _np()
    bar = bridge.ProgressBar(video.frame_count, stem)

    def frames():
        i = 0
        for chunk in vio.iter_frames(video, chunk=CHUNK):
            out = []
            for img in chunk:
                out.append(fn(i, img))
                i += 1
            yield np.stack(out)

    sound = (vio.decode_audio(video.path) if video.has_audio else None) if audio == "keep" else audio
    return vio.write_video(frames(), video.fps, vio.temp_video_path(stem), audio=sound, progress=bar)


def mux_audio(video: VideoFile, audio) -> VideoFile:
    """`audio` as the clip's sound: the encoded pictures copied (only the sound encoded), else re-encoded."""
    codec = vio.copyable_codec(video)
    if codec is not None:
        return vio.remux_with_audio(video, audio, vio.temp_video_path("mux", codec))
    return _map_frames(video, lambda i, img: img, "mux", audio=audio)


def burn_text(video: VideoFile, text: str, start: float = 0.0, end: float = 0.0, position: str = "bottom",
              font_size: int = 0, color: str = "#ffffff", box: bool = True, fade: float = 0.2,
              outline: int = -1) -> VideoFile:
    """Titles and captions burned into the picture between start and end (end 0 = to the clip's end)."""
    np = _np()
    size = font_size or max(10, video.height // 12)
    overlay = render_text(text, video.width + video.width % 2, video.height + video.height % 2, size, position, color,
                          box, outline)
    alpha = overlay[..., 3:4].astype(np.float32) / 255.0
    rgb = overlay[..., :3].astype(np.float32)
    end = end if end > 0 else video.duration

    def draw(i, img):
        t = i / video.fps
        if not start <= t < end:
            return img
        strength = min(1.0, (t - start) / fade, (end - t) / fade) if fade > 0 else 1.0
        a = alpha[:img.shape[0], :img.shape[1]] * strength
        return (img * (1 - a) + rgb[:img.shape[0], :img.shape[1]] * a).astype(np.uint8)

    return _map_frames(video, draw, "caption")


def picture_in_picture(main: VideoFile, inset: VideoFile, scale: float = 0.3, corner: str = "bottom_right",
                       margin: float = 0.03, start: float = 0.0, border: int = 2) -> VideoFile:
    """`inset` shrunk into a corner of `main` from `start` on; main's sound is kept."""
    w = max(2, int(main.width * scale)) // 2 * 2
    h = max(2, int(w * inset.height / inset.width)) // 2 * 2
    m = int(margin * min(main.width, main.height))
    x = m if "left" in corner else main.width - w - m
    y = m if "top" in corner else main.height - h - m
    src = _resampled_frames(inset, main.fps, (w, h))
    first = int(round(start * main.fps))

    def draw(i, img):
        if i < first:
            return img
        small = next(src, None)
        if small is None:
            return img
        out = img.copy()
        if border:
            out[max(0, y - border):y + h + border, max(0, x - border):x + w + border] = 255
        out[y:y + h, x:x + w] = small
        return out

    return _map_frames(main, draw, "pip")


def composite_over(video: VideoFile, background, mask=None, key_color: str = "", tolerance: float = 0.25) -> VideoFile:
    """The clip over a background IMAGE, where a MASK (1 = keep the clip) or a colour key says so."""
    np, cv2 = _np(), _cv2()
    from PIL import ImageColor

    from .core import image_to_numpy

    bg = image_to_numpy(background)[0]
    bg = cv2.resize(bg, (video.width, video.height), interpolation=cv2.INTER_AREA).astype(np.float32)
    masks = None
    if mask is not None:
        masks = mask.detach().cpu().numpy() if hasattr(mask, "detach") else np.asarray(mask)
        masks = masks[None] if masks.ndim == 2 else masks
    elif key_color:
        key = np.array(ImageColor.getrgb(key_color)[:3], np.float32)
    else:
        raise ValueError("Give a mask or a key_color to composite over the background.")

    def draw(i, img):
        if masks is not None:
            a = masks[min(i, len(masks) - 1)]
            if a.shape != img.shape[:2]:
                a = cv2.resize(a.astype(np.float32), (img.shape[1], img.shape[0]))
        else:
            dist = np.linalg.norm(img.astype(np.float32) - key, axis=-1) / 441.7
            a = np.clip((dist - tolerance) / max(tolerance, 1e-3), 0, 1)
        a = a[..., None].astype(np.float32)
        return (img * a + bg * (1 - a)).astype(np.uint8)

    return _map_frames(video, draw, "composite")


# ================================================================ nodes
def _video_in(extra: dict | None = None) -> dict:
    return {"required": {"video": (VIDEO_TYPE,), **(extra or {})}}


ENGINES = ["pyav", "moviepy"]
# Optional with a default, so graphs saved before the input existed stay valid.
ENGINE_INPUT = {"engine": (ENGINES, {"default": "pyav",
                                     "tooltip": "pyav: the pack's streamed frames; moviepy: MoviePy clips (--no-deps install)"})}


def _edit_backend(engine: str):
    """The module whose concatenate/burn_text/picture_in_picture/composite_over do the edit."""
    if engine == "moviepy":
        from . import moviepy_edit

        return moviepy_edit
    if engine != "pyav":
        raise ValueError(f"engine must be one of {ENGINES}, got {engine!r}.")
    import sys

    return sys.modules[__name__]


class _VideoNode:
    CATEGORY = CATEGORY
    FUNCTION = "run"
    RETURN_TYPES = (VIDEO_TYPE,)
    RETURN_NAMES = ("video",)


class LoadVideo(_VideoNode):
    DESCRIPTION = ("Load a video file from the input folder as a streamed STUDIO_VIDEO: frame range, stride, max size; "
                   "variable frame rate is normalised to constant.")
    RETURN_TYPES = (VIDEO_TYPE, "FLOAT", "INT")
    RETURN_NAMES = ("video", "fps", "frame_count")

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "video": ("STRING", {"default": "clip.mp4"}),
            "start_frame": ("INT", {"default": 0, "min": 0, "max": 10_000_000}),
            "frame_count": ("INT", {"default": 0, "min": 0, "max": 10_000_000, "tooltip": "0 = to the end"}),
            "stride": ("INT", {"default": 1, "min": 1, "max": 1000}),
            "max_size": ("INT", {"default": 0, "min": 0, "max": 8192, "tooltip": "longest side; 0 = keep"}),
        }}

    @classmethod
    def VALIDATE_INPUTS(cls, video):
        try:
            bridge.safe_input_path(video)
        except (OSError, ValueError) as exc:
            return str(exc)
        return True

    def run(self, video, start_frame, frame_count, stride, max_size):
        v = load_video(video, start_frame, frame_count, stride, max_size)
        return (v, v.fps, v.frame_count)


class SaveVideo:
    CATEGORY = CATEGORY
    FUNCTION = "run"
    RETURN_TYPES = ()
    OUTPUT_NODE = True
    DESCRIPTION = "Save a video as MP4 (H.264 yuv420p), WebM (VP9) or GIF, with or without sound; never overwrites."

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"video": (VIDEO_TYPE,),
                             "filename_prefix": ("STRING", {"default": "animation_studio/video"}),
                             "format": (["mp4", "webm", "gif"],),
                             "with_audio": ("BOOLEAN", {"default": True})},
                "optional": {"audio": ("AUDIO",)}}

    def run(self, video, filename_prefix, format, with_audio, audio=None):
        path = save_video(video, filename_prefix, format, with_audio, audio)
        info = vio.probe(path)
        # As ComfyUI's own SaveVideo/SaveWEBM send it (ui.PreviewVideo): the frontend plays an `animated` entry
        # of `images` in its video preview on the node; a GIF (which a <video> cannot play) is shown as a picture.
        return {"ui": {"images": [bridge.ui_file_entry(path)], "animated": [format != "gif"],
                       "text": [json.dumps(info.as_dict())]}}


class VideoInfo:
    CATEGORY = CATEGORY
    FUNCTION = "run"
    RETURN_TYPES = ("FLOAT", "INT", "INT", "INT", "FLOAT", "BOOLEAN", "STRING")
    RETURN_NAMES = ("fps", "frame_count", "width", "height", "duration", "has_audio", "info_json")
    DESCRIPTION = "Frame rate, frame count, size, duration and sound of a video."

    @classmethod
    def INPUT_TYPES(cls):
        return _video_in()

    def run(self, video):
        return (video.fps, video.frame_count, video.width, video.height, video.duration, video.has_audio,
                json.dumps(video.as_dict()))


class VideoToImages:
    CATEGORY = CATEGORY
    FUNCTION = "run"
    RETURN_TYPES = ("IMAGE", "AUDIO", "FLOAT")
    RETURN_NAMES = ("images", "audio", "fps")
    DESCRIPTION = ("Decode part of a video into an IMAGE batch (for image nodes). max_frames caps memory: "
                   "a float32 1080p frame is ~24 MB.")

    @classmethod
    def INPUT_TYPES(cls):
        return _video_in({"start_frame": ("INT", {"default": 0, "min": 0, "max": 10_000_000}),
                          "max_frames": ("INT", {"default": 64, "min": 1, "max": 4096}),
                          "stride": ("INT", {"default": 1, "min": 1, "max": 1000}),
                          "max_size": ("INT", {"default": 0, "min": 0, "max": 8192})})

    def run(self, video, start_frame, max_frames, stride, max_size):
        from .core import numpy_to_image

        np = _np()
        if start_frame >= video.frame_count:
            raise ValueError(f"start_frame {start_frame} is past the end ({video.frame_count} frames).")
        end = min(video.frame_count, start_frame + max_frames * stride)
        frames = vio.read_frames(video, start=start_frame, end=end, stride=stride, max_size=max_size or None)
        if video.has_audio:
            wave, rate = vio.decode_audio(video.path)
            sound = vio.numpy_to_audio(wave[:, int(start_frame / video.fps * rate):int(end / video.fps * rate)], rate)
        else:
            sound = vio.numpy_to_audio(np.zeros((1, 0), np.float32), 44100)
        return (numpy_to_image(frames), sound, video.fps / stride)


class ImagesToVideo(_VideoNode):
    DESCRIPTION = "Encode an IMAGE batch (and optional AUDIO) into a STUDIO_VIDEO at a frame rate."

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"images": ("IMAGE",), "fps": ("FLOAT", {"default": 24.0, "min": 0.1, "max": 240.0})},
                "optional": {"audio": ("AUDIO",)}}

    def run(self, images, fps, audio=None):
        return (images_to_video(images, fps, audio),)


class VideoToComfyVideo:
    CATEGORY = CATEGORY
    FUNCTION = "run"
    RETURN_TYPES = ("VIDEO",)
    DESCRIPTION = "Hand a STUDIO_VIDEO to ComfyUI's core VIDEO nodes (needs ComfyUI's comfy_api)."

    @classmethod
    def INPUT_TYPES(cls):
        return _video_in()

    def run(self, video):
        api = bridge.require("comfy_api.latest", "video", "ComfyUI (comfy_api)")
        return (api.InputImpl.VideoFromFile(video.path),)


class ComfyVideoToVideo(_VideoNode):
    DESCRIPTION = "Turn ComfyUI's core VIDEO into a STUDIO_VIDEO (file-backed, streamed)."

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"comfy_video": ("VIDEO",)}}

    def run(self, comfy_video):
        source = comfy_video.get_stream_source() if hasattr(comfy_video, "get_stream_source") else None
        if isinstance(source, (str, Path)) and Path(source).is_file():
            return (vio.probe(source),)
        path = vio.temp_video_path("comfy")
        path.unlink()
        comfy_video.save_to(str(path))
        return (vio.probe(path),)


class TrimVideo(_VideoNode):
    DESCRIPTION = "Keep the part of a clip between two times (seconds); end 0 = to the end. Sound is cut with it."

    @classmethod
    def INPUT_TYPES(cls):
        return _video_in({"start": ("FLOAT", {"default": 0.0, "min": 0.0, "max": 1e6, "step": 0.01}),
                          "end": ("FLOAT", {"default": 0.0, "min": 0.0, "max": 1e6, "step": 0.01})})

    def run(self, video, start, end):
        first = int(round(start * video.fps))
        last = video.frame_count if end <= 0 else min(video.frame_count, int(round(end * video.fps)))
        if first >= video.frame_count:
            raise ValueError(f"start {start} s is past the end of the clip ({video.duration:.2f} s).")
        return (transcode(video, first, last, stem="trim"),)


class DetectScenes:
    CATEGORY = CATEGORY
    FUNCTION = "run"
    RETURN_TYPES = (SCENE_LIST_TYPE, "INT", "STRING")
    RETURN_NAMES = ("scenes", "scene_count", "scenes_json")
    DESCRIPTION = "Find the cuts with PySceneDetect (content or adaptive detector) -> a SCENE_LIST."

    @classmethod
    def INPUT_TYPES(cls):
        return _video_in({"detector": (["content", "adaptive"],),
                          "threshold": ("FLOAT", {"default": 27.0, "min": 0.1, "max": 255.0, "step": 0.1,
                                                  "tooltip": "content: 27 typical; adaptive: 3 typical"}),
                          "min_scene_len": ("FLOAT", {"default": 0.5, "min": 0.0, "max": 600.0, "step": 0.05})})

    def run(self, video, detector, threshold, min_scene_len):
        scenes = detect_scenes(video, detector, threshold, min_scene_len)
        return (scenes, len(scenes["scenes"]), json.dumps(scenes["scenes"]))


class PickScene:
    CATEGORY = CATEGORY
    FUNCTION = "run"
    RETURN_TYPES = (VIDEO_TYPE, "INT", "FLOAT", "FLOAT")
    RETURN_NAMES = ("video", "index", "start", "end")
    DESCRIPTION = ("Cut one scene out: the most active (frame difference), by index, or the highest of a score list "
                   "('0.2, 0.9, ...' one number per scene, e.g. from an evaluator).")

    @classmethod
    def INPUT_TYPES(cls):
        return _video_in({"scenes": (SCENE_LIST_TYPE,), "by": (["most_active", "index", "score"],),
                          "index": ("INT", {"default": 0, "min": -1000, "max": 100000}),
                          "scores": ("STRING", {"default": ""})})

    def run(self, video, scenes, by, index, scores):
        chosen, (a, b) = pick_scene(video, scenes, by, index, scores)
        return (transcode(video, a, b, stem=f"scene{chosen}"), chosen, a / video.fps, b / video.fps)


def _retime_inputs(extra: dict) -> dict:
    return {"required": {"video": (VIDEO_TYPE,), **extra, "mode": (INTERP_MODES,), "audio_mode": (AUDIO_MODES,)},
            "optional": {"audio": ("AUDIO",),
                         "model_name": ("STRING", {"default": "", "tooltip": "TorchScript file in models/frame_interpolation (learned mode)"})}}


class SlowMotion(_VideoNode):
    DESCRIPTION = ("Constant slow (or fast) motion, e.g. 0.25 for dramatic slow-mo; in-betweens by blending, optical "
                   "flow or a learned interpolator; sound time-stretched with pitch kept, muted or replaced.")

    @classmethod
    def INPUT_TYPES(cls):
        return _retime_inputs({"factor": ("FLOAT", {"default": 0.25, "min": 0.01, "max": 100.0, "step": 0.01})})

    def run(self, video, factor, mode, audio_mode, audio=None, model_name=""):
        return (slow_motion(video, factor, mode, audio_mode, audio, model_name),)


class SpeedRamp(_VideoNode):
    DESCRIPTION = "Ease into a speed (0.25 = slow-mo) at `start` and back to normal by `end` (source seconds)."

    @classmethod
    def INPUT_TYPES(cls):
        return _retime_inputs({
            "start": ("FLOAT", {"default": 1.0, "min": 0.0, "max": 1e6, "step": 0.01}),
            "end": ("FLOAT", {"default": 2.0, "min": 0.0, "max": 1e6, "step": 0.01}),
            "speed": ("FLOAT", {"default": 0.25, "min": 0.01, "max": 100.0, "step": 0.01}),
            "ramp": ("FLOAT", {"default": 0.3, "min": 0.0, "max": 60.0, "step": 0.01}),
            "curve": (["ease_in_out", "linear", "ease_in", "ease_out"],)})

    def run(self, video, start, end, speed, ramp, curve, mode, audio_mode, audio=None, model_name=""):
        return (speed_ramp(video, start, end, speed, ramp, curve, mode, audio_mode, audio, model_name),)


class FrameInterpolation(_VideoNode):
    DESCRIPTION = "Change the frame rate (12 -> 24 fps ...) with in-between frames; same engine as Slow Motion."

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"video": (VIDEO_TYPE,), "target_fps": ("FLOAT", {"default": 24.0, "min": 1.0, "max": 240.0}),
                             "mode": (INTERP_MODES,)},
                "optional": {"model_name": ("STRING", {"default": ""})}}

    def run(self, video, target_fps, mode, model_name=""):
        return (interpolate_frames(video, target_fps, mode, model_name),)


class FreezeFrame(_VideoNode):
    DESCRIPTION = "Comic timing: hold the picture at a time with a punch-in zoom, then carry on; sound pauses."

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"video": (VIDEO_TYPE,),
                             "at": ("FLOAT", {"default": 1.0, "min": 0.0, "max": 1e6, "step": 0.01}),
                             "hold": ("FLOAT", {"default": 1.0, "min": 0.04, "max": 60.0, "step": 0.01}),
                             "zoom": ("FLOAT", {"default": 1.3, "min": 1.0, "max": 4.0, "step": 0.01}),
                             "zoom_time": ("FLOAT", {"default": 0.2, "min": 0.0, "max": 10.0, "step": 0.01}),
                             "center_x": ("FLOAT", {"default": 0.5, "min": 0.0, "max": 1.0, "step": 0.01}),
                             "center_y": ("FLOAT", {"default": 0.5, "min": 0.0, "max": 1.0, "step": 0.01}),
                             "audio_mode": (AUDIO_MODES,)},
                "optional": {"audio": ("AUDIO",)}}

    def run(self, video, at, hold, zoom, zoom_time, center_x, center_y, audio_mode, audio=None):
        return (freeze_frame(video, at, hold, zoom, zoom_time, center_x, center_y, audio_mode, audio),)


class MuxAudio(_VideoNode):
    DESCRIPTION = ("Put an AUDIO track into a video, cut or padded to the picture's exact length (the pictures are "
                   "copied, not re-encoded, when their codec allows).")

    @classmethod
    def INPUT_TYPES(cls):
        return _video_in({"audio": ("AUDIO",)})

    def run(self, video, audio):
        return (mux_audio(video, audio),)


class ExtractAudio:
    CATEGORY = CATEGORY
    FUNCTION = "run"
    RETURN_TYPES = ("AUDIO",)
    DESCRIPTION = "The sound of a video as AUDIO (silence of the clip's length when it has none)."

    @classmethod
    def INPUT_TYPES(cls):
        return _video_in()

    def run(self, video):
        np = _np()
        if not video.has_audio:
            return (vio.numpy_to_audio(np.zeros((1, int(video.duration * 44100)), np.float32), 44100),)
        return (vio.read_audio(video),)


class ConcatVideos(_VideoNode):
    DESCRIPTION = "Join two clips with a cut, crossfade, fade through black or wipe (sound crossfaded too)."

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"video_a": (VIDEO_TYPE,), "video_b": (VIDEO_TYPE,),
                             "transition": (["crossfade", "cut", "fade_black", "wipe"],),
                             "duration": ("FLOAT", {"default": 0.5, "min": 0.0, "max": 10.0, "step": 0.05})},
                "optional": ENGINE_INPUT}

    def run(self, video_a, video_b, transition, duration, engine="pyav"):
        return (_edit_backend(engine).concatenate(video_a, video_b, transition, duration),)


OUTLINE_INPUT = {"outline": ("INT", {"default": -1, "min": -1, "max": 32,
                                     "tooltip": "outline around the letters in pixels; -1 = automatic (none on a "
                                                "box, size/12 without one so light text stays readable on bright "
                                                "pictures); 0 = none"})}


class BurnCaption(_VideoNode):
    DESCRIPTION = "Burn a title or caption into the picture between two times, with a soft fade and a backing box."

    @classmethod
    def INPUT_TYPES(cls):
        return _video_in({"text": ("STRING", {"default": "Meanwhile...", "multiline": True}),
                          "start": ("FLOAT", {"default": 0.0, "min": 0.0, "max": 1e6, "step": 0.01}),
                          "end": ("FLOAT", {"default": 0.0, "min": 0.0, "max": 1e6, "step": 0.01}),
                          "position": (["bottom", "top", "center"],),
                          "font_size": ("INT", {"default": 0, "min": 0, "max": 512, "tooltip": "0 = height/12"}),
                          "color": ("STRING", {"default": "#ffffff"}),
                          "box": ("BOOLEAN", {"default": True})}) | {"optional": {**ENGINE_INPUT, **OUTLINE_INPUT}}

    def run(self, video, text, start, end, position, font_size, color, box, engine="pyav", outline=-1):
        return (_edit_backend(engine).burn_text(video, text, start, end, position, font_size, color, box,
                                                outline=outline),)


class PictureInPicture(_VideoNode):
    DESCRIPTION = "Put a second clip, shrunk, in a corner of the first."

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"video": (VIDEO_TYPE,), "inset": (VIDEO_TYPE,),
                             "scale": ("FLOAT", {"default": 0.3, "min": 0.05, "max": 1.0, "step": 0.01}),
                             "corner": (["bottom_right", "bottom_left", "top_right", "top_left"],),
                             "start": ("FLOAT", {"default": 0.0, "min": 0.0, "max": 1e6, "step": 0.01})},
                "optional": ENGINE_INPUT}

    def run(self, video, inset, scale, corner, start, engine="pyav"):
        return (_edit_backend(engine).picture_in_picture(video, inset, scale, corner, start=start),)


class CompositeOverBackground(_VideoNode):
    DESCRIPTION = "Composite a clip over a background image using a MASK (1 = clip) or a colour key (green screen)."

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"video": (VIDEO_TYPE,), "background": ("IMAGE",),
                             "key_color": ("STRING", {"default": "#00ff00"}),
                             "tolerance": ("FLOAT", {"default": 0.25, "min": 0.01, "max": 1.0, "step": 0.01})},
                "optional": {"mask": ("MASK",), **ENGINE_INPUT}}

    def run(self, video, background, key_color, tolerance, mask=None, engine="pyav"):
        return (_edit_backend(engine).composite_over(video, background, mask, key_color, tolerance),)


_NODES = {
    "LoadVideo": (LoadVideo, "Load Video"),
    "SaveVideo": (SaveVideo, "Save Video"),
    "VideoInfo": (VideoInfo, "Video Info"),
    "VideoToImages": (VideoToImages, "Video to Images"),
    "ImagesToVideo": (ImagesToVideo, "Images to Video"),
    "VideoToComfyVideo": (VideoToComfyVideo, "Video to ComfyUI VIDEO"),
    "ComfyVideoToVideo": (ComfyVideoToVideo, "ComfyUI VIDEO to Video"),
    "TrimVideo": (TrimVideo, "Trim Video"),
    "DetectScenes": (DetectScenes, "Detect Scenes"),
    "PickScene": (PickScene, "Pick Scene"),
    "SlowMotion": (SlowMotion, "Slow Motion"),
    "SpeedRamp": (SpeedRamp, "Speed Ramp"),
    "FrameInterpolation": (FrameInterpolation, "Frame Interpolation"),
    "FreezeFrame": (FreezeFrame, "Freeze Frame + Punch-in"),
    "MuxAudio": (MuxAudio, "Mux Audio into Video"),
    "ExtractAudio": (ExtractAudio, "Extract Audio"),
    "ConcatVideos": (ConcatVideos, "Concatenate Videos"),
    "BurnCaption": (BurnCaption, "Burn Caption / Title"),
    "PictureInPicture": (PictureInPicture, "Picture in Picture"),
    "CompositeOverBackground": (CompositeOverBackground, "Composite over Background"),
}
NODE_CLASS_MAPPINGS, NODE_DISPLAY_NAME_MAPPINGS = bridge.node_mappings(_NODES)
