"""Custom HTTP routes under /animation_studio/, registered only inside a running ComfyUI server."""
from __future__ import annotations

from . import bridge

PREFIX = "/animation_studio"
_registered = False


def register() -> bool:
    global _registered
    routes = bridge.prompt_server_routes()
    if routes is None or _registered:
        return False
    from aiohttp import web

    @routes.get(f"{PREFIX}/health")
    async def health(request):
        from . import FAMILY_ERRORS, NODE_CLASS_MAPPINGS

        return web.json_response({"nodes": len(NODE_CLASS_MAPPINGS), "family_errors": FAMILY_ERRORS})

    _registered = True
    return True
