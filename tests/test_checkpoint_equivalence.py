"""Checkpoint paths against the upstream projects' own pre/post-processing (re-implemented here from their
published descriptions), with the same random weights, on real footage (Big Buck Bunny frames).

- FILM: its loader pads each frame with zeros, centred, to a multiple of 64 and crops the result back.
- Wav2Lip: its inference reads frames with OpenCV (BGR), resizes the face box to 96x96 with cv2.resize,
  masks the lower half, feeds [masked, face] / 255, and pastes the network's BGR answer back with cv2.resize.
- InstantID: its keypoint image has the four limbs as filled ellipses dimmed to 60 % and full-colour circles.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from media import real_footage  # noqa: E402

torch = pytest.importorskip("torch")
cv2 = pytest.importorskip("cv2")
from animation_studio.nodes import video_io as vio  # noqa: E402


@pytest.fixture(scope="module")
def bunny_pair():
    """Two consecutive real frames at 200x112 (neither side a multiple of 64)."""
    video = vio.probe(real_footage("bigbuckbunny.mp4"))
    frames = vio.read_frames(video, start=90, end=92)
    return [cv2.resize(f, (200, 112), interpolation=cv2.INTER_AREA) for f in frames]


class TinyPyramid(torch.nn.Module):
    """FILM's shape contract in miniature: six 2x downsamplings and back, random conv weights."""

    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(6, 3, 3, padding=1)

    def forward(self, a, b, t):
        y = self.conv(torch.cat([a, b], 1))
        for _ in range(6):
            y = torch.nn.functional.avg_pool2d(y, 2)
        for _ in range(6):
            y = torch.nn.functional.interpolate(y, scale_factor=2.0, mode="nearest")
        w = t.view(-1, 1, 1, 1)
        return a * (1 - w) + b * w + 0.2 * torch.tanh(y)


