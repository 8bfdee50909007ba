"""Video nodes on generated clips: load/save, scenes, retiming with sound, comic timing, editing, the engine graph."""
from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("av")
pytest.importorskip("cv2")
sys.path.insert(0, str(Path(__file__).parent))
import media  # noqa: E402

from animation_studio.nodes import bridge  # noqa: E402
from animation_studio.nodes import video as V  # noqa: E402
from animation_studio.nodes import video_io as vio  # noqa: E402

AAC_SLACK = 2048  # samples of AAC priming/padding a decode may add


@pytest.fixture
def clip(studio_dirs):
    """A 2 s, 12 fps, 160x120 clip with a stereo tone and a cut at 1 s, in the input folder."""
    return media.make_test_clip(studio_dirs["input"] / "clip.mp4", seconds=2, fps=12, size=(160, 120),
                                with_audio=True, scene_changes=[1.0])


def sound_seconds(video):
    wave, rate = vio.decode_audio(video.path)
    return wave.shape[1] / rate, rate


def test_load_video_range_stride_size(clip):
    v, fps, n = V.LoadVideo().run("clip.mp4", 0, 0, 1, 0)
    assert v.path == clip.path and n == 24  # nothing to do: no re-encode
    v, fps, n = V.LoadVideo().run("clip.mp4", 6, 12, 2, 80)
    assert (n, fps, v.width, v.height) == (6, 6.0, 80, 60)
    seconds, rate = sound_seconds(v)
    assert abs(seconds - 1.0) < AAC_SLACK / rate  # the sound is cut with the picture


def test_load_video_bad_inputs(clip, studio_dirs, tmp_path):
    outside = media.make_test_clip(tmp_path / "outside.mp4", seconds=1, with_audio=False)
    assert "outside the input folder" in V.LoadVideo.VALIDATE_INPUTS(outside.path)
    with pytest.raises(PermissionError):
        V.LoadVideo().run(outside.path, 0, 0, 1, 0)
    with pytest.raises(ValueError, match="past the end"):
        V.LoadVideo().run("clip.mp4", 500, 10, 1, 0)
    # A range longer than the clip is cut to the clip's end.
    v, _, n = V.LoadVideo().run("clip.mp4", 20, 100, 1, 0)
    assert n == 4
    media.make_tone(1.0, path=studio_dirs["input"] / "voice.wav")
    with pytest.raises(ValueError, match="audio-only"):
        V.LoadVideo().run("voice.wav", 0, 0, 1, 0)
    shutil.copy(clip.path, studio_dirs["input"] / "cut.mp4")
    media.truncate_file(clip.path, studio_dirs["input"] / "cut.mp4", keep=0.4)
    with pytest.raises(ValueError):
        V.LoadVideo().run("cut.mp4", 0, 0, 1, 0)


@pytest.mark.parametrize("fmt,with_audio", [("mp4", True), ("mp4", False), ("webm", True), ("gif", False)])
def test_save_video_formats(clip, studio_dirs, fmt, with_audio):
    out = V.SaveVideo().run(clip, "tests/out", fmt, with_audio)
    entry = out["ui"]["images"][0]
    assert out["ui"]["animated"] == [fmt != "gif"]  # as ComfyUI's SaveVideo: the frontend plays it as a video
    path = studio_dirs["outputs"] / entry["subfolder"] / entry["filename"]
    saved = vio.probe(path)
    assert path.suffix == f".{fmt}" and abs(saved.duration - 2.0) < 0.1
    # GIF delays are whole centiseconds, so 12 fps (8.33 cs) cannot be exact there.
    assert saved.frame_count == 24 if fmt != "gif" else abs(saved.frame_count - 24) <= 1
    assert saved.has_audio == (with_audio and fmt != "gif")
    # A second save never overwrites the first.
    again = V.SaveVideo().run(clip, "tests/out", fmt, with_audio)["ui"]["images"][0]
    assert again["filename"] != entry["filename"]


def test_save_video_with_replacement_audio_is_cut_to_picture(clip, studio_dirs):
    long_tone = media.make_tone(seconds=5.0, sample_rate=22050)
    entry = V.SaveVideo().run(clip, "rep", "mp4", True, long_tone)["ui"]["images"][0]
    saved = vio.probe(studio_dirs["outputs"] / entry["filename"])
    seconds, rate = sound_seconds(saved)
    assert abs(seconds - 2.0) < AAC_SLACK / rate


