"""Sweeps: one workflow over many values, every job validated first, resumable, local or on Ray.

``sweep()`` validates all jobs, claims the output folder, skips the jobs it already holds as
done, hands the rest to a backend (this process, local worker processes, or Ray actors),
records each row as it arrives and finally draws the contact sheet.
"""
from __future__ import annotations

import threading
from pathlib import Path
from typing import Any, Iterator

from .errors import GraphError, ValidationError, WorkflowFormatError
from .sweep_manifest import MANIFEST, SHEET, OutputFolder
from .sweep_ray import RayActors
from .sweep_spec import Sweep, describe_job, is_sweep_file, parse_vary, sweep_from_data
from .sweep_worker import JobRunner, worker_settings
from .workflow import coerce_override

MAX_LISTED_PROBLEMS = 100


class SweepValidationError(GraphError):
    """Some jobs of a sweep are invalid; ``problems`` lists each distinct problem and its jobs."""

    def __init__(self, problems: list[dict], n_jobs: int):
        self.problems = problems
        bad = sorted({j for p in problems for j in p["jobs"]})
        lines = [f"{len(bad)} of {n_jobs} jobs are invalid; no job ran:"]
        for problem in problems[:MAX_LISTED_PROBLEMS]:
            lines.append(f"  {_jobs_text(problem['jobs'], problem['job_label'])}: {problem['message']}")
        if len(problems) > MAX_LISTED_PROBLEMS:
            lines.append(f"  ... and {len(problems) - MAX_LISTED_PROBLEMS} more distinct problems")
        super().__init__("\n".join(lines))


def _jobs_text(jobs: list[int], first_label: str) -> str:
    if len(jobs) == 1:
        return f"job {jobs[0]}" + (f" ({first_label})" if first_label else "")
    listed = ", ".join(str(j) for j in jobs[:8])
    return f"jobs {listed}" + (f" and {len(jobs) - 8} more" if len(jobs) > 8 else "")


def load_sweep(workflow: Any, vary: dict | list | None = None, *, zip: bool = False, registry=None) -> Sweep:
    """A Sweep from a workflow (or a saved sweep file) and ``{ID.INPUT: values}`` or ``--vary`` strings.

    String values are typed by each input's declaration, as ``--set`` does; values that do not
    convert stay as given, and validation reports them per job.
    """
    from .workflow import as_api_format, looks_like_path, read_source

    if isinstance(vary, list):
        vary = parse_vary(vary)
    vary = dict(vary or {})
    if isinstance(workflow, Sweep):
        spec = workflow
    else:
        data = read_source(workflow)  # read once: a saved sweep, or a workflow in any form
        source = str(workflow) if isinstance(workflow, (str, Path)) and looks_like_path(workflow) else None
        if is_sweep_file(data):
            base = Path(source).parent if source else Path.cwd()
            spec = sweep_from_data(data, base, source or "sweep", registry)
        else:
            spec = Sweep(as_api_format(data, registry), {}, zip)
    for key in vary:
        if key in spec.vary:
            raise WorkflowFormatError(f"--vary {key}: the sweep file varies it already")
    merged = {**spec.vary, **vary}
    return Sweep(spec.workflow, {k: _typed_values(spec.workflow, k, v, registry) for k, v in merged.items()},
                 spec.zip or zip)


def _typed_values(workflow: dict, key: str, values: list, registry) -> list:
    """Convert string values to the declared type of input ``key`` where they convert."""
    node_id, _, name = key.partition(".")
    node = workflow.get(node_id)
    cls = registry.get(node.get("class_type")) if isinstance(node, dict) and registry is not None else None
    spec = next((i for i in cls.inputs if i.name == name), None) if cls else None
    if spec is None:
        return list(values)
    typed = []
    for value in values:
        try:
            typed.append(coerce_override(spec.type, value) if isinstance(value, str) else value)
        except ValueError:
            typed.append(value)  # reported per job by validation
    return typed


def validate_jobs(runtime, spec: Sweep, jobs: list[dict]) -> None:
    """Validate every job before any runs; raise SweepValidationError naming job, node and input."""
    problems: dict[str, dict] = {}

    def add(job: int, message: str) -> None:
        entry = problems.setdefault(message, {"message": message, "jobs": [],
                                              "job_label": describe_job(jobs[job])})
        entry["jobs"].append(job)

    for index, overrides in enumerate(jobs):
        try:
            runtime.prepare(spec.workflow, overrides)
        except ValidationError as exc:
            for node_id, entry in exc.report.get("node_errors", {}).items():
                for err in entry.get("errors", []):
                    name = err.get("extra_info", {}).get("input_name")
                    where = f"node {node_id} ({entry.get('class_type')})" + (f" input '{name}'" if name else "")
                    add(index, f"{where}: {err['type']}: {err['details'] or err['message']}")
            if not exc.report.get("node_errors"):
                add(index, exc.report.get("error", {}).get("details") or str(exc))
        except WorkflowFormatError as exc:
            add(index, str(exc))
    if problems:
        raise SweepValidationError(list(problems.values()), len(jobs))


