"""Fuzz suite for the file-system and media classes of issue 15 (bounded: fixed cases, small media, ~1 min).

Classes, each replayed against the nodes a browser user can queue:
- save traversal: every save node (SaveText, SaveImage, SaveAudio, SaveVideo) with hostile prefixes, a symlinked
  output subfolder and symlinks planted at temp names; nothing may be written outside the output folder;
- records: symlinked or huge run.json (routes), planted symlinks next to the CLI's records, `direct --input`
  of system or non-media files;
- audio channels: 1..8-channel audio through every audio path (LoadAudio->SaveAudio in 4 formats, mix, voice,
  video muxing, SlowMotion on an MP4 whose track has that many channels); the centre channel must survive a
  downmix; 8 channels crashed the process, so that class runs in a child process;
- truncated media and 16-bit/palette images;
- streaming lip sync: memory flat in the audio's length.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import wave as wavemod
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))
import media  # noqa: E402

from animation_studio.configs import paths  # noqa: E402
from animation_studio.nodes import audio as A  # noqa: E402
from animation_studio.nodes import core, routes  # noqa: E402
from animation_studio.nodes import video as V  # noqa: E402
from animation_studio.nodes import video_io as vio  # noqa: E402

HOSTILE_PREFIXES = [
    "x/../../../../outside/evil",  # the reported escape: strip("./") only trimmed the ends
    "../outside/evil",
    "..",
    "a/./../../outside/evil",
    "sub\\..\\..\\outside\\evil",
    "/OUTSIDE/evil",  # absolute (OUTSIDE is replaced by the test's outside folder)
    "ok/\x00evil",
]


def _save(node: str, prefix: str):
    """Run one save node on a small real input; returns its UI dict."""
    if node == "SaveText":
        return core.SaveText().run("a report", prefix)
    if node == "SaveImage":
        return core.SaveImage().run(core.numpy_to_image(np.full((1, 8, 8, 3), 90, np.uint8)), prefix)
    if node == "SaveAudio":
        return A.SaveAudio().run(media.make_tone(0.2, 16000), prefix, "wav")
    clip = vio.write_video([media.clip_frames(0.5, 12, (32, 24))], 12, vio.temp_video_path("fuzz"))
    return V.SaveVideo().run(clip, prefix, "mp4", False)


SAVE_NODES = ["SaveText", "SaveImage", "SaveAudio", "SaveVideo"]


def _files_under(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() or p.is_symlink())


@pytest.fixture
def outside(studio_dirs, tmp_path):
    folder = tmp_path / "outside"
    folder.mkdir()
    return folder


# ================================================================ save traversal (defect: prefixes escaped)
@pytest.mark.parametrize("node", SAVE_NODES)
@pytest.mark.parametrize("prefix", HOSTILE_PREFIXES)
def test_save_prefix_cannot_leave_the_output_folder(studio_dirs, outside, node, prefix):
    prefix = prefix.replace("/OUTSIDE", str(outside))
    # The output folder sits at tmp/outputs, so four `..` from outputs/x reach tmp's parent; check both levels.
    before = set(_files_under(studio_dirs["outputs"].parent.parent))
    with pytest.raises((PermissionError, ValueError)) as err:
        _save(node, prefix)
    assert node in str(err.value) and "filename_prefix" in str(err.value)
    assert _files_under(outside) == []
    written = set(_files_under(studio_dirs["outputs"].parent.parent)) - before
    assert all(studio_dirs["temp"] in p.parents for p in written), written  # only the node's own temp input


@pytest.mark.parametrize("node", SAVE_NODES)
@pytest.mark.parametrize("prefix", ["", "./", 5])
def test_empty_or_non_text_prefix_is_a_clear_error(studio_dirs, node, prefix):
    with pytest.raises(ValueError) as err:
        _save(node, prefix)
    assert str(err.value).startswith(f"{node}: input 'filename_prefix'")
    assert [p for p in _files_under(studio_dirs["outputs"])] == []


@pytest.mark.parametrize("node", SAVE_NODES)
def test_symlinked_output_subfolder_leading_out_is_refused(studio_dirs, outside, node):
    (studio_dirs["outputs"] / "link").symlink_to(outside, target_is_directory=True)
    with pytest.raises(PermissionError, match="symlink"):
        _save(node, "link/evil")
    assert _files_under(outside) == []


@pytest.mark.parametrize("node", SAVE_NODES)
def test_planted_symlinks_at_temp_names_are_never_followed(studio_dirs, outside, node):
    """Every fixed temp name the old nodes used, planted as a symlink to a file outside: it must stay untouched."""
    folder = studio_dirs["outputs"] / "p"
    folder.mkdir()
    victim = outside / "victim.txt"
    victim.write_text("precious")
    suffix = {"SaveText": ".txt", "SaveImage": ".png", "SaveAudio": ".wav", "SaveVideo": ".mp4"}[node]
    for counter in (1, 2):
        name = f"x_{counter:05d}{suffix}"
        for planted in (f"{name}.part", f"x_{counter:05d}.png.part", f".{name}.part"):
            if not (folder / planted).is_symlink():
                (folder / planted).symlink_to(victim)
    out = _save(node, "p/x")
    assert victim.read_text() == "precious"
    entries = [e for key in ("files", "images", "audio") for e in out["ui"].get(key, [])]
    saved = studio_dirs["outputs"] / entries[0]["subfolder"] / entries[0]["filename"]
    assert saved.is_file() and not saved.is_symlink() and saved.stat().st_size > 0
    assert oct(saved.stat().st_mode & 0o777) == oct(0o644)  # text files were saved 0755


def test_saved_names_stay_clean_and_numbered(studio_dirs):
    first = core.SaveText().run("one", "./notes/.hidden")["ui"]["files"][0]
    second = core.SaveText().run("two", "notes/.hidden")["ui"]["files"][0]
    assert first["subfolder"] == "notes" and first["filename"] == "hidden_00001.txt"
    assert second["filename"] == "hidden_00002.txt"


# ================================================================ records (run.json) and staged inputs
def test_routes_never_serve_a_symlinked_run_record(studio_dirs, outside):
    secret = outside / "secret.json"
    secret.write_text(json.dumps({"intent": "stolen", "status": "approved", "iterations": []}))
    run = routes.runs_root() / "20261201-evil"
    run.mkdir(parents=True)
    (run / "run.json").symlink_to(secret)
    status, body = routes.run_report("20261201-evil")
    assert status == 403 and "stolen" not in json.dumps(body)
    assert all(r["intent"] != "stolen" for r in routes.runs()[1]["runs"])


def test_a_huge_run_record_is_summarised_not_parsed_whole(studio_dirs):
    run = routes.runs_root() / "20261201-huge"
    run.mkdir(parents=True)
    record = {"intent": "huge one", "status": "failed", "iterations": [{"log": "x" * 1000}] * 6000}
    (run / "run.json").write_text(json.dumps(record, indent=2))
    assert (run / "run.json").stat().st_size > routes.RECORD_PARSE_LIMIT
    (item,) = routes.runs()[1]["runs"]
    assert item["intent"] == "huge one" and item["status"] == "failed" and item["too_large"]
    status, body = routes.run_report("20261201-huge")
    assert status == 413 and "larger than" in body["error"]


def test_director_record_never_follows_a_planted_symlink(studio_dirs, outside):
    from animation_studio.agent.director.cli import _write_record

    run_dir = studio_dirs["outputs"] / "run1"
    run_dir.mkdir()
    victim = outside / "victim.json"
    victim.write_text("precious")
    for name in ("run.json", "run.json.part", "run.1.json.part"):
        (run_dir / name).symlink_to(victim)
    path = _write_record(run_dir, {"intent": "x"})
    assert victim.read_text() == "precious"
    assert path.name == "run.1.json" and json.loads(path.read_text()) == {"intent": "x"}
    assert oct(path.stat().st_mode & 0o777) == oct(0o644)


def test_cli_json_record_refuses_a_symlink_and_its_part_name(studio_dirs, outside):
    from animation_studio.agent.cli import CLIError, write_json_new

    victim = outside / "victim.json"
    victim.write_text("precious")
    (studio_dirs["outputs"] / "r.json.part").symlink_to(victim)
    write_json_new(studio_dirs["outputs"] / "r.json", {"a": 1})
    (studio_dirs["outputs"] / "s.json").symlink_to(outside / "new.json")
    with pytest.raises(CLIError, match="already exists"):
        write_json_new(studio_dirs["outputs"] / "s.json", {"a": 2})
    assert victim.read_text() == "precious" and not (outside / "new.json").exists()


@pytest.mark.parametrize("what", ["system file", "text file", "script"])
def test_direct_input_copies_only_media(studio_dirs, tmp_path, what):
    from animation_studio.agent.director.cli import _stage_inputs

    if what == "system file":
        name = "/etc/passwd"
    else:
        path = tmp_path / ("notes.txt" if what == "text file" else "run.mp4")
        path.write_text("#!/bin/sh\nrm -rf /\n" if what == "script" else "secret notes\n")
        name = str(path)
    with pytest.raises(ValueError, match="--input"):
        _stage_inputs([name], "run1")
    assert _files_under(studio_dirs["input"]) == []


def test_direct_input_still_stages_real_media(studio_dirs, tmp_path):
    from animation_studio.agent.director.cli import _stage_inputs

    clip = media.make_test_clip(tmp_path / "clip.mp4", seconds=0.5, with_audio=False)
    tone = media.make_tone(0.3, path=tmp_path / "voice.wav")
    names = _stage_inputs([clip.path, str(tone)], "run1")
    assert [Path(n).name for n in names] == ["clip.mp4", "voice.wav"]
    staged = studio_dirs["input"] / names[0]
    assert staged.read_bytes() == Path(clip.path).read_bytes() and oct(staged.stat().st_mode & 0o777) == oct(0o644)


def test_temp_videos_are_removed_on_sigterm(studio_dirs, tmp_path):
    """A CLI process killed with SIGTERM mid-encode leaves no .part file and no intermediate video behind."""
    import signal
    import time

    code = f"""
