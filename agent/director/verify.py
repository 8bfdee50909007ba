"""Verification instead of a score: every post-condition of a plan, measured on the real output files.

`verify(postconditions, outputs, inputs)` runs each post-condition an operation declared
(agent/director/ops.py) against the files the run wrote and returns one `Check` per post-condition:
what was measured, what was expected, a sentence a person reads and, when it failed, a concrete edit
for the next iteration (another speed, a bigger factor, a louder line...). `verdict(checks)` approves
only when there is at least one hard check and every hard check passed: nothing is averaged, so a
noise image, a sine tone, a wrong line, a clip of the wrong length or a placeholder card is never
approved however well it does elsewhere.

Measuring tools: PyAV through nodes/video_io.py (probe, decode), Tesseract's CLI for burned-in text
(Debian tesseract-ocr with eng and ita; .ci/install.d/ocr.sh), Whisper base through faster-whisper for
spoken words (nodes/voice/asr.py), PySceneDetect through nodes/video.py for scene activity, MediaPipe
landmarks through nodes/face for the achieved exaggeration.

A post-condition is `{"check", "op", "hard", "expect"}` and may also carry `"params"` (the operation's
parameters, so an edit can give the new value rather than a relative change) and `"path"` (the output
file to check, when the run wrote several of the same kind).
Edits: `{"op_index": int | "op": str, "params": {...}, "reason": str}` when the current parameters
are known, else `{"op_index" | "op", "multiply": {name: factor}} / {"add": {name: delta}}` with a reason.
"""
from __future__ import annotations

import difflib
import json
import math
import shutil
import subprocess
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from ...nodes import bridge
from ...nodes import video_io as vio

VIDEO_SUFFIXES = (".mp4", ".webm", ".mov", ".mkv", ".gif", ".avi")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp")
AUDIO_SUFFIXES = (".wav", ".flac", ".mp3", ".ogg", ".m4a")
TEXT_SUFFIXES = (".txt", ".json", ".md", ".srt")
OCR_TIMEOUT_S = 20.0          # one tesseract call on one caption band
OCR_MIN_MATCH = 0.85          # share of the caption's characters read back, in order
EXAGGERATION_MAX_FACTOR = 5.0  # the warp clamps to this (nodes/face/warp.clamp_factor)


@dataclass
class Check:
    check: str
    op: str | int | None
    hard: bool
    passed: bool
    measured: dict = field(default_factory=dict)
    expected: dict = field(default_factory=dict)
    detail: str = ""
    edit: dict | None = None

    def as_dict(self) -> dict:
        return asdict(self)


class _Unverifiable(Exception):
    """The check could not measure (no such output, a tool or model missing): it fails, saying why."""


# ---------------------------------------------------------------- outputs and inputs
def kind_of(path) -> str | None:
    p = Path(path)
    if p.is_dir():
        return "dataset"
    suffix = p.suffix.lower()
    for kind, suffixes in (("video", VIDEO_SUFFIXES), ("image", IMAGE_SUFFIXES), ("audio", AUDIO_SUFFIXES),
                           ("text", TEXT_SUFFIXES)):
        if suffix in suffixes:
            return kind
    return None


def _pick(pc: dict, outputs: list[str], kinds: tuple[str, ...]) -> Path:
    """The output a check reads: the post-condition's own path, else the last output of the first kind there is."""
    if pc.get("path"):
        path = Path(pc["path"])
        if not path.exists():
            raise _Unverifiable(f"the output {path.name!r} it names does not exist")
        return path
    for kind in kinds:
        found = [Path(o) for o in outputs if kind_of(o) == kind and Path(o).exists()]
        if found:
            return found[-1]
    raise _Unverifiable(f"no {' or '.join(kinds)} output was written (outputs: "
                        f"{', '.join(Path(o).name for o in outputs) or 'none'})")


def _input(inputs: dict, kind: str) -> Path | None:
    value = (inputs or {}).get(kind)
    if isinstance(value, (list, tuple)):
        value = value[0] if value else None
    return Path(value) if value else None


def _probe(path: Path):
    try:
        return vio.probe(path)
    except ValueError as exc:
        raise _Unverifiable(str(exc)) from None


def _audio_of(path: Path) -> tuple[np.ndarray, int]:
    try:
        return vio.decode_audio(path)
    except ValueError as exc:
        raise _Unverifiable(str(exc)) from None


def _image(path: Path) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as img:
            return np.asarray(img.convert("RGB"))
    except (UnidentifiedImageError, OSError) as exc:
        raise _Unverifiable(f"{path.name!r} is not a readable image ({exc})") from None


def _frames_at(video, times: list[float], max_size: int | None = None) -> list[np.ndarray]:
    """RGB frames of a VideoFile at the given seconds."""
    out = []
    for t in times:
        i = min(video.frame_count - 1, max(0, int(round(t * video.fps))))
        out.append(next(vio.iter_frames(video, i, i + 1, max_size=max_size))[0])
    return out


def _pictures(path: Path, count: int = 4, max_size: int | None = 512) -> list[np.ndarray]:
    """A few RGB pictures of an image or video output (evenly spread over a video)."""
    if kind_of(path) == "image":
        return [_image(path)]
    video = _probe(path)
    return _frames_at(video, [video.duration * (k + 0.5) / count for k in range(count)], max_size)


