"""The node catalog: every node's schema, in ComfyUI's `/object_info` shape.

One representation serves the validator, the UI->API converter and the Director,
whether the schemas come from the pack's own NODE_CLASS_MAPPINGS (embedded
engine) or from a live server's `/object_info`.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

WIDGET_TYPES = {"INT", "FLOAT", "STRING", "BOOLEAN", "COMBO"}


@dataclass(frozen=True)
class InputSpec:
    name: str
    type: str  # "COMBO" for both combo shapes
    config: dict
    section: str  # required | optional | hidden
    options: tuple | None = None

    @property
    def required(self) -> bool:
        return self.section == "required"

    @property
    def is_widget(self) -> bool:
        """Shown as a widget in the UI (and so stored in widgets_values) unless forced to a socket."""
        return self.type in WIDGET_TYPES and not self.config.get("forceInput") and self.section != "hidden"

    def describe(self) -> str:
        if self.type == "COMBO":
            opts = list(self.options or ())
            shown = ", ".join(map(repr, opts[:12])) + (" ..." if len(opts) > 12 else "")
            return f"one of [{shown}]"
        bits = [self.type]
        for key in ("min", "max", "default"):
            if key in self.config:
                bits.append(f"{key}={self.config[key]!r}")
        return " ".join(bits)


@dataclass
class NodeSpec:
    name: str
    display_name: str
    category: str
    description: str
    inputs: dict[str, InputSpec]
    outputs: list[str]
    output_names: list[str]
    output_is_list: list[bool]
    output_node: bool
    raw: dict = field(repr=False, default_factory=dict)
    # Whether combo lists are this machine's (a live server, the pack's own folders). A saved snapshot's
    # model lists are the capturing machine's, so there an empty list means "unknown", not "nothing allowed".
    options_known: bool = True

    def input(self, name: str) -> InputSpec | None:
        return self.inputs.get(name)


def parse_input(name: str, spec: Any, section: str) -> InputSpec:
    """Accept every shape ComfyUI emits: ("INT", {...}), [["a","b"], {...}], ["COMBO", {"options": [...]}], ("IMAGE",)."""
    if isinstance(spec, str):
        spec = [spec]
    spec = list(spec) if isinstance(spec, (list, tuple)) else [str(spec)]
    kind = spec[0] if spec else "*"
    config = spec[1] if len(spec) > 1 and isinstance(spec[1], dict) else {}
    if isinstance(kind, (list, tuple)):
        return InputSpec(name, "COMBO", config, section, tuple(kind))
    if kind == "COMBO":
        return InputSpec(name, "COMBO", config, section, tuple(config.get("options", ())))
    return InputSpec(name, str(kind), config, section)


def spec_from_info(name: str, info: dict) -> NodeSpec:
    inputs: dict[str, InputSpec] = {}
    raw_inputs = info.get("input", {}) or {}
    order = info.get("input_order") or {}
    for section in ("required", "optional", "hidden"):
        entries = raw_inputs.get(section, {}) or {}
        names = list(order.get(section) or entries.keys())
        names += [n for n in entries if n not in names]
        for input_name in names:
            # A hidden entry never shadows a visible input of the same name (V3 nodes have both a
            # "prompt" input and the hidden PROMPT); ComfyUI's get_input_info looks in required first.
            if input_name in entries and not (section == "hidden" and input_name in inputs):
                inputs[input_name] = parse_input(input_name, entries[input_name], section)
    outputs = [o if isinstance(o, str) else "COMBO" for o in (info.get("output") or [])]
    output_names = list(info.get("output_name") or outputs)
    output_is_list = list(info.get("output_is_list") or [False] * len(outputs))
    return NodeSpec(
        name=name,
        display_name=info.get("display_name") or name,
        category=info.get("category", ""),
        description=info.get("description", "") or "",
        inputs=inputs,
        outputs=outputs,
        output_names=output_names,
        output_is_list=output_is_list,
        output_node=bool(info.get("output_node", False)),
        raw=info,
    )


def info_from_class(name: str, cls: type, display_name: str | None = None) -> dict:
    """The /object_info entry ComfyUI would publish for a classic (V1) node class."""
    input_types = cls.INPUT_TYPES()
    outputs = list(getattr(cls, "RETURN_TYPES", ()))
    info = {
        "input": {k: v for k, v in input_types.items() if k in ("required", "optional", "hidden")},
        "input_order": {k: list(v.keys()) for k, v in input_types.items() if k in ("required", "optional", "hidden")},
        "output": outputs,
        "output_is_list": list(getattr(cls, "OUTPUT_IS_LIST", [False] * len(outputs))),
        "output_name": list(getattr(cls, "RETURN_NAMES", outputs)),
        "name": name,
        "display_name": display_name or name,
        "description": getattr(cls, "DESCRIPTION", ""),
        "python_module": "custom_nodes.comfyui-animation-studio",
        "category": getattr(cls, "CATEGORY", "sd"),
        "output_node": bool(getattr(cls, "OUTPUT_NODE", False)),
    }
    if hasattr(cls, "OUTPUT_TOOLTIPS"):
        info["output_tooltips"] = list(cls.OUTPUT_TOOLTIPS)
    return _jsonable(info)


def _jsonable(value):
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


class Catalog:
    """Node schemas by class name, plus (for the embedded engine) the classes themselves."""

    def __init__(self, specs: dict[str, NodeSpec], classes: dict[str, type] | None = None, source: str = ""):
        self.specs = specs
        self.classes = classes or {}
        self.source = source

    def __contains__(self, name: str) -> bool:
        return name in self.specs

    def __getitem__(self, name: str) -> NodeSpec:
        return self.specs[name]

    def __len__(self) -> int:
        return len(self.specs)

    def get(self, name: str) -> NodeSpec | None:
        return self.specs.get(name)

    def names(self) -> list[str]:
        return sorted(self.specs)

    @classmethod
    def from_object_info(cls, object_info: dict, source: str = "object_info") -> "Catalog":
        """Parse an /object_info answer; ValueError naming the first entry that is not a node schema
        (a server's answer is untrusted: never an AttributeError from deep inside)."""
        if not isinstance(object_info, dict):
            raise ValueError(f"{source}: /object_info is a {type(object_info).__name__}, not an object of node schemas")
        specs = {}
        for name, info in object_info.items():
            try:
                if not isinstance(info, dict):
                    raise TypeError(f"a {type(info).__name__}")
                specs[name] = spec_from_info(name, info)
            except (AttributeError, TypeError, ValueError, IndexError, KeyError) as exc:
                raise ValueError(f"{source}: /object_info entry {str(name)[:80]!r} is not a node schema "
                                 f"({str(exc)[:120]})") from None
        return cls(specs, source=source)

    @classmethod
    def from_file(cls, path: str | Path) -> "Catalog":
        catalog = cls.from_object_info(json.loads(Path(path).read_text(encoding="utf-8")), source=str(path))
        for spec in catalog.specs.values():
            spec.options_known = False
        return catalog

    @classmethod
    def from_mappings(cls, mappings: dict[str, type], display: dict[str, str] | None = None, source: str = "pack") -> "Catalog":
        display = display or {}
        specs, classes = {}, {}
        for name, node_cls in mappings.items():
            specs[name] = spec_from_info(name, info_from_class(name, node_cls, display.get(name)))
            classes[name] = node_cls
        return cls(specs, classes, source=source)

    def merged(self, other: "Catalog") -> "Catalog":
        return Catalog({**self.specs, **other.specs}, {**self.classes, **other.classes}, f"{self.source}+{other.source}")

    def to_object_info(self) -> dict:
        return {name: spec.raw for name, spec in self.specs.items()}

    def describe(self, names: Iterable[str] | None = None) -> str:
        """A compact text listing for LLM prompts and `animation-studio nodes`."""
        lines = []
        for name in sorted(names or self.specs):
            spec = self.specs[name]
            ins = ", ".join(f"{i.name}{'' if i.required else '?'}: {i.describe()}"
                            for i in spec.inputs.values() if i.section != "hidden")
            outs = ", ".join(f"{n}:{t}" for n, t in zip(spec.output_names, spec.outputs))
            lines.append(f"{name}({ins}) -> ({outs}){'  [output]' if spec.output_node else ''}")
        return "\n".join(lines)


# Modules of agent/ that define ComfyUI nodes of their own (each exports NODE_CLASS_MAPPINGS and
# NODE_DISPLAY_NAME_MAPPINGS), relative to this package; the node families of nodes/ come first.
AGENT_NODE_MODULES: tuple[str, ...] = (".director.node",)  # the Director (moved from nodes/director.py)


def pack_mappings() -> tuple[dict[str, type], dict[str, str]]:
    """Every node of the pack: the families of nodes/ and AGENT_NODE_MODULES. The pack's entry module
    publishes exactly these to ComfyUI; reading them here registers nothing (no routes, no server)."""
    import importlib

    from .. import nodes

    classes, names = dict(nodes.NODE_CLASS_MAPPINGS), dict(nodes.NODE_DISPLAY_NAME_MAPPINGS)
    for module_name in AGENT_NODE_MODULES:
        module = importlib.import_module(module_name, __package__)
        clash = set(module.NODE_CLASS_MAPPINGS) & set(classes)
        if clash:
            raise RuntimeError(f"Node class(es) {sorted(clash)} defined twice ({module_name} and nodes/)")
        nodes.prepare_for_publishing(module.NODE_CLASS_MAPPINGS)
        classes.update(module.NODE_CLASS_MAPPINGS)
        names.update(getattr(module, "NODE_DISPLAY_NAME_MAPPINGS", {}))
    return classes, names


def pack_catalog() -> Catalog:
    """The pack's own nodes (what the embedded engine can run)."""
    return Catalog.from_mappings(*pack_mappings())
