"""Using a LiT model: score image–text pairs, rank images for a prompt, zero-shot classify.

Every function takes IMAGE tensors [B, H, W, C] float in 0..1 on any device and returns tensors
on the model's device; bad arguments raise ValueError naming the argument.
"""
from __future__ import annotations

import torch

from .model import LiTModel


def parse_prompts(text: str) -> list[str]:
    """One prompt per non-empty line of ``text`` (surrounding spaces dropped)."""
    return [line.strip() for line in str(text).splitlines() if line.strip()]


def parse_labels(text: str) -> list[str]:
    """Comma-separated labels (a line break also separates); raises on none or on duplicates."""
    labels = [part.strip() for line in str(text).splitlines() for part in line.split(",") if part.strip()]
    if not labels:
        raise ValueError(f"labels: expected at least one comma-separated label, got {text!r}")
    repeated = sorted({label for label in labels if labels.count(label) > 1})
    if repeated:
        raise ValueError(f"labels: expected distinct labels, got {', '.join(repeated)} more than once")
    return labels


def label_prompts(labels: list[str], template: str) -> list[str]:
    """``template`` with ``{}`` replaced by each label, e.g. "a photo of a {}" -> "a photo of a cat"."""
    if template.count("{}") != 1:
        raise ValueError(f"template: expected exactly one '{{}}' where the label goes, got {template!r}")
    return [template.replace("{}", label) for label in labels]


@torch.no_grad()
def score_images(model: LiTModel, images: torch.Tensor, prompts: list[str]) -> torch.Tensor:
    """Cosine similarity [B] of each image with its prompt: one prompt for all, or one per image."""
    _check_images(images)
    if len(prompts) not in (1, images.shape[0]):
        raise ValueError(f"prompts: expected 1 prompt or one per image ({images.shape[0]}), got {len(prompts)}")
    image_embeds = model.encode_images(images)
    text_embeds = model.encode_texts(prompts).expand(images.shape[0], -1) if len(prompts) == 1 \
        else model.encode_texts(prompts)
    return (image_embeds * text_embeds).sum(dim=-1)


@torch.no_grad()
def best_images(model: LiTModel, images: torch.Tensor, prompt: str, top_k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Indices [k] of the ``top_k`` images that best match ``prompt``, best first, and their scores [k]."""
    _check_images(images)
    if not 1 <= top_k <= images.shape[0]:
        raise ValueError(f"top_k: expected 1..{images.shape[0]} (the batch size), got {top_k}")
    if not prompt.strip():
        raise ValueError("prompt: expected text to rank the images by, got an empty prompt")
    scores = score_images(model, images, [prompt.strip()])
    # a stable sort keeps the earlier image first among equal scores, so ties never reorder at random
    order = torch.sort(scores, descending=True, stable=True).indices[:top_k]
    return order, scores[order]


@torch.no_grad()
def classify_images(model: LiTModel, images: torch.Tensor, prompts: list[str]) -> torch.Tensor:
    """Zero-shot class probabilities [B, L] of each image over the label prompts (softmax at the learned temperature)."""
    _check_images(images)
    if not prompts:
        raise ValueError("labels: expected at least one label, got none")
    similarity = model.encode_images(images) @ model.encode_texts(prompts).T
    return model.logits(similarity).softmax(dim=-1)


def _check_images(images: torch.Tensor) -> None:
    if not isinstance(images, torch.Tensor) or images.ndim != 4 or images.shape[-1] not in (3, 4):
        shape = tuple(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__
        raise ValueError(f"images: expected an IMAGE tensor [B, H, W, 3 or 4], got {shape}")
    if images.shape[0] == 0:
        raise ValueError("images: expected at least one image, got an empty batch")
