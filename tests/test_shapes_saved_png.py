"""The analyzer judges what the user gets: ground truth through the default workflow's own post-generator nodes."""
import json

import numpy as np
import pytest

from imagetune.shapes import dataset as ds
from imagetune.shapes.analyzer import analyze
from imagetune.shapes.picture import ground_truth, measure
from imagetune.shapes.saved_png import DEFAULT_WORKFLOW, SavedPng, downstream_graph, workflow_best_of


@pytest.fixture(scope="module")
def post():
    return SavedPng()


def test_post_generator_graph_keeps_the_workflow_nodes_after_the_kept_picture():
    workflow = json.loads(DEFAULT_WORKFLOW.read_text())
    graph, picture, saves = downstream_graph(workflow)
    classes = {n["class_type"] for n in graph.values()}
    # the default workflow keeps the LiT judge's best of the generator's batch: the picture is that node's
    assert picture == "14" and graph[picture]["class_type"] == "ImageTuneShapesImageSource"
    assert workflow_best_of(workflow) == (4, "shapes-lite0-minilm")
    assert {"ImageTuneStyleTransfer", "ImageTuneUpscaleWithModel", "ImageTuneUnsharpMask",
            "ImageTuneSaveImage"} <= classes
    assert not classes & {"ImageTuneGenerate", "ImageTuneEncodeText", "ImageTuneLoadPipeline", "ImageTuneUnderstandPrompt",
                          "ImageTuneLoadLiTModel", "ImageTuneLiTBestOfN"}
    assert saves == ["11"] and graph["7"]["inputs"] == workflow["7"]["inputs"] == {**graph["7"]["inputs"], "image": ["14", 0]}
    # without the best-of-N node the generator's picture is the one the post nodes take
    one = {k: v for k, v in workflow.items() if k not in ("13", "14")}
    one["7"] = {**one["7"], "inputs": {**one["7"]["inputs"], "image": ["6", 0]}}
    graph, picture, _ = downstream_graph(one)
    assert picture == "6" and workflow_best_of(one) is None and "7" in graph


def test_analyzer_reads_ground_truth_through_the_default_workflow(post):
    small, _, specs = ground_truth(len(ds.all_specs()), seed=21, size=64)
    small, specs = small[::2], specs[::2]  # 84 of the 168 combinations (the x4 GAN takes ~0.5 s an image)
    saved = post(small)
    assert saved[0].shape == (256, 256, 3)
    hits = [analyze(image).matches(spec)["all"] for image, spec in zip(saved, specs)]
    assert np.mean(hits) >= 0.99, f"{np.mean(hits):.1%} of {len(hits)} ground-truth renders judged right"


def test_default_style_keeps_colours_and_outlines_clean(post):
    small, masks, specs = ground_truth(12, seed=4, size=256)
    figures = measure(post(small), masks, specs)
    assert figures["colour_error"] < 12 and figures["texture"] < 4, figures
    noisy_post = SavedPng(overrides={"7.strength": 1.0, "7.style": "style 19"})  # a noisy style, same figures
    noisy = measure(noisy_post(small), masks, specs)
    assert noisy["texture"] > 2 * figures["texture"] and noisy["colour_error"] > 2 * figures["colour_error"]


def test_overrides_must_name_a_post_generator_input(post):
    with pytest.raises(KeyError, match="6.steps"):
        post.set_values({"6.steps": 3})
