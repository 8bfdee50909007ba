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


# path under /animation_studio -> route function
ROUTES = {"/recipes": recipes}