def _edit(pc: dict, reason: str, params: dict | None = None, multiply: dict | None = None,
          add: dict | None = None) -> dict | None:
    """An edit of the operation the post-condition belongs to, with new values when its params are known;
    None when it would change nothing (the loop then stops instead of repeating the same run)."""
    target = {"op_index": pc["op"]} if isinstance(pc.get("op"), int) else {"op": pc.get("op")}
    current = pc.get("params") or {}
    new = {k: v for k, v in (params or {}).items() if current.get(k) != v}
    for name, factor in (multiply or {}).items():
        if isinstance(current.get(name), (int, float)):
            new[name] = round(float(current[name]) * factor, 4)
        else:
            target.setdefault("multiply", {})[name] = round(factor, 4)
    for name, delta in (add or {}).items():
        if isinstance(current.get(name), (int, float)):
            new[name] = round(float(current[name]) + delta, 3)
        else:
            target.setdefault("add", {})[name] = round(delta, 3)
    if not (new or target.get("multiply") or target.get("add")):
        return None
    if new:
        target["params"] = new
    target["reason"] = reason
    return target


def _rms_dbfs(wave: np.ndarray) -> float:
    rms = float(np.sqrt(np.mean(np.square(wave, dtype=np.float64)))) if wave.size else 0.0
    return 20 * math.log10(rms) if rms > 1e-10 else -200.0


# ---------------------------------------------------------------- checks on files and timing
def check_exists(pc, expect, outputs, inputs) -> tuple[bool, dict, str, dict | None]:
    kind = expect.get("kind", "video")
    path = _pick(pc, outputs, (kind,))
    measured = {"path": path.name, "bytes": path.stat().st_size if path.is_file() else None}
    if kind == "video":
        v = _probe(path)
        measured.update(frames=v.frame_count, seconds=round(v.duration, 3))
    elif kind == "image":
        h, w = _image(path).shape[:2]
        measured.update(width=w, height=h)
    elif kind == "audio":
        wave, rate = _audio_of(path)
        measured.update(seconds=round(wave.shape[1] / rate, 3))
    elif kind == "text":
        text = path.read_text(encoding="utf-8", errors="replace").strip()
        measured.update(chars=len(text))
        if not text:
            return False, measured, f"{path.name} is empty.", None
    elif kind == "dataset":
        images = [p for p in path.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES]
        measured.update(images=len(images))
        if not images:
            return False, measured, f"the dataset folder {path.name} holds no images.", None
    return True, measured, f"{path.name} exists and reads as {kind}.", None


def _media_seconds(path: Path) -> float:
    if kind_of(path) == "audio":
        wave, rate = _audio_of(path)
        return wave.shape[1] / rate
    return _probe(path).duration


def _length_edit(pc: dict, measured_s: float, expected_s: float) -> dict | None:
    """Too long or too short: the value of the operation that set the length which lands on the target."""
    params = pc.get("params") or {}
    reason = f"the result lasts {measured_s:.2f} s instead of {expected_s:.2f} s"
    if params.get("seconds") and "speed" in params:  # retime to a target length: aim the target by the miss
        return _edit(pc, reason, multiply={"seconds": expected_s / measured_s})
    if params.get("last"):  # trim to the last seconds
        return _edit(pc, reason, params={"last": round(expected_s, 3)})
    if "speed" in params:  # retime, speed_ramp: the speed that would have given the target
        return _edit(pc, reason, multiply={"speed": measured_s / expected_s})
    if "hold" in params:  # freeze
        return _edit(pc, reason, params={"hold": round(max(0.1, params["hold"] + expected_s - measured_s), 3)})
    if "start" in params and "end" in params:  # trim
        return _edit(pc, reason, params={"end": round(float(params["start"]) + expected_s, 3)})
    if "seconds" in params:  # title card
        return _edit(pc, reason, params={"seconds": round(expected_s, 3)})
    return None


def check_duration(pc, expect, outputs, inputs):
    path = _pick(pc, outputs, ("video", "audio"))
    seconds = _media_seconds(path)
    want, tol = float(expect["seconds"]), float(expect.get("tolerance", 0.1))
    ok = abs(seconds - want) <= tol
    measured = {"seconds": round(seconds, 3), "path": path.name}
    words = f"{path.name} lasts {seconds:.2f} s; the plan asks for {want:.2f} ± {tol:.2f} s."
    return ok, measured, words, None if ok else _length_edit(pc, seconds, want)


def check_frame_count(pc, expect, outputs, inputs):
    path = _pick(pc, outputs, ("video",))
    v = _probe(path)
    want, tol = int(expect["frames"]), int(expect.get("tolerance", 1))
    ok = abs(v.frame_count - want) <= tol
    words = f"{path.name} has {v.frame_count} frames; the plan asks for {want} ± {tol}."
    edit = None if ok else _length_edit(pc, v.frame_count / v.fps, want / v.fps)
    return ok, {"frames": v.frame_count, "fps": round(v.fps, 3)}, words, edit


def check_fps(pc, expect, outputs, inputs):
    path = _pick(pc, outputs, ("video",))
    v = _probe(path)
    want = float(expect["fps"])
    ok = abs(v.fps - want) <= max(0.01 * want, 0.05)
    words = f"{path.name} plays at {v.fps:.3f} fps; the plan asks for {want:g}."
    return ok, {"fps": round(v.fps, 3)}, words, None if ok else _edit(pc, "wrong frame rate", params={"fps": want})


