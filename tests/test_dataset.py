"""LoRA dataset curation on a film rendered by the tests (two characters, a blurry scene)."""
import json
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

sys.path.insert(0, str(Path(__file__).parent))
from film import make_film, reference_images  # noqa: E402

from animation_studio.nodes import video_io  # noqa: E402
from animation_studio.nodes.dataset import curate, pipeline  # noqa: E402
from animation_studio.nodes.dataset.curate import CurationSettings  # noqa: E402

REFS = {"luca": reference_images("luca"), "giulia": reference_images("giulia")}


@pytest.fixture(scope="module")
def film(tmp_path_factory):
    return make_film(tmp_path_factory.mktemp("film") / "film.mp4")


def settings(character="giulia", **kw):
    return CurationSettings(character=character, trigger=f"{character}_pixar", min_images=5, max_images=12, **kw)


def dataset_files(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes()
            for p in sorted(folder.rglob("*")) if p.is_file() and ".staging" not in p.parts
            and p.name not in ("manifest.jsonl", "job.json")}


def test_film_to_kohya_dataset_with_manifest(film, tmp_path, studio_dirs):
    summary = pipeline.curate_film(film, tmp_path / "out", settings(), REFS)
    folder = tmp_path / "out" / "10_giulia_pixar"
    images = sorted(folder.glob("*.png"))
    assert summary["kept"] == len(images) == 12
    for img in images:
        assert img.with_suffix(".txt").read_text().startswith("giulia_pixar, ")
        assert Image.open(img).mode == "RGBA"
    reasons = summary["rejected"]
    assert reasons["blurry"] > 0 and reasons["other_character:luca"] > 0
    records = summary["records"]
    # every measured frame is in the manifest with its reason and measured values
    blurry = [r for r in records if r["reason"] == "blurry"]
    assert all(r["sharpness"] < 80 and r["scene"] == 2 for r in blurry)
    kept = [r for r in records if r["status"] == "kept"]
    assert all(r["sharpness"] >= 80 and r["identity"] == "giulia" for r in kept)
    assert {r["scene"] for r in kept} == {0, 1, 3}  # spread over every usable scene
    assert summary["rules"] == {"alpha_threshold": 0.15, "blur_threshold": 80.0, "identity_margin": 0.08,
                                "color_jitter": False, "horizontal_flip": False}
    # every kept region passed the matte gate and beat the set around it by the margin
    assert all(r["matte_passed"] and r["identity_margin"] >= 0.08 and r["verified"] for r in kept)
    assert summary["matte_gate"]["passed"] > 0 and summary["camera_moves"] == 0
    lines = (tmp_path / "out" / "manifest.jsonl").read_text().splitlines()
    assert len(lines) == summary["measured"]


def test_kept_pixels_equal_the_source_frame_apart_from_the_matte(film, tmp_path, studio_dirs):
    summary = pipeline.curate_film(film, tmp_path / "out", settings(), REFS)
    video = video_io.probe(str(film))
    frames = np.concatenate(list(video_io.iter_frames(video)))
    for record in [r for r in summary["records"] if r["status"] == "kept"][:5]:
        rgba = np.asarray(Image.open(tmp_path / "out" / record["image"]))
        source = frames[record["frame"]]
        assert np.array_equal(rgba[..., :3], source)  # no colour jitter, no flip: bit-identical
        alpha = rgba[..., 3]
        assert alpha.max() == 255 and (alpha == 0).mean() > 0.5
        soft = alpha[(alpha > 0) & (alpha < 255)]
        assert soft.size > 0 and soft.min() >= int(0.15 * 255)  # anti-aliased edge kept above the threshold