def test_images_roundtrip_and_info(clip):
    images, audio, fps = V.VideoToImages().run(clip, 0, 10, 2, 0)
    assert tuple(images.shape) == (10, 120, 160, 3) and fps == 6.0
    assert audio["waveform"].shape[1] == 2
    video = V.ImagesToVideo().run(images, 6.0, audio)[0]
    info = V.VideoInfo().run(video)
    assert info[:6] == (6.0, 10, 160, 120, pytest.approx(10 / 6), True)
    assert json.loads(info[6])["frame_count"] == 10


def test_detect_and_pick_scenes(clip, studio_dirs):
    for detector, threshold in (("content", 27.0), ("adaptive", 3.0)):
        scenes, count, text = V.DetectScenes().run(clip, detector, threshold, 0.3)
        assert count == 2 and json.loads(text) == [[0, 12], [12, 24]]
    # Scene 1 gets a fast-moving square; most_active must pick it.
    frames = media.clip_frames(2, 12, scene_changes=[1.0], motion=False)
    frames[12:, 40:70, ::1] = 0
    for i in range(12, 24):
        frames[i, 40:70, (i - 12) * 12:(i - 12) * 12 + 30] = 255
    busy = vio.write_video([frames], 12, studio_dirs["input"] / "busy.mp4")
    scenes = V.DetectScenes().run(busy, "content", 27.0, 0.3)[0]
    video, index, start, end = V.PickScene().run(busy, scenes, "most_active", 0, "")
    assert (index, start, end, video.frame_count) == (1, 1.0, 2.0, 12)
    assert V.PickScene().run(busy, scenes, "score", 0, "0.9, 0.1")[1] == 0
    assert V.PickScene().run(busy, scenes, "index", -1, "")[1] == 1
    with pytest.raises(ValueError, match="2 scenes"):
        V.PickScene().run(busy, scenes, "score", 0, "1, 2, 3")


@pytest.mark.parametrize("mode", ["blend", "optical_flow"])
def test_slow_motion_stretches_sound_with_picture(clip, mode):
    slow = V.SlowMotion().run(clip, 0.25, mode, "stretch")[0]
    assert slow.frame_count == 96 and slow.fps == 12.0
    seconds, rate = sound_seconds(slow)
    assert abs(seconds - 8.0) < AAC_SLACK / rate
    wave, rate = vio.decode_audio(slow.path)
    spectrum = np.abs(np.fft.rfft(wave[0, rate:rate * 7]))
    assert abs(np.argmax(spectrum) * rate / (6 * rate) - 440) < 5  # pitch preserved
    frames = vio.read_frames(slow, start=40, end=44)
    assert len(frames) == 4 and not np.array_equal(frames[1], frames[2])  # in-betweens differ


def test_slow_motion_mute_and_replace(clip):
    assert not V.SlowMotion().run(clip, 0.5, "blend", "mute")[0].has_audio
    replaced = V.SlowMotion().run(clip, 0.5, "blend", "replace", media.make_tone(10.0, 22050))[0]
    assert abs(sound_seconds(replaced)[0] - 4.0) < 0.1
    with pytest.raises(ValueError, match="audio input"):
        V.SlowMotion().run(clip, 0.5, "blend", "replace")


def test_learned_mode_needs_a_model_then_uses_it(clip, studio_dirs):
    torch = pytest.importorskip("torch")
    with pytest.raises(bridge.MissingModel, match="frame_interpolation"):
        V.FrameInterpolation().run(clip, 24.0, "learned")

    class Mix(torch.nn.Module):  # the FILM TorchScript call convention: (img0, img1, t[B,1]) -> img
        def forward(self, a, b, t):
            w = t.view(-1, 1, 1, 1)
            return a * (1 - w) + b * w

    folder = studio_dirs["models"] / "frame_interpolation"
    folder.mkdir()
    torch.jit.script(Mix()).save(str(folder / "tiny_film.pt"))
    out = V.FrameInterpolation().run(clip, 24.0, "learned", "tiny_film.pt")[0]
    assert out.frame_count == 48 and out.fps == 24.0 and out.has_audio


def test_speed_ramp_and_freeze(clip):
    ramp = V.SpeedRamp().run(clip, 0.5, 1.5, 0.25, 0.2, "ease_in_out", "blend", "stretch")[0]
    # 1 s at 0.25x with 0.2 s eased edges: between 2 + 1 and 2 + 3 seconds of output.
    assert 3.0 < ramp.duration < 5.0
    assert abs(sound_seconds(ramp)[0] - ramp.duration) < 0.15
    frozen = V.FreezeFrame().run(clip, 1.0, 0.5, 1.5, 0.1, 0.5, 0.5, "stretch")[0]
    assert frozen.frame_count == 30
    frames = vio.read_frames(frozen)
    assert not np.array_equal(frames[13], frames[12])  # the punch-in zooms the held picture
    assert np.abs(frames[16].astype(int) - frames[17]).mean() < 2  # held and fully zoomed (lossy codec)
    wave, rate = vio.decode_audio(frozen.path)
    held = wave[:, int(1.2 * rate):int(1.5 * rate)]
    assert np.abs(held).max() < 0.05  # the sound pauses during the freeze


