"""File-backed video for the pack: probe, chunked decode, chunked encode, audio I/O.

Backend: **PyAV** (`av`), and only PyAV. ComfyUI core already depends on `av`
for its own video nodes, so every ComfyUI install has it; its PyPI wheel
bundles an FFmpeg with libx264, libvpx (VP9), GIF, AAC, MP3, FLAC and Opus
encoders (checked on av 18.1), and it decodes and encodes frame by frame
from Python without a subprocess pipe, so memory stays bounded by the chunk
size and there is no second copy of every frame through a pipe. FFmpeg
filters we need (atempo for pitch-preserving time stretch) run through PyAV's
filter graph, so no ffmpeg binary is needed either.

Videos move between nodes as `VideoFile` (ComfyUI type name "STUDIO_VIDEO"):
a small frozen record of a file on disk. Frames are only ever held as uint8
chunks of `chunk` frames, never as a whole float32 clip.
"""
from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from fractions import Fraction
from pathlib import Path
from typing import Iterable, Iterator

from ..configs import paths
from . import bridge

log = logging.getLogger(__name__)

VIDEO_TYPE = "STUDIO_VIDEO"
SCENE_LIST_TYPE = "SCENE_LIST"

# Output container per codec; the audio codec each container carries.
CODECS = {
    "h264": {"encoder": "libx264", "suffix": ".mp4", "pix_fmt": "yuv420p", "audio": "aac"},
    "vp9": {"encoder": "libvpx-vp9", "suffix": ".webm", "pix_fmt": "yuv420p", "audio": "libopus"},
    "gif": {"encoder": "gif", "suffix": ".gif", "pix_fmt": "pal8", "audio": None},
}
# Audio file formats: suffix -> (encoder, container format, sample rates the encoder accepts or None for any,
# the most channels written as they are; more are downmixed to stereo).
AUDIO_FORMATS = {
    ".wav": ("pcm_s16le", "wav", None, 8),
    ".flac": ("flac", "flac", None, 8),
    ".mp3": ("libmp3lame", "mp3", (48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000), 2),
    ".ogg": ("libopus", "ogg", (48000,), 2),
}
MAX_CHANNELS = 8  # mono .. 7.1


def _av():
    return bridge.require("av", "video")


@dataclass(frozen=True)
class VideoFile:
    """A video on disk and what a node needs to know about it without decoding it."""

    path: str
    fps: float
    frame_count: int
    width: int
    height: int
    duration: float
    has_audio: bool
    audio_sample_rate: int | None = None
    audio_channels: int | None = None
    variable_rate: bool = False  # the source was VFR; frames are served at `fps` regardless
    missing_frames: int = 0  # frames the header promises but a truncated file does not hold

    def as_dict(self) -> dict:
        return asdict(self)


# ---------------------------------------------------------------- probing
def _open(path, what: str = "video"):
    av = _av()
    p = Path(path)
    if not p.is_file():
        raise ValueError(f"The {what} file {str(path)!r} does not exist.")
    if p.stat().st_size == 0:
        raise ValueError(f"The {what} file {p.name!r} is empty (zero bytes).")
    try:
        return av.open(str(p))
    except av.FFmpegError as exc:
        raise ValueError(f"Cannot read {what} file {p.name!r}: it is corrupt or not a media file ({exc}).") from None


def _fps_of(stream) -> tuple[Fraction, bool]:
    """(nominal frame rate, is variable): the stream's tick rate when plausible, else its average."""
    avg, tick = stream.average_rate, stream.guessed_rate or stream.base_rate
    rate = avg or tick
    if not rate or rate <= 0:
        raise ValueError("The video stream has no frame rate.")
    variable = bool(avg and tick and abs(float(tick) / float(avg) - 1) > 0.01)
    if variable and avg <= tick <= 2 * avg:
        # VFR with a sane tick (phones often say 90000 here): normalise to the tick rate.
        rate = tick
    return Fraction(rate).limit_denominator(1001), variable