import sys, time, numpy as np
sys.path.insert(0, {str(Path(__file__).parent)!r})
from animation_studio.configs import paths
from animation_studio.nodes import video_io as vio
paths.clean_temp_on_exit()
def slow():
    for i in range(1000):
        yield np.zeros((1, 16, 16, 3), np.uint8)
        if i == 2:
            print("encoding", flush=True)
        time.sleep(0.05)
vio.write_video(slow(), 12, vio.temp_video_path("killed"))
"""
    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, env=os.environ.copy())
    assert child.stdout.readline().strip() == "encoding"
    folder = studio_dirs["temp"] / "animation_studio_video"
    assert any(p.name.startswith("killed_") for p in folder.iterdir())
    assert any(".part" in p.name for p in folder.iterdir())
    child.send_signal(signal.SIGTERM)
    assert child.wait(timeout=30) == 128 + signal.SIGTERM
    time.sleep(0.1)
    assert list(folder.iterdir()) == []


# ================================================================ audio channels (child process: 7.1 crashed)
TONE_AMP = 0.2


def _tone_freq(k: int) -> float:
    return 330.0 + 170.0 * k


def _write_pcm_wav(path: Path, wave: np.ndarray, rate: int) -> None:
    """A plain PCM WAV (no channel mask, as many tools write them), independent of the pack's writers."""
    with wavemod.open(str(path), "wb") as fh:
        fh.setnchannels(wave.shape[0])
        fh.setsampwidth(2)
        fh.setframerate(rate)
        fh.writeframes((np.clip(wave.T, -1, 1) * 32767).astype("<i2").tobytes())


