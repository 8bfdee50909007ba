"""Run API-format graphs: the shared result type and the in-process (embedded) engine.

The embedded engine follows ComfyUI's execution semantics (validation, only
what output nodes need, list mapping, node expansion, per-node caching,
progress and interruption) but keeps everything linear: one topological pass,
and each node's cache key is computed once from its inputs' keys instead of
re-walking all ancestors (ComfyUI's executor grows quadratically with depth).
"""
from __future__ import annotations

import hashlib
import json
import math
import threading
import time
import traceback
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

from ..nodes import bridge
from .catalog import Catalog, pack_catalog
from .validate import GraphError, ValidationResult, _validate_node, is_link, validate_graph

EventHook = Callable[[str, dict], None]


@dataclass
class RunResult:
    """What one graph run produced, the same shape for every engine."""

    run_id: str
    engine: str
    status: str = "pending"  # success | error | interrupted | invalid
    outputs: dict[str, dict] = field(default_factory=dict)  # node id -> ui dict (ComfyUI history "outputs")
    values: dict[str, list] = field(default_factory=dict)  # node id -> return values (embedded engine only)
    timings: dict[str, float] = field(default_factory=dict)
    cached: list[str] = field(default_factory=list)
    executed: list[str] = field(default_factory=list)
    files: list[str] = field(default_factory=list)
    error: dict | None = None
    node_errors: dict = field(default_factory=dict)
    seconds: float = 0.0
    output_dir: str = ""

    @property
    def ok(self) -> bool:
        return self.status == "success"

    def message(self) -> str:
        if self.status == "success":
            return f"success: {len(self.executed)} nodes run, {len(self.cached)} cached, {len(self.files)} files"
        if self.node_errors or (self.status == "invalid" and self.error):
            return ValidationResult({}, self.error, self.node_errors).summary()
        if self.error:
            node = self.error.get("node_id")
            where = f"node {node} ({self.error.get('node_type')}): " if node else ""
            return f"{self.status}: {where}{self.error.get('exception_message') or self.error.get('message')}"
        return self.status

    def to_json(self) -> dict:
        data = asdict(self)
        data.pop("values")
        return data


class ExecutionFailed(RuntimeError):
    def __init__(self, node_id: str, class_type: str, exc: BaseException):
        self.node_id, self.class_type, self.exc = node_id, class_type, exc
        super().__init__(f"node {node_id} ({class_type}): {type(exc).__name__}: {exc}")


class DynamicGraph:
    """The live graph (original + expanded nodes), handed to nodes that ask for DYNPROMPT."""

    def __init__(self, graph: dict):
        self.original = graph
        self.nodes = dict(graph)
        self.parents: dict[str, str] = {}

    def get_node(self, node_id: str) -> dict:
        return self.nodes[node_id]

    def has_node(self, node_id: str) -> bool:
        return node_id in self.nodes

    def all_node_ids(self):
        return list(self.nodes)

    def get_original_prompt(self) -> dict:
        return self.original

    def get_real_node_id(self, node_id: str) -> str:
        while node_id in self.parents:
            node_id = self.parents[node_id]
        return node_id

    get_display_node_id = get_real_node_id


def topological_order(graph: dict, targets: list[str], done: set[str] | frozenset = frozenset()) -> list[str]:
    """Ancestors of `targets` (not already done), dependencies first; iterative, linear in graph size."""
    needed: set[str] = set()
    stack = [t for t in targets if t not in done]
    while stack:
        node_id = stack.pop()
        if node_id in needed:
            continue
        needed.add(node_id)
        for value in graph[node_id].get("inputs", {}).values():
            if is_link(value) and str(value[0]) not in done and str(value[0]) not in needed:
                stack.append(str(value[0]))
    indegree = {n: 0 for n in needed}
    users: dict[str, list[str]] = {n: [] for n in needed}
    for node_id in needed:
        for value in graph[node_id].get("inputs", {}).values():
            if is_link(value) and str(value[0]) in needed:
                indegree[node_id] += 1
                users[str(value[0])].append(node_id)
    # Keep the graph's own order among ready nodes so runs are reproducible.
    position = {n: i for i, n in enumerate(graph)}
    ready = sorted((n for n, d in indegree.items() if d == 0), key=position.get, reverse=True)
    order = []
    while ready:
        node_id = ready.pop()
        order.append(node_id)
        for user in users[node_id]:
            indegree[user] -= 1
            if indegree[user] == 0:
                ready.append(user)
                ready.sort(key=position.get, reverse=True)
    if len(order) != len(needed):
        raise ValueError("dependency cycle in graph")
    return order


