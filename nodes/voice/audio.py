"""AUDIO dict helpers and the small DSP the voice family needs (numpy only, no librosa).

ComfyUI's AUDIO is {"waveform": torch float [B, C, T], "sample_rate": int}; the
plain functions of this family work on mono float32 numpy arrays and convert
at the node edge.
"""
from __future__ import annotations

import io
from fractions import Fraction
from pathlib import Path

from .. import bridge


def to_audio(samples, sample_rate: int) -> dict:
    """Mono float numpy [T] -> ComfyUI AUDIO [1, 1, T]."""
    import numpy as np

    torch = bridge.require("torch", "voice")
    arr = np.ascontiguousarray(np.asarray(samples, dtype=np.float32).reshape(1, 1, -1))
    return {"waveform": torch.from_numpy(arr), "sample_rate": int(sample_rate)}


def to_mono(wave_ct):
    """float32 [C,T] -> mono [T]: stereo averaged, 3..8 channels through the ITU downmix (centre kept, LFE dropped)."""
    from ..video_io import channel_layout, to_channels

    channel_layout(int(wave_ct.shape[0]))  # more than 7.1 is refused with a clear error
    return to_channels(wave_ct, 1)[0]


def from_audio(audio: dict, name: str = "audio"):
    """ComfyUI AUDIO -> (mono float32 numpy [T], sample_rate); the first batch item, downmixed by to_mono."""
    import numpy as np

    if not isinstance(audio, dict) or "waveform" not in audio or "sample_rate" not in audio:
        raise ValueError(f"Input '{name}' is not an AUDIO value (a dict with 'waveform' and 'sample_rate').")
    wave = audio["waveform"]
    arr = wave.detach().cpu().float().numpy() if hasattr(wave, "detach") else np.asarray(wave, np.float32)
    if arr.ndim == 1:
        arr = arr[None, None]
    elif arr.ndim == 2:
        arr = arr[None]
    if arr.shape[-1] == 0:
        raise ValueError(f"Input '{name}' holds no samples.")
    return to_mono(np.ascontiguousarray(arr[0], np.float32)).astype(np.float32), int(audio["sample_rate"])


def read_wav_bytes(data: bytes, what: str = "audio"):
    """WAV (or any soundfile format) bytes -> (mono float32, sample_rate); ValueError for anything unreadable."""
    import numpy as np

    sf = bridge.require("soundfile", "voice")
    try:
        samples, rate = sf.read(io.BytesIO(data), dtype="float32", always_2d=True)
    except Exception as exc:  # noqa: BLE001 - libsndfile reports bad data with many types
        head = data[:60].decode("utf-8", "replace")
        raise ValueError(f"The {what} is not readable audio ({exc}); it starts with {head!r}.") from None
    return to_mono(np.ascontiguousarray(samples.T)).astype(np.float32), int(rate)


def read_audio_file(path: Path):
    sf = bridge.require("soundfile", "voice")
    import numpy as np

    try:
        samples, rate = sf.read(str(path), dtype="float32", always_2d=True)
    except Exception as exc:  # noqa: BLE001
        raise ValueError(f"Cannot read audio file {path}: {exc}") from None
    return to_mono(np.ascontiguousarray(samples.T)), int(rate)


def check_samples(samples, sample_rate: int, what: str, min_seconds: float = 0.05) -> None:
    """Refuse audio that is empty, non-finite or silent: the sign of a broken backend or clip."""
    import numpy as np

    if samples.size == 0 or samples.size < min_seconds * sample_rate:
        raise ValueError(f"The {what} is too short ({samples.size / max(sample_rate, 1):.3f} s; "
                         f"at least {min_seconds:.2f} s is needed).")
    if not np.all(np.isfinite(samples)):
        raise ValueError(f"The {what} contains NaN or infinite samples (garbage audio).")
    if float(np.max(np.abs(samples))) < 1e-3:
        raise ValueError(f"The {what} is silent (peak below -60 dBFS).")


