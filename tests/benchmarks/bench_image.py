"""Seconds per denoising step of the pack's diffusers SDXL path, on the tiny random-weight SDXL (CPU).

Peer in the same run: the bare diffusers pipeline built in memory from the same components, so the
ratio shows what the pack's loading/progress/variant layer costs per step. The issue's real comparison
(SDXL 1024x1024, 30 steps, our nodes vs ComfyUI's native graph) needs a GPU and real weights.

    .venv/bin/python tests/benchmarks/bench_image.py
"""
from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main() -> None:
    import torch
    from diffusers import EulerDiscreteScheduler, StableDiffusionXLPipeline

    from animation_studio.nodes.image import sdxl
    from tiny_sdxl import build_tiny_sdxl, tiny_components

    torch.set_num_threads(2)
    paths = build_tiny_sdxl(Path(tempfile.gettempdir()) / "animation_studio_bench_tiny_sdxl")
    t0 = time.perf_counter()
    pipe = sdxl.load_sdxl_pipeline(paths["checkpoint"], paths["config"])
    print(f"single-file load (offline, tiny): {time.perf_counter() - t0:.2f} s")

    parts = tiny_components()
    scheduler = EulerDiscreteScheduler.from_pretrained(paths["config"], subfolder="scheduler")
    bare = StableDiffusionXLPipeline(vae=parts["vae"], text_encoder=parts["text_encoder"],
                                     text_encoder_2=parts["text_encoder_2"], tokenizer=parts["tokenizer"],
                                     tokenizer_2=parts["tokenizer"], unet=parts["unet"], scheduler=scheduler)
    bare.set_progress_bar_config(disable=True)

    def ours(size, steps):
        sdxl.generate(pipe, "a boy running", "2d", seed=0, steps=steps, cfg=7.5, width=size, height=size)

    def peer(size, steps):
        bare("a boy running", negative_prompt="2d", num_inference_steps=steps, guidance_scale=7.5, width=size,
             height=size, generator=torch.Generator().manual_seed(0), output_type="np")

    import os

    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores (figures are only comparable within one run)")
    for size in (64, 128):
        row = []
        for fn in (ours, peer):
            fn(size, 1)  # warm-up
            # Per-step cost = (long run - short run) / extra steps, which removes text encoding and VAE decode.
            t0 = time.perf_counter(); fn(size, 2); short = time.perf_counter() - t0
            t0 = time.perf_counter(); fn(size, 6); long = time.perf_counter() - t0
            row.append(max(long - short, 1e-6) / 4)
        print(f"{size}x{size}: pack {row[0]:.4f} s/step, bare diffusers {row[1]:.4f} s/step, "
              f"ratio pack/bare {row[0] / row[1]:.2f}")
    if torch.cuda.is_available():
        print("A GPU is present: run the SDXL 1024x1024 30-step comparison with real weights in models/checkpoints.")
    else:
        print("SDXL 1024x1024 x 30 steps (pack nodes vs ComfyUI native graph) needs a GPU and real SDXL weights: "
              "not measured here (CPU only).")


if __name__ == "__main__":
    main()
