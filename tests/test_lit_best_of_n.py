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
WORKFLOW = ROOT / "workflows" / "api" / "imagetune-text-to-image.json"


def generate_nodes_batch(tmp_path, prompt: str, seed: int, steps: int, batch: int) -> tuple[np.ndarray, float]:
    """The default workflow run up to its Generate node with ``batch_size`` = ``batch``: (images, its CFG)."""
    graph = {k: v for k, v in json.loads(WORKFLOW.read_text()).items() if k in ("1", "2", "3", "4", "5", "6")}
    graph["2"]["inputs"]["text"] = prompt
    graph["6"]["inputs"].update(steps=steps, seed=seed, batch_size=batch)
    graph["7"] = {"class_type": "ImageTuneSaveImage", "inputs": {"filename_prefix": "candidates", "images": ["6", 0]}}
    ctx = ExecutionContext(device="cpu", output_dir=tmp_path, input_dir=tmp_path, models_dirs=[ROOT / "models"])
    return Runtime(default_registry()).run(graph, ctx=ctx).outputs["6"][0].numpy(), graph["6"]["inputs"]["guidance"]


def test_candidates_are_the_generate_nodes_batch(tmp_path):
    from imagetune.shapes.evaluate import load_text_encoder
    from imagetune.shapes.model import load_pipeline

    prompt, seed, steps = "a crimson disc, not on a white background", 5, 3
    node, cfg = generate_nodes_batch(tmp_path, prompt, seed, steps, 3)
    # The workflow's Understand Prompt node (4) hands the generator its canonical caption: do the same.
    from imagetune.shapes.evaluate import understood, workflow_reader
    from imagetune.shapes.understand import PromptReader
    text = load_text_encoder()
    caption = understood(PromptReader.from_pretrained(workflow_reader(WORKFLOW)), text, [prompt])
    ours = workflow_candidates(load_pipeline(ROOT / "models" / "imagetune-shapes"), text,
                               caption + ["a red circle on a blue background"], [seed, 0], 3, steps, cfg)
    assert ours.shape == (2, 3, 64, 64, 3)
    np.testing.assert_allclose(ours[0], node, atol=2e-3)  # batched float kernels may differ in the last bits
    assert np.abs(ours[0, 0] - ours[0, 1]).max() > 0.1  # candidates differ


def test_understood_candidates_are_the_generate_nodes_batch_behind_understand_prompt(tmp_path):
    """``--understand``'s candidates: what Generate with batch_size n makes from Understand Prompt's conditioning."""
    from imagetune.lit.best_of_n_eval import cached_candidates
    from imagetune.shapes.evaluate import load_text_encoder, understood_descriptions, workflow_reader
    from imagetune.shapes.scene import canonical_text
    from imagetune.shapes.understand import PromptReader

    prompt, seed, steps = "a crimson disc, not on a white background", 3, 3
    node, cfg = generate_nodes_batch(tmp_path, prompt, seed, steps, 2)
    asked = understood_descriptions(PromptReader.from_pretrained(workflow_reader(WORKFLOW)), load_text_encoder(),
                                    [prompt])
    assert canonical_text(asked[0]) != prompt  # the generator gets the reader's caption, not the prompt
    ours = cached_candidates(None, [canonical_text(asked[0])], [seed], 2, steps, cfg, descriptions=asked)
    assert ours.shape == (1, 2, 64, 64, 3)
    np.testing.assert_allclose(ours[0], node, atol=0.5 / 255 + 2e-3)  # ours is kept as 8-bit levels


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


def test_geneval_candidates_are_the_generate_nodes_batch_for_a_two_object_prompt(tmp_path):
    """``evaluate.generate(candidates=n)``, which geneval's --best-of uses, makes the Generate node's batch_size n
    behind the default workflow's Understand Prompt, regional conditioning included."""
    from imagetune.shapes.evaluate import generate, load_text_encoder
    from imagetune.shapes.geneval import understood
    from imagetune.shapes.model import load_pipeline
    from imagetune.shapes.regions import trained_caption
    from imagetune.shapes.scene import canonical_text

    prompt, seed, steps = "a red circle to the left of a blue square", 5, 3
    node, cfg = generate_nodes_batch(tmp_path, prompt, seed, steps, 3)
    text = load_text_encoder()
    folder = ROOT / "models" / "imagetune-shapes"
    asked = understood([prompt], WORKFLOW, text)
    assert len(asked[0].things) == 2 and trained_caption(folder) is not None  # the regional path is what runs
    ours = generate(load_pipeline(folder), text, [canonical_text(asked[0])], [seed], steps, cfg,
                    descriptions=asked, caption=trained_caption(folder), candidates=3)
    assert ours.shape == (3, 64, 64, 3)
    np.testing.assert_allclose(ours, node, atol=2e-3)


