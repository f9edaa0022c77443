"""Benchmark: start-up of the commands that need no tensor library, against ``python -c pass``.

Run: .venv/bin/python bench/startup.py [--repeats N]   (numbers go to docs/benchmarks.md)

Each command runs as a whole process, in turn with the baseline ``python -c pass`` (so a slower
spell of the shared machine hits both), N times after one warm-up each. Printed: the median wall
and CPU seconds (user + sys, from the OS's accounting of the finished child) of each, and the
median ratio to the baseline run next to it. Goals (issue 14): validate <= 0.5 s, nodes <= 0.6 s.
"""
from __future__ import annotations

import argparse
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
IMAGETUNE = [sys.executable, "-m", "imagetune"]
COMMANDS = {
    "imagetune validate workflows/api/imagetune-text-to-image.json": IMAGETUNE + ["validate", "workflows/api/imagetune-text-to-image.json"],
    "imagetune nodes": IMAGETUNE + ["nodes"],
    "imagetune convert workflows/imagetune-text-to-image.json": IMAGETUNE + ["convert", "workflows/imagetune-text-to-image.json"],
    "imagetune --help": IMAGETUNE + ["--help"],
}
BASELINE = [sys.executable, "-c", "pass"]


def timed(argv: list[str]) -> tuple[float, float]:
    """Wall and CPU seconds of one run of ``argv`` (output discarded)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run(argv, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=10)
    args = parser.parse_args()
    print("| command | wall (s) | CPU (s) | `python -c pass` wall (s) | ratio to it (wall) |")
    print("|---|---|---|---|---|")
    for name, argv in COMMANDS.items():
        timed(argv), timed(BASELINE)  # warm-up: byte code, file cache
        runs, bases = [], []
        for _ in range(args.repeats):
            runs.append(timed(argv))
            bases.append(timed(BASELINE))
        wall = statistics.median(w for w, _ in runs)
        cpu = statistics.median(c for _, c in runs)
        base = statistics.median(w for w, _ in bases)
        ratio = statistics.median(r[0] / b[0] for r, b in zip(runs, bases))
        print(f"| `{name}` | {wall:.3f} | {cpu:.3f} | {base:.3f} | {ratio:.1f}x |", flush=True)


if __name__ == "__main__":
    main()
