"""Benchmark: scoring one image against 100 captions with the shipped LiT model, on the CPU.

Run: ``nice -n 10 .venv/bin/python bench/lit.py [--threads N] [--repeats R]``. Prints a markdown
table for docs/lit.md. "cold" encodes all 100 captions each time; "warm" reuses the model's caption
cache (the classify/best-of-N case, where the captions repeat). The baseline, measured in the same
process, is the locked image tower alone on the same image: the floor of any score.
"""
from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

from _pack import load_pack  # bench/ is on sys.path when a script here runs

ROOT = Path(__file__).resolve().parents[1]


def median_ms(fn, repeats: int) -> float:
    fn()  # warm-up: allocations, lazy init
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--model", default=str(ROOT / "models" / "lit" / "shapes-lite0-minilm"))
    args = parser.parse_args()
    load_pack()
    import numpy as np
    import torch

    from imagetune.lit.model import load_lit_model
    from imagetune.shapes import dataset as shapes

    if args.threads:
        torch.set_num_threads(args.threads)
    started = time.perf_counter()
    model = load_lit_model(args.model)
    load_s = time.perf_counter() - started
    image = torch.from_numpy(np.array(shapes.render(shapes.HELD_OUT[0], 64))).float().div(255)[None]
    captions = shapes.all_captions(shapes.all_specs())[:100]

    def tower_only():
        with torch.inference_mode():
            model.image_tower(image)

    def cold():
        model._text_cache.clear()
        with torch.inference_mode():
            model.similarity(image, captions)

    def warm():
        with torch.inference_mode():
            model.similarity(image, captions)

    base = median_ms(tower_only, args.repeats)
    rows = [("image tower alone (baseline)", base), ("1 image x 100 captions, cold", median_ms(cold, args.repeats)),
            ("1 image x 100 captions, warm caption cache", median_ms(warm, args.repeats))]
    print(f"torch threads: {torch.get_num_threads()}; model load {load_s:.2f} s; median of {args.repeats}\n")
    print("| case | ms | x baseline |\n|---|---:|---:|")
    for name, ms in rows:
        print(f"| {name} | {ms:.1f} | {ms / base:.2f} |")


if __name__ == "__main__":
    main()
