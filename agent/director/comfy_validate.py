"""ComfyUI's own validator over a Director expansion (expanded graphs are never validated by ComfyUI itself,
comfyui-internals.md §1.6): its node_errors join ours in the bounded repair. Only called inside ComfyUI."""
from __future__ import annotations


def comfyui_node_errors(graph: dict, outer: dict | None = None, timeout: float = 60.0) -> dict:
    """ComfyUI's own validator (`execution.validate_inputs`) over every node of `graph` -> node_errors.

    Expanded graphs are never validated by ComfyUI itself (comfyui-internals.md §1.6), so the Director calls
    the internal coroutine on a prompt that also holds the outer nodes its links point at (marked valid: they
    were validated when the prompt was queued). It coerces literals in `graph` in place. The node runs on
    the worker's event loop, so the coroutine gets a loop of its own in a helper thread.
    """
    import asyncio
    import uuid
    from concurrent.futures import ThreadPoolExecutor

    import execution  # ComfyUI's module: only called inside ComfyUI

    outer = {k: v for k, v in (outer or {}).items() if k not in graph}
    prompt = {**outer, **graph}
    validated: dict = {node_id: (True, [], node_id) for node_id in outer}
    prompt_id = f"director-validate-{uuid.uuid4().hex[:8]}"

    async def validate_all():
        for node_id in graph:
            try:
                await execution.validate_inputs(prompt_id, prompt, node_id, validated)
            except Exception as exc:  # noqa: BLE001 - ComfyUI reports these as exception_during_validation
                validated[node_id] = (False, [{"type": "exception_during_validation",
                                               "message": "Exception when validating node", "details": str(exc),
                                               "extra_info": {}}], node_id)

    with ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(lambda: asyncio.run(validate_all())).result(timeout=timeout)
    return {node_id: {"errors": errors, "dependent_outputs": [], "class_type": graph[node_id].get("class_type")}
            for node_id, (ok, errors, _) in validated.items() if node_id in graph and not ok and errors}


def _outer_nodes(graph: dict, dynprompt) -> dict:
    """The nodes outside `graph` that its links point at (from ComfyUI's DYNPROMPT), for ComfyUI's validator."""
    outer = {}
    for node in graph.values():
        for value in (node.get("inputs") or {}).values():
            if isinstance(value, list) and len(value) == 2 and value[0] not in graph and dynprompt is not None:
                try:
                    outer[value[0]] = dynprompt.get_node(value[0])
                except Exception:  # noqa: BLE001 - an unknown id is the validator's finding, not ours
                    pass
    return outer


def comfyui_validator(dynprompt):
    """An extra validator for repair.validate_and_repair: graph -> ComfyUI's node_errors."""
    return lambda graph: comfyui_node_errors(graph, _outer_nodes(graph, dynprompt))
