"""API graph -> UI (LiteGraph) workflow, so a generated or shipped graph can be dragged into ComfyUI.

ComfyUI's backend cannot make UI JSON (only the browser's `loadApiJson` can);
this lays nodes out in columns by depth and writes widgets_values in the
frontend's positional order, including the `control_after_generate` value the
frontend adds after seed widgets. `ui_to_api(api_to_ui(g)) == g`.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

from .catalog import Catalog, InputSpec
from .validate import is_link

COLUMN_WIDTH, ROW_GAP, NODE_WIDTH = 380, 40, 320


def has_control_widget(spec: InputSpec) -> bool:
    """The frontend adds a 'control_after_generate' combo after these INT widgets."""
    return spec.type == "INT" and (bool(spec.config.get("control_after_generate"))
                                   or spec.name in ("seed", "noise_seed"))


def _depths(graph: dict) -> dict[str, int]:
    depth: dict[str, int] = {}
    from .engine import topological_order

    for node_id in topological_order(graph, list(graph)):
        parents = [depth[str(v[0])] for v in graph[node_id].get("inputs", {}).values()
                   if is_link(v) and str(v[0]) in depth]
        depth[node_id] = 1 + max(parents) if parents else 0
    return depth


def api_to_ui(graph: dict, catalog: Catalog) -> dict:
    ids = {node_id: i + 1 for i, node_id in enumerate(graph)}
    depth = _depths(graph)
    rows: dict[int, float] = {}
    nodes, links = [], []
    out_links: dict[tuple[str, int], list[int]] = {}

    for node_id, node in graph.items():
        spec = catalog[node["class_type"]]
        inputs, widgets = [], []
        for name, ispec in spec.inputs.items():
            if ispec.section == "hidden":
                continue
            value = node["inputs"].get(name)
            linked = is_link(value)
            if ispec.is_widget:
                shown = ispec.config.get("default") if (linked or value is None) else value
                if isinstance(shown, dict) and "__value__" in shown:
                    shown = shown["__value__"]
                widgets.append(shown)
                if has_control_widget(ispec):
                    widgets.append("fixed")
                entry = {"name": name, "type": ispec.type if ispec.type != "COMBO" else "COMBO",
                         "widget": {"name": name}, "link": None}
            else:
                entry = {"name": name, "type": ispec.type, "link": None}
                if not ispec.required:
                    entry["shape"] = 7
            if linked:
                link_id = len(links) + 1
                src, slot = str(value[0]), int(value[1])
                links.append([link_id, ids[src], slot, ids[node_id], len(inputs),
                              catalog[graph[src]["class_type"]].outputs[slot]])
                entry["link"] = link_id
                out_links.setdefault((src, slot), []).append(link_id)
            inputs.append(entry)
        column = depth[node_id]
        y = rows.get(column, 0.0)
        height = 60 + 26 * (len(widgets) + max(len(inputs) - len(widgets), len(spec.outputs)))
        rows[column] = y + height + ROW_GAP
        nodes.append({
            "id": ids[node_id], "type": node["class_type"], "pos": [column * COLUMN_WIDTH, y],
            "size": [NODE_WIDTH, height], "flags": {}, "order": 0, "mode": 0,
            "inputs": inputs,
            "outputs": [{"name": n, "type": t, "links": [], "slot_index": i}
                        for i, (n, t) in enumerate(zip(spec.output_names, spec.outputs))],
            "properties": {"Node name for S&R": node["class_type"]},
            "widgets_values": widgets,
            **({"title": node["_meta"]["title"]} if node.get("_meta", {}).get("title") else {}),
        })
    by_id = {n["id"]: n for n in nodes}
    for (src, slot), link_ids in out_links.items():
        by_id[ids[src]]["outputs"][slot]["links"] = link_ids
    order = {node_id: i for i, node_id in enumerate(sorted(graph, key=lambda n: (depth[n], ids[n])))}
    for node_id, node in zip(graph, nodes):
        node["order"] = order[node_id]
    return {"last_node_id": len(nodes), "last_link_id": len(links), "nodes": nodes, "links": links,
            "groups": [], "config": {}, "extra": {"ds": {"scale": 1, "offset": [0, 0]}}, "version": 0.4}


def main(argv: list[str] | None = None) -> int:
    """python -m animation_studio.agent.ui_layout GRAPH.api.json > GRAPH.json"""
    from .catalog import pack_catalog
    from .convert import offline_catalog

    args = argv if argv is not None else sys.argv[1:]
    if len(args) != 1:
        print(main.__doc__, file=sys.stderr)
        return 2
    graph = json.loads(Path(args[0]).read_text(encoding="utf-8"))
    print(json.dumps(api_to_ui(graph, offline_catalog(pack_catalog())), indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
