"""What the user gets: images passed through a workflow's own nodes after the generator, as saved PNGs.

``SavedPng(workflow)`` keeps every node of the API workflow that the generator's picture does not
depend on (style, upscale, sharpen, save, ...), puts an image source in that picture's place and
runs that graph through the pack's runtime, so a batch of 64x64 pictures (generated, or
ground-truth renders) comes back as the PNG files the Save node wrote, decoded. The picture is the
generator's output, or, when a best-of-N node keeps one of the generator's batch, that node's:
the evaluation then makes the candidates and picks among them itself (``workflow_best_of``). Nodes' settings come from
the workflow file; ``overrides`` ("7.strength" -> 0.3) change input values, as ``--set`` does.
"""
from __future__ import annotations

import copy
import itertools
import json
import tempfile
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from ..graph_runtime import ExecutionContext, Input, Node, Output, Runtime
from ..graph_runtime import types as T

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_WORKFLOW = ROOT / "workflows" / "api" / "imagetune-text-to-image.json"
GENERATOR = "ImageTuneGenerate"
SELECTOR = "ImageTuneLiTBestOfN"  # keeps the judge's best of the generator's batch
JUDGE_LOADER = "ImageTuneLoadLiTModel"
SOURCE = "ImageTuneShapesImageSource"


def generator_id(workflow: dict) -> str:
    """The id of the workflow's one Generate node."""
    found = [i for i, n in workflow.items() if n.get("class_type") == GENERATOR]
    if len(found) != 1:
        raise ValueError(f"workflow: expected exactly one {GENERATOR} node, found {len(found)}")
    return found[0]


def selector_id(workflow: dict) -> str | None:
    """The id of the best-of-N node that takes the generator's images, or None."""
    images = [generator_id(workflow), 0]
    found = [i for i, n in workflow.items() if n.get("class_type") == SELECTOR and n["inputs"].get("images") == images]
    return found[0] if found else None


def picture_id(workflow: dict) -> str:
    """The node whose images the post-generator nodes take: the best-of-N node if there is one, else the generator."""
    return selector_id(workflow) or generator_id(workflow)


def workflow_best_of(workflow: dict) -> tuple[int, str] | None:
    """(candidates: the Generate node's batch_size, the LiT model folder name its best-of-N node loads), or None."""
    chosen = selector_id(workflow)
    if chosen is None:
        return None
    loader = workflow[str(workflow[chosen]["inputs"]["lit_model"][0])]
    if loader.get("class_type") != JUDGE_LOADER:
        raise ValueError(f"node {chosen}: expected its lit_model from a {JUDGE_LOADER} node")
    return int(workflow[generator_id(workflow)]["inputs"].get("batch_size", 1)), loader["inputs"]["model"]


def downstream_graph(workflow: dict) -> tuple[dict, str, list[str]]:
    """(graph without the picture's ancestors, the picture node's id, ids of the nodes that save images)."""
    gen_id = picture_id(workflow)
    ancestors, todo = set(), [gen_id]
    while todo:
        for value in workflow[todo.pop()]["inputs"].values():
            if isinstance(value, list) and len(value) == 2 and str(value[0]) not in ancestors:
                ancestors.add(str(value[0]))
                todo.append(str(value[0]))
    graph = {i: copy.deepcopy(n) for i, n in workflow.items() if i not in ancestors}
    graph[gen_id] = {"class_type": SOURCE, "inputs": {"key": ""}}
    saves = [i for i, n in graph.items() if "filename_prefix" in n["inputs"]]
    return graph, gen_id, saves


class SavedPng:
    """Run 64x64 pictures through a workflow's post-generator nodes and read back the saved PNGs."""

    def __init__(self, workflow: Path = DEFAULT_WORKFLOW, overrides: dict[str, object] | None = None,
                 models_dirs: list[Path] | None = None):
        from ..nodes import default_registry
        self.graph, self.gen_id, self.saves = downstream_graph(json.loads(Path(workflow).read_text()))
        self.set_values(overrides or {})
        self.batches: dict[str, torch.Tensor] = {}
        registry = default_registry()
        registry.add(image_source(self.batches))
        self.runtime = Runtime(registry)
        self.models_dirs = models_dirs or [ROOT / "models"]
        self.counter = itertools.count()

    def set_values(self, overrides: dict[str, object]) -> None:
        """Change node input values, keyed "<node id>.<input>" as ``imagetune run --set`` does."""
        for key, value in overrides.items():
            node, name = key.split(".", 1)
            if node not in self.graph or name not in self.graph[node]["inputs"]:
                raise KeyError(f"{key}: no such input among the post-generator nodes {sorted(self.graph)}")
            self.graph[node]["inputs"][name] = value

    def __call__(self, images: np.ndarray, batch: int = 16) -> list[np.ndarray]:
        """uint8 or 0..1 float [N, H, W, 3] -> the saved PNGs as uint8 [H', W', 3] arrays, in order."""
        images = np.asarray(images)
        if images.dtype == np.uint8:
            images = images.astype(np.float32) / 255.0
        out = []
        for i in range(0, len(images), batch):
            out.extend(self.run_batch(torch.from_numpy(np.ascontiguousarray(images[i:i + batch], np.float32))))
        return out

    def run_batch(self, images: torch.Tensor) -> list[np.ndarray]:
        """One runtime run of the graph on ``images`` [B, H, W, 3]."""
        key = f"batch-{next(self.counter)}"
        self.batches[key] = images
        graph = copy.deepcopy(self.graph)
        graph[self.gen_id]["inputs"]["key"] = key
        with tempfile.TemporaryDirectory() as tmp:
            ctx = ExecutionContext(device="cpu", input_dir=Path(tmp), output_dir=Path(tmp),
                                   models_dirs=self.models_dirs)
            result = self.runtime.run(graph, ctx=ctx)
            (save,) = self.saves
            return [np.asarray(Image.open(Path(tmp) / e["subfolder"] / e["filename"]).convert("RGB"))
                    for e in result.ui[save]["images"]]


def image_source(batches: dict[str, torch.Tensor]) -> type[Node]:
    """A node that hands out the batch stored under its ``key`` (stands in for the generator)."""

    class ImageSource(Node):
        """The pictures to post-process (evaluation only; not part of the pack)."""

        node_id = SOURCE
        category = "ImageTune/evaluation"
        inputs = (Input("key", T.STRING),)
        outputs = (Output(T.IMAGE, "image"),)

        def run(self, ctx, key):
            return (batches.pop(key),)

    return ImageSource
