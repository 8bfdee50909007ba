"""Convert a saved ComfyUI workflow (UI / LiteGraph JSON) into an API-format graph.

ComfyUI's Python backend has no such converter: the browser frontend does it in
`graphToPrompt` (ComfyUI_frontend `src/utils/executionUtil.ts`). This module
reproduces what the frontend sends to `POST /prompt`, using the node catalog to
give names to the positional `widgets_values`:

* frontend-only widget values are skipped: the `control_after_generate` value
  after a seed, the upload button after an image/video/audio combo;
* the widgets the frontend's own extensions add to some core nodes are sent as
  the frontend sends them (`audioUI` on the audio nodes, `preview`/`previewMode`
  on PreviewAny);
* a widget turned into an input and linked: the link wins over the stored value;
* virtual nodes vanish: `Reroute` is followed to the real origin, the legacy
  `PrimitiveNode` pushes its value into its targets, notes are dropped;
* muted nodes (mode 2) are dropped with the links from them; a bypassed node
  (mode 4) hands each consumer the upstream link of its first input of the same type;
* subgraphs (`definitions.subgraphs`) are flattened, inner ids become
  "<instance id>:<inner id>" as the frontend's execution ids;
* list values are wrapped as {"__value__": [...]} so the server does not read
  them as links.

With no server at hand, `offline_catalog()` names the widgets of ComfyUI's core
nodes from a snapshot of ComfyUI 0.8.0's `/object_info` shipped in configs/ (the
ComfyUI test tier checks it against the live server and can rewrite it); the
pack's own nodes come from the pack. A server's catalog, when given, is used alone.
"""
from __future__ import annotations

import gzip
import json
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from .catalog import Catalog, InputSpec, NodeSpec, parse_input

CORE_OBJECT_INFO = Path(__file__).resolve().parent.parent / "configs" / "object_info_comfyui_0.8.0.json.gz"


def read_core_object_info(path: Path = CORE_OBJECT_INFO) -> dict:
    with gzip.open(path, "rt", encoding="utf-8") as f:
        return json.load(f)


def write_core_object_info(object_info: dict, path: Path = CORE_OBJECT_INFO) -> None:
    """Write the snapshot reproducibly (no gzip timestamp). Keys keep their order: an input's position among
    a node's inputs is its widget's position in a saved workflow."""
    raw = json.dumps(object_info, separators=(",", ":")).encode("utf-8")
    with gzip.GzipFile(path, "wb", mtime=0) as f:
        f.write(raw)


@lru_cache(maxsize=1)
def core_catalog() -> Catalog:
    """ComfyUI 0.8.0's core nodes from the shipped snapshot. Its model and file lists are those of an empty
    ComfyUI, so they are marked unknown (a model name is not checked against them)."""
    catalog = Catalog.from_object_info(read_core_object_info(), source=f"snapshot {CORE_OBJECT_INFO.name}")
    for spec in catalog.specs.values():
        spec.options_known = False
    return catalog


def offline_catalog(pack: Catalog) -> Catalog:
    """What `convert` uses without a server: ComfyUI's core nodes (snapshot) and the pack's nodes (which win)."""
    return core_catalog().merged(pack)

MODE_MUTED = 2
MODE_BYPASS = 4
SUBGRAPH_INPUT_NODE = -10
SUBGRAPH_OUTPUT_NODE = -20
DYNAMIC_COMBO_TYPE = "COMFY_DYNAMICCOMBO_V3"

# Frontend-only node types: they never reach the server.
REROUTE_TYPES = {"Reroute"}
PRIMITIVE_TYPES = {"PrimitiveNode"}
NOTE_TYPES = {"Note", "MarkdownNote", "Label (rgthree)", "Fast Groups Bypasser (rgthree)"}
VIRTUAL_TYPES = REROUTE_TYPES | PRIMITIVE_TYPES | NOTE_TYPES

CONTROL_VALUES = {"fixed", "increment", "decrement", "randomize", "increment-wrap"}
SEED_NAMES = {"seed", "noise_seed"}
UPLOAD_FLAGS = ("image_upload", "video_upload", "animated_image_upload", "audio_upload", "file_upload")
# Values the frontend stores for its upload/preview button widgets after the file combo.
UPLOAD_BUTTON_VALUES = {"image", "video", "audio", "upload", "upload3dmodel", "uploadExtraResources", "clear", None}