def resample(samples, rate_in: int, rate_out: int):
    """Polyphase resampling (anti-aliased), exact for rational ratios."""
    import numpy as np

    if rate_in == rate_out:
        return np.asarray(samples, np.float32)
    from scipy.signal import resample_poly

    ratio = Fraction(int(rate_out), int(rate_in)).limit_denominator(1000)
    return resample_poly(samples, ratio.numerator, ratio.denominator).astype(np.float32)


def speed_up(samples, factor: float):
    """Play `factor` times faster: duration / factor and pitch * factor (resampling trick)."""
    import numpy as np

    if abs(factor - 1.0) < 1e-4:
        return np.asarray(samples, np.float32)
    from scipy.signal import resample_poly

    ratio = Fraction(1.0 / factor).limit_denominator(200)
    return resample_poly(samples, ratio.numerator, ratio.denominator).astype(np.float32)


def concat_with_pause(chunks: list, sample_rate: int, pause_s: float = 0.18):
    import numpy as np

    gap = np.zeros(int(pause_s * sample_rate), np.float32)
    parts = []
    for i, chunk in enumerate(chunks):
        if i:
            parts.append(gap)
        parts.append(np.asarray(chunk, np.float32))
    return np.concatenate(parts) if parts else np.zeros(0, np.float32)


