"""XTTS-v2 (coqui-tts) from a local model folder: models/xtts_v2/{config.json, model.pth, vocab.json, ...}.

Zero-shot: the speaker (and its emotion and accent) comes from the reference clip.
"en-it" is English text with an Italian reference clip, which carries the accent.
coqui-tts needs torchaudio, which has no CPU wheel for the torch in this project's
CI, so the tests cover the missing-model and missing-dependency paths only.
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from .. import bridge

LANGUAGES = ["en", "it", "en-it"]  # XTTS-v2 has 17; the studio's profiles use these
XTTS_LANG = {"en": "en", "it": "it", "en-it": "en"}
REQUIRED_FILES = ("config.json", "model.pth", "vocab.json")


def model_folder(name: str = "xtts_v2") -> Path:
    # XTTS-v2 is one folder directly under models/ (models/xtts_v2), so its name is the ComfyUI "kind".
    for root in bridge.model_folders(name):
        if root.is_dir():
            missing = [f for f in REQUIRED_FILES if not (root / f).is_file()]
            if missing:
                raise bridge.MissingModel(f"XTTS-v2 model folder {root} lacks {', '.join(missing)}; "
                                          f"it needs {', '.join(REQUIRED_FILES)} (from the XTTS-v2 release).")
            return root
    where = ", ".join(str(f) for f in bridge.model_folders(name))
    raise bridge.MissingModel(f"XTTS-v2 model folder '{name}' not found. Put config.json, model.pth and vocab.json "
                              f"in {where}.")


@lru_cache(maxsize=2)
def load_model(folder: str):
    bridge.require("torchaudio", "voice", "torchaudio (needed by coqui-tts)")
    configs = bridge.require("TTS.tts.configs.xtts_config", "voice", "coqui-tts")
    models = bridge.require("TTS.tts.models.xtts", "voice", "coqui-tts")
    config = configs.XttsConfig()
    config.load_json(str(Path(folder) / "config.json"))
    model = models.Xtts.init_from_config(config)
    model.load_checkpoint(config, checkpoint_dir=str(folder), eval=True)
    return model, config


def synthesize(text: str, language: str, reference_wav: Path, model_name: str = "xtts_v2",
               temperature: float = 0.7, speed: float = 1.0):
    """(mono float32, 24000 Hz) from XTTS-v2, cloning the reference clip's voice."""
    import numpy as np

    folder = model_folder(model_name)
    model, config = load_model(str(folder))
    torch = bridge.require("torch", "voice")
    with torch.inference_mode():
        gpt_latent, speaker_embedding = model.get_conditioning_latents(audio_path=[str(reference_wav)])
        out = model.inference(text, XTTS_LANG[language], gpt_latent, speaker_embedding,
                              temperature=float(temperature), speed=float(speed), enable_text_splitting=True)
    wav = out["wav"]
    wav = wav.detach().cpu().numpy() if hasattr(wav, "detach") else np.asarray(wav)
    return wav.astype(np.float32).reshape(-1), int(config.audio.output_sample_rate)
