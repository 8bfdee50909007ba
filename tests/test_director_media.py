"""The media path of the Director's commonest plans, on real footage: a track put under a clip copies its
encoded pictures (no second video encode), and the sound ends where the pictures end."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from media import real_footage  # noqa: E402

from animation_studio.nodes import audio as A  # noqa: E402
from animation_studio.nodes import video as V  # noqa: E402
from animation_studio.nodes import video_io as vio  # noqa: E402


def _packets(path) -> list[bytes]:
    av = vio._av()
    with av.open(str(path)) as container:
        return [bytes(p) for p in container.demux(container.streams.video[0]) if p.size]


def test_mux_copies_the_pictures_of_real_footage_and_fits_the_sound(studio_dirs):
    bunny = vio.probe(real_footage("bigbuckbunny.mp4"))  # h264 720p with 5.1 AAC
    sting = A.DramaticSting().run("dun_dun_dun", 110.0, 44100, 0)[0]  # ~4.3 s: padded to the clip's 5.28 s
    muxed = V.MuxAudio().run(bunny, sting)[0]
    assert _packets(muxed.path) == _packets(bunny.path)  # the very same encoded pictures: nothing re-encoded
    assert (muxed.frame_count, muxed.fps, muxed.width, muxed.height) == (132, 25.0, 1280, 720)
    assert muxed.has_audio and muxed.audio_channels == 2 and muxed.audio_sample_rate == 44100
    av = vio._av()
    with av.open(muxed.path) as container:
        v, a = container.streams.video[0], container.streams.audio[0]
        assert abs(float(a.duration * a.time_base) - 5.28) < 0.03
        assert abs(float(v.start_time * v.time_base) - float(a.start_time * a.time_base)) < 0.01
    wave, rate = vio.decode_audio(muxed.path)
    ref, ref_rate = vio.audio_to_numpy(sting)
    onset = int(0.05 * rate)  # the sting's first note sounds at the start of the clip, as mixed
    assert np.abs(wave[:, :onset]).max() > 0.01 and rate == ref_rate
    tail = wave[:, int(4.6 * rate):int(5.2 * rate)]  # past the sting's end: the padding is silence
    assert np.abs(tail).max() < 0.02


def test_mux_of_a_retimed_clip_keeps_its_pictures(studio_dirs):
    bunny = vio.probe(real_footage("bigbuckbunny.mp4"))
    short = V.TrimVideo().run(bunny, 0.0, 1.0)[0]
    slow = V.SlowMotion().run(short, 0.5, "blend", "stretch")[0]  # the pack's own h264 (B-frames, edit list)
    sting = A.DramaticSting().run("triumph", 110.0, 44100, 0)[0]
    muxed = V.MuxAudio().run(slow, sting)[0]
    assert _packets(muxed.path) == _packets(slow.path)
    assert muxed.frame_count == slow.frame_count == 50
    assert np.array_equal(vio.read_frames(muxed), vio.read_frames(slow))
    wave, rate = vio.decode_audio(muxed.path)
    assert abs(wave.shape[1] / rate - 2.0) < 0.05


def test_a_clip_whose_codec_cannot_be_copied_is_re_encoded(studio_dirs, tmp_path):
    gif = vio.write_video([np.full((6, 64, 64, 3), 120, np.uint8)], 12.0, tmp_path / "clip.gif", codec="gif")
    assert vio.copyable_codec(gif) is None
    muxed = V.MuxAudio().run(gif, A.DramaticSting().run("triumph", 110.0, 22050, 0)[0])[0]
    assert muxed.has_audio and muxed.frame_count == 6 and muxed.path.endswith(".mp4")
