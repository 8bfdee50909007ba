"""Graph validation with ComfyUI's semantics and ComfyUI's error shape.

The result has the same `error` / `node_errors` structure as ComfyUI's
`POST /prompt` answer (execution.py validate_prompt), so the Director reads
validation feedback the same way from the embedded engine and from a server.
Literal widget values are coerced in place on the returned copy, as ComfyUI does.
"""
from __future__ import annotations

import copy
import inspect
import math
from dataclasses import dataclass, field
from functools import lru_cache
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


MAX_DEPTH = 64  # deeper literal values are refused (and never copied recursively)
INT_RANGE = (-(2 ** 63), 2 ** 64 - 1)  # what int64 seeds (and uint64 ones) hold; a larger INT cannot reach a node
CYCLE_SHOWN = 12  # node ids named in a cycle's message (the whole cycle is in extra_info, capped)
CYCLE_KEPT = 200


def is_link(value: Any) -> bool:
    """[node_id, output_index] with a string id and an integer index (ComfyUI's shape of a link)."""
    return isinstance(value, list) and len(value) == 2 and isinstance(value[0], str) and type(value[1]) is int


def _text(value: Any, limit: int = 200) -> str:
    """str(value) as ComfyUI puts it in details, cut short (never a crash on a huge int)."""
    return value[:limit] + ("..." if len(value) > limit else "") if isinstance(value, str) else _shown(value, limit)


def _shown(value: Any, limit: int = 120) -> str:
    """A value as it appears in a message: repr, cut short (a value may be megabytes or a 5,000-digit int)."""
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > 10 ** 30:
        return f"an integer of {len(str(abs(value)))} digits" if abs(value) < 10 ** 4000 else "an integer too large to print"
    try:
        text = repr(value)
    except (ValueError, RecursionError):
        return f"a {type(value).__name__}"
    return text if len(text) <= limit else text[:limit] + "..."


