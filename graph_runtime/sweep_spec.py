"""What a sweep is: one workflow, the values each varied input takes, and the jobs they make.

A sweep never imports torch: it is parsed, expanded and saved from declarations alone.
"""
from __future__ import annotations

import hashlib
import itertools
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import WorkflowFormatError

SWEEP_FORMAT = "imagetune-sweep/1"
MAX_JOBS = 1_000_000
_RANGE = re.compile(r"^\s*(-?\d{1,18})\s*\.\.\s*(-?\d{1,18})\s*$")


@dataclass
class Sweep:
    """A workflow (API form) and, per ``ID.INPUT``, the values it takes; ``zip`` pairs the lists."""

    workflow: dict
    vary: dict[str, list] = field(default_factory=dict)
    zip: bool = False

    def jobs(self) -> list[dict[str, Any]]:
        """The overrides of every job, in order: the Cartesian product (last key fastest) or the zip."""
        keys = list(self.vary)
        lists = [self.vary[k] for k in keys]
        if self.zip:
            lengths = {k: len(v) for k, v in self.vary.items()}
            if len(set(lengths.values())) > 1:
                shown = ", ".join(f"{k} has {n}" for k, n in lengths.items())
                raise WorkflowFormatError(f"--zip needs lists of equal length: {shown}")
            rows = zip(*lists)
        else:
            count = 1
            for values in lists:
                count *= len(values)
            if count > MAX_JOBS:
                raise WorkflowFormatError(f"the sweep has {count} jobs, more than the limit of {MAX_JOBS}")
            rows = itertools.product(*lists)
        return [dict(zip(keys, row)) for row in rows]

    def digest(self) -> str:
        """A digest of the workflow and every job: two sweeps with the same digest do the same work."""
        text = json.dumps([self.workflow, self.jobs()], sort_keys=True, default=repr)
        return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()

    def to_json(self) -> dict:
        """The shareable form: the workflow itself (so the file stands alone) and the value lists."""
        return {"format": SWEEP_FORMAT, "workflow": self.workflow, "vary": self.vary, "zip": self.zip}


def parse_values(text: str) -> list[str]:
    """``a|b|c`` -> a list, ``A..B`` -> whole numbers A to B inclusive, ``@FILE`` -> one value per line."""
    if text.startswith("@"):
        return _read_value_file(Path(text[1:]))
    found = _RANGE.match(text)
    if found:
        start, stop = int(found.group(1)), int(found.group(2))
        step = 1 if stop >= start else -1
        if abs(stop - start) >= MAX_JOBS:
            raise WorkflowFormatError(f"range {text!r} has more than {MAX_JOBS} values")
        return [str(n) for n in range(start, stop + step, step)]
    return text.split("|")


def _read_value_file(path: Path) -> list[str]:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise WorkflowFormatError(f"@{path}: cannot read the value file ({exc.strerror})") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise WorkflowFormatError(f"@{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    values = [line.rstrip("\r") for line in text.split("\n")]
    values = [v for v in values if v.strip()]  # blank lines (a trailing newline) are no values
    if not values:
        raise WorkflowFormatError(f"@{path}: the value file has no values (one per line)")
    return values


def parse_vary(items: list[str]) -> dict[str, list[str]]:
    """``["6.seed=0..3", "2.text=@prompts.txt"]`` -> ``{"6.seed": [...], "2.text": [...]}``."""
    vary: dict[str, list[str]] = {}
    for item in items:
        key, sep, values = item.partition("=")
        key = key.strip()
        node_id, dot, name = key.partition(".")
        if not sep or not dot or not node_id or not name:
            raise WorkflowFormatError(f"--vary {item!r}: expected ID.INPUT=VALUES")
        if key in vary:
            raise WorkflowFormatError(f"--vary {key}: given twice")
        vary[key] = parse_values(values)
    return vary


def sweep_from_data(data: dict, base: Path, source: str, registry=None) -> Sweep:
    """A Sweep from a parsed sweep file: ``{"workflow": <workflow or path>, "vary": {...}, "zip": bool}``.

    A workflow given as a path is read relative to ``base`` (the sweep file's folder).
    """
    from .workflow import load_workflow

    if not isinstance(data.get("vary"), dict) or "workflow" not in data:
        raise WorkflowFormatError(f"{source}: a sweep file is an object with 'workflow' and 'vary'")
    vary = {}
    for key, values in data["vary"].items():
        if not isinstance(values, list) or not values:
            raise WorkflowFormatError(f"{source}: vary[{key!r}] must be a non-empty list of values")
        vary[str(key)] = values
    workflow = data["workflow"]
    if isinstance(workflow, str):
        workflow = str(base / workflow)
    elif not isinstance(workflow, dict):
        raise WorkflowFormatError(f"{source}: 'workflow' must be a workflow object or a file path")
    zipped = data.get("zip", False)
    if not isinstance(zipped, bool):
        raise WorkflowFormatError(f"{source}: 'zip' must be true or false")
    return Sweep(load_workflow(workflow, registry), vary, zipped)


def is_sweep_file(data: Any) -> bool:
    """True when parsed JSON is a sweep rather than a workflow."""
    return isinstance(data, dict) and "vary" in data and "workflow" in data and "class_type" not in data


def save_sweep_file(sweep: Sweep, path: Path) -> None:
    """Write a sweep as JSON that ``imagetune sweep FILE`` runs again."""
    from .atomic import write_text_atomically

    write_text_atomically(Path(path), json.dumps(sweep.to_json(), indent=2, ensure_ascii=False) + "\n")


def short_label(key: str, keys: list[str]) -> str:
    """``6.seed`` -> ``seed`` when no other varied key has that input name."""
    name = key.partition(".")[2]
    return name if sum(k.partition(".")[2] == name for k in keys) == 1 else key


def describe_job(overrides: dict[str, Any], limit: int = 60) -> str:
    """``seed=3, text=a red…`` for messages and labels."""
    keys = list(overrides)
    parts = []
    for key, value in overrides.items():
        shown = str(value)
        if len(shown) > limit:
            shown = shown[: limit - 1] + "…"
        parts.append(f"{short_label(key, keys)}={shown}")
    return ", ".join(parts)
