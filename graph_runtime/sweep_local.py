"""Local sweep backends: jobs one after another in this process, or on N worker processes.

Each backend yields manifest rows as jobs end; the sweep records them. ``stop`` (an Event) asks
for no new jobs to start; jobs already running finish and are recorded.
"""
from __future__ import annotations

import multiprocessing
import os
import signal
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from typing import Iterator

from .sweep_manifest import OutputFolder
from .sweep_worker import JobRunner, WorkerSettings

Job = tuple[int, dict]


def run_in_process(runner: JobRunner, folder: OutputFolder, jobs: list[Job], stop) -> Iterator[dict]:
    """Run the jobs one after another on this process's runtime."""
    for index, overrides in jobs:
        if stop.is_set():
            return
        yield runner.run(index, overrides, folder.staging(index))


def threads_per_worker(workers: int, threads: int | None, cpus: int | None = None) -> int:
    """Each worker's share of the CPU threads (at least one), unless the user chose a number."""
    if threads:
        return threads
    return max(1, (cpus or os.cpu_count() or 1) // workers)


def worker_device(settings: WorkerSettings, slot: int, cuda_devices: int) -> str | None:
    """Spread local workers over the GPUs (worker k on cuda:k mod n) unless a device was chosen."""
    if settings.device or cuda_devices < 2:
        return settings.device
    return f"cuda:{slot % cuda_devices}"


_RUNNER: JobRunner | None = None
_FOLDER: OutputFolder | None = None


def _start_worker(workflow: dict, settings: WorkerSettings, out_dir: str, slots) -> None:
    """Initialiser of a worker process: its own runtime for all its jobs; Ctrl-C is the sweep's."""
    global _RUNNER, _FOLDER
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the sweep decides what an interrupt stops
    import torch

    with slots.get_lock():
        slot = slots.value
        slots.value += 1
    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    settings.device = worker_device(settings, slot, count)
    _RUNNER = JobRunner(workflow, settings)
    _FOLDER = OutputFolder(out_dir)


def _run_job(index: int, overrides: dict) -> dict:
    return _RUNNER.run(index, overrides, _FOLDER.staging(index))


@contextmanager
def _stopped_at_once_on_error(pool: ProcessPoolExecutor):
    """Shut the pool down when done; on an error or a second Ctrl-C, end its workers at once."""
    try:
        yield pool
    except BaseException:
        pool.shutdown(wait=False, cancel_futures=True)
        terminate = getattr(pool, "terminate_workers", None)  # Python 3.14+
        if terminate is not None:
            terminate()
        else:
            for process in list((pool._processes or {}).values()):
                process.terminate()
        raise
    pool.shutdown(wait=True)


def run_in_workers(workflow: dict, settings: WorkerSettings, folder: OutputFolder, jobs: list[Job],
                   workers: int, retries: int, stop) -> Iterator[dict]:
    """Run the jobs on ``workers`` processes, each job going to the next free worker.

    A worker process that dies (killed, out of memory) breaks the pool: the jobs it may have
    been running count one attempt, and the rest go on in a fresh pool; a job whose attempts
    exceed ``retries`` is recorded as failed.
    """
    settings = WorkerSettings(**{**settings.__dict__, "threads": threads_per_worker(workers, settings.threads)})
    context = multiprocessing.get_context("spawn")  # no fork of a process holding torch's threads
    attempts = {index: 0 for index, _ in jobs}
    queue = list(jobs)
    while queue and not stop.is_set():
        slots = context.Value("i", 0)
        pool = ProcessPoolExecutor(workers, mp_context=context, initializer=_start_worker,
                                   initargs=(workflow, settings, str(folder.path), slots))
        with _stopped_at_once_on_error(pool):
            futures = {pool.submit(_run_job, index, overrides): (index, overrides) for index, overrides in queue}
            queue, started, broken = [], set(), False
            while futures:
                if stop.is_set():
                    for future in futures:
                        future.cancel()
                done, _ = wait(futures, timeout=0.2, return_when=FIRST_COMPLETED)
                started |= {futures[f][0] for f in futures if f.running()}
                for future in done:
                    job = futures.pop(future)
                    if future.cancelled():
                        continue
                    try:
                        yield future.result()
                    except BrokenProcessPool:
                        broken = True
                        queue.append(job)
            if broken:
                queue.sort()
                for index, overrides in list(queue):
                    if index in started:
                        attempts[index] += 1
                    if attempts[index] > retries:
                        queue.remove((index, overrides))
                        yield {"job": index, "overrides": overrides, "status": "failed", "seconds": 0.0,
                               "outputs": [], "error": f"its worker process died {attempts[index]} times"}
