"""Objective voice figures for the evaluator.

* duration, speech rate (syllables/s and words/s over the voiced time, from the text),
* loudness (integrated LUFS via pyloudnorm when installed, always RMS dBFS), peak, clipping ratio,
* silence ratio (20 ms frames under -45 dBFS), median pitch,
* speaker similarity to real reference recordings of the character only ("no reference" without one;
  never against the same synthesiser). With an ONNX speaker-embedding model
  in models/speaker_embedding/ (e.g. a WeSpeaker/ECAPA export taking [1, T, 80] log-mel fbank at
  16 kHz) that model's cosine similarity; otherwise the documented fallback: the cosine of
  MFCC statistics (the mean of MFCC 2-19 over voiced frames, each coefficient divided by
  its typical spread). It tracks timbre coarsely: measured 0.87-0.97 for the same voice on
  other sentences and <= 0.82 for another character's voice; it is no speaker-verification model.
* Wav2Vec2 features when a model folder models/wav2vec2/<name> (config.json + weights,
  transformers format) is present; reported as unavailable otherwise.
"""
from __future__ import annotations

import numpy as np

from .. import bridge
from .audio import frame_rms, log_mel, median_pitch_hz, mfcc, resample
from .text import count_syllables, count_words

SILENCE_DBFS = -45.0
CLIP_LEVEL = 0.999


def _db(x: float) -> float:
    return float(20.0 * np.log10(max(x, 1e-10)))


def level_figures(samples: np.ndarray, rate: int) -> dict:
    rms = float(np.sqrt(np.mean(samples ** 2))) if samples.size else 0.0
    frames = frame_rms(samples, rate, 0.02)
    silent = frames < 10 ** (SILENCE_DBFS / 20)
    figures = {
        "duration_s": round(samples.size / rate, 3),
        "sample_rate": rate,
        "peak_dbfs": round(_db(float(np.max(np.abs(samples))) if samples.size else 0.0), 2),
        "rms_dbfs": round(_db(rms), 2),
        "clipping_ratio": round(float(np.mean(np.abs(samples) >= CLIP_LEVEL)), 5),
        "silence_ratio": round(float(np.mean(silent)), 4),
        "voiced_s": round(float(np.sum(~silent)) * 0.02, 3),
        "median_pitch_hz": round(median_pitch_hz(samples, rate), 1),
        "lufs": None,
    }
    try:
        import pyloudnorm

        if samples.size / rate >= 0.4:  # the BS.1770 gating block is 400 ms
            value = float(pyloudnorm.Meter(rate).integrated_loudness(samples.astype(np.float64)))
            figures["lufs"] = round(value, 2) if np.isfinite(value) else None
    except ImportError:
        figures["lufs_note"] = "pyloudnorm not installed; rms_dbfs is the loudness figure"
    return figures


def rate_figures(text: str, voiced_s: float) -> dict:
    syllables, words = count_syllables(text), count_words(text)
    per = max(voiced_s, 1e-3)
    return {"syllables": syllables, "words": words,
            "syllables_per_s": round(syllables / per, 2), "words_per_s": round(words / per, 2)}


# ---------------------------------------------------------------- speaker embeddings
def _voiced(samples: np.ndarray, rate: int) -> np.ndarray:
    """Drop silent 20 ms frames so pauses do not dilute the voice statistics."""
    hop = int(0.02 * rate)
    frames = frame_rms(samples, rate, 0.02)
    keep = frames >= max(10 ** (SILENCE_DBFS / 20), 0.05 * float(frames.max(initial=0)))
    if not keep.any():
        return samples
    return np.concatenate([samples[i * hop:(i + 1) * hop] for i in np.flatnonzero(keep)])


def mfcc_embedding(samples: np.ndarray, rate: int) -> np.ndarray:
    x = resample(_voiced(samples, rate), rate, 16000)
    coeffs = mfcc(x, 16000, n_mfcc=20)[2:]  # c0 is loudness and c1 the spectral tilt every voice shares
    return (coeffs.mean(axis=1) / _MFCC_SCALE).astype(np.float32)


# Typical within-utterance spread of MFCC 2-19 (measured on the default voice over several sentences and
# pitches); dividing by it weights each coefficient by how much it varies, so no single one dominates.
# Measured with the three profiles: same voice, other sentence 0.87-0.97; another character <= 0.82.
_MFCC_SCALE = np.array([4.33, 5.42, 3.55, 2.5, 2.43, 2.28, 1.95, 1.91, 1.78, 1.65, 1.42, 1.33, 1.29,
                        1.05, 1.05, 0.95, 0.92, 0.83], np.float32)


def onnx_speaker_model():
    """Path of an ONNX speaker-embedding model in models/speaker_embedding/, or None."""
    names = bridge.list_models("speaker_embedding", (".onnx",))
    return bridge.find_model("speaker_embedding", names[0]) if names else None


