"""ImageTune: text-to-image node pack and headless graph runtime.

This file is also the ComfyUI entry point: ComfyUI imports it from ``custom_nodes/<folder>``
and reads ``NODE_CLASS_MAPPINGS`` and ``NODE_DISPLAY_NAME_MAPPINGS``. Only relative imports
are used inside the pack, so it never touches ComfyUI's own top-level ``nodes`` module.
"""
__version__ = "0.1.0"

__all__ = ["NODE_CLASS_MAPPINGS", "NODE_DISPLAY_NAME_MAPPINGS"]


def _build_mappings() -> None:
    """Import every node and publish ComfyUI's two mappings as module attributes."""
    from .graph_runtime.comfy_bridge import to_comfy_mappings
    from .nodes import ALL_NODES

    global NODE_CLASS_MAPPINGS, NODE_DISPLAY_NAME_MAPPINGS
    NODE_CLASS_MAPPINGS, NODE_DISPLAY_NAME_MAPPINGS = to_comfy_mappings(ALL_NODES)


if __name__ != "imagetune":
    # Loaded by ComfyUI (under a name made from its folder's path): build the mappings now, so any
    # import problem shows in ComfyUI's start-up log, as its loader expects.
    _build_mappings()


def __getattr__(name: str):
    """Imported as the ``imagetune`` package (the CLI, Python users): build the mappings on first use.

    The command line then starts, and answers Ctrl-C, before the nodes are imported (and
    declaring them imports no torch: node modules import it inside ``run``).
    """
    if name in ("NODE_CLASS_MAPPINGS", "NODE_DISPLAY_NAME_MAPPINGS"):
        _build_mappings()
        return globals()[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