def _plain(value: Any) -> Any:
    """received_value as JSON can carry it: NaN/Infinity and huge or nested values become short text."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, int) and not isinstance(value, bool) and not INT_RANGE[0] <= value <= INT_RANGE[1]:
        return _shown(value)
    if isinstance(value, (str, int, float, bool, type(None))):
        return value if not isinstance(value, str) or len(value) <= 1000 else value[:1000] + "..."
    return _shown(value, 300)


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
         spec: InputSpec | None = None, value: Any = None, **extra_info) -> dict:
    extra = {}
    if input_name is not None:
        extra = {"input_name": input_name, "input_config": [spec.type, spec.config] if spec else None,
                 "received_value": _plain(value)}
    return {"type": kind, "message": message, "details": details, "extra_info": {**extra, **extra_info}}


def _too_deep(value: Any, limit: int = MAX_DEPTH) -> bool:
    """Whether a JSON value nests deeper than `limit` (checked without recursion)."""
    stack = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if depth > limit:
            return True
        if isinstance(item, dict):
            stack.extend((v, depth + 1) for v in item.values())
        elif isinstance(item, list):
            stack.extend((v, depth + 1) for v in item)
    return False


def _non_finite(kind: str, name: str, value: float, spec: InputSpec) -> dict | None:
    """NaN and infinities: ComfyUI's own min/max error where its check would catch them, else a conversion
    error (ComfyUI lets NaN through every check; a NaN volume writes full-scale noise)."""
    lo, hi = spec.config.get("min"), spec.config.get("max")
    if value == math.inf and hi is not None:
        return _err("value_bigger_than_max", f"Value {value} bigger than max of {hi}", name, name, spec, value)
    if value == -math.inf and lo is not None:
        return _err("value_smaller_than_min", f"Value {value} smaller than min of {lo}", name, name, spec, value)
    return _err("invalid_input_type", f"Failed to convert an input value to a {kind} value",
                f"{name}, {value}, not a finite number", name, spec, value)


def _convert(spec: InputSpec, name: str, value: Any) -> tuple[Any, dict | None]:
    """ComfyUI's literal conversion (int(), float(), str(), bool()) with its invalid_input_type error,
    plus what ComfyUI lets through: non-finite numbers and INTs no node can hold."""
    kind = spec.type
    try:
        if kind == "INT":
            if isinstance(value, float) and not math.isfinite(value):
                int(value)  # raises ComfyUI's own ValueError/OverflowError text
            converted = int(value)
            if (converted > INT_RANGE[1] and spec.config.get("max") is None) or \
                    (converted < INT_RANGE[0] and spec.config.get("min") is None):
                raise OverflowError("integer out of the 64-bit range")
            value = converted
        elif kind == "FLOAT":
            if isinstance(value, bool):
                raise ValueError("a boolean is not a number")
            value = float(value)
            if not math.isfinite(value):
                return value, _non_finite(kind, name, value, spec)
        elif kind == "STRING":
            if isinstance(value, (dict, list)):
                raise ValueError(f"a {type(value).__name__} is not text")
            value = str(value)
        elif kind == "BOOLEAN":
            if isinstance(value, str):
                if value.lower() not in ("true", "false", "1", "0"):
                    raise ValueError("not true or false")
                value = value.lower() in ("true", "1")
            elif isinstance(value, (dict, list)):
                raise ValueError(f"a {type(value).__name__} is not a boolean")
            else:
                value = bool(value)
    except (TypeError, ValueError, OverflowError) as exc:
        return value, _err("invalid_input_type", f"Failed to convert an input value to a {kind} value",
                           f"{name}, {_text(value, 120)}, {_text(str(exc), 200)}", name, spec, value, exception_message=str(exc)[:200])
    return value, None


def _check_limits(spec: InputSpec, name: str, value: Any, options_known: bool) -> dict | None:
    """min/max and combo membership, as ComfyUI checks them after conversion."""
    if spec.type in ("INT", "FLOAT"):
        lo, hi = spec.config.get("min"), spec.config.get("max")
        if lo is not None and value < lo:
            return _err("value_smaller_than_min", f"Value {_shown(value)} smaller than min of {lo}", name, name,
                        spec, value)
        if hi is not None and value > hi:
            return _err("value_bigger_than_max", f"Value {_shown(value)} bigger than max of {hi}", name, name,
                        spec, value)
    if spec.type == "COMBO":
        options = list(spec.options or ())
        if (options or options_known) and not _in_options(value, options):
            shown = f"(list of length {len(options)})" if len(options) > 20 else str(options)
            return _err("value_not_in_list", "Value not in list", f"{name}: '{_text(value)}' not in {shown}",
                        name, spec, value)
    return None


def _in_options(value: Any, options: list) -> bool:
    try:
        return value in options
    except TypeError:
        return False


@lru_cache(maxsize=512)
def _validator_params(fn) -> tuple[frozenset, bool]:
    params = inspect.signature(fn).parameters
    return frozenset(params), any(p.kind == p.VAR_KEYWORD for p in params.values())


def _custom_validator(cls: type | None):
    """The class's VALIDATE_INPUTS with (its parameter names, whether it takes **kwargs), or None."""
    fn = getattr(cls, "VALIDATE_INPUTS", None) if cls is not None else None
    if fn is None:
        return None
    try:
        names, takes_all = _validator_params(fn)
    except (TypeError, ValueError):
        return None
    return fn, names, takes_all


def _run_custom_validation(validator, spec: NodeSpec, inputs: dict, linked: set[str]) -> list[dict]:
    """ComfyUI's custom_validation_failed: one error per input handed to the validator, details 'name - why'."""
    fn, params, takes_all = validator
    given = [n for n in inputs if (n in spec.inputs or n in linked) and (takes_all or n in params)]
    given += [n for n, i in spec.inputs.items() if i.section == "hidden" and n not in given
              and (takes_all or n in params)]
    kwargs = {n: (None if n in linked else inputs.get(n)) for n in given}
    if "input_types" in params:
        kwargs["input_types"] = None
        given.append("input_types")
    try:
        verdict = fn(**kwargs)
    except Exception as exc:  # noqa: BLE001 - a validator's crash is a validation error
        verdict = f"{type(exc).__name__}: {exc}"
    if verdict is True:
        return []
    why = "" if verdict in (False, None) else f" - {_shown(verdict, 300) if not isinstance(verdict, str) else verdict[:300]}"
    return [{"type": "custom_validation_failed", "message": "Custom validation failed for node",
             "details": f"{name}{why}", "extra_info": {"input_name": name}} for name in given]