def film_upstream(model, a: np.ndarray, b: np.ndarray, t: float) -> np.ndarray:
    """FILM's loader: zero pad centred to a multiple of 64, run, crop the same box back."""
    h, w = a.shape[:2]
    ph, pw = (64 - h % 64) % 64, (64 - w % 64) % 64
    box = (ph // 2, pw // 2)
    padded = []
    for x in (a, b):
        canvas = np.zeros((h + ph, w + pw, 3), np.float32)
        canvas[box[0]:box[0] + h, box[1]:box[1] + w] = x / 255.0
        padded.append(torch.from_numpy(canvas).permute(2, 0, 1)[None])
    with torch.inference_mode():
        out = model(padded[0], padded[1], torch.full((1, 1), t))[0].permute(1, 2, 0).numpy()
    return (np.clip(out[box[0]:box[0] + h, box[1]:box[1] + w], 0, 1) * 255 + 0.5).astype(np.uint8)


def test_learned_interpolation_pads_like_film(bunny_pair, studio_dirs):
    from animation_studio.nodes.video import Interpolator

    torch.manual_seed(0)
    folder = studio_dirs["models"] / "frame_interpolation"
    folder.mkdir()
    scripted = torch.jit.script(TinyPyramid().eval())
    scripted.save(str(folder / "tiny_film.pt"))
    a, b = bunny_pair
    ours = Interpolator("learned", "tiny_film.pt")(a, b, 0.5)
    upstream = film_upstream(scripted, a, b, 0.5)
    assert ours.shape == a.shape
    assert np.abs(ours.astype(int) - upstream.astype(int)).max() <= 1
    # Without the padding the same network cannot even run on this frame size (the deviation fixed).
    with pytest.raises(RuntimeError):
        scripted(torch.zeros(1, 3, 112, 200), torch.zeros(1, 3, 112, 200), torch.full((1, 1), 0.5))


def wav2lip_upstream(model, frame_rgb: np.ndarray, box, mel_window: np.ndarray) -> np.ndarray:
    """Wav2Lip's inference for one frame, from its description: BGR in, BGR out."""
    x0, y0, x1, y1 = box
    bgr = np.ascontiguousarray(frame_rgb[..., ::-1])
    face = cv2.resize(bgr[y0:y1, x0:x1], (96, 96))
    masked = face.copy()
    masked[96 // 2:] = 0
    batch = np.concatenate((masked, face), axis=2)[None] / 255.0
    with torch.inference_mode():
        pred = model(torch.from_numpy(mel_window[None]), torch.from_numpy(batch.transpose(0, 3, 1, 2)).float())
    pred = pred.numpy().transpose(0, 2, 3, 1)[0] * 255.0
    out = bgr.copy()
    out[y0:y1, x0:x1] = cv2.resize(pred.astype(np.uint8), (x1 - x0, y1 - y0))
    return out[..., ::-1]


def test_wav2lip_feeds_bgr_like_the_original(studio_dirs):
    from animation_studio.nodes.voice import wav2lip

    torch.manual_seed(0)
    model = wav2lip.build_model().eval()
    for module in model.modules():  # BatchNorm statistics that are not the identity, as a trained model has
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.1, 0.1)
            module.running_var.uniform_(0.5, 1.5)
    folder = studio_dirs["models"] / "wav2lip"
    folder.mkdir()
    torch.save({"state_dict": model.state_dict()}, folder / "wav2lip_gan.pth")
    video = vio.probe(real_footage("bigbuckbunny.mp4"))
    frame = vio.read_frames(video, start=120, end=121)[0]
    box = (430, 40, 590, 200)  # the rabbit's face at frame 120
    rate = 16000
    t = np.arange(rate) / rate
    samples = (0.3 * np.sin(2 * np.pi * 220 * t) * (1 + np.sin(2 * np.pi * 3 * t))).astype(np.float32)
    ours = next(wav2lip.iter_run(frame[None], 1, box, samples, rate, 25.0))[0]
    mel = wav2lip.mel_windows(wav2lip.mel_spectrogram(samples, rate), 1, 25.0)[0]
    upstream = wav2lip_upstream(wav2lip.load_model(str(folder / "wav2lip_gan.pth")), frame, box, mel)
    assert np.array_equal(ours, upstream)
    # The old RGB feed gives another picture with the same weights (the deviation this fixes).
    rgb_fed = wav2lip_upstream(wav2lip.load_model(str(folder / "wav2lip_gan.pth")), frame[..., ::-1], box, mel)
    x0, y0, x1, y1 = box
    face_diff = np.abs(rgb_fed[y0:y1, x0:x1, ::-1].astype(int) - upstream[y0:y1, x0:x1].astype(int))
    assert face_diff.mean() > 1.0


def test_instantid_keypoint_image_is_drawn_as_published():
    pytest.importorskip("diffusers")
    from animation_studio.nodes.image.identity import draw_face_keypoints

    kps = [(60.0, 70.0), (140.0, 70.0), (100.0, 110.0), (70.0, 150.0), (130.0, 150.0)]
    img = draw_face_keypoints(kps, 200, 200)
    colours = [(255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 0), (255, 0, 255)]
    for (x, y), colour in zip(kps, colours):
        assert tuple(img[int(y), int(x)]) == colour  # full-colour circle at each keypoint
        assert tuple(img[int(y), int(x) + 9]) == colour and tuple(img[int(y), int(x) + 12]) != colour  # radius 10
    # Limb 0-2 (left eye to nose): a filled ellipse at 60 % of the eye's colour, about 9 px across.
    mid = (int((60 + 100) / 2), int((70 + 110) / 2))
    assert tuple(img[mid[1], mid[0]]) == (153, 0, 0)
    across = [tuple(img[mid[1] + d, mid[0] - d]) == (153, 0, 0) for d in range(-8, 9)]  # perpendicular to the limb
    assert 5 <= sum(across) <= 9
    # Nothing else is drawn.
    assert img[5:30, 5:30].max() == 0
