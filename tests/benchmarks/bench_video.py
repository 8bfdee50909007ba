"""Benchmark: 1080p load -> 0.25x slow motion (blend) -> save with audio, against the FFmpeg CLI; scene detection
against the scenedetect CLI; peak RSS against what a float32 frame batch of the same clip would need.

    .venv/bin/python tests/benchmarks/bench_video.py --seconds 10     (the issue asks for 60)

The machine may be shared: ours and the FFmpeg CLI run alternately `--repeat` times and the
ratios are medians of the pairs; CPU seconds (ours: this process, FFmpeg: the child) are printed
too, as they move less with other load than wall time.

The clip is generated with FFmpeg's test sources (testsrc2 + sine). The peer FFmpeg is the system
`ffmpeg` or, if absent, imageio-ffmpeg's bundled binary (used only here, as the reference).
"""
from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def ffmpeg_exe() -> str:
    exe = shutil.which("ffmpeg")
    if exe:
        return exe
    try:
        import imageio_ffmpeg

        return imageio_ffmpeg.get_ffmpeg_exe()
    except ImportError:
        sys.exit("No ffmpeg CLI to compare with: install Debian ffmpeg or `pip install imageio-ffmpeg`.")


def run(cmd: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def cpu_seconds(who) -> float:
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


def timed(fn, who=resource.RUSAGE_SELF):
    """(result, wall s, CPU s) of fn(); CPU of this process, or of its children (RUSAGE_CHILDREN) for a CLI."""
    wall, cpu = time.perf_counter(), cpu_seconds(who)
    result = fn()
    return result, time.perf_counter() - wall, cpu_seconds(who) - cpu


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--fps", type=int, default=30)
    parser.add_argument("--size", default="1920x1080")
    parser.add_argument("--repeat", type=int, default=3, help="alternating runs of ours and the FFmpeg CLI")
    args = parser.parse_args()
    ff = ffmpeg_exe()
    work = Path(tempfile.mkdtemp(prefix="bench_video_"))
    os.environ["ANIMATION_STUDIO__PATHS__INPUT"] = str(work)
    os.environ["ANIMATION_STUDIO__PATHS__OUTPUT"] = str(work / "out")
    os.environ["ANIMATION_STUDIO__PATHS__TEMP"] = str(work / "temp")
    clip = work / "clip.mp4"
    # Four scenes (cuts every quarter) so scene detection has work to do.
    quarter = args.seconds / 4
    scenes = ";".join(
        f"testsrc2=size={args.size}:rate={args.fps}:duration={quarter},hue=h={90 * k}[v{k}]" for k in range(4))
    run([ff, "-y", "-filter_complex", f"{scenes};[v0][v1][v2][v3]concat=n=4:v=1:a=0[v]", "-f", "lavfi", "-i",
         f"sine=frequency=440:sample_rate=48000:duration={args.seconds}", "-map", "[v]", "-map", "0:a",
         "-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p", "-c:a", "aac", "-ac", "2", str(clip)])

    from animation_studio.nodes import video as V
    from animation_studio.nodes import video_io as vio

    source = vio.probe(clip)
    w, h = source.width, source.height
    print(f"clip: {source.frame_count} frames {w}x{h} @ {source.fps} fps, {source.duration:.1f} s, audio={source.has_audio}")

    # ---- ours: load -> 0.25x slow motion (blend, audio time-stretched) -> save mp4 with audio,
    # ---- alternating with the FFmpeg CLI doing the equivalent filter chain with the same encoder settings.
    def ours_once():
        video = V.load_video("clip.mp4")
        slow = V.slow_motion(video, 0.25, "blend", "stretch")
        return V.save_video(slow, "bench/slowmo", "mp4", True)

    peer_out = work / "ffmpeg_slowmo.mp4"
    peer_cmd = [ff, "-y", "-i", str(clip), "-filter:v", f"setpts=4*PTS,framerate=fps={args.fps}",
                "-filter:a", "atempo=0.5,atempo=0.5", "-c:v", "libx264", "-preset", "veryfast", "-crf", "20",
                "-pix_fmt", "yuv420p", "-c:a", "aac", str(peer_out)]
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    runs = []  # (ours wall, ours cpu, peer wall, peer cpu)
    for _ in range(max(1, args.repeat)):
        saved, ours_wall, ours_cpu = timed(ours_once)
        _, peer_wall, peer_cpu = timed(lambda: run(peer_cmd), resource.RUSAGE_CHILDREN)
        runs.append((ours_wall, ours_cpu, peer_wall, peer_cpu))
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    out = vio.probe(saved)
    peer_info = vio.probe(peer_out)
    ours = statistics.median(r[0] for r in runs)
    peer = statistics.median(r[2] for r in runs)
    wall_ratio = statistics.median(r[2] / r[0] for r in runs)
    cpu_ratio = statistics.median(r[3] / r[1] for r in runs)

    frames_out = out.frame_count
    float_batch = source.frame_count * w * h * 3 * 4 / 2**30
    float_batch_out = frames_out * w * h * 3 * 4 / 2**30
    print(f"slow motion 0.25x blend + save: ours {ours:.1f} s ({frames_out / ours:.1f} fps out), "
          f"ffmpeg CLI {peer:.1f} s ({peer_info.frame_count / peer:.1f} fps out)")
    print(f"  throughput ratio ours/ffmpeg = {wall_ratio:.2f}x wall (median of {len(runs)} alternating pairs: "
          f"{', '.join(f'{r[2] / r[0]:.2f}' for r in runs)}), {cpu_ratio:.2f}x CPU time "
          f"(ours {statistics.median(r[1] for r in runs):.1f} s, ffmpeg {statistics.median(r[3] for r in runs):.1f} s)"
          f"  (target >= 0.8x)")
    print(f"  output: ours {frames_out} frames {out.duration:.2f} s audio={out.has_audio}; "
          f"ffmpeg {peer_info.frame_count} frames {peer_info.duration:.2f} s")
    print(f"  peak RSS {peak:.0f} MiB (before the pipeline {rss_before:.0f} MiB); float32 batch of the source "
          f"{float_batch:.1f} GiB, of the slowed clip {float_batch_out:.1f} GiB (target < 2 GiB)")

    # ---- scene detection: ours (streamed, downscaled) vs the scenedetect CLI
    start = time.perf_counter()
    scenes_found = V.detect_scenes(source, "content", 27.0, 0.5)
    ours_sd = time.perf_counter() - start
    sd_cli = shutil.which("scenedetect") or str(Path(sys.executable).with_name("scenedetect"))
    peer_sd = run([sd_cli, "-i", str(clip), "-o", str(work), "detect-content", "list-scenes", "-q"])
    n = source.frame_count
    print(f"scene detection: ours {n / ours_sd:.0f} frames/s ({len(scenes_found['scenes'])} scenes), "
          f"scenedetect CLI {n / peer_sd:.0f} frames/s; ratio {peer_sd / ours_sd:.2f}x")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