# Widgets the frontend's own extensions add to some core nodes: uploadAudio.ts an `audioUI` player on the audio
# nodes, previewAny.ts two `preview` texts and a `previewMode` switch. graphToPrompt sends every widget but those
# whose *options* say serialize: false; these set `widget.serialize = false`, which only keeps them out of
# widgets_values, so they go with their empty start value. previewMode is saved, yet the frontend's loader, which
# skips the unsaved widgets, gives it widgets_values[0] (the saver left empty places before it): false when none.
AUDIO_UI_NODES = ("LoadAudio", "SaveAudio", "PreviewAudio", "SaveAudioMP3", "SaveAudioOpus")


def frontend_widget_values(node_type: str, values: Any) -> dict:
    if node_type in AUDIO_UI_NODES:
        return {"audioUI": ""}
    if node_type == "PreviewAny":
        return {"preview": "", "previewMode": values[0] if isinstance(values, list) and values else False}
    return {}


class ConversionError(ValueError):
    """The workflow cannot be converted; the message names the node / link at fault."""


def _fits(spec: InputSpec, value: Any) -> bool:
    if spec.type == "INT":
        return isinstance(value, int) and not isinstance(value, bool)
    if spec.type == "FLOAT":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if spec.type == "BOOLEAN":
        return isinstance(value, bool)
    if spec.type == "STRING":
        return isinstance(value, str)
    if spec.type == "COMBO" and spec.options and all(isinstance(o, str) for o in spec.options):
        return isinstance(value, str)
    return True


def _check_other_version(exec_id: str, node: dict, spec: NodeSpec, inputs: dict) -> None:
    """A node saved by another version of it stores another number of widget values. Where they still line up
    (a widget added or dropped at the end) the frontend's positional reading is kept; where a value lands on a
    widget of another type, the frontend would send it anyway and ComfyUI refuse it: say which node it is."""
    values = node.get("widgets_values")
    if not isinstance(values, list):
        return
    widgets = [s for s in spec.inputs.values() if s.is_widget]
    stored = sum(1 + has_control_widget(s) + has_upload_widget(s) for s in widgets)
    if len(values) == stored or (len(values) > stored and any(map(has_upload_widget, widgets))):
        return
    linked = {(inp.get("widget") or {}).get("name") for inp in node.get("inputs") or []
              if isinstance(inp, dict) and inp.get("link") is not None}
    for s in widgets:
        if s.name in inputs and s.name not in linked and not _fits(s, inputs[s.name]):
            raise ConversionError(
                f"node {exec_id} ({node['type']}) was saved by another version of that node: it stores "
                f"{len(values)} widget values where ComfyUI's {node['type']} takes {stored}, and {inputs[s.name]!r} "
                f"lands on input '{s.name}' ({s.type}). Open the workflow in a ComfyUI with this node's version, or "
                f"set the node's values again and save it.")


@dataclass
class Link:
    id: Any
    origin_id: Any
    origin_slot: int
    target_id: Any
    target_slot: int
    type: Any = None


@dataclass
class Scope:
    """One graph level: the root workflow, or one instance of a subgraph definition."""

    nodes: dict  # node id (as in the JSON) -> node dict
    links: dict  # link id -> Link
    prefix: str  # execution-id prefix: "" at the root, "12:" inside instance 12
    definition: dict | None = None  # the subgraph definition (None at the root)
    parent: "Scope | None" = None
    instance: dict | None = None  # the subgraph node in the parent scope
    promoted: dict = field(default_factory=dict)  # subgraph input name -> the instance's widget value

    def exec_id(self, node_id: Any) -> str:
        return f"{self.prefix}{node_id}"


