"""Validate a graph and repair what ComfyUI's `node_errors` point at, in a bounded number of rounds.

Repairs are mechanical and explainable (each one is logged): clamp to min/max,
nearest combo option, the catalog default for a missing or unconvertible
widget, the nearest allow-listed class name for an unknown class, and a
type-compatible upstream output for a missing or mismatched link.
"""
from __future__ import annotations

import copy
import difflib
from dataclasses import dataclass, field
from typing import Callable

from ..catalog import Catalog
from ..validate import ValidationResult, is_link, validate_graph
from .builder import default_value, fill_defaults
from .security import allowed_classes


@dataclass
class RepairOutcome:
    graph: dict
    ok: bool
    rounds: int
    actions: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # what is still wrong when not ok
    result: ValidationResult | None = None
    validators: list[str] = field(default_factory=lambda: ["animation_studio"])
    external_errors: list[str] = field(default_factory=list)  # what the extra validator reported, every round

# An extra validator (ComfyUI's own, inside ComfyUI): graph -> node_errors in ComfyUI's format.
ExtraValidator = Callable[[dict], dict]
# Errors ours reports at the top level, before per-node checks; an extra validator would only crash on them.
STRUCTURAL = ("invalid_prompt", "prompt_no_outputs")


def _compatible_output(graph: dict, catalog: Catalog, want: str, exclude: str) -> list | None:
    """The last node output in the graph with the wanted type (closest upstream producer)."""
    for node_id in reversed(list(graph)):
        if node_id == exclude:
            continue
        spec = catalog.get(graph[node_id].get("class_type", ""))
        if spec is None:
            continue
        for index, kind in enumerate(spec.outputs):
            if kind == want:
                return [node_id, index]
    return None


def _repair_input(graph: dict, catalog: Catalog, node_id: str, err: dict) -> str | None:
    node = graph[node_id]
    spec = catalog.get(node.get("class_type", ""))
    name = (err.get("extra_info") or {}).get("input_name")
    if spec is None or not name or name not in spec.inputs:
        return None
    ispec = spec.inputs[name]
    kind = err.get("type")
    inputs = node.setdefault("inputs", {})
    old = inputs.get(name)
    # ComfyUI's errors carry the limits it checked (input_config = [type, config]); they win over our catalog's.
    reported = (err.get("extra_info") or {}).get("input_config")
    limits = reported[1] if isinstance(reported, (list, tuple)) and len(reported) == 2 and isinstance(reported[1], dict) \
        else {}
    if kind == "value_smaller_than_min":
        inputs[name] = limits.get("min", ispec.config.get("min"))
    elif kind == "value_bigger_than_max":
        inputs[name] = limits.get("max", ispec.config.get("max"))
    elif kind == "value_not_in_list":
        options = [str(o) for o in ispec.options or ()]
        near = difflib.get_close_matches(str(old), options, n=1, cutoff=0.0)
        inputs[name] = next((o for o in ispec.options or () if str(o) == near[0]), default_value(ispec)) if near \
            else default_value(ispec)
    elif kind == "custom_validation_failed":
        return None  # a refused value (a missing input file) is reported, never swapped for another file
    elif kind == "invalid_input_type" and ispec.is_widget and not is_link(old):
        inputs[name] = default_value(ispec)
    elif kind in ("required_input_missing", "return_type_mismatch", "bad_linked_input", "invalid_input_type",
                  "exception_during_validation", "exception_during_inner_validation"):  # last two: a dangling link
        if ispec.is_widget:
            inputs[name] = default_value(ispec)
        else:
            link = _compatible_output(graph, catalog, ispec.type, node_id)
            if link is None:
                return None
            inputs[name] = link
    else:
        return None
    return f"node {node_id} ({node['class_type']}) input '{name}': {kind}, {old!r} -> {inputs[name]!r}"


def _repair_class(graph: dict, catalog: Catalog, node_id: str) -> str | None:
    node = graph[node_id]
    wanted = str(node.get("class_type"))
    names = sorted(allowed_classes(catalog) & set(catalog.names()))
    near = difflib.get_close_matches(wanted, names, n=1, cutoff=0.75)
    if not near:
        return None
    node["class_type"] = near[0]
    spec = catalog[near[0]]
    node["inputs"] = {k: v for k, v in (node.get("inputs") or {}).items() if k in spec.inputs}
    return f"node {node_id}: unknown class {wanted!r} -> {near[0]!r}"


def _merge(ours: ValidationResult, theirs: dict) -> ValidationResult:
    """Our result with the extra validator's node errors added (one error per node, type and input)."""
    if not theirs:
        return ours
    merged = copy.deepcopy(ours.node_errors)
    for node_id, entry in theirs.items():
        mine = merged.setdefault(node_id, {"errors": [], "dependent_outputs": entry.get("dependent_outputs", []),
                                           "class_type": entry.get("class_type")})
        known = {(e.get("type"), (e.get("extra_info") or {}).get("input_name")) for e in mine["errors"]}
        for err in entry.get("errors", []):
            if (err.get("type"), (err.get("extra_info") or {}).get("input_name")) not in known:
                mine["errors"].append(err)
    error = ours.error or {"type": "prompt_outputs_failed_validation", "message": "Prompt outputs failed validation",
                           "details": "", "extra_info": {}}
    return ValidationResult(ours.graph, error, merged, ours.outputs)


def _validate(graph: dict, catalog: Catalog, extra: ExtraValidator | None, seen: list[str]) -> ValidationResult:
    result = validate_graph(graph, catalog)
    if extra is None or (result.error and result.error.get("type") in STRUCTURAL) or \
            "cycle" in ((result.error or {}).get("extra_info") or {}):
        return result
    theirs = extra(copy.deepcopy(graph))
    if theirs:
        seen += ValidationResult(graph, {"type": "x", "message": ""}, theirs).messages()
    return _merge(result, theirs)


def validate_and_repair(graph: dict, catalog: Catalog, max_rounds: int = 3,
                        extra_validator: ExtraValidator | None = None, extra_name: str = "comfyui") -> RepairOutcome:
    """Validate (ours, plus `extra_validator` when given); while errors remain and repairs apply, repair and
    re-validate (at most max_rounds). Both validators' node_errors feed the same mechanical repairs."""
    graph = fill_defaults(copy.deepcopy(graph), catalog) if isinstance(graph, dict) else graph
    actions: list[str] = []
    external: list[str] = []
    result = _validate(graph, catalog, extra_validator, external)
    rounds = 0
    while not result.ok and rounds < max_rounds:
        rounds += 1
        fixed = []
        for node_id, node in graph.items():
            if isinstance(node, dict) and node.get("class_type") not in catalog:
                fixed.append(_repair_class(graph, catalog, node_id))
        for node_id, entry in result.node_errors.items():
            if node_id not in graph:
                continue
            for err in entry.get("errors", []):
                fixed.append(_repair_input(graph, catalog, node_id, err))
        fixed = [f for f in fixed if f]
        if not fixed:
            break
        actions += fixed
        fill_defaults(graph, catalog)
        result = _validate(graph, catalog, extra_validator, external)
    graph = result.graph if result.ok else graph
    validators = ["animation_studio"] + ([extra_name] if extra_validator is not None else [])
    return RepairOutcome(graph, result.ok, rounds, actions, [] if result.ok else result.messages(), result,
                         validators, external)
