"""Benchmark: validate + execute chains of N trivial nodes and a wide graph, first run and cached.

Run: .venv/bin/python bench/runtime_graph.py   (prints a Markdown table; numbers go to docs/benchmarks.md)
Ratios are against N=200 measured in the same process.
"""
from __future__ import annotations

import statistics
import time

from _pack import load_pack  # bench/ is on sys.path when a script here runs

load_pack()

from imagetune.graph_runtime import ExecutionContext, Runtime  # noqa: E402
from _graphs import REGISTRY, Const, Sink, chain  # noqa: E402


def wide(n: int) -> dict:
    """n independent Const -> Sink pairs (n nodes in all)."""
    wf = {}
    for i in range(0, n, 2):
        wf[str(i + 1)] = {"class_type": Const.node_id, "inputs": {"value": i}}
        wf[str(i + 2)] = {"class_type": Sink.node_id, "inputs": {"value": [str(i + 1), 0]}}
    return wf


def measure(workflow: dict, repeats: int = 7) -> tuple[float, float]:
    """Median ms of a first run (fresh cache) and of a cached re-run."""
    ctx = ExecutionContext(device="cpu")
    firsts, reruns = [], []
    for _ in range(repeats):
        runtime = Runtime(REGISTRY)
        t0 = time.perf_counter()
        runtime.run(workflow, ctx=ctx)
        t1 = time.perf_counter()
        runtime.run(workflow, ctx=ctx)
        t2 = time.perf_counter()
        firsts.append((t1 - t0) * 1000)
        reruns.append((t2 - t1) * 1000)
    return statistics.median(firsts), statistics.median(reruns)


def main() -> None:
    import torch  # imported once up front so its import time is not measured

    torch.zeros(1)
    measure(chain(50), repeats=2)  # warm-up
    rows = [(f"chain N={n}", *measure(chain(n))) for n in (200, 400, 800)]
    rows.append(("wide 400", *measure(wide(400))))
    base = rows[0][1]
    print("| graph | validate + execute (ms) | ratio to N=200 | cached re-run (ms) |")
    print("|---|---|---|---|")
    for name, first, rerun in rows:
        print(f"| {name} | {first:.1f} | {first / base:.2f}x | {rerun:.1f} |")


if __name__ == "__main__":
    main()
