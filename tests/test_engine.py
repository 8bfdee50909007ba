"""Embedded engine semantics on small graphs of test nodes (ComfyUI's rules, linear cost)."""
import threading
import time

import pytest

from animation_studio.agent.catalog import Catalog
from animation_studio.agent.engine import EmbeddedEngine, topological_order
from animation_studio.nodes import bridge

CALLS: list[str] = []


class Const:
    RETURN_TYPES = ("INT",)
    FUNCTION = "run"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"value": ("INT", {"default": 0, "min": -100, "max": 100})}}

    def run(self, value):
        CALLS.append("Const")
        return (value,)


class Add:
    RETURN_TYPES = ("INT",)
    FUNCTION = "run"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"a": ("INT", {"forceInput": True}), "b": ("INT", {"default": 1})}}

    def run(self, a, b):
        CALLS.append("Add")
        return (a + b,)


class Sink:
    RETURN_TYPES = ()
    FUNCTION = "run"
    OUTPUT_NODE = True

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"value": ("INT", {"forceInput": True})}, "hidden": {"uid": "UNIQUE_ID"}}

    def run(self, value, uid):
        CALLS.append("Sink")
        return {"ui": {"value": [value], "uid": [uid]}}


class Split:
    """Emits a list; downstream nodes are mapped over it."""
    RETURN_TYPES = ("INT",)
    OUTPUT_IS_LIST = (True,)
    FUNCTION = "run"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"n": ("INT", {"default": 3, "min": 0, "max": 10})}}

    def run(self, n):
        return (list(range(n)),)


class Total:
    INPUT_IS_LIST = True
    RETURN_TYPES = ("INT",)
    FUNCTION = "run"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"values": ("INT", {"forceInput": True})}}

    def run(self, values):
        return (sum(values),)


class Repeat:
    """Expands into a chain of Add nodes: result = a + times (node expansion, as ComfyUI does it)."""
    RETURN_TYPES = ("INT",)
    FUNCTION = "run"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"a": ("INT", {"forceInput": True}), "times": ("INT", {"default": 2, "min": 1, "max": 50})},
                "hidden": {"uid": "UNIQUE_ID"}}

    def run(self, a, times, uid):
        graph, prev = {}, None
        for i in range(times):
            nid = f"{uid}.x{i}"
            graph[nid] = {"class_type": "Add", "inputs": {"a": a if prev is None else [prev, 0], "b": 1}}
            prev = nid
        return {"result": ([prev, 0],), "expand": graph}


class Slow:
    RETURN_TYPES = ("INT",)
    FUNCTION = "run"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"a": ("INT", {"forceInput": True}), "steps": ("INT", {"default": 200})}}

    @classmethod
    def IS_CHANGED(cls, **kwargs):
        return float("nan")

    def run(self, a, steps):
        bar = bridge.ProgressBar(steps)
        for _ in range(steps):
            time.sleep(0.01)
            bar.update(1)
        return (a,)


class Boom:
    RETURN_TYPES = ("INT",)
    FUNCTION = "run"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"a": ("INT", {"forceInput": True})}}

    def run(self, a):
        raise ValueError("the model exploded")


MAPPINGS = {c.__name__: c for c in (Const, Add, Sink, Split, Total, Repeat, Slow, Boom)}


@pytest.fixture
def eng(studio_dirs):
    CALLS.clear()
    return EmbeddedEngine(Catalog.from_mappings(MAPPINGS))


def chain(n):
    g = {"c": {"class_type": "Const", "inputs": {"value": 0}}}
    prev = "c"
    for i in range(n):
        g[f"a{i}"] = {"class_type": "Add", "inputs": {"a": [prev, 0], "b": 1}}
        prev = f"a{i}"
    g["out"] = {"class_type": "Sink", "inputs": {"value": [prev, 0]}}
    return g


def test_runs_in_topological_order_and_collects_ui(eng, tmp_path):
    result = eng.run(chain(5), run_dir=tmp_path)
    assert result.ok, result.message()
    assert result.outputs["out"] == {"value": [5], "uid": ["out"]}
    assert CALLS == ["Const"] + ["Add"] * 5 + ["Sink"]
    assert set(result.timings) == {"c", "a0", "a1", "a2", "a3", "a4", "out"}


