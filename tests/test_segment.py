"""SAM2 nodes on the package's own tiny config (hiera_t at image_size 128) with random weights, on CPU.

Random weights make arbitrary masks, so the fixture amplifies the decoder's mask
logits (a flat ~0.5 sigmoid would hide the threshold) and forces "object present";
the real code path still runs end to end: preprocessing, image encoder, prompt
encoder, mask decoder, memory encoder/attention while tracking, soft alpha out.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("sam2")
pytest.importorskip("av")
pytest.importorskip("cv2")
sys.path.insert(0, str(Path(__file__).parent))
import media  # noqa: E402

from animation_studio.nodes import bridge  # noqa: E402
from animation_studio.nodes import segment as S  # noqa: E402
from animation_studio.nodes import video_io as vio  # noqa: E402

TINY = "configs/sam2.1/sam2.1_hiera_t.yaml"
SMALL = ("++model.image_size=128",)
THRESHOLD = 0.15


def amplified(sam):
    """Random weights, but masks with a real inside/outside and a soft edge between (not a flat 0.5)."""
    dec = sam.model.sam_mask_decoder
    with torch.no_grad():
        for mlp in dec.output_hypernetworks_mlps:
            mlp.layers[-1].weight.mul_(40.0)
        dec.pred_obj_score_head.layers[-1].bias.fill_(10.0)  # "an object is there"
    return sam


@pytest.fixture(scope="module")
def sam():
    torch.manual_seed(0)
    return amplified(S.build_model(TINY, overrides=SMALL))


@pytest.fixture
def picture():
    """A 160x120 picture: a bright 'character' square on a gradient background."""
    img = media.clip_frames(0.1, 10, size=(160, 120), motion=True)[:1]
    return img


def check_alpha(alpha):
    assert alpha.dtype == np.float32
    assert alpha.min() >= 0.0 and alpha.max() <= 1.0
    # The threshold is applied: nothing between 0 and 0.15 survives...
    assert not ((alpha > 0) & (alpha < THRESHOLD - 1e-6)).any()
    # ...and the soft edge above it is kept (values strictly between the threshold and 1).
    assert ((alpha > THRESHOLD) & (alpha < 0.98)).any()


def test_config_from_checkpoint_name():
    assert S.config_for("sam2_hiera_large.pt") == "configs/sam2/sam2_hiera_l.yaml"
    assert S.config_for("sam2.1_hiera_base_plus.pt") == "configs/sam2.1/sam2.1_hiera_b+.yaml"
    assert S.config_for("sub/sam2.1_hiera_tiny.pt") == "configs/sam2.1/sam2.1_hiera_t.yaml"
    assert S.config_for("sam2.1_hiera_s.pt") == "configs/sam2.1/sam2.1_hiera_s.yaml"
    with pytest.raises(ValueError, match="Cannot tell the SAM2 config"):
        S.config_for("my_model.pt")


def test_logits_to_alpha_thresholds_and_keeps_soft_edge():
    logits = torch.linspace(-6, 6, 64).repeat(16, 1)  # a left-to-right ramp through the edge
    alpha = S.logits_to_alpha(logits, 32, 128, THRESHOLD)
    assert alpha.shape == (32, 128)
    check_alpha(alpha)
    assert (alpha[:, :20] == 0).all() and (alpha[:, -10:] > 0.99).all()
    assert np.all(np.diff(alpha[0]) >= -1e-6)  # monotone edge, no holes


def test_segment_image_points_box_and_hint(sam, picture):
    alpha = S.segment_images(sam, picture, "[[60, 60]]", "[[5, 5]]", "", threshold=THRESHOLD)
    assert alpha.shape == (1, 120, 160)
    check_alpha(alpha)
    boxed = S.segment_images(sam, picture, "", "", "[30, 30, 100, 90]", threshold=THRESHOLD)
    assert boxed.shape == (1, 120, 160)
    assert not np.array_equal(alpha, boxed)  # the prompt reaches the decoder
    hint = np.zeros((120, 160), np.float32)
    hint[40:80, 50:110] = 1
    hinted = S.segment_images(sam, picture, "", "", "", mask_hint=torch.from_numpy(hint)[None], threshold=THRESHOLD)
    check_alpha(hinted)


def test_prompt_errors(sam, picture):
    with pytest.raises(ValueError, match=r"point \(200, 10\) is outside the 160x120 picture"):
        S.segment_images(sam, picture, "[[200, 10]]", "", "")
    with pytest.raises(ValueError, match=r"box corner .* outside the 160x120"):
        S.segment_images(sam, picture, "", "", "[10, 10, 170, 50]")
    with pytest.raises(ValueError, match="box .* is empty"):
        S.segment_images(sam, picture, "", "", "[50, 10, 20, 50]")
    with pytest.raises(ValueError, match="points must be JSON"):
        S.segment_images(sam, picture, "60, 60", "", "")
    with pytest.raises(ValueError, match="Nothing to segment"):
        S.segment_images(sam, picture, "", "", "")
    with pytest.raises(ValueError, match="mask_hint is empty"):
        S.segment_images(sam, picture, "", "", "", mask_hint=torch.zeros(1, 120, 160))


def test_segment_node_uses_config_threshold(sam, picture, studio_dirs):
    from animation_studio.nodes.core import numpy_to_image

    (mask,) = S.SAM2SegmentImage().run(numpy_to_image(np.concatenate([picture, picture])), sam, "[[60, 60]]", "", "")
    assert isinstance(mask, torch.Tensor) and mask.dtype == torch.float32 and tuple(mask.shape) == (2, 120, 160)
    assert S.alpha_threshold() == pytest.approx(0.15)
    check_alpha(mask.numpy())


def test_track_video_streams_masks(sam, studio_dirs):
    clip = media.make_test_clip(studio_dirs["input"] / "walk.mp4", seconds=1, fps=6, size=(96, 64), with_audio=True)
    mask_video, masks = S.SAM2TrackVideo().run(clip, sam, 2, "[[30, 32]]", "", "", 3)
    assert isinstance(mask_video, vio.VideoFile)
    assert (mask_video.frame_count, mask_video.width, mask_video.height) == (6, 96, 64)
    assert mask_video.fps == clip.fps and not mask_video.has_audio
    assert tuple(masks.shape) == (3, 64, 96) and masks.dtype == torch.float32  # capped at max_mask_frames
    grey = vio.read_frames(mask_video)[..., 0].astype(np.float32) / 255
    assert grey[:2].max() < 0.03  # before the prompted frame: empty
    assert (grey[2:].reshape(4, -1).max(axis=1) > 0.5).all()  # tracked on every later frame
    check_alpha(masks[2].numpy())
    # The mask video keeps the soft grey levels within H.264's rounding.
    assert np.abs(grey[2] - masks[2].numpy()).mean() < 0.02
    with pytest.raises(ValueError, match="frame 6 is outside the clip"):
        S.track_video(sam, clip, 6, "[[30, 32]]")


def test_track_video_reports_progress_and_stops_when_cancelled(sam, studio_dirs):
    clip = media.make_test_clip(studio_dirs["input"] / "c.mp4", seconds=1, fps=4, size=(64, 48), with_audio=False)
    seen = []
    ctx = bridge.RunContext(output_dir=studio_dirs["outputs"], input_dir=studio_dirs["input"],
                            temp_dir=studio_dirs["temp"], on_progress=lambda n, v, t: seen.append((v, t)),
                            cancelled=lambda: len(seen) >= 2)
    token = bridge.set_context(ctx)
    try:
        with pytest.raises(bridge.Interrupted):
            S.track_video(sam, clip, 0, "[[30, 20]]")
    finally:
        bridge.reset_context(token)
    assert seen[:2] == [(1, 4), (2, 4)]


def test_loader_reads_checkpoint_and_names_missing_file(sam, studio_dirs):
    folder = studio_dirs["models"] / "sam2"
    with pytest.raises(bridge.MissingModel, match=r"sam2\.1_hiera_tiny\.pt.*'sam2' models folder"):
        S.LoadSAM2Model().run("sam2.1_hiera_tiny.pt")
    assert "sam2.1_hiera_large.pt" in S.LoadSAM2Model.INPUT_TYPES()["required"]["model_name"][0]
    folder.mkdir()
    # Same architecture as the 1024 model (image size changes no weight shapes): a random "real" checkpoint.
    torch.save({"model": sam.model.state_dict()}, folder / "sam2.1_hiera_tiny.pt")
    (loaded,) = S.LoadSAM2Model().run("sam2.1_hiera_tiny.pt")
    assert loaded.config == TINY and loaded.image_size == 1024 and loaded.name == "sam2.1_hiera_tiny.pt"
    weight = "sam_mask_decoder.pred_obj_score_head.layers.2.bias"
    assert torch.equal(loaded.model.state_dict()[weight], sam.model.state_dict()[weight])
    assert S.LoadSAM2Model.INPUT_TYPES()["required"]["model_name"][0][0] == "sam2.1_hiera_tiny.pt"
    torch.save({"model": {"nope": torch.zeros(1)}}, folder / "sam2_hiera_small.pt")
    with pytest.raises(ValueError, match="does not match configs/sam2/sam2_hiera_s.yaml"):
        S.load_model("sam2_hiera_small.pt")