def check_audio_present(pc, expect, outputs, inputs):
    path = _pick(pc, outputs, ("video", "audio"))
    floor = float(expect.get("min_rms_dbfs", -40.0))
    try:
        wave, rate = vio.decode_audio(path)
    except ValueError:
        return False, {"has_audio": False}, f"{path.name} has no sound track.", None
    level = _rms_dbfs(wave)
    ok = level >= floor
    words = f"{path.name} has sound at {level:.1f} dBFS RMS (at least {floor:.0f} dBFS asked)."
    edit = None
    if not ok:
        params = pc.get("params") or {}
        reason = f"the sound is {floor - level:.1f} dB too quiet"
        if isinstance(params.get("level_db"), (int, float)):  # music: raise the bed
            edit = _edit(pc, reason, params={"level_db": round(min(6.0, params["level_db"] + floor - level + 3), 1)})
        elif "emotion" in params:  # a voice line: say it with more energy
            edit = _edit(pc, reason + ": a louder delivery", params={"emotion": "excited"})
    return ok, {"has_audio": True, "rms_dbfs": round(level, 2), "seconds": round(wave.shape[1] / rate, 3)}, words, edit


def _stream_starts(path: Path) -> tuple[float, float]:
    """(video, audio) start times of a file's first streams, in seconds (0 when the container says nothing)."""
    import av

    with av.open(str(path)) as container:
        def start(stream):
            return float(stream.start_time * stream.time_base) if stream.start_time is not None else 0.0

        return start(container.streams.video[0]), start(container.streams.audio[0])


def check_audio_sync(pc, expect, outputs, inputs):
    """Sound and picture start together and last as long as each other."""
    path = _pick(pc, outputs, ("video",))
    v = _probe(path)
    if not v.has_audio:
        return False, {"has_audio": False}, f"{path.name} has no sound to be in sync with.", None
    wave, rate = _audio_of(path)
    audio_s = wave.shape[1] / rate
    video_start, audio_start = _stream_starts(path)
    length_gap, start_gap = abs(audio_s - v.duration), abs(audio_start - video_start)
    offset = max(length_gap, start_gap)
    limit = float(expect.get("max_offset_s", 0.1))
    ok = offset <= limit
    words = (f"sound lasts {audio_s:.2f} s and picture {v.duration:.2f} s, starting {start_gap:.3f} s apart: "
             f"off by {offset:.3f} s (at most {limit:.2f} s).")
    measured = {"video_s": round(v.duration, 3), "audio_s": round(audio_s, 3), "start_gap_s": round(start_gap, 3),
                "offset_s": round(offset, 3)}
    # No operation parameter changes how a track is fitted to the picture: a mismatch is a tool fault.
    return ok, measured, words, None


def check_image_size(pc, expect, outputs, inputs):
    path = _pick(pc, outputs, ("image", "video"))
    if kind_of(path) == "image":
        h, w = _image(path).shape[:2]
    else:
        v = _probe(path)
        w, h = v.width, v.height
    want = (int(expect["width"]), int(expect["height"]))
    ok = (w, h) == want
    words = f"{path.name} is {w}x{h}; the plan asks for {want[0]}x{want[1]}."
    return ok, {"width": w, "height": h}, words, None  # no operation parameter sets the picture size


# Container names PyAV reports for each export format.
_CONTAINERS = {"mp4": ("mp4", "mov"), "webm": ("webm", "matroska"), "gif": ("gif",), "wav": ("wav",),
               "png": ("png_pipe", "image2"), "mp3": ("mp3",), "flac": ("flac",), "ogg": ("ogg",)}


def check_format(pc, expect, outputs, inputs):
    want = str(expect["format"]).lower()
    kinds = (("image",) if want in ("png", "jpg", "jpeg", "webp") else
             ("audio",) if want in ("wav", "mp3", "flac", "ogg") else ("video",))
    path = _pick(pc, outputs, kinds)
    if kinds == ("image",):
        from PIL import Image

        with Image.open(path) as img:
            found = (img.format or "").lower()
        ok = found == want or (want == "jpg" and found == "jpeg")
    else:
        import av

        with av.open(str(path)) as container:
            found = container.format.name
        ok = any(name in found.split(",") for name in _CONTAINERS.get(want, (want,)))
    ok = ok and path.suffix.lower().lstrip(".") == want
    words = f"{path.name} is a {found} file; the plan asks for {want}."
    return ok, {"container": found, "suffix": path.suffix}, words, None if ok else _edit(pc, "wrong format",
                                                                                        params={"format": want})


# ---------------------------------------------------------------- pictures: placeholder, noise
def _gray(img: np.ndarray, max_side: int = 256) -> np.ndarray:
    import cv2

    h, w = img.shape[:2]
    scale = min(1.0, max_side / max(h, w))
    if scale < 1:
        img = cv2.resize(img, (max(1, int(w * scale)), max(1, int(h * scale))), interpolation=cv2.INTER_AREA)
    return cv2.cvtColor(np.ascontiguousarray(img), cv2.COLOR_RGB2GRAY).astype(np.float32)


