"""Wav2Lip (Prajwal et al., 2020) inference from a checkpoint in models/wav2lip (wav2lip.pth / wav2lip_gan.pth).

The network is written here from the paper's published layout (face encoder of 7 blocks,
audio encoder over an 80x16 mel window, U-Net style decoder with skip connections, 96x96
faces with the lower half masked) so that the released checkpoints load with strict key
matching. The mel front end follows the paper's settings: 16 kHz, pre-emphasis 0.97,
n_fft 800, hop 200, 80 mels 55-7600 Hz, dB scaled to [-4, 4].
The face box comes from the caller (landmarks or the mouth box); Wav2Lip's own S3FD
detector is not used because it misses toon faces.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np

from .. import bridge
from .audio import mel_filterbank, resample, stft_magnitude

FACE_SIZE = 96
MEL_STEP = 16


def build_model():
    torch = bridge.require("torch", "voice")
    nn = torch.nn

    class Conv(nn.Module):
        def __init__(self, cin, cout, k, s, p, residual=False, transpose=False, output_padding=0):
            super().__init__()
            conv = (nn.ConvTranspose2d(cin, cout, k, s, p, output_padding) if transpose
                    else nn.Conv2d(cin, cout, k, s, p))
            self.conv_block = nn.Sequential(conv, nn.BatchNorm2d(cout))
            self.act = nn.ReLU()
            self.residual = residual

        def forward(self, x):
            out = self.conv_block(x)
            return self.act(out + x if self.residual else out)

    def res(c):
        return Conv(c, c, 3, 1, 1, residual=True)

    def up(cin, cout, s=2, p=1, op=1):
        return Conv(cin, cout, 3, s, p, transpose=True, output_padding=op)

    class Wav2Lip(nn.Module):
        def __init__(self):
            super().__init__()
            S = nn.Sequential
            self.face_encoder_blocks = nn.ModuleList([
                S(Conv(6, 16, 7, 1, 3)),                                    # 96
                S(Conv(16, 32, 3, 2, 1), res(32), res(32)),                 # 48
                S(Conv(32, 64, 3, 2, 1), res(64), res(64), res(64)),        # 24
                S(Conv(64, 128, 3, 2, 1), res(128), res(128)),              # 12
                S(Conv(128, 256, 3, 2, 1), res(256), res(256)),             # 6
                S(Conv(256, 512, 3, 2, 1), res(512)),                       # 3
                S(Conv(512, 512, 3, 1, 0), Conv(512, 512, 1, 1, 0)),        # 1
            ])
            self.audio_encoder = S(
                Conv(1, 32, 3, 1, 1), res(32), res(32),
                Conv(32, 64, 3, (3, 1), 1), res(64), res(64),
                Conv(64, 128, 3, 3, 1), res(128), res(128),
                Conv(128, 256, 3, (3, 2), 1), res(256),
                Conv(256, 512, 3, 1, 0), Conv(512, 512, 1, 1, 0))
            self.face_decoder_blocks = nn.ModuleList([
                S(Conv(512, 512, 1, 1, 0)),
                S(up(1024, 512, 1, 0, 0), res(512)),                        # 3
                S(up(1024, 512), res(512), res(512)),                       # 6
                S(up(768, 384), res(384), res(384)),                        # 12
                S(up(512, 256), res(256), res(256)),                        # 24
                S(up(320, 128), res(128), res(128)),                        # 48
                S(up(160, 64), res(64), res(64)),                           # 96
            ])
            self.output_block = S(Conv(80, 32, 3, 1, 1), nn.Conv2d(32, 3, 1, 1, 0), nn.Sigmoid())

        def forward(self, mel, faces):
            x = self.audio_encoder(mel)
            feats = []
            f = faces
            for block in self.face_encoder_blocks:
                f = block(f)
                feats.append(f)
            for block in self.face_decoder_blocks:
                x = torch.cat((block(x), feats.pop()), dim=1)
            return self.output_block(x)

    return Wav2Lip()


def checkpoint_path(name: str = ""):
    names = bridge.list_models("wav2lip", (".pth", ".pt", ".ckpt"))
    if name:
        return bridge.find_model("wav2lip", name)
    if not names:
        where = ", ".join(str(f) for f in bridge.model_folders("wav2lip"))
        raise bridge.MissingModel(f"Wav2Lip checkpoint (wav2lip_gan.pth or wav2lip.pth) not found. Put it in the "
                                  f"'wav2lip' models folder ({where}).")
    preferred = [n for n in names if "gan" in n.lower()]
    return bridge.find_model("wav2lip", (preferred or names)[0])


@lru_cache(maxsize=2)
def load_model(path: str):
    torch = bridge.require("torch", "voice")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001
        raise ValueError(f"Cannot read Wav2Lip checkpoint {path}: {exc}") from None
    state = checkpoint.get("state_dict", checkpoint) if isinstance(checkpoint, dict) else None
    if not isinstance(state, dict):
        raise ValueError(f"{path} holds no state_dict: not a Wav2Lip checkpoint.")
    state = {k.removeprefix("module."): v for k, v in state.items()}
    model = build_model()
    missing, unexpected = model.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise ValueError(f"{path} does not match the Wav2Lip network ({len(missing)} missing, {len(unexpected)} "
                         f"unexpected keys, e.g. {(missing or unexpected)[:3]}); is it a SyncNet or other checkpoint?")
    return model.eval()


def mel_spectrogram(samples: np.ndarray, rate: int) -> np.ndarray:
    """[80, frames] at 80 frames/s, normalised to [-4, 4] as the network was trained."""
    x = resample(samples, rate, 16000)
    x = np.append(x[0], x[1:] - 0.97 * x[:-1]) if x.size else x
    mag = stft_magnitude(x, 800, 200)
    mel = mel_filterbank(16000, 800, 80, 55.0, 7600.0) @ mag
    db = 20 * np.log10(np.maximum(1e-5, mel)) - 20.0
    return np.clip(8.0 * ((db + 100.0) / 100.0) - 4.0, -4.0, 4.0).astype(np.float32)


def mel_windows(mel: np.ndarray, n_frames: int, fps: float, first: int = 0) -> np.ndarray:
    """One 80x16 mel window per video frame first..first+n_frames-1: [n, 1, 80, 16]."""
    out = np.zeros((n_frames, 1, 80, MEL_STEP), np.float32)
    for k in range(n_frames):
        start = int((first + k) * 80.0 / fps)
        window = mel[:, start:start + MEL_STEP]
        if window.shape[1] < MEL_STEP:
            window = mel[:, -MEL_STEP:] if mel.shape[1] >= MEL_STEP else np.pad(window, ((0, 0), (0, MEL_STEP - window.shape[1])))
        out[k, 0] = window
    return out


def iter_run(frames: np.ndarray, n_frames: int, face_box, samples: np.ndarray, rate: int, fps: float,
             checkpoint: str = "", batch: int = 16, progress=None):
    """Lip-synced uint8 [n,H,W,3] chunks of `batch` frames for n_frames output frames.

    frames is the source batch [B,H,W,3], looped by index; face_box is (x0, y0, x1, y1). Only one
    chunk (and its mel windows) exists at a time, so memory does not grow with the audio's length.
    """
    cv2 = bridge.require("cv2", "voice", "opencv-python-headless")
    torch = bridge.require("torch", "voice")
    model = load_model(str(checkpoint_path(checkpoint)))
    mel = mel_spectrogram(samples, rate)
    x0, y0, x1, y1 = face_box
    for start in range(0, n_frames, batch):
        idx = range(start, min(start + batch, n_frames))
        out = np.stack([frames[i % len(frames)] for i in idx])
        # As the original inference does: faces in BGR (it reads frames with OpenCV, and the checkpoints were
        # trained so), resized by cv2.resize's default bilinear, the network's BGR answer pasted back the same way.
        faces = np.stack([cv2.resize(np.ascontiguousarray(out[k, y0:y1, x0:x1, ::-1]), (FACE_SIZE, FACE_SIZE))
                          for k in range(len(idx))]).astype(np.float32)
        masked = faces.copy()
        masked[:, FACE_SIZE // 2:] = 0.0  # the network paints the lower half from the audio
        face_in = torch.from_numpy((np.concatenate([masked, faces], axis=3) / 255.0).transpose(0, 3, 1, 2).copy())
        with torch.inference_mode():
            pred = model(torch.from_numpy(mel_windows(mel, len(idx), fps, start)), face_in.float())
        pred = (pred.numpy().transpose(0, 2, 3, 1) * 255.0).clip(0, 255).astype(np.uint8)
        for k in range(len(idx)):
            out[k, y0:y1, x0:x1] = cv2.resize(pred[k], (x1 - x0, y1 - y0))[..., ::-1]
        if progress is not None:
            progress.update(len(idx))
        yield out
