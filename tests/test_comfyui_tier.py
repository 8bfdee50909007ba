"""The ComfyUI tier: a real ComfyUI server (`--cpu`) with this pack loaded.

Runs only when COMFYUI_PATH points at a ComfyUI checkout (COMFYUI_PYTHON: its
interpreter; default COMFYUI_PATH/../comfyui-venv/bin/python if present, else
this one; `bash .ci/install.d/comfyui.sh` puts the pack's extras there). Checks
that the pack loads there without errors, that /object_info publishes every node
with the schema the pack declares, that every shipped workflow that needs no
model weights runs through the server engine from media made here and gives the
embedded engine's files (frame counts, durations, dataset file names), that the
image workflows validate against the live /object_info except for their model
files, that every UI workflow converts to its API twin with the live catalog, and
that ComfyUI's own validation reports the same error types as agent/validate.py.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
import comfyui_harness  # noqa: E402

from animation_studio.nodes import routes  # noqa: E402

pytestmark = [
    pytest.mark.comfyui,
    pytest.mark.timeout(300),
    pytest.mark.skipif(comfyui_harness.comfyui_path() is None, reason="COMFYUI_PATH not set"),
]

REPO = comfyui_harness.REPO_ROOT
WORKFLOWS = sorted((REPO / "workflows" / "api").glob("*.api.json"))


@pytest.fixture(scope="module")
def server():
    with comfyui_harness.ComfyUIServer(comfyui_harness.comfyui_path()) as srv:
        yield srv


@pytest.fixture(scope="module")
def object_info(server):
    return server.get_json("/object_info")


@pytest.fixture
def server_engine(server):
    from animation_studio.agent.server_engine import ServerEngine

    return ServerEngine(server.url, timeout=240)


def pack_log_problems(log: str) -> list[str]:
    """Lines of a ComfyUI log that say our pack (or one of its families) failed to load."""
    folder = comfyui_harness.PACK_FOLDER_NAME
    problems = [line for line in log.splitlines()
                if ("IMPORT FAILED" in line and folder in line)
                or "node family" in line and "failed to load" in line
                or "Animation Studio routes not registered" in line]
    # A traceback whose frames run through the pack's files.
    for block in re.split(r"(?=Traceback \(most recent call last\))", log)[1:]:
        frames = block.split("\n\n")[0]
        if f"custom_nodes/{folder}/" in frames or str(REPO) in frames:
            problems.append(frames.strip()[-600:])
    return problems


def test_the_pack_loads_without_import_failures(server):
    log = server.log_text()
    assert f"custom_nodes/{comfyui_harness.PACK_FOLDER_NAME}" in log, "ComfyUI did not list the pack among its custom nodes"
    problems = pack_log_problems(log)
    assert not problems, "the pack failed to load inside ComfyUI:\n" + "\n".join(problems)


def _schema(info: dict) -> dict:
    """What must agree between the pack and /object_info: input names/types/options per section, outputs."""
    from animation_studio.agent.catalog import spec_from_info

    spec = spec_from_info(info.get("name", ""), json.loads(json.dumps(info, default=str)))
    return {
        "inputs": {name: (s.section, s.type, list(s.options) if s.options is not None else None)
                   for name, s in spec.inputs.items() if s.section != "hidden"},
        "outputs": spec.outputs,
        "output_names": spec.output_names,
        "output_is_list": spec.output_is_list,
        "output_node": spec.output_node,
    }


def test_the_shipped_core_catalog_snapshot_is_this_comfyuis(object_info):
    """`convert` names core widgets offline from configs/object_info_comfyui_0.8.0.json.gz: it must describe
    the same core nodes, inputs and outputs as this server. ANIMATION_STUDIO_UPDATE_SNAPSHOTS=1 rewrites it."""
    from animation_studio.agent.convert import read_core_object_info, write_core_object_info

    core = {name: info for name, info in object_info.items() if not name.startswith("AnimStudio_")}
    if os.environ.get("ANIMATION_STUDIO_UPDATE_SNAPSHOTS"):
        write_core_object_info(core)
    shipped = read_core_object_info()
    # The snapshot was taken with ComfyUI's own custom_nodes/ folder, whose websocket_image_save.py example
    # adds SaveImageWebsocket; this harness loads only the pack from its custom_nodes/.
    assert set(core) - set(shipped) == set() and set(shipped) - set(core) <= {"SaveImageWebsocket"}, \
        (sorted(set(core) - set(shipped))[:20], sorted(set(shipped) - set(core))[:20])

    def shape(info: dict) -> dict:
        # Combo option lists of model/input files are the capturing machine's; the rest must be identical.
        schema = _schema(info)
        # A list, so the inputs' order (their widgets' positions in saved workflows) counts too.
        schema["inputs"] = [(name, section, kind, None if kind == "COMBO" else options)
                            for name, (section, kind, options) in schema["inputs"].items()]
        schema["raw_inputs"] = json.dumps(info.get("input"), default=str) if not any(
            kind == "COMBO" for _, _, kind, _ in schema["inputs"]) else None
        return schema

    different = sorted(name for name in core if shape(core[name]) != shape(shipped[name]))
    assert not different, f"core nodes whose schema differs from the shipped snapshot: {different[:20]}"


def test_every_pack_node_is_published_with_the_same_schema(object_info):
    import animation_studio
    from animation_studio.agent.catalog import info_from_class

    mappings = animation_studio.NODE_CLASS_MAPPINGS
    assert mappings, "the pack registers no nodes"
    missing = sorted(set(mappings) - set(object_info))
    assert not missing, f"{len(missing)} pack nodes are not in ComfyUI's /object_info: {missing}"
    different = {}
    for key, cls in mappings.items():
        ours, theirs = _schema(info_from_class(key, cls)), _schema(object_info[key])
        if ours != theirs:
            different[key] = {field: (ours[field], theirs[field]) for field in ours if ours[field] != theirs[field]}
    assert not different, "schemas differ (pack, /object_info):\n" + json.dumps(different, indent=1, default=str)[:4000]


# ---------------------------------------------------------------- shipped workflows, for real
# What each shipped workflow reads from the input folder, made here (no files checked in).
INPUT_MAKERS = {
    "parody_video.api.json": ("clip.mp4",),
    "dataset_curation.api.json": ("film.mp4", "giulia_front.png", "giulia_side.png"),
    "character_voice.api.json": (),
    "title_card.api.json": (),
    "director_demo.api.json": (),
}
# Workflows that need model weights (SDXL checkpoint, LoRAs, ControlNet) no test machine has.
NEEDS_WEIGHTS = {"character_image_diffusers.api.json", "character_image_native.api.json"}
PARODY_FPS, PARODY_FRAMES, PARODY_RATE = 12.0, 24, 22050
POSE_IMAGE = "luca_running_pose.png"


def test_every_shipped_workflow_is_run_here_or_needs_weights():
    assert {w.name for w in WORKFLOWS} == set(INPUT_MAKERS) | NEEDS_WEIGHTS


def _face_media():
    """tests/test_face.py as a module (tests/ is not a package): its animated astronaut photo."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("face_media", Path(__file__).with_name("test_face.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def make_parody_clip(path: Path) -> Path:
    """The parody test's clip (tests/test_face_workflow.py): a real face whose mouth opens, with a tone."""
    import numpy as np

    from animation_studio.nodes import video_io

    frames = _face_media().astronaut_clip(n=PARODY_FRAMES, size=192, amp=12.0)
    t = np.arange(int(PARODY_RATE * PARODY_FRAMES / PARODY_FPS)) / PARODY_RATE
    tone = (0.2 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)[None]
    video_io.write_video([frames], PARODY_FPS, path, audio=(tone, PARODY_RATE))
    return path


