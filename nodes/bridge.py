"""The one place that knows whether we run inside ComfyUI.

Inside ComfyUI each helper delegates to ComfyUI (progress bar, interrupt flag,
PromptServer messages, folder_paths, routes). Outside it, the embedded engine
installs a `RunContext` so the same node code reports progress, honours
cancellation and writes into the run's own output folder; with no context at
all every helper is a harmless default.
"""
from __future__ import annotations

import contextvars
import importlib
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable


class Interrupted(Exception):
    """The run was cancelled (engine cancel, Ctrl-C, or ComfyUI's interrupt)."""


class MissingDependency(RuntimeError):
    """An optional library of a node family is not installed."""


class MissingModel(FileNotFoundError):
    """A model file the node needs is not in the models folder."""


def in_comfyui() -> bool:
    # ComfyUI's folder_paths and comfy.model_management are importable only
    # when the server loaded us; the check must not import torch itself.
    return "folder_paths" in sys.modules and "comfy.model_management" in sys.modules


@dataclass
class RunContext:
    """What the embedded engine tells nodes about the run in progress."""

    output_dir: Path
    input_dir: Path
    temp_dir: Path
    on_progress: Callable[[str, int, int], None] | None = None
    on_message: Callable[[str, dict], None] | None = None
    cancelled: Callable[[], bool] = lambda: False
    node_id: str = ""
    extras: dict = field(default_factory=dict)


_context: contextvars.ContextVar[RunContext | None] = contextvars.ContextVar("animation_studio_run", default=None)


def current_context() -> RunContext | None:
    return _context.get()


def set_context(ctx: RunContext | None):
    return _context.set(ctx)


def reset_context(token) -> None:
    _context.reset(token)