def ui_to_api(workflow: Any, catalog: Catalog, *, strict: bool = True) -> dict:
    """The API graph `{id: {"class_type", "inputs", "_meta": {"title"}}}` for a UI workflow.

    strict=False keeps a node whose type the catalog lacks (links and named values
    only) so a server with more nodes can judge it; strict=True raises.
    """
    if not isinstance(workflow, dict):
        raise ConversionError(f"A UI workflow must be a JSON object, got {type(workflow).__name__}.")
    if "nodes" not in workflow:
        if workflow and all(isinstance(v, dict) and "class_type" in v for v in workflow.values()):
            raise ConversionError("This is already an API-format graph (nodes with class_type), not a UI workflow.")
        raise ConversionError("Not a UI workflow: there is no 'nodes' list.")
    subgraphs = _subgraph_definitions(workflow)
    converter = _Converter(catalog, subgraphs, strict)
    root = converter.make_scope(workflow, "", None, None)
    converter.convert_scope(root)
    return converter.prune_dangling()


def _subgraph_definitions(workflow: dict) -> dict:
    definitions = workflow.get("definitions") or {}
    if not isinstance(definitions, dict):
        raise ConversionError("'definitions' must be an object.")
    subgraphs = definitions.get("subgraphs") or []
    if not isinstance(subgraphs, list):
        raise ConversionError("'definitions.subgraphs' must be a list.")
    out = {}
    for index, sub in enumerate(subgraphs):
        if not isinstance(sub, dict) or "id" not in sub or not isinstance(sub.get("nodes"), list):
            raise ConversionError(f"Subgraph definition #{index} needs an 'id' and a 'nodes' list.")
        out[sub["id"]] = sub
    return out


def _parse_links(raw_links: Any, where: str) -> dict:
    """Both link shapes: [id, origin, origin_slot, target, target_slot, type] and the object form."""
    if raw_links is None:
        return {}
    if not isinstance(raw_links, list):
        raise ConversionError(f"{where}: 'links' must be a list.")
    links = {}
    for raw in raw_links:
        if raw is None:
            continue  # the frontend leaves holes after deleting links
        try:
            if isinstance(raw, dict):
                link = Link(raw["id"], raw["origin_id"], int(raw["origin_slot"]), raw["target_id"],
                            int(raw["target_slot"]), raw.get("type"))
            elif isinstance(raw, list) and len(raw) >= 5:
                link = Link(raw[0], raw[1], int(raw[2]), raw[3], int(raw[4]), raw[5] if len(raw) > 5 else None)
            else:
                raise TypeError
        except (KeyError, TypeError, ValueError):
            raise ConversionError(f"{where}: malformed link {raw!r}; expected [id, origin_id, origin_slot, "
                                  f"target_id, target_slot, type] or an object with those keys.") from None
        links[link.id] = link
    return links


def _wrap(value: Any) -> Any:
    """A list value would read as a link on the server; the frontend wraps it."""
    return {"__value__": value} if isinstance(value, list) else value


def has_control_widget(spec: InputSpec) -> bool:
    """The frontend adds a 'control_after_generate' widget after seeds and flagged inputs."""
    if spec.config.get("control_after_generate"):
        return True
    return spec.type == "INT" and spec.name in SEED_NAMES


def has_upload_widget(spec: InputSpec) -> bool:
    return any(spec.config.get(flag) for flag in UPLOAD_FLAGS)


def _default_value(spec: InputSpec) -> Any:
    """What the frontend puts in a widget that the saved workflow has no value for."""
    if "default" in spec.config:
        return spec.config["default"]
    if spec.type == "COMBO" and spec.options:
        return spec.options[0]
    if spec.type == DYNAMIC_COMBO_TYPE and spec.config.get("options"):
        return spec.config["options"][0].get("key")
    return None


def map_widget_values(spec: NodeSpec, values: Any, named: Any = None) -> dict:
    """Names for a node's stored widget values, as the frontend assigns them on load."""
    if isinstance(named, dict) or isinstance(values, dict):
        return _map_named_values(spec, named if isinstance(named, dict) else values)
    values = list(values or [])
    out: dict[str, Any] = {}
    position = 0

    def take(specs: list[InputSpec], prefix: str) -> None:
        nonlocal position
        for s in specs:
            if not (s.is_widget or s.type == DYNAMIC_COMBO_TYPE):
                continue
            name = prefix + s.name
            if position < len(values):
                out[name] = values[position]
                position += 1
                if has_control_widget(s) and position < len(values) and values[position] in CONTROL_VALUES:
                    position += 1
                if has_upload_widget(s):
                    while position < len(values) and _is_upload_button_value(values[position]):
                        position += 1
            elif (default := _default_value(s)) is not None:
                # Saved by an older node version with fewer widgets: the frontend keeps the default.
                out[name] = default
            if s.type == DYNAMIC_COMBO_TYPE:
                # The chosen option's own widgets follow it, named "<combo>.<child>".
                take(_dynamic_combo_children(s, out.get(name)), f"{name}.")

    take(list(spec.inputs.values()), "")
    return out


