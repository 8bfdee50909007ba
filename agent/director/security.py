"""What a generated graph may contain: allow-listed node classes, file paths inside the studio folders.

The LLM only ever fills typed slots or proposes input edits; its text is data,
never code, and nothing in an intent or in user media can widen these limits
(the allow list comes from the catalog and the settings file only).
"""
from __future__ import annotations

from pathlib import Path

from ..catalog import Catalog
from ...configs.settings import load_settings
from ...nodes import bridge

# Inputs whose string value names a file to read or a place to write.
PATH_INPUT_HINTS = ("image", "video", "audio", "file", "path", "filename", "folder", "directory", "ckpt", "lora_name")


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
            if isinstance(value, str) and _is_path_input(name):
                why = path_violation(node_id, name, value)
                if why:
                    problems.append(why)
    return problems


def enforce(graph: dict, catalog: Catalog) -> None:
    problems = check_graph(graph, catalog)
    if problems:
        raise SecurityError(problems)
