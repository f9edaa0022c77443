"""File paths that come from a workflow: they must stay inside their root."""
from __future__ import annotations

import os
from pathlib import Path

from .errors import NodeInputError


def default_root(env_var: str, fallback: str) -> Path:
    """A root folder from an environment variable, else ``fallback`` under the working directory."""
    return Path(os.environ.get(env_var) or Path.cwd() / fallback)


def resolve_inside(root: Path | str, relative: str, field: str) -> Path:
    """Resolve ``relative`` under ``root``; refuse absolute paths, '..' and symlinks leading out.

    Raises NodeInputError naming ``field`` when the path would escape ``root``.
    """
    if not isinstance(relative, str) or "\x00" in relative:
        raise NodeInputError(field, f"expected a relative path, got {relative!r}")
    candidate = Path(relative)
    if candidate.is_absolute() or relative.startswith(("/", "\\")) or (len(relative) > 1 and relative[1] == ":"):
        raise NodeInputError(field, f"absolute paths are not allowed, got {relative!r}")
    if ".." in candidate.parts or ".." in relative.replace("\\", "/").split("/"):
        raise NodeInputError(field, f"'..' is not allowed in {relative!r}")
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