def test_editing_nodes(clip, studio_dirs):
    other = media.make_test_clip(studio_dirs["input"] / "b.mp4", seconds=1, fps=24, size=(320, 240), with_audio=False)
    joined = V.ConcatVideos().run(clip, other, "crossfade", 0.5)[0]
    assert (joined.width, joined.height, joined.fps) == (160, 120, 12.0)
    assert joined.frame_count == 24 + 12 - 6 and joined.has_audio
    captioned = V.BurnCaption().run(clip, "MEANWHILE", 0.5, 1.5, "bottom", 16, "#ffff00", True)[0]
    before, after = vio.read_frames(clip), vio.read_frames(captioned)
    assert np.abs(before[:5].astype(int) - after[:5]).mean() < 2  # nothing before start
    assert np.abs(before[12, 90:].astype(int) - after[12, 90:]).mean() > 10  # caption at the bottom
    pip = V.PictureInPicture().run(clip, other, 0.3, "top_left", 0.0)[0]
    assert np.abs(vio.read_frames(pip, end=1)[0, 10:40, 10:50].astype(int) - before[0, 10:40, 10:50]).mean() > 5
    from animation_studio.nodes.core import numpy_to_image
    bg = numpy_to_image(np.zeros((60, 80, 3), np.uint8))
    mask = np.zeros((1, 120, 160), np.float32)
    mask[:, :, :80] = 1.0
    comp = vio.read_frames(V.CompositeOverBackground().run(clip, bg, "", 0.25, mask)[0], end=1)[0]
    assert comp[:, 100:].mean() < 5 and comp[:, :60].mean() > 50


def test_mux_and_extract_audio(clip):
    silent = V.SlowMotion().run(clip, 1.0, "blend", "mute")[0]
    assert not silent.has_audio
    extracted = V.ExtractAudio().run(silent)[0]
    assert float(extracted["waveform"].abs().max()) == 0.0
    muxed = V.MuxAudio().run(silent, media.make_tone(0.5, 16000))[0]
    assert muxed.has_audio and abs(sound_seconds(muxed)[0] - 2.0) < 0.15  # padded to the picture


def test_graph_load_slowmo_sting_save_on_engine(clip, engine, studio_dirs):
    graph = {
        "1": {"class_type": "AnimStudio_LoadVideo",
              "inputs": {"video": "clip.mp4", "start_frame": 0, "frame_count": 0, "stride": 1, "max_size": 0}},
        "2": {"class_type": "AnimStudio_SlowMotion",
              "inputs": {"video": ["1", 0], "factor": 0.5, "mode": "blend", "audio_mode": "stretch"}},
        "3": {"class_type": "AnimStudio_ExtractAudio", "inputs": {"video": ["2", 0]}},
        "4": {"class_type": "AnimStudio_DramaticSting",
              "inputs": {"style": "dun_dun_dun", "root_hz": 110.0, "sample_rate": 22050, "seed": 0}},
        "5": {"class_type": "AnimStudio_MixAudio",
              "inputs": {"audio_a": ["3", 0], "audio_b": ["4", 0], "gain_a_db": 0.0, "gain_b_db": -3.0, "offset": 1.0}},
        "6": {"class_type": "AnimStudio_SaveVideo",
              "inputs": {"video": ["2", 0], "filename_prefix": "parody/slowmo", "format": "mp4", "with_audio": True,
                         "audio": ["5", 0]}},
    }
    result = engine.run(graph, run_dir=studio_dirs["outputs"])
    assert result.ok, result.message()
    entry = result.outputs["6"]["images"][0]
    saved = vio.probe(studio_dirs["outputs"] / entry["subfolder"] / entry["filename"])
    assert saved.frame_count == 48 and saved.duration == 4.0 and saved.has_audio
    seconds, rate = sound_seconds(saved)
    assert abs(seconds - 4.0) < AAC_SLACK / rate  # sting longer than the clip: cut to the picture
    wave, _ = vio.decode_audio(saved.path)
    assert np.abs(wave[:, int(1.5 * rate):]).max() > np.abs(wave[:, :int(0.9 * rate)]).max()  # the sting came in
