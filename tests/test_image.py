"""Character image generation on a tiny random-weight SDXL: the real single-file loader (offline), LoRA stack,
several ControlNets, txt2img / img2img / inpaint, progress and interruption, preprocessors on a real photo,
and the native / diffusers graph recipes validated against their catalogs."""
from __future__ import annotations

import copy
import dataclasses
import json
import shutil
import socket
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("diffusers")
pytest.importorskip("peft")

from animation_studio.agent.catalog import Catalog, pack_catalog  # noqa: E402
from animation_studio.agent.validate import validate_graph  # noqa: E402
from animation_studio.nodes import bridge  # noqa: E402
from animation_studio.nodes.image import control, graphs, identity, sdxl  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent))  # tests/ is not a package (importlib import mode)
from tiny_sdxl import build_tiny_references, build_tiny_sdxl, tiny_components  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
OBJECT_INFO = ROOT / "tests" / "fixtures" / "object_info_comfyui_0.8.0.json"


@pytest.fixture(scope="session")
def tiny(tmp_path_factory):
    import torch

    torch.set_num_threads(2)
    return build_tiny_sdxl(tmp_path_factory.mktemp("tiny_sdxl"))


@pytest.fixture(scope="session")
def tiny_refs(tmp_path_factory):
    """Tiny IP-Adapter + image encoder, InstantID (projection + IdentityNet), ArcFace ONNX and DPT depth model."""
    return build_tiny_references(tmp_path_factory.mktemp("tiny_refs"))


@pytest.fixture
def refs_studio(tiny_refs, studio_dirs):
    """The tiny reference/depth models copied into the studio's models folder, where a user puts real ones."""
    for kind in ("ipadapter", "instantid", "insightface", "depth"):
        shutil.copytree(tiny_refs["models"] / kind, studio_dirs["models"] / kind)
    return studio_dirs