def _map_named_values(spec: NodeSpec, by_name: dict) -> dict:
    """Values stored by name (VHS-style dict, or the newer frontend's widgets_values_named)."""
    out = {}
    for s in spec.inputs.values():
        if not (s.is_widget or s.type == DYNAMIC_COMBO_TYPE):
            continue
        if s.name in by_name:
            out[s.name] = by_name[s.name]
        elif (default := _default_value(s)) is not None:
            out[s.name] = default
    # V3 dynamic inputs are sent with dotted names ("resize_type.width"), keep those too.
    for key, value in by_name.items():
        if "." in key and key.split(".", 1)[0] in spec.inputs:
            out[key] = value
    return out


def _dynamic_combo_children(spec: InputSpec, key: Any) -> list[InputSpec]:
    for option in spec.config.get("options") or []:
        if isinstance(option, dict) and option.get("key") == key:
            groups = option.get("inputs") or {}
            return [parse_input(name, raw, section) for section in ("required", "optional")
                    for name, raw in (groups.get(section) or {}).items()]
    return []


def _is_upload_button_value(value: Any) -> bool:
    return value is None or (isinstance(value, str) and value in UPLOAD_BUTTON_VALUES)


class _Converter:
    def __init__(self, catalog: Catalog, subgraphs: dict, strict: bool):
        self.catalog = catalog
        self.subgraphs = subgraphs
        self.strict = strict
        self.output: dict[str, dict] = {}

    # -- scopes ---------------------------------------------------------------------------------
    def make_scope(self, graph: dict, prefix: str, parent: Scope | None, instance: dict | None) -> Scope:
        where = f"subgraph {graph.get('name') or graph.get('id')!r}" if parent else "workflow"
        nodes_list = graph.get("nodes")
        if not isinstance(nodes_list, list):
            raise ConversionError(f"{where}: 'nodes' must be a list.")
        nodes = {}
        for index, node in enumerate(nodes_list):
            if not isinstance(node, dict) or "id" not in node or "type" not in node:
                raise ConversionError(f"{where}: node #{index} needs an 'id' and a 'type'.")
            if not isinstance(node.get("inputs") or [], list):
                raise ConversionError(f"node {prefix}{node['id']} ({node['type']}): 'inputs' must be a list.")
            if node["id"] in nodes:
                raise ConversionError(f"{where}: node id {node['id']} appears twice.")
            nodes[node["id"]] = node
        scope = Scope(nodes, _parse_links(graph.get("links"), where), prefix, graph if parent else None,
                      parent, instance)
        if instance is not None:
            scope.promoted = self._promoted_widget_values(graph, instance)
        return scope

    def _promoted_widget_values(self, definition: dict, instance: dict) -> dict:
        """Values of the widgets a subgraph node shows for its own widget-typed inputs.

        Newer frontends list the node's widgets in properties.proxyWidgets: ["-1", <input name>]
        for its own, [<inner id>, <widget>] for a proxied inner widget whose value stays in the
        inner node. Older ones store values positionally over the definition's inputs that
        feed inner widgets.
        """
        values = instance.get("widgets_values")
        if not isinstance(values, list) or not values:
            return {}
        proxies = (instance.get("properties") or {}).get("proxyWidgets")
        if not isinstance(proxies, list):
            promoted = self._inputs_feeding_widgets(definition)
            return dict(zip(promoted, values)) if len(promoted) == len(values) else {}
        entries = [(str(e[0]), e[1]) for e in proxies if isinstance(e, list) and len(e) == 2
                   and isinstance(e[1], str) and not e[1].startswith("$$") and e[1] != "control_after_generate"]
        if len(entries) == len(values):
            # One slot per proxied widget; an inner widget's slot is a placeholder, its node keeps the value.
            return {name: value for (owner, name), value in zip(entries, values) if owner == "-1"}
        own = [name for owner, name in entries if owner == "-1"]
        if len(own) == len(values):
            return dict(zip(own, values))
        return {}  # not a layout we understand: the inner widgets' own values stand

    @staticmethod
    def _inputs_feeding_widgets(definition: dict) -> list:
        inner_inputs = {}
        for node in definition.get("nodes") or []:
            for slot, inp in enumerate(node.get("inputs") or []):
                inner_inputs[(node.get("id"), slot)] = inp
        links = _parse_links(definition.get("links"), "subgraph")
        names = []
        for sub_input in definition.get("inputs") or []:
            for link_id in sub_input.get("linkIds") or []:
                link = links.get(link_id)
                target = inner_inputs.get((link.target_id, link.target_slot)) if link else None
                if isinstance(target, dict) and target.get("widget"):
                    names.append(sub_input.get("name"))
                    break
        return names

    # -- nodes ----------------------------------------------------------------------------------
    def convert_scope(self, scope: Scope) -> None:
        for node_id, node in scope.nodes.items():
            node_type = node["type"]
            mode = node.get("mode", 0)
            if mode in (MODE_MUTED, MODE_BYPASS) or node_type in VIRTUAL_TYPES:
                continue
            if node_type in self.subgraphs:
                inner = self.make_scope(self.subgraphs[node_type], f"{scope.exec_id(node_id)}:", scope, node)
                self.convert_scope(inner)
                continue
            self.output[scope.exec_id(node_id)] = self.convert_node(scope, node)

    def convert_node(self, scope: Scope, node: dict) -> dict:
        exec_id = scope.exec_id(node["id"])
        spec = self.catalog.get(node["type"])
        if spec is None and self.strict:
            raise ConversionError(f"node {exec_id}: type {node['type']!r} is not in the node catalog "
                                  f"({len(self.catalog)} node types known).")
        if spec is not None:
            try:
                inputs = map_widget_values(spec, node.get("widgets_values"), node.get("widgets_values_named"))
            except TypeError:
                raise ConversionError(f"node {exec_id} ({node['type']}): 'widgets_values' must be a list or "
                                      f"an object.") from None
            if self.strict:
                _check_other_version(exec_id, node, spec, inputs)
            inputs.update(frontend_widget_values(node["type"], node.get("widgets_values")))
            title = node.get("title") or spec.display_name or node["type"]
        else:
            named = node.get("widgets_values_named") or node.get("widgets_values")
            inputs = dict(named) if isinstance(named, dict) else {}
            title = node.get("title") or node["type"]
        inputs = {name: _wrap(value) for name, value in inputs.items()}
        for slot, inp in enumerate(node.get("inputs") or []):
            if not isinstance(inp, dict) or "name" not in inp:
                raise ConversionError(f"node {exec_id} ({node['type']}): input #{slot} needs a 'name'.")
            if inp.get("link") is None:
                continue
            name = (inp.get("widget") or {}).get("name") or inp["name"]
            source = self.resolve_input(scope, node, slot, set())
            if source is None:
                continue  # like the frontend: an unresolved link leaves the widget value
            kind, payload = source
            inputs[name] = list(payload) if kind == "link" else _wrap(payload)
        api_node = {"class_type": node["type"], "inputs": inputs, "_meta": {"title": title}}
        if spec is None and isinstance(node.get("widgets_values"), list):
            api_node["_meta"]["widgets_values"] = node["widgets_values"]  # unnamed: left for a server to judge
        return api_node

    # -- link resolution ------------------------------------------------------------------------
    def resolve_input(self, scope: Scope, node: dict, slot: int, seen: set) -> tuple | None:
        """Where input `slot` of `node` really comes from: ("link", [id, slot]), ("value", v) or None."""
        inputs = node.get("inputs") or []
        if slot >= len(inputs) or inputs[slot].get("link") is None:
            return None
        link_id = inputs[slot]["link"]
        link = scope.links.get(link_id)
        if link is None:
            raise ConversionError(f"node {scope.exec_id(node['id'])} ({node['type']}): input "
                                  f"'{inputs[slot].get('name')}' uses link {link_id}, which is not in 'links'.")
        return self.resolve_output(scope, link.origin_id, link.origin_slot, inputs[slot].get("type"), seen)

    def resolve_output(self, scope: Scope, origin_id: Any, origin_slot: int, want_type: Any, seen: set) -> tuple | None:
        key = (scope.prefix, origin_id, origin_slot)
        if key in seen:
            raise ConversionError(f"node {scope.exec_id(origin_id)}: reroute/bypass loop through its output "
                                  f"{origin_slot}.")
        seen = seen | {key}
        if origin_id == SUBGRAPH_INPUT_NODE and scope.parent is not None:
            return self.resolve_subgraph_input(scope, origin_slot, want_type, seen)
        node = scope.nodes.get(origin_id)
        if node is None:
            return None  # a link to a removed node is dropped, as the frontend does
        node_type = node["type"]
        mode = node.get("mode", 0)
        if mode == MODE_MUTED or node_type in NOTE_TYPES:
            return None
        if mode == MODE_BYPASS:
            through = bypass_input_slot(node, origin_slot, want_type)
            return None if through is None else self.resolve_input(scope, node, through, seen)
        if node_type in REROUTE_TYPES:
            return self.resolve_input(scope, node, 0, seen)
        if node_type in PRIMITIVE_TYPES:
            values = node.get("widgets_values")
            if isinstance(values, list) and values:
                return ("value", values[0])
            return None
        if node_type in self.subgraphs:
            inner = self.make_scope(self.subgraphs[node_type], f"{scope.exec_id(origin_id)}:", scope, node)
            for link in inner.links.values():
                if link.target_id == SUBGRAPH_OUTPUT_NODE and link.target_slot == origin_slot:
                    return self.resolve_output(inner, link.origin_id, link.origin_slot, want_type, seen)
            return None
        return ("link", (scope.exec_id(origin_id), origin_slot))

    def resolve_subgraph_input(self, scope: Scope, slot: int, want_type: Any, seen: set) -> tuple | None:
        """An inner link from the subgraph's input node: continue from the instance's matching input."""
        sub_inputs = (scope.definition or {}).get("inputs") or []
        if slot >= len(sub_inputs):
            return None
        name = sub_inputs[slot].get("name")
        instance = scope.instance or {}
        for outer_slot, inp in enumerate(instance.get("inputs") or []):
            if inp.get("name") == name and inp.get("link") is not None:
                return self.resolve_input(scope.parent, instance, outer_slot, seen)
        if name in scope.promoted:
            return ("value", scope.promoted[name])
        return None

    def prune_dangling(self) -> dict:
        """Drop inputs linked to nodes that did not make it into the graph (frontend behaviour)."""
        for node in self.output.values():
            for name, value in list(node["inputs"].items()):
                if isinstance(value, list) and len(value) == 2 and isinstance(value[0], str) \
                        and value[0] not in self.output:
                    del node["inputs"][name]
        return self.output


