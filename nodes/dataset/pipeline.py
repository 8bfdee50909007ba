"""The curation pipeline end to end: per-scene work units, run in-process or as Ray tasks, resumable.

A scene is the unit of work: its sampled frames share a clean plate for the
automatic matte, and it is small enough that a killed job loses at most one
scene. Workers return records; only the driver writes the manifest, so Ray
workers never contend for a file, and a lock on the folder keeps a second job
out of it. SIGTERM unwinds like Ctrl-C, so part files are removed either way.
"""
from __future__ import annotations

import contextlib
import json
import os
import signal
import threading
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
    """Work unit: decode the scene's picked frames (and the frame after each, for the matte's stability),
    check the camera holds still, matte, gate, measure, stage candidates. Pure w.r.t. its inputs."""
    from .. import video_io

    cfg = CurationSettings(**settings)
    video = video_io.probe(video_path)
    wanted = set(picks) | {p + 1 for p in picks}
    frames: dict = {}
    start, end = min(picks), min(max(picks) + 2, video.frame_count)
    i = start
    for chunk in video_io.iter_frames(video, start=start, end=end, chunk=16):
        for img in chunk:
            if i in wanted:
                frames[i] = img.copy()
            i += 1
    picked = [p for p in picks if p in frames]
    records = [{"frame": p, "scene": scene_index, "region": -1, "status": "rejected", "reason": "unreadable_frame"}
               for p in picks if p not in frames]
    plate, motions = _still_plate([frames[p] for p in picked])
    judge = curate.IdentityJudge(cfg.identity, references)
    sam2 = cfg.segmenter[5:] if cfg.segmenter.startswith("sam2:") else None
    for index, motion in zip(picked, motions):
        rgb, after = frames[index], frames.get(index + 1)
        base = {"frame": index, "scene": scene_index, "region": -1, "status": "rejected"}
        if plate is None:
            records.append({**base, "reason": "scene_too_short_for_matte"})
            continue
        likeness = judge.likeness(rgb, cfg.character)
        method = "plate"
        if motion["moved"]:
            # The median plate is a blur of several framings: every textured surface would count as subject.
            if sam2:
                alpha, method = curate.sam2_from_likeness(rgb, likeness, sam2, cfg), "sam2"
                after_alpha = curate.sam2_from_likeness(after, judge.likeness(after, cfg.character), sam2, cfg) \
                    if after is not None else None
            elif cfg.segmenter == "selfie":
                (alpha, after_alpha), method = curate.selfie_alphas([rgb, after]), "selfie"
            else:
                records.append({**base, "reason": "cannot_matte:camera_moves", "camera": motion})
                continue
        else:
            alpha = curate.foreground_alpha(rgb, plate)
            after_alpha = curate.foreground_alpha(after, plate) if after is not None else None
            if sam2:
                alpha = curate.refine_with_sam2(rgb, alpha, sam2, cfg.alpha_threshold)
                if after is not None:
                    after_alpha = curate.refine_with_sam2(after, after_alpha, sam2, cfg.alpha_threshold)
        coverage = float((alpha > cfg.alpha_threshold).mean())
        if coverage > curate.MATTE_GATE["frame_coverage"]:
            records.append({**base, "reason": "matte:full_frame", "coverage": round(coverage, 4), "camera": motion})
            continue
        regions = curate.region_mattes(rgb, alpha, after, after_alpha, cfg, repair=method == "plate" and not sam2,
                                       likeness=likeness if method == "plate" else None, method=method)
        for record, (_, region_alpha, *_) in zip(curate.measure_frame(index, scene_index, rgb, regions, cfg, judge),
                                                 regions or [(None, None)]):
            record["camera"] = motion
            if record["status"] == "candidate":
                name = f"{index:06d}_{record['region']}.png"
                curate.write_rgba_png(Path(staging) / name, rgb, region_alpha)
                record["staged"] = name
            records.append(record)
    return records


