"""Graph validation with ComfyUI's semantics and ComfyUI's error shape.

The result has the same `error` / `node_errors` structure as ComfyUI's
`POST /prompt` answer (execution.py validate_prompt), so the Director reads
validation feedback the same way from the embedded engine and from a server.
Literal widget values are coerced in place on the returned copy, as ComfyUI does.
"""
from __future__ import annotations

import copy
import inspect
from dataclasses import dataclass, field
from typing import Any

from .catalog import Catalog, InputSpec, NodeSpec, parse_input

MATCH_TYPE = "COMFY_MATCHTYPE_V3"
AUTOGROW_TYPE = "COMFY_AUTOGROW_V3"
DYNAMIC_COMBO_TYPE = "COMFY_DYNAMICCOMBO_V3"
DYNAMIC_SLOT_TYPE = "COMFY_DYNAMICSLOT_V3"


class GraphError(ValueError):
    """A graph failed validation; `.result` holds ComfyUI-shaped errors."""

    def __init__(self, result: "ValidationResult"):
        self.result = result
        super().__init__(result.summary())


@dataclass
class ValidationResult:
    graph: dict
    error: dict | None = None
    node_errors: dict = field(default_factory=dict)
    outputs: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.error is None and not self.node_errors

    def as_response(self) -> dict:
        """What ComfyUI's POST /prompt would answer (400 body when not ok)."""
        return {"error": self.error, "node_errors": self.node_errors}

    def messages(self) -> list[str]:
        out = []
        if self.error and not self.node_errors:
            out.append(f"{self.error['message']} {self.error.get('details', '')}".strip())
        for node_id, entry in self.node_errors.items():
            for err in entry["errors"]:
                name = err.get("extra_info", {}).get("input_name")
                where = f"node {node_id} ({entry.get('class_type')})" + (f", input '{name}'" if name else "")
                out.append(f"{where}: {err['message']}" + (f" — {err['details']}" if err.get("details") else ""))
        return out

    def summary(self) -> str:
        return "; ".join(self.messages()) or "ok"


def is_link(value: Any) -> bool:
    return isinstance(value, list) and len(value) == 2 and isinstance(value[0], str) and isinstance(value[1], (int, float)) \
        and not isinstance(value[1], bool)


def types_match(received: str, expected: str) -> bool:
    """ComfyUI's validate_node_input: '*' matches anything, comma lists match on overlap."""
    if received == expected or "*" in (received, expected):
        return True
    if MATCH_TYPE in (received, expected):  # ComfyUI leaves V3 MatchType checks to the frontend
        return True
    if not isinstance(received, str) or not isinstance(expected, str):
        return False
    r = {t.strip() for t in received.split(",")}
    e = {t.strip() for t in expected.split(",")}
    return bool(r & e)


def _err(kind: str, message: str, details: str = "", input_name: str | None = None,
         spec: InputSpec | None = None, value: Any = None) -> dict:
    extra = {}
    if input_name is not None:
        extra = {"input_name": input_name, "input_config": [spec.type, spec.config] if spec else None,
                 "received_value": value if isinstance(value, (str, int, float, bool, list, type(None))) else repr(value)}
    return {"type": kind, "message": message, "details": details, "extra_info": extra}


