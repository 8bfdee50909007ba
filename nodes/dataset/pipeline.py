"""The curation pipeline end to end: per-scene work units, run in-process or as Ray tasks, resumable.

A scene is the unit of work: its sampled frames share a clean plate for the
automatic matte, and it is small enough that a killed job loses at most one
scene. Workers return records; only the driver writes the manifest, so Ray
workers never contend for a file.
"""
from __future__ import annotations

import json
import shutil
import time
from dataclasses import asdict
from pathlib import Path
from typing import Callable

from .. import bridge
from . import curate
from .curate import CurationSettings, Manifest


class CurationError(ValueError):
    """The film or the request cannot give a dataset; the manifest keeps what was done."""


def measure_scene(video_path: str, scene_index: int, picks: list[int], settings: dict,
                  references: dict, staging: str) -> list[dict]:
    """Work unit: decode the scene's picked frames, matte, measure, stage candidates. Pure w.r.t. its inputs."""
    import numpy as np

    from .. import video_io

    cfg = CurationSettings(**settings)
    video = video_io.probe(video_path)
    wanted = set(picks)
    frames, indices = [], []
    start, end = min(picks), max(picks) + 1
    i = start
    for chunk in video_io.iter_frames(video, start=start, end=end, chunk=16):
        for img in chunk:
            if i in wanted:
                frames.append(img.copy())
                indices.append(i)
            i += 1
    if not frames:
        return [{"frame": p, "scene": scene_index, "region": -1, "status": "rejected", "reason": "unreadable_frame"}
                for p in picks]
    missing = [p for p in picks if p not in indices]
    plates = curate.scene_backgrounds(frames, [scene_index] * len(frames))
    plate = plates.get(scene_index)
    judge = curate.IdentityJudge(cfg.identity, references)
    records = [{"frame": p, "scene": scene_index, "region": -1, "status": "rejected", "reason": "unreadable_frame"}
               for p in missing]
    for index, rgb in zip(indices, frames):
        if plate is None:
            records.append({"frame": index, "scene": scene_index, "region": -1, "status": "rejected",
                            "reason": "scene_too_short_for_matte"})
            continue
        alpha = curate.foreground_alpha(rgb, plate)
        if cfg.segmenter.startswith("sam2:"):
            alpha = curate.refine_with_sam2(rgb, alpha, cfg.segmenter[5:], cfg.alpha_threshold)
        for record in curate.measure_frame(index, scene_index, rgb, alpha, cfg, judge):
            if record["status"] == "candidate":
                x, y, w, h = record["box"]
                region_alpha = np.zeros_like(alpha)
                region_alpha[y:y + h, x:x + w] = curate.apply_alpha_threshold(alpha, cfg.alpha_threshold)[y:y + h, x:x + w]
                name = f"{index:06d}_{record['region']}.png"
                curate.write_rgba_png(Path(staging) / name, rgb, region_alpha)
                record["staged"] = name
            records.append(record)
    return records


def wait_for_gpu_memory(min_free_bytes: int, poll_s: float = 5.0, timeout_s: float = 3600.0,
                        query: Callable[[], list[int]] | None = None, sleep=time.sleep) -> int | None:
    """The 'smart batch launcher': wait until some GPU has enough free memory instead of failing.

    Returns the GPU index, or None on a machine with no GPU (work then runs on the CPU).
    """
    query = query or _free_gpu_memory
    waited = 0.0
    while True:
        free = query()
        if not free:
            return None
        best = max(range(len(free)), key=free.__getitem__)
        if free[best] >= min_free_bytes:
            return best
        if waited >= timeout_s:
            raise CurationError(f"no GPU had {min_free_bytes / 2**30:.1f} GiB free within {timeout_s:.0f} s "
                                f"(most free: {max(free) / 2**30:.1f} GiB)")
        bridge.check_interrupt()
        sleep(poll_s)
        waited += poll_s


def _free_gpu_memory() -> list[int]:
    try:
        import torch
    except ImportError:
        return []
    if not torch.cuda.is_available():
        return []
    return [torch.cuda.mem_get_info(i)[0] for i in range(torch.cuda.device_count())]


def _run_units(units: list[tuple], run_unit, workers: int, ray_address: str | None, on_done) -> None:
    """Run work units in-process (workers <= 1 and no Ray address) or as Ray tasks."""
    if workers <= 1 and not ray_address:
        for unit in units:
            bridge.check_interrupt()
            on_done(run_unit(*unit))
        return
    ray = bridge.require("ray", "dataset")
    started_here = not ray.is_initialized()
    if started_here:
        if ray_address:
            ray.init(address=ray_address, ignore_reinit_error=True, log_to_driver=False)
        else:
            ray.init(num_cpus=workers, include_dashboard=False, ignore_reinit_error=True, log_to_driver=False)
    try:
        remote = ray.remote(num_cpus=1)(run_unit)
        pending = [remote.remote(*unit) for unit in units]
        while pending:
            done, pending = ray.wait(pending, num_returns=1, timeout=1.0)
            for ref in done:
                on_done(ray.get(ref))
            try:
                bridge.check_interrupt()
            except BaseException:
                for ref in pending:
                    ray.cancel(ref, force=True)
                raise
    finally:
        if started_here:
            ray.shutdown()


