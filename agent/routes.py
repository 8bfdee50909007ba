"""The agent's HTTP routes, as plain functions returning (status, payload).

The pack's entry module hands ROUTES to nodes/routes.register(), which serves
them under /animation_studio/ inside ComfyUI; nothing here needs a server.
"""
from __future__ import annotations


def recipes() -> tuple[int, dict]:
    """The Director's recipes: what each makes, its slots, and whether the pack's installed nodes can build it."""
    from .catalog import pack_catalog
    from .director.recipes import RECIPES

    catalog = pack_catalog()
    items = []
    for recipe in sorted(RECIPES.values(), key=lambda r: (r.task_kind, -r.priority, r.name)):
        missing = recipe.missing(catalog)
        items.append({
            "name": recipe.name, "task_kind": recipe.task_kind, "title": recipe.title,
            "needs": list(recipe.needs), "needs_input": list(recipe.needs_input),
            "slots": [{"name": s.name, "type": s.type, "default": s.default, "description": s.description}
                      for s in recipe.slots],
            "available": not missing,
            "missing_nodes": missing,
        })
    return 200, {"recipes": items}


# path under /animation_studio -> route function
ROUTES = {"/recipes": recipes}
