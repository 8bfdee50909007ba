"""MoviePy editing backend for the four edits in `video.py` (engine="moviepy").

Same inputs and the same `VideoFile` result as the PyAV functions, built with
MoviePy 2's clip algebra: concatenate_videoclips with CrossFadeIn/CrossFadeOut,
TextClip captions, CompositeVideoClip for picture-in-picture and over a
background. MoviePy pins pillow<12 while the pack runs pillow 13, so the video
install script puts it in with --no-deps (its TextClip/ImageClip calls work on
pillow 13; tests/test_moviepy_edit.py checks each edit).
MoviePy decodes and encodes through imageio-ffmpeg's own ffmpeg binary, so it is
only used when a node asks for it; the result is probed back with PyAV.
"""
from __future__ import annotations

import os

from ..configs import paths
from . import bridge
from . import video_io as vio
from .video_io import VideoFile

AUDIO_RATE = 48000


def _mp():
    return bridge.require("moviepy", "video")


def _progress_logger(total: int, desc: str):
    """A proglog logger forwarding MoviePy's frame counter to bridge.ProgressBar (each update can interrupt)."""
    import proglog

    bar = bridge.ProgressBar(total, desc)

    class StudioLogger(proglog.ProgressBarLogger):
        def bars_callback(self, name, attr, value, old_value=None):
            if name == "frame_index" and attr == "index":
                bar.update_absolute(value, self.bars[name].get("total") or total)

    return StudioLogger(min_time_interval=0)


def _write(clip, fps: float, stem: str) -> VideoFile:
    """Encode a clip (libx264/yuv420p/aac) to a .part name, then rename to a fresh temp path."""
    path = vio.temp_video_path(stem)
    part = paths.temp_sibling(path)  # a random name: nothing planted there can be followed
    # MoviePy writes the sound to a side file first; name it ourselves so an interrupt cannot leave it behind.
    sound = part.with_name(part.stem + ".snd.m4a")
    total = max(1, int(round(clip.duration * fps)))
    try:
        clip.write_videofile(str(part), fps=fps, codec="libx264", audio_codec="aac", audio_fps=AUDIO_RATE,
                             preset="veryfast", pixel_format="yuv420p", temp_audiofile=str(sound),
                             audio=clip.audio is not None, logger=_progress_logger(total, stem))
        vio._reserve_check(path)
        os.replace(part, path)
    except BaseException:
        part.unlink(missing_ok=True)
        path.unlink(missing_ok=True)
        raise
    finally:
        sound.unlink(missing_ok=True)
        clip.close()
    return vio.probe(path)


def _open(video: VideoFile):
    mp = _mp()
    return mp.VideoFileClip(video.path, audio=video.has_audio)


def concatenate(a: VideoFile, b: VideoFile, transition: str = "crossfade", duration: float = 0.5) -> VideoFile:
    """a then b (b resized to a's size), joined by a cut or a crossfade that overlaps them by `duration`."""
    mp = _mp()
    from moviepy import afx, vfx

    if transition not in ("cut", "crossfade"):
        raise ValueError(f"transition {transition!r} is not available with engine='moviepy' (cut, crossfade).")
    clip_a, clip_b = _open(a), _open(b)
    if (b.width, b.height) != (a.width, a.height):
        clip_b = clip_b.resized(new_size=(a.width, a.height))
    overlap = 0.0 if transition == "cut" else min(duration, clip_a.duration, clip_b.duration)
    if overlap > 0:
        # The picture crossfades through b's mask; the sound fades out/in over the same overlap.
        clip_a = clip_a.with_effects([vfx.CrossFadeOut(overlap)] + ([afx.AudioFadeOut(overlap)] if clip_a.audio else []))
        clip_b = clip_b.with_effects([vfx.CrossFadeIn(overlap)] + ([afx.AudioFadeIn(overlap)] if clip_b.audio else []))
    joined = mp.concatenate_videoclips([clip_a, clip_b], method="compose", padding=-overlap)
    return _write(joined, a.fps, "mp_concat")


