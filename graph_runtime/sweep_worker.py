"""Running one sweep job after another on one runtime: what every kind of sweep worker does.

The same ``JobRunner`` runs jobs in the sweep's own process, in each local worker process and
in each Ray actor, so the models a workflow loads are loaded once per worker, and jobs that
differ only downstream reuse the runtime's cached upstream outputs.
"""
from __future__ import annotations

import os
import socket
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

from .errors import ExecutionInterrupted, GraphError


@dataclass
class WorkerSettings:
    """How a worker runs its jobs; plain data, so it travels to other processes and machines."""

    device: str | None = None          # None: cuda when available, else cpu
    threads: int | None = None         # torch's CPU threads in this worker; None: torch's choice
    models_dirs: list[str] = field(default_factory=list)  # searched before the default roots
    input_dir: str | None = None
    allow_downloads: bool = False      # hub ids may download (the sweep's --allow-downloads)


def worker_settings(device: str | None = None, threads: int | None = None, models_dirs=None,
                    input_dir=None, allow_downloads: bool = False) -> WorkerSettings:
    """WorkerSettings from the options of ``sweep`` and the command line (paths become text)."""
    return WorkerSettings(device=device, threads=threads, models_dirs=[str(p) for p in models_dirs or []],
                          input_dir=str(input_dir) if input_dir else None, allow_downloads=allow_downloads)


def quiet_library_bars() -> None:
    """Turn off transformers' and diffusers' own loading bars: the sweep shows one bar over jobs."""
    import logging

    logging.getLogger("transformers.utils.import_utils").setLevel(logging.ERROR)
    try:
        from transformers.utils import logging as tf_logging

        tf_logging.disable_progress_bar()
        from diffusers.utils import logging as df_logging

        df_logging.disable_progress_bar()
    except ImportError:
        pass


class JobRunner:
    """Runs jobs (overrides of one workflow) on one runtime, writing each job's files to a folder."""

    def __init__(self, workflow: dict | None, settings: WorkerSettings | None = None, runtime=None):
        from .executor import Runtime

        self.settings = settings or WorkerSettings()
        if self.settings.threads:
            import torch

            torch.set_num_threads(self.settings.threads)
        quiet_library_bars()
        if self.settings.allow_downloads:
            # what the loaders read; set in the worker itself, since a Ray actor's machine has its own environment
            os.environ["IMAGETUNE_ALLOW_DOWNLOADS"] = "1"
        self.runtime = runtime or Runtime()
        self.workflow = workflow

    def context(self, out_folder: Path):
        """A fresh execution context writing into ``out_folder``."""
        from .context import ExecutionContext

        ctx = ExecutionContext(output_dir=Path(out_folder))
        if self.settings.device:
            ctx.device = self.settings.device
        if self.settings.input_dir:
            ctx.input_dir = Path(self.settings.input_dir)
        ctx.models_dirs = [Path(p) for p in self.settings.models_dirs] + ctx.models_dirs
        return ctx

    def run(self, index: int, overrides: dict, out_folder: Path) -> dict:
        """Run job ``index``; return its manifest row (outputs relative to ``out_folder``).

        A node's failure becomes a ``failed`` row; an interrupt is raised, so the job is not recorded.
        """
        from .sweep_manifest import collect_outputs

        ctx = self.context(out_folder)
        row = {"job": index, "overrides": overrides, "worker": worker_info(ctx.device)}
        started = time.perf_counter()
        try:
            result = self.runtime.run(self.workflow, overrides, ctx=ctx)
        except (ExecutionInterrupted, KeyboardInterrupt):
            raise
        except GraphError as exc:
            row.update(status="failed", error=str(exc))
        except Exception as exc:  # a bug outside any node: recorded, and the sweep goes on
            row.update(status="failed", error=f"{type(exc).__name__}: {exc}",
                       traceback=traceback.format_exc(limit=20))
        else:
            row.update(status="done", cached=result.cached)  # nodes reused from earlier jobs
        row["seconds"] = round(time.perf_counter() - started, 4)
        # a failed job keeps what it saved before the failure
        row["outputs"] = collect_outputs(Path(out_folder), result.ui if row["status"] == "done" else {})
        return row


def worker_info(device: str) -> dict:
    """Which machine, process and device ran a job (``gpus``: the CUDA_VISIBLE_DEVICES it was given)."""
    return {"host": socket.gethostname(), "pid": os.getpid(), "device": str(device),
            "gpus": os.environ.get("CUDA_VISIBLE_DEVICES")}
