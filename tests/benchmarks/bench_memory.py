"""Peak memory of Lip Sync per minute of speech: streamed to a video (Lip Sync streamed video) vs the IMAGE output.

Each measurement runs in a fresh child process; the figure is the peak resident set size (ru_maxrss) above the
child's current RSS after imports and a warm-up (Linux /proc), divided by the minutes of speech. A streaming node's growth is
flat in the input's length (its MB per minute falls as the input grows); the IMAGE path (the peer, measured in
the same run) holds every frame as float32, so its growth is proportional to the length.
Input: a real photo (insightface's Tom_Hanks_54745.png when installed, else a gradient) at 256x256, 24 fps,
energy method with a given mouth box, amplitude-modulated voice-band audio.
Run: .venv/bin/python tests/benchmarks/bench_memory.py [seconds_short seconds_long]
"""
from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
import time

SIZE = 256
FPS = 24.0
MOUTH = "0.37,0.79,0.26,0.06"  # the lips of the photo at 256x256


def _face():
    import importlib.util

    import numpy as np
    from PIL import Image

    spec = importlib.util.find_spec("insightface")
    if spec and spec.origin:
        photo = os.path.join(os.path.dirname(spec.origin), "data", "images", "Tom_Hanks_54745.png")
        if os.path.isfile(photo):
            return np.asarray(Image.open(photo).convert("RGB").resize((SIZE, SIZE)))[None], "Tom_Hanks_54745.png"
    ramp = np.repeat(np.linspace(60, 220, SIZE)[:, None], SIZE, 1).astype(np.uint8)
    return np.stack([ramp] * 3, -1)[None], "gradient"


def _speech(seconds: float, rate: int = 16000):
    import numpy as np

    t = np.arange(int(seconds * rate)) / rate
    syllables = 0.5 + 0.5 * np.sin(2 * np.pi * 3.5 * t)  # ~3.5 syllables per second
    return (0.3 * syllables * np.sin(2 * np.pi * 180 * t) * (1 + 0.3 * np.sin(2 * np.pi * 900 * t))).astype(np.float32)


def _current_rss_mb() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def child(mode: str, seconds: float) -> None:
    """One measurement: prints a JSON line with baseline and peak RSS in MB."""
    from animation_studio.nodes.core import numpy_to_image
    from animation_studio.nodes.voice import LipSync, LipSyncVideo
    from animation_studio.nodes.voice.audio import to_audio

    face, source = _face()
    image = numpy_to_image(face)
    warm = to_audio(_speech(0.5), 16000)
    node = LipSyncVideo() if mode == "stream" else LipSync()
    node.run(image, warm, FPS, "energy", MOUTH, "")  # imports, codec and filter set-up out of the baseline
    audio = to_audio(_speech(seconds), 16000)
    baseline = _current_rss_mb()  # now, not the high-water mark: the warm-up's own peak is not the run's
    start = time.perf_counter()
    out = node.run(image, audio, FPS, "energy", MOUTH, "")
    secs = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    frames = out[0].frame_count if mode == "stream" else int(out[0].shape[0])
    print(json.dumps({"mode": mode, "seconds": seconds, "baseline_mb": baseline, "peak_mb": peak,
                      "frames": frames, "run_s": secs, "face": source}))


def measure(mode: str, seconds: float) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        env = dict(os.environ)
        for name in ("INPUT", "OUTPUT", "TEMP", "MODELS"):
            os.makedirs(os.path.join(tmp, name.lower()))
            env[f"ANIMATION_STUDIO__PATHS__{name}"] = os.path.join(tmp, name.lower())
        proc = subprocess.run([sys.executable, __file__, "--child", mode, str(seconds)], env=env,
                              capture_output=True, text=True)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode or not lines:
        raise RuntimeError(f"{mode} {seconds}s failed (exit {proc.returncode}): {proc.stderr[-1500:]}")
    return json.loads(lines[-1])


def main(short: float = 20.0, long: float = 60.0) -> None:
    rows = [measure(mode, s) for mode in ("stream", "image") for s in (short, long)]
    print(f"Lip Sync (energy, {SIZE}x{SIZE} @ {FPS:g} fps, face: {rows[0]['face']}); peak RSS above the warmed-up "
          f"baseline, per minute of speech")
    print(f"{'path':36s} {'speech s':>8s} {'frames':>7s} {'base MB':>8s} {'peak MB':>8s} {'grow MB':>8s} "
          f"{'MB/min':>8s} {'run s':>7s}")
    growth = {}
    for r in rows:
        grow = max(0.0, r["peak_mb"] - r["baseline_mb"])
        growth[(r["mode"], r["seconds"])] = grow
        name = "LipSyncVideo (streamed)" if r["mode"] == "stream" else "LipSync IMAGE (peer)"
        print(f"{name:36s} {r['seconds']:8.1f} {r['frames']:7d} {r['baseline_mb']:8.0f} {r['peak_mb']:8.0f} "
              f"{grow:8.0f} {grow / (r['seconds'] / 60):8.1f} {r['run_s']:7.1f}")
    for mode, name in (("stream", "streamed"), ("image", "IMAGE peer")):
        small, big = growth[(mode, short)], growth[(mode, long)]
        print(f"{name}: growth {long:g}s / {short:g}s = {big / max(small, 1.0):.2f} (input ratio {long / short:.1f})")


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--child":
        child(sys.argv[2], float(sys.argv[3]))
    else:
        main(*(float(a) for a in sys.argv[1:3]))
