"""Audio nodes on ComfyUI's AUDIO dict: load/save, mix, ducking, fades, loudness, fit to video, offline stings.

Plain functions work on float32 numpy [C,T] plus a sample rate; the node
classes convert AUDIO in and out through video_io (the pack's one FFmpeg
backend, PyAV). The sting and music bed are synthesised in numpy, so the
parody workflow needs no downloads and no licensed music.
"""
from __future__ import annotations

from ..configs import paths
from . import bridge
from . import video_io as vio
from .video_io import VIDEO_TYPE

CATEGORY = "Animation Studio/audio"


def _np():
    import numpy as np

    return np


# ================================================================ plain functions
def match(a, rate_a: int, b, rate_b: int):
    """Bring two tracks to one sample rate (the higher) and one channel layout.

    Equal layouts stay as they are; mono and stereo meet in stereo; tracks of
    different surround layouts meet in a stereo downmix (vio.to_channels), so
    no channel is dropped or lands in the wrong speaker.
    """
    rate = max(rate_a, rate_b)
    a = vio.resample(a, rate_a, rate)
    b = vio.resample(b, rate_b, rate)
    if a.shape[0] != b.shape[0]:
        a, b = vio.to_channels(a, 2), vio.to_channels(b, 2)
    return a, b, rate


def db_to_gain(db: float) -> float:
    return float(10 ** (db / 20))


def mix(a, rate_a, b, rate_b, gain_a_db=0.0, gain_b_db=0.0, offset=0.0):
    """a + b (b starting `offset` seconds in), at a common rate; the result is as long as the longer."""
    np = _np()
    a, b, rate = match(a, rate_a, b, rate_b)
    start = int(round(max(0.0, offset) * rate))
    n = max(a.shape[1], start + b.shape[1])
    out = np.zeros((a.shape[0], n), np.float32)
    out[:, :a.shape[1]] += a * db_to_gain(gain_a_db)
    out[:, start:start + b.shape[1]] += b * db_to_gain(gain_b_db)
    return out, rate