_UNCACHEABLE = object()


def _literal_key(value: Any):
    try:
        return json.dumps(value, sort_keys=True, default=_reject)
    except TypeError:
        return _UNCACHEABLE


def _reject(value):
    raise TypeError


class EmbeddedEngine:
    """Runs graphs in this process over the pack's nodes: no server, no GPU needed."""

    name = "embedded"

    def __init__(self, catalog: Catalog | None = None):
        self._catalog = catalog
        self._cache: dict[str, tuple[list, dict]] = {}
        self._instances: dict[tuple[str, str], Any] = {}
        self._cancel = threading.Event()

    # ------------------------------------------------------------ interface
    def catalog(self) -> Catalog:
        if self._catalog is None:
            self._catalog = pack_catalog()
        return self._catalog

    def validate(self, graph: dict) -> ValidationResult:
        return validate_graph(graph, self.catalog())

    def interrupt(self) -> None:
        self._cancel.set()

    def clear_cache(self) -> None:
        self._cache.clear()
        self._instances.clear()

    def run(self, graph: dict, run_dir: str | Path | None = None, on_event: EventHook | None = None,
            run_id: str | None = None, keep_values: bool = True) -> RunResult:
        run_id = run_id or uuid.uuid4().hex[:12]
        result = RunResult(run_id=run_id, engine=self.name)
        emit = on_event or (lambda kind, data: None)
        started = time.perf_counter()
        self._cancel.clear()

        checked = self.validate(graph)
        if not checked.ok:
            result.status, result.error, result.node_errors = "invalid", checked.error, checked.node_errors
            return result
        graph = checked.graph

        out_dir = Path(run_dir) if run_dir else bridge.output_directory()
        out_dir.mkdir(parents=True, exist_ok=True)
        result.output_dir = str(out_dir)
        settings_paths = _default_dirs()
        ctx = bridge.RunContext(
            output_dir=out_dir.resolve(),
            input_dir=settings_paths["input"],
            temp_dir=settings_paths["temp"],
            on_progress=lambda node, value, total: emit("progress", {"node": node, "value": value, "max": total,
                                                                     "prompt_id": run_id}),
            on_message=lambda event, data: emit(event, data),
            cancelled=self._cancel.is_set,
        )
        token = bridge.set_context(ctx)
        dyn = DynamicGraph(graph)
        state = _RunState(dyn=dyn, values={}, keys={}, ui={}, result=result, emit=emit, ctx=ctx, used_keys=set())
        emit("execution_start", {"prompt_id": run_id})
        try:
            order = topological_order(graph, checked.outputs)
            self._run_nodes(order, state)
            result.status = "success"
            emit("execution_success", {"prompt_id": run_id})
        except ExecutionFailed as failure:
            interrupted = isinstance(failure.exc, (bridge.Interrupted, KeyboardInterrupt)) or \
                type(failure.exc).__name__ == "InterruptProcessingException"
            result.status = "interrupted" if interrupted else "error"
            result.error = {
                "type": "execution_interrupted" if interrupted else "execution_error",
                "node_id": failure.node_id, "node_type": failure.class_type,
                "exception_type": type(failure.exc).__name__, "exception_message": str(failure.exc),
                "traceback": traceback.format_exception(failure.exc),
                "message": str(failure.exc),
            }
            emit(result.error["type"], {"prompt_id": run_id, **{k: v for k, v in result.error.items() if k != "traceback"}})
        finally:
            bridge.reset_context(token)
            # Like ComfyUI's classic cache: keep only what this run used.
            self._cache = {k: v for k, v in self._cache.items() if k in state.used_keys}
            result.seconds = time.perf_counter() - started
            emit("executing", {"node": None, "prompt_id": run_id})
        result.outputs = {k: v for k, v in state.ui.items() if v}
        result.files = _collect_files(result.outputs, out_dir)
        if keep_values:
            result.values = {k: v for k, v in state.values.items()
                             if k in checked.outputs or dyn.parents.get(k) is None}
        return result

    # ------------------------------------------------------------ execution
    def _run_nodes(self, order: list[str], state: "_RunState") -> None:
        for node_id in order:
            if self._cancel.is_set():
                raise ExecutionFailed(node_id, state.dyn.nodes[node_id]["class_type"], bridge.Interrupted("Run cancelled."))
            self._run_node(node_id, state)

    def _cache_key(self, node_id: str, node: dict, cls: type, state: "_RunState"):
        parts = [node["class_type"]]
        literals = {}
        for name, value in sorted(node["inputs"].items()):
            if is_link(value):
                src_key = state.keys.get(str(value[0]), _UNCACHEABLE)
                if src_key is _UNCACHEABLE:
                    return _UNCACHEABLE
                parts.append(f"{name}<-{src_key}:{int(value[1])}")
            else:
                key = _literal_key(value)
                if key is _UNCACHEABLE:
                    return _UNCACHEABLE
                literals[name] = value
                parts.append(f"{name}={key}")
        if hasattr(cls, "IS_CHANGED"):
            try:
                changed = cls.IS_CHANGED(**{k: literals.get(k) for k in _param_names(cls.IS_CHANGED, node["inputs"])})
            except Exception:  # noqa: BLE001 - ComfyUI treats a failing IS_CHANGED as "always changed"
                return _UNCACHEABLE
            if isinstance(changed, float) and math.isnan(changed):
                return _UNCACHEABLE
            parts.append(f"changed={changed!r}")
        if getattr(cls, "NOT_IDEMPOTENT", False):
            parts.append(f"id={node_id}")
        return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()

    def _run_node(self, node_id: str, state: "_RunState") -> None:
        node = state.dyn.nodes[node_id]
        class_type = node["class_type"]
        cls = self.catalog().classes.get(class_type)
        if cls is None:
            raise ExecutionFailed(node_id, class_type, KeyError(
                f"The embedded engine cannot run {class_type!r}: it is not one of the pack's nodes."))
        key = self._cache_key(node_id, node, cls, state)
        state.keys[node_id] = key
        if key is not _UNCACHEABLE and key in self._cache:
            state.values[node_id], state.ui[node_id] = self._cache[key]
            state.used_keys.add(key)
            state.result.cached.append(node_id)
            state.emit("execution_cached", {"nodes": [node_id], "prompt_id": state.result.run_id})
            return

        state.emit("executing", {"node": node_id, "display_node": state.dyn.get_display_node_id(node_id),
                                 "prompt_id": state.result.run_id})
        started = time.perf_counter()
        state.ctx.node_id = node_id
        try:
            outputs, ui, expansion = self._call(node_id, node, cls, state)
            if expansion is not None:
                outputs = self._expand(node_id, expansion, state)
        except ExecutionFailed:
            raise
        except BaseException as exc:  # noqa: BLE001 - reported as the node's failure
            if isinstance(exc, (SystemExit,)):
                raise
            raise ExecutionFailed(node_id, class_type, exc) from exc
        state.result.timings[node_id] = time.perf_counter() - started
        state.result.executed.append(node_id)
        state.values[node_id], state.ui[node_id] = outputs, ui
        if ui:
            state.emit("executed", {"node": node_id, "display_node": state.dyn.get_display_node_id(node_id),
                                    "output": ui, "prompt_id": state.result.run_id})
        if key is not _UNCACHEABLE:
            self._cache[key] = (outputs, ui)
            state.used_keys.add(key)

    def _call(self, node_id: str, node: dict, cls: type, state: "_RunState"):
        spec = self.catalog()[node["class_type"]]
        instance = self._instances.get((node_id, node["class_type"]))
        if instance is None:
            instance = self._instances[(node_id, node["class_type"])] = cls()
        inputs: dict[str, list] = {}
        for name, value in node["inputs"].items():
            if is_link(value):
                inputs[name] = state.values[str(value[0])][int(value[1])]
            elif name in spec.inputs:
                inputs[name] = [value]
        for name, ispec in spec.inputs.items():
            if ispec.section == "hidden":
                inputs[name] = [_hidden_value(ispec.type, node_id, state)]
        func = getattr(instance, cls.FUNCTION)
        if getattr(cls, "INPUT_IS_LIST", False):
            calls = [{k: v for k, v in inputs.items()}]
        else:
            longest = max((len(v) for v in inputs.values()), default=1)
            if any(len(v) == 0 for v in inputs.values()):
                longest = 0
            calls = [{k: v[min(i, len(v) - 1)] for k, v in inputs.items()} for i in range(longest)]
        n_out = len(spec.outputs)
        outputs: list[list] = [[] for _ in range(n_out)]
        ui: dict[str, list] = {}
        for kwargs in calls:
            bridge.check_interrupt()
            returned = func(**kwargs)
            if isinstance(returned, dict):
                for k, v in (returned.get("ui") or {}).items():
                    ui.setdefault(k, []).extend(v if isinstance(v, list) else [v])
                if "expand" in returned:
                    if len(calls) != 1:
                        raise ValueError("node expansion inside a list-mapped call is not supported")
                    return None, ui, (returned["expand"], returned.get("result", ()))
                returned = returned.get("result", ())
            if returned is None:
                returned = ()
            if not isinstance(returned, (tuple, list)):
                raise TypeError(f"{node['class_type']}.{cls.FUNCTION} must return a tuple, got {type(returned).__name__}")
            for i in range(n_out):
                value = returned[i] if i < len(returned) else None
                if spec.output_is_list[i] if i < len(spec.output_is_list) else False:
                    outputs[i].extend(value)
                else:
                    outputs[i].append(value)
        return outputs, ui, None

    def _expand(self, parent_id: str, expansion: tuple[dict, tuple], state: "_RunState") -> list[list]:
        new_graph, result = expansion
        new_graph = {str(k): v for k, v in (new_graph or {}).items()}
        catalog = self.catalog()
        for node_id, node in new_graph.items():
            if node_id in state.dyn.nodes:
                raise ValueError(f"expanded node id {node_id!r} already exists; use a unique prefix")
            if node.get("class_type") not in catalog:
                raise ValueError(f"expanded graph uses unknown node class {node.get('class_type')!r}")
        merged = {**state.dyn.nodes, **new_graph}
        for node_id, node in new_graph.items():
            node.setdefault("inputs", {})
            errs = _validate_node(node_id, node, merged, catalog)
            if errs:
                raise GraphError(ValidationResult(merged, {"type": "prompt_outputs_failed_validation",
                                                           "message": "Expanded graph failed validation",
                                                           "details": "", "extra_info": {}},
                                                  {node_id: {"errors": errs, "dependent_outputs": [],
                                                             "class_type": node["class_type"]}}))
        for node_id, node in new_graph.items():
            state.dyn.nodes[node_id] = node
            state.dyn.parents[node_id] = parent_id
        targets = [str(v[0]) for v in result if is_link(v)]
        targets += [nid for nid, node in new_graph.items() if catalog[node["class_type"]].output_node]
        order = topological_order(state.dyn.nodes, list(dict.fromkeys(targets)), done=set(state.values))
        self._run_nodes(order, state)
        outputs = []
        for value in result:
            outputs.append(state.values[str(value[0])][int(value[1])] if is_link(value) else [value])
        return outputs


