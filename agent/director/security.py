"""What a generated graph may contain: allow-listed node classes, file paths inside the studio folders,
servers the settings configure (configs/net.py) and weight names the voice server resolves in its own folder.

The LLM only ever fills typed slots or proposes input edits; its text is data,
never code, and nothing in an intent or in user media can widen these limits
(the allow list comes from the catalog and the settings file only).
"""
from __future__ import annotations

import re
from pathlib import Path

from ..catalog import Catalog
from ...configs import net
from ...configs.settings import load_settings
from ...nodes import bridge

# Inputs whose string value names a file to read or a place to write.
PATH_INPUT_HINTS = ("image", "video", "audio", "file", "path", "filename", "folder", "directory", "ckpt", "lora_name")
# Inputs whose value names a server (GPT-SoVITS server_url, an `llm` spec such as openai:URL#MODEL).
URL_INPUT_HINTS = ("url", "host", "server", "endpoint")
WHOLE_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://\S*$")
# Weights a remote server loads by name (GPT-SoVITS): relative to its folder, never '..' or absolute.
WEIGHT_INPUT_HINTS = ("weights",)


class SecurityError(ValueError):
    """A generated graph breaks the allow list or the folder rules; `.violations` lists each reason."""

    def __init__(self, violations: list[str]):
        self.violations = violations
        super().__init__("; ".join(violations))


def allowed_classes(catalog: Catalog) -> set[str]:
    """The pack's own nodes plus the ComfyUI core nodes named in settings.director.allowed_core_nodes."""
    pack = {name for name in catalog.names() if name.startswith(bridge.NODE_PREFIX)}
    return pack | set(load_settings().director.allowed_core_nodes)


def _is_path_input(name: str) -> bool:
    lowered = name.lower()
    return any(h in lowered for h in PATH_INPUT_HINTS)


def _inside(path: Path, folders: list[Path]) -> bool:
    return any(path == f or f in path.parents for f in folders)


def path_violation(node_id: str, name: str, value: str) -> str | None:
    """Why a string literal of a path-like input is not allowed, or None."""
    if not value or not isinstance(value, str):
        return None
    p = Path(value)
    if ".." in p.parts:
        return f"node {node_id} input '{name}': path {value!r} climbs out of its folder ('..')"
    if p.is_absolute() or value.startswith("~"):
        folders = [bridge.input_directory().resolve(), bridge.output_directory().resolve(), bridge.temp_directory().resolve()]
        if not _inside(Path(value).expanduser().resolve(), folders):
            return f"node {node_id} input '{name}': path {value!r} is outside the input/output folders"
    return None


def url_violation(node_id: str, name: str, value: str) -> str | None:
    """Why a string input that names a server is not allowed, or None: a server_url-like input, an LLM spec
    `openai:URL#MODEL`, or any value that is a URL as a whole must name a server the settings configure."""
    if not isinstance(value, str) or not value.strip():
        return None
    text = value.strip()
    if text.startswith("openai:"):
        url = text[len("openai:"):].split("#", 1)[0]
    elif WHOLE_URL.match(text) or any(h in str(name).lower() for h in URL_INPUT_HINTS):
        url = text
    else:
        return None
    try:
        net.check_url(url, f"node {node_id} input '{name}'")
    except net.URLNotAllowed as exc:
        return str(exc)
    return None


def check_graph(graph: dict, catalog: Catalog) -> list[str]:
    """Every reason this graph may not run (empty list when it is safe)."""
    allowed = allowed_classes(catalog)
    problems = []
    for node_id, node in graph.items():
        class_type = node.get("class_type") if isinstance(node, dict) else None
        if class_type not in allowed:
            problems.append(f"node {node_id}: class {class_type!r} is not allow-listed "
                            "(pack nodes + settings director.allowed_core_nodes)")
            continue
        for name, value in (node.get("inputs") or {}).items():
            if not isinstance(value, str):
                continue
            lowered = str(name).lower()
            if any(h in lowered for h in WEIGHT_INPUT_HINTS):
                why = net.remote_name_problem(value)
                if why:
                    problems.append(f"node {node_id} input '{name}': {why}")
                continue
            why = url_violation(node_id, name, value)
            if why:
                problems.append(why)
                continue
            if _is_path_input(name):
                why = path_violation(node_id, name, value)
                if why:
                    problems.append(why)
    return problems


def enforce(graph: dict, catalog: Catalog) -> None:
    problems = check_graph(graph, catalog)
    if problems:
        raise SecurityError(problems)