def test_resume_after_a_kill_gives_the_same_dataset(film, tmp_path, studio_dirs, monkeypatch):
    reference = pipeline.curate_film(film, tmp_path / "fresh", settings(), REFS)

    calls = {"n": 0}
    real = pipeline.measure_scene

    def dies_on_third_scene(*args):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt("killed")
        return real(*args)

    monkeypatch.setattr(pipeline, "measure_scene", dies_on_third_scene)
    with pytest.raises(KeyboardInterrupt):
        pipeline.curate_film(film, tmp_path / "resumed", settings(), REFS)
    done = curate.Manifest(tmp_path / "resumed" / "manifest.jsonl").done_frames()
    assert done and not (tmp_path / "resumed" / "summary.json").exists()

    calls["n"] = 10  # later calls succeed; count what the resumed job measures
    measured = []
    monkeypatch.setattr(pipeline, "measure_scene", lambda *a: measured.append(a[1]) or real(*a))
    resumed = pipeline.curate_film(film, tmp_path / "resumed", settings(), REFS)
    assert sorted(measured) == [2, 3]  # scenes 0 and 1 were not redone
    assert dataset_files(tmp_path / "resumed" / "10_giulia_pixar") == dataset_files(tmp_path / "fresh" / "10_giulia_pixar")
    assert resumed["kept"] == reference["kept"]


def test_other_settings_never_overwrite_an_existing_job(film, tmp_path, studio_dirs):
    pipeline.curate_film(film, tmp_path / "out", settings(), REFS)
    before = dataset_files(tmp_path / "out")
    with pytest.raises(pipeline.CurationError, match="choose a new output folder"):
        pipeline.curate_film(film, tmp_path / "out", settings(blur_threshold=10), REFS)
    assert dataset_files(tmp_path / "out") == before


def test_the_other_character_gets_its_own_dataset(film, tmp_path, studio_dirs):
    summary = pipeline.curate_film(film, tmp_path / "luca", settings("luca"), REFS)
    kept = [r for r in summary["records"] if r["status"] == "kept"]
    assert kept and all(r["identity"] == "luca" for r in kept)


def test_a_film_with_no_character(tmp_path, studio_dirs):
    empty = make_film(tmp_path / "empty.mp4", scenes=2, cast=((),))
    summary = pipeline.curate_film(empty, tmp_path / "out", settings(), REFS)
    assert summary["kept"] == 0 and summary["enough"] is False
    assert set(summary["rejected"]) == {"no_character"}


def test_ray_two_workers_give_the_same_dataset(film, tmp_path, studio_dirs):
    pytest.importorskip("ray", reason="ray is not installed (the 'dataset' extra)")
    local = pipeline.curate_film(film, tmp_path / "local", settings(), REFS)
    on_ray = pipeline.curate_film(film, tmp_path / "ray", settings(), REFS, workers=2)
    assert dataset_files(tmp_path / "ray" / "10_giulia_pixar") == dataset_files(tmp_path / "local" / "10_giulia_pixar")
    assert on_ray["kept"] == local["kept"]


def test_gpu_wait_polls_until_memory_is_free():
    readings = iter([[1 << 30], [2 << 30], [9 << 30]])
    slept = []
    gpu = pipeline.wait_for_gpu_memory(8 << 30, poll_s=1, query=lambda: next(readings), sleep=slept.append)
    assert gpu == 0 and slept == [1, 1]
    assert pipeline.wait_for_gpu_memory(8 << 30, query=lambda: []) is None
    with pytest.raises(pipeline.CurationError, match="GiB free"):
        pipeline.wait_for_gpu_memory(8 << 30, poll_s=1, timeout_s=2, query=lambda: [1 << 30], sleep=lambda s: None)


def test_stage_nodes_on_image_batches():
    import torch

    from animation_studio.nodes.dataset import AlphaMatte, DedupeFrames, SharpnessFilter

    mask = torch.tensor([[[0.1, 0.2, 0.9]]])
    assert torch.equal(AlphaMatte().run(mask, 0.15)[0], torch.tensor([[[0.0, 0.2, 0.9]]]))
    rng = np.random.default_rng(0)
    crisp = rng.integers(0, 255, (1, 64, 64, 3)).astype(np.float32) / 255
    smooth = np.full((1, 64, 64, 3), 0.5, np.float32)
    batch = torch.from_numpy(np.concatenate([crisp, smooth, crisp]))
    kept, _, report = SharpnessFilter().run(batch, 80.0)
    assert kept.shape[0] == 2 and json.loads(report)["kept"] == [0, 2]
    images, report = DedupeFrames().run(batch, 6)
    assert images.shape[0] == 2 and json.loads(report)["duplicate_of"] == {"2": 0}


