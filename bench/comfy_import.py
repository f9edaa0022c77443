"""Benchmark: how long ComfyUI takes to import the pack, measured the way ComfyUI's loader imports it.

Run: .venv/bin/python bench/comfy_import.py [PACK_FOLDER] [--repeats N]
(PACK_FOLDER: a checkout of the pack, this one by default; give an older checkout to compare.)

Each repeat is a fresh interpreter that first imports what ComfyUI has imported before it loads
custom nodes (torch, numpy, PIL), then imports ``PACK_FOLDER/__init__.py`` with
``spec_from_file_location`` under a path-derived name, as ComfyUI's ``load_custom_node`` does, and
builds NODE_CLASS_MAPPINGS. It prints the median milliseconds of that import alone and how many
nodes it registered.
"""
from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CHILD = """
import importlib.util, sys, time
import numpy, torch, PIL.Image  # ComfyUI has these loaded before custom nodes
folder = sys.argv[1]
name = folder.replace(".", "_x_")
started = time.perf_counter()
spec = importlib.util.spec_from_file_location(name, folder + "/__init__.py")
module = importlib.util.module_from_spec(spec)
sys.modules[name] = module
spec.loader.exec_module(module)
count = len(module.NODE_CLASS_MAPPINGS)
print((time.perf_counter() - started) * 1000, count)
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("pack", nargs="?", type=Path, default=ROOT)
    parser.add_argument("--repeats", type=int, default=10)
    args = parser.parse_args()
    times, counts = [], set()
    for _ in range(args.repeats):
        done = subprocess.run([sys.executable, "-c", CHILD, str(args.pack.resolve())],
                              capture_output=True, text=True, check=True)
        ms, count = done.stdout.split()
        times.append(float(ms))
        counts.add(int(count))
    print(f"{args.pack}: pack import {statistics.median(times):.0f} ms median of {args.repeats} "
          f"(min {min(times):.0f}, max {max(times):.0f}), {sorted(counts)} nodes registered")


if __name__ == "__main__":
    main()