def find_cycle(graph: dict) -> list[str] | None:
    """One dependency cycle through links, or None (iterative colouring DFS, linear in graph size)."""
    state: dict[str, int] = {}
    for start in graph:
        if state.get(start):
            continue
        stack = [(start, iter(_deps(graph, start)))]
        path = [start]
        on_path = {start: 0}
        state[start] = 1
        while stack:
            node, it = stack[-1]
            nxt = next(it, None)
            if nxt is None:
                state[node] = 2
                stack.pop()
                on_path.pop(path.pop(), None)
                continue
            if nxt not in graph:
                continue
            if state.get(nxt) == 1:
                return path[on_path[nxt]:] + [nxt]
            if not state.get(nxt):
                state[nxt] = 1
                on_path[nxt] = len(path)
                path.append(nxt)
                stack.append((nxt, iter(_deps(graph, nxt))))
    return None


def _deps(graph: dict, node_id: str) -> list[str]:
    node = graph.get(node_id) or {}
    inputs = node.get("inputs", {}) if isinstance(node, dict) else {}
    return [v[0] for v in inputs.values() if is_link(v)] if isinstance(inputs, dict) else []


def _invalid(message: str, where: str | None = None, **extra) -> dict:
    return {"type": "invalid_prompt", "message": message,
            "details": f"Node ID '#{where}'" if where is not None else "", "extra_info": extra}


def _copy_node(node: dict) -> dict:
    """The node with its own inputs dict and copied values (other keys, like _meta, shared: never edited)."""
    inputs = node.get("inputs", {})
    if isinstance(inputs, dict):
        inputs = {name: copy.deepcopy(value) if isinstance(value, (dict, list)) and not _too_deep(value) else value
                  for name, value in inputs.items()}
    return {**node, "inputs": inputs}


def _structure_error(node_id: str, node: Any, catalog: Catalog) -> dict | None:
    """What ComfyUI refuses before any input is looked at (its node_errors stay empty for these)."""
    if not isinstance(node, dict) or "class_type" not in node:
        return _invalid(f"Cannot execute because node {_text(node_id, 60)} is missing the class_type property.",
                        node_id)
    class_type = node["class_type"]
    if not isinstance(class_type, str):
        return _invalid(f"Cannot execute because node {_text(node_id, 60)} has class_type {_shown(class_type, 60)}, "
                        "which is not a node class name.", node_id)
    if class_type not in catalog:
        return _invalid(f"Cannot execute because node {_text(class_type, 80)} does not exist.", node_id,
                        node_id=node_id, class_type=class_type)
    if not isinstance(node.get("inputs", {}), dict):
        return _invalid(f"Cannot execute because node {_text(node_id, 60)} ({class_type}) has 'inputs' of type "
                        f"{type(node['inputs']).__name__}; it must be an object of input name -> value.", node_id)
    return None