def curate_film(video_path: str | Path, out_dir: str | Path, settings: CurationSettings,
                references: dict[str, list] | None = None, workers: int = 1, ray_address: str | None = None,
                scenes: list[list[int]] | None = None, describe=None) -> dict:
    """Film -> `out_dir/{repeats}_{trigger}/` images + captions, `manifest.jsonl`, `summary.json`."""
    import numpy as np

    from .. import video_io
    from ..video import detect_scenes

    out_dir = Path(out_dir)
    staging = out_dir / ".staging"
    staging.mkdir(parents=True, exist_ok=True)
    manifest = Manifest(out_dir / "manifest.jsonl")
    header_path = out_dir / "job.json"
    video = video_io.probe(str(video_path))
    fingerprint = curate.fingerprint(settings, str(video_path))
    if header_path.exists():
        header = json.loads(header_path.read_text())
        if header.get("fingerprint") != fingerprint:
            raise CurationError(f"{out_dir} holds a job for other settings or another film; "
                                f"choose a new output folder (nothing was changed)")
    else:
        header_path.write_text(json.dumps({"fingerprint": fingerprint, "video": str(video_path),
                                           "settings": asdict(settings)}, indent=2))

    if scenes is None:
        scenes = detect_scenes(video, threshold=settings.scene_threshold)["scenes"]
    if not scenes:
        raise CurationError(f"{video_path}: no scene found (is the clip empty?)")
    picks = curate.sample_scene_frames(scenes, settings.frames_per_scene)
    by_scene: dict[int, list[int]] = {}
    for frame, scene in picks:
        by_scene.setdefault(scene, []).append(frame)
    done = manifest.done_frames()
    todo = [(s, fs) for s, fs in sorted(by_scene.items()) if not set(fs) <= done]

    references = {k: [np.asarray(img) for img in v] for k, v in (references or {}).items() if v}
    if settings.segmenter.startswith("sam2:"):
        from .. import segment

        segment.load_model(settings.segmenter[5:])  # a missing checkpoint is named before any work starts
    bar = bridge.ProgressBar(len(by_scene), "curate scenes")
    bar.update_absolute(len(by_scene) - len(todo))
    units = [(str(video_path), s, fs, asdict(settings), references, str(staging)) for s, fs in todo]

    def on_done(records):
        manifest.append(records)
        bar.update(1)

    _run_units(units, measure_scene, workers, ray_address, on_done)
    summary = finish(out_dir, settings, describe)
    # Without reference images every region counts as the requested character: say so.
    summary["identity_checked_against"] = sorted(references)
    return summary


def finish(out_dir: Path, settings: CurationSettings, describe=None) -> dict:
    """Deterministic from the manifest: dedupe, select, caption, write the kohya folder and summary."""
    out_dir = Path(out_dir)
    records = Manifest(out_dir / "manifest.jsonl").read()
    curate.dedupe(records, settings.dedupe_distance)
    kept = curate.select_diverse(records, settings.max_images)
    folder = out_dir / f"{settings.repeats}_{settings.trigger}"
    folder.mkdir(parents=True, exist_ok=True)
    for record in kept:
        target = folder / record["staged"]
        if not target.exists():
            tmp = target.with_name(target.name + ".part")
            shutil.copyfile(out_dir / ".staging" / record["staged"], tmp)
            tmp.replace(target)
        record["image"] = str(target.relative_to(out_dir))
        text = curate.caption(settings, record, describe)
        target.with_suffix(".txt").write_text(text + "\n", encoding="utf-8")
        record["caption"] = text
    reasons: dict[str, int] = {}
    for r in records:
        if r["status"] == "rejected":
            reasons[r["reason"]] = reasons.get(r["reason"], 0) + 1
    summary = {
        "character": settings.character, "trigger": settings.trigger, "folder": str(folder.relative_to(out_dir)),
        "kept": len(kept), "measured": len(records), "rejected": reasons,
        "target_range": [settings.min_images, settings.max_images],
        "enough": len(kept) >= settings.min_images,
        "rules": {"alpha_threshold": settings.alpha_threshold, "blur_threshold": settings.blur_threshold,
                  "color_jitter": False, "horizontal_flip": False},
        "records": [{k: v for k, v in r.items() if k != "embedding"} for r in records],
    }
    tmp = out_dir / "summary.json.part"
    tmp.write_text(json.dumps(summary, indent=1))
    tmp.replace(out_dir / "summary.json")
    return summary