def _still_plate(frames: list):
    """(clean plate, camera motion of each frame against it), the plate from the frames the camera held still for.

    The median of every sampled frame is a blur of several framings when the camera moved during the scene;
    frames registered to that first plate pick the still stretch, whose median is the plate.
    """
    if len(frames) < 3:
        return None, [None] * len(frames)
    plate = curate.scene_backgrounds(frames, [0] * len(frames))[0]
    motions = [curate.global_motion(f, plate) for f in frames]
    still = [f for f, m in zip(frames, motions) if not m["moved"]]
    if 3 <= len(still) < len(frames):
        plate = curate.scene_backgrounds(still, [0] * len(still))[0]
        motions = [curate.global_motion(f, plate) for f in frames]
    return plate, motions


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


class UnknownSubject(CurationError):
    """No reference images: nothing can tell the subject from the set, so nothing would be true in a caption."""


class JobLock:
    """One job per dataset folder: an exclusive fcntl lock on `<folder>/.lock`, held for the whole job.

    Two jobs on one folder would both append every record (doubling the counts) and race on the images.
    """

    def __init__(self, folder: Path):
        self.path = Path(folder) / ".lock"
        self.fd: int | None = None

    def __enter__(self):
        import fcntl

        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), curate.FILE_MODE)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 64).decode("ascii", "replace").strip() or "?"
            os.close(fd)
            raise CurationError(f"another curation job (pid {holder}) is writing {self.path.parent}; wait for it "
                                f"to finish or choose another output folder (nothing was changed)") from None
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self.fd = fd
        return self

    def __exit__(self, *exc):
        import fcntl

        fcntl.flock(self.fd, fcntl.LOCK_UN)
        os.close(self.fd)
        self.fd = None


@contextlib.contextmanager
def _sigterm_unwinds():
    """SIGTERM raises SystemExit in the main thread, so part files and the lock are cleaned like on Ctrl-C."""
    if threading.current_thread() is not threading.main_thread():
        yield  # inside a server thread the host owns signals
        return

    def handler(signum, frame):
        raise SystemExit(128 + signum)

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def profile_references(character: str) -> dict[str, list]:
    """{character: RGBA images} from the reference images its profile names; {} when none are found."""
    import numpy as np
    from PIL import Image

    from ...configs.characters import load_character

    try:
        paths = load_character(character).reference_paths()
    except bridge.MissingModel:
        return {}
    return {character: [np.asarray(Image.open(p).convert("RGBA")) for p in paths]}


def require_references(settings: CurationSettings, references: dict | None) -> None:
    """Stop before any work when nothing can verify the subject (UnknownSubject says what to give)."""
    if references and references.get(settings.character):
        return
    what = "subject" if settings.subject else "character"
    raise UnknownSubject(
        f"unknown subject: no reference images of the {what} '{settings.character}', so no region of the film "
        f"can be verified as {settings.character} and no caption would be true. Give reference images (a few "
        f"crops of the {what} cut from frames) with --references, or put the character's reference images where "
        f"its profile names them; nothing was written")