def probe(path) -> VideoFile:
    """Read a file's streams; ValueError for corrupt, empty, audio-only or frameless files."""
    av = _av()
    name = Path(path).name
    with _open(path) as container:
        if not container.streams.video:
            kind = "audio-only" if container.streams.audio else "without a video stream"
            raise ValueError(f"{name!r} is {kind}; a video stream is needed (use Load Audio for sound files).")
        vs = container.streams.video[0]
        fps, variable = _fps_of(vs)
        duration = None
        if vs.duration is not None and vs.time_base:
            duration = float(vs.duration * vs.time_base)
        elif container.duration:
            duration = container.duration / 1_000_000
        frames = vs.frames
        if variable:
            # CFR length = end of the last picture's display time at the nominal rate.
            end = max((pkt.pts + (pkt.duration or 0) for pkt in container.demux(vs) if pkt.pts is not None), default=0)
            if end:
                frames = int(round(float((end - (vs.start_time or 0)) * vs.time_base) * fps))
        if not frames:
            # Containers like WebM/MKV carry no frame count: count packets (no decoding).
            try:
                frames = sum(1 for pkt in container.demux(vs) if pkt.size)
            except av.FFmpegError as exc:
                raise ValueError(f"{name!r} is corrupt: {exc}") from None
        if not frames and duration:
            frames = int(round(duration * fps))
        if not frames:
            raise ValueError(f"{name!r} has a video stream with zero frames.")
        missing = 0
        if _looks_truncated(container, path, frames / fps):
            present = _count_present(container, vs, fps)
            if not present:
                raise ValueError(f"{name!r} is truncated: none of its {frames} frames is in the file.")
            missing, frames = max(0, frames - present), min(frames, present)
            if missing:
                log.warning("%s is truncated: %d of %d frames are in the file; %d are lost (not filled in).",
                            name, frames, frames + missing, missing)
        width, height = vs.codec_context.width, vs.codec_context.height
        if not width or not height:
            raise ValueError(f"{name!r} has a video stream with no picture size (corrupt header).")
        aud = container.streams.audio[0] if container.streams.audio else None
        return VideoFile(
            path=str(Path(path).resolve()),
            fps=float(fps),
            frame_count=int(frames),
            width=int(width),
            height=int(height),
            duration=float(frames / fps),
            has_audio=aud is not None,
            audio_sample_rate=int(aud.sample_rate) if aud is not None else None,
            audio_channels=int(aud.channels) if aud is not None else None,
            variable_rate=variable,
            missing_frames=missing,
        )


def _looks_truncated(container, path, duration: float) -> bool:
    """The streams' own bit rates (from an MP4/MOV index) promise more bytes than the file has."""
    promised = sum(int(s.bit_rate or 0) for s in container.streams) * duration / 8
    return promised > 0 and Path(path).stat().st_size < 0.95 * promised


def _count_present(container, stream, fps: Fraction) -> int:
    """Frames 0..k-1 whose packets are all in the file (demuxed, not decoded): k is the first missing slot.

    With B-frames a cut can keep a later picture and lose an earlier one; counting
    the unbroken run from the start keeps a gap from being filled with a repeat.
    """
    av = _av()
    slots = set()
    start = stream.start_time or 0
    try:
        container.seek(0)
        for pkt in container.demux(stream):
            if pkt.size and pkt.pts is not None:
                slots.add(int(round(float((pkt.pts - start) * stream.time_base * fps))))
    except av.FFmpegError:
        pass
    count = 0
    while count in slots:
        count += 1
    return count


# Codecs FFmpeg uses to "play" text files (ANSI art, tty): such files are not media to a user.
_TEXT_CODECS = {"ansi", "bintext", "xbin", "idf", "tty"}


def media_kind(path) -> str | None:
    """'image', 'video' or 'audio' when the file's content decodes as one (its name does not count); else None."""
    try:
        from PIL import Image

        with Image.open(path) as img:
            img.verify()
        return "image"
    except Exception:  # noqa: BLE001 - PIL raises many types for non-images
        pass
    av = _av()
    try:
        with av.open(str(path)) as container:
            stream = (container.streams.video or container.streams.audio or [None])[0]
            if stream is None or stream.codec_context.name in _TEXT_CODECS:
                return None
            for _ in container.decode(stream):
                return "video" if stream.type == "video" else "audio"
    except (av.FFmpegError, OSError, UnicodeDecodeError, ValueError):
        return None
    return None


# ---------------------------------------------------------------- decoding
def fit_size(width: int, height: int, max_size: int | None) -> tuple[int, int]:
    """(w, h) scaled so the longer side is at most max_size, both even (H.264 yuv420p needs even)."""
    if max_size and max(width, height) > max_size:
        scale = max_size / max(width, height)
        width, height = max(2, round(width * scale)), max(2, round(height * scale))
    return width, height


