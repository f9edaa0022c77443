"""Per-node seconds of a workflow, this checkout against a baseline source tree, alternating in one command.

Each round runs the workflow once in a fresh process with this checkout and once with the baseline
(a tree holding an ``imagetune`` package, e.g. ``git archive a9dafd6 | tar -x -C /tmp/base/imagetune``),
so a busy moment of the shared machine hits both; the table has each node's median over the rounds
and the image nodes' total (categories ImageTune/image, /enhance, /style).
Run: nice -n 10 .venv/bin/python bench/workflow_nodes.py --baseline /tmp/base [--rounds 5] [--threads 1]
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
IMAGE_CATEGORIES = ("ImageTune/image", "ImageTune/enhance", "ImageTune/style")
RUN = ("import sys; from imagetune.graph_runtime.cli import main; sys.argv = ['imagetune', 'run'] + sys.argv[1:]; main()")


def run_once(workflow: Path, threads: int, baseline: Path | None) -> dict[str, float]:
    """Node id -> seconds of one run in a fresh interpreter (the baseline tree first on sys.path when given)."""
    env = dict(os.environ)
    if baseline is not None:
        env["PYTHONPATH"] = str(baseline)  # ahead of the editable install of this checkout
    with tempfile.TemporaryDirectory() as out:
        done = subprocess.run([sys.executable, "-c", RUN, str(workflow), "--out", out, "--no-progress", "--json",
                               "--threads", str(threads)], env=env, capture_output=True, text=True, check=True)
    summary = done.stdout[done.stdout.index("{"):]
    return json.loads(summary)["timings"]


def image_nodes(workflow: Path) -> dict[str, str]:
    """Node id -> class name of the workflow's image nodes (by the node classes' categories)."""
    sys.path.insert(0, str(ROOT / "bench"))
    from _pack import load_pack

    load_pack()
    from imagetune.nodes import default_registry

    registry = default_registry()
    graph = json.loads(workflow.read_text())
    return {node_id: node["class_type"] for node_id, node in graph.items()
            if registry.get(node["class_type"]).category in IMAGE_CATEGORIES}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workflow", type=Path, default=ROOT / "workflows" / "api" / "imagetune-text-to-image.json")
    parser.add_argument("--baseline", type=Path, required=True, help="a folder holding the baseline's imagetune package")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    nodes = image_nodes(args.workflow)
    runs = {"before": [], "after": []}
    for _ in range(args.rounds):
        runs["before"].append(run_once(args.workflow, args.threads, args.baseline))
        runs["after"].append(run_once(args.workflow, args.threads, None))
    median = {side: {n: statistics.median(r[n] for r in rs) for n in nodes} for side, rs in runs.items()}
    print(f"{args.workflow.name}, {args.rounds} rounds alternating, {args.threads} thread(s), median seconds per node\n")
    print("| node | class | before (s) | after (s) | after ÷ before |\n|---|---|---:|---:|---:|")
    for node_id, cls in nodes.items():
        b, a = median["before"][node_id], median["after"][node_id]
        print(f"| {node_id} | {cls} | {b:.3f} | {a:.3f} | {a / b:.2f} |")
    totals = {side: statistics.median(sum(r[n] for n in nodes) for r in rs) for side, rs in runs.items()}
    print(f"| all image nodes | (median of per-run totals) | {totals['before']:.3f} | {totals['after']:.3f} | "
          f"{totals['after'] / totals['before']:.2f} |")


if __name__ == "__main__":
    main()
