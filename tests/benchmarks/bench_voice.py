"""Real-time factors of the voice backends that run here (CPU), and of the analysis and lip-sync fallback.

RTF = processing seconds / audio seconds (below 1 is faster than real time). GPT-SoVITS needs its
server and XTTS-v2 needs coqui-tts + weights: both are reported as not runnable when absent.
Peer in the same run: Piper with no pitch shift, so the cost of the character pitch post-process shows.
Run: .venv/bin/python tests/benchmarks/bench_voice.py
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

LINES = {
    "en": "Silence, Bruno! We are going to Portorosso tomorrow, and nobody can stop us. Not even your father.",
    "it": "Silenzio, Bruno! Domani andiamo a Portorosso, e nessuno ci può fermare.",
    "en-it": "Silence, Bruno! We are going to Portorosso tomorrow, and nobody can stop us.",
}


def timed(fn, repeat=3):
    best, out = float("inf"), None
    for _ in range(repeat):
        start = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - start)
    return best, out


def main():
    from animation_studio.nodes.voice import analysis, lipsync, piper_tts, sovits, speak, xtts
    from animation_studio.nodes.voice.emotion import Prosody, prosody_for

    start = time.perf_counter()
    piper_tts.load_voice()
    print(f"piper voice load: {time.perf_counter() - start:.2f} s")
    piper_tts.synthesize("warm up", "en", Prosody())
    rows = []
    for lang, line in LINES.items():
        secs, (audio, rate, _) = timed(lambda: piper_tts.synthesize(line, lang, prosody_for("determined", 0.8), 4.0))
        rows.append((f"piper {lang} (luca pitch +4 st, determined)", secs, audio.size / rate))
    secs, (audio, rate, _) = timed(lambda: piper_tts.synthesize(LINES["en"], "en", Prosody(), 0.0))
    rows.append(("piper en, no pitch shift (peer)", secs, audio.size / rate))
    secs, (samples, rate, _) = timed(lambda: speak.speak(LINES["en"], "luca", "determined", 0.8, "en", "piper"))
    rows.append(("CharacterVoice luca (profile + piper)", secs, samples.size / rate))
    refs, _ = speak.character_references("luca")
    secs, _ = timed(lambda: analysis.analyze(samples, rate, LINES["en"], refs))
    rows.append(("voice analysis (mfcc similarity, LUFS, pitch)", secs, samples.size / rate))
    frames = np.full((1, 256, 256, 3), 200, np.uint8)
    secs, _ = timed(lambda: lipsync.lip_sync(frames, samples, rate, 24.0, "energy", "0.4,0.6,0.2,0.1"), repeat=1)
    rows.append(("energy lip sync 256x256 @24 fps", secs, samples.size / rate))
    print(f"{'path':52s} {'seconds':>8s} {'audio s':>8s} {'RTF':>7s}")
    for name, secs, dur in rows:
        print(f"{name:52s} {secs:8.3f} {dur:8.2f} {secs / dur:7.3f}")
    peer = rows[3][1] / rows[3][2]
    print(f"pitch post-process cost: piper en +4 st RTF / no-shift RTF = {(rows[0][1] / rows[0][2]) / peer:.2f}x")
    try:
        import requests

        requests.get(sovits.server_url(), timeout=1)
        print("gpt_sovits: a server answers; benchmark it with a reference clip in models/voices")
    except Exception as exc:  # noqa: BLE001
        print(f"gpt_sovits: not runnable here ({type(exc).__name__}: no server at {sovits.server_url()})")
    try:
        xtts.model_folder()
    except Exception as exc:  # noqa: BLE001
        print(f"xtts: not runnable here ({exc})")


def characters() -> None:
    """Per character and language: pitch (Hz), F1/F2 (Hz, LPC), formant scale vs the packaged adult voice on
    the same line (1.0 = adult, a resampled tape = the pitch factor), and Whisper base's word error rate."""
    from animation_studio.nodes.voice import asr, piper_tts, shaping, speak
    from animation_studio.nodes.voice.audio import median_pitch_hz
    from animation_studio.nodes.voice.emotion import Prosody

    sys.path.insert(0, str(Path(__file__).parents[1]))
    from test_voice_characters import LINES  # noqa: E402

    print(f"\n{'character/lang':16s} {'pitch Hz':>8s} {'F1':>6s} {'F2':>6s} {'formants':>8s} {'WER':>5s}  heard")
    for lang in ("en", "it"):
        line = LINES["luca"][lang]
        adult, rate, _ = piper_tts.synthesize(line, lang, Prosody())
        print(f"{'adult (peer)/' + lang:16s} {median_pitch_hz(adult, rate):8.0f} "
              f"{shaping.formants(adult, rate)[0]:6.0f} {shaping.formants(adult, rate)[1]:6.0f} {1.0:8.2f}")
    for ch, lines in LINES.items():
        for lang, line in lines.items():
            samples, rate, _ = speak.speak(line, ch, "neutral", 0.0, lang, "piper")
            adult, _, _ = piper_tts.synthesize(line, lang, Prosody())
            f1, f2 = shaping.formants(samples, rate)
            heard = asr.transcribe(samples, rate, lang)
            print(f"{ch + '/' + lang:16s} {median_pitch_hz(samples, rate):8.0f} {f1:6.0f} {f2:6.0f} "
                  f"{shaping.formant_scale(samples, rate, adult, rate):8.2f} "
                  f"{asr.word_error_rate(line, heard):5.2f}  {heard!r}")
    print("speaker similarity: no reference (no recording of any character on disk)")


if __name__ == "__main__":
    main()
    characters()
