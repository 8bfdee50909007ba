"""Every node family of the pack, gathered into one NODE_CLASS_MAPPINGS.

Each family module keeps its real work in plain functions and exports its own
NODE_CLASS_MAPPINGS / NODE_DISPLAY_NAME_MAPPINGS. Families import no heavy
library at module level, so a missing optional dependency only makes that
family's nodes raise a clear message when they run.
"""
from __future__ import annotations

import importlib
import importlib.util
import logging

log = logging.getLogger("animation_studio")

# A family module that does not exist yet is skipped; one that fails to import is reported.
FAMILIES = ["core", "video", "audio", "segment", "face", "voice", "image", "dataset", "director", "evaluate"]

NODE_CLASS_MAPPINGS: dict[str, type] = {}
NODE_DISPLAY_NAME_MAPPINGS: dict[str, str] = {}
FAMILY_ERRORS: dict[str, str] = {}

for _family in FAMILIES:
    _spec = importlib.util.find_spec(f".{_family}", __name__)
    if _spec is None or _spec.origin is None:  # not written yet (or a bare folder)
        continue
    try:
        _module = importlib.import_module(f".{_family}", __name__)
        _classes = dict(_module.NODE_CLASS_MAPPINGS)
        _names = dict(getattr(_module, "NODE_DISPLAY_NAME_MAPPINGS", {}))
    except Exception as exc:  # noqa: BLE001 - one broken family must not hide the others
        FAMILY_ERRORS[_family] = f"{type(exc).__name__}: {exc}"
        log.error("Animation Studio: node family %r failed to load: %s", _family, exc)
        continue
    for _key in _classes:
        if _key in NODE_CLASS_MAPPINGS:
            raise RuntimeError(f"Node class {_key!r} is defined by two families")
    NODE_CLASS_MAPPINGS.update(_classes)
    NODE_DISPLAY_NAME_MAPPINGS.update(_names)