@dataclass
class _RunState:
    dyn: DynamicGraph
    values: dict
    keys: dict
    ui: dict
    result: RunResult
    emit: EventHook
    ctx: bridge.RunContext
    used_keys: set


def _param_names(fn, inputs: dict) -> list[str]:
    import inspect

    params = inspect.signature(fn).parameters
    if any(p.kind == p.VAR_KEYWORD for p in params.values()):
        return list(inputs)
    return [n for n in params if n in inputs]


def _hidden_value(kind: str, node_id: str, state: "_RunState"):
    return {"UNIQUE_ID": node_id, "PROMPT": state.dyn.original, "DYNPROMPT": state.dyn,
            "EXTRA_PNGINFO": {}}.get(kind)


def _default_dirs() -> dict[str, Path]:
    from ..configs.settings import load_settings

    paths = load_settings().paths
    return {"input": Path(paths.input).resolve(), "temp": Path(paths.temp).resolve()}


def _collect_files(outputs: dict[str, dict], out_dir: Path) -> list[str]:
    files = []
    for ui in outputs.values():
        for entries in ui.values():
            for entry in entries if isinstance(entries, list) else [entries]:
                if isinstance(entry, dict) and "filename" in entry and entry.get("type", "output") == "output":
                    path = (out_dir / entry.get("subfolder", "") / entry["filename"]).resolve()
                    if path.exists() and str(path) not in files:
                        files.append(str(path))
    return files
