"""The YUV blend fast path of the retiming engine and the decode/encode overlap (prefetch) it runs on."""
from __future__ import annotations

import sys
import threading
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("av")
cv2 = pytest.importorskip("cv2")
sys.path.insert(0, str(Path(__file__).parent))
import media  # noqa: E402

from animation_studio.nodes import bridge  # noqa: E402
from animation_studio.nodes import video as V  # noqa: E402
from animation_studio.nodes import video_io as vio  # noqa: E402


def test_yuv_blend_matches_rgb_blend(studio_dirs):
    clip = media.make_test_clip(studio_dirs["input"] / "c.mp4", seconds=1, fps=8, size=(96, 64), with_audio=True)
    slow = V.slow_motion(clip, 0.25, "blend", "stretch")
    assert (slow.frame_count, slow.fps, slow.has_audio) == (32, clip.fps, True)
    src = vio.read_frames(clip).astype(np.float32)
    out = vio.read_frames(slow).astype(np.float32)
    for k in range(0, 28):
        i, w = divmod(k, 4)
        expected = src[i] * (1 - w / 4) + src[i + 1] * (w / 4)  # what Interpolator("blend") makes in RGB
        # Same picture within H.264/4:2:0 rounding.
        assert np.abs(out[k] - expected).mean() < 4.0, k
    # In-betweens really are mixes: the moving square is in neither source position alone.
    assert np.abs(out[2] - src[0]).mean() > 1.0 and np.abs(out[2] - src[1]).mean() > 1.0


def test_odd_sized_clip_takes_the_rgb_path(studio_dirs, tmp_path):
    clip = media.make_test_clip(tmp_path / "odd.webm", seconds=0.5, fps=8, size=(63, 47), with_audio=False,
                                codec="vp9")
    slow = V.slow_motion(clip, 0.5, "blend", "mute")
    assert slow.frame_count == 8 and (slow.width, slow.height) == (64, 48)


def test_prefetch_passes_items_errors_and_stops_early():
    assert list(vio.prefetch(iter(range(7)), depth=2)) == list(range(7))

    def failing():
        yield 1
        raise bridge.Interrupted("Run cancelled.")

    got = []
    with pytest.raises(bridge.Interrupted):
        for item in vio.prefetch(failing()):
            got.append(item)
    assert got == [1]

    produced = []

    def endless():
        k = 0
        while True:
            produced.append(k)
            yield k
            k += 1

    stream = vio.prefetch(endless(), depth=1)
    assert next(stream) == 0
    stream.close()  # the consumer stops: the producer thread must finish, not run on
    assert not any(t.name == "animation_studio_prefetch" for t in threading.enumerate())
    assert len(produced) < 5


def test_prefetch_keeps_the_run_context(studio_dirs):
    ctx = bridge.RunContext(output_dir=studio_dirs["outputs"], input_dir=studio_dirs["input"],
                            temp_dir=studio_dirs["temp"], cancelled=lambda: True)
    token = bridge.set_context(ctx)
    try:
        def producer():
            bridge.check_interrupt()  # sees the run's cancel flag from the worker thread
            yield 1

        with pytest.raises(bridge.Interrupted):
            list(vio.prefetch(producer()))
    finally:
        bridge.reset_context(token)
