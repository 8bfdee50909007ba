"""Build API-format graphs against the live catalog, filling every required widget with its default.

ComfyUI's validator reports `required_input_missing` even when an input has a
default, so an operation only names what it cares about and the builder writes the
rest from the catalog. The same helper builds the graphs the Director node
returns for expansion (with an explicit id prefix).
"""
from __future__ import annotations

from typing import Any

from ..catalog import Catalog, InputSpec


class BuildError(ValueError):
    """An operation asked for a node or an input the catalog does not have."""


def default_value(spec: InputSpec) -> Any:
    """The value the UI would show for a widget: its default, else the first option / the minimum."""
    if "default" in spec.config:
        return spec.config["default"]
    if spec.type == "COMBO":
        return (spec.options or [None])[0]
    return {"INT": spec.config.get("min", 0), "FLOAT": spec.config.get("min", 0.0), "STRING": "",
            "BOOLEAN": False}.get(spec.type)


class Node:
    def __init__(self, builder: "GraphBuilder", node_id: str, class_type: str, inputs: dict):
        self.builder, self.id, self.class_type, self.inputs = builder, node_id, class_type, inputs

    def out(self, index: int | str = 0) -> list:
        """A link to one output, by index or by output name / type."""
        if isinstance(index, str):
            spec = self.builder.catalog[self.class_type]
            names = list(spec.output_names)
            if index in names:
                index = names.index(index)
            elif index in spec.outputs:
                index = spec.outputs.index(index)
            else:
                raise BuildError(f"{self.class_type} has no output {index!r} (outputs: {', '.join(names)})")
        return [self.id, int(index)]

    def set_input(self, name: str, value: Any) -> "Node":
        self.inputs[name] = value
        return self


class GraphBuilder:
    """Like ComfyUI's GraphBuilder, but catalog-aware: unknown classes and inputs fail at build time."""

    def __init__(self, catalog: Catalog, prefix: str = ""):
        self.catalog, self.prefix = catalog, prefix
        self.nodes: dict[str, Node] = {}
        self._next = 1

    def node(self, class_type: str, node_id: str | None = None, **inputs: Any) -> Node:
        spec = self.catalog.get(class_type)
        if spec is None:
            raise BuildError(f"node class {class_type!r} is not in the catalog")
        unknown = [k for k in inputs if k not in spec.inputs]
        if unknown:
            raise BuildError(f"{class_type} has no input(s) {unknown} (inputs: {', '.join(spec.inputs)})")
        full: dict[str, Any] = {}
        for name, ispec in spec.inputs.items():
            if name in inputs and inputs[name] is not None:
                full[name] = inputs[name]
            elif ispec.required and ispec.is_widget:
                full[name] = default_value(ispec)
        node_id = self.prefix + (node_id or str(self._next))
        self._next += 1
        node = self.nodes[node_id] = Node(self, node_id, class_type, full)
        return node

    def finalize(self) -> dict:
        return {nid: {"class_type": n.class_type, "inputs": dict(n.inputs)} for nid, n in self.nodes.items()}


def fill_defaults(graph: dict, catalog: Catalog) -> dict:
    """Give every node of an existing graph its missing required widget values (used by repair)."""
    for node in graph.values():
        spec = catalog.get(node.get("class_type", ""))
        if spec is None:
            continue
        inputs = node.setdefault("inputs", {})
        for name, ispec in spec.inputs.items():
            if ispec.required and ispec.is_widget and name not in inputs:
                inputs[name] = default_value(ispec)
    return graph
