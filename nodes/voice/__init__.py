"""Voice nodes: character speech (GPT-SoVITS / XTTS-v2 / offline Piper), analysis, quality gate, lip sync.

Audio travels as ComfyUI's AUDIO dict {"waveform": [B,C,T], "sample_rate": int}. The real work lives in
the plain modules of this package; the classes below only convert types and check inputs.
GPT-SoVITS server URL: the node input, else the env var ANIMATION_STUDIO_GPT_SOVITS_URL, else
http://127.0.0.1:9880.
"""
from __future__ import annotations

import json

from .. import bridge
from .asr import TranscribeSpeech
from .emotion import EMOTIONS
from .lipsync import LipSyncVideo
from .text import LANGUAGES

CATEGORY = "Animation Studio/voice"
DEFAULT_LANGUAGE = "profile default"


def _profiles() -> list[str]:
    from .profiles import list_profiles

    return list_profiles() or ["luca"]


def _common_speech_inputs() -> dict:
    return {
        "text": ("STRING", {"default": "Silenzio, Bruno!", "multiline": True}),
        "emotion": (EMOTIONS, {"default": "neutral"}),
        "strength": ("FLOAT", {"default": 0.7, "min": 0.0, "max": 1.0, "step": 0.05}),
    }


def _report_json(report: dict) -> str:
    return json.dumps(report, ensure_ascii=False, default=str)


class CharacterVoice:
    CATEGORY = CATEGORY
    RETURN_TYPES = ("AUDIO", "STRING")
    RETURN_NAMES = ("audio", "report")
    FUNCTION = "run"
    DESCRIPTION = ("A character's line from its voice profile (configs/voices/<character>.yaml): backend 'auto' "
                   "tries the profile's backends in order (GPT-SoVITS server, XTTS-v2 model, then the offline "
                   "Piper voice) and reports which one spoke and why others were skipped.")

    @classmethod
    def INPUT_TYPES(cls):
        from .speak import BACKEND_CHOICES

        return {"required": {
            **_common_speech_inputs(),
            "character": (_profiles(), {"default": "luca"}),
            "language": ([DEFAULT_LANGUAGE] + LANGUAGES, {"default": DEFAULT_LANGUAGE,
                                                          "tooltip": "en-it = English with an Italian accent"}),
            "backend": (BACKEND_CHOICES, {"default": "auto"}),
            "reference_variant": ("INT", {"default": 0, "min": 0, "max": 99,
                                          "tooltip": "which reference clip of the emotion (retries pick the next)"}),
            "server_url": ("STRING", {"default": "", "tooltip": "GPT-SoVITS api_v2 URL; empty = setting/default"}),
        }}

    def run(self, text, emotion, strength, character, language, backend, reference_variant, server_url):
        from .audio import to_audio
        from .speak import speak

        lang = "" if language == DEFAULT_LANGUAGE else language
        samples, rate, report = speak(text, character, emotion, strength, lang, backend, reference_variant,
                                      server_url)
        return (to_audio(samples, rate), _report_json(report))


class PiperTTS:
    CATEGORY = CATEGORY
    RETURN_TYPES = ("AUDIO", "STRING")
    RETURN_NAMES = ("audio", "report")
    FUNCTION = "run"
    DESCRIPTION = ("Offline neural voice (Piper, joe-us voice from PyPI; no download, no GPU). Emotion becomes "
                   "rate/pitch/energy/expressiveness; 'it' speaks Italian phonemes with the English voice, "
                   "'en-it' English with Italian-accent phoneme substitutions.")

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            **_common_speech_inputs(),
            "language": (LANGUAGES, {"default": "en"}),
            "pitch_semitones": ("FLOAT", {"default": 0.0, "min": -12.0, "max": 12.0, "step": 0.5}),
            "rate": ("FLOAT", {"default": 1.0, "min": 0.5, "max": 2.0, "step": 0.05}),
        }}

    def run(self, text, emotion, strength, language, pitch_semitones, rate):
        from . import piper_tts
        from .audio import to_audio
        from .emotion import prosody_for
        from .text import check_language, clean_text, split_sentences

        text = clean_text(text)
        language = check_language(language, piper_tts.LANGUAGES, "Piper")
        progress = bridge.ProgressBar(len(split_sentences(text)), "speech")
        samples, sr, details = piper_tts.synthesize(text, language, prosody_for(emotion, strength),
                                                    pitch_semitones, rate, 1.0, progress)
        return (to_audio(samples, sr), _report_json({"backend": "piper", "emotion": emotion, "strength": strength,
                                                     "language": language, "duration_s": round(samples.size / sr, 3),
                                                     "details": details}))


