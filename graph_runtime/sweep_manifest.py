"""A sweep's output folder: job folders, the append-only manifest, and resuming.

Layout of ``DIR``: ``sweep.json`` (the sweep, so ``imagetune sweep DIR/sweep.json`` runs it
again), ``sweep.jsonl`` (one line per finished job, appended and flushed as jobs finish),
``job-00037/`` (the files job 37 saved), ``sweep.png`` (the contact sheet). A job runs into
``.staging/job-00037/`` and is renamed into place when it ends, so a job folder only ever holds
one finished attempt; an earlier attempt's folder is moved into ``.earlier/``, never overwritten.
"""
from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

from .errors import GraphError

MANIFEST = "sweep.jsonl"
SPEC = "sweep.json"
SHEET = "sweep.png"
STAGING = ".staging"
EARLIER = ".earlier"
LOCK = ".lock"


def job_folder(index: int) -> str:
    """The folder name of job ``index`` inside the sweep's output folder."""
    return f"job-{index:05d}"


def read_rows(out_dir: Path) -> dict[int, dict]:
    """The latest manifest row of every job (a later line for a job replaces an earlier one).

    A line cut short by a crash is skipped: that job simply counts as not done.
    """
    rows: dict[int, dict] = {}
    path = Path(out_dir) / MANIFEST
    if not path.is_file():
        return rows
    with open(path, encoding="utf-8", errors="replace") as stream:
        for line in stream:
            try:
                row = json.loads(line)
            except ValueError:
                continue
            if isinstance(row, dict) and isinstance(row.get("job"), int) and row.get("status") in ("done", "failed"):
                rows[row["job"]] = row
    return rows


def append_row(out_dir: Path, row: dict) -> None:
    """Append one row and force it to disk, so a kill loses at most the jobs still running."""
    path = Path(out_dir) / MANIFEST
    with open(path, "ab") as stream:
        if stream.tell() > 0 and not _ends_with_newline(path):
            stream.write(b"\n")  # a line cut short by a crash stays on its own line
        stream.write(json.dumps(row, sort_keys=True).encode("ascii") + b"\n")
        stream.flush()
        os.fsync(stream.fileno())


def _ends_with_newline(path: Path) -> bool:
    with open(path, "rb") as stream:
        stream.seek(-1, os.SEEK_END)
        return stream.read(1) == b"\n"


class OutputFolder:
    """The sweep's ``DIR``: claimed by one sweep at a time, tied to one sweep's jobs."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self._lock = None

    def open(self, sweep) -> dict[int, dict]:
        """Claim the folder for ``sweep`` and return the rows already there.

        Refuses a folder that holds a different sweep (resuming it would mix two sweeps' files)
        or that another sweep is writing to now.
        """
        from .atomic import write_text_atomically

        self.path.mkdir(parents=True, exist_ok=True)
        self._take_lock()
        spec_file = self.path / SPEC
        digest = sweep.digest()
        if spec_file.is_file():
            try:
                earlier = json.loads(spec_file.read_text(encoding="utf-8")).get("digest")
            except (ValueError, AttributeError, OSError):
                earlier = None
            if earlier != digest:
                self.close()
                raise GraphError(f"{self.path} holds the files of a different sweep ({SPEC} differs): "
                                 "use another --out folder to start a new sweep")
        else:
            write_text_atomically(spec_file, json.dumps(dict(sweep.to_json(), digest=digest), indent=2) + "\n")
        shutil.rmtree(self.path / STAGING, ignore_errors=True)  # only jobs that were in flight
        return read_rows(self.path)

    def _take_lock(self) -> None:
        import fcntl

        self._lock = open(self.path / LOCK, "a")
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            self._lock.close()
            self._lock = None
            raise GraphError(f"another sweep is writing to {self.path} now") from None

    def close(self) -> None:
        """Release the folder (and drop the staging folder when no job left anything there)."""
        try:
            (self.path / STAGING).rmdir()
        except OSError:
            pass
        if self._lock is not None:
            self._lock.close()
            self._lock = None

    def staging(self, index: int) -> Path:
        """A fresh, empty folder for job ``index`` to write into."""
        folder = self.path / STAGING / job_folder(index)
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        return folder

    def commit(self, index: int, row: dict) -> dict:
        """Move job ``index``'s staged files into place and record its row; return the row."""
        staged = self.path / STAGING / job_folder(index)
        final = self.path / job_folder(index)
        if final.exists():  # an attempt that ended but was not recorded, or a failed one
            _move_aside(final, self.path / EARLIER)
        if staged.is_dir() and any(staged.iterdir()):
            os.replace(staged, final)
        else:
            shutil.rmtree(staged, ignore_errors=True)
        row = dict(row, outputs=[f"{job_folder(index)}/{name}" for name in row.get("outputs", [])],
                   finished=round(time.time(), 3))  # when the sweep recorded it (Unix seconds)
        append_row(self.path, row)
        return row


def _move_aside(folder: Path, into: Path) -> None:
    into.mkdir(exist_ok=True)
    attempt = 1
    while (into / f"{folder.name}.{attempt}").exists():
        attempt += 1
    os.replace(folder, into / f"{folder.name}.{attempt}")


def collect_outputs(folder: Path, ui: dict) -> list[str]:
    """The files a job wrote under ``folder``: saved images in node order first, then the rest.

    Previews (``temp/``) stay on disk but are not outputs.
    """
    listed = []
    for entry in ui.values():
        for image in entry.get("images", []):
            if image.get("type") == "output":
                listed.append(str(Path(image.get("subfolder", "")) / image["filename"]).replace(os.sep, "/"))
    found = sorted(str(p.relative_to(folder)).replace(os.sep, "/") for p in folder.rglob("*") if p.is_file())
    found = [f for f in found if not f.startswith("temp/") and not Path(f).name.startswith(".")]
    return [f for f in listed if f in found] + [f for f in found if f not in listed]
