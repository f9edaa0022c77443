"""Benchmark: our ``prepare`` (load + validate) against ComfyUI's ``validate_prompt`` on the same graphs.

Run it with a ComfyUI checkout's own Python (ComfyUI is never part of this repository):

    COMFYUI=/path/to/ComfyUI /path/to/ComfyUI/.venv/bin/python bench/validate_vs_comfyui.py

Both validate the same API-format dict in the same process, turn about, over the bench nodes of
``_graphs.py`` (ComfyUI gets them written as its own nodes are, ``native_classes``).
Rows: a fresh runtime each time (no cache: load, check limits, validate), and an override of one
input on a runtime that validated the base workflow once (what ``--set``, a sweep's jobs and a
re-run with a changed input do; ComfyUI validates the whole prompt again). Median of 31, the four
cases in turn; the ratio is ours / ComfyUI's (below 1: ours is faster). The last graph gives each
node the ``_meta`` title that ComfyUI's API export writes (ComfyUI ignores it; we check and copy it).
"""
from __future__ import annotations

import asyncio
import copy
import gc
import os
import statistics
import sys
import time
from pathlib import Path

from _pack import load_pack  # bench/ is on sys.path when a script here runs

load_pack()

from imagetune.graph_runtime import Runtime  # noqa: E402
from imagetune.graph_runtime.comfy_bridge import to_comfy_mappings  # noqa: E402
from _graphs import REGISTRY, Const, Inc, Sink, chain, wide  # noqa: E402

REPEATS = 31


def native_classes() -> dict[str, type]:
    """The bench nodes written as ComfyUI's own nodes are (INPUT_TYPES returns a literal), so ComfyUI
    is timed at its best; our bridge's classes build INPUT_TYPES from the declarations on each call."""

    class ConstV1:
        RETURN_TYPES, FUNCTION, CATEGORY = ("INT",), "run", "bench"

        @classmethod
        def INPUT_TYPES(cls):  # noqa: N802 - ComfyUI's name
            return {"required": {"value": ("INT", {"default": 0, "min": 0, "max": 10**9})}}

    class IncV1:
        RETURN_TYPES, FUNCTION, CATEGORY = ("INT",), "run", "bench"

        @classmethod
        def INPUT_TYPES(cls):  # noqa: N802
            return {"required": {"a": ("INT", {}), "b": ("INT", {"default": 1, "min": 0, "max": 10})}}

    class SinkV1:
        RETURN_TYPES, FUNCTION, CATEGORY, OUTPUT_NODE = (), "run", "bench", True

        @classmethod
        def INPUT_TYPES(cls):  # noqa: N802
            return {"required": {"value": ("INT", {})}}

    classes = {Const.node_id: ConstV1, Inc.node_id: IncV1, Sink.node_id: SinkV1}
    assert set(classes) == set(to_comfy_mappings(REGISTRY)[0])  # the same nodes as ours
    return classes


def import_comfyui():
    """ComfyUI's execution module, with the bench nodes registered (CPU only, no arguments parsed)."""
    folder = os.environ.get("COMFYUI")
    if not folder or not (Path(folder) / "execution.py").is_file():
        raise SystemExit("set COMFYUI to a ComfyUI checkout and run this with that checkout's Python")
    sys.path.insert(0, folder)
    sys.argv = [sys.argv[0], "--cpu"]
    import comfy.options

    comfy.options.enable_args_parsing()
    import execution
    import nodes

    nodes.NODE_CLASS_MAPPINGS.update(native_classes())
    sys.setrecursionlimit(20_000)  # its validate_inputs recurses once per linked node
    return execution


def ours_fresh(workflow: dict) -> float:
    """Seconds of one prepare by a new runtime (nothing cached)."""
    runtime = Runtime(REGISTRY)
    started = time.perf_counter()
    runtime.prepare(workflow)
    return time.perf_counter() - started


def ours_override(runtime: Runtime, workflow: dict, key: str, value: int) -> float:
    """Seconds of one prepare with one input overridden, by a runtime that validated ``workflow``."""
    started = time.perf_counter()
    runtime.prepare(workflow, {key: value})
    return time.perf_counter() - started


LOOP = asyncio.new_event_loop()  # one loop, as in ComfyUI's server


def comfy(execution, workflow: dict, key: str | None = None, value: int = 0) -> float:
    """Seconds of one validate_prompt of a fresh copy, with ``key`` (ID.INPUT) set to ``value``."""
    prompt = copy.deepcopy(workflow)  # it may annotate the prompt
    if key is not None:
        node_id, _, name = key.partition(".")
        prompt[node_id]["inputs"][name] = value

    async def timed():
        started = time.perf_counter()
        result = await execution.validate_prompt("bench", prompt, None)
        elapsed = time.perf_counter() - started
        assert result[0], result[1]
        return elapsed

    return LOOP.run_until_complete(timed())


def measure(execution, workflow: dict, key: str) -> list[float]:
    """Median ms of the four cases, taken in turn (so a slower spell of the machine hits them all)."""
    runtime = Runtime(REGISTRY)
    runtime.prepare(workflow)
    samples = [[], [], [], []]
    gc.collect()
    for i in range(REPEATS):
        for row, case in zip(samples, (lambda: ours_fresh(workflow), lambda: comfy(execution, workflow),
                                       lambda: ours_override(runtime, workflow, key, i % 10),
                                       lambda: comfy(execution, workflow, key, i % 10))):
            row.append(case())
    return [statistics.median(row) * 1000 for row in samples]


def titled(workflow: dict) -> dict:
    """``workflow`` with each node's ``_meta`` title, as ComfyUI's "Export (API)" writes it."""
    return {node_id: {**node, "_meta": {"title": node["class_type"].removeprefix("ImageTuneBench")}}
            for node_id, node in workflow.items()}


def main() -> None:
    execution = import_comfyui()
    graphs = [(f"chain of {n}", chain(n), f"{n // 2}.b") for n in (200, 400, 800)]
    graphs.append(("wide 400", wide(400), "199.value"))
    graphs.append(("wide 400, with titles", titled(wide(400)), "199.value"))
    measure(execution, *graphs[0][1:])  # warm-up: imports, caches, the interpreter's specialisation
    print("| graph | ours: prepare (ms) | ComfyUI validate_prompt (ms) | ratio | ours: one input overridden (ms) "
          "| ComfyUI, one input changed (ms) | ratio |")
    print("|---|---|---|---|---|---|---|")
    for name, workflow, key in graphs:
        a, b, c, d = measure(execution, workflow, key)
        print(f"| {name} | {a:.2f} | {b:.2f} | {a / b:.2f}x | {c:.2f} | {d:.2f} | {c / d:.2f}x |", flush=True)

if __name__ == "__main__":
    main()