def envelope(wave, rate: int, attack: float = 0.01, release: float = 0.25):
    """A peak-follower envelope of the mono mix (attack/release in seconds)."""
    np = _np()
    level = np.abs(wave).max(axis=0)
    # Block-wise (10 ms) so the follower loop stays short on long tracks.
    block = max(1, rate // 100)
    n_blocks = -(-len(level) // block)
    padded = np.pad(level, (0, n_blocks * block - len(level)))
    blocks = padded.reshape(n_blocks, block).max(axis=1)
    a = np.exp(-1.0 / max(attack * 100, 1e-3))
    r = np.exp(-1.0 / max(release * 100, 1e-3))
    env = np.empty_like(blocks)
    value = 0.0
    for i, x in enumerate(blocks):
        coef = a if x > value else r
        value = coef * value + (1 - coef) * x
        env[i] = value
    return np.repeat(env, block)[:len(level)]


def duck(music, dialogue, rate: int, amount_db: float = -12.0, threshold_db: float = -40.0,
         attack: float = 0.05, release: float = 0.4):
    """Music gain that drops by amount_db wherever the dialogue is louder than threshold_db."""
    np = _np()
    env = envelope(dialogue, rate, attack, release)
    n = music.shape[1]
    env = np.pad(env, (0, max(0, n - len(env))))[:n]
    thr = db_to_gain(threshold_db)
    # Soft knee: 0 below the threshold, 1 at 4x above it.
    depth = np.clip((env - thr) / (3 * thr), 0.0, 1.0)
    gain = 1.0 + (db_to_gain(amount_db) - 1.0) * depth
    return music * gain[None].astype(np.float32)


def overlay_music(dialogue, rate_d, music, rate_m, music_db=-6.0, duck_db=-12.0, threshold_db=-40.0, loop=True):
    """Music under dialogue, ducked while someone speaks; the result has the dialogue's length."""
    np = _np()
    dialogue, music, rate = match(dialogue, rate_d, music, rate_m)
    n = dialogue.shape[1]
    if music.shape[1] == 0:
        return dialogue, rate
    if loop and music.shape[1] < n:
        music = np.tile(music, (1, -(-n // music.shape[1])))
    music = vio.fit_length(music, n) * db_to_gain(music_db)
    return dialogue + duck(music, dialogue, rate, duck_db, threshold_db), rate


def fade(wave, rate: int, fade_in: float = 0.0, fade_out: float = 0.0):
    np = _np()
    out = wave.copy()
    n = out.shape[1]
    k = min(n, int(round(fade_in * rate)))
    if k:
        out[:, :k] *= np.linspace(0, 1, k, dtype=np.float32) ** 2
    k = min(n, int(round(fade_out * rate)))
    if k:
        out[:, n - k:] *= np.linspace(1, 0, k, dtype=np.float32) ** 2
    return out


def loudness(wave, rate: int) -> float:
    """Integrated loudness in LUFS (ITU-R BS.1770 via pyloudnorm); -inf for silence."""
    pyln = bridge.require("pyloudnorm", "video")
    meter = pyln.Meter(rate, block_size=min(0.4, max(wave.shape[1] / rate, 0.01)))
    return float(meter.integrated_loudness(wave.T.astype("float64")))


def normalize_loudness(wave, rate: int, target_lufs: float = -16.0, peak_db: float = -1.0):
    """Gain to target LUFS, then a peak ceiling; silence is returned unchanged (no gain can lift it)."""
    np = _np()
    if wave.shape[1] < int(0.4 * rate):
        raise ValueError("Loudness needs at least 0.4 s of audio (one BS.1770 block).")
    current = loudness(wave, rate)
    if not np.isfinite(current):
        return wave, current
    out = wave * db_to_gain(target_lufs - current)
    peak = float(np.abs(out).max())
    ceiling = db_to_gain(peak_db)
    if peak > ceiling:
        out = out * (ceiling / peak)
    return out.astype(np.float32), current


def fit_to_length(wave, rate: int, seconds: float, mode: str = "pad", fade_out: float = 0.05):
    """Trim or pad (silence, or loop the track) to exactly `seconds`; a short fade hides the cut."""
    np = _np()
    n = int(round(seconds * rate))
    if mode == "loop" and 0 < wave.shape[1] < n:
        wave = np.tile(wave, (1, -(-n // wave.shape[1])))
    cut = wave.shape[1] > n
    out = vio.fit_length(wave, n)
    return fade(out, rate, 0.0, fade_out) if cut else out


# ---------------------------------------------------------------- synthesis
def _adsr(n: int, rate: int, attack: float, decay: float, sustain: float, release: float):
    np = _np()
    t = np.arange(n) / rate
    dur = n / rate
    env = np.where(t < attack, t / max(attack, 1e-6),
                   np.where(t < attack + decay, 1 - (1 - sustain) * (t - attack) / max(decay, 1e-6), sustain))
    tail = dur - release
    env = np.where(t > tail, env * np.clip((dur - t) / max(release, 1e-6), 0, 1), env)
    return env.astype(np.float32)


def _brass(freq: float, seconds: float, rate: int, rng):
    """A brassy tone: detuned band-limited saws with vibrato."""
    np = _np()
    t = np.arange(int(seconds * rate)) / rate
    vib = 1 + 0.004 * np.sin(2 * np.pi * 5.5 * t) * np.clip(t / 0.4, 0, 1)
    out = np.zeros_like(t)
    for detune in (-0.003, 0.0, 0.003):
        phase = 2 * np.pi * freq * (1 + detune) * np.cumsum(vib) / rate + rng.uniform(0, 2 * np.pi)
        # Additive saw, harmonics below Nyquist; sin(h x) by the Chebyshev recurrence
        # sin(h x) = 2 cos(x) sin((h-1) x) - sin((h-2) x): one sin and one cos per detune, not eleven sins.
        two_cos, previous, current = 2 * np.cos(phase), np.zeros_like(t), np.sin(phase)
        for h in range(1, 12):
            if freq * h >= rate / 2:
                break
            out += current / h
            previous, current = current, two_cos * current - previous
    return out / 6.0


def _timpani(freq: float, seconds: float, rate: int, rng):
    np = _np()
    t = np.arange(int(seconds * rate)) / rate
    body = sum(np.sin(2 * np.pi * freq * r * t) * np.exp(-t * d) for r, d in ((1, 2.5), (1.5, 4), (2, 6)))
    hit = rng.standard_normal(len(t)) * np.exp(-t * 40) * 0.3
    return body * 0.5 + hit


def _reverb(wave, rate: int, seconds: float = 1.2, wet: float = 0.25, seed: int = 0):
    """Convolution with exponentially decaying noise: a cheap hall.

    The FFT convolution is numpy's own: importing scipy.signal for it cost more CPU than the whole sting.
    """
    np = _np()
    rng = np.random.default_rng(seed)
    n = int(seconds * rate)
    ir = rng.standard_normal(n) * np.exp(-np.arange(n) / rate * 6.0 / seconds)
    ir /= np.sqrt((ir ** 2).sum())
    length = wave.shape[1] + n - 1
    size = 1 << (length - 1).bit_length()
    tail = np.fft.irfft(np.fft.rfft(wave, size, axis=1) * np.fft.rfft(ir, size)[None], size, axis=1)[:, :length]
    dry = np.pad(wave, ((0, 0), (0, tail.shape[1] - wave.shape[1])))
    return (dry * (1 - wet) + tail * wet).astype(np.float32)


STINGS = {
    # (semitones from the root, start s, length s) per note: the classic "dun dun DUNNN".
    "dun_dun_dun": [(0, 0.0, 0.32), (-1, 0.4, 0.32), (-4, 0.8, 1.8)],
    "suspense": [(0, 0.0, 2.4), (1, 0.0, 2.4), (6, 0.6, 1.8)],
    "triumph": [(0, 0.0, 0.25), (4, 0.25, 0.25), (7, 0.5, 0.25), (12, 0.75, 1.6)],
    "sad_trombone": [(0, 0.0, 0.5), (-1, 0.5, 0.5), (-2, 1.0, 0.5), (-3, 1.5, 1.3)],
}


def dramatic_sting(style: str = "dun_dun_dun", root_hz: float = 110.0, rate: int = 44100, seed: int = 0):
    """A synthesised orchestral sting (brass + timpani + hall), stereo float32 [2,T]."""
    np = _np()
    if style not in STINGS:
        raise ValueError(f"Unknown sting style {style!r}; use one of {', '.join(STINGS)}.")
    rng = np.random.default_rng(seed)
    notes = STINGS[style]
    total = max(s + d for _, s, d in notes) + 0.2
    mono = np.zeros(int(total * rate), np.float32)
    for semis, start, dur in notes:
        f = root_hz * 2 ** (semis / 12)
        n = int(dur * rate)
        i = int(start * rate)
        note = _brass(f, dur, rate, rng) + 0.6 * _brass(f * 2, dur, rate, rng)
        note *= _adsr(n, rate, 0.03, 0.15, 0.7, min(0.3, dur / 2))[:len(note)]
        hit = _timpani(f / 2, min(dur + 0.6, total - start), rate, rng)
        mono[i:i + len(note)] += note[:len(mono) - i]
        mono[i:i + len(hit)] += 0.8 * hit[:len(mono) - i]
    stereo = np.stack([mono, np.roll(mono, int(0.012 * rate))])  # a little width
    wet = _reverb(stereo, rate, 1.5, 0.3, seed)
    return (wet / max(1e-6, np.abs(wet).max()) * 0.9).astype(np.float32)


MOODS = {"heroic": [0, 5, 7, 0], "tense": [0, 1, 0, -1], "comedic": [0, 7, 9, 5], "sad": [0, 8, 3, 10]}


def music_bed(seconds: float = 10.0, mood: str = "heroic", bpm: float = 90.0, root_hz: float = 130.81,
              rate: int = 44100, seed: int = 0):
    """A looping pad + bass + pulse background track (chord per bar), stereo float32 [2,T]."""
    np = _np()
    if mood not in MOODS:
        raise ValueError(f"Unknown mood {mood!r}; use one of {', '.join(MOODS)}.")
    if seconds <= 0:
        raise ValueError(f"seconds must be positive; got {seconds}.")
    rng = np.random.default_rng(seed)
    n = int(seconds * rate)
    bar = 4 * 60.0 / bpm
    minor = mood in ("tense", "sad")
    chord = (0, 3, 7) if minor else (0, 4, 7)
    out = np.zeros(n, np.float32)
    t_bar = np.arange(int(bar * rate)) / rate
    k = 0
    while k * bar < seconds:
        root = root_hz * 2 ** (MOODS[mood][k % 4] / 12)
        pad = sum(np.sin(2 * np.pi * root * 2 ** (c / 12) * t_bar + rng.uniform(0, 6.3)) for c in chord) / 3
        pad *= _adsr(len(t_bar), rate, 0.3, 0.2, 0.8, 0.3)
        bass = np.sin(2 * np.pi * root / 2 * t_bar) * (0.5 + 0.5 * np.cos(2 * np.pi * (bpm / 60) * t_bar) ** 8)
        piece = 0.5 * pad + 0.4 * bass
        i = int(k * bar * rate)
        out[i:i + len(piece)] += piece[:max(0, n - i)]
        k += 1
    stereo = _reverb(np.stack([out, out]), rate, 0.8, 0.2, seed)[:, :n]
    return fade((stereo / max(1e-6, np.abs(stereo).max()) * 0.7).astype(np.float32), rate, 0.5, 1.0)


# ================================================================ nodes
def _audio_in(extra: dict | None = None) -> dict:
    return {"required": {"audio": ("AUDIO",), **(extra or {})}}


class _AudioNode:
    CATEGORY = CATEGORY
    FUNCTION = "run"
    RETURN_TYPES = ("AUDIO",)


class LoadAudio(_AudioNode):
    DESCRIPTION = "Load WAV/MP3/FLAC/OGG (or a video's sound) from the input folder, optionally resampled."

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"audio_file": ("STRING", {"default": "voice.wav"}),
                             "sample_rate": ("INT", {"default": 0, "min": 0, "max": 192000, "tooltip": "0 = keep"})}}

    @classmethod
    def VALIDATE_INPUTS(cls, audio_file):
        try:
            bridge.safe_input_path(audio_file)
        except (OSError, ValueError) as exc:
            return str(exc)
        return True

    def run(self, audio_file, sample_rate):
        wave, rate = vio.decode_audio(bridge.safe_input_path(audio_file), sample_rate or None)
        return (vio.numpy_to_audio(wave, rate),)


class SaveAudio:
    CATEGORY = CATEGORY
    FUNCTION = "run"
    RETURN_TYPES = ()
    OUTPUT_NODE = True
    DESCRIPTION = "Save AUDIO as WAV, MP3, FLAC or OGG (Opus) in the output folder; never overwrites."

    @classmethod
    def INPUT_TYPES(cls):
        return _audio_in({"filename_prefix": ("STRING", {"default": "animation_studio/audio"}),
                          "format": (["wav", "mp3", "flac", "ogg"],)})

    def run(self, audio, filename_prefix, format):
        if format not in ("wav", "mp3", "flac", "ogg"):
            raise ValueError(f"SaveAudio: input 'format' must be wav, mp3, flac or ogg; got {format!r}.")
        path = paths.save_path(bridge.output_directory(), filename_prefix, f".{format}", node="SaveAudio")
        try:
            vio.write_audio(audio, path)  # replaces only the empty name reservation
        except BaseException:
            path.unlink(missing_ok=True)
            raise
        return {"ui": {"audio": [bridge.ui_file_entry(path)]}}


class MixAudio(_AudioNode):
    DESCRIPTION = "Mix two tracks (gains in dB, the second starting at an offset); sample rates are matched."

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"audio_a": ("AUDIO",), "audio_b": ("AUDIO",),
                             "gain_a_db": ("FLOAT", {"default": 0.0, "min": -60.0, "max": 24.0, "step": 0.5}),
                             "gain_b_db": ("FLOAT", {"default": 0.0, "min": -60.0, "max": 24.0, "step": 0.5}),
                             "offset": ("FLOAT", {"default": 0.0, "min": 0.0, "max": 3600.0, "step": 0.01})}}

    def run(self, audio_a, audio_b, gain_a_db, gain_b_db, offset):
        a, ra = vio.audio_to_numpy(audio_a)
        b, rb = vio.audio_to_numpy(audio_b)
        return (vio.numpy_to_audio(*mix(a, ra, b, rb, gain_a_db, gain_b_db, offset)),)


class OverlayMusic(_AudioNode):
    DESCRIPTION = "Lay music under dialogue, ducked by duck_db while someone speaks (looped to the dialogue's length)."

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"dialogue": ("AUDIO",), "music": ("AUDIO",),
                             "music_db": ("FLOAT", {"default": -6.0, "min": -60.0, "max": 12.0, "step": 0.5}),
                             "duck_db": ("FLOAT", {"default": -12.0, "min": -60.0, "max": 0.0, "step": 0.5}),
                             "threshold_db": ("FLOAT", {"default": -40.0, "min": -90.0, "max": 0.0, "step": 1.0}),
                             "loop": ("BOOLEAN", {"default": True})}}

    def run(self, dialogue, music, music_db, duck_db, threshold_db, loop):
        d, rd = vio.audio_to_numpy(dialogue)
        m, rm = vio.audio_to_numpy(music)
        return (vio.numpy_to_audio(*overlay_music(d, rd, m, rm, music_db, duck_db, threshold_db, loop)),)


class FadeAudio(_AudioNode):
    DESCRIPTION = "Fade in and/or out (seconds)."

    @classmethod
    def INPUT_TYPES(cls):
        return _audio_in({"fade_in": ("FLOAT", {"default": 0.5, "min": 0.0, "max": 600.0, "step": 0.01}),
                          "fade_out": ("FLOAT", {"default": 0.5, "min": 0.0, "max": 600.0, "step": 0.01})})

    def run(self, audio, fade_in, fade_out):
        wave, rate = vio.audio_to_numpy(audio)
        return (vio.numpy_to_audio(fade(wave, rate, fade_in, fade_out), rate),)


class NormalizeLoudness:
    CATEGORY = CATEGORY
    FUNCTION = "run"
    RETURN_TYPES = ("AUDIO", "FLOAT")
    RETURN_NAMES = ("audio", "measured_lufs")
    DESCRIPTION = "Bring integrated loudness (ITU-R BS.1770) to a target LUFS with a peak ceiling; silence is left alone."

    @classmethod
    def INPUT_TYPES(cls):
        return _audio_in({"target_lufs": ("FLOAT", {"default": -16.0, "min": -70.0, "max": -5.0, "step": 0.5}),
                          "peak_db": ("FLOAT", {"default": -1.0, "min": -20.0, "max": 0.0, "step": 0.1})})

    def run(self, audio, target_lufs, peak_db):
        wave, rate = vio.audio_to_numpy(audio)
        out, measured = normalize_loudness(wave, rate, target_lufs, peak_db)
        return (vio.numpy_to_audio(out, rate), max(measured, -200.0))


class FitAudioToVideo(_AudioNode):
    DESCRIPTION = "Trim, pad with silence or loop a track to exactly a video's duration."

    @classmethod
    def INPUT_TYPES(cls):
        return _audio_in({"video": (VIDEO_TYPE,), "mode": (["pad", "loop"],)})

    def run(self, audio, video, mode):
        wave, rate = vio.audio_to_numpy(audio)
        return (vio.numpy_to_audio(fit_to_length(wave, rate, video.duration, mode), rate),)


class DramaticSting(_AudioNode):
    DESCRIPTION = "An offline, synthesised orchestral sting (dun dun DUNNN, suspense, triumph, sad trombone)."

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"style": (list(STINGS),),
                             "root_hz": ("FLOAT", {"default": 110.0, "min": 30.0, "max": 880.0, "step": 0.1}),
                             "sample_rate": ("INT", {"default": 44100, "min": 8000, "max": 96000}),
                             "seed": ("INT", {"default": 0, "min": 0, "max": 2**31 - 1})}}

    def run(self, style, root_hz, sample_rate, seed):
        return (vio.numpy_to_audio(dramatic_sting(style, root_hz, sample_rate, seed), sample_rate),)


