"""Model-backed voice paths: XTTS-v2 messages, Wav2Lip with a random-weight checkpoint built in code, the
energy lip-sync fallback, and the optional speaker-embedding / Wav2Vec2 models of the analysis."""
from __future__ import annotations

import importlib.util
import json

import numpy as np
import pytest

from animation_studio.nodes import bridge
from animation_studio.nodes.voice import LipSync, XTTSTTS, analysis, lipsync
from animation_studio.nodes.voice import audio as A

torch = pytest.importorskip("torch")
RATE = 16000


def _tone_after_silence(seconds=1.0, silent=0.5):
    t = np.arange(int(RATE * seconds)) / RATE
    wave = 0.5 * np.sin(2 * np.pi * 200 * t) * (0.7 + 0.3 * np.sin(2 * np.pi * 4 * t))
    wave[: int(RATE * silent)] = 0.0
    return wave.astype(np.float32)


def _face_image(h=64, w=64):
    img = np.zeros((1, h, w, 3), np.float32)
    img[..., 0], img[..., 1], img[..., 2] = 0.9, 0.7, 0.6  # skin
    img[:, 42:46, 24:40] = [0.7, 0.2, 0.25]                # closed lips
    return torch.from_numpy(img)


def test_xtts_missing_model_names_the_folder(studio_dirs):
    with pytest.raises(bridge.MissingModel, match=r"'xtts_v2' not found.*config\.json.*models"):
        XTTSTTS().run("Ciao", "it", "ref.wav", "xtts_v2", 0.7)
    folder = studio_dirs["models"] / "xtts_v2"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    with pytest.raises(bridge.MissingModel, match="lacks model.pth, vocab.json"):
        XTTSTTS().run("Ciao", "it", "ref.wav", "xtts_v2", 0.7)


@pytest.mark.skipif(importlib.util.find_spec("TTS") is not None, reason="coqui-tts is installed here")
def test_xtts_without_coqui_names_the_package(studio_dirs):
    folder = studio_dirs["models"] / "xtts_v2"
    folder.mkdir()
    for name in ("config.json", "model.pth", "vocab.json"):
        (folder / name).write_text("{}")
    import soundfile as sf

    sf.write(str(studio_dirs["input"] / "ref.wav"), _tone_after_silence(2.0, 0.0), RATE)
    with pytest.raises(bridge.MissingDependency, match=r"torchaudio|coqui-tts"):
        XTTSTTS().run("Ciao Luca", "it", "ref.wav", "xtts_v2", 0.7)


def test_energy_lip_sync_opens_the_mouth_with_the_voice(studio_dirs):
    audio = A.to_audio(_tone_after_silence(), RATE)
    frames, report = LipSync().run(_face_image(), audio, 10.0, "auto", "24,38,16,10", "")
    data = json.loads(report)
    assert data["method"] == "energy" and "Wav2Lip checkpoint" in data["wav2lip_unavailable"]
    assert data["mouth_source"] == "mouth_box input"
    assert frames.shape == (10, 64, 64, 3)
    src = _face_image()[0]
    mouth = (slice(36, 52), slice(22, 42))
    change = [float((frames[i][mouth] - src[mouth]).abs().mean()) for i in range(10)]
    assert max(change[:4]) < 3e-3          # silent first half: mouth untouched (uint8 rounding only)
    assert min(change[6:]) > 0.02          # speaking: mouth open (darker interior, jaw moved)
    opening = lipsync.openness_per_frame(_tone_after_silence(), RATE, 10.0, 10)
    assert opening[:4].max() < 0.05 < opening[6:].min()


def test_lip_sync_bad_inputs(studio_dirs):
    audio = A.to_audio(_tone_after_silence(), RATE)
    with pytest.raises(ValueError, match="mouth_box"):
        LipSync().run(_face_image(), audio, 10.0, "energy", "1,2,3", "")
    with pytest.raises(ValueError, match="No mouth position"):
        LipSync().run(_face_image(), audio, 10.0, "energy", "", "")  # a flat image has no face to find
    with pytest.raises(bridge.MissingModel, match="wav2lip"):
        LipSync().run(_face_image(), audio, 10.0, "wav2lip", "24,38,16,10", "")


