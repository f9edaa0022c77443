"""Sweep throughput: 16 jobs of the default workflow, five ways, as whole processes.

(a) 16 separate ``imagetune run`` processes one after another (a shell loop, the baseline),
(b) one ``imagetune sweep``, (c) ``--workers 2``, (d) ``--ray`` with 2 CPU actors on a local
cluster the command starts, (e) ``--ray auto`` with 2 CPU actors on a cluster started beforehand
(``ray start --head``), as a multi-machine user runs it. Each is timed from outside (wall clock,
and the CPU time of the process and its children); rounds run the five in turn so a drifting
machine affects all alike. Prints each median, the throughput ratio to (a), and Ray's overhead per
job against (c): over the whole command (start-up included) and in the steady state (the
interval between jobs once every worker has finished its first, from the manifest's
``finished`` times).

    python bench/sweep.py [--jobs 16] [--rounds 2] [--ways abcde]
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WORKFLOW = ROOT / "workflows" / "imagetune-text-to-image.json"


def imagetune(*args: str) -> list[str]:
    return [sys.executable, "-m", "imagetune", *args]


def steady_interval(out: Path, first_wave: int) -> float | None:
    """Seconds between recorded jobs once each of ``first_wave`` workers has recorded one."""
    manifest = out / "sweep.jsonl"
    if not manifest.is_file():
        return None
    times = sorted(json.loads(line)["finished"] for line in manifest.read_text().splitlines())
    if len(times) <= first_wave:
        return None
    return (times[-1] - times[first_wave - 1]) / (len(times) - first_wave)


def timed(commands: list[list[str]], env: dict) -> tuple[float, float]:
    """Run the commands one after another; return (wall seconds, CPU seconds of all of them)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    for command in commands:
        done = subprocess.run(command, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        if done.returncode != 0:
            raise SystemExit(f"{' '.join(command)} failed:\n{done.stderr.decode()[-2000:]}")
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def ray_cli() -> str | None:
    found = Path(sys.executable).with_name("ray")
    return str(found) if found.exists() else shutil.which("ray")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--ways", default="abcde", help="which of (a)-(e) to run")
    args = parser.parse_args()
    env = dict(os.environ, HF_HUB_OFFLINE="1", RAY_AUTH_MODE=os.environ.get("RAY_AUTH_MODE", "disabled"))
    seeds = f"6.seed=0..{args.jobs - 1}"
    work = Path(tempfile.mkdtemp(prefix="imagetune-bench-sweep-"))
    ray = ray_cli()
    ways = {
        "(a) separate runs": lambda out: [imagetune("run", str(WORKFLOW), "--set", f"6.seed={i}", "--out", str(out),
                                                   "--no-progress") for i in range(args.jobs)],
        "(b) sweep": lambda out: [imagetune("sweep", str(WORKFLOW), "--vary", seeds, "--out", str(out),
                                            "--no-progress")],
        "(c) sweep --workers 2": lambda out: [imagetune("sweep", str(WORKFLOW), "--vary", seeds, "--out", str(out),
                                                        "--workers", "2", "--no-progress")],
        "(d) sweep --ray (local cluster)": lambda out: [imagetune("sweep", str(WORKFLOW), "--vary", seeds, "--out",
                                                                  str(out), "--ray", "--workers", "2",
                                                                  "--no-progress")],
    }
    if ray:
        ways["(e) sweep --ray auto (running cluster)"] = lambda out: [
            imagetune("sweep", str(WORKFLOW), "--vary", seeds, "--out", str(out), "--ray", "auto", "--workers", "2",
                      "--no-progress")]
    ways = {name: make for name, make in ways.items() if name[1] in args.ways}
    results: dict[str, list[tuple[float, float, float | None]]] = {name: [] for name in ways}
    try:
        for round_index in range(args.rounds):
            for name, commands in ways.items():
                out = work / f"{round_index}-{name[1]}"
                if name.startswith("(e)"):
                    subprocess.run([ray, "start", "--head", "--num-cpus=2", "--include-dashboard=false",
                                    "--disable-usage-stats"], env=env, check=True, capture_output=True)
                    time.sleep(2)  # let the head settle before timing, as a running cluster would be
                try:
                    wall, cpu = timed(commands(out), env)
                    results[name].append((wall, cpu, steady_interval(out, 1 if name.startswith("(b)") else 2)))
                finally:
                    if name.startswith("(e)"):
                        subprocess.run([ray, "stop", "--force"], env=env, capture_output=True)
                print(f"round {round_index + 1} {name}: {results[name][-1][0]:.1f} s", file=sys.stderr)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    report(results, args.jobs)


def report(results: dict, jobs: int) -> None:
    """The table: median wall and CPU seconds, jobs per minute, ratio to (a), steady-state s/job."""
    def median(values):
        values = [v for v in values if v is not None]
        return statistics.median(values) if values else None

    medians = {name: [median(run[i] for run in runs) for i in range(3)] for name, runs in results.items()}
    base = medians.get("(a) separate runs", [None])[0]
    print(f"{jobs} jobs of workflows/imagetune-text-to-image.json, {len(next(iter(results.values())))} rounds, "
          f"{os.cpu_count()} CPUs")
    print("| way | wall s (median) | CPU s | jobs/min | throughput vs (a) | steady s/job |\n|---|---|---|---|---|---|")
    for name, (wall, cpu, steady) in medians.items():
        ratio = f"{base / wall:.2f}x" if base else "-"
        print(f"| {name} | {wall:.1f} | {cpu:.1f} | {60 * jobs / wall:.1f} | {ratio} | "
              + (f"{steady:.3f} |" if steady is not None else "- |"))
    if "(c) sweep --workers 2" not in medians:
        return
    workers, _, workers_steady = medians["(c) sweep --workers 2"]
    for name in ("(d) sweep --ray (local cluster)", "(e) sweep --ray auto (running cluster)"):
        if name in medians:
            wall, _, steady = medians[name]
            line = (f"{name}: {100 * (wall / workers - 1):+.0f}% wall against (c), "
                    f"{(wall - workers) / jobs * 1000:+.0f} ms per job over the whole command")
            if steady is not None and workers_steady is not None:
                line += f"; steady state {1000 * (steady - workers_steady):+.0f} ms per job"
            print(line)


if __name__ == "__main__":
    main()