def make_pose_image(path: Path) -> Path:
    """A stick-figure pose picture under the native workflow's file name (only its presence matters)."""
    from PIL import Image, ImageDraw

    img = Image.new("RGB", (256, 256), "black")
    draw = ImageDraw.Draw(img)
    for a, b in [((128, 40), (128, 140)), ((128, 70), (70, 110)), ((128, 70), (190, 50)),
                 ((128, 140), (80, 220)), ((128, 140), (180, 210))]:
        draw.line([a, b], fill="white", width=6)
    img.save(path)
    return path


@pytest.fixture(scope="module")
def tier_inputs(server, tmp_path_factory) -> Path:
    """Every input file the shipped workflows name, made once and put in the server's input folder."""
    pytest.importorskip("av")
    from film import make_film, reference_images
    from PIL import Image

    folder = tmp_path_factory.mktemp("tier-inputs")
    make_film(folder / "film.mp4")
    # Giulia's reference images where her profile names them: without them curation refuses (unknown subject).
    for name in ("giulia_front.png", "giulia_side.png"):
        Image.fromarray(reference_images("giulia")[0]).save(folder / name)
    make_pose_image(folder / POSE_IMAGE)
    try:
        make_parody_clip(folder / "clip.mp4")
    except pytest.skip.Exception:
        pass  # no cv2/mediapipe/skimage here: the parody test skips on its own
    for item in folder.iterdir():
        shutil.copy(item, server.input_dir / item.name)
    return folder