def test_geneval_best_of_reports_the_pick_beside_the_first_candidate_and_the_ceiling():
    """With a wrong render first and a right one second for every prompt, the first candidate alone scores 0,
    any-of-2 scores 1 and the judge's pick lands between (its own score)."""
    from imagetune.shapes import geneval
    from imagetune.shapes import scene as sc

    rng = np.random.default_rng(0)
    asked = [p for p in geneval.prompts(seeds=1) if p.task in ("colours", "position")][:6]
    wrong = {"colours": lambda a: geneval.Ask((sc.Thing(a.things[0].shape, next(c for c in sc.COLOURS if c != a.things[0].colour)),)),
             "position": lambda a: geneval.Ask(a.things, relation=geneval.OPPOSITE[a.relation])}
    candidates = np.stack([np.stack([sc.render(geneval.ground_truth(wrong[p.task](p.ask), rng), 64, rng),
                                     sc.render(geneval.ground_truth(p.ask, rng), 64, rng)]) for p in asked])
    result = geneval.best_of(candidates, asked, geneval.judges(None))
    assert result["compared"]["first candidate alone"]["overall"] == 0.0
    assert result["compared"]["any of 2 right (ceiling)"]["overall"] == 1.0
    assert 0.0 <= result["overall"] <= 1.0 and result["best_of"] == 2
    # a second judge picks among the same candidates: the shipped judge again agrees with the first exactly
    twice = geneval.best_of(candidates, asked, geneval.judges([f"first={geneval.JUDGE}", f"again={geneval.JUDGE}"]))
    assert twice["compared"]["again best of 2"]["overall"] == twice["overall"] == result["overall"]
    # ranked by what the wrong render shows, the judge keeps it more often than ranked by the prompt
    misled = geneval.best_of(candidates, asked, geneval.judges(None),
                             [sc.canonical_text(wrong[p.task](p.ask).description()) for p in asked])
    assert misled["overall"] < result["overall"]


def test_evaluation_saves_the_picture_the_default_workflow_keeps_and_saves(tmp_path):
    """The evaluation's path (4 candidates behind Understand Prompt, the workflow's judge picking by the understood
    caption, the post-generator nodes) ends in the PNG the whole default workflow saves."""
    from PIL import Image

    from imagetune.shapes.evaluate import (best_of_setting, generate, judge_pick, load_text_encoder,
                                           understood_descriptions, workflow_reader)
    from imagetune.shapes.model import load_pipeline
    from imagetune.shapes.regions import trained_caption
    from imagetune.shapes.saved_png import SavedPng
    from imagetune.shapes.scene import canonical_text
    from imagetune.shapes.understand import PromptReader

    prompt, seed, steps = "a crimson disc, not on a white background", 2, 4
    graph = json.loads(WORKFLOW.read_text())
    graph["2"]["inputs"]["text"] = prompt
    graph["6"]["inputs"].update(steps=steps, seed=seed)
    ctx = ExecutionContext(device="cpu", output_dir=tmp_path, input_dir=tmp_path, models_dirs=[ROOT / "models"])
    result = Runtime(default_registry()).run(graph, ctx=ctx)
    (entry,) = result.ui["11"]["images"]
    workflow_png = np.asarray(Image.open(tmp_path / entry["subfolder"] / entry["filename"]).convert("RGB"))
    kept = int(result.outputs["14"][2])

    best_of = best_of_setting(WORKFLOW, "workflow")
    assert best_of[0] == 4
    text, folder = load_text_encoder(), ROOT / "models" / "imagetune-shapes"
    asked = understood_descriptions(PromptReader.from_pretrained(workflow_reader(WORKFLOW)), text, [prompt])
    candidates = generate(load_pipeline(folder), text, [canonical_text(asked[0])], [seed], steps,
                          graph["6"]["inputs"]["guidance"], descriptions=asked, caption=trained_caption(folder),
                          candidates=4)
    picked = judge_pick(candidates, [canonical_text(asked[0])], best_of)
    np.testing.assert_allclose(picked[0], candidates[kept], atol=1e-6)  # the judge keeps the node's pick
    ours = SavedPng(WORKFLOW)(picked)[0]
    assert ours.shape == workflow_png.shape == (256, 256, 3)
    assert np.abs(ours.astype(int) - workflow_png.astype(int)).mean() < 1.0  # batched kernels differ in the last bits
