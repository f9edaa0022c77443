"""File paths that come from a workflow: they must stay inside their root."""
from __future__ import annotations

import os
import sys
from pathlib import Path

from .errors import NodeInputError


def default_root(env_var: str, fallback: str) -> Path:
    """A root folder from an environment variable, else ``fallback`` under the working directory."""
    return Path(os.environ.get(env_var) or Path.cwd() / fallback)


def name_problem(name) -> str | None:
    """Why a file or model name from a workflow can never be valid inside a root folder, or None.

    Absolute paths, drive letters, '..', a leading '~' (a home folder once expanded), NUL and
    text the file system cannot encode (lone surrogates) are refused; checked at validation by
    every node that takes a name, and again by ``resolve_inside`` when it runs.
    """
    if not isinstance(name, str) or not name.strip():
        return f"expected a relative file or folder name, got {name!r}"
    if "\x00" in name:
        return f"expected a name without NUL characters, got {name!r}"
    try:
        os.fsencode(name)
    except UnicodeError:  # a lone surrogate: every later os call would raise, outside any check
        return f"expected text the file system can encode ({sys.getfilesystemencoding()}), got {ascii(name)}"
    parts = name.replace("\\", "/").split("/")
    if os.path.isabs(name) or name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":"):
        return f"expected a name inside its root folder, got the absolute path {name!r}"
    if ".." in parts:
        return f"expected a name inside its root folder, got '..' in {name!r}"
    if parts[0].startswith("~"):
        return f"expected a name inside its root folder, got {name!r} ('~' means a home folder)"
    return None


def name_problems(literals: dict, *fields: str) -> list[tuple[str, str]]:
    """``(field, message)`` for each of ``fields`` whose literal string is not a valid name (for check_inputs)."""
    found = [(f, name_problem(literals[f])) for f in fields if isinstance(literals.get(f), str) and literals[f]]
    return [(f, problem) for f, problem in found if problem]


def resolve_inside(root: Path | str, relative: str, field: str) -> Path:
    """Resolve ``relative`` under ``root``; refuse what ``name_problem`` refuses and symlinks leading out.

    Raises NodeInputError naming ``field`` when the path would escape ``root``.
    """
    problem = name_problem(relative) if relative not in ("", ".") else None
    if problem:
        raise NodeInputError(field, problem)
    candidate = Path(relative)
    root_real = Path(os.path.realpath(root))
    target = Path(os.path.realpath(root_real / candidate))
    if target != root_real and root_real not in target.parents:
        raise NodeInputError(field, f"{relative!r} leads outside its root folder {root_real}")
    return target


def resolve_in_roots(roots: list[Path], relative: str, field: str, must_exist: bool = True) -> Path:
    """Resolve ``relative`` inside the first of ``roots`` that has it (or the first root)."""
    if not roots:
        raise NodeInputError(field, "no root folder is configured")
    errors = []
    for root in roots:
        try:
            target = resolve_inside(root, relative, field)
        except NodeInputError as exc:
            errors.append(exc)
            continue
        if target.exists() or not must_exist:
            return target
    if errors and len(errors) == len(roots):
        raise errors[0]
    raise NodeInputError(field, f"{relative!r} was not found in {', '.join(str(r) for r in roots)}")
