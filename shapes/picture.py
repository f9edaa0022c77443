"""Is the saved picture clean? Ground-truth renders through the workflow, scored against the truth.

    python -m imagetune.shapes.picture --json docs/picture-sweep.json     # the style/enhance sweep

For each setting of the default workflow's post-generator nodes (style, strength, colour
preservation, upscaler, unsharp mask), jittered renders of every combination go through those
nodes (``saved_png.SavedPng``, the pack's runtime) and the saved PNGs are measured where the
truth is known (a render of the same jitter at the saved size):

- analyzer: fraction whose shape, colour and background the analyzer gets right (all three);
- colour error: RGB distance of the median of each flat region (shape, background; 6 px away
  from the edge) from the named palette colour, mean over regions, in 8-bit levels;
- texture: standard deviation of those flat regions, in 8-bit levels (a flat render has ~0);
- edge sharpness: mean gradient magnitude within 1 px of the true outline divided by the colour
  step across it (per pixel); the ground-truth render at the saved size scores ~0.4 (its
  anti-aliased edge), a bicubic x4 of the 64 px render ~0.15.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
from scipy import ndimage

from . import dataset as ds
from .analyzer import analyze
from .saved_png import SavedPng

FLAT_MARGIN = 6  # px at the saved size kept clear of the outline when measuring flat regions


def ground_truth(count: int, seed: int, size: int) -> tuple[np.ndarray, np.ndarray, list[ds.ShapeSpec]]:
    """(64 px renders [N,64,64,3], shape masks at ``size`` [N,size,size], specs) with shared jitter."""
    specs = ds.all_specs()
    specs = [specs[i % len(specs)] for i in range(count)]
    small, masks = [], []
    for k, spec in enumerate(specs):
        small.append(np.asarray(ds.render(spec, 64, np.random.default_rng([seed, k]))))
        big = np.asarray(ds.render(spec, size, np.random.default_rng([seed, k])), np.float32)
        masks.append(np.linalg.norm(big - ds.COLOURS[spec.colour], axis=-1)
                     < np.linalg.norm(big - ds.COLOURS[spec.background], axis=-1))
    return np.stack(small), np.stack(masks), specs


def measure(saved: list[np.ndarray], masks: np.ndarray, specs: list[ds.ShapeSpec]) -> dict:
    """The four figures of the module docstring over ``saved`` PNGs (uint8 [S,S,3] each)."""
    right, errors, textures, edges = [], [], [], []
    for image, mask, spec in zip(saved, masks, specs):
        right.append(analyze(image).matches(spec)["all"])
        pixels = image.astype(np.float32)
        inside = ndimage.distance_transform_edt(mask)
        outside = ndimage.distance_transform_edt(~mask)
        for region, name in ((inside > FLAT_MARGIN, spec.colour), (outside > FLAT_MARGIN, spec.background)):
            values = pixels[region]
            errors.append(float(np.linalg.norm(np.median(values, 0) - ds.COLOURS[name])))
            textures.append(float(values.std(0).mean()))
        step = np.linalg.norm(np.subtract(ds.COLOURS[spec.colour], ds.COLOURS[spec.background], dtype=np.float32))
        grad = np.sqrt(sum(ndimage.sobel(pixels[..., c], axis=a) ** 2 for c in range(3) for a in (0, 1))) / 8
        band = (inside > 0) & (inside <= 1) | (outside > 0) & (outside <= 1)
        edges.append(float(grad[band].mean() / step))
    return {"analyzer_all": round(float(np.mean(right)), 4), "colour_error": round(float(np.mean(errors)), 1),
            "texture": round(float(np.mean(textures)), 1), "edge_sharpness": round(float(np.mean(edges)), 3)}


def references(count: int, seed: int, size: int) -> dict:
    """The figures of the ground-truth render at ``size`` and of a plain bicubic upscale of the 64 px one."""
    from PIL import Image
    small, masks, specs = ground_truth(count, seed, size)
    truth = [np.asarray(ds.render(s, size, np.random.default_rng([seed, k]))) for k, s in enumerate(specs)]
    bicubic = [np.asarray(Image.fromarray(im).resize((size, size), Image.Resampling.BICUBIC)) for im in small]
    return {"ground truth at the saved size": measure(truth, masks, specs),
            "bicubic x4 of the 64 px render": measure(bicubic, masks, specs)}


def sweep(settings: list[dict], count: int = 48, seed: int = 0, workflow: Path | None = None) -> list[dict]:
    """``measure`` for each dict of overrides ("7.strength": 0.3, ...) of the workflow's post-generator nodes."""
    post = SavedPng(workflow) if workflow else SavedPng()
    base = {key: post.graph[key.split(".")[0]]["inputs"][key.split(".", 1)[1]] for s in settings for key in s}
    small, masks, specs = ground_truth(count, seed, 256)
    masks_at = {256: masks}  # the truth at each saved size (an x2 upscaler saves 128 px)
    rows = []
    for overrides in settings:
        post.set_values({**base, **overrides})
        began = time.time()
        saved = post(small)
        size = saved[0].shape[0]
        if size not in masks_at:
            masks_at[size] = ground_truth(count, seed, size)[1]
        rows.append({"settings": overrides, **measure(saved, masks_at[size], specs),
                     "seconds_per_image": round((time.time() - began) / count, 3)})
        print(json.dumps(rows[-1]), flush=True)
    return rows


def style_grid(strengths=(0.25, 0.5), preserve="colour") -> list[dict]:
    """No style, then every built-in fast neural style at each of ``strengths``."""
    from ..ops.neural_style import STYLE_NAMES
    rows = [{"7.strength": 0.0}]
    rows += [{"7.style": name, "7.strength": s, "7.preserve": preserve} for name in STYLE_NAMES for s in strengths]
    return rows


def main(argv=None) -> None:
    import torch
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--count", type=int, default=48, help="ground-truth renders per setting")
    p.add_argument("--settings", type=Path, help="JSON list of override dicts (default: the style grid)")
    p.add_argument("--json", type=Path)
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    settings = json.loads(args.settings.read_text()) if args.settings else style_grid()
    report = {"references": references(args.count, 0, 256), "rows": sweep(settings, args.count)}
    print(json.dumps(report["references"]))
    if args.json:
        args.json.write_text(json.dumps(report, indent=1) + "\n")


if __name__ == "__main__":
    main()