def validate_graph(graph: Any, catalog: Catalog, *, require_output: bool = True) -> ValidationResult:
    """Validate an API-format graph. Returns a result with coerced literals in `.graph`.

    Linear in graph size: every node is checked once, each link looked up once, and the outputs that
    depend on a failing node come from one pass over the links."""
    if not isinstance(graph, dict) or not graph:
        return ValidationResult({}, _invalid("The graph must be a non-empty JSON object of "
                                             "{node_id: {class_type, inputs}}."))
    graph = {str(k): v for k, v in graph.items()}
    for node_id, node in graph.items():
        error = _structure_error(node_id, node, catalog)
        if error:
            return ValidationResult(graph, error)
    graph = {node_id: _copy_node(node) for node_id, node in graph.items()}
    result = ValidationResult(graph)

    outputs = [nid for nid, node in graph.items() if catalog[node["class_type"]].output_node]
    result.outputs = outputs
    if require_output and not outputs:
        result.error = {"type": "prompt_no_outputs", "message": "Prompt has no outputs",
                        "details": "Add an output node (e.g. a Save node).", "extra_info": {}}
        return result

    cycle = find_cycle(graph)
    if cycle:
        shown = " -> ".join(cycle[:CYCLE_SHOWN]) + (f" -> ... ({len(cycle) - 1} nodes)" if len(cycle) > CYCLE_SHOWN else "")
        # ComfyUI 0.8.0 recurses around the loop until Python's recursion limit; the error it records is
        # overwritten on the way back up, so it answers prompt_outputs_failed_validation with no node_errors.
        # Same answer here, with the cycle named once in the details.
        result.error = {"type": "prompt_outputs_failed_validation", "message": "Prompt outputs failed validation",
                        "details": f"dependency cycle: {shown}",
                        "extra_info": {"cycle": cycle[:CYCLE_KEPT], "cycle_length": len(cycle) - 1}}
        return result

    output_set = set(outputs)
    errors: dict[str, list[dict]] = {}
    for node_id, node in graph.items():
        try:
            node_errs = _validate_node(node_id, node, graph, catalog, output_set)
        except Exception as exc:  # noqa: BLE001 - never a bare exception: the node is named
            node_errs = [_err("exception_during_validation", "Exception when validating node",
                              f"{type(exc).__name__}: {_shown(str(exc), 200)}")]
        if node_errs:
            errors[node_id] = node_errs

    if errors:
        dependents = _dependent_outputs(graph, set(errors), outputs)
        for node_id, errs in errors.items():
            result.node_errors[node_id] = {"errors": errs, "dependent_outputs": dependents.get(node_id, []),
                                           "class_type": graph[node_id]["class_type"]}
        result.error = {"type": "prompt_outputs_failed_validation", "message": "Prompt outputs failed validation",
                        "details": "", "extra_info": {}}
    return result


def _link_error(node_id: str, name: str, ispec: InputSpec, value: Any, graph: dict, catalog: Catalog,
                outputs: set[str]) -> dict | None:
    """A [node_id, index] link whose node or output does not exist. ComfyUI fails with an exception there
    (KeyError/IndexError/TypeError), reported on the node holding the link: exception_during_validation for
    an output node, exception_during_inner_validation for a node an output reaches."""
    src_id, slot = value
    kind, message = (("exception_during_validation", "Exception when validating node") if node_id in outputs
                     else ("exception_during_inner_validation", "Exception when validating inner node"))
    src = graph.get(src_id) if isinstance(src_id, str) else None
    if src is None:
        why = f"Linked node {_text(src_id, 60)} does not exist"
    elif type(slot) is not int:
        why = f"Link to node {src_id} names output {_shown(slot, 40)}; an output index is a whole number"
    elif not 0 <= slot < len(catalog[src["class_type"]].outputs):
        count = len(catalog[src["class_type"]].outputs)
        why = f"Node {src_id} ({src['class_type']}) has no output {slot} (it has {count})"
    else:
        return None
    # The message says what is wrong (ComfyUI's would be a bare KeyError); the type is ComfyUI's.
    return _err(kind, why, f"{name} <- {_shown(value, 80)} ({message.lower()})", name, ispec, value,
                linked_node=_plain(value))


