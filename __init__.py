"""Animation AI Studio — a ComfyUI pack for Pixar-style 3D animation, driven by open-source LLMs.

ComfyUI imports this file from custom_nodes/. Importing it loads no model code:
node families import their heavy libraries inside the functions that use them.
"""
from .nodes import NODE_CLASS_MAPPINGS, NODE_DISPLAY_NAME_MAPPINGS

WEB_DIRECTORY = "./web"

__all__ = ["NODE_CLASS_MAPPINGS", "NODE_DISPLAY_NAME_MAPPINGS", "WEB_DIRECTORY"]
__version__ = "0.1.0"

try:  # custom HTTP routes exist only when ComfyUI's server is running
    from .nodes import routes as _routes

    _routes.register()
except Exception as _exc:  # noqa: BLE001 - routes are an extra; the nodes must still load
    import logging

    logging.getLogger("animation_studio").warning("Animation Studio routes not registered: %s", _exc)
