"""The Ray sweep backend: one actor per GPU (or CPU actors), each keeping its own runtime.

Ray does the distributed work: placement (``num_gpus=1`` gives each actor its own
CUDA_VISIBLE_DEVICES), handing jobs to actors as they free up (``ActorPool``), restarting an
actor that dies and retrying its job (``max_restarts``, ``max_task_retries``), and carrying
results back. Actors write a job's files into a temp folder of their own machine and return the
bytes; the sweep's process writes them into ``--out``, so no shared filesystem is needed and
``--out`` has one writer.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterator

from .errors import GraphError
from .paths import resolve_inside
from .sweep_manifest import OutputFolder
from .sweep_worker import JobRunner, WorkerSettings

INSTALL_HINT = "pip install 'imagetune-nodes[ray]'"


def import_ray():
    """Ray, or a clear error naming the install command."""
    try:
        import ray
    except ImportError:
        raise GraphError(f"--ray needs Ray, which is not installed here: {INSTALL_HINT}") from None
    return ray


class RayJobRunner:
    """The body of a sweep actor: a JobRunner whose results carry the files' bytes.

    It starts (imports torch and the nodes) before it knows the workflow, so the actors warm up
    while the driver is still validating; the workflow comes with each job, as one object in
    Ray's store.
    """

    def __init__(self, settings: WorkerSettings):
        self.runner = JobRunner(None, settings)

    def run(self, workflow: dict, index: int, overrides: dict) -> tuple[dict, dict[str, bytes]]:
        """Run one job; return its row and ``{relative path: bytes}`` of its outputs."""
        self.runner.workflow = workflow
        folder = Path(tempfile.mkdtemp(prefix=f"imagetune-job-{index}-"))
        try:
            row = self.runner.run(index, overrides, folder)
            files = {name: (folder / name).read_bytes() for name in row["outputs"]}
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        return row, files


def connect(ray, address: str | None) -> bool:
    """Join the cluster at ``address`` (or $RAY_ADDRESS), else start a local one; True if started here."""
    if ray.is_initialized():
        return False
    address = address or os.environ.get("RAY_ADDRESS") or None
    if address:
        ray.init(address=address)
    else:
        ray.init(address="local", include_dashboard=False)
    return True


def actor_plan(resources: dict, workers: int | None, threads: int | None) -> tuple[int, dict]:
    """How many actors and what each asks for: one per GPU where there are GPUs, else CPU actors.

    ``workers`` caps the count; ``threads`` is each CPU actor's CPUs (and torch threads).
    """
    gpus = int(resources.get("GPU", 0))
    if gpus:
        count = min(workers, gpus) if workers else gpus
        return count, {"num_gpus": 1, "num_cpus": threads or 1}
    cpus = max(1, int(resources.get("CPU", 1)))
    per_actor = min(threads or 1, cpus)
    fits = cpus // per_actor
    # never more actors than fit: one waiting for CPUs would hold its jobs back for good
    return (min(workers, fits) if workers else fits), {"num_cpus": per_actor}


class RayActors:
    """A sweep's actors: connected and started as early as possible, killed by ``close``."""

    def __init__(self, settings: WorkerSettings, *, address: str | None = None, workers: int | None = None,
                 retries: int = 2):
        self.ray = import_ray()
        self.retries = retries
        self.started_here = connect(self.ray, address)
        try:
            count, options = actor_plan(self.ray.cluster_resources(), workers, settings.threads)
            settings = WorkerSettings(**{**settings.__dict__, "threads": options["num_cpus"]})
            actor_class = self.ray.remote(RayJobRunner).options(max_restarts=-1, max_task_retries=retries, **options)
            self.actors = [actor_class.remote(settings) for _ in range(count)]
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        """Kill the actors; leave the cluster if this sweep joined or started it."""
        for actor in getattr(self, "actors", []):
            self.ray.kill(actor)
        self.actors = []
        if self.started_here:
            self.ray.shutdown()
            self.started_here = False


def run_on_ray(actors: RayActors, workflow: dict, folder: OutputFolder, jobs: list[tuple[int, dict]],
               stop) -> Iterator[dict]:
    """Run the jobs on the actors, each job going to the next free one; yield rows as they arrive."""
    from ray.exceptions import RayError
    from ray.util.actor_pool import ActorPool

    ray = actors.ray
    workflow_ref = ray.put(workflow)
    # Each actor appears twice, so it has its next job queued while the driver stores the last
    # one's files: no idle gap between jobs (Ray runs an actor's calls one at a time, in order).
    pool = ActorPool(list(actors.actors) * 2)
    waiting = list(reversed(jobs))
    in_flight: dict[int, dict] = {}

    def submit_next() -> None:
        if waiting and not stop.is_set():
            index, overrides = waiting.pop()
            in_flight[index] = overrides
            pool.submit(lambda actor, job: actor.run.remote(workflow_ref, *job), (index, overrides))

    for _ in range(2 * len(actors.actors)):
        submit_next()
    lost = []
    while pool.has_next():
        try:
            row, files = pool.get_next_unordered()
        except RayError as exc:  # the actor died more often than --retries allows
            lost.append(exc)
            submit_next()
            continue
        in_flight.pop(row["job"], None)
        _write_files(folder, row["job"], files)
        yield row
        submit_next()
    # ActorPool does not say which job an error belongs to: they are the ones never answered.
    for index, overrides in sorted(in_flight.items()):
        reason = str(lost[0]).splitlines()[0] if lost else "no result came back"
        yield {"job": index, "overrides": overrides, "status": "failed", "outputs": [], "seconds": 0.0,
               "error": f"its Ray actor died (retried {actors.retries} times): {reason}"}


def _write_files(folder: OutputFolder, index: int, files: dict[str, bytes]) -> None:
    """Write what an actor returned into the job's staging folder (names stay inside it)."""
    from .atomic import write_bytes_atomically

    staging = folder.staging(index)
    for name, data in files.items():
        target = resolve_inside(staging, name, "outputs")
        target.parent.mkdir(parents=True, exist_ok=True)
        write_bytes_atomically(target, data)
