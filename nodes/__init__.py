"""Every node family of the pack, gathered into one NODE_CLASS_MAPPINGS.

Each family module keeps its real work in plain functions and exports its own
NODE_CLASS_MAPPINGS / NODE_DISPLAY_NAME_MAPPINGS. Families import no heavy
library at module level, so a missing optional dependency normally only makes
that family's nodes raise a clear message when they run.

The families are listed by name with the extra that brings their libraries. A
family that does not exist (a typo, a file moved away) fails the import of the
pack loudly. A family whose module does import a third-party library that is
not installed is left out with one line in ComfyUI's log naming the extra to
install, and the rest of the pack loads.
"""
from __future__ import annotations

import importlib
import logging

from .finite import refuse_non_finite
from .tooltips import add_tooltips

log = logging.getLogger("animation_studio")

PACKAGE = "comfyui-animation-studio"
# family module -> the pyproject extra that installs what it needs (None: the core dependencies).
FAMILIES: dict[str, str | None] = {
    "core": None,
    "video": "video",
    "audio": "video",
    "segment": "segment",
    "face": "face",
    "voice": "voice",
    "image": "image",
    "dataset": "dataset",
}

NODE_CLASS_MAPPINGS: dict[str, type] = {}
NODE_DISPLAY_NAME_MAPPINGS: dict[str, str] = {}
FAMILY_ERRORS: dict[str, str] = {}


def install_hint(family: str, extra: str | None, missing_module: str) -> str:
    what = f'pip install "{PACKAGE}[{extra}]"' if extra else "pip install -r requirements.txt (in the pack's folder)"
    return (f"Animation Studio: the {family} nodes are not loaded: the Python module {missing_module!r} is not "
            f"installed in ComfyUI's Python. Install it with: {what}")


def prepare_for_publishing(mappings: dict) -> None:
    """What every class the pack publishes gets, from nodes/ or agent/: tooltips and the non-finite number guard."""
    for key, node_cls in mappings.items():
        add_tooltips(key, node_cls)
        refuse_non_finite(node_cls)


def load_families(families: dict[str, str | None]) -> None:
    """Import each family and merge its mappings; see the module docstring for what fails and what is logged."""
    for family, extra in families.items():
        try:
            module = importlib.import_module(f".{family}", __name__)
        except ModuleNotFoundError as exc:
            missing = exc.name or ""
            if not missing or missing.split(".")[0] in (__name__.split(".")[0], "nodes"):
                raise ImportError(f"Animation Studio: node family {family!r} is listed in nodes/__init__.py "
                                  f"but cannot be imported: {exc}") from exc
            FAMILY_ERRORS[family] = install_hint(family, extra, missing.split(".")[0])
            log.error(FAMILY_ERRORS[family])
            continue
        for key in module.NODE_CLASS_MAPPINGS:
            if key in NODE_CLASS_MAPPINGS:
                raise RuntimeError(f"Node class {key!r} is defined by two families")
        prepare_for_publishing(module.NODE_CLASS_MAPPINGS)
        NODE_CLASS_MAPPINGS.update(module.NODE_CLASS_MAPPINGS)
        NODE_DISPLAY_NAME_MAPPINGS.update(getattr(module, "NODE_DISPLAY_NAME_MAPPINGS", {}))


load_families(FAMILIES)
