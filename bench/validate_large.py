"""Benchmark: validating 10,000-node workflows, valid or not, from a file, and the peak memory it takes.

Run: .venv/bin/python bench/validate_large.py   (prints a Markdown table; numbers go to docs/benchmarks.md)
Each case reads a JSON file, converts it when it is in the UI form, validates it and renders the
error message and JSON report, as ``imagetune validate`` does. Time: median of 5 runs; memory: the
tracemalloc peak of one more run (Python allocations above what was live before it).
Goal (issue 15): under 2 s and 500 MB each on the 2-core development machine.
"""
from __future__ import annotations

import json
import resource
import statistics
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

from _pack import load_pack  # bench/ is on sys.path when a script here runs

load_pack()

from imagetune.graph_runtime import Runtime, ValidationError  # noqa: E402
from _graphs import REGISTRY, Const, Inc, Sink, chain  # noqa: E402

N = 10_000


def cycle(n: int) -> dict:
    """n - 1 Inc nodes in one ring, read by a Sink."""
    wf = {str(i): {"class_type": Inc.node_id, "inputs": {"a": [str(i - 1 if i > 1 else n - 1), 0], "b": 1}}
          for i in range(1, n)}
    wf[str(n)] = {"class_type": Sink.node_id, "inputs": {"value": ["1", 0]}}
    return wf


def reroute_chain(n: int) -> dict:
    """A UI-form file: Const -> n Reroutes -> Sink."""
    nodes = [{"id": 1, "type": Const.node_id, "mode": 0, "outputs": [{"type": "INT", "links": [1]}],
              "widgets_values": [5]}]
    links = []
    for i in range(2, n + 2):
        nodes.append({"id": i, "type": "Reroute", "mode": 0, "inputs": [{"name": "", "type": "*", "link": i - 1}],
                      "outputs": [{"type": "*", "links": [i]}]})
        links.append([i - 1, i - 1, 0, i, 0, "INT"])
    nodes.append({"id": n + 2, "type": Sink.node_id, "mode": 0,
                  "inputs": [{"name": "value", "type": "INT", "link": n + 1}]})
    links.append([n + 1, n + 1, 0, n + 2, 0, "INT"])
    return {"version": 0.4, "nodes": nodes, "links": links}


def validate_file(path: Path) -> str:
    """What ``imagetune validate`` does with a file: the summary line or the error text and JSON."""
    try:
        plan = Runtime(REGISTRY).prepare(path)
    except ValidationError as exc:
        return f"invalid: {len(str(exc)):,} chars of message, {len(json.dumps(exc.report)):,} of JSON"
    return f"valid: {len(plan.order):,} nodes to run"


def measure(path: Path, repeats: int = 5) -> tuple[float, float, str]:
    """Median seconds, tracemalloc peak in MB, and the outcome."""
    seconds = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        outcome = validate_file(path)
        seconds.append(time.perf_counter() - t0)
    tracemalloc.start()
    validate_file(path)
    peak = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    return statistics.median(seconds), peak, outcome


def main() -> None:
    cases = [(f"valid chain of {N:,}", chain(N)), (f"cycle of {N - 1:,} (+ a sink)", cycle(N)),
             (f"{N:,} nodes, an error on each", chain(N, b=99)),
             ("UI file, chain of 5,000 Reroutes", reroute_chain(5_000))]
    print("| workflow | file (MB) | validate (s) | peak memory (MB) | outcome |")
    print("|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as folder:
        for name, data in cases:
            path = Path(folder) / "workflow.json"
            path.write_text(json.dumps(data), encoding="utf-8")
            seconds, peak, outcome = measure(path)
            print(f"| {name} | {path.stat().st_size / 2**20:.1f} | {seconds:.2f} | {peak:.0f} | {outcome} |",
                  flush=True)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"\nmax resident memory of the whole process: {rss:.0f} MB (Python {sys.version.split()[0]})")


if __name__ == "__main__":
    main()