def _write_surround_mp4(path: Path, wave: np.ndarray, rate: int, fps: float = 12) -> None:
    """An MP4 with a small moving picture and an AAC track of wave's channel count (PyAV directly)."""
    import av

    layout = av.AudioLayout(f"{wave.shape[0]}c").name
    frames = media.clip_frames(wave.shape[1] / rate, fps, (64, 48))
    with av.open(str(path), "w") as container:
        vs = container.add_stream("libx264", rate=int(fps))
        vs.width, vs.height, vs.pix_fmt = 64, 48, "yuv420p"
        ast = container.add_stream("aac", rate=rate, layout=layout)
        resampler = av.AudioResampler(format=ast.format.name, layout=layout, rate=rate)
        for i, img in enumerate(frames):
            f = av.VideoFrame.from_ndarray(img, format="rgb24")
            f.pts = i
            container.mux(vs.encode(f))
        container.mux(vs.encode(None))
        packed = np.ascontiguousarray(wave.T, np.float32).reshape(1, -1)
        frame = av.AudioFrame.from_ndarray(packed, format="flt", layout=layout)
        frame.sample_rate, frame.pts = rate, 0
        for out in resampler.resample(frame):
            container.mux(ast.encode(out))
        container.mux(ast.encode(None))


def _tone_amplitudes(signal_1d: np.ndarray, rate: int, n: int) -> list[float]:
    """Amplitude of each channel's tone (_tone_freq(k)) in a mono signal: the median over 50 ms windows of a
    least-squares sin/cos fit (windowed, because a time stretch does not keep the phase from window to window)."""
    win = int(0.05 * rate)
    t = np.arange(win) / rate
    windows = [signal_1d[i:i + win].astype(np.float64) for i in range(0, signal_1d.size - win + 1, win)]
    out = []
    for k in range(n):
        f = _tone_freq(k)
        basis = np.stack([np.sin(2 * np.pi * f * t), np.cos(2 * np.pi * f * t)], axis=1)
        fits = [np.hypot(*np.linalg.lstsq(basis, w, rcond=None)[0]) for w in windows]
        out.append(float(np.median(fits)) if fits else 0.0)
    return out


