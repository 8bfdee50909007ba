"""Dataset curation speed: filter stages per core on 1080p frames, Ray 2 workers vs 1, projected film time.

    .venv/bin/python tests/benchmarks/bench_dataset.py [--frames 60]

Prints figures; asserts nothing. The seed's own run needed ~43 h for one film (SAM2 at 14.8 %).
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def filter_stages_fps(frames: int) -> float:
    """alpha matte + sharpness + pHash on 1080p frames, one core."""
    import cv2

    from animation_studio.nodes.dataset import curate

    cv2.setNumThreads(1)
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 255, (1080, 1920, 3), dtype=np.uint8)
    rgb = cv2.GaussianBlur(rgb, (0, 0), 1.0)
    alpha = np.zeros((1080, 1920), np.float32)
    cv2.ellipse(alpha, (960, 540), (300, 450), 0, 0, 360, 1.0, -1)
    alpha = cv2.GaussianBlur(alpha, (0, 0), 2.0)
    gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    started = time.perf_counter()
    for _ in range(frames):
        matte = curate.apply_alpha_threshold(alpha, 0.15)
        curate.laplacian_variance(gray, matte > 0)
        curate.perceptual_hash(rgb)
    return frames / (time.perf_counter() - started)


def ray_speedup() -> tuple[float, float]:
    from film import make_film, reference_images

    from animation_studio.nodes.dataset import pipeline
    from animation_studio.nodes.dataset.curate import CurationSettings

    with tempfile.TemporaryDirectory() as tmp:
        film = make_film(Path(tmp) / "film.mp4", scenes=8, seconds_per_scene=3.0)
        refs = {n: reference_images(n) for n in ("luca", "giulia")}
        settings = CurationSettings(character="giulia", trigger="giulia", frames_per_scene=24, max_images=500)
        import ray

        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)  # start-up is not curation time
        times = {}
        for workers in (1, 2):
            started = time.perf_counter()
            pipeline.curate_film(film, Path(tmp) / f"out{workers}", settings, refs, workers=workers)
            times[workers] = time.perf_counter() - started
        ray.shutdown()
        return times[1], times[2]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--frames", type=int, default=60)
    args = parser.parse_args()
    fps = filter_stages_fps(args.frames)
    film_frames = 14_411
    print(f"filter stages (alpha 0.15 + Laplacian blur + pHash), 1080p, 1 core: {fps:.1f} frames/s/core (target >= 30)")
    print(f"  projected for a {film_frames}-frame film on {os.cpu_count()} cores: "
          f"{film_frames / (fps * os.cpu_count()) / 60:.1f} min of filtering (seed's pipeline: ~43 h)")
    one, two = ray_speedup()
    print(f"whole pipeline on a 24 s test film: 1 worker {one:.1f} s, Ray 2 workers {two:.1f} s, speed-up {one / two:.2f}x "
          f"(Ray already started)")


if __name__ == "__main__":
    main()
