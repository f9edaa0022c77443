"""Pre-release fuzz run: N hostile workflows through ``imagetune validate``; prints cases, crashes, hangs, slowest case, peak memory.

    .venv/bin/python scripts/fuzz_long.py --cases 10000 [--deadline 10] [--keep DIR]

Uses the strategies of tests/fuzz/test_fuzz_workflows.py (API, UI and PNG files, damaged JSON
text) plus big graphs of up to --big-nodes nodes; exits 1 unless it ends with 0 crashes and 0 hangs.
"""
from __future__ import annotations

import argparse
import importlib.util
import resource
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

ROOT = Path(__file__).resolve().parents[1]


def load_fuzz_module():
    """The CI fuzz test module, loaded by path (tests/ is not a package)."""
    spec = importlib.util.spec_from_file_location("fuzz_workflows", ROOT / "tests" / "fuzz" / "test_fuzz_workflows.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def case_strategy(fz, big_nodes: int):
    """(kind, file suffix, bytes) of one case; big graphs are 2 % of the cases, they cost the most."""
    @st.composite
    def damaged(draw):
        data = draw(fz.api_workflows.map(fz.to_bytes))
        at = draw(st.integers(0, len(data)))
        return data[:at] + draw(st.sampled_from([b"", b",", b"]", b"\xff", b"\\u", b"9" * 5000])) + data[at + 1:]

    kinds = [
        (30, st.tuples(st.just("api"), st.just(".json"), fz.json_cases(fz.api_workflows))),
        (25, st.tuples(st.just("ui"), st.just(".json"), fz.json_cases(fz.ui_workflows))),
        (25, st.tuples(st.just("png"), st.just(".png"), fz.png_files())),
        (18, st.tuples(st.just("damaged"), st.just(".json"), damaged())),
        (2, st.tuples(st.just("big"), st.just(".json"),
                      st.builds(fz.big_api, st.integers(1, big_nodes), st.sampled_from(["cycle", "errors", "fan"]))
                      .map(fz.to_bytes))),
    ]
    return st.sampled_from([s for weight, s in kinds for _ in range(weight)]).flatmap(lambda s: s)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=10_000)
    parser.add_argument("--deadline", type=float, default=10.0, help="seconds before a case counts as a hang")
    parser.add_argument("--big-nodes", type=int, default=30_000, help="largest generated graph")
    parser.add_argument("--keep", type=Path, help="folder to copy each crash class's first case to")
    args = parser.parse_args(argv)

    fz = load_fuzz_module()
    folder = Path(tempfile.mkdtemp(prefix="imagetune-fuzz-"))
    stats = {"cases": 0, "crashes": 0, "hangs": 0, "slowest": (0.0, "")}
    kinds, classes, examples = Counter(), Counter(), {}

    @settings(max_examples=args.cases, database=None, deadline=None, phases=[Phase.generate],
              suppress_health_check=list(HealthCheck))
    @given(case_strategy(fz, args.big_nodes))
    def one_case(case):
        kind, suffix, data = case
        path = folder / f"case{suffix}"
        path.write_bytes(data)
        started = time.perf_counter()
        try:
            fz.validate_file(path, args.deadline)
        except fz.Crash as exc:
            stats["crashes"] += 1
            record(f"{kind}: {str(exc).splitlines()[0][:160]}", suffix, data)
        except fz.Hang:
            stats["hangs"] += 1
            record(f"{kind}: hang past {args.deadline:g} s", suffix, data)
        seconds = time.perf_counter() - started
        stats["cases"] += 1
        kinds[kind] += 1
        if seconds > stats["slowest"][0]:
            stats["slowest"] = (seconds, f"{kind}, {len(data):,} bytes")
        if stats["cases"] % 1000 == 0:
            print(f"  {stats['cases']:,} cases, {stats['crashes']} crashes, {stats['hangs']} hangs", file=sys.stderr)

    def record(label: str, suffix: str, data: bytes) -> None:
        classes[label] += 1
        if label not in examples:
            examples[label] = len(examples)
            if args.keep:
                args.keep.mkdir(parents=True, exist_ok=True)
                (args.keep / f"crash-{examples[label]:03d}{suffix}").write_bytes(data)

    started = time.perf_counter()
    one_case()
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kilobytes on Linux
    seconds, slowest = stats["slowest"]
    print(f"cases    {stats['cases']:,} ({', '.join(f'{k} {n:,}' for k, n in sorted(kinds.items()))}) "
          f"in {time.perf_counter() - started:.0f} s")
    print(f"crashes  {stats['crashes']}")
    print(f"hangs    {stats['hangs']} (deadline {args.deadline:g} s)")
    print(f"slowest  {seconds:.2f} s ({slowest})")
    print(f"peak memory  {peak_mb:,.0f} MB (resident, whole process)")
    for label, count in classes.most_common():
        print(f"  {count:5d} x {label}" + (f"  [crash-{examples[label]:03d}]" if args.keep else ""))
    return 0 if stats["crashes"] == stats["hangs"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