class GPTSoVITSTTS:
    CATEGORY = CATEGORY
    RETURN_TYPES = ("AUDIO",)
    FUNCTION = "run"
    DESCRIPTION = ("Speech from a running GPT-SoVITS api_v2 server (python api_v2.py -a 127.0.0.1 -p 9880 "
                   "-c GPT_SoVITS/configs/tts_infer.yaml): reference clip from the input folder, optional "
                   "fine-tuned GPT/SoVITS weights.")

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "text": ("STRING", {"default": "Silence, Bruno!", "multiline": True}),
            "language": (["en", "en-it"], {"default": "en"}),
            "reference_audio": ("STRING", {"default": "luca/neutral.wav", "tooltip": "file in the input folder"}),
            "prompt_text": ("STRING", {"default": "", "tooltip": "what is said in the reference clip"}),
            "prompt_language": (["en", "en-it"], {"default": "en"}),
            "gpt_weights": ("STRING", {"default": ""}),
            "sovits_weights": ("STRING", {"default": ""}),
            "server_url": ("STRING", {"default": ""}),
        }}

    def run(self, text, language, reference_audio, prompt_text, prompt_language, gpt_weights, sovits_weights,
            server_url):
        from . import sovits
        from .audio import to_audio
        from .profiles import load_reference
        from .text import clean_text

        text = clean_text(text)
        ref = bridge.safe_input_path(reference_audio)
        load_reference(ref)
        url = sovits.server_url(server_url)
        sovits.set_weights(url, gpt_weights, sovits_weights)
        samples, rate = sovits.tts(url, text, language, str(ref), prompt_text, prompt_language)
        return (to_audio(samples, rate),)


class XTTSTTS:
    CATEGORY = CATEGORY
    RETURN_TYPES = ("AUDIO",)
    FUNCTION = "run"
    DESCRIPTION = ("XTTS-v2 (coqui-tts) zero-shot cloning from a reference clip in the input folder; the model "
                   "folder models/xtts_v2 holds config.json, model.pth and vocab.json.")

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "text": ("STRING", {"default": "Silenzio, Bruno!", "multiline": True}),
            "language": (LANGUAGES, {"default": "it"}),
            "reference_audio": ("STRING", {"default": "luca/neutral.wav"}),
            "model": ("STRING", {"default": "xtts_v2"}),
            "temperature": ("FLOAT", {"default": 0.7, "min": 0.05, "max": 1.5, "step": 0.05}),
        }}

    def run(self, text, language, reference_audio, model, temperature):
        from . import xtts
        from .audio import to_audio
        from .profiles import load_reference
        from .text import check_language, clean_text

        text = clean_text(text)
        language = check_language(language, xtts.LANGUAGES, "XTTS-v2")
        xtts.model_folder(model)  # names the missing folder before anything else is checked
        ref = bridge.safe_input_path(reference_audio)
        load_reference(ref)
        samples, rate = xtts.synthesize(text, language, ref, model, temperature)
        return (to_audio(samples, rate),)


class VoiceAnalysis:
    CATEGORY = CATEGORY
    RETURN_TYPES = ("STRING", "FLOAT", "FLOAT")
    RETURN_NAMES = ("report", "similarity", "duration_s")
    FUNCTION = "run"
    DESCRIPTION = ("Evaluator figures for speech: duration, speech rate, LUFS/RMS loudness, clipping, silence, "
                   "pitch, speaker similarity to the character's reference clips (speaker-embedding ONNX model "
                   "from models/speaker_embedding when present, MFCC-statistics cosine otherwise) and Wav2Vec2 "
                   "features when models/wav2vec2 holds a model.")

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "audio": ("AUDIO",),
            "text": ("STRING", {"default": "", "multiline": True, "tooltip": "the spoken text (for speech rate)"}),
            "character": (["none"] + _profiles(), {"default": "none"}),
        }, "optional": {
            "reference": ("AUDIO",),
            "synthesis_report": ("STRING", {"forceInput": True}),
        }}

    def run(self, audio, text, character, reference=None, synthesis_report=None):
        from .analysis import analyze
        from .audio import from_audio
        from .speak import character_references

        samples, rate = from_audio(audio)
        if reference is not None:
            refs, source = [from_audio(reference, "reference")], "reference input"
        elif character != "none":
            refs, source = character_references(character)
        else:
            refs, source = [], "none"
        report = analyze(samples, rate, text, refs)
        report["speaker"]["reference"] = source
        if synthesis_report:
            try:
                report["synthesis"] = json.loads(synthesis_report)
            except ValueError:
                report["synthesis"] = synthesis_report
        sim = report["speaker"]["similarity"]
        return (_report_json(report), float(sim) if sim is not None else 0.0, float(report["duration_s"]))