def burn_text(video: VideoFile, text: str, start: float = 0.0, end: float = 0.0, position: str = "bottom",
              font_size: int = 0, color: str = "#ffffff", box: bool = True, fade: float = 0.2,
              outline: int = -1) -> VideoFile:
    """A caption (wrapped to 90% of the width, optional dark box, outline as fonts.outline_width) burned in
    between start and end."""
    mp = _mp()
    from moviepy import vfx

    from .video import render_text

    if not text.strip():
        raise ValueError("text is empty: nothing to burn in.")
    base = _open(video)
    end = min(end if end > 0 else base.duration, base.duration)
    if end <= start:
        raise ValueError(f"start {start} is not before end {end} (the clip lasts {base.duration:.2f} s).")
    size = font_size or max(10, video.height // 12)
    # The same overlay as the PyAV engine (font, wrapping, box, outline halo); MoviePy places and fades it.
    overlay = render_text(text, video.width, video.height, size, position, color, box, outline)
    caption = mp.ImageClip(overlay[..., :3]).with_mask(mp.ImageClip(overlay[..., 3] / 255.0, is_mask=True))
    caption = caption.with_start(start).with_duration(end - start).with_position((0, 0))
    if fade > 0:
        fade = min(fade, (end - start) / 2)
        caption = caption.with_effects([vfx.CrossFadeIn(fade), vfx.CrossFadeOut(fade)])
    out = mp.CompositeVideoClip([base, caption], size=(video.width, video.height)).with_audio(base.audio)
    return _write(out, video.fps, "mp_caption")


def picture_in_picture(main: VideoFile, inset: VideoFile, scale: float = 0.3, corner: str = "bottom_right",
                       margin: float = 0.03, start: float = 0.0, border: int = 2) -> VideoFile:
    """`inset` shrunk into a corner of `main` from `start` on (white border); main's length and sound."""
    mp = _mp()

    base = _open(main)
    w = max(2, int(main.width * scale)) // 2 * 2
    h = max(2, int(w * inset.height / inset.width)) // 2 * 2
    m = int(margin * min(main.width, main.height))
    x = m if "left" in corner else main.width - w - m
    y = m if "top" in corner else main.height - h - m
    small = _open(inset).without_audio().resized(new_size=(w, h))
    small = small.with_duration(max(0.0, min(small.duration, base.duration - start))).with_start(start)
    layers = [base]
    if border:
        frame = mp.ColorClip((w + 2 * border, h + 2 * border), color=(255, 255, 255))
        layers.append(frame.with_start(start).with_duration(small.duration).with_position((x - border, y - border)))
    layers.append(small.with_position((x, y)))
    out = mp.CompositeVideoClip(layers, size=(main.width, main.height)).with_duration(base.duration)
    return _write(out.with_audio(base.audio), main.fps, "mp_pip")


def composite_over(video: VideoFile, background, mask=None, key_color: str = "", tolerance: float = 0.25) -> VideoFile:
    """The clip over a background (IMAGE tensor/array, or a colour string), where a MASK or a colour key says so."""
    mp = _mp()
    import numpy as np
    from PIL import ImageColor

    from .core import image_to_numpy

    base = _open(video)
    size = (video.width, video.height)
    if isinstance(background, str):
        try:
            layer = mp.ColorClip(size, color=ImageColor.getrgb(background)[:3])
        except ValueError as exc:
            raise ValueError(f"Bad background colour {background!r}: {exc}") from None
    else:
        layer = mp.ImageClip(image_to_numpy(background)[0]).resized(new_size=size)
    if mask is not None:
        masks = mask.detach().cpu().numpy() if hasattr(mask, "detach") else np.asarray(mask)
        masks = (masks[None] if masks.ndim == 2 else masks).astype(np.float32)
        from PIL import Image

        masks = [np.asarray(Image.fromarray(m).resize(size, Image.BILINEAR)) if m.shape != size[::-1] else m
                 for m in masks]
        fps = video.fps
        matte = mp.VideoClip(lambda t: masks[min(int(t * fps + 1e-6), len(masks) - 1)], is_mask=True,
                             duration=base.duration)
    elif key_color:
        try:
            key = np.array(ImageColor.getrgb(key_color)[:3], np.float32)
        except ValueError as exc:
            raise ValueError(f"Bad key_color {key_color!r}: {exc}") from None

        # Same soft key as the PyAV engine: transparent within `tolerance` of the key colour.
        def keyed(img):
            dist = np.linalg.norm(img.astype(np.float32) - key, axis=-1) / 441.7
            return np.clip((dist - tolerance) / max(tolerance, 1e-3), 0, 1)

        matte = base.image_transform(keyed)
        matte.is_mask = True
    else:
        raise ValueError("Give a mask or a key_color to composite over the background.")
    layer = layer.with_duration(base.duration)
    out = mp.CompositeVideoClip([layer, base.with_mask(matte)], size=size).with_audio(base.audio)
    return _write(out, video.fps, "mp_composite")
