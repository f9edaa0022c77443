"""The shipped LiT judge, loaded through the real loader, on ground-truth renders of both worlds."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from imagetune.graph_runtime import ExecutionContext
from imagetune.lit.shapes_source import confusers
from imagetune.nodes.lit import LoadLiTModelNode
from imagetune.shapes import dataset as ds
from imagetune.shapes import scene as S

MODELS = Path(__file__).resolve().parents[1] / "models"


@pytest.fixture(scope="module")
def judge(tmp_path_factory):
    ctx = ExecutionContext(device="cpu", output_dir=tmp_path_factory.mktemp("out"),
                           input_dir=tmp_path_factory.mktemp("in"), models_dirs=[MODELS])
    (model,) = LoadLiTModelNode().run(ctx, "shapes-lite0-minilm")
    return model


def renders(scenes, seed: int = 0) -> torch.Tensor:
    rng = np.random.default_rng(seed)
    return torch.from_numpy(np.stack([np.asarray(S.render(s, 64, rng)) for s in scenes])).float() / 255


def test_the_config_records_the_training_on_both_worlds(judge):
    config = judge.config
    assert config["data"] == "shapes" and config["image_tower"]["pool"] == "multi-halves"
    assert config["data_settings"]["scene_share"] > 0 and config["command"].startswith("imagetune lit-tune shapes")
    assert config["train"]["pairs"] == config["data_settings"]["pairs"]


def test_held_out_combinations_get_their_own_caption_first(judge):
    """Each held-out combination, rendered twice, against the canonical captions of all 168."""
    specs = [spec for spec in ds.HELD_OUT for _ in range(2)]
    captions = [S.canonical(S.single(spec)) for spec in ds.all_specs()]
    sims = judge.similarity(renders([S.single(spec) for spec in specs]), captions)
    predicted = [ds.all_specs()[i] for i in sims.argmax(dim=1).tolist()]
    assert sum(p == s for p, s in zip(predicted, specs)) >= 30  # of 32


def test_other_wordings_and_negations_prefer_the_picture_they_describe(judge):
    pictures = renders([S.single(ds.ShapeSpec(*t)) for t in
                        (("circle", "red", "blue"), ("circle", "red", "white"), ("square", "red", "blue"))])
    def scores(prompt):
        return judge.similarity(pictures, [prompt])[:, 0].tolist()
    on_blue, on_white, square = scores("a photo of a crimson disc over a navy backdrop, high quality")
    assert on_blue > max(on_white, square)
    on_blue, on_white, _ = scores("a red circle, not on a white background")
    assert on_blue > on_white
    on_blue, _, square = scores("a red shape on a blue background, not a square")
    assert on_blue > square


def test_held_out_scenes_prefer_their_own_caption_over_swapped_colours_and_counts(judge):
    rng = np.random.default_rng(5)
    scenes = [S.random_scene(rng, kind, held_out=True) for kind in ("pair", "count") for _ in range(12)]
    pictures = renders(scenes, seed=5)
    wins = []
    for picture, scene in zip(pictures, scenes):
        other = confusers(scene).get("colour attribution") or confusers(scene).get("count")
        if other is None:
            continue
        own, wrong = judge.similarity(picture[None], [S.canonical(scene), S.canonical(other)])[0].tolist()
        wins.append(own > wrong)
    assert len(wins) >= 16 and np.mean(wins) >= 0.75