def sweep(workflow: Any, vary: dict | list | None = None, *, zip: bool = False, out: str | Path | None = None,
          workers: int = 1, ray=None, retries: int = 2, progress: bool = False,
          device: str | None = None, threads: int | None = None, models_dirs: list | None = None,
          input_dir: str | Path | None = None, allow_downloads: bool = False, runtime=None,
          stop: threading.Event | None = None) -> list[dict]:
    """Run every job of a sweep into ``out``; return the manifest rows of all its jobs, in job order.

    ``vary``: ``{"6.seed": [0, 1, 2], "2.text": ["a", "b"]}`` or ``--vary`` strings. Jobs are
    their Cartesian product, or pairs when ``zip``. Jobs already ``done`` in ``out`` are skipped.
    ``workers``: local worker processes (1: this process). ``ray``: True or an address
    (``"auto"``, ``"ray://host:10001"``) runs on Ray actors instead (``workers`` then caps
    their number), as does a ``sweep_ray.RayActors`` started beforehand. ``allow_downloads``:
    hub ids in the workflow may download (as ``imagetune run --allow-downloads``).
    """
    settings = worker_settings(device, threads, models_dirs, input_dir, allow_downloads)
    own_actors = None
    if ray is not None and ray is not False and not isinstance(ray, RayActors):
        # first, so the actors start up while this process loads and validates the workflow
        ray = own_actors = RayActors(settings, address=None if ray is True else str(ray),
                                     workers=workers if workers > 1 else None, retries=retries)
    try:
        return _sweep(workflow, vary, zip, out, workers, ray or None, retries, progress, settings, runtime, stop)
    finally:
        if own_actors is not None:
            own_actors.close()


def _sweep(workflow, vary, zip, out, workers, actors, retries, progress, settings, runtime, stop) -> list[dict]:
    from .executor import Runtime

    runtime = runtime or Runtime()
    spec = load_sweep(workflow, vary, zip=zip, registry=runtime.registry)
    jobs = spec.jobs()
    validate_jobs(runtime, spec, jobs)
    folder = OutputFolder(Path(out) if out else default_out_dir(spec))
    stop = stop or threading.Event()
    rows = folder.open(spec)
    try:
        todo = [(i, o) for i, o in enumerate(jobs) if rows.get(i, {}).get("status") != "done"]
        results = _backend(spec, runtime, settings, folder, todo, workers, actors, retries, stop)
        bar = _JobBar(len(jobs), len(jobs) - len(todo), progress)
        try:
            for row in results:
                rows[row["job"]] = folder.commit(row["job"], row)
                bar.update(row)
        finally:
            bar.close()
            if jobs:
                from .contact_sheet import make_contact_sheet

                make_contact_sheet(folder.path, spec.vary, spec.zip, jobs, rows, folder.path / SHEET)
    finally:
        folder.close()
    return [rows[i] for i in sorted(rows)]


def default_out_dir(spec: Sweep) -> Path:
    """``output/sweep-<digest>``: the same sweep resumes in the same folder, another gets its own."""
    from .paths import default_root

    return default_root("IMAGETUNE_OUTPUT_DIR", "output") / f"sweep-{spec.digest()[:10]}"


def _backend(spec, runtime, settings, folder, todo, workers, actors, retries, stop) -> Iterator[dict]:
    if actors is not None:
        from .sweep_ray import run_on_ray

        return run_on_ray(actors, spec.workflow, folder, todo, stop)
    if workers > 1:
        from .sweep_local import run_in_workers

        return run_in_workers(spec.workflow, settings, folder, todo, workers, retries, stop)
    from .sweep_local import run_in_process

    return run_in_process(JobRunner(spec.workflow, settings, runtime), folder, todo, stop)


class _JobBar:
    """A tqdm bar over a sweep's jobs, counting failures."""

    def __init__(self, total: int, already: int, enabled: bool):
        self.failed = 0
        self.bar = None
        if enabled:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=total, initial=already, desc="jobs", unit="job")

    def update(self, row: dict) -> None:
        if row["status"] == "failed":
            self.failed += 1
        if self.bar is not None:
            self.bar.update(1)
            if self.failed:
                self.bar.set_postfix_str(f"{self.failed} failed")

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


__all__ = ["MANIFEST", "SHEET", "Sweep", "SweepValidationError", "load_sweep", "sweep", "validate_jobs"]
