"""Background plates on a real frame: the OpenCV Telea fallback, and LaMa against LaMa's own published convention.

No LaMa weights run offline here, so a tiny random-weight stand-in with LaMa's real contract is built in code:
a generator that takes 4 channels (image*(1-mask) and the mask) and only accepts sides that are multiples of 8
(it pools by 8 and upsamples back, as LaMa's three downsamplings do). `lama_reference` is LaMa's predict.py
pre/post-processing re-implemented from the published code (saicinpainting/evaluation/data.py
`pad_img_to_modulo`: np.pad mode 'symmetric'; `DefaultInpaintingTrainingModule.forward`: masked image ++ mask,
`inpainted = mask * predicted + (1 - mask) * img`; predict.py: crop, `np.clip(x * 255, 0, 255).astype('uint8')`).
"""
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
cv2 = pytest.importorskip("cv2")
sys.path.insert(0, str(Path(__file__).parent))
from media import real_footage  # noqa: E402

from animation_studio.nodes import video_io  # noqa: E402
from animation_studio.nodes.dataset import curate  # noqa: E402

RABBIT = (160, 80, 620, 620)  # frame 100 of bigbuckbunny.mp4, cut by hand (x0, y0, x1, y1)


class TinyLamaGenerator(torch.nn.Module):
    """LaMa's generator contract with random weights: [B,4,H,W] -> [B,3,H,W] in 0..1, H and W multiples of 8."""

    def __init__(self):
        super().__init__()
        self.local = torch.nn.Conv2d(4, 3, 3, padding=1)
        self.coarse = torch.nn.Conv2d(4, 3, 1)

    def forward(self, x):
        torch._assert(x.shape[1] == 4, "LaMa takes image*(1-mask) and mask: 4 channels")
        coarse = torch.nn.functional.avg_pool2d(x, 8)  # an unpadded side would lose its last rows here...
        up = torch.nn.functional.interpolate(self.coarse(coarse), scale_factor=8.0, mode="nearest")
        return torch.sigmoid(self.local(x) + up)  # ...and this sum would fail on the shape mismatch


class ExportedLama(torch.nn.Module):
    """The TorchScript export inpaint packs ship as big-lama.pt: forward(image, mask) does the masking itself."""

    def __init__(self, generator):
        super().__init__()
        self.generator = generator

    def forward(self, image, mask):
        predicted = self.generator(torch.cat([image * (1 - mask), mask], dim=1))
        return mask * predicted + (1 - mask) * image