def _coerce(spec: InputSpec, name: str, value: Any) -> tuple[Any, dict | None]:
    kind = spec.type
    if isinstance(value, dict) and "__value__" in value:  # a wrapped list widget value
        value = value["__value__"]
    try:
        if kind == "INT":
            value = int(value)
        elif kind == "FLOAT":
            if isinstance(value, bool):
                raise ValueError
            value = float(value)
        elif kind == "STRING":
            if isinstance(value, (dict, list)):
                raise ValueError
            value = str(value)
        elif kind == "BOOLEAN":
            if isinstance(value, str):
                if value.lower() not in ("true", "false", "1", "0"):
                    raise ValueError
                value = value.lower() in ("true", "1")
            else:
                value = bool(value)
    except (TypeError, ValueError):
        return value, _err("invalid_input_type", f"Failed to convert an input value to a {kind} value",
                           f"{name}, {value!r}", name, spec, value)
    if kind in ("INT", "FLOAT"):
        lo, hi = spec.config.get("min"), spec.config.get("max")
        if lo is not None and value < lo:
            return value, _err("value_smaller_than_min", f"Value {value} smaller than min of {lo}",
                               f"{name}", name, spec, value)
        if hi is not None and value > hi:
            return value, _err("value_bigger_than_max", f"Value {value} bigger than max of {hi}",
                               f"{name}", name, spec, value)
    if kind == "COMBO":
        options = list(spec.options or ())
        if isinstance(value, dict) and "__value__" in value:
            value = value["__value__"]
        if options and value not in options:
            shown = options if len(options) <= 20 else options[:20] + ["..."]
            return value, _err("value_not_in_list", "Value not in list", f"{name}: '{value}' not in {shown}",
                               name, spec, value)
    return value, None


def _custom_validation(cls: type | None, node_inputs: dict, literal_names: set[str]) -> tuple[set[str], str | None]:
    """Run the class's VALIDATE_INPUTS on its constant inputs; returns (names it takes over, error)."""
    fn = getattr(cls, "VALIDATE_INPUTS", None) if cls is not None else None
    if fn is None:
        return set(), None
    params = inspect.signature(fn).parameters
    takes_all = any(p.kind == p.VAR_KEYWORD for p in params.values())
    names = set(node_inputs) if takes_all else {n for n in params if n in node_inputs or n in literal_names}
    kwargs = {n: (node_inputs.get(n) if n in literal_names else None) for n in names if n != "input_types"}
    try:
        verdict = fn(**kwargs)
    except Exception as exc:  # noqa: BLE001 - a validator's crash is a validation error
        return names, f"{type(exc).__name__}: {exc}"
    if verdict is True:
        return names, None
    return names, str(verdict) if verdict not in (False, None) else "Custom validation failed"


def find_cycle(graph: dict) -> list[str] | None:
    """One dependency cycle through links, or None (iterative colouring DFS)."""
    state: dict[str, int] = {}
    for start in graph:
        if state.get(start):
            continue
        stack = [(start, iter(_deps(graph, start)))]
        path = [start]
        state[start] = 1
        while stack:
            node, it = stack[-1]
            nxt = next(it, None)
            if nxt is None:
                state[node] = 2
                stack.pop()
                path.pop()
                continue
            if nxt not in graph:
                continue
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if not state.get(nxt):
                state[nxt] = 1
                path.append(nxt)
                stack.append((nxt, iter(_deps(graph, nxt))))
    return None


def _deps(graph: dict, node_id: str) -> list[str]:
    node = graph.get(node_id) or {}
    inputs = node.get("inputs", {}) if isinstance(node, dict) else {}
    return [str(v[0]) for v in inputs.values() if is_link(v)]


