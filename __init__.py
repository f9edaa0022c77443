"""ImageTune: text-to-image node pack and headless graph runtime.

This file is also the ComfyUI entry point: ComfyUI imports it from ``custom_nodes/<folder>``
and reads ``NODE_CLASS_MAPPINGS`` and ``NODE_DISPLAY_NAME_MAPPINGS``. Only relative imports
are used inside the pack, so it never touches ComfyUI's own top-level ``nodes`` module.
"""
from .graph_runtime.comfy_bridge import to_comfy_mappings
from .nodes import ALL_NODES

__version__ = "0.1.0"

NODE_CLASS_MAPPINGS, NODE_DISPLAY_NAME_MAPPINGS = to_comfy_mappings(ALL_NODES)

__all__ = ["NODE_CLASS_MAPPINGS", "NODE_DISPLAY_NAME_MAPPINGS"]
