"""Import the pack as ``imagetune`` the way ComfyUI does (by file location), for the bench scripts."""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def load_pack():
    """The ``imagetune`` module, loaded from this checkout unless it is already imported."""
    if "imagetune" not in sys.modules:
        spec = importlib.util.spec_from_file_location("imagetune", ROOT / "__init__.py",
                                                      submodule_search_locations=[str(ROOT)])
        module = importlib.util.module_from_spec(spec)
        sys.modules["imagetune"] = module
        spec.loader.exec_module(module)
    return sys.modules["imagetune"]