class VoiceQualityCheck:
    CATEGORY = CATEGORY
    RETURN_TYPES = ("BOOLEAN", "STRING")
    RETURN_NAMES = ("approved", "verdict")
    FUNCTION = "run"
    OUTPUT_NODE = True
    DESCRIPTION = ("Approve speech from a Voice Analysis report (similarity, duration, rate, clipping, silence) or "
                   "say what failed and what to retry (another reference clip, a lower emotion strength).")

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "report": ("STRING", {"forceInput": True}),
            "min_similarity": ("FLOAT", {"default": 0.75, "min": -1.0, "max": 1.0, "step": 0.01}),
            "min_duration_s": ("FLOAT", {"default": 0.3, "min": 0.0, "max": 600.0, "step": 0.1}),
            "max_duration_s": ("FLOAT", {"default": 30.0, "min": 0.1, "max": 3600.0, "step": 0.1}),
        }}

    def run(self, report, min_similarity, min_duration_s, max_duration_s):
        from .analysis import quality_verdict

        try:
            data = json.loads(report)
        except ValueError:
            raise ValueError("Input 'report' is not a Voice Analysis JSON report.") from None
        if not isinstance(data, dict) or "duration_s" not in data:
            raise ValueError("Input 'report' is not a Voice Analysis JSON report (no duration_s).")
        verdict = quality_verdict(data, min_similarity, min_duration_s, max_duration_s)
        return {"ui": {"text": [json.dumps(verdict)]}, "result": (verdict["approved"], json.dumps(verdict))}


class LipSync:
    CATEGORY = CATEGORY
    RETURN_TYPES = ("IMAGE", "STRING")
    RETURN_NAMES = ("frames", "report")
    FUNCTION = "run"
    DESCRIPTION = ("Lip-synced frames for speech: Wav2Lip from models/wav2lip when present ('auto'), else a "
                   "toon-friendly mouth opened by the audio energy, placed by face landmarks or the mouth box. "
                   "The report says which path was used.")

    @classmethod
    def INPUT_TYPES(cls):
        from .lipsync import LIP_SYNC_INPUTS

        return {"required": dict(LIP_SYNC_INPUTS)}

    def run(self, image, audio, fps, method, mouth_box, checkpoint):
        from ..core import image_to_numpy, numpy_to_image
        from .audio import from_audio
        from .lipsync import lip_sync

        samples, rate = from_audio(audio)
        frames, report = lip_sync(image_to_numpy(image), samples, rate, fps, method, mouth_box, checkpoint)
        return (numpy_to_image(frames), _report_json(report))


_NODES = {
    "CharacterVoice": (CharacterVoice, "Character Voice"),
    "PiperTTS": (PiperTTS, "Offline Voice (Piper)"),
    "GPTSoVITSTTS": (GPTSoVITSTTS, "GPT-SoVITS Speech (server)"),
    "XTTSTTS": (XTTSTTS, "XTTS-v2 Speech"),
    "VoiceAnalysis": (VoiceAnalysis, "Voice Analysis"),
    "VoiceQualityCheck": (VoiceQualityCheck, "Voice Quality Check"),
    "LipSync": (LipSync, "Lip Sync"),
    "TranscribeSpeech": (TranscribeSpeech, "Transcribe Speech"),
    "LipSyncVideo": (LipSyncVideo, "Lip Sync (streamed video)"),
}
NODE_CLASS_MAPPINGS, NODE_DISPLAY_NAME_MAPPINGS = bridge.node_mappings(_NODES)