def bypass_input_slot(node: dict, out_slot: int, want_type: Any) -> int | None:
    """The input a bypassed node passes through to its output `out_slot` (frontend rule).

    Same-index input if its type fits, else the first input of exactly the wanted type,
    else the first input of a compatible type.
    """
    inputs = node.get("inputs") or []
    outputs = node.get("outputs") or []
    out_type = outputs[out_slot].get("type") if out_slot < len(outputs) and isinstance(outputs[out_slot], dict) \
        else want_type
    if want_type in ("*", "", None):
        return out_slot if out_slot < len(inputs) else (0 if inputs else None)
    if out_slot < len(inputs) and _compatible(inputs[out_slot].get("type"), out_type) \
            and _compatible(inputs[out_slot].get("type"), want_type):
        return out_slot
    for index, inp in enumerate(inputs):
        if inp.get("type") == want_type:
            return index
    for index, inp in enumerate(inputs):
        if _compatible(inp.get("type"), out_type) and _compatible(inp.get("type"), want_type):
            return index
    return None


def _compatible(a: Any, b: Any) -> bool:
    if a in ("*", "", None, 0) or b in ("*", "", None, 0):
        return True
    left = {t.strip() for t in str(a).split(",")}
    right = {t.strip() for t in str(b).split(",")}
    return bool(left & right)