# ---------------------------------------------------------------- optional deps
def require(module: str, extra: str, pip_name: str | None = None):
    """Import an optional library or raise a message naming the extra to install."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingDependency(
            f"This node needs the Python package '{pip_name or module}', which is not installed "
            f"({exc}). Install the '{extra}' extra: pip install \"comfyui-animation-studio[{extra}]\""
        ) from None


# ---------------------------------------------------------------- folders
def _settings():
    from ..configs.settings import load_settings

    return load_settings()


def output_directory() -> Path:
    if in_comfyui():
        import folder_paths

        return Path(folder_paths.get_output_directory())
    ctx = current_context()
    return ctx.output_dir if ctx else Path(_settings().paths.output).resolve()


def input_directory() -> Path:
    if in_comfyui():
        import folder_paths

        return Path(folder_paths.get_input_directory())
    ctx = current_context()
    return ctx.input_dir if ctx else Path(_settings().paths.input).resolve()


def temp_directory() -> Path:
    if in_comfyui():
        import folder_paths

        return Path(folder_paths.get_temp_directory())
    ctx = current_context()
    return ctx.temp_dir if ctx else Path(_settings().paths.temp).resolve()


def model_folders(kind: str) -> list[Path]:
    """Every folder where models of `kind` (ComfyUI's folder name: checkpoints, loras, sam2...) live."""
    folders: list[Path] = []
    if in_comfyui():
        import folder_paths

        try:
            folders += [Path(p) for p in folder_paths.get_folder_paths(kind)]
        except KeyError:
            folders.append(Path(folder_paths.models_dir) / kind)
    settings = _settings()
    root = Path(settings.paths.models).resolve()
    folders.append(root / kind)
    for extra in settings.paths.extra_model_folders.get(kind, []):
        folders.append(Path(extra).expanduser().resolve())
    seen, unique = set(), []
    for f in folders:
        if f not in seen:
            seen.add(f)
            unique.append(f)
    return unique


def list_models(kind: str, suffixes: tuple[str, ...] = ()) -> list[str]:
    names: set[str] = set()
    for folder in model_folders(kind):
        if folder.is_dir():
            for p in folder.rglob("*"):
                if p.is_file() or (p.is_dir() and not suffixes):
                    if not suffixes or p.name.lower().endswith(suffixes):
                        names.add(p.relative_to(folder).as_posix())
    return sorted(names)


def find_model(kind: str, name: str) -> Path:
    """Path of a model file or folder, or a MissingModel naming where it was expected."""
    if not name or Path(name).is_absolute() or ".." in Path(name).parts:
        raise MissingModel(f"Invalid model name {name!r}: give a file name inside the '{kind}' models folder.")
    folders = model_folders(kind)
    for folder in folders:
        candidate = folder / name
        if candidate.exists():
            return candidate
    where = ", ".join(str(f) for f in folders)
    raise MissingModel(f"Model '{name}' not found. Put it in the '{kind}' models folder ({where}).")


def safe_input_path(name: str) -> Path:
    """Resolve a user-given file name inside the input folder; anything outside is refused."""
    from ..configs.paths import resolve_inside  # the pack's one path guard

    return resolve_inside(input_directory(), name, what="input")


def unique_output_path(stem: str, suffix: str, subfolder: str = "") -> Path:
    """A path in the output folder that does not exist yet (never overwrite)."""
    folder = output_directory() / subfolder
    folder.mkdir(parents=True, exist_ok=True)
    stem = "".join(c if c.isalnum() or c in "-_." else "_" for c in stem) or "output"
    counter = 1
    while True:
        path = folder / f"{stem}_{counter:05d}{suffix}"
        try:
            # O_EXCL reserves the name atomically, so parallel runs never collide; 0644, no symlink followed.
            from ..configs.paths import open_exclusive

            os.close(open_exclusive(path))
            return path
        except FileExistsError:
            counter += 1


def ui_file_entry(path: Path) -> dict:
    """The {filename, subfolder, type} dict ComfyUI's frontend uses to show a file."""
    base = output_directory().resolve()
    path = Path(path).resolve()
    try:
        rel = path.parent.relative_to(base).as_posix()
    except ValueError:
        rel = ""
    return {"filename": path.name, "subfolder": "" if rel == "." else rel, "type": "output"}


# ---------------------------------------------------------------- progress / interrupt
def check_interrupt() -> None:
    if in_comfyui():
        import comfy.model_management as mm

        mm.throw_exception_if_processing_interrupted()
        return
    ctx = current_context()
    if ctx is not None and ctx.cancelled():
        raise Interrupted("Run cancelled.")


class ProgressBar:
    """ComfyUI's progress bar inside ComfyUI, the engine's progress hook outside; every update is an interrupt point."""

    def __init__(self, total: int, desc: str = ""):
        self.total = max(int(total), 1)
        self.value = 0
        self.desc = desc
        self._comfy = None
        if in_comfyui():
            import comfy.utils

            self._comfy = comfy.utils.ProgressBar(self.total)

    def update(self, delta: int = 1) -> None:
        self.update_absolute(self.value + delta)

    def update_absolute(self, value: int, total: int | None = None) -> None:
        if total is not None:
            self.total = max(int(total), 1)
        self.value = min(int(value), self.total)
        if self._comfy is not None:
            self._comfy.update_absolute(self.value, self.total)
            return
        check_interrupt()
        ctx = current_context()
        if ctx is not None and ctx.on_progress is not None:
            ctx.on_progress(ctx.node_id, self.value, self.total)


def send_message(event: str, data: dict, node_id: str | None = None) -> None:
    """A PromptServer message inside ComfyUI; the engine's message hook outside."""
    if in_comfyui():
        try:
            from server import PromptServer

            PromptServer.instance.send_sync(event, data)
        except Exception:  # noqa: BLE001 - a UI message must never fail a node
            pass
        return
    ctx = current_context()
    if ctx is not None and ctx.on_message is not None:
        ctx.on_message(event, data)


def send_progress_text(text: str, node_id: str | None) -> None:
    if in_comfyui() and node_id:
        try:
            from server import PromptServer

            PromptServer.instance.send_progress_text(text, node_id)
        except Exception:  # noqa: BLE001
            pass
        return
    send_message("animation_studio.progress_text", {"node": node_id, "text": text})


def prompt_server_routes():
    """ComfyUI's aiohttp RouteTableDef when the server is running, else None."""
    try:
        from server import PromptServer
    except ImportError:
        return None
    instance = getattr(PromptServer, "instance", None)
    return getattr(instance, "routes", None)


# ---------------------------------------------------------------- registration
NODE_PREFIX = "AnimStudio_"


def node_mappings(nodes: dict[str, tuple[type, str]]) -> tuple[dict[str, type], dict[str, str]]:
    """{"LoadVideo": (LoadVideo, "Load Video")} -> (class mappings, display names), with the pack's prefix."""
    classes = {f"{NODE_PREFIX}{key}": cls for key, (cls, _) in nodes.items()}
    names = {f"{NODE_PREFIX}{key}": f"{title} (Animation Studio)" for key, (_, title) in nodes.items()}
    return classes, names
