"""Audio nodes on generated tones: load/save, mix, ducking, fades, loudness, fit, offline synthesis."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("av")
sys.path.insert(0, str(Path(__file__).parent))
import media  # noqa: E402

from animation_studio.nodes import audio as A  # noqa: E402
from animation_studio.nodes import video_io as vio  # noqa: E402


def wave_of(audio):
    return vio.audio_to_numpy(audio)


@pytest.mark.parametrize("fmt", ["wav", "mp3", "flac", "ogg"])
def test_save_then_load(studio_dirs, fmt):
    out = A.SaveAudio().run(media.make_tone(1.0, 22050), "snd/tone", fmt)
    entry = out["ui"]["audio"][0]
    path = studio_dirs["outputs"] / entry["subfolder"] / entry["filename"]
    assert path.suffix == f".{fmt}" and path.stat().st_size > 0
    (studio_dirs["input"] / path.name).write_bytes(path.read_bytes())
    wave, rate = wave_of(A.LoadAudio().run(path.name, 16000)[0])
    assert rate == 16000 and abs(wave.shape[1] / rate - 1.0) < 0.1
    second = A.SaveAudio().run(media.make_tone(1.0, 22050), "snd/tone", fmt)["ui"]["audio"][0]
    assert second["filename"] != entry["filename"]  # never overwritten


def test_load_audio_refuses_outside_and_silent_video(studio_dirs, tmp_path):
    media.make_tone(1.0, path=tmp_path / "out.wav")
    assert "outside the input folder" in A.LoadAudio.VALIDATE_INPUTS(str(tmp_path / "out.wav"))
    media.make_test_clip(studio_dirs["input"] / "silent.mp4", seconds=1, with_audio=False)
    with pytest.raises(ValueError, match="no audio"):
        A.LoadAudio().run("silent.mp4", 0)


def test_mix_matches_sample_rates_and_channels():
    a = media.make_tone(1.0, 16000, freq=440, channels=1)
    b = media.make_tone(0.5, 44100, freq=880, channels=2)
    wave, rate = wave_of(A.MixAudio().run(a, b, 0.0, -6.0, 0.75)[0])
    assert rate == 44100 and wave.shape[0] == 2
    assert abs(wave.shape[1] / rate - 1.25) < 0.01  # b ends at 0.75 + 0.5 s
    assert np.abs(wave[:, int(1.1 * rate):]).max() < 0.2  # only b (-6 dB) after a ended


def test_overlay_music_ducks_under_dialogue():
    rate = 16000
    dialogue = np.zeros((1, 3 * rate), np.float32)
    dialogue[:, rate:2 * rate] = media.tone_wave(1.0, rate, 300, amplitude=0.5)
    music = media.tone_wave(1.0, rate, 1000, amplitude=0.5)  # looped to 3 s
    wave, _ = wave_of(A.OverlayMusic().run(vio.numpy_to_audio(dialogue, rate), vio.numpy_to_audio(music, rate),
                                           0.0, -18.0, -40.0, True)[0])
    assert wave.shape[1] == 3 * rate
    music_only = wave[:, int(0.2 * rate):int(0.8 * rate)]
    under = wave[:, int(1.5 * rate):int(1.9 * rate)] - dialogue[:, int(1.5 * rate):int(1.9 * rate)]
    assert np.abs(under).max() < 0.3 * np.abs(music_only).max()  # about -18 dB while speaking


def test_fades_and_fit_to_video(studio_dirs):
    tone = media.make_tone(2.0, 16000, amplitude=0.5)
    wave, rate = wave_of(A.FadeAudio().run(tone, 0.5, 0.5)[0])
    assert abs(wave[0, 0]) < 1e-3 and abs(wave[0, -1]) < 1e-3 and np.abs(wave[0, rate - 100:rate + 100]).max() > 0.45
    clip = media.make_test_clip(studio_dirs["input"] / "c.mp4", seconds=3, fps=12, with_audio=False)
    padded, _ = wave_of(A.FitAudioToVideo().run(tone, clip, "pad")[0])
    looped, _ = wave_of(A.FitAudioToVideo().run(tone, clip, "loop")[0])
    assert padded.shape[1] == looped.shape[1] == 3 * 16000
    assert np.abs(padded[:, -8000:]).max() == 0 and np.abs(looped[:, -8000:-1000]).max() > 0.4


def test_loudness_normalisation_hits_target_and_leaves_silence():
    pytest.importorskip("pyloudnorm")
    tone = media.make_tone(2.0, 44100, amplitude=0.05)
    out, measured = A.NormalizeLoudness().run(tone, -16.0, -1.0)
    wave, rate = wave_of(out)
    assert measured < -25 and abs(A.loudness(wave, rate) - (-16.0)) < 0.5
    silent = vio.numpy_to_audio(np.zeros((1, 44100), np.float32), 44100)
    out, measured = A.NormalizeLoudness().run(silent, -16.0, -1.0)
    assert measured == -200.0 and float(out["waveform"].abs().max()) == 0.0


def test_offline_sting_and_music_bed_are_real_sound():
    sting, rate = wave_of(A.DramaticSting().run("dun_dun_dun", 110.0, 22050, 0)[0])
    assert sting.shape[0] == 2 and 2.0 < sting.shape[1] / rate < 5.0 and 0.5 < np.abs(sting).max() <= 1.0
    # Three hits: the loudness envelope rises at 0, 0.4 and 0.8 s.
    env = A.envelope(sting, rate, 0.005, 0.05)
    assert env[int(0.45 * rate)] > env[int(0.38 * rate)]
    again, _ = wave_of(A.DramaticSting().run("dun_dun_dun", 110.0, 22050, 0)[0])
    assert np.array_equal(sting, again)  # deterministic per seed
    bed, rate = wave_of(A.MusicBed().run(4.0, "comedic", 100.0, 22050, 1)[0])
    assert bed.shape == (2, 4 * 22050) and np.abs(bed).max() > 0.3
    with pytest.raises(ValueError, match="mood"):
        A.music_bed(1.0, "jazzy")
