"""How much does picking the best of N candidates with the LiT judge help the demo generator?

    python -m imagetune.lit.best_of_n_eval [--n 4] [--groups 4]

For each held-out shapes combination, ``groups`` sets of ``n`` candidates are generated (seeds
n*g .. n*g+n-1, the default workflow's sampler settings). The analyzer's all-three rate of every
candidate (what a single random seed gives) is compared with the rate of the one candidate per set
that the shipped LiT head scores highest for the prompt.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from ..shapes import dataset as ds
from ..shapes.evaluate import generate, load_text_encoder, score
from ..shapes.model import load_pipeline
from .model import load_lit_model
from .scoring import best_images

ROOT = Path(__file__).resolve().parents[1]


def best_of_n(n: int, groups: int, steps: int = 20, cfg: float = 2.0) -> dict:
    """Analyzer scores of all candidates and of the LiT-picked ones on the held-out combinations."""
    pipe = load_pipeline(ROOT / "models" / "imagetune-shapes")
    text = load_text_encoder()
    judge = load_lit_model(ROOT / "models" / "lit" / "shapes-lite0-minilm")
    specs = ds.held_out_specs()
    all_images, all_specs, picked, picked_specs = [], [], [], []
    for spec in specs:
        prompt = ds.caption(spec)
        seeds = list(range(n * groups))
        images = generate(pipe, text, [prompt] * len(seeds), seeds, steps, cfg)
        all_images.append(images)
        all_specs += [spec] * len(seeds)
        for g in range(groups):
            candidates = torch.from_numpy(images[g * n:(g + 1) * n]).float()
            order, _ = best_images(judge, candidates, prompt, top_k=1)
            picked.append(images[g * n + int(order[0])])
            picked_specs.append(spec)
    return {"n": n, "groups": groups, "combinations": len(specs),
            "every_candidate": score(np.concatenate(all_images), all_specs),
            "lit_best_of_n": score(np.stack(picked), picked_specs)}


def main(argv=None) -> None:
    """Command-line entry: print the comparison as JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=4, help="candidates per pick")
    parser.add_argument("--groups", type=int, default=4, help="picks per combination")
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    print(json.dumps(best_of_n(args.n, args.groups), indent=2))


if __name__ == "__main__":
    main()
