"""Client of the GPT-SoVITS api_v2 HTTP server (the real model runs in its own process/GPU).

Server URL: the environment variable ANIMATION_STUDIO_GPT_SOVITS_URL, else
http://127.0.0.1:9880 (GPT-SoVITS' own default); a node input can override it.
The reference clip path is sent as a path: the server reads it from its own
file system, so server and studio must share the folder (same machine or a mount).
"""
from __future__ import annotations

import json
import os

from .audio import check_samples, read_wav_bytes

DEFAULT_URL = "http://127.0.0.1:9880"
URL_ENV = "ANIMATION_STUDIO_GPT_SOVITS_URL"
# GPT-SoVITS v2 text languages (v2: zh, en, ja, ko, yue). Italian is not one of them.
TEXT_LANG = {"en": "en", "en-it": "en"}
START_HINT = ("Start it from the GPT-SoVITS folder: python api_v2.py -a 127.0.0.1 -p 9880 "
              "-c GPT_SoVITS/configs/tts_infer.yaml (or set ANIMATION_STUDIO_GPT_SOVITS_URL to where it runs).")


class ServerUnavailable(ConnectionError):
    """No GPT-SoVITS server answers at the URL."""


def server_url(override: str = "") -> str:
    return (override or os.environ.get(URL_ENV) or DEFAULT_URL).rstrip("/")


def _error_text(response) -> str:
    try:
        data = response.json()
    except ValueError:
        return response.text[:300]
    if isinstance(data, dict):
        parts = [str(data.get(k)) for k in ("message", "Exception", "detail") if data.get(k)]
        return "; ".join(parts) or json.dumps(data)[:300]
    return json.dumps(data)[:300]


def _get(url: str, path: str, params: dict, timeout: float):
    import requests

    try:
        return requests.get(f"{url}{path}", params=params, timeout=timeout)
    except requests.ConnectionError:
        raise ServerUnavailable(f"No GPT-SoVITS server answers at {url}. {START_HINT}") from None
    except requests.Timeout:
        raise ServerUnavailable(f"The GPT-SoVITS server at {url} did not answer {path} within {timeout:.0f} s.") from None


def set_weights(url: str, gpt_weights: str, sovits_weights: str, timeout: float = 120.0) -> None:
    """Switch the server to the character's fine-tuned GPT and SoVITS weights (no-op for empty names)."""
    for path, weights in (("/set_gpt_weights", gpt_weights), ("/set_sovits_weights", sovits_weights)):
        if not weights:
            continue
        response = _get(url, path, {"weights_path": weights}, timeout)
        if response.status_code != 200:
            raise RuntimeError(f"GPT-SoVITS {path} refused '{weights}' (HTTP {response.status_code}): "
                               f"{_error_text(response)}")


def tts(url: str, text: str, language: str, ref_audio_path: str, prompt_text: str, prompt_lang: str,
        text_split_method: str = "cut5", speed_factor: float = 1.0, timeout: float = 300.0):
    """POST /tts -> (mono float32, sample_rate). Errors become messages that say what went wrong."""
    import requests

    if language not in TEXT_LANG:
        raise ValueError(f"Language {language!r} is not supported by GPT-SoVITS (its text languages are zh, en, "
                         "ja, ko, yue; use en or en-it, or the xtts/piper backend for Italian).")
    payload = {
        "text": text, "text_lang": TEXT_LANG[language],
        "ref_audio_path": ref_audio_path, "prompt_text": prompt_text,
        "prompt_lang": TEXT_LANG.get(prompt_lang, prompt_lang),
        "text_split_method": text_split_method, "batch_size": 1, "media_type": "wav",
        "streaming_mode": False, "speed_factor": float(speed_factor),
    }
    try:
        response = requests.post(f"{url}/tts", json=payload, timeout=timeout)
    except requests.ConnectionError:
        raise ServerUnavailable(f"No GPT-SoVITS server answers at {url}. {START_HINT}") from None
    except requests.Timeout:
        raise ServerUnavailable(f"The GPT-SoVITS server at {url} did not finish /tts within {timeout:.0f} s.") from None
    if response.status_code != 200:
        raise RuntimeError(f"GPT-SoVITS /tts failed (HTTP {response.status_code}): {_error_text(response)}")
    if "json" in response.headers.get("content-type", ""):
        raise RuntimeError(f"GPT-SoVITS /tts answered JSON instead of audio: {_error_text(response)}")
    samples, rate = read_wav_bytes(response.content, "GPT-SoVITS /tts answer")
    check_samples(samples, rate, "GPT-SoVITS /tts answer")
    return samples, rate
