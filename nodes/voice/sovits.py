"""Client of the GPT-SoVITS api_v2 HTTP server (the real model runs in its own process/GPU).

Server URL: settings network.gpt_sovits_url (or the older ANIMATION_STUDIO_GPT_SOVITS_URL
variable), http://127.0.0.1:9880 by default (GPT-SoVITS' own). A node input may name
another server only when the settings allow it (configs/net.py check_url): a graph
is untrusted, and the pack must not be made to call arbitrary addresses.
Weight paths are names the server resolves in its own folder: relative, without '..'.
The reference clip path is sent as a path: the server reads it from its own
file system, so server and studio must share the folder (same machine or a mount).
Requests go through configs/net.py: whole-request deadlines, capped answers, and only a
short printable excerpt of what the server says ever reaches a message.
"""
from __future__ import annotations

import json
import os

from ...configs import net
from .audio import check_samples, read_wav_bytes

DEFAULT_URL = "http://127.0.0.1:9880"
URL_ENV = net.GPT_SOVITS_URL_ENV
# GPT-SoVITS v2 text languages (v2: zh, en, ja, ko, yue). Italian is not one of them.
TEXT_LANG = {"en": "en", "en-it": "en"}
START_HINT = ("Start it from the GPT-SoVITS folder: python api_v2.py -a 127.0.0.1 -p 9880 "
              "-c GPT_SoVITS/configs/tts_infer.yaml (or set network.gpt_sovits_url to where it runs).")


class ServerUnavailable(ConnectionError):
    """No GPT-SoVITS server answers at the URL."""


def server_url(override: str = "", where: str = "server_url") -> str:
    """The server to call: `override` (a node input) only when the settings allow that server."""
    if override and override.strip():
        return net.check_url(override, where)
    from ...configs.settings import load_settings

    return (os.environ.get(URL_ENV) or load_settings().network.gpt_sovits_url or DEFAULT_URL).rstrip("/")


def _error_text(response) -> str:
    """What the server said, as a short printable excerpt."""
    try:
        data = response.json()
    except (net.NetError, ValueError):
        return net.excerpt(response.body)
    if isinstance(data, dict):
        parts = [str(data.get(k)) for k in ("message", "Exception", "detail") if data.get(k)]
        return net.excerpt("; ".join(parts) or json.dumps(data))
    return net.excerpt(json.dumps(data))


def _call(method: str, url: str, path: str, timeout: float, **kwargs):
    net.check_url(url, "GPT-SoVITS server")
    try:
        return net.request(method, f"{url}{path}", timeout=timeout, **kwargs)
    except net.NetError as exc:
        if exc.kind == "unreachable":
            raise ServerUnavailable(f"No GPT-SoVITS server answers at {url}. {START_HINT}") from None
        if exc.kind == "timeout":
            raise ServerUnavailable(f"The GPT-SoVITS server at {url} did not finish {path} within {timeout:.0f} s.") \
                from None
        raise RuntimeError(f"GPT-SoVITS {path}: {exc}") from None


def set_weights(url: str, gpt_weights: str, sovits_weights: str, timeout: float = 120.0) -> None:
    """Switch the server to the character's fine-tuned GPT and SoVITS weights (no-op for empty names)."""
    for path, weights in (("/set_gpt_weights", gpt_weights), ("/set_sovits_weights", sovits_weights)):
        if not weights:
            continue
        problem = net.remote_name_problem(weights)
        if problem:
            raise ValueError(f"GPT-SoVITS {path.removeprefix('/set_')}: {problem}")
        response = _call("GET", url, path, timeout, params={"weights_path": weights})
        if response.status != 200:
            raise RuntimeError(f"GPT-SoVITS {path} refused '{weights}' (HTTP {response.status}): "
                               f"{_error_text(response)}")


def tts(url: str, text: str, language: str, ref_audio_path: str, prompt_text: str, prompt_lang: str,
        text_split_method: str = "cut5", speed_factor: float = 1.0, timeout: float = 300.0):
    """POST /tts -> (mono float32, sample_rate). Errors become messages that say what went wrong."""
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
    response = _call("POST", url, "/tts", timeout, json=payload)
    if response.status != 200:
        raise RuntimeError(f"GPT-SoVITS /tts failed (HTTP {response.status}): {_error_text(response)}")
    if "json" in response.headers.get("content-type", ""):
        raise RuntimeError(f"GPT-SoVITS /tts answered JSON instead of audio: {_error_text(response)}")
    samples, rate = read_wav_bytes(response.body, "GPT-SoVITS /tts answer")
    check_samples(samples, rate, "GPT-SoVITS /tts answer")
    return samples, rate