def run_on_both(name: str, tier_inputs: Path, engine, server_engine, studio_dirs, tmp_path):
    """Run one shipped workflow on the embedded engine and on the server, from the same input files."""
    for file_name in INPUT_MAKERS[name]:
        if not (tier_inputs / file_name).exists():
            pytest.skip(f"this interpreter could not make {file_name} (cv2/mediapipe/skimage missing)")
        shutil.copy(tier_inputs / file_name, studio_dirs["input"] / file_name)
    graph = json.loads((REPO / "workflows" / "api" / name).read_text())
    local = engine.run(graph, run_dir=tmp_path / "embedded-run")
    if local.status != "success" and "Install the '" in local.message():
        pytest.skip(f"this venv lacks an optional extra: {local.message()[:300]}")
    assert local.status == "success", local.message()
    served = server_engine.run(graph, tmp_path / "server-run")
    # A node failing inside ComfyUI's Python (a missing extra there) is a failure of this tier: the
    # install step .ci/install.d/comfyui.sh is what puts the extras there.
    assert served.status == "success", served.message() + "\n" + str((served.error or {}).get("traceback", ""))[-2000:]
    print(f"{name}: embedded {local.seconds:.1f} s, ComfyUI {served.seconds:.1f} s")
    for path in served.files:
        assert Path(path).is_file() and Path(path).stat().st_size > 0
        assert Path(path).is_relative_to(tmp_path / "server-run")
    return local, served


def relative_files(result, run_dir: Path) -> list[str]:
    return sorted(Path(p).relative_to(run_dir).as_posix() for p in result.files)


def ui_json(result, node_id: str, key: str = "text") -> dict:
    """A node's JSON report as the ui dict carried it (the server sends no return values)."""
    return json.loads(result.outputs[node_id][key][0])


def test_title_card_runs_on_the_server_like_on_the_embedded_engine(tier_inputs, engine, server_engine,
                                                                   studio_dirs, tmp_path):
    import numpy as np
    from PIL import Image

    local, served = run_on_both("title_card.api.json", tier_inputs, engine, server_engine, studio_dirs, tmp_path)
    assert relative_files(served, tmp_path / "server-run") == relative_files(local, tmp_path / "embedded-run") \
        == ["title_card/line_00001.txt", "title_card/sky_00001.png"]
    # Deterministic: the same text and the same pixels from both engines.
    line = "title_card/line_00001.txt"
    assert (tmp_path / "server-run" / line).read_text() == (tmp_path / "embedded-run" / line).read_text() \
        == "Silenzio, Bruno!"
    theirs, ours = (np.asarray(Image.open(tmp_path / run / "title_card/sky_00001.png").convert("RGB"))
                    for run in ("server-run", "embedded-run"))
    assert theirs.shape == ours.shape == (288, 512, 3)
    assert np.array_equal(theirs, ours)


