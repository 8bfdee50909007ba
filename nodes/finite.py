"""Refuse NaN and infinities at every pack node's entry, wherever the graph was validated.

The pack's validator (agent/validate.py) refuses non-finite numbers, but inside ComfyUI only ComfyUI's
validator runs, and ComfyUI 0.8.0 compares NaN with min/max (always False) and lets it through: a NaN
root_hz made DramaticSting write a WAV of constant full-scale samples. So each node's FUNCTION checks
its FLOAT/INT inputs before it runs and fails with the input named (ComfyUI reports the node).
"""
from __future__ import annotations

import functools
import math

NUMBER_TYPES = ("FLOAT", "INT")


def _number_inputs(node_cls: type) -> frozenset[str]:
    types = node_cls.INPUT_TYPES()
    names = set()
    for section in ("required", "optional"):
        for name, spec in (types.get(section) or {}).items():
            kind = spec[0] if isinstance(spec, (list, tuple)) and spec else spec
            if kind in NUMBER_TYPES:
                names.add(name)
    return frozenset(names)


def _non_finite(value) -> bool:
    if isinstance(value, float):
        return not math.isfinite(value)
    if isinstance(value, (list, tuple)):  # INPUT_IS_LIST nodes get lists
        return any(isinstance(v, float) and not math.isfinite(v) for v in value)
    return False


def refuse_non_finite(node_cls: type) -> None:
    """Wrap node_cls's FUNCTION (once) so a NaN/±Infinity FLOAT or INT input is a clear error naming it."""
    function_name = getattr(node_cls, "FUNCTION", None)
    function = node_cls.__dict__.get(function_name) if function_name else None
    if function is None or getattr(function, "_refuses_non_finite", False) or not callable(function):
        return
    names: dict[str, frozenset] = {}
    code = getattr(function, "__code__", None)
    positional = code.co_varnames[1:code.co_argcount] if code else ()  # parameter names after self

    @functools.wraps(function)
    def guarded(self, *args, **kwargs):
        if "names" not in names:  # INPUT_TYPES may scan folders: read it at the first call, not at import
            names["names"] = _number_inputs(node_cls)
        given = dict(zip(positional, args), **kwargs) if args else kwargs
        for name in names["names"]:
            if name in given and _non_finite(given[name]):
                raise ValueError(f"input '{name}' is {given[name]!r}: a number input must be finite "
                                 f"(NaN and infinities are refused)")
        return function(self, *args, **kwargs)

    guarded._refuses_non_finite = True
    setattr(node_cls, function_name, guarded)