def test_shipped_workflow_runs_on_the_embedded_engine(film, studio_dirs, engine):
    import shutil

    shutil.copy(film, studio_dirs["input"] / "film.mp4")
    graph = json.loads((Path(__file__).parent.parent / "workflows" / "api" / "dataset_curation.api.json").read_text())
    # Without Giulia's reference images nothing can verify her: the node stops and says why.
    refused = engine.run(graph, run_dir=studio_dirs["outputs"] / "refused")
    assert not refused.ok and "unknown subject" in refused.message() and "giulia" in refused.message()
    for name in ("giulia_front.png", "giulia_side.png"):  # where her profile says they are
        Image.fromarray(REFS["giulia"][0]).save(studio_dirs["input"] / name)
    result = engine.run(graph, run_dir=studio_dirs["outputs"] / "run")
    assert result.ok, result.message()
    report = json.loads(result.values["2"][0][0])
    assert report["character"] == "giulia" and report["measured"] > 0
    assert (Path(result.values["2"][1][0]) / "manifest.jsonl").exists()


def test_cli_dataset_command(film, tmp_path, studio_dirs):
    import os
    import subprocess

    refs = tmp_path / "refs"
    refs.mkdir()
    Image.fromarray(REFS["giulia"][0]).save(refs / "giulia.png")
    env = dict(os.environ, ANIMATION_STUDIO__PATHS__OUTPUT=str(studio_dirs["outputs"]))
    out = subprocess.run([sys.executable, "-m", "animation_studio.agent.cli", "dataset", str(film), "--character",
                          "giulia", "--references", str(refs), "--out", str(tmp_path / "ds"), "--max-images", "6"],
                         capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stderr
    summary = json.loads(out.stdout)
    assert summary["kept"] == 6 and summary["identity_checked_against"] == ["giulia"]
    assert len(list((tmp_path / "ds" / "10_giulia_character").glob("*.txt"))) == 6
    bad = subprocess.run([sys.executable, "-m", "animation_studio.agent.cli", "dataset", str(film), "--character",
                          "bruno"], capture_output=True, text=True, env=env, timeout=300)
    assert bad.returncode == 2 and "Known characters" in bad.stderr and "Traceback" not in bad.stderr


def test_background_plate_removes_the_character_with_the_opencv_fallback(studio_dirs):
    from film import set_background, character_sprite

    bg = np.asarray(set_background(7).convert("RGB"))
    frame = set_background(7)
    sprite = character_sprite("luca")
    frame.paste(sprite, (80, 50), sprite)
    rgb = np.asarray(frame.convert("RGB"))
    alpha = np.zeros(rgb.shape[:2], np.float32)
    alpha[50:100, 80:114] = np.asarray(sprite)[..., 3] / 255
    plate, method = curate.background_plate(rgb, alpha)
    assert method == "opencv_telea"  # no LaMa in models/inpaint here
    region = (slice(50, 100), slice(80, 114))
    before = np.abs(rgb[region].astype(int) - bg[region]).mean()
    after = np.abs(plate[region].astype(int) - bg[region]).mean()
    assert after < before / 2
    outside = np.ones(rgb.shape[:2], bool)
    outside[40:110, 70:124] = False
    assert np.array_equal(plate[outside], rgb[outside])  # nothing else touched


def test_identity_uses_the_face_familys_paths_and_says_which(film, tmp_path, studio_dirs):
    pytest.importorskip("skimage", reason="the face extra (scikit-image) is not installed")
    summary = pipeline.curate_film(film, tmp_path / "out", settings(identity="face"), REFS)
    judged = [r for r in summary["records"] if r.get("identity_scores")]
    assert judged and {r["identity_path"] for r in judged} == {"face:stylized"}  # toon faces: no real face found
    palette = pipeline.curate_film(film, tmp_path / "pal", settings(identity="palette"), REFS)
    assert {r["identity_path"] for r in palette["records"] if r.get("identity_scores")} == {"palette"}
    for result in (summary, palette):
        assert all(r["identity"] == "giulia" for r in result["records"] if r["status"] == "kept")


def test_sam2_segmenter_refines_each_region_from_its_box(monkeypatch):
    from animation_studio.nodes import segment

    rgb = np.zeros((60, 80, 3), np.uint8)
    plate_alpha = np.zeros((60, 80), np.float32)
    plate_alpha[10:30, 5:25] = 1.0
    plate_alpha[35:55, 50:75] = 1.0
    boxes = []

    def fake_segment(sam, images, box="", threshold=None, **kw):
        x0, y0, x1, y1 = json.loads(box)
        boxes.append((x0, y0, x1, y1))
        out = np.zeros(images.shape[:3], np.float32)
        out[:, y0 + 2:y1 - 2, x0 + 2:x1 - 2] = 0.8
        return out

    monkeypatch.setattr(segment, "load_model", lambda name: f"model:{name}")
    monkeypatch.setattr(segment, "segment_images", fake_segment)
    refined = curate.refine_with_sam2(rgb, plate_alpha, "sam2.1_hiera_large.pt", 0.15)
    assert sorted(boxes) == [(5, 10, 25, 30), (50, 35, 75, 55)]
    assert refined[20, 15] == pytest.approx(0.8) and refined[11, 6] == 0.0


def test_missing_sam2_checkpoint_is_named_before_any_work(film, tmp_path, studio_dirs):
    pytest.importorskip("sam2", reason="the segment extra (sam2) is not installed")
    from animation_studio.nodes import bridge

    with pytest.raises(bridge.MissingModel, match="sam2.1_hiera_large.pt"):
        pipeline.curate_film(film, tmp_path / "out", settings(segmenter="sam2:sam2.1_hiera_large.pt"), REFS)
    assert not curate.Manifest(tmp_path / "out" / "manifest.jsonl").read()


def test_vision_model_captions_each_kept_frame(film, tmp_path, studio_dirs):
    from animation_studio.agent.llm import ScriptedBackend

    seen = []

    def answer(messages, schema):
        seen.append(messages)
        return {"description": f"running along the harbour, smiling, three-quarter view {len(seen)}"}

    backend = ScriptedBackend(answer)
    describe = curate.vision_describer(backend, tmp_path / "out" / ".staging", "giulia_pixar")
    summary = pipeline.curate_film(film, tmp_path / "out", settings(), REFS, describe=describe)
    kept = [r for r in summary["records"] if r["status"] == "kept"]
    assert len(backend.calls) == len(kept) == 12
    assert all(call.get("images") for call in backend.calls)  # the model saw every frame
    captions = sorted((tmp_path / "out" / "10_giulia_pixar").glob("*.txt"))
    assert all(c.read_text().startswith("giulia_pixar, running along the harbour") for c in captions)


def test_a_blind_caption_model_is_refused():
    from animation_studio.agent.llm import make_backend

    with pytest.raises(ValueError, match="cannot see images"):
        curate.vision_describer(make_backend("local"), Path("."), "giulia")


def test_sam2_fallback_is_prompted_where_the_references_colours_are(monkeypatch):
    """A moving camera leaves no plate to say where the subject is: SAM2's box comes from the reference colours."""
    from film import character_sprite, set_background

    from animation_studio.nodes import segment

    frame = set_background(3)
    sprite = character_sprite("giulia")
    frame.paste(sprite, (120, 60), sprite)
    rgb = np.asarray(frame.convert("RGB"))
    judge = curate.IdentityJudge("subject", {"giulia": REFS["giulia"]})
    boxes = []

    def fake_segment(sam, images, box="", threshold=None, **kw):
        boxes.append(json.loads(box))
        return np.ones(images.shape[:3], np.float32)

    monkeypatch.setattr(segment, "load_model", lambda name: f"model:{name}")
    monkeypatch.setattr(segment, "segment_images", fake_segment)
    curate.sam2_from_likeness(rgb, judge.likeness(rgb, "giulia"), "sam2.1_hiera_large.pt", settings())
    (x0, y0, x1, y1), = boxes
    assert 120 <= x0 < x1 <= 154 and 60 <= y0 < y1 <= 110 and (x1 - x0) * (y1 - y0) > 300  # on the sprite's body
