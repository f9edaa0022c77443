"""Benchmark: what best-of-N with the LiT judge adds to the default workflow, on the CPU.

Run: ``nice -n 10 .venv/bin/python bench/best_of_n.py [--threads 1] [--n 4] [--repeats 5]``. Prints a
markdown table for docs/lit.md. The baseline, measured in the same process, is what the default
workflow does today: the shipped generator's one image (20 DDIM steps, CFG 2). The rows are the
generator's batch of N, loading the LiT judge, and the judge's pick among N (a new prompt each
time, so the caption is encoded as in a fresh run). Wall and process CPU seconds, median of the
repeats; CPU time is the fairer figure on a machine other jobs share.
"""
from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

from _pack import load_pack  # bench/ is on sys.path when a script here runs

ROOT = Path(__file__).resolve().parents[1]


def median_times(fn, repeats: int) -> tuple[float, float]:
    """Median wall and process-CPU seconds of ``fn()`` over ``repeats`` calls (after a warm-up call)."""
    fn()
    wall, cpu = [], []
    for _ in range(repeats):
        w, c = time.perf_counter(), time.process_time()
        fn()
        wall.append(time.perf_counter() - w)
        cpu.append(time.process_time() - c)
    return statistics.median(wall), statistics.median(cpu)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument("--n", type=int, default=4, help="candidates")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    load_pack()
    import torch

    from imagetune.lit.best_of_n_eval import GENERATOR, JUDGE, workflow_candidates
    from imagetune.lit.model import load_lit_model
    from imagetune.lit.scoring import best_images
    from imagetune.shapes.evaluate import load_text_encoder
    from imagetune.shapes.model import load_pipeline

    torch.set_num_threads(args.threads)
    pipe, text = load_pipeline(GENERATOR), load_text_encoder()
    prompt = "a red circle on a blue background"
    candidates = torch.from_numpy(workflow_candidates(pipe, text, [prompt], [0], args.n)[0])
    prompts = iter(f"a red circle on a blue background, take {i}" for i in range(10 ** 6))
    rows = [("generate 1 image (baseline: the default workflow)",
             median_times(lambda: workflow_candidates(pipe, text, [prompt], [0], 1), args.repeats)),
            (f"generate a batch of {args.n}",
             median_times(lambda: workflow_candidates(pipe, text, [prompt], [0], args.n), args.repeats)),
            ("load the LiT judge", median_times(lambda: load_lit_model(JUDGE), args.repeats))]
    judge = load_lit_model(JUDGE)
    rows.append((f"judge picks 1 of {args.n} (new prompt)",
                 median_times(lambda: best_images(judge, candidates, next(prompts), 1), args.repeats)))
    base_wall, base_cpu = rows[0][1]
    print(f"torch threads: {torch.get_num_threads()}; median of {args.repeats}\n")
    print("| step | wall, s | CPU, s | CPU x baseline |\n|---|---:|---:|---:|")
    for name, (wall, cpu) in rows:
        print(f"| {name} | {wall:.2f} | {cpu:.2f} | {cpu / base_cpu:.2f} |")
    extra = rows[1][1][1] - base_cpu + rows[2][1][1] + rows[3][1][1]
    print(f"\nbest of {args.n} adds {extra:.2f} s of CPU to the workflow's {base_cpu:.2f} s for generating")


if __name__ == "__main__":
    main()
