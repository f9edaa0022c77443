"""Locked-image text tuning: train the text head against cached image features with InfoNCE.

Both towers are frozen, so their outputs are computed once: image features per pair and token
states per distinct caption. Each step then runs only the small head, which is what makes
tuning on thousands of pairs take minutes on a CPU.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F

from .evaluate import retrieval_recall_at_1, top1_true, zero_shot_accuracy
from .model import LiTModel, TextHead, build_config
from .towers import load_image_tower, load_text_encoder

MAX_LOGIT_SCALE = math.log(100.0)  # CLIP's cap on the inverse temperature
StepHook = Callable[[int, int, float], None]


@dataclass
class TuneSettings:
    """Hyper-parameters of one tuning run (all seeded by ``seed``)."""

    steps: int = 1500
    batch_size: int = 128
    lr: float = 1e-3
    weight_decay: float = 0.01
    warmup: int = 50
    seed: int = 0
    layers: int = 1
    dropout: float = 0.1
    max_tokens: int = 64
    center_images: bool = True
    hard_negatives: int = 0  # per caption in a batch, this many of its hard negatives join the batch's texts


def new_model(image_spec: dict, text_spec: dict, settings: TuneSettings, search: list[Path] = ()) -> LiTModel:
    """A LiT model with the given towers and a freshly initialised (seeded) text head."""
    text_encoder = load_text_encoder(text_spec, search, settings.max_tokens)
    image_tower = load_image_tower(image_spec, search)
    torch.manual_seed(settings.seed)
    head = TextHead(text_encoder.width, image_tower.dim, settings.layers, settings.dropout)
    config = build_config(image_spec, text_spec, text_encoder.width, image_tower.dim, settings.layers,
                          settings.max_tokens)
    return LiTModel(image_tower, text_encoder, head, config)


@torch.no_grad()
def tower_features(model: LiTModel, images: torch.Tensor, batch_size: int = 32,
                   progress: Callable[[int, int], None] | None = None) -> torch.Tensor:
    """Raw image-tower features [N, D] of IMAGE [N, H, W, C] (before the model's centring)."""
    chunks = []
    for start in range(0, images.shape[0], batch_size):
        chunks.append(model.image_tower(images[start:start + batch_size].to(model.device)).cpu())
        if progress is not None:
            progress(min(start + batch_size, images.shape[0]), images.shape[0])
    return torch.cat(chunks) if chunks else torch.zeros(0, model.image_tower.dim)


@torch.no_grad()
def caption_states(model: LiTModel, captions: list[str], batch_size: int = 256) -> tuple[torch.Tensor, torch.Tensor]:
    """Frozen token states [U, T, W] and masks [U, T] of distinct captions, padded to one length T."""
    parts = [model.text_encoder(captions[i:i + batch_size]) for i in range(0, len(captions), batch_size)]
    length = max(states.shape[1] for states, _ in parts)
    states = torch.cat([F.pad(s, (0, 0, 0, length - s.shape[1])) for s, _ in parts]).cpu()
    masks = torch.cat([F.pad(m, (0, length - m.shape[1])) for _, m in parts]).cpu()
    return states, masks


def contrastive_loss(image_embeds: torch.Tensor, text_embeds: torch.Tensor, positives: torch.Tensor,
                     logit_scale: torch.Tensor) -> torch.Tensor:
    """Symmetric InfoNCE between images [B, D] and distinct captions [U, D].

    ``positives`` [B, U] marks which captions describe which image; every row has at least one.
    With several positives the loss averages their log-probabilities, so an image is never pushed
    away from a caption that also describes it (a repeated caption, or another phrasing of the
    same content). A caption true of no image in the batch (a hard negative) only competes in the
    images' softmax: it has no image to be drawn to.
    """
    logits = logit_scale.exp() * image_embeds @ text_embeds.T  # [B, U]
    weights = positives.to(logits.dtype)
    image_to_text = -((weights * logits.log_softmax(dim=1)).sum(1) / weights.sum(1)).mean()
    held = weights.sum(0) > 0
    columns, column_logits = weights.T[held], logits.T[held]
    text_to_image = -((columns * column_logits.log_softmax(dim=1)).sum(1) / columns.sum(1)).mean()
    return (image_to_text + text_to_image) / 2


def own_caption_positives(caption_of_image: torch.Tensor, captions: int) -> torch.Tensor:
    """Positives [B, U] when each image has exactly its own caption row ``caption_of_image`` [B]."""
    rows = torch.arange(captions, device=caption_of_image.device)
    return caption_of_image[:, None] == rows[None, :]


def train_head(model: LiTModel, features: torch.Tensor, caption_ids: torch.Tensor, states: torch.Tensor,
               masks: torch.Tensor, settings: TuneSettings, on_step: StepHook | None = None,
               truth: torch.Tensor | None = None, content_ids: torch.Tensor | None = None,
               hard: torch.Tensor | None = None) -> list[float]:
    """Train ``model.head`` and its temperature in place on cached tensors; returns the loss per step.

    ``features`` [N, D] are centred, normalised image embeddings; ``caption_ids`` [N] index the
    distinct captions whose token states are ``states`` [U, T, W] with masks [U, T].
    ``truth`` [U, K] (optional) says which captions are true of which of K contents, and
    ``content_ids`` [N] what each pair's image shows: an image is a positive for every caption in
    its batch that is true of it. By default a caption is true only of its own pairs' images.
    ``hard`` [U, H] (optional) lists each caption's hard negatives as caption rows (-1: none); each
    step adds ``settings.hard_negatives`` of them, drawn at random, for every caption in the batch.
    """
    if truth is None:
        truth, content_ids = torch.eye(len(states), dtype=torch.bool), caption_ids
    with torch.inference_mode(False), torch.enable_grad():
        device = model.device
        features, caption_ids = features.clone().to(device), caption_ids.clone().to(device)
        hard = None if hard is None else hard.to(device)
        states, masks = states.clone().to(device), masks.clone().to(device)
        truth, content_ids = truth.to(device), content_ids.clone().to(device)
        generator = torch.Generator().manual_seed(settings.seed)
        head = model.head.train()
        optimizer = torch.optim.AdamW([
            {"params": list(head.parameters()), "weight_decay": settings.weight_decay},
            {"params": [model.logit_scale], "weight_decay": 0.0}], lr=settings.lr)
        schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, _warmup_cosine(settings.warmup, settings.steps))
        losses, order, cursor = [], torch.randperm(len(features), generator=generator), 0
        batch = min(settings.batch_size, len(features))
        for step in range(settings.steps):
            if cursor + batch > len(order):
                order, cursor = torch.randperm(len(features), generator=generator), 0
            index = order[cursor:cursor + batch].to(device)
            cursor += batch
            distinct = torch.unique(caption_ids[index])
            if hard is not None and settings.hard_negatives > 0:
                distinct = with_hard_negatives(distinct, hard, settings.hard_negatives, generator)
            length = int(masks[distinct].sum(1).max())
            text = head(states[distinct, :length], masks[distinct, :length])
            positives = truth[distinct[None, :], content_ids[index][:, None]]  # [B, U_batch]
            loss = contrastive_loss(features[index], text, positives, model.logit_scale)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            with torch.no_grad():
                model.logit_scale.clamp_(0.0, MAX_LOGIT_SCALE)
            losses.append(loss.item())
            if on_step is not None:
                on_step(step + 1, settings.steps, losses[-1])
        head.eval()
    model._text_cache.clear()
    return losses


