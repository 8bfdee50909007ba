"""Voice family on real synthesized speech: the offline Piper voice, emotion, languages, profiles, analysis, workflow."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from animation_studio.nodes import bridge
from animation_studio.nodes.voice import CharacterVoice, PiperTTS, VoiceAnalysis, VoiceQualityCheck, analysis
from animation_studio.nodes.voice import audio as A
from animation_studio.nodes.voice import piper_tts, profiles, speak, text as T

pytest.importorskip("piper")

LINE = "We are going to Portorosso tomorrow, and nobody can stop us."


def _mono(audio):
    return A.from_audio(audio)


def _write_clip(path: Path, samples, rate):
    import soundfile as sf

    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), samples, rate)
    return path


def test_piper_speaks_for_real():
    audio, report = PiperTTS().run("Silence, Bruno! We are going.", "neutral", 0.5, "en", 0.0, 1.0)
    assert audio["waveform"].ndim == 3 and audio["waveform"].shape[:2] == (1, 1)
    samples, rate = _mono(audio)
    assert rate == 22050
    assert samples.size / rate > 0.3
    assert analysis.level_figures(samples, rate)["rms_dbfs"] > -35  # speech, not silence
    assert json.loads(report)["backend"] == "piper"


def test_emotion_and_pitch_change_the_speech_measurably():
    node = PiperTTS()

    def seconds(emotion, strength, pitch=0.0, n=2):
        # VITS samples its durations: average two renders (one render varies by about +-4 %).
        return np.mean([_mono(node.run(LINE, emotion, strength, "en", pitch, 1.0)[0])[0].size for _ in range(n)])

    neutral = seconds("neutral", 1.0)
    assert seconds("sad", 1.0) > 1.08 * neutral      # sad is slower (rate 0.8 at full strength)
    assert neutral > 1.06 * seconds("excited", 1.0)  # excited is faster (rate 1.22)
    assert abs(seconds("sad", 0.0) - neutral) / neutral < 0.1  # strength 0 is neutral whatever the label
    high, rate = _mono(node.run(LINE, "neutral", 0.0, "en", 6.0, 1.0)[0])
    low, _ = _mono(node.run(LINE, "neutral", 0.0, "en", 0.0, 1.0)[0])
    ratio = A.median_pitch_hz(high, rate) / A.median_pitch_hz(low, rate)
    assert 1.3 < ratio < 1.55  # +6 semitones = x1.41 (measured 1.38-1.42)
    assert abs(high.size - low.size) / low.size < 0.2  # the pitch shift keeps the duration (VITS varies +-8 %)


def test_languages_italian_phonemes_and_italian_accent():
    it = json.loads(PiperTTS().run("Silenzio, Bruno!", "neutral", 0.0, "it", 0.0, 1.0)[1])["details"]
    assert it["espeak_voice"] == "it" and "silˈɛntsi" in it["phonemes"][0]
    en_it = piper_tts.phonemize("I think the weather is great.", "en-it")[0]
    en = piper_tts.phonemize("I think the weather is great.", "en")[0]
    assert {"θ", "ð", "ɹ"} & set(en) and not {"θ", "ð", "ɹ"} & set(en_it)
    with pytest.raises(ValueError, match="not supported"):
        PiperTTS().run("Bonjour", "neutral", 0.0, "fr", 0.0, 1.0)


def test_bad_text_is_refused_and_long_text_is_split_and_joined():
    with pytest.raises(ValueError, match="empty"):
        PiperTTS().run("   ", "neutral", 0.5, "en", 0.0, 1.0)
    with pytest.raises(ValueError, match="limit"):
        T.clean_text("word " * 2000)
    long = " ".join(["Luca and Alberto ride the Vespa down the hill towards the harbour of Portorosso."] * 4)
    chunks = T.split_sentences(long)
    assert len(chunks) > 1 and all(len(c) <= T.MAX_CHUNK_CHARS for c in chunks)
    audio, report = PiperTTS().run(long, "neutral", 0.0, "en", 0.0, 1.2)
    assert json.loads(report)["details"]["chunks"] == len(chunks)
    samples, rate = _mono(audio)
    assert samples.size / rate > 8.0


def test_profiles_load_and_bad_profiles_say_why(studio_dirs, tmp_path, monkeypatch):
    for name in ("luca", "alberto", "giulia"):
        profile = profiles.load_profile(name)
        assert {"en", "it", "en-it"} <= set(profile.languages)
        assert profile.reference_for("determined") is not None
    assert profiles.load_profile("luca").reference_for("determined", 1).audio == "luca/determined_2.wav"
    with pytest.raises(ValueError, match="No voice profile"):
        profiles.load_profile("bruno")
    (tmp_path / "broken.yaml").write_text("character: broken\nbackends: [espeak9000]\n")
    monkeypatch.setattr("animation_studio.configs.voices.PROFILE_DIR", tmp_path)  # the profiles live in the base package
    with pytest.raises(ValueError, match="invalid voice profile"):
        profiles.load_profile("broken")


def test_missing_and_silent_reference_clips(studio_dirs):
    with pytest.raises(bridge.MissingModel, match="luca/determined.wav.*voices"):
        speak.speak("Silence, Bruno!", "luca", "determined", 0.8, "en", backend="xtts")
    clip = studio_dirs["models"] / "voices" / "luca" / "determined.wav"
    _write_clip(clip, np.zeros(22050 * 2, np.float32), 22050)
    with pytest.raises(ValueError, match="silent"):
        speak.speak("Silence, Bruno!", "luca", "determined", 0.8, "en", backend="xtts")
    _write_clip(clip, 0.3 * np.sin(np.arange(4000) / 10.0).astype(np.float32), 22050)
    with pytest.raises(ValueError, match="too short"):
        speak.speak("Silence, Bruno!", "luca", "determined", 0.8, "en", backend="gpt_sovits")
    with pytest.raises(ValueError, match="Language 'fr'"):
        speak.speak("Bonjour", "luca", "neutral", 0.5, "fr")


def test_auto_falls_back_to_the_offline_voice_and_says_why(studio_dirs, monkeypatch):
    monkeypatch.setenv("ANIMATION_STUDIO_GPT_SOVITS_URL", "http://127.0.0.1:9")  # discard port: nothing listens
    audio, report = CharacterVoice().run("Silenzio, Bruno!", "determined", 0.8, "luca", "it", "auto", 0, "")
    data = json.loads(report)
    assert data["backend"] == "piper" and data["language"] == "it"
    assert "no 'it' text language" in data["skipped_backends"]["gpt_sovits"]
    assert "xtts" in data["skipped_backends"]
    assert "not found" in data["skipped_backends"]["xtts"]  # no reference clip on disk yet
    clip, rate, _ = speak.speak("I'm not scared. I'm going up there.", "luca", "determined", 0.5, "en", "piper")
    _write_clip(studio_dirs["models"] / "voices" / "luca" / "determined.wav", clip, rate)
    audio, report = CharacterVoice().run("Silence, Bruno!", "determined", 0.8, "luca", "en", "auto", 0, "")
    assert "XTTS-v2 model folder 'xtts_v2' not found" in json.loads(report)["skipped_backends"]["xtts"]
    assert "python api_v2.py" in json.loads(report)["skipped_backends"]["gpt_sovits"]


def test_analysis_on_real_speech():
    luca, rate, _ = speak.speak(LINE, "luca", "neutral", 0.0, "en", "piper")
    giulia, _, _ = speak.speak(LINE, "giulia", "neutral", 0.0, "en", "piper")
    other_line, _, _ = speak.speak("The sea monster swam under the fishing boat at night.", "luca", "neutral",
                                   0.0, "en", "piper")
    refs = [(other_line, rate)]
    report = analysis.analyze(luca, rate, LINE, refs)
    assert report["duration_s"] == pytest.approx(luca.size / rate, abs=1e-3)
    assert 2.0 < report["syllables_per_s"] < 9.0 and report["words"] == 11
    assert report["lufs"] is not None and -35 < report["lufs"] < -10
    assert report["clipping_ratio"] == 0.0 and 0.0 <= report["silence_ratio"] < 0.5
    assert report["wav2vec2"]["available"] is False
    same = report["speaker"]["similarity"]
    other = analysis.analyze(giulia, rate, LINE, refs)["speaker"]["similarity"]
    assert same > 0.8 and same > other + 0.1
    assert "mfcc" in report["speaker"]["embedder"]
    # clipping and silence are measured, not guessed
    loud = np.clip(luca * 4.0, -1.0, 1.0)
    padded = np.concatenate([luca, np.zeros(luca.size * 2, np.float32)])
    assert analysis.level_figures(loud, rate)["clipping_ratio"] > 0.01
    assert analysis.level_figures(padded, rate)["silence_ratio"] > 0.6


def test_analysis_and_quality_nodes(studio_dirs):
    audio, synth = CharacterVoice().run("Silence, Bruno!", "determined", 0.8, "luca", "en", "piper", 0, "")
    report, sim, dur = VoiceAnalysis().run(audio, "Silence, Bruno!", "luca", synthesis_report=synth)
    data = json.loads(report)
    # No recording of Luca on disk: no similarity figure (never Piper against Piper), and the report says so.
    assert data["speaker"]["reference"].startswith("no reference") and data["speaker"]["similarity"] is None
    assert data["speaker"]["note"] == "no reference" and sim == 0.0
    assert data["synthesis"]["backend"] == "piper" and dur > 0.5
    ok = VoiceQualityCheck().run(report, 0.5, 0.3, 10.0)["result"]
    assert ok[0] is True
    bad = VoiceQualityCheck().run(report, 0.999, 5.0, 10.0)["result"]
    verdict = json.loads(bad[1])
    assert bad[0] is False and len(verdict["problems"]) == 1 and "duration" in verdict["problems"][0]
    with pytest.raises(ValueError, match="report"):
        VoiceQualityCheck().run("not json", 0.5, 0.3, 10.0)


def test_character_voice_workflow_end_to_end(studio_dirs, engine):
    graph = json.loads((Path(__file__).parents[1] / "workflows" / "api" / "character_voice.api.json").read_text())
    first = engine.run(graph)
    assert first.ok, first.message()
    wavs = [f for f in first.files if f.endswith(".wav")]
    assert len(wavs) == 1
    samples, rate = A.read_audio_file(Path(wavs[0]))
    assert rate == 22050 and samples.size / rate > 0.4
    report = json.loads(first.values["3"][0][0])
    assert report["speaker"]["similarity"] is None and report["speaker"]["reference"].startswith("no reference")
    assert report["duration_s"] > 0.4
    assert report["synthesis"]["character"] == "luca" and report["synthesis"]["emotion"] == "determined"
    verdict = json.loads(first.outputs["4"]["text"][0])
    assert verdict["approved"], verdict
    engine.clear_cache()
    second = engine.run(graph)
    assert second.ok and not set(second.files) & set(first.files)  # nothing overwritten
    assert Path(wavs[0]).stat().st_size > 1000


def test_director_voice_graph_validates_and_retries_with_another_reference(studio_dirs, engine):
    from animation_studio.agent.voices import voice_graph

    graph = voice_graph("Silenzio, Bruno!", "alberto", "excited", 0.9, "it", reference_variant=1)
    assert engine.validate(graph).ok
    result = engine.run(graph)
    assert result.ok, result.message()
    synthesis = json.loads(result.values["1"][1][0])
    assert synthesis["reference_variant"] == 1 and synthesis["character"] == "alberto"
    with pytest.raises(ValueError, match="No voice profile"):
        voice_graph("Hi", "bruno")
