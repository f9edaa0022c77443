"""Where tuning pairs come from: a folder of captioned images, or the procedural shapes set.

Either way the result is a ``TuneData``: training and held-out pairs plus the candidate captions
that held-out images are classified among. The held-out captions never occur in training, so
the held-out score measures zero-shot transfer, not memory.
"""
from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch

from .data import load_images, pairs_from_folder
from .model import LiTModel
from .tune import tower_features

@dataclass
class TuneData:
    """Training and held-out pairs; ``candidates`` are the captions held-out images are ranked among."""

    name: str
    train_images: object  # IMAGE [N, H, W, C] in memory, or a list of image files
    train_captions: list[str]
    held_images: object
    held_captions: list[str]
    candidates: list[str]
    held_specs: list = field(default_factory=list)  # shapes only: the ShapeSpec of each held-out image
    train_groups: list | None = None  # what each training pair shows, when known (shapes: its ShapeSpec)


def folder_data(folder: Path | str, held_out_fraction: float = 0.1, seed: int = 0) -> TuneData:
    """Pairs from ``folder`` (see ``data.pairs_from_folder``); a seeded share of the distinct captions is held out."""
    if not 0.0 <= held_out_fraction < 1.0:
        raise ValueError(f"held_out_fraction: expected a value in [0, 1), got {held_out_fraction}")
    pairs = pairs_from_folder(folder)
    distinct = sorted(dict.fromkeys(caption for _, caption in pairs))
    random.Random(seed).shuffle(distinct)
    count = round(len(distinct) * held_out_fraction)
    if held_out_fraction > 0 and len(distinct) >= 4:
        count = max(count, 1)
    held = set(distinct[:count])
    train = [(p, c) for p, c in pairs if c not in held]
    test = [(p, c) for p, c in pairs if c in held]
    return TuneData(str(folder), [p for p, _ in train], [c for _, c in train], [p for p, _ in test],
                    [c for _, c in test], sorted(set(c for _, c in pairs)))


def shapes_data(pairs: int = 4000, seed: int = 0, size: int = 64, held_per_combination: int = 8) -> TuneData:
    """The procedural shapes set: ``pairs`` training pairs, and every HELD_OUT combination
    ``held_per_combination`` times (rendered with another seed), ranked among all 4 phrasings of
    all 168 combinations."""
    from ..shapes import dataset as shapes

    images, captions, specs = shapes.make_dataset(pairs, seed, size)
    held_images, held_captions, held_specs = shapes.make_dataset(
        held_per_combination * len(shapes.HELD_OUT), seed + 1, size, held_out=True)
    return TuneData("shapes", _as_image(images), captions, _as_image(held_images), held_captions,
                    shapes.all_captions(shapes.all_specs()), held_specs, train_groups=specs)


def _as_image(array) -> torch.Tensor:
    return torch.from_numpy(array).float().div_(255.0)


def features_of(model: LiTModel, images, progress: Callable[[int, int], None] | None = None,
                batch_size: int = 32) -> torch.Tensor:
    """Raw tower features [N, D] of an IMAGE tensor or of image files (loaded a batch at a time)."""
    if isinstance(images, torch.Tensor):
        return tower_features(model, images, batch_size, progress)
    size = int(getattr(model.image_tower, "image_size", 224))
    chunks = []
    for start in range(0, len(images), batch_size):
        chunks.append(tower_features(model, load_images(images[start:start + batch_size], size), batch_size))
        if progress is not None:
            progress(min(start + batch_size, len(images)), len(images))
    return torch.cat(chunks) if chunks else torch.zeros(0, model.image_tower.dim)


@torch.no_grad()
def shapes_metrics(model: LiTModel, raw_features: torch.Tensor, specs: list) -> dict:
    """Zero-shot on held-out shapes: the predicted combination (best of all 4 phrasings of each of the
    168) must match exactly; also among the held-out combinations only, and per attribute."""
    from ..shapes import dataset as shapes

    images = model.adapt_image_features(raw_features.to(model.device))
    results = {}
    for label, pool in (("exact_among_all", shapes.all_specs()), ("exact_among_held_out", shapes.held_out_specs())):
        variants = len(shapes.TEMPLATES)
        texts = model.encode_texts(shapes.all_captions(pool))
        best = (images @ texts.T).reshape(len(images), len(pool), variants).amax(dim=2).argmax(dim=1)
        predicted = [pool[i] for i in best.tolist()]
        results[label] = sum(p == s for p, s in zip(predicted, specs)) / max(1, len(specs))
        if label == "exact_among_all":
            for attribute in ("shape", "colour", "background"):
                right = sum(getattr(p, attribute) == getattr(s, attribute) for p, s in zip(predicted, specs))
                results[attribute] = right / max(1, len(specs))
    return results