def iter_pictures(video: VideoFile, start: int = 0, end: int | None = None, stride: int = 1) -> Iterator["av.VideoFrame"]:
    """The decoder's own pictures (av.VideoFrame, usually yuv420p) for frames start..end-1, at constant frame rate.

    Timestamps are mapped to the nominal rate (video.fps): a variable-frame-rate
    file has pictures repeated (the same object again) or dropped so slot i is
    the picture shown at i/fps, which is what keeps the audio in sync downstream.
    Consumers that can work on YUV planes use this directly and skip the RGB
    conversion; everything else goes through `iter_frames`.
    """
    av = _av()
    end = video.frame_count if end is None else min(int(end), video.frame_count)
    start, stride = max(0, int(start)), max(1, int(stride))
    if start >= end:
        return
    fps = Fraction(video.fps).limit_denominator(1001)
    wanted = range(start, end, stride)
    nxt = 0  # index into wanted of the next slot to fill
    last = None  # the latest decoded picture
    with _open(video.path) as container:
        vs = container.streams.video[0]
        vs.thread_type = "AUTO"
        t0 = float(vs.start_time * vs.time_base) if vs.start_time is not None else None
        if start > 2 * fps:
            # Seek to the keyframe before the start instead of decoding everything before it.
            target = (vs.start_time or 0) + int((Fraction(start) / fps - 1) / vs.time_base)
            container.seek(max(vs.start_time or 0, target), stream=vs, backward=True)
        try:
            for frame in container.decode(vs):
                if frame.pts is None:
                    continue
                t = float(frame.pts * vs.time_base)
                t0 = t if t0 is None else t0
                idx = int(round((t - t0) * float(fps)))
                # Slots before this picture's slot show the previous picture (VFR gaps).
                while nxt < len(wanted) and wanted[nxt] < idx:
                    yield last if last is not None else frame
                    nxt += 1
                if nxt < len(wanted) and wanted[nxt] == idx:
                    yield frame
                    nxt += 1
                last, last_idx = frame, idx
                if nxt >= len(wanted):
                    break
        except av.FFmpegError as exc:
            if last is None:
                raise ValueError(f"Cannot decode {Path(video.path).name!r}: {exc}") from None
            damaged = exc  # a damaged tail: keep what decoded, invent nothing after it
        else:
            damaged = None
        if last is None:
            raise ValueError(f"No frame of {Path(video.path).name!r} could be decoded.")
        # The last picture holds for its own display time (a VFR tail), plus one slot of rounding; never more.
        held = max(1, int(round(float((last.duration or 0) * vs.time_base) * float(fps))))
        end_slot = last_idx + held + (0 if damaged else 1)
        while nxt < len(wanted) and wanted[nxt] < end_slot:
            yield last
            nxt += 1
        if nxt < len(wanted):
            log.warning("%s: decoded %d of %d requested frames%s; the %d missing are not filled in.",
                        Path(video.path).name, nxt, len(wanted), f" ({damaged})" if damaged else "",
                        len(wanted) - nxt)


def iter_frames(video: VideoFile, start: int = 0, end: int | None = None, stride: int = 1,
                max_size: int | None = None, chunk: int = 16) -> Iterator["np.ndarray"]:
    """uint8 [n,H,W,3] RGB chunks of frames start..end-1 (every `stride`-th), at constant frame rate."""
    import numpy as np

    out_w, out_h = fit_size(video.width, video.height, max_size)
    chunk = max(1, int(chunk))
    batch, cached = [], (None, None)
    for picture in iter_pictures(video, start, end, stride):
        # One conversion per decoded picture, even when a VFR gap repeats it.
        if cached[0] is not picture:
            cached = (picture, picture.to_ndarray(width=out_w, height=out_h, format="rgb24"))
        batch.append(cached[1])
        if len(batch) >= chunk:
            yield np.stack(batch)
            batch = []
    if batch:
        yield np.stack(batch)


