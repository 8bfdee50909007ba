"""Seconds per denoising step of the pack's diffusers SDXL path, on the tiny random-weight SDXL (CPU).

Peer in the same run: the bare diffusers pipeline built in memory from the same components, so the
ratio shows what the pack's loading/progress/variant layer costs per step. Then the character references on
tiny random models in the models-folder layout (IP-Adapter, InstantID with IdentityNet) against the plain
pack pipeline, and the depth preprocessor (tiny DPT) against Canny on the same photo. The issue's real comparison
(SDXL 1024x1024, 30 steps, our nodes vs ComfyUI's native graph) needs a GPU and real weights.

    .venv/bin/python tests/benchmarks/bench_image.py
"""
from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def _best_of(fn, runs: int = 3) -> float:
    best = float("inf")
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def references(pipe) -> None:
    """Seconds per 64x64 2-step image with each reference path vs none; depth vs Canny on a 512x512 photo."""
    import os

    import numpy as np

    from animation_studio.nodes.image import control, identity, sdxl
    from tiny_sdxl import build_tiny_references

    refs = build_tiny_references(Path(tempfile.gettempdir()) / "animation_studio_bench_tiny_refs")
    os.environ["ANIMATION_STUDIO__PATHS__MODELS"] = str(refs["models"])
    try:
        from skimage.data import astronaut

        photo = astronaut()
    except ImportError:
        photo = np.random.default_rng(0).integers(0, 255, (512, 512, 3), np.uint8)

    def image(reference):
        extra, controls = identity.attach_reference(pipe, reference)
        sdxl.generate(pipe, "a boy running", "2d", seed=0, steps=2, cfg=7.5, width=64, height=64, extra=extra,
                      controls=controls)

    plain = _best_of(lambda: image(None))
    ip_ref = identity.ip_adapter_reference(photo, "ip-adapter_sdxl.safetensors", 0.6)
    t0 = time.perf_counter()
    identity.attach_reference(pipe, ip_ref)
    ip_load = time.perf_counter() - t0
    image(ip_ref)  # warm-up (first use imports the CLIP image processor)
    ip = _best_of(lambda: image(ip_ref))
    line = f"64x64 2 steps: plain {plain:.3f} s; IP-Adapter {ip:.3f} s (x{ip / plain:.2f}; adapter + encoder load {ip_load:.2f} s)"
    try:
        t0 = time.perf_counter()
        face_ref = identity.instantid_reference(photo[20:220, 120:320], 0.8, 0.8, "antelopev2")
        analyse = time.perf_counter() - t0
        image(face_ref)
        iid = _best_of(lambda: image(face_ref))
        line += f"; InstantID {iid:.3f} s (x{iid / plain:.2f}; face landmarks + ArcFace {analyse:.2f} s)"
    except Exception as exc:  # noqa: BLE001 - the face extra is optional here
        line += f"; InstantID not measured ({type(exc).__name__}: {exc})"
    identity.attach_reference(pipe, None)
    print(line)
    control.depth_map(photo, "tiny-dpt")  # load once
    depth = _best_of(lambda: control.depth_map(photo, "tiny-dpt"))
    canny = _best_of(lambda: control.canny_edges(photo))
    print(f"512x512 photo: depth (tiny DPT at 64x64 input) {depth * 1000:.1f} ms, Canny {canny * 1000:.1f} ms "
          f"(x{depth / canny:.1f}); a real Depth Anything small at 518x518 costs far more")


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
        ours(size, 1), peer(size, 1)  # warm-up
        # Per-step cost = (6-step run - 2-step run) / 4, which removes text encoding and VAE decode. The machine
        # is shared, so ours and the peer alternate in rounds and each takes its median over the rounds.
        per_step = {ours: [], peer: []}
        for _round in range(5):
            for fn in (ours, peer):
                t0 = time.perf_counter(); fn(size, 2); short = time.perf_counter() - t0
                t0 = time.perf_counter(); fn(size, 6); long = time.perf_counter() - t0
                per_step[fn].append(max(long - short, 1e-6) / 4)
        row = [statistics.median(per_step[fn]) for fn in (ours, peer)]
        print(f"{size}x{size}: pack {row[0]:.4f} s/step, bare diffusers {row[1]:.4f} s/step, "
              f"ratio pack/bare {row[0] / row[1]:.2f}")
    references(pipe)
    if torch.cuda.is_available():
        print("A GPU is present: run the SDXL 1024x1024 30-step comparison with real weights in models/checkpoints.")
    else:
        print("SDXL 1024x1024 x 30 steps (pack nodes vs ComfyUI native graph) needs a GPU and real SDXL weights: "
              "not measured here (CPU only).")


if __name__ == "__main__":
    main()