@pytest.fixture
def no_network(monkeypatch):
    """Any attempt to open a connection fails, so a hidden hub call would show up as an error."""
    def refuse(*_args, **_kwargs):
        raise OSError("network disabled in this test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


@pytest.fixture
def tiny_studio(tiny, studio_dirs, monkeypatch):
    """The tiny models in the studio's models folder under the names the seaside workflow uses."""
    models = studio_dirs["models"]
    (models / "checkpoints").mkdir()
    shutil.copy(tiny["checkpoint"], models / "checkpoints" / "sd_xl_base_1.0.safetensors")
    (models / "loras").mkdir()
    shutil.copy(tiny["lora"], models / "loras" / "luca_character.safetensors")
    shutil.copy(tiny["lora"], models / "loras" / "seaside_background_style.safetensors")
    shutil.copytree(tiny["controlnet"], models / "controlnet" / "controlnet-openpose-sdxl-1.0")
    monkeypatch.setattr(sdxl, "SDXL_CONFIG_DIR", tiny["config"])  # tiny shapes instead of SDXL base's
    return studio_dirs


def _astronaut() -> np.ndarray:
    try:
        from skimage import data

        return data.astronaut()
    except ImportError:  # a generated stand-in: a bright figure on a gradient
        img = np.zeros((256, 256, 3), np.uint8)
        img[..., 2] = np.linspace(0, 255, 256, dtype=np.uint8)[None]
        img[60:200, 100:156] = 230
        return img


# ---------------------------------------------------------------- loading
def test_single_file_checkpoint_loads_offline_bit_identical(tiny, no_network):
    import torch

    pipe = sdxl.load_sdxl_pipeline(tiny["checkpoint"], tiny["config"])
    reference = tiny_components()
    for name in ("unet", "vae", "text_encoder", "text_encoder_2"):
        loaded, expected = getattr(pipe, name).state_dict(), reference[name].state_dict()
        assert set(expected) <= set(loaded), name
        assert all(torch.equal(loaded[k], expected[k]) for k in expected), f"{name} weights differ after conversion"
    assert sdxl.load_sdxl_pipeline(tiny["checkpoint"], tiny["config"]) is pipe  # cached per process


def test_shipped_configs_describe_sdxl_base():
    """configs/sdxl builds models with SDXL base's parameter counts (built without memory on the meta device)."""
    from accelerate import init_empty_weights
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    cfg = sdxl.SDXL_CONFIG_DIR
    with init_empty_weights():
        unet = UNet2DConditionModel.from_config(UNet2DConditionModel.load_config(cfg / "unet"))
        vae = AutoencoderKL.from_config(AutoencoderKL.load_config(cfg / "vae"))
        te1 = CLIPTextModel(CLIPTextConfig.from_pretrained(cfg / "text_encoder"))
        te2 = CLIPTextModelWithProjection(CLIPTextConfig.from_pretrained(cfg / "text_encoder_2"))
    counts = {name: sum(p.numel() for p in m.parameters()) for name, m in
              (("unet", unet), ("vae", vae), ("te1", te1), ("te2", te2))}
    expected = {"unet": 2.567e9, "vae": 83.65e6, "te1": 123.06e6, "te2": 694.66e6}
    for name, value in expected.items():
        assert abs(counts[name] - value) / value < 0.01, (name, counts[name])
    assert json.loads((cfg / "model_index.json").read_text())["_class_name"] == "StableDiffusionXLPipeline"


def test_missing_tokenizer_vocabulary_is_a_clear_message(tmp_path, studio_dirs, monkeypatch):
    monkeypatch.delenv("COMFYUI_PATH", raising=False)  # a ComfyUI checkout ships the CLIP vocabulary
    shutil.copytree(sdxl.SDXL_CONFIG_DIR, tmp_path / "cfg")
    with pytest.raises(bridge.MissingModel) as info:
        sdxl.load_tokenizers(tmp_path / "cfg")
    assert "vocab.json" in str(info.value) and str(studio_dirs["models"] / "tokenizers" / "clip") in str(info.value)


# ---------------------------------------------------------------- generation
def _generate(pipe, **kw):
    args = dict(seed=3, steps=2, cfg=7.5, width=64, height=64)
    args.update(kw)
    return sdxl.generate(pipe, "a boy running, pixar style", "2d, flat", **args)


def test_lora_weight_changes_the_image_without_reloading(tiny, no_network):
    pipe = sdxl.load_sdxl_pipeline(tiny["checkpoint"], tiny["config"])
    sdxl.apply_loras(pipe, [])
    base = _generate(pipe)
    sdxl.apply_loras(pipe, [(str(tiny["lora"]), 0.8)])
    with_lora = _generate(pipe)
    sdxl.apply_loras(pipe, [(str(tiny["lora"]), 0.0)])
    zero = _generate(pipe)
    assert base.shape == (1, 64, 64, 3) and base.dtype == np.uint8
    assert np.abs(with_lora.astype(int) - base).mean() > 1.0
    assert np.abs(zero.astype(int) - base).max() <= 1  # weight 0 = the plain model
    assert sdxl.load_sdxl_pipeline(tiny["checkpoint"], tiny["config"]) is pipe
    sdxl.apply_loras(pipe, [])


def test_two_controlnets_img2img_and_inpaint(tiny):
    pipe = sdxl.load_sdxl_pipeline(tiny["checkpoint"], tiny["config"])
    sdxl.apply_loras(pipe, [])
    photo = np.asarray(__import__("PIL.Image", fromlist=["Image"]).fromarray(_astronaut()).resize((64, 64)))
    edges = control.canny_edges(photo)
    pose = control.draw_openpose([[32, 10, 1.0]] + [[20 + i * 1.5, 14 + i * 2.5, 1.0] for i in range(17)], 64, 64)
    plain = _generate(pipe)
    one = _generate(pipe, controls=[sdxl.ControlSpec(str(tiny["controlnet"]), pose, 1.0)])
    two = _generate(pipe, controls=[sdxl.ControlSpec(str(tiny["controlnet"]), pose, 1.0),
                                    sdxl.ControlSpec(str(tiny["controlnet"]), edges, 0.7, 0.0, 0.5)])
    assert np.abs(one.astype(int) - plain).mean() > 0.5 and np.abs(two.astype(int) - one).mean() > 0.5
    img2img = _generate(pipe, steps=4, init_image=plain[0], denoise=0.5)
    mask = np.zeros((64, 64), np.uint8)
    mask[16:48, 16:48] = 255
    inpaint = _generate(pipe, steps=4, init_image=plain[0], mask=mask, denoise=1.0,
                        controls=[sdxl.ControlSpec(str(tiny["controlnet"]), pose, 1.0)])
    assert img2img.shape == inpaint.shape == (1, 64, 64, 3)
    assert not np.array_equal(img2img, plain) and not np.array_equal(inpaint, plain)
    with pytest.raises(ValueError, match="multiples of 8"):
        _generate(pipe, width=60)


def test_progress_every_step_and_interruption(tiny, tmp_path):
    pipe = sdxl.load_sdxl_pipeline(tiny["checkpoint"], tiny["config"])
    seen = []
    ctx = bridge.RunContext(output_dir=tmp_path, input_dir=tmp_path, temp_dir=tmp_path,
                            on_progress=lambda node, value, total: seen.append((value, total)))
    token = bridge.set_context(ctx)
    try:
        _generate(pipe, steps=3)
    finally:
        bridge.reset_context(token)
    assert seen == [(1, 3), (2, 3), (3, 3)]
    calls = []
    ctx = bridge.RunContext(output_dir=tmp_path, input_dir=tmp_path, temp_dir=tmp_path,
                            cancelled=lambda: calls.append(1) or len(calls) > 1)
    token = bridge.set_context(ctx)
    try:
        with pytest.raises(bridge.Interrupted):
            _generate(pipe, steps=5)
    finally:
        bridge.reset_context(token)
    assert len(calls) == 2  # stopped at the second step, not after the fifth


def test_seaside_workflow_runs_end_to_end_on_the_embedded_engine(tiny_studio, engine, no_network):
    from PIL import Image

    pose = control.draw_openpose([[32, 10, 1.0]] + [[20 + i * 1.5, 14 + i * 2.5, 1.0] for i in range(17)], 64, 64)
    Image.fromarray(pose).save(tiny_studio["input"] / "luca_running_pose.png")
    graph = json.loads((ROOT / "workflows" / "api" / "character_image_diffusers.api.json").read_text())
    graph["7"]["inputs"].update(steps=2, width=64, height=64)
    events = []
    result = engine.run(graph, on_event=lambda kind, data: events.append((kind, data)))
    assert result.status == "success", result.error or result.node_errors
    [saved] = result.files
    image = np.asarray(Image.open(Path(result.output_dir) / saved))
    assert image.shape == (64, 64, 3) and image.std() > 1.0
    steps = [d["value"] for k, d in events if k == "progress" and d["node"] == "7"]
    assert steps == [1, 2]


def test_missing_checkpoint_and_lora_are_named(studio_dirs, engine):
    graph = graphs.diffusers_character_graph("luca", graphs.CharacterBrief(steps=2, width=64, height=64))
    result = engine.validate(graph)
    messages = " ".join(result.messages())
    assert not result.ok and "sd_xl_base_1.0.safetensors" in messages
    (studio_dirs["models"] / "checkpoints").mkdir()
    (studio_dirs["models"] / "checkpoints" / "sd_xl_base_1.0.safetensors").write_bytes(b"")
    from animation_studio.nodes.image.nodes import SDXLCharacterLora, SDXLCheckpointLoader

    model = SDXLCheckpointLoader().run("sd_xl_base_1.0.safetensors")[0]
    with pytest.raises(bridge.MissingModel, match="luca_character.safetensors"):
        SDXLCharacterLora().run(model, {"name": "luca", "display_name": "Luca", "description": "boy",
                                        "lora": {"file": "luca_character.safetensors", "weight": 0.8}}, -1.0)


# ---------------------------------------------------------------- preprocessors and identity
def test_canny_on_a_real_photo():
    photo = _astronaut()
    edges = control.canny_edges(photo, 100, 200)
    assert edges.shape == photo.shape and set(np.unique(edges)) <= {0, 255}
    assert 0.01 < (edges > 0).mean() < 0.3
    assert (control.canny_edges(photo, 10, 20) > 0).mean() > (edges > 0).mean()  # lower thresholds, more edges
    with pytest.raises(ValueError, match="low"):
        control.canny_edges(photo, 300, 100)


def test_pose_skeleton_on_a_real_photo():
    pytest.importorskip("mediapipe.python.solutions.pose", reason="MediaPipe with bundled pose model not installed")
    photo = _astronaut()
    keypoints = control.pose_keypoints(photo)
    assert len(keypoints) == 18
    names = dict(zip(control.OPENPOSE_NAMES, keypoints))
    for part in ("nose", "neck", "r_shoulder", "l_shoulder"):
        assert names[part][2] > 0.5, part
    assert names["nose"][1] < names["neck"][1]  # head above shoulders
    assert names["r_shoulder"][0] < names["l_shoulder"][0]  # the person's right is on the image's left
    skeleton, as_json = control.pose_skeleton(photo)
    assert skeleton.shape == photo.shape and (skeleton.max(axis=2) > 0).mean() > 0.005
    assert json.loads(as_json)["keypoints"] == keypoints
    assert control.pose_similarity(keypoints, keypoints) == 1.0
    shifted = [[x + 200, y, c] for x, y, c in keypoints]
    assert control.pose_similarity(keypoints, shifted) == 0.0


def test_depth_ipadapter_and_instantid_name_their_missing_models(studio_dirs):
    photo = _astronaut()
    with pytest.raises(bridge.MissingModel) as info:
        control.depth_map(photo, "depth-anything-v2-small")
    assert "depth-anything-v2-small" in str(info.value) and str(studio_dirs["models"] / "depth") in str(info.value)
    with pytest.raises(bridge.MissingModel) as info:
        identity.ip_adapter_reference(photo, "ip-adapter_sdxl.safetensors", 0.6)
    assert str(studio_dirs["models"] / "ipadapter") in str(info.value)
    (studio_dirs["models"] / "ipadapter").mkdir()
    (studio_dirs["models"] / "ipadapter" / "ip-adapter_sdxl.safetensors").write_bytes(b"")
    with pytest.raises(bridge.MissingModel, match="image_encoder"):
        identity.ip_adapter_reference(photo, "ip-adapter_sdxl.safetensors", 0.6)
    with pytest.raises(bridge.MissingModel) as info:
        identity.instantid_reference(photo, 0.8, 0.8)
    assert "ip-adapter.bin" in str(info.value) and str(studio_dirs["models"] / "instantid") in str(info.value)


def test_depth_map_from_a_models_folder_dpt_on_a_real_photo(refs_studio):
    from animation_studio.nodes.core import numpy_to_image
    from animation_studio.nodes.image.nodes import DepthMap

    assert DepthMap.INPUT_TYPES()["required"]["model_name"][0] == ["tiny-dpt"]
    photo = _astronaut()[40:340, 100:300]  # not square: the map must come back at the input's H x W
    depth = control.depth_map(photo, "tiny-dpt")
    assert depth.shape == photo.shape and depth.dtype == np.uint8
    assert np.array_equal(depth[..., 0], depth[..., 1]) and np.array_equal(depth[..., 0], depth[..., 2])
    assert depth.min() == 0 and depth.max() == 255 and depth.std() > 5  # normalised to the full range
    assert np.array_equal(control.depth_map(photo, "tiny-dpt"), depth)  # cached model, deterministic
    assert not np.array_equal(control.depth_map(photo[::-1].copy(), "tiny-dpt"), depth)  # it reads the image
    [out] = DepthMap().run(numpy_to_image(photo[None]), "tiny-dpt")
    assert tuple(out.shape) == (1, 300, 200, 3) and float(out.max()) == 1.0


def _difference(a, b) -> float:
    return float(np.abs(a.astype(int) - b).mean())


def test_ip_adapter_reference_changes_the_image_and_scale_zero_does_not(tiny, refs_studio, no_network):
    from animation_studio.nodes.core import numpy_to_image
    from animation_studio.nodes.image.nodes import IPAdapterReference

    pipe = sdxl.load_sdxl_pipeline(tiny["checkpoint"], tiny["config"])
    sdxl.apply_loras(pipe, [])
    photo = _astronaut()
    try:
        plain = _generate(pipe, extra=identity.attach_reference(pipe, None)[0])
        [reference] = IPAdapterReference().run(numpy_to_image(photo[None]), "ip-adapter_sdxl.safetensors", 1.0)
        extra, controls = identity.attach_reference(pipe, reference)
        # The tiny encoder from models/ipadapter/image_encoder (SDXL's real one projects to 1280).
        assert controls == [] and pipe.image_encoder.config.projection_dim == 32
        with_ref = _generate(pipe, extra=extra)
        other = _generate(pipe, extra=identity.attach_reference(pipe, {**reference, "image": photo[::-1].copy()})[0])
        zero = _generate(pipe, extra=identity.attach_reference(pipe, {**reference, "scale": 0.0})[0])
    finally:
        identity.attach_reference(pipe, None)
    assert _difference(with_ref, plain) > 1.0
    assert _difference(other, with_ref) > 0.2  # a different reference image, a different result
    assert np.abs(zero.astype(int) - plain).max() <= 1  # scale 0 = no reference
    assert getattr(pipe, "_studio_ip_adapter", None) is None
    assert np.array_equal(_generate(pipe), plain)  # unloaded cleanly


def test_instantid_runs_with_face_embedding_and_keypoints(tiny, refs_studio, no_network, monkeypatch):
    from animation_studio.nodes.core import numpy_to_image
    from animation_studio.nodes.image.nodes import InstantIDReference, SDXLSampler

    pytest.importorskip("insightface")
    pytest.importorskip("mediapipe.python.solutions.face_mesh", reason="MediaPipe with bundled face model not installed")
    from animation_studio.nodes.face import identity as faces

    faces._ARCFACE.clear()
    assert InstantIDReference.INPUT_TYPES()["required"]["insightface_pack"][0] == ["antelopev2"]
    photo = _astronaut()[20:220, 120:320]  # the face fills the frame, as in a face reference shot
    [reference] = InstantIDReference().run(numpy_to_image(photo[None]), 0.8, 1.0, "antelopev2")
    kps = np.array(reference["kps"])
    # Five keypoints on the astronaut's face (eyes, nose, mouth corners), image-left eye first.
    assert kps.shape == (5, 2) and ((kps > [60, 60]) & (kps < [150, 140])).all()
    assert kps[0, 0] < kps[1, 0] and kps[2, 1] > kps[0, 1] and kps[3, 1] > kps[2, 1]
    assert len(reference["embedding"]) == 512 and np.linalg.norm(reference["embedding"]) > 0
    pipe = sdxl.load_sdxl_pipeline(tiny["checkpoint"], tiny["config"])
    sdxl.apply_loras(pipe, [])
    seen = {}

    def spy(_module, _args, kwargs, _output):  # a forward hook sees the inputs after the pre-hooks' changes
        seen["states"] = kwargs["encoder_hidden_states"]

    identitynet = sdxl.load_controlnet(reference["identitynet"])
    handle = identitynet.register_forward_hook(spy, with_kwargs=True)
    try:
        extra, controls = identity.attach_reference(pipe, reference)
        [face_control] = controls
        assert Path(face_control.controlnet).name == "ControlNetModel"
        keypoint_image = face_control.image
        assert keypoint_image.shape == photo.shape and (keypoint_image.max(axis=2) > 0).mean() > 0.02
        assert keypoint_image[round(kps[2, 1]), round(kps[2, 0])].tolist() == [0, 0, 255]  # nose point colour
        out = _generate(pipe, extra=extra, controls=controls)
        model = {"checkpoint": str(tiny["checkpoint"]), "config": str(tiny["config"]), "loras": []}
        [via_node] = SDXLSampler().run(model, "a boy running, pixar style", "2d, flat", 3, 2, 7.5, 64, 64, 1.0,
                                       reference=reference)
        assert np.array_equal((via_node.numpy() * 255 + 0.5).astype(np.uint8), out)  # the node takes the same path
        # IdentityNet read the projected face tokens, not the prompt (77 text tokens): [negative, positive] x 4 x 96.
        assert seen["states"].shape == (2, 4, 96) and torch_equal(seen["states"], face_control.hidden_states)
        assert not torch_equal(seen["states"][0], seen["states"][1])
        other_face = {**reference, "embedding": (-np.asarray(reference["embedding"])).tolist()}
        out_other_face = _generate(pipe, **_call(identity.attach_reference(pipe, other_face)))
        blank_keypoints = [dataclasses.replace(face_control, image=np.zeros_like(keypoint_image))]
        out_blank_keypoints = _generate(pipe, extra=extra, controls=blank_keypoints)
        no_identitynet = _generate(pipe, extra=extra)
        out_unguided = _generate(pipe, cfg=1.0, **_call(identity.attach_reference(pipe, reference, guided=False)))
        assert seen["states"].shape == (1, 4, 96)  # without guidance, only the face's own tokens
    finally:
        handle.remove()
        identity.attach_reference(pipe, None)
        faces._ARCFACE.clear()
    plain = _generate(pipe)
    assert out.shape == out_unguided.shape == (1, 64, 64, 3)
    assert _difference(out, plain) > 1.0
    assert _difference(out_other_face, out) > 1.0  # the embedding steers the image
    assert _difference(out_blank_keypoints, out) > 0.1  # so does the keypoint image (same inputs: identical output)
    assert _difference(no_identitynet, out) > 1.0  # IdentityNet's own contribution


def _call(extra_and_controls) -> dict:
    extra, controls = extra_and_controls
    return {"extra": extra, "controls": controls}


def torch_equal(a, b) -> bool:
    import torch

    return bool(torch.equal(a, b))


def test_instantid_without_a_face_says_to_use_ip_adapter(refs_studio):
    pytest.importorskip("insightface")
    pytest.importorskip("mediapipe.python.solutions.face_mesh", reason="MediaPipe with bundled face model not installed")
    from animation_studio.nodes.face import identity as faces

    faces._ARCFACE.clear()
    blank = np.full((128, 128, 3), 90, np.uint8)
    with pytest.raises(ValueError, match="IP-Adapter"):
        identity.instantid_reference(blank, 0.8, 0.8, "antelopev2")
    with pytest.raises(bridge.MissingModel, match="buffalo_l"):
        identity.instantid_reference(blank, 0.8, 0.8, "buffalo_l")
    faces._ARCFACE.clear()


# ---------------------------------------------------------------- graph recipes and shipped workflows
def _comfyui_catalog_with_models(graph: dict) -> Catalog:
    """The real ComfyUI /object_info, with the model files the graph names added to the combo lists
    (the captured server had an empty models folder)."""
    if not OBJECT_INFO.is_file():
        pytest.skip(f"ComfyUI /object_info fixture not captured yet ({OBJECT_INFO.name})")
    info = copy.deepcopy(json.loads(OBJECT_INFO.read_text()))
    for node in graph.values():
        for field in ("ckpt_name", "lora_name", "control_net_name", "image"):
            value = node["inputs"].get(field)
            spec = info[node["class_type"]]["input"]["required"].get(field)
            if isinstance(value, str) and spec and isinstance(spec[0], list) and value not in spec[0]:
                spec[0].append(value)
    return Catalog.from_object_info(info, source="comfyui-0.8.0")


def test_native_graph_validates_against_real_comfyui_object_info():
    graph = graphs.native_character_graph("luca")
    result = validate_graph(graph, _comfyui_catalog_with_models(graph))
    assert result.ok, result.summary()
    assert {n["class_type"] for n in graph.values()} >= {
        "CheckpointLoaderSimple", "LoraLoader", "CLIPTextEncode", "ControlNetLoader", "ControlNetApplyAdvanced",
        "KSampler", "VAEDecode", "SaveImage"}
    assert graph["2"]["inputs"]["strength_model"] == pytest.approx(0.8)
    assert graph["10"]["inputs"]["steps"] == 30 and graph["10"]["inputs"]["cfg"] == pytest.approx(7.5)
    assert "pixar style" in graph["4"]["inputs"]["text"] and graph["5"]["inputs"]["text"].startswith("2d, flat")


def test_shipped_workflows_match_the_recipes_and_validate(tiny_studio):
    native = json.loads((ROOT / "workflows" / "api" / "character_image_native.api.json").read_text())
    diffusers_graph = json.loads((ROOT / "workflows" / "api" / "character_image_diffusers.api.json").read_text())
    assert native == graphs.native_character_graph("luca")
    assert diffusers_graph == graphs.diffusers_character_graph("luca")
    (tiny_studio["input"] / "luca_running_pose.png").write_bytes(b"")
    result = validate_graph(diffusers_graph, pack_catalog())
    assert result.ok, result.summary()
    assert validate_graph(native, _comfyui_catalog_with_models(native)).ok