def _channel_names(n: int) -> list[str]:
    import av

    return [c.name for c in av.AudioLayout(f"{n}c").channels]


def audio_child(folder: str) -> None:
    """Run every audio path on 1..8-channel inputs; prints one JSON line per (channels, path) as it finishes."""
    import logging

    from animation_studio.nodes.voice.audio import from_audio

    logging.disable(logging.WARNING)
    rate = 48000
    root = Path(folder)

    def emit(n, path, **result):
        print(json.dumps({"channels": n, "path": path, **result}), flush=True)

    def decoded(entry):
        return vio.decode_audio(root / "outputs" / entry["subfolder"] / entry["filename"])

    def tones(wave_ct, r, n):
        """Per source channel: its tone's amplitude in each output channel (lists)."""
        return [_tone_amplitudes(ch[int(0.05 * r):-int(0.05 * r) or None], r, n) for ch in wave_ct]

    for n in range(1, 9):
        t = np.arange(int(0.5 * rate)) / rate
        source = np.stack([TONE_AMP * np.sin(2 * np.pi * _tone_freq(k) * t) for k in range(n)]).astype(np.float32)
        _write_pcm_wav(root / "input" / f"c{n}.wav", source, rate)
        (loaded,) = A.LoadAudio().run(f"c{n}.wav", 0)
        emit(n, "LoadAudio", shape=list(loaded["waveform"].shape[1:]))
        for fmt in ("wav", "flac", "mp3", "ogg"):
            entry = A.SaveAudio().run(loaded, f"ch/c{n}", fmt)["ui"]["audio"][0]
            wave, r = decoded(entry)
            emit(n, f"SaveAudio.{fmt}", channels_out=wave.shape[0], tones=tones(wave, r, n))
        (mixed,) = A.MixAudio().run(media.make_tone(0.5, rate, freq=100.0), loaded, -60.0, 0.0, 0.0)
        mixed_wave, r = vio.audio_to_numpy(mixed)
        emit(n, "MixAudio", channels_out=mixed_wave.shape[0], tones=tones(mixed_wave, r, n))
        mono, r = from_audio(loaded)
        emit(n, "voice.from_audio", channels_out=1, tones=tones(mono[None], r, n))
        _write_surround_mp4(root / "input" / f"s{n}.mp4", source, rate)
        clip = vio.probe(root / "input" / f"s{n}.mp4")
        slow = V.slow_motion(clip, 0.5, "blend", "stretch")
        wave, r = vio.decode_audio(slow.path)
        # Stretched twice as long at the same pitch: the tones are still there.
        emit(n, "SlowMotion", channels_out=wave.shape[0], tones=tones(wave, r, n))
        joined = V.concatenate(clip, clip, "cut", 0.0)
        wave, r = vio.decode_audio(joined.path)
        emit(n, "ConcatVideo", channels_out=wave.shape[0], tones=tones(wave, r, n))
        (loaded_video, _, _) = V.LoadVideo().run(f"s{n}.mp4", 0, 0, 1, 32)  # max_size: re-encoded
        entry = V.SaveVideo().run(loaded_video, f"ch/v{n}", "webm", True)["ui"]["images"][0]
        wave, r = decoded(entry)
        emit(n, "LoadVideo->SaveVideo.webm", channels_out=wave.shape[0], tones=tones(wave, r, n))
    _write_pcm_wav(root / "input" / "c10.wav", np.full((10, 4800), 0.1, np.float32), rate)
    for path, call in (("LoadAudio", lambda: A.LoadAudio().run("c10.wav", 0)),
                       ("write_audio", lambda: vio.write_audio((np.zeros((10, 100), np.float32), rate),
                                                               root / "outputs" / "c10.wav"))):
        try:
            call()
            emit(10, path, error="")
        except ValueError as exc:
            emit(10, path, error=str(exc))