def expected_ramp_frames(frames: int, fps: float, start: float, end: float, speed: float, ramp: float) -> int:
    """SpeedRamp's output length for a window, from its documented speed curve (nodes/video.ramp_speed)."""
    import numpy as np

    from animation_studio.nodes.video import ramp_speed

    duration = frames / fps
    grid = np.linspace(0.0, duration, max(2, int(duration * 1000)) + 1)
    speeds = ramp_speed(grid, start, end, speed, ramp, "ease_in_out")
    seconds = float(np.sum(np.diff(grid) / ((speeds[1:] + speeds[:-1]) / 2)))
    return int(round(seconds * fps))


def test_parody_video_runs_inside_comfyui_with_sound_and_the_embedded_frame_count(tier_inputs, engine, server_engine,
                                                                                  studio_dirs, tmp_path):
    from animation_studio.nodes import video_io

    local, served = run_on_both("parody_video.api.json", tier_inputs, engine, server_engine, studio_dirs, tmp_path)
    names = relative_files(served, tmp_path / "server-run")
    assert names == relative_files(local, tmp_path / "embedded-run") \
        == ["parody/metrics_00001.txt", "parody/parody_00001.mp4"]
    ours = video_io.probe(tmp_path / "embedded-run" / "parody/parody_00001.mp4")
    theirs = video_io.probe(tmp_path / "server-run" / "parody/parody_00001.mp4")
    assert theirs.has_audio and ours.has_audio
    # The peak window (ExpressiveMoment) and so the slow-motion length are deterministic.
    start, end = local.values["4"][1][0], local.values["4"][2][0]
    expected = expected_ramp_frames(PARODY_FRAMES, PARODY_FPS, start, end, speed=0.25, ramp=0.2)
    assert expected > PARODY_FRAMES
    assert theirs.frame_count == ours.frame_count == expected
    assert theirs.fps == ours.fps == PARODY_FPS
    assert abs(theirs.duration - ours.duration) < 1e-3
    # Sound runs the whole (slowed) picture on both sides.
    for info, run in ((theirs, "server-run"), (ours, "embedded-run")):
        sound = video_io.read_audio(tmp_path / run / "parody/parody_00001.mp4")
        seconds = sound["waveform"].shape[-1] / sound["sample_rate"]
        assert abs(seconds - info.duration) < 0.15, (run, seconds, info.duration)
    report = json.loads((tmp_path / "server-run" / "parody/metrics_00001.txt").read_text())
    local_report = json.loads((tmp_path / "embedded-run" / "parody/metrics_00001.txt").read_text())
    assert report["target_factor"] == local_report["target_factor"] == 2.5
    assert report["identity"]["path"] == local_report["identity"]["path"]
    assert abs(report["achieved_factor"] - local_report["achieved_factor"]) < 0.05
    assert report["achieved_factor"] > 1.2 and report["identity"]["similarity"] > 0.5


def dataset_files(folder: Path) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*")
                  if p.is_file() and ".staging" not in p.parts)


def test_dataset_curation_writes_the_same_dataset_inside_comfyui(tier_inputs, engine, server_engine, server,
                                                                 studio_dirs, tmp_path):
    local, served = run_on_both("dataset_curation.api.json", tier_inputs, engine, server_engine, studio_dirs,
                                tmp_path)
    # The dataset is written straight into the output folder (not a ui file entry): read it there.
    theirs = server.output_dir / "datasets" / "giulia_lora" / "giulia"
    ours = Path(local.values["2"][1][0])
    assert ours == (tmp_path / "embedded-run" / "datasets" / "giulia_lora" / "giulia").resolve()
    names = dataset_files(theirs)
    assert names == dataset_files(ours)
    images = [n for n in names if n.endswith(".png")]
    assert images and "manifest.jsonl" in names
    assert all(n.removesuffix(".png") + ".txt" in names for n in images)  # a caption per image
    report, local_report = ui_json(served, "2"), json.loads(local.values["2"][0][0])
    assert report["character"] == "giulia" and report["kept"] == len(images)
    for key in ("measured", "kept", "rejected", "rules"):
        assert report[key] == local_report[key], key
    manifest = [json.loads(line) for line in (theirs / "manifest.jsonl").read_text().splitlines()]
    assert len(manifest) == report["measured"]
    for name in images:  # the same frames kept, with the same captions
        assert (theirs / name).with_suffix(".txt").read_text() == (ours / name).with_suffix(".txt").read_text()


