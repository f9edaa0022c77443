"""The best-of-N measurement makes exactly what the default workflow's Generate node makes with batch_size N."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from imagetune.graph_runtime import ExecutionContext, Runtime
from imagetune.lit.best_of_n_eval import report, workflow_candidates
from imagetune.nodes import default_registry
from imagetune.shapes import heldout

ROOT = Path(__file__).resolve().parents[1]


def test_candidates_are_the_generate_nodes_batch(tmp_path):
    from imagetune.shapes.evaluate import load_text_encoder
    from imagetune.shapes.model import load_pipeline

    prompt, seed, steps = "a crimson disc, not on a white background", 5, 3
    workflow = json.loads((ROOT / "workflows" / "api" / "imagetune-text-to-image.json").read_text())
    graph = {k: v for k, v in workflow.items() if k in ("1", "2", "3", "4", "5", "6")}  # up to the generator
    graph["2"]["inputs"]["text"] = prompt
    graph["6"]["inputs"].update(steps=steps, seed=seed, batch_size=3)
    graph["7"] = {"class_type": "ImageTuneSaveImage", "inputs": {"filename_prefix": "candidates", "images": ["6", 0]}}
    cfg = graph["6"]["inputs"]["guidance"]
    ctx = ExecutionContext(device="cpu", output_dir=tmp_path, input_dir=tmp_path, models_dirs=[ROOT / "models"])
    node = Runtime(default_registry()).run(graph, ctx=ctx).outputs["6"][0].numpy()
    # The workflow's Understand Prompt node (4) hands the generator its canonical caption: do the same.
    from imagetune.shapes.evaluate import understood, workflow_reader
    from imagetune.shapes.understand import PromptReader
    text = load_text_encoder()
    caption = understood(PromptReader.from_pretrained(workflow_reader(ROOT / "workflows" / "api" /
                                                                      "imagetune-text-to-image.json")), text, [prompt])
    ours = workflow_candidates(load_pipeline(ROOT / "models" / "imagetune-shapes"), text,
                               caption + ["a red circle on a blue background"], [seed, 0], 3, steps, cfg)
    assert ours.shape == (2, 3, 64, 64, 3)
    np.testing.assert_allclose(ours[0], node, atol=2e-3)  # batched float kernels may differ in the last bits
    assert np.abs(ours[0, 0] - ours[0, 1]).max() > 0.1  # candidates differ


def test_report_compares_the_seed_the_judges_and_the_bounds():
    items = [heldout.Prompt("canonical", "a", heldout.Target("circle", "red", "blue"), 0),
             heldout.Prompt("canonical", "b", heldout.Target("circle", "red", "blue"), 1),
             heldout.Prompt("unseen fillers", "c", heldout.Target("circle", "red", "blue"), 0)]
    right = np.array([[False, True, False, False], [True, False, False, False], [False, False, False, False]])
    table = report(items, right, {"judge": {4: [1, 0, 2]}})
    assert table["canonical"] == {"prompts": 2, "seed only": 0.5, "judge best of 4": 1.0, "judge best of 4: gained": 1,
                                  "judge best of 4: lost": 0, "any of 4 right": 1.0, "mean candidate": 0.25}
    assert table["ALL UNSEEN WORDINGS (pooled)"]["prompts"] == 1
    assert table["ALL PROMPTS"]["judge best of 4"] == pytest.approx(2 / 3, abs=1e-4)
