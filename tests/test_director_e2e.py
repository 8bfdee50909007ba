"""End to end: `animation-studio direct` on real footage, embedded engine, no LLM: the issue's request for quarter
speed with a music sting gives a clip four times as long with the sting and nothing else (no face warp, no
caption), every post-condition measured in run.json, exit status 0 only because it was approved."""
from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from media import real_footage  # noqa: E402

pytest.importorskip("langgraph")


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_quarter_speed_with_a_music_sting_on_big_buck_bunny(tmp_path, studio_dirs, capsys):
    from animation_studio.agent.cli import main
    from animation_studio.nodes import video_io as vio

    shutil.copy(real_footage("bigbuckbunny.mp4"), studio_dirs["input"] / "bunny.mp4")
    out = tmp_path / "runs"
    code = main(["direct", "make this clip quarter speed and add a music sting", "--input", "bunny.mp4",
                 "--llm", "none", "--no-memory", "--out", str(out)])
    err = capsys.readouterr().err
    (run_dir,) = [p for p in out.iterdir() if p.is_dir()]
    record = json.loads((run_dir / "run.json").read_text())
    assert code == 0 and record["status"] == "approved", err
    assert record["plan"] == [{"op": "retime", "params": {"speed": 0.25, "seconds": 0.0}},
                              {"op": "sting", "params": {"style": "dun_dun_dun", "at": 0.0}}]
    classes = {n["class_type"] for n in record["final_graph"].values()}
    assert "AnimStudio_DramaticSting" in classes
    assert not {"AnimStudio_ExaggerateExpressionVideo", "AnimStudio_BurnCaption"} & classes
    (video,) = record["files"]
    info = vio.probe(video)
    assert info.duration == pytest.approx(4 * 5.28, abs=0.3) and info.has_audio
    checks = {c["check"]: c for c in record["checks"]}
    assert {"duration", "audio_present", "audio_sync", "not_placeholder", "exists", "format"} <= set(checks)
    assert all(c["passed"] and c["measured"] for c in checks.values() if c["check"] != "exists")
    # What was decided is on the CLI too: the plan and each check with its measured value.
    assert "plan: retime(speed=0.25, seconds=0.0) -> sting(" in err and "PASS duration" in err