def test_director_demo_plans_runs_and_verifies_inside_comfyui(tier_inputs, engine, server_engine, studio_dirs,
                                                              tmp_path):
    from animation_studio.nodes import video_io as vio

    local, served = run_on_both("director_demo.api.json", tier_inputs, engine, server_engine, studio_dirs, tmp_path)
    for result, run_dir in ((served, tmp_path / "server-run"), (local, tmp_path / "embedded-run")):
        names = relative_files(result, run_dir)
        assert {"director/final_plan_00001.txt", "director/report_00001.txt"} <= set(names), names
        # The verifier saved the title card itself, then checked that very file.
        (video,) = [n for n in names if n.endswith("/result_00001.mp4")]
        assert vio.probe(run_dir / video).duration == pytest.approx(2.0, abs=0.2)
    # With no LLM the plan is deterministic, and both engines verify it the same way.
    report = json.loads((tmp_path / "server-run" / "director/report_00001.txt").read_text())
    local_report = json.loads((tmp_path / "embedded-run" / "director/report_00001.txt").read_text())
    for key in ("status", "plan", "iterations"):
        assert report[key] == local_report[key], key
    assert report["status"] == "approved"
    assert {c["check"]: c["passed"] for c in report["checks"]} == {c["check"]: c["passed"] for c in local_report["checks"]}
    assert next(c for c in report["checks"] if c["check"] == "caption_ocr")["measured"]["match"] >= 0.85


def test_character_voice_speaks_inside_comfyui(tier_inputs, engine, server_engine, studio_dirs, tmp_path):
    import soundfile

    local, served = run_on_both("character_voice.api.json", tier_inputs, engine, server_engine, studio_dirs, tmp_path)
    names = relative_files(served, tmp_path / "server-run")
    assert names == relative_files(local, tmp_path / "embedded-run") == [
        "animation_studio/voice/luca_silenzio_bruno_00001.wav",
        "animation_studio/voice/luca_silenzio_bruno_report_00001.txt"]
    wav = names[0]
    theirs, their_rate = soundfile.read(tmp_path / "server-run" / wav)
    ours, our_rate = soundfile.read(tmp_path / "embedded-run" / wav)
    assert their_rate == our_rate and len(theirs) > 0
    # Piper's VITS samples its durations, so lengths differ a little between runs, never by much.
    their_s, our_s = len(theirs) / their_rate, len(ours) / our_rate
    assert 0.4 <= their_s <= 6.0 and abs(their_s - our_s) / our_s < 0.25, (their_s, our_s)
    report = json.loads((tmp_path / "server-run" / names[1]).read_text())
    local_report = json.loads((tmp_path / "embedded-run" / names[1]).read_text())
    assert report.keys() == local_report.keys()
    assert abs(report["duration_s"] - their_s) < 0.05, report


# ---------------------------------------------------------------- workflows that need model weights
# The model files the image workflows name; no test machine has them, so these are the only errors
# allowed when the graphs are validated against a live server: value_not_in_list, for exactly these.
MODEL_FILE_INPUTS = {
    "character_image_native.api.json": {"1": "ckpt_name", "2": "lora_name", "3": "lora_name",
                                        "6": "control_net_name"},
    "character_image_diffusers.api.json": {"2": "ckpt_name", "4": "lora_name", "6": "controlnet_name"},
}


def model_file_errors(node_errors: dict) -> dict:
    return {node_id: [(e["type"], e["extra_info"].get("input_name"), e["extra_info"].get("received_value"))
                      for e in entry["errors"]]
            for node_id, entry in node_errors.items() if entry["errors"]}


