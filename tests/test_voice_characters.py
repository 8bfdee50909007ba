"""Characters that sound like themselves: pitch AND formants per character (not a resampled tape), and a
speech recogniser (Whisper base, nodes/voice/asr.py) that understands each shipped character's lines.

The packaged Piper voice is an adult man (~100 Hz, F1/F2 ~550/1700 Hz on these lines). A child or a girl
sits about an octave higher in pitch but only ~15-25 % higher in formants; a resampling shift moves both by
the same factor (+12 semitones = formants x2, a chipmunk).
"""
from __future__ import annotations

import importlib.util

import numpy as np
import pytest

pytest.importorskip("piper")
from animation_studio.nodes.voice import asr, piper_tts, shaping, speak  # noqa: E402
from animation_studio.nodes.voice.audio import median_pitch_hz  # noqa: E402
from animation_studio.nodes.voice.emotion import Prosody  # noqa: E402

HAVE_ASR = all(importlib.util.find_spec(m) for m in ("faster_whisper", *asr.PART_PACKAGES))
needs_asr = pytest.mark.skipif(not HAVE_ASR, reason="faster-whisper / Whisper base packages not installed "
                                                     "(.ci/install.d/asr.sh)")

# Each shipped character's lines (the profiles' reference texts and the workflows' lines).
LINES = {"luca": {"en": "My name is Luca, and I live under the sea.", "it": "Silenzio, Bruno!"},
         "alberto": {"en": "Humans are easy. You just act like them.", "it": "Piacere, Girolamo Trombetta!"},
         "giulia": {"en": "This year, I am going to win the Portorosso Cup.", "it": "Andiamo! Benvenuti a Portorosso!"}}


@pytest.fixture(scope="module")
def voices():
    return {ch: {lang: speak.speak(text, ch, "neutral", 0.0, lang, "piper")[:2] for lang, text in lines.items()}
            for ch, lines in LINES.items()}


def test_formant_warp_moves_formants_and_keeps_pitch():
    line = LINES["giulia"]["en"]
    adult, rate, _ = piper_tts.synthesize(line, "en", Prosody())
    warped = shaping.warp_formants(adult, rate, 1.25)
    f1, f2 = shaping.formants(adult, rate)
    g1, g2 = shaping.formants(warped, rate)
    # F2 follows the warp closely; LPC's F1 on an adult male voice is rougher (measured 1.08 for 1.25).
    assert 1.1 < g2 / f2 < 1.45 and 1.0 < g1 / f1 < 1.45, ((f1, f2), (g1, g2))
    assert shaping.formant_scale(warped, rate, adult, rate) == pytest.approx(1.25, rel=0.04)
    assert median_pitch_hz(warped, rate) == pytest.approx(median_pitch_hz(adult, rate), rel=0.06)
    assert warped.size == adult.size and np.abs(warped).max() <= np.abs(adult).max() + 1e-6
    with pytest.raises(ValueError, match="formant ratio"):
        shaping.warp_formants(adult, rate, 3.0)


def test_each_character_is_a_child_not_a_tape(voices):
    adult, rate, _ = piper_tts.synthesize(LINES["luca"]["en"], "en", Prosody())
    tape, _, _ = piper_tts.synthesize(LINES["luca"]["en"], "en", Prosody(), 11.0)
    # The measure itself: a +11 semitone resampling moves the formants by 2^(11/12) = 1.89.
    assert shaping.formant_scale(tape, rate, adult, rate) == pytest.approx(1.89, rel=0.06)
    pitches = {}
    for ch in LINES:
        samples, rate = voices[ch]["en"]
        pitches[ch] = median_pitch_hz(samples, rate)
        same_line, _, _ = piper_tts.synthesize(LINES[ch]["en"], "en", Prosody())  # the adult voice, same words
        scale = shaping.formant_scale(samples, rate, same_line, rate)
        assert 150 < pitches[ch] < 260, (ch, pitches[ch])  # a child's pitch, not the adult's ~100 Hz
        profile = speak.load_profile(ch).piper.formant_scale
        assert scale == pytest.approx(profile, rel=0.06), (ch, scale, profile)  # a child's tract, not a tape
    assert pitches["alberto"] < pitches["luca"] and pitches["alberto"] < pitches["giulia"]


@needs_asr
def test_a_speech_recogniser_understands_each_character(voices):
    wer = {(ch, lang): asr.word_error_rate(LINES[ch][lang], asr.transcribe(*voices[ch][lang], lang))
           for ch in LINES for lang in LINES[ch]}
    print({f"{ch}/{lang}": round(w, 2) for (ch, lang), w in wer.items()})
    for ch in LINES:
        assert wer[(ch, "en")] <= 0.35, (ch, wer[(ch, "en")])
    # Italian through the English-trained voice stays hard for Whisper base: measured and reported by
    # tests/benchmarks/bench_voice.py; here it must at least be recognised as speech in words.
    assert all(wer[(ch, "it")] < 4.0 for ch in LINES)


def test_no_reference_recording_means_no_similarity_figure():
    refs, source = speak.character_references("luca")
    assert refs == [] and source.startswith("no reference")
    from animation_studio.nodes.voice import analysis

    samples, rate, _ = piper_tts.synthesize("Silence, Bruno!", "en", Prosody())
    report = analysis.speaker_similarity(samples, rate, refs)
    assert report["similarity"] is None and report["note"] == "no reference"