def with_hard_negatives(rows: torch.Tensor, hard: torch.Tensor, per_row: int, generator: torch.Generator) -> torch.Tensor:
    """``rows`` (caption rows) and up to ``per_row`` of each one's hard negatives drawn at random, sorted, distinct."""
    pool = hard[rows]  # [R, H]
    keys = torch.rand(pool.shape, generator=generator).to(pool.device).masked_fill(pool < 0, 2.0)
    chosen = pool.gather(1, keys.argsort(dim=1)[:, :per_row])
    return torch.unique(torch.cat([rows, chosen[chosen >= 0]]))


def _warmup_cosine(warmup: int, total: int) -> Callable[[int], float]:
    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return 0.5 * (1 + math.cos(math.pi * min(1.0, (step - warmup) / max(1, total - warmup))))
    return factor


@dataclass
class Meaning:
    """What each training pair's caption says and its image shows, and which sayings are true of which images.

    ``truth(claims, contents)`` returns a bool array [len(claims), len(contents)]; it is asked once
    about the distinct claims and contents, and every caption must be true of its own pair's image.
    """

    claims: list  # one hashable per pair: what its caption says
    contents: list  # one hashable per pair: what its image shows
    truth: Callable[[list, list], object]
    negatives: list | None = None  # per pair, [(text, claim), ...]: captions close to its own but false of its image


def same_group(claims: list, contents: list) -> torch.Tensor:
    """Truth when claims and contents are group names: a caption is true of the images of its own group."""
    return torch.tensor([[claim == content for content in contents] for claim in claims], dtype=torch.bool)


def fit(model: LiTModel, raw_features: torch.Tensor, captions: list[str], settings: TuneSettings,
        on_step: StepHook | None = None, groups: list | None = None, meaning: Meaning | None = None) -> list[float]:
    """Tune ``model`` on pairs (raw tower features [N, D], captions); sets the image centre first.

    ``groups`` (optional, one hashable per pair) names what each pair shows; captions of pairs in
    one group count as positives for each other's images. ``meaning`` (optional, instead) says
    what each caption claims and each image shows, so a caption true of many images (a negation,
    a caption that leaves something out) is a positive for all of them. By default a caption is
    its own group.
    """
    if len(captions) != raw_features.shape[0]:
        raise ValueError(f"captions: expected one per image ({raw_features.shape[0]}), got {len(captions)}")
    if len(captions) < 2:
        raise ValueError(f"pairs: expected at least 2 image-caption pairs to contrast, got {len(captions)}")
    if groups is not None:
        if meaning is not None:
            raise ValueError("groups: give either groups or a meaning, not both")
        if len(groups) != len(captions):
            raise ValueError(f"groups: expected one per pair ({len(captions)}), got {len(groups)}")
        meaning = Meaning(list(groups), list(groups), same_group)
    if settings.center_images:
        model.image_center.copy_(raw_features.mean(0).to(model.image_center))
    distinct = list(dict.fromkeys(captions))
    row = {caption: i for i, caption in enumerate(distinct)}
    caption_ids = torch.tensor([row[c] for c in captions])
    hard = None
    if meaning is not None and meaning.negatives is not None and settings.hard_negatives > 0:
        distinct, hard = hard_negative_rows(captions, distinct, meaning.negatives)
    truth, content_ids = caption_truth(captions, distinct, meaning) if meaning is not None else (None, None)
    states, masks = caption_states(model, distinct)
    features = model.adapt_image_features(raw_features.to(model.device)).cpu()
    model.config["train"] = dict(asdict(settings), pairs=len(captions), distinct_captions=len(row))
    if hard is not None:
        model.config["train"]["hard_negative_captions"] = len(distinct) - len(row)
    return train_head(model, features, caption_ids, states, masks, settings, on_step, truth, content_ids, hard)


