"""The ImageTune nodes. Each module in this package exports ``NODES``, a tuple of node classes.

Modules are found by listing this package, so adding a node module needs no edit here. A module
whose optional dependency is missing is skipped with a logged reason (recorded in
``LOAD_ERRORS``) instead of failing the whole pack: either its import fails, or it lists the
libraries it imports lazily in ``REQUIRES`` (checked with ``find_spec``, which imports nothing).

A node module keeps its declarations at module level and imports torch, and the ops modules that
use it, inside ``run()`` and its helpers: listing, validating and converting workflows then import
no tensor library (``tests/runtime/test_startup.py`` checks every module's top-level imports).
"""
from __future__ import annotations

import importlib
import importlib.util
import logging
import pkgutil

from ..graph_runtime.registry import NodeRegistry

logger = logging.getLogger("imagetune")

#: module name -> "ExceptionType: message" for node modules that could not be imported
LOAD_ERRORS: dict[str, str] = {}


def _load_node_modules() -> tuple:
    found = []
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        try:
            module = importlib.import_module(f".{info.name}", __name__)
        except Exception as exc:  # one broken or unsatisfied module must not hide the others
            LOAD_ERRORS[info.name] = f"{type(exc).__name__}: {exc}"
            logger.warning("ImageTune: nodes in %s are disabled: %s", info.name, LOAD_ERRORS[info.name])
            continue
        missing = [name for name in getattr(module, "REQUIRES", ()) if importlib.util.find_spec(name) is None]
        if missing:
            LOAD_ERRORS[info.name] = f"missing optional dependency: {', '.join(missing)} (pip install it)"
            logger.warning("ImageTune: nodes in %s are disabled: %s", info.name, LOAD_ERRORS[info.name])
            continue
        found.extend(getattr(module, "NODES", ()))
    return tuple(found)


ALL_NODES = _load_node_modules()


def default_registry() -> NodeRegistry:
    """A registry of every node the pack provides."""
    return NodeRegistry(ALL_NODES)
