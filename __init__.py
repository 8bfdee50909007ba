"""Animation AI Studio — a ComfyUI pack for Pixar-style 3D animation, driven by open-source LLMs.

ComfyUI imports this file from custom_nodes/. Importing it loads no model code:
node families import their heavy libraries inside the functions that use them.
It is the one module that joins both sides: the node families (nodes/) and the
agent (agent/: its nodes and its HTTP routes); nodes/ never imports agent/.
"""
from .agent.catalog import pack_mappings

NODE_CLASS_MAPPINGS, NODE_DISPLAY_NAME_MAPPINGS = pack_mappings()
WEB_DIRECTORY = "./web"

__all__ = ["NODE_CLASS_MAPPINGS", "NODE_DISPLAY_NAME_MAPPINGS", "WEB_DIRECTORY"]
__version__ = "0.1.0"

try:  # custom HTTP routes exist only when ComfyUI's server is running (register() is a no-op otherwise)
    from .agent import routes as _agent_routes
    from .nodes import routes as _routes

    _routes.register(_agent_routes.ROUTES, _agent_routes.POST_ROUTES)
except Exception as _exc:  # noqa: BLE001 - routes are an extra; the nodes must still load
    import logging

    logging.getLogger("animation_studio").warning("Animation Studio routes not registered: %s", _exc)
