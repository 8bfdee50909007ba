"""The agent's HTTP routes, as plain functions returning (status, payload).

The pack's entry module hands ROUTES to nodes/routes.register(), which serves
them under /animation_studio/ inside ComfyUI; nothing here needs a server.
"""
from __future__ import annotations


def recipes() -> tuple[int, dict]:
    """The Director's plan language: each operation (its parameters' schema, input, output) and the named macros."""
    from .director.ops import MACROS, OPERATIONS

    operations = [{"name": spec.name, "doc": spec.doc, "needs": spec.needs, "produces": spec.produces,
                   "params": spec.schema["properties"]} for spec in OPERATIONS.values()]
    macros = [{"name": name, "ops": [op.to_json() for op in ops]} for name, ops in MACROS.items()]
    return 200, {"operations": operations, "macros": macros, "recipes": macros}


MAX_LAYOUT_NODES = 500


def layout(body: object) -> tuple[int, dict]:
    """POST {"graph": API graph} -> a UI workflow laid out in columns by depth (agent/ui_layout.py), with every
    widget named, so the Director panel can put a generated graph on the canvas readable and savable."""
    from .convert import offline_catalog
    from .catalog import pack_catalog
    from .ui_layout import api_to_ui
    from .validate import is_link

    graph = body.get("graph") if isinstance(body, dict) else None
    if not isinstance(graph, dict) or not graph:
        return 400, {"error": "expected {\"graph\": {node id: {class_type, inputs}}}"}
    if len(graph) > MAX_LAYOUT_NODES:
        return 400, {"error": f"the graph has {len(graph)} nodes; at most {MAX_LAYOUT_NODES} are laid out"}
    catalog = offline_catalog(pack_catalog())
    for node_id, node in graph.items():
        class_type = node.get("class_type") if isinstance(node, dict) else None
        if not isinstance(class_type, str) or class_type not in catalog:
            return 400, {"error": f"node {node_id}: unknown class_type {class_type!r}"}
        if not isinstance(node.get("inputs", {}), dict):
            return 400, {"error": f"node {node_id} ({class_type}): 'inputs' must be an object"}
        for name, value in node.get("inputs", {}).items():
            if is_link(value) and str(value[0]) not in graph:
                return 400, {"error": f"node {node_id} ({class_type}), input {name!r}: links to missing node "
                                      f"{value[0]!r}"}
    try:
        return 200, {"workflow": api_to_ui(graph, catalog)}
    except (KeyError, IndexError, ValueError, TypeError) as exc:
        return 400, {"error": f"cannot lay out this graph: {type(exc).__name__}: {exc}"}


# path under /animation_studio -> route function (GET: no argument; POST: the JSON body)
ROUTES = {"/recipes": recipes}
POST_ROUTES = {"/layout": layout}
