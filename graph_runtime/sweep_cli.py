"""``imagetune sweep``: the command line of sweeps (see ``sweeps.py``)."""
from __future__ import annotations

import json
import signal
import sys
import threading
from pathlib import Path


def add_parser(sub) -> None:
    """Add the ``sweep`` subcommand to the CLI's subparsers."""
    from .cli import _positive_int

    p = sub.add_parser(
        "sweep", help="run one workflow over many values (prompts, seeds, settings); resumable",
        description="Run WORKFLOW once per job: the Cartesian product of the --vary lists (or their "
                    "pairs with --zip). Every job is validated before any runs. Files go to "
                    "DIR/job-NNNNN/, one line per finished job to DIR/sweep.jsonl, a contact sheet to "
                    "DIR/sweep.png; running the same sweep into the same DIR again runs only the jobs "
                    "not done.")
    p.add_argument("workflow", help="workflow (API or UI JSON, or a PNG), or a saved sweep JSON file")
    p.add_argument("--vary", action="append", default=[], metavar="ID.INPUT=VALUES",
                   help="values of one input: a|b|c (a list), A..B (whole numbers, both included), "
                        "@FILE (one value per line, UTF-8); repeatable")
    p.add_argument("--zip", action="store_true", help="pair the --vary lists (equal lengths) instead of all combinations")
    p.add_argument("--out", type=Path, metavar="DIR",
                   help="output folder (default: output/sweep-<digest of the sweep>)")
    p.add_argument("--workers", type=_positive_int, default=1, metavar="N",
                   help="local worker processes side by side, each with a share of the CPU threads "
                        "(with --ray: the number of CPU actors)")
    p.add_argument("--ray", nargs="?", const=True, default=None, metavar="ADDRESS",
                   help="run on Ray: alone starts a local cluster (or joins $RAY_ADDRESS); "
                        "ADDRESS joins an existing one ('auto', 'ray://head:10001')")
    p.add_argument("--retries", type=int, default=2, metavar="N",
                   help="times a job is retried when its worker dies (default 2)")
    p.add_argument("--threads", type=_positive_int, metavar="N", help="CPU threads per worker")
    p.add_argument("--device", help="cpu, cuda or cuda:N (default: cuda when available)")
    p.add_argument("--input-dir", type=Path, help="input folder for load nodes (default ./input)")
    p.add_argument("--models-dir", type=Path, action="append", default=[],
                   help="extra model folder, searched first (repeatable)")
    p.add_argument("--allow-downloads", action="store_true",
                   help="let hub ids in the workflow download from the model hub, on every worker "
                        "(default: model folders and the local hub cache only)")
    p.add_argument("--save-sweep", type=Path, metavar="FILE",
                   help="validate every job, write the sweep as a JSON file and stop (run it with "
                        "'imagetune sweep FILE')")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--json", action="store_true", help="print the manifest rows as JSON")
    p.set_defaults(func=cmd_sweep)


def cmd_sweep(args) -> int:
    """Run (or save) a sweep; exit 0 when every job is done, 3 when some failed."""
    from .cli import EXIT_FAILED, EXIT_INTERRUPTED, install_sigint
    from .executor import default_runtime
    from .sweeps import SHEET, MANIFEST, default_out_dir, load_sweep, sweep, validate_jobs
    from .sweep_spec import save_sweep_file
    from .sweep_worker import worker_settings

    settings = worker_settings(args.device, args.threads, args.models_dir, args.input_dir, args.allow_downloads)
    actors = None
    if args.ray and not args.save_sweep:
        from .sweep_ray import RayActors

        # first: the actors start up while this process loads and validates the workflow
        actors = RayActors(settings, address=None if args.ray is True else args.ray,
                           workers=args.workers if args.workers > 1 else None, retries=args.retries)
    try:
        runtime = default_runtime()
        spec = load_sweep(args.workflow, args.vary, zip=args.zip, registry=runtime.registry)
        total = len(spec.jobs())
        if args.save_sweep:
            validate_jobs(runtime, spec, spec.jobs())
            save_sweep_file(spec, args.save_sweep)
            print(f"saved {args.save_sweep}: {total} jobs")
            return 0
        out = args.out or default_out_dir(spec)
        stop = threading.Event()
        previous = install_sigint(stop, "no new jobs; finishing the ones running")
        try:
            rows = sweep(spec, out=out, workers=args.workers, ray=actors, retries=args.retries,
                         progress=not args.no_progress, device=args.device, threads=args.threads,
                         models_dirs=args.models_dir, input_dir=args.input_dir,
                         allow_downloads=args.allow_downloads, runtime=runtime, stop=stop)
        except KeyboardInterrupt:
            print(f"imagetune: sweep stopped; finished jobs are in {out / MANIFEST}", file=sys.stderr)
            return EXIT_INTERRUPTED
        finally:
            signal.signal(signal.SIGINT, previous)
    finally:
        if actors is not None:
            actors.close()
    done = sum(r["status"] == "done" for r in rows)
    failed = [r for r in rows if r["status"] == "failed"]
    if args.json:
        print(json.dumps(rows, indent=2))
    for row in failed[:20]:
        print(f"  job {row['job']} failed: {row.get('error', '')}", file=sys.stderr)
    print(f"{done} of {total} jobs done, {len(failed)} failed; manifest {out / MANIFEST}, contact sheet {out / SHEET}",
          file=sys.stderr if args.json else sys.stdout)
    if stop.is_set() and done + len(failed) < total:
        return EXIT_INTERRUPTED
    return EXIT_FAILED if failed else 0