def curate_film(video_path: str | Path, out_dir: str | Path, settings: CurationSettings,
                references: dict[str, list] | None = None, workers: int = 1, ray_address: str | None = None,
                scenes: list[list[int]] | None = None, describe=None) -> dict:
    """Film -> `out_dir/{repeats}_{trigger}/` images + captions, `manifest.jsonl`, `summary.json`.

    Only regions verified against `references[settings.character]` (and unlike the set around them) are kept;
    without those references the job stops with UnknownSubject before writing anything.
    """
    require_references(settings, references)
    if settings.segmenter not in ("auto", "selfie") and not settings.segmenter.startswith("sam2:"):
        raise CurationError(f"segmenter must be auto, selfie or sam2:<checkpoint in models/sam2>; "
                            f"got {settings.segmenter!r}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    with JobLock(out_dir), _sigterm_unwinds():
        try:
            return _curate_locked(video_path, out_dir, settings, references, workers, ray_address, scenes, describe)
        finally:
            curate.remove_part_files(out_dir)


def _curate_locked(video_path, out_dir: Path, settings, references, workers, ray_address, scenes, describe) -> dict:
    import numpy as np

    from .. import video_io
    from ..video import detect_scenes

    staging = out_dir / ".staging"
    staging.mkdir(parents=True, exist_ok=True)
    manifest = Manifest(out_dir / "manifest.jsonl")
    manifest.repair()  # a line torn by a kill would swallow the first record this run appends
    header_path = out_dir / "job.json"
    video = video_io.probe(str(video_path))
    fingerprint = curate.fingerprint(settings, str(video_path))
    if header_path.exists():
        header = json.loads(header_path.read_text())
        if header.get("fingerprint") != fingerprint:
            raise CurationError(f"{out_dir} holds a job for other settings or another film; "
                                f"choose a new output folder (nothing was changed)")
    else:
        curate.write_atomic(header_path, json.dumps({"fingerprint": fingerprint, "video": str(video_path),
                                                     "settings": asdict(settings)}, indent=2).encode())

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
    summary["identity_checked_against"] = sorted(references)
    return summary


def finish(out_dir: Path, settings: CurationSettings, describe=None) -> dict:
    """Deterministic from the manifest: dedupe, select, caption, write the kohya folder and summary."""
    out_dir = Path(out_dir)
    manifest = Manifest(out_dir / "manifest.jsonl")
    records = manifest.read()
    curate.dedupe(records, settings.dedupe_distance)
    kept = curate.select_diverse(records, settings.max_images)
    folder = out_dir / f"{settings.repeats}_{settings.trigger}"
    folder.mkdir(parents=True, exist_ok=True)
    for record in kept:
        target = folder / record["staged"]
        if not target.exists():
            curate.write_atomic(target, (out_dir / ".staging" / record["staged"]).read_bytes())
        record["image"] = str(target.relative_to(out_dir))
        text = curate.caption(settings, record, describe)
        curate.write_atomic(target.with_suffix(".txt"), (text + "\n").encode("utf-8"))
        record["caption"] = text
    reasons: dict[str, int] = {}
    for r in records:
        if r["status"] == "rejected":
            reasons[r["reason"]] = reasons.get(r["reason"], 0) + 1
    gated = [r for r in records if "matte" in r]
    summary = {
        "character": settings.character, "subject_label": settings.subject, "trigger": settings.trigger,
        "folder": str(folder.relative_to(out_dir)),
        "kept": len(kept), "measured": len(records), "rejected": reasons,
        "manifest_lines_skipped": manifest.skipped,
        "matte_gate": {"regions": len(gated), "passed": sum(1 for r in gated if r["matte_passed"]),
                       "methods": sorted({r["matte_method"] for r in gated})},
        "camera_moves": sum(1 for r in records if r.get("reason") == "cannot_matte:camera_moves"),
        "target_range": [settings.min_images, settings.max_images],
        "enough": len(kept) >= settings.min_images,
        "rules": {"alpha_threshold": settings.alpha_threshold, "blur_threshold": settings.blur_threshold,
                  "identity_margin": settings.identity_margin, "color_jitter": False, "horizontal_flip": False},
        "records": [{k: v for k, v in r.items() if k != "embedding"} for r in records],
    }
    if summary["camera_moves"]:
        summary["warning"] = (f"{summary['camera_moves']} sampled frames were not matted: the camera moves, so no "
                              f"clean plate fits them (a SAM2 checkpoint, --segmenter sam2:<file in models/sam2>, "
                              f"can segment them; for a person, --segmenter selfie)")
    curate.write_atomic(out_dir / "summary.json", json.dumps(summary, indent=1).encode())
    return summary
