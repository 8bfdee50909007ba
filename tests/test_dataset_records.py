"""Dataset records that survive kills and concurrency: torn manifest lines, two jobs on one folder, SIGTERM."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from film import make_film, reference_images  # noqa: E402

from animation_studio.nodes.dataset import curate, pipeline  # noqa: E402
from animation_studio.nodes.dataset.curate import CurationSettings  # noqa: E402

REFS = {"luca": reference_images("luca"), "giulia": reference_images("giulia")}
# One job in its own process, as the CLI or a second ComfyUI worker would run it.
JOB = """
import sys, json
sys.path.insert(0, {tests!r})
from film import reference_images
from animation_studio.nodes.dataset import pipeline
from animation_studio.nodes.dataset.curate import CurationSettings
refs = {{n: reference_images(n) for n in ("luca", "giulia")}}
settings = CurationSettings(character="giulia", trigger="giulia_pixar", min_images=5, max_images=12)
try:
    summary = pipeline.curate_film({film!r}, {out!r}, settings, refs)
    print(json.dumps({{"ok": True, "measured": summary["measured"], "kept": summary["kept"]}}))
except pipeline.CurationError as exc:
    print(json.dumps({{"ok": False, "error": str(exc)}}))
"""


@pytest.fixture(scope="module")
def film(tmp_path_factory):
    return make_film(tmp_path_factory.mktemp("film") / "film.mp4")


@pytest.fixture(scope="module")
def fresh(film, tmp_path_factory):
    """The reference: the job run once, uninterrupted."""
    out = tmp_path_factory.mktemp("fresh") / "ds"
    summary = pipeline.curate_film(film, out, settings(), REFS)
    return out, summary


def settings():
    return CurationSettings(character="giulia", trigger="giulia_pixar", min_images=5, max_images=12)


def dataset_files(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def keys(records) -> list:
    return sorted((r["frame"], r["region"]) for r in records)


def job(film, out, env=None) -> subprocess.Popen:
    code = JOB.format(tests=str(Path(__file__).parent), film=str(film), out=str(out))
    return subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env or dict(os.environ))


def test_a_torn_last_line_is_dropped_and_every_later_record_counts(film, fresh, tmp_path, studio_dirs, monkeypatch):
    ref_dir, reference = fresh
    out = tmp_path / "ds"
    real = pipeline.measure_scene
    calls = {"n": 0}

    def dies_on_third_scene(*args):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt("killed")
        return real(*args)

    monkeypatch.setattr(pipeline, "measure_scene", dies_on_third_scene)
    with pytest.raises(KeyboardInterrupt):
        pipeline.curate_film(film, out, settings(), REFS)
    manifest = out / "manifest.jsonl"
    whole = manifest.read_bytes()
    # A kill in the middle of a write: half of the next record, no newline.
    torn = json.dumps({"frame": 999, "scene": 2, "region": 0, "status": "candidate"}).encode()[:37]
    manifest.write_bytes(whole + torn)
    before = curate.Manifest(manifest)
    assert len(before.read()) == whole.count(b"\n") and before.skipped == 1

    monkeypatch.setattr(pipeline, "measure_scene", real)
    resumed = pipeline.curate_film(film, out, settings(), REFS)
    lines = manifest.read_bytes().splitlines()
    assert all(json.loads(line) for line in lines)  # the torn tail was cut, nothing glued onto it
    assert resumed["manifest_lines_skipped"] == 0
    assert resumed["measured"] == reference["measured"] == len(lines)
    assert keys(resumed["records"]) == keys(reference["records"])
    assert dataset_files(out / "10_giulia_pixar") == dataset_files(ref_dir / "10_giulia_pixar")


def test_a_bad_line_in_the_middle_hides_no_later_record(tmp_path):
    manifest = curate.Manifest(tmp_path / "manifest.jsonl")
    manifest.append([{"frame": 1, "region": 0}])
    with open(manifest.path, "ab") as fh:
        fh.write(b'{"frame": 2, "reg\n')  # an old torn line that a later append went after
    manifest.append([{"frame": 3, "region": 0}, {"frame": 4, "region": 0}])
    assert [r["frame"] for r in manifest.read()] == [1, 3, 4] and manifest.skipped == 1
    assert manifest.done_frames() == {1, 3, 4}
    assert manifest.repair() == 0  # it ends with a newline: nothing to cut


def test_two_jobs_on_one_folder_never_write_one_manifest(film, fresh, tmp_path, studio_dirs):
    _, reference = fresh
    out = tmp_path / "ds"
    first, second = job(film, out), job(film, out)
    results = [json.loads(p.communicate(timeout=600)[0].strip().splitlines()[-1]) for p in (first, second)]
    assert any(r["ok"] for r in results)
    for r in results:  # the loser (if they overlapped) was told, and changed nothing
        if not r["ok"]:
            assert "another curation job" in r["error"] and "is writing" in r["error"]
    records = curate.Manifest(out / "manifest.jsonl").read()
    assert keys(records) == sorted(set(keys(records)))  # no record written twice
    assert len(records) == reference["measured"]
    assert all(r["measured"] == reference["measured"] for r in results if r["ok"])


def test_a_held_lock_refuses_a_second_job_at_once(film, tmp_path, studio_dirs):
    out = tmp_path / "ds"
    out.mkdir()
    holder = subprocess.Popen([sys.executable, "-c", (
        "import sys, time; from pathlib import Path; from animation_studio.nodes.dataset.pipeline import JobLock\n"
        f"with JobLock(Path({str(out)!r})):\n    print('held', flush=True); time.sleep(60)")],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        started = time.monotonic()
        with pytest.raises(pipeline.CurationError, match=rf"another curation job \(pid {holder.pid}\)"):
            pipeline.curate_film(film, out, settings(), REFS)
        assert time.monotonic() - started < 5  # refused, not queued
        assert not (out / "manifest.jsonl").exists()
    finally:
        holder.kill()
        holder.wait()
    # The holder died without unlocking: the kernel released the lock with the process.
    assert pipeline.curate_film(film, out, settings(), REFS)["measured"] > 0


def test_sigterm_cleans_part_files_and_the_job_resumes(film, fresh, tmp_path, studio_dirs):
    ref_dir, reference = fresh
    out = tmp_path / "ds"
    out.mkdir()
    stale = out / ".old.png.0123456789ab.part"  # what a kill -9 of an earlier job left behind
    stale.write_bytes(b"half a png")
    proc = job(film, out)
    manifest = out / "manifest.jsonl"
    deadline = time.monotonic() + 300
    while not (manifest.exists() and manifest.read_bytes().count(b"\n") >= 1) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert proc.poll() is None, "the job ended before it could be killed"
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=120)
    assert proc.returncode != 0
    assert not list(out.rglob("*.part"))  # its own part files and the stale one
    assert not (out / "summary.json").exists()
    resumed = pipeline.curate_film(film, out, settings(), REFS)
    assert resumed["measured"] == reference["measured"]
    assert dataset_files(out / "10_giulia_pixar") == dataset_files(ref_dir / "10_giulia_pixar")


def test_files_are_written_0644_and_never_through_a_planted_symlink(film, fresh, tmp_path, studio_dirs):
    ref_dir, _ = fresh
    for path in [p for p in ref_dir.rglob("*") if p.is_file() and p.name != ".lock"]:
        assert path.stat().st_mode & 0o777 == 0o644, path
    old = os.umask(0o077)  # a strict umask must not make the dataset unreadable to the trainer
    try:
        curate.write_atomic(tmp_path / "caption.txt", b"giulia_pixar\n")
    finally:
        os.umask(old)
    assert (tmp_path / "caption.txt").stat().st_mode & 0o777 == 0o644
    outside = tmp_path / "outside.jsonl"
    outside.write_text("precious\n")
    out = tmp_path / "ds"
    out.mkdir()
    (out / "manifest.jsonl").symlink_to(outside)
    with pytest.raises(OSError):
        pipeline.curate_film(film, out, settings(), REFS)
    assert outside.read_text() == "precious\n"