def test_only_what_outputs_need_runs(eng, tmp_path):
    g = chain(2)
    g["orphan"] = {"class_type": "Const", "inputs": {"value": 7}}
    result = eng.run(g, run_dir=tmp_path)
    assert result.ok and "orphan" not in result.executed


def test_unchanged_nodes_are_cached_between_runs(eng, tmp_path):
    g = chain(3)
    eng.run(g, run_dir=tmp_path)
    g["a2"]["inputs"]["b"] = 10
    CALLS.clear()
    result = eng.run(g, run_dir=tmp_path)
    assert result.outputs["out"]["value"] == [12]
    assert sorted(result.cached) == ["a0", "a1", "c"]
    assert CALLS == ["Add", "Sink"]


def test_list_outputs_map_downstream_nodes(eng, tmp_path):
    g = {"s": {"class_type": "Split", "inputs": {"n": 4}},
         "a": {"class_type": "Add", "inputs": {"a": ["s", 0], "b": 10}},
         "t": {"class_type": "Total", "inputs": {"values": ["a", 0]}},
         "o": {"class_type": "Sink", "inputs": {"value": ["t", 0]}}}
    result = eng.run(g, run_dir=tmp_path)
    assert result.ok, result.message()
    assert result.outputs["o"]["value"] == [0 + 1 + 2 + 3 + 40]


def test_node_expansion_runs_the_subgraph_and_returns_its_result(eng, tmp_path):
    g = {"c": {"class_type": "Const", "inputs": {"value": 1}},
         "r": {"class_type": "Repeat", "inputs": {"a": ["c", 0], "times": 4}},
         "o": {"class_type": "Sink", "inputs": {"value": ["r", 0]}}}
    result = eng.run(g, run_dir=tmp_path)
    assert result.ok, result.message()
    assert result.outputs["o"]["value"] == [5]
    assert {"r.x0", "r.x3"} <= set(result.executed)


def test_execution_error_names_the_node(eng, tmp_path):
    g = {"c": {"class_type": "Const", "inputs": {"value": 1}},
         "b": {"class_type": "Boom", "inputs": {"a": ["c", 0]}},
         "o": {"class_type": "Sink", "inputs": {"value": ["b", 0]}}}
    result = eng.run(g, run_dir=tmp_path)
    assert result.status == "error"
    assert result.error["node_id"] == "b" and "the model exploded" in result.message()


def test_invalid_graph_is_not_run(eng, tmp_path):
    g = chain(1)
    g["c"]["inputs"]["value"] = 1000
    result = eng.run(g, run_dir=tmp_path)
    assert result.status == "invalid" and CALLS == []
    assert result.node_errors["c"]["errors"][0]["type"] == "value_bigger_than_max"


def test_progress_events_and_cancellation(eng, tmp_path):
    g = {"c": {"class_type": "Const", "inputs": {"value": 1}},
         "s": {"class_type": "Slow", "inputs": {"a": ["c", 0], "steps": 500}},
         "o": {"class_type": "Sink", "inputs": {"value": ["s", 0]}}}
    events = []

    def on_event(kind, data):
        events.append((kind, data))
        if kind == "progress" and data["value"] == 20:
            threading.Timer(0.0, eng.interrupt).start()

    started = time.perf_counter()
    result = eng.run(g, run_dir=tmp_path, on_event=on_event)
    assert result.status == "interrupted"
    assert result.error["node_id"] == "s"
    assert time.perf_counter() - started < 3  # 500 steps would take 5 s
    progress = [d for k, d in events if k == "progress"]
    assert progress[0] == {"node": "s", "value": 1, "max": 500, "prompt_id": result.run_id}
    assert ("executing", {"node": None, "prompt_id": result.run_id}) == events[-1]


def test_topological_order_is_linear_on_a_long_chain():
    g = chain(3000)
    started = time.perf_counter()
    order = topological_order(g, ["out"])
    assert order[0] == "c" and order[-1] == "out" and len(order) == 3002
    assert time.perf_counter() - started < 5


def test_deep_chain_runs_without_recursion_limits(eng, tmp_path):
    result = eng.run(chain(2000), run_dir=tmp_path, keep_values=False)
    assert result.ok and result.outputs["out"]["value"] == [2000]
