"""The parody workflow end to end on a clip made from the astronaut photo (with a tone for sound)."""
from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("mediapipe")
pytest.importorskip("av")
pytest.importorskip("scenedetect")

WORKFLOW = Path(__file__).resolve().parents[1] / "workflows" / "api" / "parody_video.api.json"


def _media():
    spec = importlib.util.spec_from_file_location("face_media", Path(__file__).with_name("test_face.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_parody_workflow_makes_an_mp4_with_sound_and_metrics(studio_dirs, engine):
    from animation_studio.nodes import video_io as vio

    clip = _media().astronaut_clip(n=24, size=192, amp=12.0)
    rate = 22050
    t = np.arange(int(rate * 24 / 12)) / rate
    tone = (0.2 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)[None]
    vio.write_video([clip], 12.0, studio_dirs["input"] / "clip.mp4", audio=(tone, rate))

    graph = json.loads(WORKFLOW.read_text())
    result = engine.run(graph, run_dir=studio_dirs["outputs"] / "run")
    assert result.ok, result.message()
    mp4 = [f for f in result.files if f.endswith(".mp4")]
    assert len(mp4) == 1
    info = vio.probe(Path(result.output_dir) / mp4[0] if not Path(mp4[0]).is_absolute() else mp4[0])
    assert info.has_audio
    # Slow motion on the peak makes the parody longer than the 2 s source.
    assert info.duration > 2.3
    report = json.loads(result.values["11"][0][0])  # output 0, first (only) list item
    assert report["target_factor"] == 2.5 and report["achieved_factor"] > 1.2
    assert report["identity"]["similarity"] > 0.5 and report["identity"]["path"] in ("dlib", "insightface", "stylized")
    assert report["flicker"]["ratio"] < 2.0
    peak = result.values["4"][0][0]
    assert 6 <= peak <= 18, report  # the mouth is widest mid-clip