AUDIO_PATHS = ["LoadAudio", "SaveAudio.wav", "SaveAudio.flac", "SaveAudio.mp3", "SaveAudio.ogg", "MixAudio",
               "voice.from_audio", "SlowMotion", "ConcatVideo", "LoadVideo->SaveVideo.webm"]


@pytest.fixture(scope="module")
def audio_results(tmp_path_factory):
    root = tmp_path_factory.mktemp("channels")
    env = os.environ.copy()
    for folder, setting in (("input", "INPUT"), ("outputs", "OUTPUT"), ("temp", "TEMP"), ("models", "MODELS")):
        (root / folder).mkdir()
        env[f"ANIMATION_STUDIO__PATHS__{setting}"] = str(root / folder)
    proc = subprocess.run([sys.executable, __file__, "--audio-child", str(root)], env=env, capture_output=True,
                          text=True, timeout=400)
    results = {}
    for line in proc.stdout.splitlines():
        if line.startswith("{"):
            item = json.loads(line)
            results[(item["channels"], item["path"])] = item
    return results, proc.returncode, proc.stderr[-2000:]


@pytest.mark.parametrize("path", AUDIO_PATHS)
@pytest.mark.parametrize("channels", range(1, 9))
def test_every_audio_path_takes_1_to_8_channels(audio_results, channels, path):
    results, rc, stderr = audio_results
    item = results.get((channels, path))
    assert item is not None, f"the audio child stopped before {channels} ch {path} (exit {rc}): {stderr}"
    if path == "LoadAudio":
        assert item["shape"][0] == channels
        return
    keeps = path in ("SaveAudio.wav", "SaveAudio.flac") or (path == "MixAudio" and channels == 1)
    expected_out = channels if keeps else (1 if path == "voice.from_audio" else min(channels, 2))
    if path == "ConcatVideo" or (path == "MixAudio" and channels > 1):
        expected_out = 2  # a mono voice meets the track in stereo; joined clips are cut in stereo
    assert item["channels_out"] == expected_out
    names = _channel_names(channels)
    for k, name in enumerate(names):
        heard = max(out[k] for out in item["tones"])
        if name == "LFE" and not keeps:
            continue  # the LFE is dropped in a downmix (documented), so its tone may be gone
        # Kept channels keep their level; downmixed ones arrive at -3 dB or more (codec loss allowed).
        floor = 0.8 * TONE_AMP if keeps or expected_out == channels else 0.3 * TONE_AMP
        assert heard > floor, f"{name} (channel {k}) lost in {path}: {item['tones']}"


