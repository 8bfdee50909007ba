"""Start and stop a real ComfyUI server with this pack loaded, for the `comfyui` test tier and the benchmarks.

The server gets a throw-away base directory (`--base-directory`): its own input/,
output/, temp/, user/, models/ and a custom_nodes/ holding only a symlink to this
checkout, so nothing of the user's ComfyUI install is read or written. Its log is
captured to a file so tests can look for the pack's import failures.

Import it from a test with `sys.path.insert(0, str(Path(__file__).parent))` then
`import comfyui_harness` (tests/ is not a package).
"""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
PACK_FOLDER_NAME = "animation_studio"


def comfyui_path() -> Path | None:
    value = os.environ.get("COMFYUI_PATH")
    return Path(value).expanduser().resolve() if value else None


def comfyui_python(root: Path) -> str:
    """COMFYUI_PYTHON, else a comfyui-venv next to the checkout, else this interpreter."""
    if os.environ.get("COMFYUI_PYTHON"):
        return os.environ["COMFYUI_PYTHON"]
    sibling = root.parent / "comfyui-venv" / "bin" / "python"
    return str(sibling) if sibling.exists() else sys.executable


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ComfyUIServer:
    """One `main.py --cpu` process on a free loopback port, with the pack symlinked into its custom_nodes."""

    def __init__(self, root: Path, python: str | None = None, pack_dir: Path = REPO_ROOT,
                 extra_args: tuple[str, ...] = (), base_dir: Path | None = None):
        self.root = Path(root)
        self.python = python or comfyui_python(self.root)
        self.pack_dir = Path(pack_dir)
        self.extra_args = tuple(extra_args)
        self._own_tmp = None
        if base_dir is None:
            self._own_tmp = tempfile.TemporaryDirectory(prefix="comfyui-tier-")
            base_dir = Path(self._own_tmp.name)
        self.base_dir = Path(base_dir)
        self.port = 0
        self.process: subprocess.Popen | None = None
        self.log_path = self.base_dir / "server.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def output_dir(self) -> Path:
        return self.base_dir / "output"

    @property
    def input_dir(self) -> Path:
        return self.base_dir / "input"

    def _prepare_base_dir(self) -> None:
        for name in ("input", "output", "temp", "user", "models", "custom_nodes"):
            (self.base_dir / name).mkdir(parents=True, exist_ok=True)
        link = self.base_dir / "custom_nodes" / PACK_FOLDER_NAME
        if not link.exists():
            link.symlink_to(self.pack_dir, target_is_directory=True)

    def start(self, timeout: float = 90.0) -> "ComfyUIServer":
        self._prepare_base_dir()
        self.port = free_port()
        command = [self.python, "main.py", "--cpu", "--listen", "127.0.0.1", "--port", str(self.port),
                   "--disable-auto-launch", "--base-directory", str(self.base_dir), *self.extra_args]
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        # The pack's own settings must not point ComfyUI at this checkout's outputs, and its models folder
        # (relative to the working directory, ComfyUI's root, by default) is the throw-away one too.
        env = {k: v for k, v in env.items() if not k.startswith("ANIMATION_STUDIO__PATHS__")}
        env["ANIMATION_STUDIO__PATHS__MODELS"] = str(self.base_dir / "models")
        self._log = open(self.log_path, "wb")
        self.process = subprocess.Popen(command, cwd=self.root, stdout=self._log, stderr=subprocess.STDOUT,
                                        env=env, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"ComfyUI exited with code {self.process.returncode} while starting:\n"
                                   + self.log_tail())
            try:
                with urllib.request.urlopen(self.url + "/system_stats", timeout=2) as response:
                    if response.status == 200:
                        return self
            except (urllib.error.URLError, ConnectionError, OSError):
                time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"ComfyUI did not answer on {self.url} within {timeout:.0f} s:\n" + self.log_tail())

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])

    def get_json(self, path: str) -> dict:
        with urllib.request.urlopen(self.url + path, timeout=30) as response:
            return json.loads(response.read())

    def kill(self) -> None:
        """Die abruptly (SIGKILL), as a crashed server would."""
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        if getattr(self, "_log", None):
            self._log.close()
            self._log = None

    def cleanup(self) -> None:
        self.stop()
        if self._own_tmp is not None:
            self._own_tmp.cleanup()
            self._own_tmp = None

    def __enter__(self) -> "ComfyUIServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.cleanup()
