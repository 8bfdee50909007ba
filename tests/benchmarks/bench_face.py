"""Face benchmark on a 720p clip: landmarks frames/s and exaggeration frames/s beside plain decode time.

The clip is skimage's astronaut photo animated (mouth opening, small jitter) and scaled to 1280x720.
Also writes the before/after frame pair of the exaggeration at the most expressive frame to
/tmp/face_pair.png (or the path given as the first argument).

    .venv/bin/python tests/benchmarks/bench_face.py [pair.png] [frames]
"""
from __future__ import annotations

import importlib.util
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def _media():
    spec = importlib.util.spec_from_file_location("face_media", Path(__file__).parents[1] / "test_face.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main() -> None:
    import cv2

    from animation_studio.nodes import video_io as vio
    from animation_studio.nodes.face.expression import find_expressive_moment, measures
    from animation_studio.nodes.face.landmarks import track_faces
    from animation_studio.nodes.face.warp import plan_exaggeration, warp_frame

    pair_path = sys.argv[1] if len(sys.argv) > 1 else "/tmp/face_pair.png"
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 48
    small = _media().astronaut_clip(n=n, size=360, amp=14.0)
    frames = np.stack([cv2.copyMakeBorder(f, 0, 0, 460, 460, cv2.BORDER_REFLECT) for f in small])
    frames = np.stack([cv2.resize(f, (1280, 720), interpolation=cv2.INTER_CUBIC) for f in frames])
    path = Path(tempfile.mkdtemp()) / "bench_720p.mp4"
    video = vio.write_video([frames], 24.0, path)
    print(f"clip: {video.width}x{video.height}, {video.frame_count} frames")

    t = time.perf_counter()
    for _ in vio.iter_frames(video):
        pass
    decode = time.perf_counter() - t
    print(f"decode only:            {video.frame_count / decode:7.1f} frames/s ({decode:.2f} s)")

    t = time.perf_counter()
    track = track_faces(vio.iter_frames(video), video.frame_count, video.width, video.height, video.fps, video=True)
    lm = time.perf_counter() - t
    print(f"decode + landmarks:     {video.frame_count / lm:7.1f} frames/s ({lm:.2f} s, {lm / decode:.1f}x decode); "
          f"{int(track.valid.sum())}/{len(track)} frames with a face")

    t = time.perf_counter()
    plan = plan_exaggeration(track.points, 2.5)
    planned = time.perf_counter() - t
    t = time.perf_counter()
    i = 0
    for chunk in vio.iter_frames(video):
        for img in chunk:
            if plan.valid[i]:
                warp_frame(img, plan.src[i], plan.dst[i], plan.triangles[i])
            i += 1
    warp = time.perf_counter() - t
    print(f"decode + exaggeration:  {video.frame_count / warp:7.1f} frames/s ({warp:.2f} s, {warp / decode:.1f}x decode; "
          f"plan {planned * 1000:.0f} ms for the clip)")
    print(f"warp alone (est.):      {video.frame_count / max(warp - decode, 1e-9):7.1f} frames/s")

    moment = find_expressive_moment(track.points, video.fps)["peak_frame"]
    # The pair shows the widest-open mouth, where the exaggeration is easiest to judge by eye.
    peak = int(np.nanargmax(measures(track.points)["mouth_open"]))
    print(f"expressive-moment finder peak: frame {moment}")
    before = frames[peak]
    after = warp_frame(before, plan.src[peak], plan.dst[peak], plan.triangles[peak])
    x0, y0 = int(np.nanmin(track.points[peak, :, 0])) - 40, int(np.nanmin(track.points[peak, :, 1])) - 80
    x1, y1 = int(np.nanmax(track.points[peak, :, 0])) + 40, int(np.nanmax(track.points[peak, :, 1])) + 40
    x0, y0 = max(x0, 0), max(y0, 0)
    pair = np.hstack([before[y0:y1, x0:x1], after[y0:y1, x0:x1]])
    cv2.imwrite(pair_path, cv2.cvtColor(pair, cv2.COLOR_RGB2BGR))
    print(f"before/after pair at frame {peak} (factor 2.5): {pair_path}; report notes: {plan.report['notes']}")


if __name__ == "__main__":
    main()
