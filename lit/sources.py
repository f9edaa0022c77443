"""Where tuning pairs come from: a folder of captioned images, or the procedural shapes worlds.

Either way the result is a ``TuneData``: training and held-out pairs plus the candidate captions
that held-out images are classified among. The held-out captions never occur in training, so
the held-out score measures zero-shot transfer, not memory.
"""
from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch

from .data import load_images, pairs_from_folder
from .model import LiTModel
from .tune import Meaning, tower_features


@dataclass
class TuneData:
    """Training and held-out pairs; ``candidates`` are the captions held-out images are ranked among."""

    name: str
    train_images: object  # IMAGE [N, H, W, C] in memory, or a list of image files
    train_captions: list[str]
    held_images: object
    held_captions: list[str]
    candidates: list[str]
    train_pair_images: list[int] | None = None  # the image row of each pair, when images carry several captions
    train_meaning: Meaning | None = None  # what captions claim and images show, when known (shapes)
    held_truth: Callable[[list[str]], torch.Tensor] | None = None  # texts -> bool [texts, held images]
    metrics: Callable[[LiTModel, torch.Tensor], dict] | None = None  # extra held-out scores from raw features
    settings: dict | None = None  # how the pairs were drawn, recorded in the tuned model's config


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


def shapes_data(pairs: int = 4000, seed: int = 0, size: int = 64, held_per_combination: int = 8,
                scene_share: float = 0.5, captions_per_image: int = 2) -> TuneData:
    """The shapes worlds (``shapes_source.ShapesPairs``): ``pairs`` training pairs, one-object pictures in
    the rich language and two-object scenes in their canonical words; held out, every HELD_OUT
    combination ``held_per_combination`` times and held-out scenes, ranked among all 168
    combinations and the scenes' confusers."""
    from .shapes_source import ShapesPairs

    source = ShapesPairs(pairs, seed, size, held_per_combination, scene_share, captions_per_image)
    return TuneData("shapes", source.train_images, source.train_captions, source.held_images, source.held_captions,
                    source.candidates, source.train_pair_images, source.meaning(), source.held_truth, source.metrics,
                    {"pairs": pairs, "seed": seed, "size": size, "held_per_combination": held_per_combination,
                     "scene_share": scene_share, "captions_per_image": captions_per_image,
                     "pictures": len(source.train_images), "held_out_pictures": len(source.held_images)})


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