def onnx_embedding(model_path, samples: np.ndarray, rate: int) -> np.ndarray:
    ort = bridge.require("onnxruntime", "voice")
    session = _onnx_session(str(model_path), ort)
    x = resample(_voiced(samples, rate), rate, 16000)
    feats = log_mel(x, 16000, n_mels=80, n_fft=400, hop=160).T  # [T, 80] like Kaldi fbank (25 ms / 10 ms)
    feats = feats - feats.mean(axis=0, keepdims=True)           # cepstral mean normalisation
    name = session.get_inputs()[0].name
    out = session.run(None, {name: feats[None].astype(np.float32)})[0]
    return np.asarray(out, np.float32).reshape(-1)


_SESSIONS: dict = {}


def _onnx_session(path: str, ort):
    if path not in _SESSIONS:
        _SESSIONS[path] = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    return _SESSIONS[path]


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.dot(a, b) / max(np.linalg.norm(a) * np.linalg.norm(b), 1e-12))


def speaker_similarity(samples: np.ndarray, rate: int, references: list[tuple[np.ndarray, int]]) -> dict:
    """Cosine similarity to the mean embedding of the reference clips, and which embedder made it."""
    if not references:
        return {"similarity": None, "embedder": None, "note": "no reference"}
    model = onnx_speaker_model()
    if model is not None:
        embed, embedder = (lambda s, r: onnx_embedding(model, s, r)), f"onnx:{model.name}"
    else:
        embed, embedder = mfcc_embedding, "mfcc-stats (fallback: no model in models/speaker_embedding)"
    ref = np.mean([embed(s, r) for s, r in references], axis=0)
    return {"similarity": round(cosine(embed(samples, rate), ref), 4), "embedder": embedder}


# ---------------------------------------------------------------- wav2vec2
def wav2vec2_folder():
    names = [n for n in bridge.list_models("wav2vec2") if "/" not in n]
    for name in names:
        path = bridge.find_model("wav2vec2", name)
        if (path / "config.json").is_file():
            return path
    return None


_W2V: dict = {}


def wav2vec2_features(samples: np.ndarray, rate: int, references: list[tuple[np.ndarray, int]]) -> dict:
    folder = wav2vec2_folder()
    if folder is None:
        return {"available": False, "note": "no model folder in models/wav2vec2 (config.json + weights)"}
    torch = bridge.require("torch", "voice")
    transformers = bridge.require("transformers", "voice")
    if str(folder) not in _W2V:
        _W2V[str(folder)] = transformers.Wav2Vec2Model.from_pretrained(str(folder)).eval()
    model = _W2V[str(folder)]

    def pooled(s, r):
        x = resample(s, r, 16000)
        x = (x - x.mean()) / max(float(x.std()), 1e-6)  # the feature extractor's zero-mean unit-variance step
        with torch.inference_mode():
            hidden = model(torch.from_numpy(x[None].astype(np.float32))).last_hidden_state[0]
        return hidden.mean(dim=0).numpy(), hidden.shape[0]

    vec, frames = pooled(samples, rate)
    report = {"available": True, "model": folder.name, "frames": int(frames), "dim": int(vec.shape[0]),
              "mean_norm": round(float(np.linalg.norm(vec)), 4)}
    if references:
        ref = np.mean([pooled(s, r)[0] for s, r in references], axis=0)
        report["similarity"] = round(cosine(vec, ref), 4)
    return report


def analyze(samples: np.ndarray, rate: int, text: str, references: list[tuple[np.ndarray, int]]) -> dict:
    samples = np.asarray(samples, np.float32)
    report = level_figures(samples, rate)
    report.update(rate_figures(text or "", report["voiced_s"]) if text else {})
    report["speaker"] = speaker_similarity(samples, rate, references)
    report["wav2vec2"] = wav2vec2_features(samples, rate, references)
    return report


def quality_verdict(report: dict, min_similarity: float, min_duration_s: float, max_duration_s: float,
                    min_rate: float = 1.5, max_rate: float = 9.0, max_clipping: float = 0.001,
                    max_silence: float = 0.6) -> dict:
    """Approve or list what failed, with the retry the Director should try next."""
    problems, retry = [], []
    sim = (report.get("speaker") or {}).get("similarity")
    if sim is not None and sim < min_similarity:
        problems.append(f"speaker similarity {sim:.3f} < {min_similarity:.3f}")
        retry.append("next reference clip (reference_variant + 1)")
    dur = report.get("duration_s", 0.0)
    if not min_duration_s <= dur <= max_duration_s:
        problems.append(f"duration {dur:.2f} s outside [{min_duration_s:.2f}, {max_duration_s:.2f}] s")
        retry.append("lower emotion strength (rate change)")
    sps = report.get("syllables_per_s")
    if sps is not None and not min_rate <= sps <= max_rate:
        problems.append(f"speech rate {sps:.2f} syllables/s outside [{min_rate}, {max_rate}]")
        retry.append("lower emotion strength (rate change)")
    if report.get("clipping_ratio", 0.0) > max_clipping:
        problems.append(f"clipping ratio {report['clipping_ratio']:.4f} > {max_clipping}")
        retry.append("lower emotion strength (energy)")
    if report.get("silence_ratio", 0.0) > max_silence:
        problems.append(f"silence ratio {report['silence_ratio']:.2f} > {max_silence}")
        retry.append("another reference clip or backend")
    return {"approved": not problems, "problems": problems, "retry": list(dict.fromkeys(retry)),
            "similarity": sim, "duration_s": dur}