def lama_reference(generator, rgb, hole):
    """LaMa's predict.py path, step by step as published, for one uint8 RGB image and a 0/1 mask."""
    img = rgb.astype("float32").transpose(2, 0, 1) / 255.0  # load_image: CHW float in 0..1
    mask = (hole[None].astype("float32") > 0) * 1.0  # predict.py binarises the mask
    h, w = img.shape[1:]
    out_h, out_w = -(-h // 8) * 8, -(-w // 8) * 8  # ceil_modulo

    def pad_img_to_modulo(a):
        return np.pad(a, ((0, 0), (0, out_h - h), (0, out_w - w)), mode="symmetric")

    batch_img = torch.from_numpy(pad_img_to_modulo(img))[None].float()
    batch_mask = torch.from_numpy(pad_img_to_modulo(mask))[None].float()
    with torch.no_grad():
        masked_img = torch.cat([batch_img * (1 - batch_mask), batch_mask], dim=1)
        predicted = generator(masked_img)
        inpainted = batch_mask * predicted + (1 - batch_mask) * batch_img
    cur_res = inpainted[0].permute(1, 2, 0).numpy()[:h, :w]
    return np.clip(cur_res * 255, 0, 255).astype("uint8")


@pytest.fixture(scope="module")
def frame_and_hole():
    """Frame 100 of the real 3D short at an odd size (not a multiple of 8), the rabbit's matte as the hole."""
    video = video_io.probe(str(real_footage("bigbuckbunny.mp4")))
    frame = np.concatenate(list(video_io.iter_frames(video, start=100, end=101)))[0]
    x0, y0, x1, y1 = RABBIT
    alpha = curate.grabcut_matte(frame, (x0, y0, x1 - x0, y1 - y0))
    size = (321, 181)
    small = cv2.resize(frame, size, interpolation=cv2.INTER_AREA)
    hole = (cv2.resize(alpha, size, interpolation=cv2.INTER_LINEAR) > 0.5).astype(np.uint8)
    assert 0.05 < hole.mean() < 0.4  # the rabbit, not nothing and not the frame
    return small, hole


@pytest.fixture(scope="module")
def generator():
    torch.manual_seed(0)
    return torch.jit.script(TinyLamaGenerator().eval())


def test_the_stand_in_refuses_sides_that_are_not_multiples_of_8(generator, frame_and_hole):
    small, _ = frame_and_hole
    x = torch.rand(1, 4, small.shape[0], small.shape[1])
    with pytest.raises(Exception):
        generator(x)


@pytest.mark.parametrize("export", [False, True], ids=["bare_generator", "big_lama_export"])
def test_lama_pre_and_post_processing_match_lamas_convention(generator, frame_and_hole, export):
    small, hole = frame_and_hole
    model = torch.jit.script(ExportedLama(generator).eval()) if export else generator
    ours = curate.lama_inpaint(small, hole, model)
    reference = lama_reference(generator, small, hole)
    inside = hole > 0
    assert np.array_equal(ours[inside], reference[inside])
    assert np.array_equal(ours[~inside], small[~inside])  # untouched pixels stay the source's, bit for bit
    assert np.abs(reference[~inside].astype(int) - small[~inside]).max() <= 1  # LaMa's float round trip
    # The generator really saw image*(1-mask): the rabbit's pixels cannot leak into the plate.
    changed = small.copy()
    changed[inside] = 255 - changed[inside]
    assert np.array_equal(curate.lama_inpaint(changed, hole, model)[inside], ours[inside])


def test_background_plate_loads_lama_from_models_inpaint(generator, frame_and_hole, studio_dirs, tmp_path):
    small, hole = frame_and_hole
    folder = studio_dirs["models"] / "inpaint"
    folder.mkdir()
    torch.jit.save(torch.jit.script(ExportedLama(generator).eval()), str(folder / "big-lama.pt"))
    plate, method = curate.background_plate(small, hole.astype(np.float32))
    assert method == "lama"
    grown = cv2.dilate(hole, np.ones((7, 7), np.uint8)) > 0  # the node grows the hole over the soft edge
    assert np.array_equal(plate[grown], lama_reference(generator, small, grown.astype(np.uint8))[grown])
    assert np.array_equal(plate[~grown], small[~grown])
    (folder / "broken.pt").write_bytes(b"not a torchscript archive")
    with pytest.raises(ValueError, match=r"broken\.pt in .*inpaint is not a TorchScript LaMa"):
        curate.background_plate(small, hole.astype(np.float32), "broken.pt")


def test_telea_fallback_removes_the_rabbit_from_a_real_frame(frame_and_hole, studio_dirs):
    small, hole = frame_and_hole
    plate, method = curate.background_plate(small, hole.astype(np.float32))
    assert method == "opencv_telea"  # no LaMa in models/inpaint
    grown = cv2.dilate(hole, np.ones((7, 7), np.uint8)) > 0
    assert np.array_equal(plate[~grown], small[~grown])
    # What fills the hole comes from the set around it: its colours lie near the ring around the hole,
    # far nearer than the rabbit's grey fur did.
    ring = (cv2.dilate(grown.astype(np.uint8), np.ones((15, 15), np.uint8)) > 0) & ~grown
    lab_plate = cv2.cvtColor(plate, cv2.COLOR_RGB2LAB).astype(float)
    lab_frame = cv2.cvtColor(small, cv2.COLOR_RGB2LAB).astype(float)
    ring_colour = lab_frame[ring].mean(axis=0)
    before = np.linalg.norm(lab_frame[grown].mean(axis=0) - ring_colour)
    after = np.linalg.norm(lab_plate[grown].mean(axis=0) - ring_colour)
    assert after < before / 2, (before, after)
