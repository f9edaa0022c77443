"""Benchmark: validate + execute chains of N trivial nodes and a wide graph: first run, cached, one input changed.

Run: .venv/bin/python bench/runtime_graph.py   (prints a Markdown table; numbers go to docs/benchmarks.md)
Ratios are against N=200 measured in the same process.
"""
from __future__ import annotations

import statistics
import time

from _pack import load_pack  # bench/ is on sys.path when a script here runs

load_pack()

from imagetune.graph_runtime import ExecutionContext, Runtime  # noqa: E402
from _graphs import REGISTRY, chain, wide  # noqa: E402


def measure(workflow: dict, key: str, repeats: int = 7) -> tuple[float, float, float]:
    """Median ms of a first run (fresh cache), a cached re-run, and a re-run with input ``key``
    (ID.INPUT) changed (only that node and what depends on it run again)."""
    ctx = ExecutionContext(device="cpu")
    firsts, reruns, changed = [], [], []
    for i in range(repeats):
        runtime = Runtime(REGISTRY)
        t0 = time.perf_counter()
        runtime.run(workflow, ctx=ctx)
        t1 = time.perf_counter()
        runtime.run(workflow, ctx=ctx)
        t2 = time.perf_counter()
        runtime.run(workflow, {key: 2 + i % 5}, ctx=ctx)
        t3 = time.perf_counter()
        firsts.append((t1 - t0) * 1000)
        reruns.append((t2 - t1) * 1000)
        changed.append((t3 - t2) * 1000)
    return statistics.median(firsts), statistics.median(reruns), statistics.median(changed)


def main() -> None:
    import torch  # imported once up front so its import time is not measured

    torch.zeros(1)
    measure(chain(50), "25.b", repeats=2)  # warm-up
    rows = [(f"chain N={n}", *measure(chain(n), f"{n - 1}.b")) for n in (200, 400, 800)]
    rows.append(("wide 400", *measure(wide(400), "199.value")))
    base = rows[0][1]
    print("| graph | validate + execute (ms) | ratio to N=200 | cached re-run (ms) | re-run, one input changed (ms) |")
    print("|---|---|---|---|---|")
    for name, first, rerun, changed in rows:
        print(f"| {name} | {first:.1f} | {first / base:.2f}x | {rerun:.1f} | {changed:.1f} |")

if __name__ == "__main__":
    main()