def _validate_node(node_id: str, node: dict, graph: dict, catalog: Catalog,
                   outputs: set[str] | None = None) -> list[dict]:
    spec = catalog[node["class_type"]]
    inputs = node["inputs"]
    outputs = outputs if outputs is not None else {nid for nid, n in graph.items()
                                                   if catalog.get(n.get("class_type", "")) and
                                                   catalog[n["class_type"]].output_node}
    errs: list[dict] = []
    validator = _custom_validator(catalog.classes.get(spec.name))
    custom = validator[1] if validator else frozenset()
    takes_all = bool(validator and validator[2])
    options_known = getattr(spec, "options_known", True)
    linked: set[str] = set()
    for name, ispec in finalized_inputs(spec, inputs).items():
        if ispec.section == "hidden":
            continue
        if name not in inputs:
            if ispec.required:
                errs.append(_err("required_input_missing", "Required input is missing", name, name, ispec))
            continue
        value = inputs[name]
        if isinstance(value, dict) and "__value__" in value:  # a wrapped list widget value
            value = inputs[name] = value["__value__"]
        elif isinstance(value, list):
            if len(value) != 2:
                errs.append(_err("bad_linked_input", "Bad linked input, must be a length-2 list of [node_id, slot_index]",
                                 name, name, ispec, value))
                continue
            linked.add(name)
            link_error = _link_error(node_id, name, ispec, value, graph, catalog, outputs)
            if link_error:
                errs.append(link_error)
                continue
            received = catalog[graph[value[0]]["class_type"]].outputs[value[1]]
            if "input_types" not in custom and not types_match(received, ispec.type) \
                    and not (ispec.type == "COMBO" and received in ("COMBO", "STRING", "*")):
                errs.append(_err("return_type_mismatch", "Return type mismatch between linked nodes",
                                 f"{name}, received_type({received}) mismatch input_type({ispec.type})",
                                 name, ispec, value))
            continue
        if isinstance(value, (dict, list)) and _too_deep(value):
            errs.append(_err("invalid_input_type", f"Failed to convert an input value to a {ispec.type} value",
                             f"{name}, a value nested more than {MAX_DEPTH} levels deep", name, ispec, "(too deep)"))
            continue
        if ispec.type not in ("INT", "FLOAT", "STRING", "BOOLEAN", "COMBO"):
            errs.append(_err("bad_linked_input", f"Input '{name}' of type {ispec.type} must be linked to another "
                             f"node's output, got a literal", name, name, ispec, value))
            continue
        converted, err = _convert(ispec, name, value)
        if err:
            errs.append(err)
            continue
        inputs[name] = converted
        if takes_all or name in custom:
            continue  # the node's own validator checks this one (ComfyUI skips min/max/options then)
        err = _check_limits(ispec, name, converted, options_known)
        if err:
            errs.append(err)
    if validator:
        errs += _run_custom_validation(validator, spec, inputs, linked)
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


def _dependent_outputs(graph: dict, failing: set[str], outputs: list[str]) -> dict[str, list[str]]:
    """For each failing node, the outputs that need it: one pass in dependency order carrying the failing
    ancestors of every node (shared, not copied, along chains), so the cost follows the graph and the answer."""
    above: dict[str, frozenset] = {}
    order = _dependency_order(graph)
    for node_id in order:
        parents = [above[d] for d in dict.fromkeys(_deps(graph, node_id)) if d in above and above[d]]
        mine = frozenset((node_id,)) if node_id in failing else frozenset()
        if not parents:
            above[node_id] = mine
        elif len(parents) == 1 and not mine:
            above[node_id] = parents[0]
        else:
            above[node_id] = mine.union(*parents)
    dependents: dict[str, list[str]] = {}
    for out in outputs:
        for node_id in above.get(out, ()):
            dependents.setdefault(node_id, []).append(out)
    return dependents


def _dependency_order(graph: dict) -> list[str]:
    """Every node after the nodes it links to (Kahn's algorithm; the graph has no cycle here)."""
    users: dict[str, list[str]] = {}
    waiting: dict[str, int] = {}
    for node_id in graph:
        deps = [d for d in dict.fromkeys(_deps(graph, node_id)) if d in graph]
        waiting[node_id] = len(deps)
        for dep in deps:
            users.setdefault(dep, []).append(node_id)
    ready = [n for n, count in waiting.items() if count == 0]
    order = []
    while ready:
        node_id = ready.pop()
        order.append(node_id)
        for user in users.get(node_id, ()):
            waiting[user] -= 1
            if waiting[user] == 0:
                ready.append(user)
    return order
