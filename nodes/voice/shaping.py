"""Formant shaping and measurement: turn the packaged adult voice into a child's or a girl's.

A resampling pitch shift (what piper_tts does for pitch) moves the pitch AND the formants (the vocal
tract's resonances) by the same factor: +12 semitones doubles both, which is a sped-up tape, not a child.
A child's or a girl's voice has a pitch about an octave above an adult man's but formants only
~15-25 % higher (a shorter vocal tract, not a half-length one). So after the resampling by p, each
frame's spectral envelope is moved back to the target formant scale q: the spectrum is divided by its
own envelope (leaving the harmonics) and multiplied by the envelope read at f * p / q. The envelope is
the frame's cepstrum liftered below the pitch period (WORLD's CheapTrick idea, done with numpy's FFT),
so it follows the resonances and not the harmonics.

`formants` measures F1/F2 (LPC roots on voiced frames, the classic Praat-style estimate) so each
character's figures can be reported beside its pitch.
"""
from __future__ import annotations

import numpy as np

FRAME_S = 0.032   # analysis window (s); hop = a quarter of it
F0_CEILING_HZ = 500.0  # the lifter stays below the period of the highest pitch we make


def _stft(x: np.ndarray, n: int, hop: int) -> tuple[np.ndarray, np.ndarray]:
    window = np.hanning(n).astype(np.float64)
    pad = np.pad(x.astype(np.float64), (n, n + hop))
    count = 1 + (len(pad) - n) // hop
    idx = np.arange(n)[None, :] + hop * np.arange(count)[:, None]
    return np.fft.rfft(pad[idx] * window, axis=1), window


def _istft(spec: np.ndarray, window: np.ndarray, hop: int, length: int) -> np.ndarray:
    n = len(window)
    frames = np.fft.irfft(spec, n=n, axis=1) * window
    out = np.zeros(hop * (len(frames) - 1) + n)
    norm = np.zeros_like(out)
    for i, f in enumerate(frames):
        out[i * hop:i * hop + n] += f
        norm[i * hop:i * hop + n] += window ** 2
    out /= np.maximum(norm, 1e-8)
    return out[n:n + length]


def spectral_envelope(mag: np.ndarray, rate: int) -> np.ndarray:
    """Smooth log-magnitude envelope per frame ([frames, bins] magnitudes -> log envelope)."""
    n = 2 * (mag.shape[1] - 1)
    cep = np.fft.irfft(np.log(np.maximum(mag, 1e-9)), n=n, axis=1)
    lifter = max(8, int(rate / F0_CEILING_HZ * 0.9))  # quefrencies below the shortest pitch period
    cep[:, lifter:n - lifter + 1] = 0.0
    return np.fft.rfft(cep, n=n, axis=1).real


def warp_formants(samples: np.ndarray, rate: int, ratio: float) -> np.ndarray:
    """Move every formant by `ratio` (0.5..2) keeping the pitch: the envelope E(f) becomes E(f / ratio)."""
    x = np.asarray(samples, np.float64)
    if abs(ratio - 1.0) < 1e-3 or x.size == 0:
        return x.astype(np.float32)
    if not 0.5 <= ratio <= 2.0:
        raise ValueError(f"formant ratio {ratio:.3f} outside 0.5..2")
    n = int(2 ** np.ceil(np.log2(FRAME_S * rate)))
    hop = n // 4
    spec, window = _stft(x, n, hop)
    mag = np.abs(spec)
    env = spectral_envelope(mag, rate)
    bins = np.arange(mag.shape[1], dtype=np.float64)
    source = bins / ratio
    warped = np.stack([np.interp(source, bins, e, right=e[-1]) for e in env])
    out = _istft(spec * np.exp(warped - env), window, hop, len(x))
    peak = float(np.max(np.abs(out))) or 1.0
    level = float(np.max(np.abs(x))) or 1.0
    return (out * min(1.0, level / peak)).astype(np.float32)


def formants(samples: np.ndarray, rate: int, count: int = 2) -> list[float]:
    """Median F1..F<count> (Hz) over voiced frames: LPC at 10 kHz, roots with bandwidth < 400 Hz."""
    from scipy.linalg import solve_toeplitz
    from scipy.signal import resample_poly

    x = resample_poly(np.asarray(samples, np.float64), 10000, rate) if rate != 10000 else np.asarray(samples, float)
    rate = 10000
    x = np.append(x[0], x[1:] - 0.97 * x[:-1])  # pre-emphasis
    n, hop, order = int(0.03 * rate), int(0.01 * rate), 12
    window = np.hamming(n)
    frames = [x[i:i + n] for i in range(0, len(x) - n, hop)]
    energy = np.array([np.sqrt(np.mean(f ** 2)) for f in frames]) if frames else np.zeros(0)
    found: list[list[float]] = [[] for _ in range(count)]
    for f, e in zip(frames, energy):
        if e < 0.2 * energy.max():
            continue
        w = f * window
        r = np.correlate(w, w, "full")[n - 1:n + order]
        if r[0] <= 0:
            continue
        try:
            a = solve_toeplitz(r[:order], -r[1:order + 1])
        except np.linalg.LinAlgError:
            continue
        roots = np.roots(np.concatenate([[1.0], a]))
        roots = roots[np.imag(roots) > 0]
        freqs = np.angle(roots) * rate / (2 * np.pi)
        bands = -np.log(np.abs(roots)) * rate / np.pi
        keep = np.sort(freqs[(freqs > 150) & (freqs < 4500) & (bands < 400)])
        for k in range(min(count, len(keep))):
            found[k].append(float(keep[k]))
    return [round(float(np.median(v)), 1) if v else 0.0 for v in found]


def mean_envelope(samples: np.ndarray, rate: int) -> tuple[np.ndarray, np.ndarray]:
    """(frequencies, mean log envelope) over the voiced frames (the loudest 60 %), as spectral_envelope."""
    x = np.asarray(samples, np.float64)
    n = int(2 ** np.ceil(np.log2(FRAME_S * rate)))
    spec, _ = _stft(x, n, n // 4)
    mag = np.abs(spec)
    energy = mag.sum(1)
    voiced = energy >= np.percentile(energy, 40)
    env = spectral_envelope(mag[voiced], rate)
    return np.fft.rfftfreq(n, 1.0 / rate), env.mean(0)


def formant_scale(samples: np.ndarray, rate: int, reference: np.ndarray, reference_rate: int) -> float:
    """How far this voice's formants sit above the reference voice's (1.0 = the same vocal tract): the
    frequency scale that best lines up the two mean envelopes over 250-4500 Hz (correlation, 0.6..2.5)."""
    f, e = mean_envelope(samples, rate)
    fr, er = mean_envelope(reference, reference_rate)
    band = (f >= 250) & (f <= 4500)
    target = e[band] - e[band].mean()
    best, best_r = -np.inf, 1.0
    for r in np.exp(np.linspace(np.log(0.6), np.log(2.5), 161)):
        moved = np.interp(f[band] / r, fr, er)
        moved = moved - moved.mean()
        c = float(np.dot(moved, target) / max(np.linalg.norm(moved) * np.linalg.norm(target), 1e-12))
        if c > best:
            best, best_r = c, r
    return round(float(best_r), 3)