def prefetch(items: Iterable, depth: int = 2) -> Iterator:
    """Run a producer (decode + per-frame work) in a thread, `depth` items ahead of the consumer (the encoder).

    The FFmpeg CLI overlaps decoding, filtering and encoding in separate threads;
    this does the same for a generator whose heavy calls release the GIL (FFmpeg
    decoding, cv2). The producer runs in a copy of the caller's context, so the
    run's progress/interrupt hooks still apply there, and its exceptions (an
    interrupt included) are raised in the consumer. Stopping early stops it.
    """
    import contextvars
    import queue
    import threading

    q: queue.Queue = queue.Queue(maxsize=max(1, depth))
    stop = threading.Event()
    done = object()

    def produce():
        try:
            for item in items:
                while not stop.is_set():
                    try:
                        q.put((item, None), timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            q.put((done, None))
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer
            q.put((done, exc))

    worker = threading.Thread(target=contextvars.copy_context().run, args=(produce,), daemon=True,
                              name="animation_studio_prefetch")
    worker.start()
    try:
        while True:
            item, error = q.get()
            if item is done:
                if error is not None:
                    raise error
                return
            yield item
    finally:
        stop.set()
        while worker.is_alive():  # unblock a producer waiting on a full queue, then let it finish
            try:
                q.get_nowait()
            except queue.Empty:
                pass
            worker.join(timeout=0.05)


def plane_array(plane) -> "np.ndarray":
    """A writable uint8 [h,w] numpy view of one plane of an av.VideoFrame (no copy; rows keep their padding stride)."""
    import numpy as np

    return np.frombuffer(plane, np.uint8).reshape(-1, plane.line_size)[:plane.height, :plane.width]


def read_frames(video: VideoFile, **kwargs) -> "np.ndarray":
    """All requested frames as one uint8 array (only for short clips)."""
    import numpy as np

    chunks = list(iter_frames(video, **kwargs))
    if not chunks:
        return np.zeros((0, video.height, video.width, 3), np.uint8)
    return np.concatenate(chunks)


# ---------------------------------------------------------------- audio helpers
def audio_to_numpy(audio: dict) -> tuple["np.ndarray", int]:
    """AUDIO dict -> (float32 [C,T] of the first batch item, sample_rate)."""
    import numpy as np

    if not isinstance(audio, dict) or "waveform" not in audio or "sample_rate" not in audio:
        raise ValueError("audio must be an AUDIO dict with 'waveform' [B,C,T] and 'sample_rate'.")
    wave = audio["waveform"]
    wave = wave.detach().cpu().numpy() if hasattr(wave, "detach") else np.asarray(wave)
    if wave.ndim == 3:
        wave = wave[0]
    elif wave.ndim == 1:
        wave = wave[None]
    if wave.ndim != 2:
        raise ValueError(f"audio waveform must be [B,C,T]; got shape {tuple(wave.shape)}.")
    return np.ascontiguousarray(wave, dtype=np.float32), int(audio["sample_rate"])


def numpy_to_audio(wave, sample_rate: int) -> dict:
    """float [C,T] -> AUDIO dict with a torch waveform [1,C,T] (numpy when torch is absent)."""
    import numpy as np

    wave = np.ascontiguousarray(np.asarray(wave, dtype=np.float32))
    if wave.ndim == 1:
        wave = wave[None]
    try:
        import torch

        return {"waveform": torch.from_numpy(wave)[None], "sample_rate": int(sample_rate)}
    except ImportError:
        return {"waveform": wave[None], "sample_rate": int(sample_rate)}


def channel_layout(channels: int, what: str = "audio") -> str:
    """FFmpeg's default layout name for a channel count (mono, stereo, 2.1, 4.0, 5.0, 5.1, 6.1, 7.1)."""
    if not isinstance(channels, int) or not 1 <= channels <= MAX_CHANNELS:
        raise ValueError(f"The {what} has {channels} channels; mono to 7.1 (1 to {MAX_CHANNELS} channels) "
                         f"is supported.")
    return _av().AudioLayout(f"{channels}c").name


# ITU-R BS.775 downmix to stereo, per channel name: centre and surrounds at -3 dB into L and R, a back centre
# at -6 dB into each, the LFE dropped (as consumer decoders do: it is a bass extension, not content).
_STEREO_GAINS = {"FL": (1.0, 0.0), "FR": (0.0, 1.0), "FC": (0.7071, 0.7071), "LFE": (0.0, 0.0),
                 "BL": (0.7071, 0.0), "BR": (0.0, 0.7071), "SL": (0.7071, 0.0), "SR": (0.0, 0.7071),
                 "BC": (0.5, 0.5), "FLC": (0.7071, 0.0), "FRC": (0.0, 0.7071)}


def downmix_matrix(channels: int) -> "np.ndarray":
    """[2, C] matrix from the default layout of `channels` to stereo (see _STEREO_GAINS)."""
    import numpy as np

    if channels == 1:
        return np.ones((2, 1), np.float32)
    names = [c.name for c in _av().AudioLayout(channel_layout(channels)).channels]
    return np.array([_STEREO_GAINS.get(n, (0.5, 0.5)) for n in names], np.float32).T


def to_channels(wave, channels: int) -> "np.ndarray":
    """float32 [C,T] as mono or stereo (downmixed by downmix_matrix) or unchanged when it already fits.

    Mono is the mean of the stereo downmix. A downmix that would clip is
    scaled down as a whole (one gain for the track, no limiter pumping).
    """
    import numpy as np

    have = wave.shape[0]
    if have == channels or (channels > 2 and have <= channels):
        return wave
    if channels not in (1, 2):
        raise ValueError(f"Cannot remix {have} channels to {channels}; only to mono or stereo.")
    stereo = downmix_matrix(have) @ wave if have != 2 else wave
    out = stereo.mean(axis=0, keepdims=True) if channels == 1 else stereo
    peak = float(np.abs(out).max()) if out.size else 0.0
    if peak > 1.0 and have > 2:
        out = out / peak
    return np.ascontiguousarray(out, dtype=np.float32)


def _audio_frames(wave, sample_rate: int, frame_size: int = 4096):
    """float32 [C,T] -> packed `flt` AudioFrames.

    Packed, not planar: PyAV 18 mishandles 8 planes (from_ndarray raises,
    to_ndarray after a resample to 7.1 planar crashed the process).
    """
    import numpy as np

    av = _av()
    layout = channel_layout(wave.shape[0])
    for i in range(0, wave.shape[1], frame_size):
        packed = np.ascontiguousarray(wave[:, i:i + frame_size].T, dtype=np.float32).reshape(1, -1)
        frame = av.AudioFrame.from_ndarray(packed, format="flt", layout=layout)
        frame.sample_rate = sample_rate
        frame.pts = i
        yield frame


def _frames_to_numpy(frames, channels: int):
    """Packed `flt` frames -> float32 [C,T]."""
    import numpy as np

    parts = [f.to_ndarray().reshape(-1, channels).T for f in frames]
    if not parts:
        return np.zeros((channels, 0), np.float32)
    return np.ascontiguousarray(np.concatenate(parts, axis=1), dtype=np.float32)


def decode_audio(path, sample_rate: int | None = None) -> tuple["np.ndarray", int]:
    """Every audio sample of a file as float32 [C,T] in the default order of its channel count.

    Optionally resampled; ValueError when there is none, or for more than 7.1.
    A source layout with another order (5.1(side), quad...) is remapped to the
    default one by FFmpeg's rematrixing, so downmixes see FL FR FC LFE... where
    they expect them.
    """
    av = _av()
    name = Path(path).name
    with _open(path, "audio") as container:
        if not container.streams.audio:
            raise ValueError(f"{name!r} has no audio stream.")
        stream = container.streams.audio[0]
        channels = stream.channels or 1
        source = stream.layout.name if stream.layout is not None else "unknown"
        layout = channel_layout(channels, f"audio of {name!r} (layout {source})")
        rate = int(sample_rate or stream.sample_rate)
        resampler = av.AudioResampler(format="flt", layout=layout, rate=rate)
        out = []
        try:
            for frame in container.decode(stream):
                out.extend(resampler.resample(frame))
        except av.FFmpegError as exc:
            if not out:
                raise ValueError(f"Cannot decode audio of {name!r}: {exc}") from None
            log.warning("Audio of %s is damaged after %.2f s (%s); the rest is dropped.", name,
                        sum(f.samples for f in out) / rate, exc)
        out.extend(resampler.resample(None))
        return _frames_to_numpy(out, channels), rate


def read_audio(path_or_video) -> dict:
    """The audio of a file or VideoFile as an AUDIO dict."""
    path = path_or_video.path if isinstance(path_or_video, VideoFile) else path_or_video
    wave, rate = decode_audio(path)
    return numpy_to_audio(wave, rate)


def filter_audio(wave, sample_rate: int, chain: list[tuple[str, str]], out_rate: int | None = None) -> "np.ndarray":
    """Run float32 [C,T] through an FFmpeg audio filter chain, e.g. [("atempo", "0.5")]; out_rate if it resamples."""
    av = _av()
    graph = av.filter.Graph()
    channels = wave.shape[0]
    layout = channel_layout(channels)
    node = graph.add_abuffer(format="flt", sample_rate=sample_rate, layout=layout,
                             time_base=Fraction(1, sample_rate))
    aformat = f"sample_fmts=flt:sample_rates={out_rate or sample_rate}:channel_layouts={layout}"
    for name, args in chain + [("aformat", aformat)]:
        nxt = graph.add(name, args)
        node.link_to(nxt)
        node = nxt
    sink = graph.add("abuffersink")
    node.link_to(sink)
    graph.configure()
    out = []

    def drain():
        while True:
            try:
                out.append(graph.pull())
            except (av.BlockingIOError, av.EOFError):
                return

    for frame in _audio_frames(wave, sample_rate):
        graph.push(frame)
        drain()
    graph.push(None)
    drain()
    return _frames_to_numpy(out, channels)


def time_stretch(wave, sample_rate: int, speed: float) -> "np.ndarray":
    """Pitch-preserving tempo change (FFmpeg atempo, chained since one atempo spans 0.5..2)."""
    if abs(speed - 1.0) < 1e-6 or wave.shape[1] == 0:
        return wave
    chain, rest = [], float(speed)
    while rest < 0.5:
        chain.append(("atempo", "0.5"))
        rest /= 0.5
    while rest > 2.0:
        chain.append(("atempo", "2.0"))
        rest /= 2.0
    chain.append(("atempo", f"{rest:.6f}"))
    return filter_audio(wave, sample_rate, chain)


def fit_length(wave, length: int):
    """Trim or zero-pad [C,T] to exactly `length` samples."""
    import numpy as np

    if wave.shape[1] >= length:
        return wave[:, :length]
    return np.pad(wave, ((0, 0), (0, length - wave.shape[1])))


def resample(wave, rate: int, new_rate: int):
    if rate == new_rate or wave.shape[1] == 0:
        return wave
    return filter_audio(wave, rate, [("aresample", str(new_rate))], out_rate=new_rate)


# ---------------------------------------------------------------- writing
def _reserve_check(path: Path) -> None:
    # A save reserves its name with an empty file; anything else there (content, a symlink) is never replaced.
    if path.is_symlink() or (path.exists() and path.stat().st_size > 0):
        raise FileExistsError(f"{path} already exists; it is never overwritten.")


def write_audio(audio, path) -> Path:
    """Write an AUDIO dict (or (wave [C,T], rate)) to WAV/FLAC/MP3/OGG by suffix; never overwrites."""
    av = _av()
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in AUDIO_FORMATS:
        raise ValueError(f"Unsupported audio format {suffix!r}; use one of {', '.join(AUDIO_FORMATS)}.")
    _reserve_check(path)
    wave, rate = audio_to_numpy(audio) if isinstance(audio, dict) else audio
    channel_layout(wave.shape[0])
    encoder, fmt, rates, max_channels = AUDIO_FORMATS[suffix]
    if wave.shape[0] > max_channels:
        wave = to_channels(wave, 2)  # MP3/Opus here: a proper downmix, never the first two channels
    if rates and rate not in rates:
        target = min(rates, key=lambda r: (r < rate, abs(r - rate)))
        wave, rate = resample(wave, rate, target), target
    part = paths.temp_sibling(path)
    try:
        with av.open(str(part), "w", format=fmt) as container:
            stream = container.add_stream(encoder, rate=rate, layout=channel_layout(wave.shape[0]))
            _encode_audio(container, stream, wave, rate)
        paths.replace_reserved(part, path)
    finally:
        part.unlink(missing_ok=True)
    return path


class _AudioEncoder:
    """Encodes a float32 [C,T] track in pieces, so audio packets interleave with the video's."""

    def __init__(self, container, stream, wave, rate: int):
        av = _av()
        self.container, self.stream, self.wave, self.rate = container, stream, wave, rate
        self.resampler = av.AudioResampler(format=stream.format.name, layout=stream.layout.name, rate=stream.rate)
        self.frame_size = stream.codec_context.frame_size or 1024
        self.pos = 0  # samples of `wave` consumed
        self.pts = 0  # samples written, in the stream's rate

    def _push(self, frames) -> None:
        for f in frames:
            f.pts = self.pts
            self.pts += f.samples
            self.container.mux(self.stream.encode(f))

    def encode_until(self, sample: int) -> None:
        """Encode up to `sample` (zero-padding past the end of the track)."""
        import numpy as np

        if sample <= self.pos:
            return
        piece = self.wave[:, self.pos:sample]
        if piece.shape[1] < sample - self.pos:
            piece = np.pad(piece, ((0, 0), (0, sample - self.pos - piece.shape[1])))
        for frame in _audio_frames(piece, self.rate, frame_size=self.frame_size):
            self._push(self.resampler.resample(frame))
        self.pos = sample

    def finish(self) -> None:
        self._push(self.resampler.resample(None))
        self.container.mux(self.stream.encode(None))


def _encode_audio(container, stream, wave, rate: int) -> None:
    encoder = _AudioEncoder(container, stream, wave, rate)
    encoder.encode_until(wave.shape[1])
    encoder.finish()


def _even_pad(frames):
    """Pad odd-sized frames by one replicated row/column: yuv420p needs even sizes, and no picture is lost."""
    import numpy as np

    h, w = frames.shape[1:3]
    if h % 2 or w % 2:
        frames = np.pad(frames, ((0, 0), (0, h % 2), (0, w % 2), (0, 0)), mode="edge")
    return frames


def write_video(chunks: Iterable["np.ndarray"], fps: float, path, audio: dict | tuple | None = None,
                codec: str = "h264", crf: int = 20, preset: str = "veryfast",
                progress: "bridge.ProgressBar | None" = None) -> VideoFile:
    """Encode uint8 [n,H,W,3] chunks into `path` (never overwriting), with audio cut to the picture's length.

    A chunk may also be a list of av.VideoFrame pictures of one even size (from
    `iter_pictures` or blended in YUV): they go to the encoder as they are, with
    no RGB round trip.

    The audio is trimmed or padded to exactly frames/fps seconds, so the mux is
    frame-exact and the sound cannot drift from the picture.
    """
    av = _av()
    if codec not in CODECS:
        raise ValueError(f"Unknown codec {codec!r}; use one of {', '.join(CODECS)}.")
    spec = CODECS[codec]
    path = Path(path)
    _reserve_check(path)
    rate = Fraction(float(fps)).limit_denominator(1001)
    if rate <= 0:
        raise ValueError(f"fps must be positive; got {fps}.")
    wave = sr = None
    if audio is not None and spec["audio"]:
        wave, sr = _video_sound(audio, spec)
    part = paths.temp_sibling(path)
    n = 0
    try:
        with av.open(str(part), "w", format=spec["suffix"].lstrip(".")) as container:
            vstream = aenc = None
            for frames in chunks:
                pictures = _is_pictures(frames)
                if pictures:
                    shape = (frames[0].height, frames[0].width)
                else:
                    frames = _as_uint8_frames(frames, even=codec != "gif")
                    shape = frames.shape[1:3]
                if vstream is None:
                    vstream = _add_video_stream(container, spec, codec, rate, shape[1], shape[0], crf, preset)
                    if wave is not None:
                        astream = container.add_stream(spec["audio"], rate=sr, layout=channel_layout(wave.shape[0]))
                        aenc = _AudioEncoder(container, astream, wave, sr)
                elif shape != (vstream.height, vstream.width):
                    raise ValueError(f"All frames must have one size; got {shape} after "
                                     f"{(vstream.height, vstream.width)}.")
                for img in frames:
                    if pictures:
                        frame = _encoder_picture(img, spec["pix_fmt"], 1 / rate)
                    else:
                        frame = _gif_frame(img) if codec == "gif" else av.VideoFrame.from_ndarray(img, format="rgb24")
                    frame.pts = n
                    n += 1
                    container.mux(vstream.encode(frame))
                if aenc is not None:
                    aenc.encode_until(int(n * sr / rate))
                if progress is not None:
                    progress.update(len(frames))
                else:
                    bridge.check_interrupt()
            if vstream is None or n == 0:
                raise ValueError("No frames to write: the clip is empty.")
            container.mux(vstream.encode(None))
            if aenc is not None:
                # Exactly frames/fps seconds of sound: trimmed or padded, never drifting.
                aenc.encode_until(int(round(n * sr / rate)))
                aenc.finish()
        paths.replace_reserved(part, path)
    finally:
        part.unlink(missing_ok=True)
    return probe(path)


def _video_sound(audio, spec: dict) -> tuple["np.ndarray", int]:
    """A video's sound from an AUDIO dict or (wave, rate): mono or stereo (downmixed), at a rate its codec takes."""
    wave, sr = audio_to_numpy(audio) if isinstance(audio, dict) else audio
    channel_layout(wave.shape[0])
    wave = to_channels(wave, 2) if wave.shape[0] > 2 else wave
    if spec["audio"] == "libopus" and sr != 48000:
        wave, sr = resample(wave, sr, 48000), 48000
    return wave, sr


def copyable_codec(video: VideoFile) -> str | None:
    """The CODECS key whose container takes `video`'s encoded pictures as they are, or None (re-encode).

    A VFR or truncated source is never copied: the pack serves those at a constant rate, frame by frame.
    """
    if video.variable_rate or video.missing_frames:
        return None
    with _open(video.path) as container:
        name = container.streams.video[0].codec_context.name
    return {"h264": "h264", "vp9": "vp9"}.get(name)


def remux_with_audio(video: VideoFile, audio, path) -> VideoFile:
    """`video`'s encoded pictures copied packet for packet (no decode, no re-encode) with `audio` as its one
    sound, cut or padded to exactly frames/fps from the first picture, as write_video makes it.

    Only the sound is encoded: putting a track under a clip costs the audio encoder, not a video encode.
    The caller checks copyable_codec(video) first; `path`'s suffix must be that codec's container.
    """
    codec = copyable_codec(video)
    if codec is None or Path(path).suffix.lower() != CODECS[codec]["suffix"]:
        raise ValueError(f"{Path(video.path).name!r} cannot be copied into {Path(path).name!r}; re-encode it.")
    path = Path(path)
    _reserve_check(path)
    spec = CODECS[codec]
    wave, sr = _video_sound(audio, spec)
    part = paths.temp_sibling(path)
    try:
        with _open(video.path) as source, _av().open(str(part), "w", format=spec["suffix"].lstrip(".")) as container:
            vin = source.streams.video[0]
            vout = container.add_stream_from_template(vin)
            astream = container.add_stream(spec["audio"], rate=sr, layout=channel_layout(wave.shape[0]))
            aenc = _AudioEncoder(container, astream, wave, sr)
            start = float((vin.start_time or 0) * vin.time_base)
            aenc.pts = int(round(start * astream.rate))  # the sound starts with the first picture
            for packet in source.demux(vin):
                if packet.dts is None:  # the demuxer's flush packet
                    continue
                if packet.pts is not None:  # sound up to this picture, so the streams interleave
                    at = float(packet.pts * packet.time_base) - start
                    aenc.encode_until(max(0, int(at * sr)))
                packet.stream = vout
                container.mux(packet)
                bridge.check_interrupt()
            aenc.encode_until(int(round(video.frame_count * sr / video.fps)))
            aenc.finish()
        paths.replace_reserved(part, path)
    finally:
        part.unlink(missing_ok=True)
    return probe(path)


def _is_pictures(frames) -> bool:
    """A chunk of av.VideoFrame pictures (the YUV fast path) rather than a uint8 RGB array."""
    return isinstance(frames, (list, tuple)) and bool(frames) and hasattr(frames[0], "planes")


def _encoder_picture(picture, pix_fmt: str, time_base):
    """A decoded or blended picture ready for the encoder: its pixel format and clock, no frame type forced."""
    av = _av()
    if picture.format.name != pix_fmt:
        picture = picture.reformat(format=pix_fmt)
    # A decoder marks pictures I/P/B; libx264 would obey those marks, so let it choose as for any new frame.
    picture.pict_type = av.video.frame.PictureType.NONE
    # A decoded picture keeps the source stream's clock; pts are counted in the output's frames.
    picture.time_base = time_base
    return picture


def _as_uint8_frames(frames, even: bool):
    import numpy as np

    frames = np.asarray(frames)
    if frames.ndim == 3:
        frames = frames[None]
    if frames.ndim != 4 or frames.shape[-1] not in (3, 4):
        raise ValueError(f"Frames must be [n,H,W,3]; got shape {frames.shape}.")
    if frames.dtype != np.uint8:
        frames = (np.clip(frames, 0, 1) * 255 + 0.5).astype(np.uint8)
    frames = frames[..., :3]
    return _even_pad(frames) if even else frames


def _gif_frame(img):
    """rgb24 -> pal8 with an adaptive palette per frame (swscale has no rgb24->pal8)."""
    import numpy as np
    from PIL import Image

    av = _av()
    quant = Image.fromarray(img).quantize(256, method=Image.Quantize.FASTOCTREE)
    palette = np.zeros((256, 4), np.uint8)
    colours = np.array(quant.getpalette()[:768], np.uint8).reshape(-1, 3)
    # PyAV (18.x) reads the pal8 palette rows as A,R,G,B bytes; tests check the colours round-trip.
    palette[:, 0] = 255
    palette[: len(colours), 1:] = colours
    return av.VideoFrame.from_ndarray((np.asarray(quant), palette), format="pal8")


def _add_video_stream(container, spec, codec, rate, width, height, crf, preset):
    stream = container.add_stream(spec["encoder"], rate=rate)
    stream.width, stream.height = width, height
    stream.pix_fmt = spec["pix_fmt"]
    stream.time_base = 1 / rate
    if codec == "h264":
        stream.options = {"crf": str(crf), "preset": preset}
    elif codec == "vp9":
        stream.options = {"crf": str(crf + 12), "b": "0", "deadline": "realtime", "cpu-used": "8"}
    stream.thread_type = "AUTO"
    return stream


def temp_video_path(stem: str, codec: str = "h264") -> Path:
    """A fresh path in the temp folder for an intermediate video (nodes pass files, not frames)."""
    folder = paths.safe_join(bridge.temp_directory(), "animation_studio_video", what="temp folder")
    folder.mkdir(parents=True, exist_ok=True)
    return paths.register_temp(paths.new_random_file(folder, f"{paths.clean_stem(stem)}_", CODECS[codec]["suffix"]))