# ---------------------------------------------------------------- spectral features
def mel_filterbank(sample_rate: int, n_fft: int, n_mels: int, fmin: float = 0.0, fmax: float | None = None):
    """Slaney-style mel filters [n_mels, n_fft//2+1] (the same scale and area norm as librosa's default)."""
    import numpy as np

    fmax = fmax or sample_rate / 2

    def hz_to_mel(f):
        f = np.asarray(f, np.float64)
        lin = f / (200.0 / 3)
        log = 15.0 + np.log(np.maximum(f, 1e-10) / 1000.0) / (np.log(6.4) / 27.0)
        return np.where(f >= 1000.0, log, lin)

    def mel_to_hz(m):
        m = np.asarray(m, np.float64)
        lin = m * (200.0 / 3)
        log = 1000.0 * np.exp((np.log(6.4) / 27.0) * (m - 15.0))
        return np.where(m >= 15.0, log, lin)

    freqs = np.linspace(0, sample_rate / 2, n_fft // 2 + 1)
    edges = mel_to_hz(np.linspace(hz_to_mel(fmin), hz_to_mel(fmax), n_mels + 2))
    fdiff = np.diff(edges)
    ramps = edges[:, None] - freqs[None, :]
    lower = -ramps[:-2] / fdiff[:-1, None]
    upper = ramps[2:] / fdiff[1:, None]
    weights = np.maximum(0, np.minimum(lower, upper))
    weights *= (2.0 / (edges[2:] - edges[:-2]))[:, None]
    return weights.astype(np.float32)


def stft_magnitude(samples, n_fft: int, hop: int, win: int | None = None):
    """|STFT| [n_fft//2+1, frames] with a centred Hann window (reflect padding, as librosa does)."""
    import numpy as np

    win = win or n_fft
    x = np.asarray(samples, np.float32)
    pad = n_fft // 2
    x = np.pad(x, pad, mode="reflect") if x.size > pad else np.pad(x, pad)
    window = np.zeros(n_fft, np.float32)
    start = (n_fft - win) // 2
    window[start:start + win] = np.hanning(win + 1)[:-1]
    n_frames = 1 + max(0, (x.size - n_fft) // hop)
    idx = np.arange(n_fft)[None, :] + hop * np.arange(n_frames)[:, None]
    frames = x[idx] * window[None, :]
    return np.abs(np.fft.rfft(frames, axis=1)).T.astype(np.float32)


def log_mel(samples, sample_rate: int, n_mels: int = 40, n_fft: int = 512, hop: int | None = None):
    import numpy as np

    hop = hop or sample_rate // 100
    mag = stft_magnitude(samples, n_fft, hop)
    mel = mel_filterbank(sample_rate, n_fft, n_mels, 20.0, min(8000.0, sample_rate / 2)) @ (mag ** 2)
    return np.log(mel + 1e-10)


def mfcc(samples, sample_rate: int, n_mfcc: int = 20, n_mels: int = 40):
    """MFCCs [n_mfcc, frames] (orthonormal DCT-II of the log-mel spectrum)."""
    from scipy.fft import dct

    return dct(log_mel(samples, sample_rate, n_mels), type=2, axis=0, norm="ortho")[:n_mfcc]


def frame_rms(samples, sample_rate: int, frame_s: float = 0.02, hop_s: float | None = None):
    """RMS per frame (no padding): the energy envelope."""
    import numpy as np

    frame = max(1, int(frame_s * sample_rate))
    hop = max(1, int((hop_s or frame_s) * sample_rate))
    x = np.asarray(samples, np.float32)
    if x.size < frame:
        x = np.pad(x, (0, frame - x.size))
    n = 1 + (x.size - frame) // hop
    idx = np.arange(frame)[None, :] + hop * np.arange(n)[:, None]
    return np.sqrt(np.mean(x[idx] ** 2, axis=1))


def median_pitch_hz(samples, sample_rate: int, fmin: float = 60.0, fmax: float = 500.0) -> float:
    """Median fundamental frequency of the voiced frames (YIN's cumulative mean normalised difference).

    0 when nothing is voiced. YIN's first-dip rule avoids the octave errors of plain autocorrelation.
    """
    import numpy as np

    frame, hop = int(0.04 * sample_rate), int(0.01 * sample_rate)
    x = np.asarray(samples, np.float32)
    if x.size < 2 * frame:
        return 0.0
    n = 1 + (x.size - 2 * frame) // hop
    idx = np.arange(2 * frame)[None, :] + hop * np.arange(n)[:, None]
    frames = x[idx]
    energy = np.sqrt(np.mean(frames[:, :frame] ** 2, axis=1))
    frames = frames[energy > max(0.01, 0.1 * energy.max())]
    if not len(frames):
        return 0.0
    hi = min(int(sample_rate / fmin), frame - 1)
    lo = max(2, int(sample_rate / fmax))
    # d(tau) = sum_j (x_j - x_{j+tau})^2 over a window of `frame` samples, for every tau < frame.
    head = frames[:, :frame]
    spec_full = np.fft.rfft(frames, n=4 * frame, axis=1)
    spec_head = np.fft.rfft(head, n=4 * frame, axis=1)
    cross = np.fft.irfft(spec_full * np.conj(spec_head), axis=1)[:, :frame]
    sq = np.cumsum(np.pad(frames ** 2, ((0, 0), (1, 0))), axis=1)
    energy_shift = sq[:, frame:2 * frame] - sq[:, :frame]
    diff = energy_shift[:, :1] + energy_shift - 2 * cross
    diff[:, 0] = 0
    cmnd = diff[:, 1:] * np.arange(1, frame) / np.maximum(np.cumsum(diff[:, 1:], axis=1), 1e-12)
    cmnd = np.concatenate([np.ones((len(cmnd), 1)), cmnd], axis=1)
    window = cmnd[:, lo:hi]
    below = window < 0.15
    first = np.where(below.any(axis=1), np.argmax(below, axis=1), np.argmin(window, axis=1))
    # walk to the bottom of the dip
    lags = first.copy()
    for i in range(len(lags)):
        while lags[i] + 1 < window.shape[1] and window[i, lags[i] + 1] < window[i, lags[i]]:
            lags[i] += 1
    voiced = window[np.arange(len(lags)), lags] < 0.3
    periods = (lo + lags[voiced]).astype(np.float64)
    return float(sample_rate / np.median(periods)) if len(periods) else 0.0
