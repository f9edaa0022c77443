"""Finding a model named in a workflow: a file or folder under the model roots, or a hub id.

Names are looked up in each root directly and in the ComfyUI sub-folders for the model kind
(``text_encoders/``, ``clip/``, ``diffusers/``, ``checkpoints/``, ...). A name that would lead
outside every root is refused; a name found nowhere may be a hub id (``owner/name``), which is
only used when the hub is reachable.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from ..graph_runtime.errors import NodeInputError
from ..graph_runtime.paths import resolve_inside

_HUB_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*/[A-Za-z0-9][A-Za-z0-9_.-]*")
_WEIGHT_SUFFIXES = (".safetensors", ".ckpt", ".pt", ".pth", ".bin", ".json")


@dataclass(frozen=True)
class ModelSource:
    """Where a model comes from: a local ``path``, or a hub ``repo_id``."""

    name: str
    path: Path | None = None
    repo_id: str | None = None

    @property
    def label(self) -> str:
        """What to show in messages."""
        return str(self.path) if self.path is not None else f"hub:{self.repo_id}"


def find_local(roots, name: str, subfolders: tuple[str, ...], field: str) -> Path | None:
    """The first existing ``root/<sub>/name`` over roots and sub-folders ('' = the root itself).

    Raises NodeInputError when ``name`` is absolute, contains '..' or leads outside a root.
    """
    if not isinstance(name, str) or not name.strip():
        raise NodeInputError(field, f"expected a model name or path, got {name!r}")
    for root in roots:
        for sub in ("",) + tuple(subfolders):
            relative = f"{sub}/{name}" if sub else name
            target = resolve_inside(root, relative, field)
            if target.exists():
                return target
    return None


def hub_is_offline() -> bool:
    """True when the Hugging Face hub must not be contacted (HF_HUB_OFFLINE or TRANSFORMERS_OFFLINE)."""
    return any(os.environ.get(v, "").lower() in ("1", "true", "yes", "on")
               for v in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "DIFFUSERS_OFFLINE"))


def locate(roots, name: str, subfolders: tuple[str, ...], field: str) -> ModelSource:
    """A local model under ``roots``, else a hub id; NodeInputError when neither fits."""
    path = find_local(roots, name, subfolders, field)
    if path is not None:
        return ModelSource(name, path=path)
    shown = ", ".join(str(r) for r in roots) or "(no model roots configured)"
    looked = ", ".join(["<root>"] + [f"<root>/{s}" for s in subfolders])
    if _HUB_ID.fullmatch(name) and not name.lower().endswith(_WEIGHT_SUFFIXES):
        if hub_is_offline():
            raise NodeInputError(field, f"{name!r} was not found in {looked} of {shown}, and the "
                                        "model hub is offline (HF_HUB_OFFLINE)")
        return ModelSource(name, repo_id=name)
    raise NodeInputError(field, f"{name!r} was not found in {looked} of {shown}")