def picture_measures(img: np.ndarray) -> dict:
    """Statistics that tell a real picture from a card, a flat field or noise (on a 256 px grey copy).

    - detail_fraction: share of 8x8 blocks whose grey levels vary (std > 3): a gradient card has almost
      none outside its caption, any real picture has many.
    - gradient_fit: share of pixels within 3 levels of their row's (or column's) mean: a vertical or
      horizontal gradient card is explained by one colour per row.
    - neighbour_correlation: correlation of each pixel with its right and lower neighbours: natural
      pictures are smooth at the pixel scale (> 0.8), white noise is not (about 0).
    - coarse_correlation: the same on a 32 px copy: natural pictures stay correlated at every scale
      (0.6-0.95 measured on real footage and photos), noise made of big random blocks does not (about 0).
    - spectral_slope: slope of the radial power spectrum in log-log: about -2 for natural pictures,
      about 0 for white noise.
    - jpeg_bits_per_pixel: JPEG quality 90 size: noise does not compress.
    """
    import cv2

    g = _gray(img)
    h, w = g.shape
    blocks = g[: h // 8 * 8, : w // 8 * 8].reshape(h // 8, 8, w // 8, 8).std(axis=(1, 3))
    rows = np.abs(g - g.mean(axis=1, keepdims=True)) <= 3
    cols = np.abs(g - g.mean(axis=0, keepdims=True)) <= 3
    std = float(g.std())

    def corr(a, b):
        a, b = a.ravel() - a.mean(), b.ravel() - b.mean()
        den = math.sqrt(float((a * a).sum() * (b * b).sum()))
        return float((a * b).sum() / den) if den > 1e-6 else 1.0

    def neighbour_corr(a):
        return (corr(a[:, :-1], a[:, 1:]) + corr(a[:-1], a[1:])) / 2

    neighbour = neighbour_corr(g)
    coarse = neighbour_corr(_gray(img, 32))
    spectrum = np.abs(np.fft.fftshift(np.fft.fft2(g - g.mean()))) ** 2
    yy, xx = np.indices(spectrum.shape)
    radius = np.hypot(yy - h / 2, xx - w / 2).astype(int)
    power = np.bincount(radius.ravel(), spectrum.ravel()) / np.maximum(np.bincount(radius.ravel()), 1)
    freqs = np.arange(2, min(h, w) // 2)
    slope = float(np.polyfit(np.log(freqs), np.log(power[freqs] + 1e-9), 1)[0]) if len(freqs) > 4 else 0.0
    ok, jpeg = cv2.imencode(".jpg", np.ascontiguousarray(img[..., ::-1]), [cv2.IMWRITE_JPEG_QUALITY, 90])
    return {"detail_fraction": round(float((blocks > 3).mean()), 4),
            "gradient_fit": round(float(max(rows.mean(), cols.mean())), 4),
            "grey_std": round(std, 2),
            "neighbour_correlation": round(neighbour, 4),
            "coarse_correlation": round(coarse, 4),
            "spectral_slope": round(slope, 3),
            "jpeg_bits_per_pixel": round(8 * len(jpeg) / (img.shape[0] * img.shape[1]), 3) if ok else None}


# A card: little detail, or almost everything explained by a one-dimensional gradient.
PLACEHOLDER_MAX_DETAIL = 0.15
PLACEHOLDER_MIN_GRADIENT_FIT = 0.8
# Noise: pixels unrelated to their neighbours and a flat spectrum; flat: no variation at all.
NOISE_MAX_CORRELATION = 0.5
NOISE_MAX_COARSE_CORRELATION = 0.3
NOISE_MIN_SLOPE = -1.0
FLAT_MAX_STD = 2.0


def tonality(wave: np.ndarray) -> float:
    """Share of the sound's energy within 1 % of its strongest frequency: 1.0 for a steady sine tone,
    about 0.02 for speech, 0.4-0.75 for the pack's music stings."""
    mono = wave.mean(axis=0) if wave.ndim == 2 else wave
    mono = mono.astype(np.float64) - mono.mean()
    if mono.size < 16:
        return 0.0
    spec = np.abs(np.fft.rfft(mono * np.hanning(mono.size))) ** 2
    peak = int(np.argmax(spec))
    width = max(2, int(0.01 * peak))
    return float(spec[max(0, peak - width):peak + width + 1].sum() / max(spec.sum(), 1e-20))


PLACEHOLDER_MIN_TONALITY = 0.85
SILENT_DBFS = -60.0


def _audio_placeholder(pc, path: Path):
    wave, rate = _audio_of(path)
    level, tone = _rms_dbfs(wave), tonality(wave)
    measured = {"rms_dbfs": round(level, 2), "tonality": round(tone, 4), "seconds": round(wave.shape[1] / rate, 3)}
    if level < SILENT_DBFS or tone > PLACEHOLDER_MIN_TONALITY:
        what = "silence" if level < SILENT_DBFS else f"a steady test tone ({tone:.0%} of its energy at one pitch)"
        return False, measured, f"{path.name} is {what}, not the asked-for sound.", None
    return True, measured, f"{path.name} is real sound ({level:.1f} dBFS, tonality {tone:.2f}), not a tone.", None


def check_not_placeholder(pc, expect, outputs, inputs):
    path = _pick(pc, outputs, ("video", "image", "audio"))
    if kind_of(path) == "audio":
        return _audio_placeholder(pc, path)
    per = [picture_measures(p) for p in _pictures(path)]
    detail = float(np.median([m["detail_fraction"] for m in per]))
    fit = float(np.median([m["gradient_fit"] for m in per]))
    card = detail < PLACEHOLDER_MAX_DETAIL or fit > PLACEHOLDER_MIN_GRADIENT_FIT
    measured = {"detail_fraction": round(detail, 4), "gradient_fit": round(fit, 4), "pictures": len(per)}
    if card:
        words = (f"{path.name} looks like a placeholder card (gradient/mood card or animatic): only "
                 f"{detail:.0%} of it has detail and {fit:.0%} is explained by a one-colour-per-row gradient.")
        return False, measured, words, None  # no parameter brings a missing model or source back
    return True, measured, f"{path.name} has real picture detail ({detail:.0%} of it), not a card.", None


def check_image_content(pc, expect, outputs, inputs):
    path = _pick(pc, outputs, ("image", "video"))
    per = [picture_measures(p) for p in _pictures(path, count=2)]
    m = min(per, key=lambda x: x["neighbour_correlation"])
    flat = m["grey_std"] < FLAT_MAX_STD
    noise = (m["neighbour_correlation"] < NOISE_MAX_CORRELATION or m["spectral_slope"] > NOISE_MIN_SLOPE
             or m["coarse_correlation"] < NOISE_MAX_COARSE_CORRELATION)
    if flat:
        words = f"{path.name} is flat (grey std {m['grey_std']:.1f}): there is no picture in it."
    elif noise:
        words = (f"{path.name} is noise, not a picture: neighbouring pixels correlate {m['neighbour_correlation']:.2f} "
                 f"at full size and {m['coarse_correlation']:.2f} at 32 px (natural pictures > "
                 f"{NOISE_MAX_CORRELATION} and > {NOISE_MAX_COARSE_CORRELATION}) and its spectrum falls with slope "
                 f"{m['spectral_slope']:.2f} (natural about -2, noise about 0).")
    else:
        words = (f"{path.name} has natural picture structure (neighbour correlation {m['neighbour_correlation']:.2f}, "
                 f"spectral slope {m['spectral_slope']:.2f}).")
    ok = not (flat or noise)
    return ok, m, words, None  # the image op has no seed to change: a rerun would give the same picture


# ---------------------------------------------------------------- burned-in text (OCR)
def _tesseract() -> str:
    exe = shutil.which("tesseract")
    if not exe:
        raise _Unverifiable("the 'tesseract' OCR program is not installed (Debian: apt-get install tesseract-ocr "
                            "tesseract-ocr-eng tesseract-ocr-ita; .ci/install.d/ocr.sh)")
    return exe


def ocr(image: np.ndarray, language: str = "eng", psm: int = 6) -> str:
    """Tesseract's reading of a (preprocessed, grey or RGB) uint8 picture."""
    import cv2

    exe = _tesseract()
    lang = {"en": "eng", "it": "ita", "en-it": "eng"}.get(language, language)
    if lang not in ("eng", "ita"):
        raise ValueError(f"OCR language {language!r}: use 'eng' or 'ita'.")
    with tempfile.TemporaryDirectory(prefix="ocr_") as tmp:
        png = Path(tmp) / "band.png"
        cv2.imwrite(str(png), image if image.ndim == 2 else image[..., ::-1])
        try:
            run = subprocess.run([exe, str(png), "stdout", "-l", lang, "--psm", str(psm)], capture_output=True,
                                 timeout=OCR_TIMEOUT_S, check=False)
        except subprocess.TimeoutExpired:
            raise _Unverifiable(f"tesseract took longer than {OCR_TIMEOUT_S:.0f} s on one caption band") from None
    if run.returncode != 0:
        err = run.stderr.decode("utf-8", "replace").strip().splitlines()
        raise _Unverifiable(f"tesseract failed: {err[-1] if err else run.returncode} (is tesseract-ocr-{lang} "
                            "installed?)")
    return run.stdout.decode("utf-8", "replace").strip()


def caption_band_images(frames: list[np.ndarray], band: tuple[float, float]) -> list[np.ndarray]:
    """Black-on-white versions of one horizontal band, ready for OCR.

    Upscaled so letters are about 30+ px tall (Tesseract reads 20-40 px capitals best), grey, and
    thresholded with Otsu; the text class (the minority of pixels) becomes black. Two versions: the
    darkest value each pixel takes over the frames (a caption stays bright while the picture behind it
    moves), and the middle frame alone (a caption darker than its background).
    """
    import cv2

    h = frames[0].shape[0]
    y0, y1 = int(band[0] * h), max(int(band[0] * h) + 8, int(band[1] * h))
    greys = [cv2.cvtColor(np.ascontiguousarray(f[y0:y1]), cv2.COLOR_RGB2GRAY) for f in frames]
    candidates = [np.min(greys, axis=0), greys[len(greys) // 2]] if len(greys) > 1 else [greys[0]]
    out = []
    for g in candidates:
        scale = max(1.0, min(4.0, 720.0 / max(1, frames[0].shape[1])) * 2)
        g = cv2.resize(g, None, fx=scale, fy=scale, interpolation=cv2.INTER_CUBIC)
        _, bw = cv2.threshold(g, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
        if (bw == 255).mean() < 0.5:  # bright text is the minority: make it black on white
            bw = 255 - bw
        out.append(cv2.copyMakeBorder(bw, 20, 20, 20, 20, cv2.BORDER_CONSTANT, value=255))
    return out


def text_match(expected: str, read: str) -> float:
    """Share of the expected text's characters read back in order, in runs of 3+ characters, on the best
    line or pair of lines of the reading (case and punctuation aside, accents kept). Runs and lines keep
    OCR noise from the picture around the caption from adding up to a match by chance."""
    from ...nodes.voice.asr import normalise_words

    want = " ".join(normalise_words(expected))
    if not want:
        return 1.0
    lines = [" ".join(normalise_words(line)) for line in str(read).splitlines()]
    lines = [line for line in lines if line]
    windows = lines + [f"{a} {b}" for a, b in zip(lines, lines[1:])]
    best = 0
    for got in windows:
        blocks = difflib.SequenceMatcher(None, want, got, autojunk=False).get_matching_blocks()
        best = max(best, sum(b.size for b in blocks if b.size >= 3))
    return best / len(want)


_BANDS = {"top": (0.0, 0.4), "center": (0.3, 0.7), "bottom": (0.6, 1.0)}


def read_caption(path: Path, text: str, language: str, start: float | None, end: float | None,
                 position: str | None = None) -> dict:
    """OCR of the caption band(s) of an image or of video frames; the best reading (first good one wins).

    With its times known, three frames inside [start, end] (clear of the fades) are read together. With
    them unknown (a later retime moved them), five frames spread over the clip are read one by one, since
    the caption may be on screen in only some of them.
    """
    if kind_of(path) == "image":
        groups, times = [[_image(path)]], []
    else:
        video = _probe(path)
        if start is not None or end:
            t0 = max(0.0, float(start or 0.0))
            t1 = min(video.duration, float(end)) if end else video.duration
            t0, t1 = (t0, t1) if t1 > t0 else (0.0, video.duration)
            times = [t0 + (t1 - t0) * k for k in (0.3, 0.5, 0.7)]
            groups = [_frames_at(video, times)]
        else:
            times = [video.duration * k for k in (0.5, 0.3, 0.7, 0.1, 0.9)]
            groups = [[f] for f in _frames_at(video, times)]
    bands = ([position] if position in _BANDS else []) + [b for b in ("bottom", "center", "top") if b != position]
    best = {"read": "", "match": 0.0, "band": None}
    for frames in groups:
        for band in bands:
            for candidate in caption_band_images(frames, _BANDS[band]):
                read = ocr(candidate, language)
                score = text_match(text, read)
                if score > best["match"]:
                    best = {"read": read, "match": round(score, 3), "band": band}
                if score >= OCR_MIN_MATCH:
                    return {**best, "times_s": [round(t, 2) for t in times]}
    return {**best, "times_s": [round(t, 2) for t in times]}


def check_caption_ocr(pc, expect, outputs, inputs):
    path = _pick(pc, outputs, ("video", "image"))
    text, language = str(expect["text"]), str(expect.get("language", "eng"))
    params = pc.get("params") or {}
    position = params.get("position") or ("center" if "seconds" in params else None)  # a title is centred
    found = read_caption(path, text, language, expect.get("start"), expect.get("end"), position)
    ok = found["match"] >= OCR_MIN_MATCH
    words = (f"OCR ({language}) read {found['read']!r} in the {found['band'] or 'caption'} band of {path.name}: "
             f"{found['match']:.0%} of {text!r} (at least {OCR_MIN_MATCH:.0%} needed).")
    size = (pc.get("params") or {}).get("size")
    edit = None
    if not ok and isinstance(size, (int, float)) and size < 3.0:
        # At least one and a half times the default height: a step small enough to misread again would only
        # spend the next iteration (a 'tiny' caption the person asked for gives way to one that reads).
        edit = _edit(pc, "the caption does not read back: burn it larger",
                     params={"size": round(min(3.0, max(1.5, size * 1.5)), 2)})
    return ok, found, words, edit


# ---------------------------------------------------------------- spoken words
def check_speech(pc, expect, outputs, inputs):
    from ...nodes.voice import asr

    path = _pick(pc, outputs, ("audio", "video"))
    text, language = str(expect["text"]), expect.get("language")
    limit = float(expect.get("max_wer", 0.25))
    wave, rate = _audio_of(path)
    level = _rms_dbfs(wave)
    try:
        heard = asr.transcribe(wave, rate, language)
    except (bridge.MissingModel, bridge.MissingDependency) as exc:
        raise _Unverifiable(str(exc)) from None
    wer = asr.word_error_rate(text, heard)
    ok = wer <= limit
    measured = {"heard": heard, "wer": round(wer, 3), "rms_dbfs": round(level, 2), "path": path.name}
    words = (f"Whisper heard {heard!r} in {path.name}; word error rate {wer:.2f} against {text!r} "
             f"(at most {limit:.2f}).")
    if ok:
        return True, measured, words, None
    if level < -30:
        return False, measured, words, _edit(pc, f"the line is quiet ({level:.0f} dBFS): say it louder",
                                             params={"emotion": "excited"})
    return False, measured, words, _edit(pc, "the words heard are not the line: speak it again, calmer and clearer",
                                         params={"emotion": "neutral"})


# ---------------------------------------------------------------- scenes
def _small_grey_frames(video, width: int = 64) -> np.ndarray:
    import cv2

    out = []
    for chunk in vio.iter_frames(video, max_size=width, chunk=32):
        out += [cv2.cvtColor(f, cv2.COLOR_RGB2GRAY).astype(np.float32) for f in chunk]
    return np.stack(out)


def check_most_active_scene(pc, expect, outputs, inputs):
    from ...nodes import video as video_nodes

    source_path = Path(expect.get("source") or _input(inputs, "video") or "")
    if not source_path.is_file():
        raise _Unverifiable(f"the source clip {source_path.name!r} is not there to compare with")
    source = _probe(source_path)
    scenes = video_nodes.detect_scenes(source)
    activity = video_nodes.scene_activity(source, scenes)
    best = int(np.argmax(activity))
    a, b = scenes["scenes"][best]
    span = (a / source.fps, b / source.fps)
    # Where do the output's pictures come from? Each sampled output frame is matched to its nearest
    # source frame (64 px grey, mean absolute difference): a caption or a retime leaves the match intact.
    out_path = _pick(pc, outputs, ("video",))
    out = _probe(out_path)
    src_small = _small_grey_frames(source)
    tol = 0.25
    picks = []
    for frame in _frames_at(out, [out.duration * k for k in (0.1, 0.3, 0.5, 0.7, 0.9)], max_size=64):
        import cv2

        g = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY).astype(np.float32)
        if g.shape != src_small.shape[1:]:
            g = cv2.resize(g, (src_small.shape[2], src_small.shape[1]), interpolation=cv2.INTER_AREA)
        picks.append(int(np.argmin(np.abs(src_small - g).mean(axis=(1, 2)))) / source.fps)
    inside = [span[0] - tol <= t <= span[1] + tol for t in picks]
    planned = (expect.get("start"), expect.get("end"))
    planned_ok = True
    if planned[0] is not None and planned[1] is not None:
        overlap = min(span[1], float(planned[1])) - max(span[0], float(planned[0]))
        planned_ok = overlap >= 0.5 * min(span[1] - span[0], float(planned[1]) - float(planned[0]))
    ok = sum(inside) >= math.ceil(0.6 * len(inside)) and planned_ok
    measured = {"scenes_s": [[round(x / source.fps, 2), round(y / source.fps, 2)] for x, y in scenes["scenes"]],
                "activity": [round(x, 2) for x in activity], "most_active": best,
                "most_active_s": [round(span[0], 2), round(span[1], 2)],
                "output_from_s": [round(t, 2) for t in picks], "inside": sum(inside)}
    words = (f"the source's most active scene is #{best} ({span[0]:.2f}-{span[1]:.2f} s, activity "
             f"{activity[best]:.1f}); {sum(inside)} of {len(inside)} sampled output pictures come from it "
             f"(from {', '.join(f'{t:.2f}' for t in picks)} s).")
    edit = None if ok else _edit(pc, f"the output is not the most active scene (#{best}, "
                                     f"{span[0]:.2f}-{span[1]:.2f} s)",
                                 params={"by": "index", "index": best})
    return ok, measured, words, edit


# ---------------------------------------------------------------- exaggeration
def _landmarks(frames: list[np.ndarray]):
    from ...nodes.face.landmarks import track_images

    return track_images(np.stack(frames), as_video=False).points


def _same_face(image: np.ndarray, like: np.ndarray) -> np.ndarray | None:
    """The face in a photo nearest to the landmarks `like`: in a group photo the "largest" face can change
    when one face is warped, so the result's face is matched by place, not re-chosen."""
    from ...nodes.face.landmarks import LandmarkDetector, choose_face

    detector = LandmarkDetector(max_faces=8)
    try:
        faces = detector.detect(np.ascontiguousarray(image))[0]
    finally:
        detector.close()
    return faces[choose_face(faces, -1, like)[0]] if faces else None


def check_exaggeration(pc, expect, outputs, inputs):
    from ...nodes.face.metrics import achieved_factors, photo_achieved_factors

    factor, min_ratio = float(expect["factor"]), float(expect.get("min_ratio", 0.6))
    out_path = _pick(pc, outputs, ("video", "image"))
    if kind_of(out_path) == "image":
        src_path = _input(inputs, "image")
        if not src_path:
            raise _Unverifiable("no source photo among the inputs to compare with")
        src_img, out_img = _image(src_path), _image(out_path)
        src_pts = _landmarks([src_img])[0]
        out_pts = None if np.isnan(src_pts[0, 0]) else _same_face(out_img, src_pts)
        if out_pts is None:
            raise _Unverifiable("no face was found in the source photo or the result")
        # Deviation from the face at rest (the photo's own neutral, as its warp uses), re-detected.
        factors = photo_achieved_factors(src_pts, out_pts)
        if not factors:
            raise _Unverifiable("the photo's face shows no expression to scale (it is at rest)")
        achieved = factors["all"]
        measured = {"achieved_factor": round(achieved, 3),
                    "per_feature": {k: round(v, 3) for k, v in factors.items() if k != "all"}, "frames": 1}
    else:
        src_path = _input(inputs, "video")
        if not src_path:
            raise _Unverifiable("no source clip among the inputs to compare with")
        source, out = _probe(src_path), _probe(out_path)
        # Pair output frames with source frames by relative time (a retime after the warp keeps the order);
        # sizes may differ: achieved_factors aligns every face to one reference shape first.
        n = min(48, out.frame_count, source.frame_count)
        rel = (np.arange(n) + 0.5) / n
        src_pts = _landmarks(_frames_at(source, list(rel * source.duration), 480))
        out_pts = _landmarks(_frames_at(out, list(rel * out.duration), 480))
        factors = achieved_factors(src_pts, out_pts)
        if not factors:
            raise _Unverifiable("fewer than two frames with a face in both the source and the result")
        achieved = factors["all"]
        measured = {"achieved_factor": round(achieved, 3),
                    "per_feature": {k: round(v, 3) for k, v in factors.items() if k != "all"}, "frames": n}
    ok = achieved >= min_ratio * factor
    words = (f"re-detected landmarks give an achieved factor of {achieved:.2f} for the {factor:.2f} asked "
             f"(at least {min_ratio:.0%} of it = {min_ratio * factor:.2f} needed).")
    edit = None
    if not ok:
        new = min(EXAGGERATION_MAX_FACTOR, factor * factor / max(achieved, 0.5))
        pc = {**pc, "params": {"factor": factor, **(pc.get("params") or {})}}
        edit = _edit(pc, f"the expression moved {achieved:.2f}x, not {factor:.2f}x: push harder",
                     params={"factor": round(new, 2)})
    return ok, measured, words, edit


# ---------------------------------------------------------------- datasets
def check_dataset_subject(pc, expect, outputs, inputs):
    subject = str(expect["subject"]).strip().lower()
    path = _pick(pc, outputs, ("dataset",))
    summaries = sorted(path.rglob("summary.json"))
    summary = json.loads(summaries[0].read_text(encoding="utf-8")) if summaries else {}
    named = {str(summary.get(k) or "").strip().lower() for k in ("character", "subject_label", "trigger")} - {""}
    captions = list(path.rglob("*.txt"))
    mentioning = sum(subject in c.read_text(encoding="utf-8", errors="replace").lower() for c in captions)
    images = [p for p in path.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES]
    share = mentioning / len(captions) if captions else 0.0
    ok = bool(images) and (subject in named) and share >= 0.8
    measured = {"images": len(images), "summary_subject": sorted(named), "captions": len(captions),
                "captions_naming_subject": round(share, 3)}
    words = (f"the dataset {path.name} has {len(images)} images for {sorted(named) or 'no named subject'}; "
             f"{share:.0%} of its captions name {subject!r}.")
    return ok, measured, words, None  # the subject was asked for already: a rerun would not change it


CHECKS = {
    "exists": check_exists,
    "duration": check_duration,
    "frame_count": check_frame_count,
    "fps": check_fps,
    "audio_present": check_audio_present,
    "audio_sync": check_audio_sync,
    "caption_ocr": check_caption_ocr,
    "speech": check_speech,
    "most_active_scene": check_most_active_scene,
    "exaggeration": check_exaggeration,
    "not_placeholder": check_not_placeholder,
    "image_content": check_image_content,
    "image_size": check_image_size,
    "dataset_subject": check_dataset_subject,
    "format": check_format,
}


def verify(postconditions: list[dict], outputs: list[str], inputs: dict) -> list[Check]:
    """One measured Check per post-condition. A check that cannot measure fails and says why."""
    outputs = [str(o) for o in outputs or []]
    checks = []
    for pc in postconditions or []:
        name, expect, hard = pc.get("check"), dict(pc.get("expect") or {}), bool(pc.get("hard", True))
        fn = CHECKS.get(name)
        if fn is None:
            checks.append(Check(str(name), pc.get("op"), hard, False, {}, expect,
                                f"unknown post-condition {name!r}: nothing could verify it."))
            continue
        try:
            ok, measured, words, edit = fn(pc, expect, outputs, inputs or {})
        except _Unverifiable as exc:
            ok, measured, words, edit = False, {}, f"could not be measured: {exc}.", None
        except (bridge.MissingModel, bridge.MissingDependency) as exc:
            ok, measured, words, edit = False, {}, f"could not be measured: {exc}", None
        except (ValueError, KeyError, TypeError, OSError, RuntimeError) as exc:
            # A file a tool cannot read, or a malformed expectation: never approved, and the run goes on.
            ok, measured, words, edit = False, {}, f"could not be measured ({type(exc).__name__}: {exc}).", None
        checks.append(Check(name, pc.get("op"), hard, bool(ok), measured, expect, words, edit))
    return checks


def verdict(checks: list[Check]) -> dict:
    """Approved only with at least one hard check and every hard check passed."""
    hard = [c for c in checks if c.hard]
    failed = [c for c in checks if not c.passed]
    approved = bool(hard) and all(c.passed for c in hard)
    reason = ("every hard post-condition holds" if approved else
              "no hard post-condition was checked" if not hard else
              f"{sum(not c.passed for c in hard)} hard post-condition(s) failed")
    return {"approved": approved, "reason": reason,
            "failed": [{"check": c.check, "op": c.op, "hard": c.hard, "detail": c.detail} for c in failed],
            "edits": [c.edit for c in failed if c.edit]}
