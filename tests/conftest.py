"""Load the pack the way ComfyUI does (by file location) and import everything as ``imagetune``."""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _load_pack():
    if "imagetune" in sys.modules and getattr(sys.modules["imagetune"], "__file__", None) == str(ROOT / "__init__.py"):
        return sys.modules["imagetune"]
    spec = importlib.util.spec_from_file_location("imagetune", ROOT / "__init__.py",
                                                  submodule_search_locations=[str(ROOT)])
    module = importlib.util.module_from_spec(spec)
    sys.modules["imagetune"] = module
    spec.loader.exec_module(module)
    return module


_load_pack()


@pytest.fixture(autouse=True, scope="session")
def one_torch_thread():
    """One torch thread for the suite: on the shared 2-core CI machine, threads that spin while
    their partner is descheduled make CPU kernels several times slower, not faster."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def load_folder_paths():
    """Loads a fresh copy of the stand-in for ComfyUI's ``folder_paths`` (tests/stand_ins), laid out
    under a given base folder; the caller puts it in ``sys.modules``."""
    def load(base: Path):
        spec = importlib.util.spec_from_file_location("folder_paths", ROOT / "tests" / "stand_ins" / "folder_paths.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        module.configure(str(base))
        return module

    return load


@pytest.fixture(scope="session")
def keep_node():
    """A test sink: an output node (``ImageTuneTestKeep``) that keeps whatever it is given."""
    from imagetune.graph_runtime import Input, Node

    class KeepNode(Node):
        """Test sink: an output node that keeps whatever it is given."""

        node_id = "ImageTuneTestKeep"
        category = "ImageTune/test"
        inputs = (Input("value", "*"),)
        output_node = True

        def run(self, ctx, value):
            return {"ui": {}, "result": ()}

    return KeepNode