def test_wav2lip_loads_a_checkpoint_and_paints_the_lower_face(studio_dirs):
    from animation_studio.nodes.voice import wav2lip

    torch.manual_seed(0)
    model = wav2lip.build_model()
    folder = studio_dirs["models"] / "wav2lip"
    folder.mkdir()
    # Released checkpoints were saved from DataParallel: keys carry a "module." prefix.
    torch.save({"state_dict": {f"module.{k}": v for k, v in model.state_dict().items()}}, folder / "wav2lip_gan.pth")
    image = torch.rand(1, 96, 128, 3)
    # One video frame (0.2 s at 5 fps) keeps the 36M-parameter network's CPU time small.
    frames, report = LipSync().run(image, A.to_audio(_tone_after_silence(0.2, 0.0), RATE), 5.0, "auto",
                                   "0.4,0.6,0.2,0.1", "")
    data = json.loads(report)
    assert data["method"] == "wav2lip" and frames.shape == (1, 96, 128, 3)
    x0, y0, x1, y1 = data["face_box"]
    assert (frames[0, y0:y1, x0:x1] - image[0, y0:y1, x0:x1]).abs().mean() > 0.05
    assert torch.allclose(frames[0, :, x1:], image[0, :, x1:], atol=0.5 / 255 + 1e-6)  # outside the box: unchanged
    (folder / "syncnet.pth").parent.mkdir(exist_ok=True)
    torch.save({"state_dict": {"conv.weight": torch.zeros(1)}}, folder / "syncnet.pth")
    with pytest.raises(ValueError, match="does not match the Wav2Lip network"):
        wav2lip.load_model(str(folder / "syncnet.pth"))
    mel = wav2lip.mel_spectrogram(_tone_after_silence(1.0, 0.0), RATE)
    assert mel.shape[0] == 80 and abs(mel.shape[1] - 81) <= 1 and -4 <= mel.min() < mel.max() <= 4


def test_speaker_embedding_onnx_model_is_used_when_present(studio_dirs):
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    weight = numpy_helper.from_array(rng.standard_normal((80, 16)).astype(np.float32), "w")
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["feats", "w"], ["h"]), helper.make_node("Relu", ["h"], ["r"]),
         helper.make_node("ReduceMean", ["r"], ["embedding"], axes=[1], keepdims=0)],
        "tiny_speaker", [helper.make_tensor_value_info("feats", TensorProto.FLOAT, [1, None, 80])],
        [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, [1, 16])], [weight])
    folder = studio_dirs["models"] / "speaker_embedding"
    folder.mkdir()
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), folder / "tiny.onnx")
    voice = _tone_after_silence(1.5, 0.0)
    result = analysis.speaker_similarity(voice, RATE, [(voice, RATE)])
    assert result["embedder"] == "onnx:tiny.onnx" and result["similarity"] == pytest.approx(1.0, abs=1e-4)


def test_wav2vec2_features_when_a_model_folder_is_present(studio_dirs):
    transformers = pytest.importorskip("transformers")
    config = transformers.Wav2Vec2Config(hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                                         intermediate_size=64, conv_dim=(16, 16), conv_stride=(5, 4),
                                         conv_kernel=(10, 4), num_conv_pos_embeddings=16,
                                         num_conv_pos_embedding_groups=2)
    torch.manual_seed(0)
    transformers.Wav2Vec2Model(config).save_pretrained(studio_dirs["models"] / "wav2vec2" / "tiny")
    voice = _tone_after_silence(1.0, 0.0)
    report = analysis.wav2vec2_features(voice, RATE, [(voice, RATE)])
    assert report["available"] and report["model"] == "tiny" and report["dim"] == 32
    assert report["frames"] > 100 and report["similarity"] == pytest.approx(1.0, abs=1e-4)
