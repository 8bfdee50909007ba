"""The four editing nodes with engine="moviepy", on tiny generated clips (MoviePy installed --no-deps on pillow 13)."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("av")
pytest.importorskip("moviepy")
sys.path.insert(0, str(Path(__file__).parent))
import media  # noqa: E402

from animation_studio.nodes import bridge  # noqa: E402
from animation_studio.nodes import fonts  # noqa: E402
from animation_studio.nodes import moviepy_edit as ME  # noqa: E402
from animation_studio.nodes import video as V  # noqa: E402
from animation_studio.nodes import video_io as vio  # noqa: E402

RED, BLUE = np.array(media.SCENE_COLOURS[0]), np.array(media.SCENE_COLOURS[2])


@pytest.fixture
def clips(studio_dirs):
    """A red 2 s clip with a stereo tone and a silent blue 2 s clip of another size (12 fps)."""
    a = media.make_test_clip(studio_dirs["input"] / "a.mp4", seconds=2, fps=12, size=(160, 120), with_audio=True,
                             motion=False)
    b = media.make_test_clip(studio_dirs["input"] / "b.mp4", seconds=2, fps=12, size=(96, 64), with_audio=False,
                             scene_changes=[0.0, 0.0], motion=False)
    return a, b


def mean_rgb(img):
    return img.reshape(-1, 3).astype(np.float32).mean(0)


def near(img, colour, tol=30.0):
    # The test clips add a green gradient up to +40 across the width; compare red and blue only.
    return abs(mean_rgb(img)[[0, 2]] - colour[[0, 2]]).max() < tol


def test_concat_crossfade_shortens_by_the_overlap_and_keeps_sound(clips):
    a, b = clips
    out = V.ConcatVideos().run(a, b, "crossfade", 0.5, engine="moviepy")[0]
    assert Path(out.path).suffix == ".mp4" and out.path not in (a.path, b.path)
    assert (out.width, out.height, out.fps) == (160, 120, 12.0)  # b was resized to a's size
    assert abs(out.duration - 3.5) < 0.1 and out.frame_count == 42
    assert out.has_audio
    wave, rate = vio.decode_audio(out.path)
    assert abs(wave.shape[1] / rate - 3.5) < 0.1
    frames = vio.read_frames(out)
    assert near(frames[5], RED) and near(frames[-3], BLUE)
    middle = mean_rgb(frames[int(1.75 * 12)])  # halfway through the overlap: a mix of both
    assert 60 < middle[0] < 180 and 60 < middle[2] < 180
    cut = V.ConcatVideos().run(a, b, "cut", 0.5, engine="moviepy")[0]
    assert cut.frame_count == 48
    with pytest.raises(ValueError, match="wipe"):
        V.ConcatVideos().run(a, b, "wipe", 0.5, engine="moviepy")


def test_caption_pixels_in_the_caption_band_only_while_shown(clips):
    a, _ = clips
    out = V.BurnCaption().run(a, "MEANWHILE", 0.5, 1.5, "bottom", 16, "#ffff00", True, engine="moviepy")[0]
    assert out.frame_count == 24 and out.has_audio
    frames = vio.read_frames(out)
    band = slice(120 - 40, 120)

    def yellow(img):
        px = img.astype(int)
        return int(((px[..., 0] > 180) & (px[..., 1] > 180) & (px[..., 2] < 100)).sum())

    assert yellow(frames[12][band]) > 30  # text drawn at 1.0 s in the bottom band
    assert yellow(frames[12][:60]) == 0  # and nowhere near the top
    assert yellow(frames[2]) == 0 and yellow(frames[22]) == 0  # not before start nor after end
    assert mean_rgb(frames[12][band])[0] < mean_rgb(frames[2][band])[0]  # the dark backing box
    assert fonts.caption_font_path().endswith("DejaVuSans-Bold.ttf")


@pytest.mark.parametrize("corner", ["top_left", "bottom_right"])
def test_pip_inset_in_the_chosen_corner(clips, corner):
    a, b = clips
    out = V.PictureInPicture().run(a, b, 0.3, corner, 0.0, engine="moviepy")[0]
    assert (out.frame_count, out.width, out.height) == (24, 160, 120) and out.has_audio
    img = vio.read_frames(out, end=13)[12]
    # 0.3 * 160 = 48 px wide, 32 high, 3 px margin.
    top_left, bottom_right = img[6:30, 6:44], img[120 - 30:120 - 6, 160 - 44:160 - 6]
    inset, other = (top_left, bottom_right) if corner == "top_left" else (bottom_right, top_left)
    assert near(inset, BLUE) and near(other, RED)
    assert near(img[50:70, 60:100], RED)  # the rest of the picture is the main clip


def test_composite_over_background_by_key_and_by_mask(clips):
    import torch

    a, _ = clips
    background = torch.zeros(1, 60, 80, 3)
    background[..., 2] = 1.0  # a blue image, resized to the clip
    keyed = V.CompositeOverBackground().run(a, background, "#c82828", 0.25, engine="moviepy")[0]
    assert keyed.frame_count == 24 and keyed.has_audio
    assert near(vio.read_frames(keyed, end=1)[0], np.array([0, 0, 255]), tol=40)  # the red key was replaced
    mask = torch.zeros(1, 120, 160)
    mask[:, :, :80] = 1.0  # keep the clip on the left half only
    masked = vio.read_frames(V.CompositeOverBackground().run(a, background, "", 0.25, mask, engine="moviepy")[0], end=1)[0]
    assert near(masked[:, :70], RED) and near(masked[:, 90:], np.array([0, 0, 255]), tol=40)
    coloured = vio.read_frames(ME.composite_over(a, "#ffffff", None, "#c82828", 0.25), end=1)[0]
    assert mean_rgb(coloured).min() > 200  # over a plain colour
    with pytest.raises(ValueError, match="mask or a key_color"):
        V.CompositeOverBackground().run(a, background, "", 0.25, engine="moviepy")


def test_never_overwrites_and_leaves_no_part_files(clips):
    a, b = clips
    first = V.ConcatVideos().run(a, b, "cut", 0.0, engine="moviepy")[0]
    before = Path(first.path).read_bytes()
    second = V.ConcatVideos().run(a, b, "cut", 0.0, engine="moviepy")[0]
    assert second.path != first.path and Path(first.path).read_bytes() == before
    folder = Path(first.path).parent
    assert not list(folder.glob("*.part*")) and not list(folder.glob("*wvf_snd*"))


def test_progress_and_interrupt_reach_moviepy(clips, studio_dirs):
    a, _ = clips
    seen, cancel = [], {"now": False}
    ctx = bridge.RunContext(studio_dirs["outputs"], studio_dirs["input"], studio_dirs["temp"], node_id="7", on_progress=lambda node, v, t: seen.append((v, t)) or None,
                            cancelled=lambda: cancel["now"])
    token = bridge.set_context(ctx)
    try:
        V.BurnCaption().run(a, "HI", 0.0, 0.0, "top", 0, "#ffffff", False, engine="moviepy")
        assert seen and seen[-1][1] == 24
        cancel["now"] = True
        with pytest.raises(bridge.Interrupted):
            V.BurnCaption().run(a, "HI", 0.0, 0.0, "top", 0, "#ffffff", False, engine="moviepy")
    finally:
        bridge.reset_context(token)
    assert not list(Path(vio.temp_video_path("x")).parent.glob("*.part*"))


def test_engine_is_optional_and_checked(clips):
    a, b = clips
    assert V.ConcatVideos.INPUT_TYPES()["optional"]["engine"][1]["default"] == "pyav"
    assert "engine" in V.CompositeOverBackground.INPUT_TYPES()["optional"]
    with pytest.raises(ValueError, match="engine"):
        V.ConcatVideos().run(a, b, "cut", 0.0, engine="ffmpeg")


def test_graph_with_and_without_engine_on_the_embedded_engine(clips, engine, studio_dirs):
    """Old graphs (no engine input) still run on PyAV; engine="moviepy" runs through MoviePy, saved to output."""
    def graph(extra):
        return {
            "1": {"class_type": "AnimStudio_LoadVideo",
                  "inputs": {"video": "a.mp4", "start_frame": 0, "frame_count": 0, "stride": 1, "max_size": 0}},
            "2": {"class_type": "AnimStudio_LoadVideo",
                  "inputs": {"video": "b.mp4", "start_frame": 0, "frame_count": 0, "stride": 1, "max_size": 0}},
            "3": {"class_type": "AnimStudio_ConcatVideos",
                  "inputs": {"video_a": ["1", 0], "video_b": ["2", 0], "transition": "crossfade", "duration": 0.5,
                             **extra}},
            "4": {"class_type": "AnimStudio_SaveVideo",
                  "inputs": {"video": ["3", 0], "filename_prefix": "edit/joined", "format": "mp4", "with_audio": True}},
        }

    for extra in ({}, {"engine": "moviepy"}):
        result = engine.run(graph(extra), run_dir=studio_dirs["outputs"])
        assert result.ok, result.message()
        entry = result.outputs["4"]["images"][0]
        saved = vio.probe(studio_dirs["outputs"] / entry["subfolder"] / entry["filename"])
        assert saved.frame_count == 42 and saved.has_audio
