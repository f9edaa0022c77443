"""Declaring, listing and validating nodes imports no tensor library; only running does (issue 14).

Each check runs in a fresh interpreter, since this test process has torch loaded already. The
static check reads every node module's top-level imports and follows the pack's own modules, so
a top-level ``import torch`` (or a top-level import of an ops module that has one) fails with the
file, line and import chain.
"""
from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
#: libraries that validation, the node list and the UI -> API conversion must never import
HEAVY = ("torch", "diffusers", "transformers", "kornia", "cv2", "onnxruntime", "onnx", "safetensors",
         "spandrel", "numpy", "scipy", "skimage", "sklearn", "PIL", "accelerate", "sentence_transformers")
NODE_MODULES = sorted(p for p in (ROOT / "nodes").glob("*.py") if not p.name.startswith("_"))


def run_fresh(code: str) -> dict:
    """Run ``code`` in a new interpreter; return the JSON it prints last ({"heavy": [...], ...})."""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


REPORT = f"import json, sys; print(json.dumps({{'heavy': sorted(m for m in {HEAVY!r} if m in sys.modules)}}))"


def test_validator_and_node_list_import_no_tensor_library():
    code = ("from imagetune.graph_runtime import Runtime, validate\n"
            "from imagetune.nodes import ALL_NODES, LOAD_ERRORS, default_registry\n"
            "assert LOAD_ERRORS == {}, LOAD_ERRORS\n"
            "assert len(default_registry()) == len(ALL_NODES) > 30\n"
            "plan = Runtime().prepare('workflows/api/imagetune-text-to-image.json')\n"
            "assert len(plan.order) > 5\n"
            "import imagetune\n"
            "assert len(imagetune.NODE_CLASS_MAPPINGS) > 20  # ComfyUI's mappings, built as ComfyUI does\n"
            + REPORT)
    assert run_fresh(code)["heavy"] == []


@pytest.mark.parametrize("argv", [
    ["validate", "workflows/api/imagetune-text-to-image.json"],
    ["validate", "workflows/imagetune-text-to-image.json", "--set", "2.text=a cat"],
    ["nodes"],
    ["nodes", "--json"],
    ["convert", "workflows/imagetune-text-to-image.json"],
    ["--help"],
    ["run", "--help"],
], ids=lambda argv: " ".join(argv))
def test_command_imports_no_tensor_library(argv):
    code = ("import contextlib, io, sys\n"
            "from imagetune.graph_runtime.cli import main\n"
            "with contextlib.redirect_stdout(io.StringIO()):\n"
            "    try:\n"
            f"        code = main({argv!r})\n"
            "    except SystemExit as exc:  # --help\n"
            "        code = exc.code\n"
            "assert code == 0, code\n" + REPORT)
    assert run_fresh(code)["heavy"] == []


def test_running_imports_torch_when_it_runs():
    """The other side of the coin: the nodes' work is still there, imported when a node runs."""
    code = ("import sys\n"
            "from imagetune.graph_runtime import ExecutionContext, NodeRegistry, Runtime\n"
            "from imagetune.nodes.comfy_primitives import PrimitiveIntNode\n"
            "from imagetune.nodes.vector_transform import ScaleConditioningNode\n"
            "runtime = Runtime(NodeRegistry([PrimitiveIntNode]))\n"
            "assert 'torch' not in sys.modules\n"
            "import torch\n"
            "cond = [[torch.ones(1, 2, 3), {'pooled_output': None}]]\n"
            "out = ScaleConditioningNode().run(None, cond, 2.0, False, 'tokens')[0]\n"
            "assert float(out[0][0].sum()) == 12.0\n"
            "assert 'imagetune.ops.conditioning' in sys.modules\n" + REPORT)
    assert "torch" in run_fresh(code)["heavy"]


def top_level_imports(path: Path) -> list[tuple[int, str]]:
    """(line, absolute module name) of the imports that run when the module at ``path`` is imported.

    Imports inside functions and classes run later; ``if TYPE_CHECKING:`` blocks never run.
    """
    package = "imagetune." + ".".join(path.relative_to(ROOT).with_suffix("").parts[:-1])
    found = []

    def visit(statements):
        for node in statements:
            if isinstance(node, ast.Import):
                found.extend((node.lineno, alias.name) for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parts = package.split(".")
                    parts = parts[: len(parts) - node.level + 1]
                    base = ".".join(parts + ([node.module] if node.module else []))
                found.append((node.lineno, base))
                # "from ..ops import conditioning" imports the submodule too
                found.extend((node.lineno, f"{base}.{alias.name}") for alias in node.names)
            elif isinstance(node, ast.If):
                if not (isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING"):
                    visit(node.body)
                visit(node.orelse)
            elif isinstance(node, (ast.Try, ast.With)):
                visit(node.body)
                for handler in getattr(node, "handlers", []):
                    visit(handler.body)

    visit(ast.parse(path.read_text(encoding="utf-8")).body)
    return found


def module_file(name: str) -> Path | None:
    """The source file of one of the pack's own modules (``imagetune.x.y``), or None for anything else."""
    if name != "imagetune" and not name.startswith("imagetune."):
        return None
    parts = name.split(".")[1:]
    for candidate in (ROOT.joinpath(*parts).with_suffix(".py"), ROOT.joinpath(*parts, "__init__.py")):
        if parts and candidate.is_file():
            return candidate
    return ROOT / "__init__.py" if not parts else None


def heavy_chain(path: Path, seen: dict) -> list[str] | None:
    """The import chain from ``path`` to a heavy library at import time, or None."""
    if path in seen:
        return seen[path]
    seen[path] = None  # an import cycle ends here
    for line, name in top_level_imports(path):
        where = f"{path.relative_to(ROOT)}:{line}"
        if name.split(".")[0] in HEAVY:
            seen[path] = [f"{where} imports {name}"]
            return seen[path]
        inner = module_file(name)
        if inner is not None and inner != path:
            chain = heavy_chain(inner, seen)
            if chain:
                seen[path] = [f"{where} imports {name}"] + chain
                return seen[path]
    return None


@pytest.mark.parametrize("path", NODE_MODULES, ids=lambda p: p.name)
def test_node_module_has_no_top_level_heavy_import(path):
    """Import heavy libraries (and the ops modules that use them) inside run() or a helper."""
    chain = heavy_chain(path, {})
    assert chain is None, "declaring nodes must not import a tensor library: " + " -> ".join(chain)


def test_the_static_check_finds_a_top_level_torch_import(tmp_path, monkeypatch):
    """The check above would catch a node module that imports torch, directly or through ops."""
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    (tmp_path / "nodes").mkdir()
    (tmp_path / "ops").mkdir()
    (tmp_path / "ops" / "blur.py").write_text("import math\nimport torch.nn.functional as F\n")
    direct = tmp_path / "nodes" / "direct.py"
    direct.write_text("from __future__ import annotations\nimport torch\n")
    through_ops = tmp_path / "nodes" / "via_ops.py"
    through_ops.write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import torch\n"
                           "from ..ops.blur import gaussian\n")
    lazy = tmp_path / "nodes" / "lazy.py"
    lazy.write_text("def run():\n    import torch\n    from ..ops.blur import gaussian\n")
    assert heavy_chain(direct, {}) == ["nodes/direct.py:2 imports torch"]
    assert heavy_chain(through_ops, {}) == ["nodes/via_ops.py:4 imports imagetune.ops.blur",
                                            "ops/blur.py:2 imports torch.nn.functional"]
    assert heavy_chain(lazy, {}) is None
