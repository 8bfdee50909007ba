"""Character image generation: the character registry, 3D prompts, SDXL (diffusers) with LoRA and
ControlNet, control preprocessors, identity (InstantID / IP-Adapter) and graph recipes.

Nothing heavy is imported here; diffusers and torch load inside the functions that need them.
"""
from __future__ import annotations

from .. import bridge
from . import character_nodes, nodes

_NODES = {**character_nodes.NODES, **nodes.NODES}

NODE_CLASS_MAPPINGS, NODE_DISPLAY_NAME_MAPPINGS = bridge.node_mappings(_NODES)