def test_more_than_71_is_refused_by_name(audio_results):
    results, rc, stderr = audio_results
    for path in ("LoadAudio", "write_audio"):
        item = results.get((10, path))
        assert item is not None, f"the audio child stopped before 10 ch {path} (exit {rc}): {stderr}"
        assert "10 channels" in item.get("error", "") and "7.1" in item["error"], item


def test_real_51_clip_keeps_its_centre_channel(studio_dirs):
    """bigbuckbunny.mp4 has 5.1 AAC: a re-encoded copy must carry its centre at -3 dB in both sides."""
    source = media.real_footage("bigbuckbunny.mp4")
    shutil.copy(source, studio_dirs["input"] / "bbb.mp4")
    surround, rate = vio.decode_audio(source)
    assert surround.shape[0] == 6
    (clip, _, _) = V.LoadVideo().run("bbb.mp4", 0, 50, 1, 160)  # a range and a resize: re-encoded
    out, out_rate = vio.decode_audio(clip.path)
    assert out.shape[0] == 2 and out_rate == rate
    n = min(out.shape[1], int(50 / 25 * rate)) - 4096
    names = _channel_names(6)
    for side, keep in ((0, ("FL", "FC", "BL")), (1, ("FR", "FC", "BR"))):
        # Fit the output side as a mix of the source channels (finding the codec delay first).
        target = out[side]
        lag = int(np.argmax([np.dot(target[2048:n], surround[side, 2048 - d:n - d]) for d in range(0, 2048, 8)])) * 8
        design = np.stack([surround[names.index(c), 2048 - lag:n - lag] for c in names if c != "LFE"], axis=1)
        coef, *_ = np.linalg.lstsq(design, target[2048:n], rcond=None)
        gains = dict(zip([c for c in names if c != "LFE"], coef))
        assert abs(gains["FC"] - 0.7071) < 0.1, gains  # the old `wave[:2]` gave 0: the voice was gone
        assert abs(gains[keep[0]] - 1.0) < 0.1 and abs(gains[keep[2]] - 0.7071) < 0.1, gains


# ================================================================ truncated media, 16-bit and palette images
def _faststart_copy(src: Path, dst: Path) -> Path:
    """Remux with the index first (as streaming sites serve MP4), so a cut file still opens."""
    import av

    with av.open(str(src)) as inp, av.open(str(dst), "w", options={"movflags": "faststart"}) as out:
        streams = {s.index: out.add_stream_from_template(s) for s in inp.streams}
        for pkt in inp.demux():
            if pkt.dts is not None:
                pkt.stream = streams[pkt.stream.index]
                out.mux(pkt)
    return dst


def test_truncated_mp4_decodes_what_is_there_and_says_what_was_lost(studio_dirs, tmp_path, caplog):
    clip = media.make_test_clip(tmp_path / "whole.mp4", seconds=4, fps=25, size=(320, 64), with_audio=True)
    _faststart_copy(Path(clip.path), tmp_path / "fs.mp4")
    media.truncate_file(tmp_path / "fs.mp4", studio_dirs["input"] / "cut.mp4", keep=0.4)
    with caplog.at_level("WARNING"):
        video, fps, count = V.LoadVideo().run("cut.mp4", 0, 0, 1, 0)
    assert 0 < count < 100 and vio.probe(studio_dirs["input"] / "cut.mp4").missing_frames == 100 - count
    assert any("cut.mp4" in r.getMessage() and f"{count} of 100" in r.getMessage() for r in caplog.records)
    out = V.SaveVideo().run(video, "cut/out", "mp4", True)["ui"]["images"][0]
    frames = vio.read_frames(vio.probe(studio_dirs["outputs"] / out["subfolder"] / out["filename"]))
    assert len(frames) == count  # the old code padded to 100 with the last picture frozen
    # The square moves every frame: no two neighbours are the same picture (nothing frozen was invented).
    assert min(np.abs(frames[i].astype(int) - frames[i + 1]).mean() for i in range(len(frames) - 1)) > 0.5


