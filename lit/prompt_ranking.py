"""Does the judge pick the right picture for a prompt it has never seen worded that way?

For each prompt of the committed held-out list (``shapes/heldout.py``: the 16 held-out
combinations in 12 kinds of wording, negations included), the judge ranks renders of all 168
one-object combinations; it is right when the top picture meets the prompt's target (a negation
is met by any background or shape but the negated one). ``chance`` is the share of the pictures
that meet it, what a judge picking at random would score.
"""
from __future__ import annotations

import numpy as np
import torch

from ..shapes import dataset as ds
from ..shapes import heldout
from ..shapes.analyzer import Analysis
from .model import LiTModel

POOLED = {"ALL UNSEEN WORDINGS (pooled)": heldout.UNSEEN, "ALL NEGATION (pooled)": heldout.NEGATION}


def pictures(renders: int = 2, seed: int = 7, size: int = 64) -> tuple[torch.Tensor, list[ds.ShapeSpec]]:
    """``renders`` jittered renders of each of the 168 combinations: IMAGE [N, size, size, 3] and their specs."""
    rng = np.random.default_rng(seed)
    specs = [spec for spec in ds.all_specs() for _ in range(renders)]
    images = np.stack([np.asarray(ds.render(spec, size, rng)) for spec in specs])
    return torch.from_numpy(images).float().div_(255.0), specs


def meets(target: heldout.Target, spec: ds.ShapeSpec) -> bool:
    """Whether a picture of ``spec`` is what ``target`` asks for."""
    return target.check(Analysis(spec.shape, spec.colour, spec.background, {}))["all"]


@torch.no_grad()
def rank_held_out_prompts(model: LiTModel, images: torch.Tensor | None = None, specs: list | None = None) -> dict:
    """Per kind of wording: the share of prompts whose top-ranked picture meets the prompt, and chance."""
    if images is None:
        images, specs = pictures()
    items = heldout.prompts()
    embeds = model.encode_images(images)
    scores = model.encode_texts([p.text for p in items]) @ embeds.T  # [prompts, pictures]
    top = scores.argmax(dim=1).tolist()
    right = [meets(p.target, specs[t]) for p, t in zip(items, top)]
    chance = [float(np.mean([meets(p.target, s) for s in specs])) for p in items]
    groups = {kind: [i for i, p in enumerate(items) if p.kind == kind] for kind in heldout.kinds()}
    groups.update({name: [i for i, p in enumerate(items) if p.kind in kinds] for name, kinds in POOLED.items()})
    return {kind: {"prompts": len(index), "right": round(float(np.mean([right[i] for i in index])), 4),
                   "chance": round(float(np.mean([chance[i] for i in index])), 4)}
            for kind, index in groups.items()}