def expected_model_file_errors(name: str) -> tuple[dict, dict]:
    graph = json.loads((REPO / "workflows" / "api" / name).read_text())
    expected = {node_id: [("value_not_in_list", input_name, graph[node_id]["inputs"][input_name])]
                for node_id, input_name in MODEL_FILE_INPUTS[name].items()}
    return graph, expected


@pytest.mark.parametrize("name", sorted(MODEL_FILE_INPUTS))
def test_comfyui_validates_an_image_workflow_but_for_its_model_files(name, tier_inputs, server_engine):
    """POST /prompt: ComfyUI's own validation (the pose image is in its input folder), and nothing runs."""
    assert name in NEEDS_WEIGHTS
    graph, expected = expected_model_file_errors(name)
    theirs = server_engine.run(graph)
    assert theirs.status == "invalid" and theirs.error["type"] == "prompt_outputs_failed_validation"
    assert model_file_errors(theirs.node_errors) == expected
    assert not theirs.executed


@pytest.fixture
def other_model_files(server):
    """One unrelated file in each model folder the image workflows read, so no model list is empty."""
    made = []
    for kind in ("checkpoints", "loras", "controlnet"):
        path = server.base_dir / "models" / kind / "some_other_model.safetensors"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"")
        made.append(path)
    yield made
    for path in made:
        path.unlink()


@pytest.mark.parametrize("name", sorted(MODEL_FILE_INPUTS))
def test_comfyui_and_our_validator_agree_on_an_image_workflow_with_other_models_there(name, tier_inputs,
                                                                                    other_model_files,
                                                                                    server_engine):
    graph, expected = expected_model_file_errors(name)
    live = server_engine.catalog()  # read after the files were put there
    assert "some_other_model.safetensors" in live["CheckpointLoaderSimple"].inputs["ckpt_name"].options
    ours = server_engine.validate(graph)  # agent/validate.py over the live /object_info
    assert model_file_errors(ours.node_errors) == expected, ours.summary()
    theirs = server_engine.run(graph)
    assert model_file_errors(theirs.node_errors) == expected


@pytest.mark.parametrize("name", sorted(MODEL_FILE_INPUTS))
def test_our_validator_agrees_on_an_image_workflow_with_empty_model_folders(name, tier_inputs, server_engine):
    # ComfyUI 0.8.0 publishes an empty list when a model folder is empty, and refuses any value: so do we
    # over a live catalog (a saved snapshot's lists are another machine's, and are not checked).
    graph, expected = expected_model_file_errors(name)
    ours = server_engine.validate(graph)
    assert model_file_errors(ours.node_errors) == expected, ours.summary()
    theirs = server_engine.run(graph)
    assert model_file_errors(theirs.node_errors) == expected


UI_TWINS = sorted(routes.ui_workflows().values())  # each UI workflow names its API twin (extra.animation_studio_api)


def without_meta(graph: dict) -> dict:
    return {node_id: {k: v for k, v in node.items() if k != "_meta"} for node_id, node in graph.items()}


def test_every_shipped_workflow_has_a_ui_twin():
    assert {f"{twin}.api.json" for twin in routes.ui_workflows()} == {w.name for w in WORKFLOWS}


@pytest.mark.parametrize("ui_path", UI_TWINS, ids=[p.name for p in UI_TWINS])
def test_a_shipped_ui_workflow_converts_to_its_api_twin_with_the_live_catalog(ui_path, tier_inputs, server_engine):
    from animation_studio.agent.convert import ui_to_api

    ui = json.loads(ui_path.read_text(encoding="utf-8"))
    twin = REPO / "workflows" / "api" / f"{ui['extra']['animation_studio_api']}.api.json"
    api = json.loads(twin.read_text(encoding="utf-8"))
    assert without_meta(ui_to_api(ui, server_engine.catalog())) == without_meta(api)