class MusicBed(_AudioNode):
    DESCRIPTION = "An offline, synthesised background music bed (pad, bass, pulse) in a mood, any length."

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"seconds": ("FLOAT", {"default": 10.0, "min": 0.1, "max": 3600.0, "step": 0.1}),
                             "mood": (list(MOODS),),
                             "bpm": ("FLOAT", {"default": 90.0, "min": 30.0, "max": 240.0}),
                             "sample_rate": ("INT", {"default": 44100, "min": 8000, "max": 96000}),
                             "seed": ("INT", {"default": 0, "min": 0, "max": 2**31 - 1})}}

    def run(self, seconds, mood, bpm, sample_rate, seed):
        return (vio.numpy_to_audio(music_bed(seconds, mood, bpm, rate=sample_rate, seed=seed), sample_rate),)


_NODES = {
    "LoadAudio": (LoadAudio, "Load Audio"),
    "SaveAudio": (SaveAudio, "Save Audio"),
    "MixAudio": (MixAudio, "Mix Audio"),
    "OverlayMusic": (OverlayMusic, "Overlay Music (ducking)"),
    "FadeAudio": (FadeAudio, "Fade Audio"),
    "NormalizeLoudness": (NormalizeLoudness, "Loudness Normalize"),
    "FitAudioToVideo": (FitAudioToVideo, "Fit Audio to Video"),
    "DramaticSting": (DramaticSting, "Dramatic Sting"),
    "MusicBed": (MusicBed, "Music Bed"),
}
NODE_CLASS_MAPPINGS, NODE_DISPLAY_NAME_MAPPINGS = bridge.node_mappings(_NODES)