def hard_negative_rows(captions: list[str], distinct: list[str], negatives: list) -> tuple[list[str], torch.Tensor]:
    """The distinct captions followed by every hard-negative text not among them, and [U', H] rows of each
    caption's hard negatives (-1 padded; the appended texts have none of their own)."""
    known = set(distinct)
    texts = list(distinct) + [t for t in dict.fromkeys(t for group in negatives for t, _ in group) if t not in known]
    row = {text: i for i, text in enumerate(texts)}
    of_caption: dict[str, list[int]] = {}
    for caption, group in zip(captions, negatives):
        rows = of_caption.setdefault(caption, [])
        rows.extend(r for r in dict.fromkeys(row[t] for t, _ in group) if r not in rows)
    width = max([len(v) for v in of_caption.values()] + [1])
    hard = torch.full((len(texts), width), -1, dtype=torch.long)
    for caption, rows in of_caption.items():
        hard[row[caption], :len(rows)] = torch.tensor(rows, dtype=torch.long)
    return texts, hard


def caption_truth(captions: list[str], distinct: list[str], meaning: Meaning) -> tuple[torch.Tensor, torch.Tensor]:
    """Truth [U, K] of the distinct captions about the distinct contents, and each pair's content id [N]."""
    if len(meaning.claims) != len(captions) or len(meaning.contents) != len(captions):
        raise ValueError(f"meaning: expected a claim and a content per pair ({len(captions)}), got "
                         f"{len(meaning.claims)} and {len(meaning.contents)}")
    claim_of = {}
    said = list(zip(captions, meaning.claims))
    said += [pair for group in (meaning.negatives or ()) for pair in group]
    for caption, claim in said:
        if claim_of.setdefault(caption, claim) != claim:
            raise ValueError(f"groups: caption {caption!r} belongs to two groups, {claim_of[caption]!r} and {claim!r}")
    contents = list(dict.fromkeys(meaning.contents))
    content_row = {content: i for i, content in enumerate(contents)}
    content_ids = torch.tensor([content_row[c] for c in meaning.contents])
    truth = torch.as_tensor(meaning.truth([claim_of[c] for c in distinct], contents), dtype=torch.bool)
    caption_row = {caption: i for i, caption in enumerate(distinct)}
    own = truth[torch.tensor([caption_row[c] for c in captions]), content_ids]
    if not bool(own.all()):
        bad = captions[int((~own).nonzero()[0])]
        raise ValueError(f"meaning: caption {bad!r} is not true of its own pair's image")
    return truth, content_ids


@torch.no_grad()
def evaluate_pairs(model: LiTModel, raw_features: torch.Tensor, captions: list[str],
                   candidates: list[str], truth: Callable[[list[str]], torch.Tensor] | None = None) -> dict:
    """Held-out metrics: zero-shot accuracy among ``candidates`` and recall@1 among the held-out captions.

    ``truth(texts)`` (optional) gives a bool [len(texts), N]: which texts are true of which
    held-out images; a top caption (or image) then counts when it is true, not only when it is
    the pair's own caption.
    """
    images = model.adapt_image_features(raw_features.to(model.device))
    row = {caption: i for i, caption in enumerate(candidates)}
    missing = [c for c in captions if c not in row]
    if missing:
        raise ValueError(f"candidates: every held-out caption must be a candidate, missing {missing[:3]}")
    candidate_embeds = model.encode_texts(candidates)
    if truth is None:
        zero_shot = zero_shot_accuracy(images, torch.tensor([row[c] for c in captions]), candidate_embeds)
    else:
        zero_shot = top1_true(images @ candidate_embeds.T, truth(candidates).T)
    held = list(dict.fromkeys(captions))
    held_row = {caption: i for i, caption in enumerate(held)}
    recall = retrieval_recall_at_1(images, torch.tensor([held_row[c] for c in captions]), model.encode_texts(held),
                                   None if truth is None else truth(held))
    return {"zero_shot_accuracy": zero_shot, "candidates": len(candidates), "held_out_pairs": len(captions),
            "recall_at_1": recall}
