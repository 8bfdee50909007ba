"""The GPT-SoVITS client against a loopback server implementing api_v2's documented endpoints."""
from __future__ import annotations

import io
import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

import numpy as np
import pytest
import soundfile as sf

from animation_studio.nodes.voice import CharacterVoice, GPTSoVITSTTS, sovits
from animation_studio.nodes.voice import audio as A


def _speech_like_wav(rate=32000, seconds=1.2) -> bytes:
    t = np.arange(int(rate * seconds)) / rate
    wave = 0.4 * np.sin(2 * np.pi * 180 * t) * (0.6 + 0.4 * np.sin(2 * np.pi * 3 * t))
    buf = io.BytesIO()
    sf.write(buf, wave.astype(np.float32), rate, format="WAV", subtype="PCM_16")
    return buf.getvalue()


class FakeGPTSoVITS:
    """api_v2: GET/POST /tts, GET /set_gpt_weights and /set_sovits_weights; `mode` picks the answer."""

    def __init__(self):
        self.mode = "ok"
        self.requests: list[tuple[str, dict]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _send(self, code, body: bytes, ctype):
                self.send_response(code)
                self.send_header("content-type", ctype)
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _tts(self, params):
                server.requests.append(("/tts", params))
                missing = [k for k in ("text", "text_lang", "ref_audio_path", "prompt_lang") if not params.get(k)]
                if missing or server.mode == "error":
                    msg = {"message": "tts failed", "Exception": f"missing {missing}" if missing else "CUDA out of memory"}
                    return self._send(400, json.dumps(msg).encode(), "application/json")
                if server.mode == "garbage":
                    return self._send(200, b"<html>proxy error</html>" * 10, "audio/wav")
                if server.mode == "silent":
                    buf = io.BytesIO()
                    sf.write(buf, np.zeros(32000, np.float32), 32000, format="WAV")
                    return self._send(200, buf.getvalue(), "audio/wav")
                return self._send(200, _speech_like_wav(), "audio/wav")

            def do_GET(self):
                url = urlparse(self.path)
                params = {k: v[0] for k, v in parse_qs(url.query).items()}
                if url.path == "/tts":
                    return self._tts(params)
                if url.path in ("/set_gpt_weights", "/set_sovits_weights"):
                    server.requests.append((url.path, params))
                    if not params.get("weights_path", "").endswith((".ckpt", ".pth")):
                        return self._send(400, json.dumps({"message": "change weights failed"}).encode(),
                                          "application/json")
                    return self._send(200, b'"success"', "application/json")
                self._send(404, b"{}", "application/json")

            def do_POST(self):
                length = int(self.headers.get("content-length", 0))
                if urlparse(self.path).path == "/tts":
                    return self._tts(json.loads(self.rfile.read(length) or b"{}"))
                self._send(404, b"{}", "application/json")

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def fake_server(monkeypatch):
    with FakeGPTSoVITS() as server:
        # A graph may name only servers the settings allow (configs/net.py): this one is configured.
        monkeypatch.setenv("ANIMATION_STUDIO__NETWORK__ALLOWED_URLS", f"[{server.url}]")
        yield server


@pytest.fixture
def luca_clip(studio_dirs):
    path = studio_dirs["models"] / "voices" / "luca" / "determined.wav"
    path.parent.mkdir(parents=True)
    path.write_bytes(_speech_like_wav(22050, 2.0))
    return path


def _free_port_url():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def test_character_voice_uses_the_server_with_the_profile_weights(fake_server, luca_clip, monkeypatch):
    monkeypatch.setenv(sovits.URL_ENV, fake_server.url)
    audio, report = CharacterVoice().run("Silence, Bruno!", "determined", 0.8, "luca", "en", "auto", 0, "")
    data = json.loads(report)
    assert data["backend"] == "gpt_sovits" and data["details"]["server"] == fake_server.url
    paths = [p for p, _ in fake_server.requests]
    assert paths == ["/set_gpt_weights", "/set_sovits_weights", "/tts"]
    assert fake_server.requests[0][1]["weights_path"] == "GPT_weights_v2/luca-e15.ckpt"
    tts = fake_server.requests[2][1]
    assert tts["ref_audio_path"] == str(luca_clip) and tts["text_lang"] == "en" and tts["media_type"] == "wav"
    assert tts["prompt_text"].startswith("I'm not scared") and tts["streaming_mode"] is False
    samples, rate = A.from_audio(audio)
    assert rate == 32000 and samples.size == int(32000 * 1.2)


def test_english_with_italian_accent_is_sent_as_english(fake_server, luca_clip):
    samples, rate = sovits.tts(fake_server.url, "Hello", "en-it", str(luca_clip), "ciao", "en-it")
    assert fake_server.requests[-1][1]["text_lang"] == "en" and rate == 32000
    with pytest.raises(ValueError, match="not supported by GPT-SoVITS"):
        sovits.tts(fake_server.url, "Ciao", "it", str(luca_clip), "ciao", "en")


def test_server_not_running_says_how_to_start_it(luca_clip, monkeypatch):
    url = _free_port_url()
    monkeypatch.setenv("ANIMATION_STUDIO__NETWORK__ALLOWED_URLS", f"[{url}]")
    with pytest.raises(sovits.ServerUnavailable, match=r"python api_v2\.py -a 127\.0\.0\.1 -p 9880"):
        CharacterVoice().run("Silence!", "determined", 0.8, "luca", "en", "gpt_sovits", 0, url)


def test_error_json_and_garbage_audio_are_clear_messages(fake_server, luca_clip):
    fake_server.mode = "error"
    with pytest.raises(RuntimeError, match="HTTP 400.*tts failed; CUDA out of memory"):
        sovits.tts(fake_server.url, "Hi", "en", str(luca_clip), "x", "en")
    fake_server.mode = "garbage"
    with pytest.raises(ValueError, match="not readable audio.*proxy error"):
        sovits.tts(fake_server.url, "Hi", "en", str(luca_clip), "x", "en")
    fake_server.mode = "silent"
    with pytest.raises(ValueError, match="silent"):
        sovits.tts(fake_server.url, "Hi", "en", str(luca_clip), "x", "en")
    with pytest.raises(RuntimeError, match="set_gpt_weights refused 'luca.bin'.*change weights failed"):
        sovits.set_weights(fake_server.url, "luca.bin", "")


def test_node_reads_reference_from_the_input_folder_only(fake_server, studio_dirs):
    (studio_dirs["input"] / "ref.wav").write_bytes(_speech_like_wav(22050, 1.5))
    (audio,) = GPTSoVITSTTS().run("Hello there", "en", "ref.wav", "hello", "en", "", "", fake_server.url)
    assert audio["sample_rate"] == 32000 and [p for p, _ in fake_server.requests] == ["/tts"]
    with pytest.raises(PermissionError):
        GPTSoVITSTTS().run("Hello", "en", "/etc/passwd", "hello", "en", "", "", fake_server.url)
    with pytest.raises(ValueError, match="empty"):
        GPTSoVITSTTS().run(" ", "en", "ref.wav", "hello", "en", "", "", fake_server.url)