def validate_graph(graph: Any, catalog: Catalog, *, require_output: bool = True) -> ValidationResult:
    """Validate an API-format graph. Returns a result with coerced literals in `.graph`."""
    if not isinstance(graph, dict) or not graph:
        return ValidationResult({}, {"type": "invalid_prompt", "message": "The graph must be a non-empty JSON object "
                                     "of {node_id: {class_type, inputs}}.", "details": "", "extra_info": {}})
    graph = {str(k): copy.deepcopy(v) for k, v in graph.items()}
    result = ValidationResult(graph)

    for node_id, node in graph.items():
        if not isinstance(node, dict) or "class_type" not in node:
            result.error = {"type": "invalid_prompt", "message":
                            f"Cannot execute because node {node_id} is missing the class_type property.",
                            "details": f"Node ID '#{node_id}'", "extra_info": {}}
            result.node_errors[node_id] = {"errors": [_err("invalid_prompt", "Missing class_type")],
                                           "dependent_outputs": [], "class_type": None}
            return result
        if node["class_type"] not in catalog:
            result.error = {"type": "invalid_prompt", "message":
                            f"Cannot execute because node {node['class_type']} does not exist.",
                            "details": f"Node ID '#{node_id}'", "extra_info": {}}
            result.node_errors[node_id] = {"errors": [_err("unknown_node_class",
                                                           f"Unknown node class {node['class_type']!r}",
                                                           f"Node ID '#{node_id}'")],
                                           "dependent_outputs": [], "class_type": node["class_type"]}
            return result
        if not isinstance(node.setdefault("inputs", {}), dict):
            result.error = {"type": "invalid_prompt", "message": f"Node {node_id}: 'inputs' must be an object.",
                            "details": f"Node ID '#{node_id}'", "extra_info": {}}
            return result

    cycle = find_cycle(graph)
    if cycle:
        for node_id in dict.fromkeys(cycle):
            result.node_errors[node_id] = {"errors": [_err("dependency_cycle", "Dependency cycle detected",
                                                           " -> ".join(cycle))],
                                           "dependent_outputs": [], "class_type": graph[node_id]["class_type"]}
        result.error = {"type": "prompt_outputs_failed_validation", "message": "Prompt outputs failed validation",
                        "details": f"dependency cycle: {' -> '.join(cycle)}", "extra_info": {}}
        return result

    outputs = [nid for nid, node in graph.items() if catalog[node["class_type"]].output_node]
    result.outputs = outputs
    if require_output and not outputs:
        result.error = {"type": "prompt_no_outputs", "message": "Prompt has no outputs",
                        "details": "Add an output node (e.g. a Save node).", "extra_info": {}}
        return result

    errors: dict[str, list[dict]] = {}
    for node_id, node in graph.items():
        node_errs = _validate_node(node_id, node, graph, catalog)
        if node_errs:
            errors[node_id] = node_errs

    if errors:
        for node_id, errs in errors.items():
            result.node_errors[node_id] = {"errors": errs, "dependent_outputs": _dependent_outputs(graph, node_id, outputs),
                                           "class_type": graph[node_id]["class_type"]}
        result.error = {"type": "prompt_outputs_failed_validation", "message": "Prompt outputs failed validation",
                        "details": "", "extra_info": {}}
    return result


def _validate_node(node_id: str, node: dict, graph: dict, catalog: Catalog) -> list[dict]:
    spec = catalog[node["class_type"]]
    inputs = node["inputs"]
    errs: list[dict] = []
    literal_names = {n for n, v in inputs.items() if not is_link(v)}
    custom_names, custom_error = _custom_validation(catalog.classes.get(spec.name), inputs, literal_names)
    for name, ispec in finalized_inputs(spec, inputs).items():
        if ispec.section == "hidden":
            continue
        if name not in inputs:
            if ispec.required:
                errs.append(_err("required_input_missing", "Required input is missing", name, name, ispec))
            continue
        value = inputs[name]
        if isinstance(value, list) and not isinstance(value, str) and len(value) == 2 and not is_link(value) \
                and not (ispec.type == "COMBO"):
            errs.append(_err("bad_linked_input", "Bad linked input, must be a length-2 list of [node_id, slot_index]",
                             name, name, ispec, value))
            continue
        if is_link(value):
            src_id, slot = str(value[0]), int(value[1])
            src = graph.get(src_id)
            if src is None:
                errs.append(_err("bad_linked_input", f"Linked node {src_id} does not exist", f"{name} <- #{src_id}",
                                 name, ispec, value))
                continue
            src_spec = catalog[src["class_type"]]
            if slot < 0 or slot >= len(src_spec.outputs):
                errs.append(_err("bad_linked_input", f"Node {src_id} ({src['class_type']}) has no output {slot}",
                                 f"{name} <- #{src_id}:{slot}", name, ispec, value))
                continue
            received = src_spec.outputs[slot]
            if not types_match(received, ispec.type) and not (ispec.type == "COMBO" and received in ("COMBO", "STRING", "*")):
                errs.append(_err("return_type_mismatch", "Return type mismatch between linked nodes",
                                 f"{name}, received_type({received}) mismatch input_type({ispec.type})",
                                 name, ispec, value))
            continue
        if ispec.type not in ("INT", "FLOAT", "STRING", "BOOLEAN", "COMBO"):
            errs.append(_err("bad_linked_input", f"Input '{name}' of type {ispec.type} must be linked to another "
                             f"node's output, got a literal", name, name, ispec, value))
            continue
        if name in custom_names:
            continue
        coerced, err = _coerce(ispec, name, value)
        if err:
            errs.append(err)
        else:
            inputs[name] = coerced
    if custom_error:
        errs.append(_err("custom_validation_failed", "Custom validation failed for node", custom_error))
    return errs


