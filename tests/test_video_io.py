"""video_io on real media the tests make: probe, CFR decode, encode, audio I/O and the bad inputs."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("av")
sys.path.insert(0, str(Path(__file__).parent))
import media  # noqa: E402

from animation_studio.nodes import video_io as vio  # noqa: E402


def test_roundtrip_with_audio_is_frame_exact(tmp_path):
    clip = media.make_test_clip(tmp_path / "a.mp4", seconds=2, fps=12, size=(160, 120), with_audio=True)
    assert (clip.frame_count, clip.fps, clip.width, clip.height) == (24, 12.0, 160, 120)
    assert clip.has_audio and clip.audio_channels == 2 and clip.audio_sample_rate == 16000
    frames = vio.read_frames(clip)
    assert frames.shape == (24, 120, 160, 3) and frames.dtype == np.uint8
    # The moving square: the decoded picture matches what was encoded.
    source = media.clip_frames(2, 12, (160, 120))
    assert np.abs(frames.astype(int) - source).mean() < 3
    wave, rate = vio.decode_audio(clip.path)
    # AAC adds at most a frame of priming/padding; never drifts by more than that.
    assert abs(wave.shape[1] / rate - 2.0) < 2048 / rate


def test_range_stride_and_max_size_are_chunked(tmp_path):
    clip = media.make_test_clip(tmp_path / "a.mp4", seconds=3, fps=12, with_audio=False)
    chunks = list(vio.iter_frames(clip, start=5, end=30, stride=2, max_size=80, chunk=4))
    assert [len(c) for c in chunks] == [4, 4, 4, 1]
    assert chunks[0].shape[1:] == (60, 80, 3)
    # Seeking (start > 2 s worth of frames) lands on the same pictures as decoding from the start.
    full = vio.read_frames(clip)
    late = vio.read_frames(clip, start=30, end=34)
    assert np.abs(late.astype(int) - full[30:34]).mean() < 1


def test_variable_frame_rate_is_normalised(tmp_path):
    n_cfr = media.make_vfr_clip(tmp_path / "vfr.mp4", fps=12, pattern=(1, 1, 3, 1, 2))
    clip = vio.probe(tmp_path / "vfr.mp4")
    assert clip.variable_rate and clip.fps == 12.0
    frames = vio.read_frames(clip)
    assert abs(len(frames) - n_cfr) <= 1
    source = media.clip_frames(10 / 12, 12)
    # Picture 2 lasted 3 ticks: CFR slots 2, 3, 4 all show it.
    for slot in (2, 3, 4):
        assert np.abs(frames[slot].astype(int) - source[2]).mean() < 3


def test_odd_dimensions_are_padded_to_even(tmp_path):
    clip = media.make_test_clip(tmp_path / "odd.mp4", seconds=1, fps=12, size=(161, 121), with_audio=False)
    assert (clip.width, clip.height) == (162, 122)


def test_webm_and_gif(tmp_path):
    webm = media.make_test_clip(tmp_path / "a.webm", seconds=1, fps=12, codec="vp9", with_audio=True)
    assert webm.frame_count == 12 and webm.has_audio and webm.audio_sample_rate == 48000
    gif = media.make_test_clip(tmp_path / "a.gif", seconds=1, fps=10, codec="gif", with_audio=False)
    assert gif.frame_count == 10
    # Palette colours survive (PyAV's pal8 byte order is checked here).
    assert np.abs(vio.read_frames(gif)[0, 5, 5].astype(int) - media.clip_frames(1, 10)[0, 5, 5]).max() < 12


@pytest.mark.parametrize("suffix", [".wav", ".flac", ".mp3", ".ogg"])
def test_audio_formats_roundtrip(tmp_path, suffix):
    media.make_tone(seconds=1.0, sample_rate=16000, path=tmp_path / f"t{suffix}")
    wave, rate = vio.decode_audio(tmp_path / f"t{suffix}")
    assert abs(wave.shape[1] / rate - 1.0) < 0.1
    # A 440 Hz tone stays 440 Hz.
    spectrum = np.abs(np.fft.rfft(wave[0]))
    assert abs(np.argmax(spectrum) * rate / wave.shape[1] - 440) < 5


def test_bad_inputs_are_rejected_clearly(tmp_path):
    (tmp_path / "zero.mp4").write_bytes(b"")
    with pytest.raises(ValueError, match="empty"):
        vio.probe(tmp_path / "zero.mp4")
    (tmp_path / "junk.mp4").write_bytes(b"not a video at all" * 100)
    with pytest.raises(ValueError, match="corrupt"):
        vio.probe(tmp_path / "junk.mp4")
    clip = media.make_test_clip(tmp_path / "a.mp4", seconds=1, with_audio=True)
    media.truncate_file(clip.path, tmp_path / "cut.mp4", keep=0.5)
    with pytest.raises(ValueError):
        vio.probe(tmp_path / "cut.mp4")
    media.make_tone(1.0, path=tmp_path / "voice.wav")
    with pytest.raises(ValueError, match="audio-only"):
        vio.probe(tmp_path / "voice.wav")
    silent = media.make_test_clip(tmp_path / "silent.mp4", seconds=1, with_audio=False)
    with pytest.raises(ValueError, match="no audio"):
        vio.decode_audio(silent.path)


def test_never_overwrites(tmp_path):
    target = tmp_path / "keep.mp4"
    target.write_bytes(b"precious")
    with pytest.raises(FileExistsError):
        vio.write_video([np.zeros((2, 8, 8, 3), np.uint8)], 12, target)
    assert target.read_bytes() == b"precious"
    assert list(tmp_path.iterdir()) == [target]  # no part file left behind


def test_time_stretch_keeps_pitch(tmp_path):
    wave = media.tone_wave(1.0, 16000, freq=440)
    slow = vio.time_stretch(wave, 16000, 0.25)
    # atempo may drop its last partial window (< 0.1 s); writers pad to the picture anyway.
    assert abs(slow.shape[1] / 16000 - 4.0) < 0.1
    spectrum = np.abs(np.fft.rfft(slow[0]))
    assert abs(np.argmax(spectrum) * 16000 / slow.shape[1] - 440) < 5