def test_truncated_real_clip_is_decoded_never_padded(studio_dirs, tmp_path):
    """Big Buck Bunny with its index first, cut at 40%: what is there is decoded, nothing is invented."""
    source = _faststart_copy(media.real_footage("bigbuckbunny.mp4"), tmp_path / "bbb_fs.mp4")
    media.truncate_file(source, tmp_path / "bbb_cut.mp4", keep=0.4)
    video = vio.probe(tmp_path / "bbb_cut.mp4")
    decoded = sum(len(c) for c in vio.iter_frames(video, max_size=64))
    assert decoded == video.frame_count < 132 and video.missing_frames == 132 - video.frame_count
    # Refused outright when even the index is cut away (the wheel's own file keeps it at the end).
    media.truncate_file(media.real_footage("bigbuckbunny.mp4"), tmp_path / "bbb_tail.mp4", keep=0.4)
    with pytest.raises(ValueError, match="bbb_tail.mp4"):
        vio.probe(tmp_path / "bbb_tail.mp4")


def _png(path: Path, img) -> str:
    img.save(path, format="PNG")
    return path.name


def test_16bit_grey_png_is_scaled_not_clipped(studio_dirs):
    from PIL import Image

    ramp = np.linspace(0, 65535, 64 * 16).astype(np.uint16).reshape(16, 64)
    name = _png(studio_dirs["input"] / "deep.png", Image.fromarray(ramp))
    image, mask = core.LoadImage().run(name)
    got = image[0, ..., 0].numpy()
    assert np.allclose(got, ramp / 65535.0, atol=1e-4)  # the old code clipped: 99% of it was white
    assert float(mask.abs().max()) == 0.0


def test_palette_and_grey_alpha_pngs_keep_colour_and_transparency(studio_dirs):
    from PIL import Image

    rgb = np.zeros((8, 8, 3), np.uint8)
    rgb[:, :4] = (200, 30, 40)
    rgb[:, 4:] = (20, 60, 220)
    pal = Image.fromarray(rgb).convert("P", palette=Image.Palette.ADAPTIVE, colors=4)
    pal.info["transparency"] = pal.getpixel((7, 7))
    image, mask = core.LoadImage().run(_png(studio_dirs["input"] / "pal.png", pal))
    assert np.allclose(image[0, 0, 0].numpy(), np.array([200, 30, 40]) / 255, atol=0.01)
    assert float(mask[0, 0, 7]) == 1.0 and float(mask[0, 0, 0]) == 0.0
    la = np.dstack([np.full((8, 8), 128, np.uint8), np.full((8, 8), 64, np.uint8)])
    image, mask = core.LoadImage().run(_png(studio_dirs["input"] / "la.png", Image.fromarray(la, "LA")))
    assert np.allclose(image[0].numpy(), 128 / 255, atol=0.01) and np.allclose(mask.numpy(), 1 - 64 / 255, atol=0.01)


# ================================================================ streaming lip sync
def test_lip_sync_video_streams_with_flat_memory(studio_dirs):
    import tracemalloc

    from animation_studio.nodes.voice import lipsync
    from animation_studio.nodes.voice.audio import to_audio

    face = np.full((1, 256, 256, 3), 180, np.uint8)
    peaks = {}
    for seconds in (2.0, 8.0):
        t = np.arange(int(seconds * 16000)) / 16000
        speech = (0.3 * np.sin(2 * np.pi * 220 * t) * (np.sin(2 * np.pi * 3 * t) > 0)).astype(np.float32)
        tracemalloc.start()
        video, report = lipsync.lip_sync_video(face, to_audio(speech, 16000), 24.0, "energy", "96,160,64,32")
        peaks[seconds] = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        assert video.frame_count == report["frames"] == int(np.ceil(seconds * 24)) and video.has_audio
    # The 6 s more hold 144 more frames (28 MB) where every frame is kept; streamed, only the few copies of
    # the sound itself grow (about 64 KB per second each).
    held = 6 * 24 * face[0].nbytes
    assert peaks[8.0] - peaks[2.0] < 0.2 * held, (peaks, held)


if __name__ == "__main__" and len(sys.argv) == 3 and sys.argv[1] == "--audio-child":
    audio_child(sys.argv[2])
