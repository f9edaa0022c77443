"""Tuning a LiT text head: the loss, the metrics, learning on a small synthetic set, save and reload."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from imagetune.lit.evaluate import retrieval_recall_at_1, zero_shot_accuracy
from imagetune.lit.model import LiTModel, TextHead, build_config, load_lit_model
from imagetune.lit.sources import shapes_data
from imagetune.lit.towers import EfficientNetTower, TextEncoder, image_tower_spec, resolve_source, text_tower_spec
from imagetune.lit.tune import TuneSettings, contrastive_loss, fit, own_caption_positives, tower_features
from imagetune.shapes import dataset as shapes

IMAGE_SIZE = 64  # small inputs keep the locked tower cheap; the features still separate colour and shape


@pytest.fixture(scope="module")
def towers():
    return EfficientNetTower(IMAGE_SIZE), TextEncoder(resolve_source("minilm"))


def fresh_model(towers, seed: int = 0) -> LiTModel:
    image_tower, text_encoder = towers
    torch.manual_seed(seed)
    head = TextHead(text_encoder.width, image_tower.dim, layers=1, dropout=0.1)
    config = build_config(image_tower_spec("efficientnet-lite0", IMAGE_SIZE), text_tower_spec("minilm"),
                          text_encoder.width, image_tower.dim)
    return LiTModel(image_tower, text_encoder, head, config)


def pair_features(model, data):
    """Tower features of each training pair (pictures carry several captions)."""
    return tower_features(model, data.train_images)[torch.tensor(data.train_pair_images)]


@pytest.fixture(scope="module")
def tuned(towers):
    """A head tuned for a few seconds on 480 training pairs of both worlds; held-out pictures of unseen combinations."""
    data = shapes_data(pairs=480, seed=0, size=32, held_per_combination=2)
    model = fresh_model(towers)
    train = pair_features(model, data)
    losses = fit(model, train, data.train_captions, TuneSettings(steps=60, batch_size=48, lr=3e-3, warmup=5, seed=0),
                 meaning=data.train_meaning)
    return model, losses, data, tower_features(model, data.held_images), train


def test_loss_matches_a_plain_clip_loss_when_captions_are_distinct():
    torch.manual_seed(1)
    images, texts = F.normalize(torch.randn(6, 8), dim=-1), F.normalize(torch.randn(6, 8), dim=-1)
    scale = torch.tensor(2.0)
    logits = scale.exp() * images @ texts.T
    reference = (F.cross_entropy(logits, torch.arange(6)) + F.cross_entropy(logits.T, torch.arange(6))) / 2
    assert contrastive_loss(images, texts, own_caption_positives(torch.arange(6), 6), scale).item() == pytest.approx(reference.item(), rel=1e-6)


def test_loss_treats_images_sharing_a_caption_as_positives():
    torch.manual_seed(2)
    images, texts = F.normalize(torch.randn(4, 8), dim=-1), F.normalize(torch.randn(3, 8), dim=-1)
    owner = torch.tensor([0, 1, 1, 2])  # images 1 and 2 share caption 1
    logits = images @ texts.T
    i2t = -sum(logits[i].log_softmax(0)[owner[i]] for i in range(4)) / 4
    t2i_rows = []
    for caption in range(3):
        log_probs = logits[:, caption].log_softmax(0)
        mine = [i for i in range(4) if owner[i] == caption]
        t2i_rows.append(-sum(log_probs[i] for i in mine) / len(mine))
    reference = (i2t + sum(t2i_rows) / 3) / 2
    assert contrastive_loss(images, texts, own_caption_positives(owner, 3), torch.tensor(0.0)).item() == pytest.approx(reference.item(), rel=1e-5)


def test_metrics_on_embeddings_with_known_answers():
    texts = torch.eye(3)
    images = torch.tensor([[1.0, 0.1, 0], [0, 1.0, 0], [0.9, 0, 0.2], [0, 0, 1.0]])  # image 2 looks like caption 0
    truth = torch.tensor([0, 1, 2, 2])
    assert zero_shot_accuracy(images, truth, texts) == pytest.approx(0.75)
    recall = retrieval_recall_at_1(images, truth, texts)
    assert recall["image_to_text"] == pytest.approx(0.75)
    assert recall["text_to_image"] == pytest.approx(1.0)  # caption 2's best image (3) is one of its own


def test_tuning_lowers_the_loss(tuned):
    _, losses, _, _, _ = tuned
    first, last = sum(losses[:5]) / 5, sum(losses[-5:]) / 5
    assert last < 0.7 * first


def test_tuned_head_beats_chance_on_held_out_combinations(tuned):
    model, _, data, held, _ = tuned
    metrics = data.metrics(model, held, prompts=False)["shapes"]
    assert metrics["shape"] > 0.6  # chance 1/3
    assert metrics["exact_among_held_out"] > 3 / len(shapes.HELD_OUT)  # three times chance


def test_untrained_head_does_not(towers, tuned):
    _, _, data, held, train = tuned
    model = fresh_model(towers, seed=0)
    model.image_center.copy_(train.mean(0))
    assert data.metrics(model, held, prompts=False)["shapes"]["exact_among_held_out"] <= 3 / len(shapes.HELD_OUT)


def test_saved_head_reloads_with_identical_scores(tuned, tmp_path):
    model, _, data, _, _ = tuned
    model.save(tmp_path / "head")
    again = load_lit_model(tmp_path / "head")
    model._text_cache.clear()  # caption embeddings made in other batches differ in the last float bits
    captions = data.held_captions[:5] + ["a purple square on a white background"]
    images = data.held_images[:4]
    # identical up to float rounding: multi-threaded CPU kernels may sum in another order (1 ulp)
    torch.testing.assert_close(again.similarity(images, captions), model.similarity(images, captions), atol=1e-6, rtol=0)
    assert again.logit_scale.item() == model.logit_scale.item()


def test_tuning_is_seeded(towers):
    data = shapes_data(pairs=64, seed=3, size=32, held_per_combination=1)
    features = pair_features(fresh_model(towers), data)
    runs = []
    for _ in range(2):
        model = fresh_model(towers)
        runs.append(fit(model, features, data.train_captions, TuneSettings(steps=4, batch_size=16, seed=5),
                        meaning=data.train_meaning))
    assert runs[0] == runs[1]


def test_a_caption_in_two_groups_is_an_error(towers):
    model = fresh_model(towers)
    with pytest.raises(ValueError, match="belongs to two groups"):
        fit(model, torch.randn(3, model.image_tower.dim), ["a", "a", "b"], TuneSettings(steps=1), groups=[1, 2, 2])


def test_a_caption_true_of_no_image_only_competes_in_the_images_softmax():
    torch.manual_seed(1)
    images, texts = F.normalize(torch.randn(4, 8), dim=1), F.normalize(torch.randn(6, 8), dim=1)
    positives = own_caption_positives(torch.arange(4), 6)  # captions 4 and 5: hard negatives, true of no image
    scale = torch.tensor(2.0)
    logits = scale.exp() * images @ texts.T
    image_to_text = F.cross_entropy(logits, torch.arange(4))
    text_to_image = F.cross_entropy(logits[:, :4].T, torch.arange(4))
    loss = contrastive_loss(images, texts, positives, scale)
    assert loss.item() == pytest.approx(((image_to_text + text_to_image) / 2).item(), rel=1e-6)
    # the negatives make the images' side harder than without them
    assert loss.item() > contrastive_loss(images, texts[:4], positives[:, :4], scale).item()


def test_hard_negatives_join_the_batch_rows_they_belong_to():
    from imagetune.lit.tune import hard_negative_rows, with_hard_negatives
    captions = ["a", "b", "a", "c"]
    negatives = [[("x", 1), ("y", 2)], [("a", 0)], [("z", 3)], []]
    texts, hard = hard_negative_rows(captions, ["a", "b", "c"], negatives)
    assert texts == ["a", "b", "c", "x", "y", "z"]
    assert sorted(r for r in hard[0].tolist() if r >= 0) == [3, 4, 5]  # "a"'s negatives from both of its pairs
    assert [r for r in hard[1].tolist() if r >= 0] == [0] and (hard[2:] < 0).all()
    generator = torch.Generator().manual_seed(0)
    rows = with_hard_negatives(torch.tensor([0, 2]), hard, 2, generator)
    assert {0, 2} <= set(rows.tolist()) and len(rows) == 4 and set(rows.tolist()) <= {0, 2, 3, 4, 5}
    assert with_hard_negatives(torch.tensor([2]), hard, 2, generator).tolist() == [2]  # "c" has none


def test_tuning_with_hard_negatives_records_them_and_learns(towers):
    data = shapes_data(pairs=240, seed=1, size=32, held_per_combination=1)
    model = fresh_model(towers)
    settings = TuneSettings(steps=20, batch_size=48, lr=3e-3, warmup=5, seed=0, hard_negatives=2)
    losses = fit(model, pair_features(model, data), data.train_captions, settings, meaning=data.train_meaning)
    assert model.config["train"]["hard_negative_captions"] > 0
    assert model.config["train"]["distinct_captions"] == len(set(data.train_captions))
    assert sum(losses[-5:]) < sum(losses[:5])