def finalized_inputs(spec: NodeSpec, live: dict) -> dict[str, InputSpec]:
    """The inputs ComfyUI validates for this node: V3 dynamic inputs (autogrow, dynamic combo,
    dynamic slot) expand by what the graph gives, named "<parent>.<child>", as
    comfy_api/latest/_io.py get_finalized_class_inputs does."""
    dynamic = (AUTOGROW_TYPE, DYNAMIC_COMBO_TYPE, DYNAMIC_SLOT_TYPE)
    if not any(i.type in dynamic for i in spec.inputs.values()):
        return spec.inputs
    out: dict[str, InputSpec] = {}

    def add(section: str, name: str, ispec: InputSpec, prefix: list[str]) -> None:
        path = prefix + [name]
        key = ".".join(path)
        config = ispec.config
        if ispec.type == AUTOGROW_TYPE:
            template = config.get("template") or {}
            first = next((raw for group in (template.get("input") or {}).values() for raw in group.values()), None)
            names = template.get("names") or [f"{template.get('prefix', '')}{i}" for i in range(int(template.get("max", 0)))]
            low = int(template.get("min", 0))
            for index, child in enumerate(names):
                if first is not None and ".".join(path + [child]) in live:
                    child_section = "required" if index < low else "optional"
                    add(child_section, child, parse_input(child, first, child_section), path)
        elif ispec.type == DYNAMIC_COMBO_TYPE:
            options = config.get("options") or []
            chosen = next((o for o in options if isinstance(o, dict) and o.get("key") == live.get(key)), None)
            if key in live and chosen is not None:
                expand(chosen.get("inputs") or {}, path)
            # ComfyUI does not check the key itself; a combo of the keys is the closest literal check.
            out[key] = InputSpec(key, "COMBO", config, section, tuple(o.get("key") for o in options if isinstance(o, dict)))
        elif ispec.type == DYNAMIC_SLOT_TYPE:
            if key in live:
                expand(config.get("inputs") or {}, path)
                out[key] = InputSpec(key, str(config.get("slotType") or "*"), config, section)
        else:
            out[key] = ispec if not prefix else InputSpec(key, ispec.type, ispec.config, section, ispec.options)

    def expand(groups: dict, prefix: list[str]) -> None:
        for section in ("required", "optional"):
            for name, raw in (groups.get(section) or {}).items():
                add(section, name, parse_input(name, raw, section), prefix)

    for name, ispec in spec.inputs.items():
        if ispec.section == "hidden":
            out[name] = ispec
        else:
            add(ispec.section, name, ispec, [])
    return out


def _dependent_outputs(graph: dict, node_id: str, outputs: list[str]) -> list[str]:
    dependents = []
    for out in outputs:
        seen, stack = set(), [out]
        while stack:
            cur = stack.pop()
            if cur == node_id:
                dependents.append(out)
                break
            if cur in seen:
                continue
            seen.add(cur)
            stack.extend(d for d in _deps(graph, cur) if d in graph)
    return dependents
