"""Benchmark: validate + execute chains of N trivial nodes and a wide graph, first run and cached.

Run: .venv/bin/python bench/runtime_graph.py   (prints a Markdown table; numbers go to docs/benchmarks.md)
Ratios are against N=200 measured in the same process.
"""
from __future__ import annotations

import statistics
import time

from _pack import load_pack  # bench/ is on sys.path when a script here runs

load_pack()

from imagetune.graph_runtime import ExecutionContext, Input, Node, NodeRegistry, Output, Runtime  # noqa: E402


class Const(Node):
    """Emit an integer."""

    node_id = "ImageTuneBenchConst"
    category = "ImageTune/bench"
    inputs = (Input("value", "INT", default=0, min=0, max=10**9),)
    outputs = (Output("INT", "value"),)

    def run(self, ctx, value):
        return (value,)


class Inc(Node):
    """Add one."""

    node_id = "ImageTuneBenchInc"
    category = "ImageTune/bench"
    inputs = (Input("a", "INT"), Input("b", "INT", default=1, min=0, max=10))
    outputs = (Output("INT", "value"),)

    def run(self, ctx, a, b):
        return (a + b,)


class Sink(Node):
    """Output node."""

    node_id = "ImageTuneBenchSink"
    category = "ImageTune/bench"
    output_node = True
    inputs = (Input("value", "INT"),)

    def run(self, ctx, value):
        return {"ui": {"v": [value]}, "result": ()}


REGISTRY = NodeRegistry([Const, Inc, Sink])


def chain(n: int) -> dict:
    """Const -> Inc x (n - 2) -> Sink."""
    wf = {"1": {"class_type": Const.node_id, "inputs": {"value": 0}}}
    for i in range(2, n):
        wf[str(i)] = {"class_type": Inc.node_id, "inputs": {"a": [str(i - 1), 0], "b": 1}}
    wf[str(n)] = {"class_type": Sink.node_id, "inputs": {"value": [str(n - 1), 0]}}
    return wf


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