def test_an_invalid_second_output_is_reported_while_the_first_still_runs(server_engine, tmp_path):
    graph = json.loads((REPO / "workflows" / "api" / "title_card.api.json").read_text())
    graph["3"]["inputs"]["text"] = "only this line"
    del graph["2"]["inputs"]["filename_prefix"]
    result = server_engine.run(graph, tmp_path / "run")
    assert result.status == "invalid" and result.error["type"] == "prompt_outputs_failed_validation"
    assert [e["type"] for e in result.node_errors["2"]["errors"]] == ["required_input_missing"]
    assert [Path(p).read_text() for p in result.files] == ["only this line"]


def _bad_graphs() -> dict[str, dict]:
    """One broken graph per error type, each with a single output so ComfyUI answers 400 (pack and core nodes)."""
    title = json.loads((REPO / "workflows" / "api" / "title_card.api.json").read_text())
    image_only = {"1": title["1"], "2": title["2"]}
    graphs = {}

    def variant(node_id: str, name: str, value, base=image_only) -> dict:
        graph = json.loads(json.dumps(base))
        if value is None:
            del graph[node_id]["inputs"][name]
        else:
            graph[node_id]["inputs"][name] = value
        return graph

    graphs["required_input_missing"] = variant("2", "filename_prefix", None)
    graphs["value_bigger_than_max"] = variant("1", "width", 100_000)
    graphs["value_smaller_than_min"] = variant("1", "height", 0)
    graphs["return_type_mismatch"] = variant("2", "images", ["3", 0], {**image_only, "3": title["3"]})
    graphs["bad_linked_input"] = variant("2", "images", ["1"])  # a link is [node_id, output_index]
    graphs["value_not_in_list"] = {
        "1": {"class_type": "EmptyImage", "inputs": {"width": 64, "height": 64, "batch_size": 1, "color": 0}},
        "2": {"class_type": "ImageScale", "inputs": {"image": ["1", 0], "upscale_method": "no-such-method",
                                                      "width": 32, "height": 32, "crop": "disabled"}},
        "3": {"class_type": "PreviewImage", "inputs": {"images": ["2", 0]}},
    }
    graphs["prompt_no_outputs"] = {"1": title["1"]}
    graphs["invalid_input_type"] = variant("1", "width", "wide")
    graphs["invalid_prompt"] = {"1": {"class_type": "NoSuchNode", "inputs": {}}, "2": title["2"]}  # unknown node
    # Dangling links: ComfyUI 0.8.0 fails with a KeyError/IndexError, reported as an exception on the node
    # holding the link (exception_during_validation on an output, ..._inner_validation on a node it needs).
    graphs["exception_during_validation"] = variant("2", "images", ["99", 0])
    graphs["exception_during_validation:missing_output_index"] = variant("2", "images", ["1", 5])
    scaled = {"1": {"class_type": "EmptyImage", "inputs": {"width": 64, "height": 64, "batch_size": 1, "color": 0}},
              "2": {"class_type": "ImageScaleBy", "inputs": {"image": ["1", 0], "upscale_method": "nearest-exact",
                                                              "scale_by": 0.5}},
              "3": {"class_type": "PreviewImage", "inputs": {"images": ["2", 0]}}}
    graphs["exception_during_inner_validation"] = variant("2", "image", ["99", 0], scaled)
    # Non-finite numbers where ComfyUI's own checks refuse them (JSON's Infinity/NaN reach its json.loads).
    graphs["invalid_input_type:int_infinity"] = variant("1", "width", float("inf"), scaled)
    graphs["invalid_input_type:int_nan"] = variant("1", "height", float("nan"), scaled)
    graphs["value_bigger_than_max:float_infinity"] = variant("2", "scale_by", float("inf"), scaled)
    graphs["value_smaller_than_min:float_minus_infinity"] = variant("2", "scale_by", float("-inf"), scaled)
    graphs["value_bigger_than_max:huge_int"] = variant("1", "width", 10 ** 30, scaled)
    return graphs


def _error_types(error: dict | None, node_errors: dict) -> dict:
    return {"top": (error or {}).get("type"),
            "nodes": {node_id: sorted(e["type"] for e in entry["errors"]) for node_id, entry in node_errors.items()}}


