"""LiT nodes with the shipped shapes head: score, best-of-N, zero-shot classify, loader errors."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from imagetune.graph_runtime import ExecutionContext, NodeInputError, Runtime, ValidationError
from imagetune.lit.model import TextHead, build_config
from imagetune.lit.towers import image_tower_spec, text_tower_spec
from imagetune.nodes import default_registry
from imagetune.nodes.lit import (ClassifyImageZeroShotNode, LoadLiTModelNode, ScoreImageTextNode,
                                 SelectBestImagesNode)
from imagetune.shapes import dataset as shapes

MODELS = Path(__file__).resolve().parents[1] / "models"
Spec = shapes.ShapeSpec


@pytest.fixture(scope="module")
def ctx(tmp_path_factory):
    return ExecutionContext(device="cpu", output_dir=tmp_path_factory.mktemp("out"),
                            input_dir=tmp_path_factory.mktemp("in"), models_dirs=[MODELS])


@pytest.fixture(scope="module")
def lit(ctx):
    (model,) = LoadLiTModelNode().run(ctx, "shapes-lite0-minilm")
    return model


def score(ctx, lit, images, prompts):
    return ScoreImageTextNode().run(ctx, lit, images, prompts)["result"]


def classify(ctx, lit, images, labels, template):
    return ClassifyImageZeroShotNode().run(ctx, lit, images, labels, template)["result"]


def pictures(*specs: Spec) -> torch.Tensor:
    return torch.from_numpy(np.stack([np.asarray(shapes.render(s, 64)) for s in specs])).float() / 255


def test_score_prefers_the_matching_prompt(ctx, lit):
    image = pictures(Spec("circle", "red", "blue"))
    right, _ = score(ctx, lit, image, "a red circle on a blue background")
    wrong, _ = score(ctx, lit, image, "a green triangle on a white background")
    swapped, _ = score(ctx, lit, image, "a blue circle on a red background")
    assert -1.0 <= wrong < swapped < right <= 1.0


def test_score_pairs_each_image_with_its_own_line(ctx, lit):
    images = pictures(Spec("circle", "red", "blue"), Spec("square", "yellow", "purple"))
    mean, scores = score(ctx, lit, images, "a red circle on a blue background\n"
                                                              "a yellow square on a purple background")
    single = [score(ctx, lit, images[i:i + 1], p)[0]
              for i, p in enumerate(["a red circle on a blue background", "a yellow square on a purple background"])]
    assert json.loads(scores) == pytest.approx(single, abs=1e-5)
    assert mean == pytest.approx(sum(single) / 2, abs=1e-5)
    with pytest.raises(NodeInputError, match="prompts"):
        score(ctx, lit, images, "one\ntwo\nthree")


def test_best_of_n_keeps_the_matching_images_first(ctx, lit):
    specs = [Spec("square", "green", "white"), Spec("circle", "red", "blue"), Spec("triangle", "yellow", "black"),
             Spec("circle", "red", "white")]
    images = pictures(*specs)
    kept, scores, best = SelectBestImagesNode().run(ctx, lit, images, "a red circle on a blue background", 2)
    assert best == 1 and torch.equal(kept[0], images[1])
    assert kept.shape == (2, 64, 64, 3)
    values = json.loads(scores)
    assert values[0] >= values[1]
    all_scores = json.loads(score(ctx, lit, images, "a red circle on a blue background")[1])
    assert values == pytest.approx(sorted(all_scores, reverse=True)[:2], abs=1e-5)
    with pytest.raises(NodeInputError, match="top_k"):
        SelectBestImagesNode().run(ctx, lit, images, "a red circle", 5)


def test_zero_shot_classify_shapes_and_colours(ctx, lit):
    images = pictures(Spec("circle", "red", "blue"), Spec("square", "red", "blue"), Spec("triangle", "red", "blue"))
    labels, probs = classify(ctx, lit, images, "circle, square, triangle",
                                                    "a red {} on a blue background")
    assert labels.splitlines() == ["circle", "square", "triangle"]
    for row in json.loads(probs):
        assert sum(row.values()) == pytest.approx(1.0, abs=1e-4)
    colours = ["red", "green", "blue", "yellow"]
    images = pictures(*(Spec("square", c, "black") for c in colours))
    labels, _ = classify(ctx, lit, images, ", ".join(colours), "a {} square on a black background")
    assert labels.splitlines() == colours


def test_classify_rejects_empty_labels_and_templates_without_a_slot(ctx, lit):
    image = pictures(Spec("circle", "red", "blue"))
    with pytest.raises(NodeInputError, match="labels: expected at least one"):
        classify(ctx, lit, image, " , ,", "{}")
    with pytest.raises(NodeInputError, match="template"):
        classify(ctx, lit, image, "a, b", "a photo")
    assert ClassifyImageZeroShotNode.check_inputs(labels="", template="a {}") == [
        ("labels", "expected at least one comma-separated label, got ''")]


def test_workflow_runs_end_to_end_and_validation_catches_empty_labels(ctx, lit):
    shapes.render(Spec("triangle", "green", "purple"), 64).save(Path(ctx.input_dir) / "shape.png")
    workflow = {
        "1": {"class_type": "ImageTuneLoadLiTModel", "inputs": {"model": "shapes-lite0-minilm"}},
        "2": {"class_type": "ImageTuneLoadImage", "inputs": {"image": "shape.png"}},
        "3": {"class_type": "ImageTuneLiTClassify",
              "inputs": {"lit_model": ["1", 0], "images": ["2", 0], "labels": "circle, square, triangle",
                         "template": "a green {} on a purple background"}},
        "4": {"class_type": "ImageTuneLiTScore",
              "inputs": {"lit_model": ["1", 0], "images": ["2", 0], "prompts": "a green triangle on purple"}},
    }
    result = Runtime(default_registry()).run(workflow, ctx=ctx)
    assert result.outputs["3"][0] == "triangle"
    assert result.outputs["4"][0] > 0.2
    workflow["3"]["inputs"]["labels"] = ""
    with pytest.raises(ValidationError, match="labels"):
        Runtime(default_registry()).run(workflow, ctx=ctx)


def test_loader_names_a_missing_model(ctx):
    with pytest.raises(NodeInputError, match="not found"):
        LoadLiTModelNode().run(ctx, "no-such-head")
    with pytest.raises(NodeInputError):
        LoadLiTModelNode().run(ctx, "../shapes")


def test_loader_rejects_a_head_that_does_not_fit_the_towers(tmp_path):
    from safetensors.torch import save_file

    folder = tmp_path / "lit" / "wide"
    folder.mkdir(parents=True)
    head = TextHead(384, 512)
    config = build_config(image_tower_spec("efficientnet-lite0", 64), text_tower_spec("minilm"), 384, 512)
    (folder / "config.json").write_text(json.dumps(config))
    tensors = {f"head.{k}": v for k, v in head.state_dict().items()}
    save_file(dict(tensors, logit_scale=torch.ones(1), image_center=torch.zeros(512)), str(folder / "head.safetensors"))
    ctx = ExecutionContext(device="cpu", output_dir=tmp_path, input_dir=tmp_path, models_dirs=[tmp_path])
    with pytest.raises(NodeInputError, match="image tower width: the head projects to 512 dims, but the image tower gives 1280"):
        LoadLiTModelNode().run(ctx, "wide")
    (folder / "head.safetensors").unlink()
    config["head"]["embed_dim"] = 1280
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(NodeInputError, match="head.safetensors"):
        LoadLiTModelNode().run(ctx, "wide")


def test_tune_node_trains_saves_and_returns_a_usable_model(ctx):
    folder = Path(ctx.input_dir) / "pairs"
    folder.mkdir()
    specs = shapes.training_specs()[::19][:8]
    for i, spec in enumerate(specs):
        shapes.render(spec, 32).save(folder / f"{i}.png")
    (folder / "captions.tsv").write_text("".join(f"{i}.png\t{shapes.caption(s)}\n" for i, s in enumerate(specs)))
    workflow = {"1": {"class_type": "ImageTuneLiTTune",
                      "inputs": {"folder": "pairs", "name": "mine", "image_tower": "efficientnet-lite0",
                                 "text_tower": "minilm", "steps": 2, "batch_size": 4, "learning_rate": 0.001,
                                 "held_out": 0.25, "seed": 0}}}
    steps = []
    ctx = ExecutionContext(device="cpu", output_dir=ctx.output_dir, input_dir=ctx.input_dir, models_dirs=ctx.models_dirs,
                           progress_hook=lambda node, done, total: steps.append(done))
    result = Runtime(default_registry()).run(workflow, ctx=ctx)
    model, report = result.outputs["1"]
    assert "zero_shot_accuracy" in report and steps[-1] == 2
    assert (Path(ctx.output_dir) / "lit" / "mine" / "head.safetensors").is_file()
    assert model.similarity(pictures(specs[0]), [shapes.caption(specs[0])]).shape == (1, 1)
    workflow["1"]["inputs"]["folder"] = "../elsewhere"
    with pytest.raises(ValidationError, match="folder"):
        Runtime(default_registry()).run(workflow, ctx=ctx)