@pytest.mark.parametrize("case", sorted(_bad_graphs()))
def test_comfyui_and_our_validator_report_the_same_error_types(case, server_engine):
    _compare_validators(_bad_graphs()[case], case.split(":")[0], server_engine)


def test_custom_validation_agrees_with_comfyui(server_engine, engine, studio_dirs):
    """VALIDATE_INPUTS runs where the classes are: ComfyUI's, and the embedded engine's over the pack's nodes."""
    graph = {"1": {"class_type": "AnimStudio_LoadImage", "inputs": {"image": "../../etc/passwd"}},
             "2": {"class_type": "AnimStudio_SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "x"}}}
    result = server_engine.run(graph)
    theirs = _error_types(result.error, result.node_errors)
    report = engine.validate(graph)
    assert _error_types(report.error, report.node_errors) == theirs == {
        "top": "prompt_outputs_failed_validation", "nodes": {"1": ["custom_validation_failed"]}}
    assert "outside the input folder" in report.node_errors["1"]["errors"][0]["details"]


@pytest.mark.parametrize("loop", ["two_nodes", "self_link"])
def test_a_cycle_is_refused_by_both_with_the_same_answer(loop, server_engine):
    """ComfyUI recurses around a cycle until Python's recursion limit and loses that error on the way back:
    prompt_outputs_failed_validation with no node_errors. Ours answers the same and names the cycle once."""
    graph = {"1": {"class_type": "ImageInvert", "inputs": {"image": ["2", 0] if loop == "two_nodes" else ["1", 0]}},
             "2": {"class_type": "ImageInvert", "inputs": {"image": ["1", 0]}},
             "3": {"class_type": "PreviewImage", "inputs": {"images": ["1", 0]}}}
    _compare_validators(graph, "prompt_outputs_failed_validation", server_engine)
    assert server_engine.validate(graph).summary().startswith("Prompt outputs failed validation dependency cycle: 1 -> ")


def test_nan_passes_comfyuis_checks_and_ours_refuses_it_in_comfyuis_shape(server_engine):
    """The one deliberate difference: ComfyUI 0.8.0 compares NaN with min/max (always False) and queues it
    (DramaticSting then wrote full-scale noise); ours refuses it as invalid_input_type naming node and input."""
    graph = _bad_graphs()["value_bigger_than_max:float_infinity"]
    graph["2"]["inputs"]["scale_by"] = float("nan")
    result = server_engine.run(graph)
    assert result.status != "invalid", result.message()  # ComfyUI accepted it (the run then fails or not)
    report = server_engine.validate(graph)
    (err,) = report.node_errors["2"]["errors"]
    assert (err["type"], err["extra_info"]["input_name"]) == ("invalid_input_type", "scale_by")
    assert set(err) == {"type", "message", "details", "extra_info"}


def _compare_validators(graph: dict, expected: str, server_engine) -> None:
    result = server_engine.run(graph)
    assert result.status == "invalid", result.message()
    theirs = _error_types(result.error, result.node_errors)
    report = server_engine.validate(graph)  # agent/validate.py over the server's own catalog
    ours = _error_types(report.error, report.node_errors)
    assert ours == theirs, f"ComfyUI said {theirs}, agent/validate.py said {ours}"
    assert expected == theirs["top"] or any(expected in types for types in theirs["nodes"].values()), theirs


def test_nan_that_comfyuis_validator_lets_through_is_refused_by_the_node(server_engine, tmp_path):
    """Before: DramaticSting with root_hz NaN wrote a WAV of constant full-scale samples inside ComfyUI."""
    graph = {"1": {"class_type": "AnimStudio_DramaticSting", "inputs": {"style": "dun_dun_dun", "root_hz": float("nan"),
                                                                        "sample_rate": 8000, "seed": 0}},
             "2": {"class_type": "AnimStudio_SaveAudio", "inputs": {"audio": ["1", 0], "filename_prefix": "sting",
                                                                    "format": "wav"}}}
    result = server_engine.run(graph, tmp_path / "run")
    assert result.status == "error" and result.error["node_id"] == "1", result.message()
    assert "input 'root_hz' is nan" in result.message() and result.files == []
