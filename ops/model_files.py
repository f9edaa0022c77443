"""Finding a model named in a workflow: a file or folder under the model roots, or a hub id.

Names are looked up in each root directly and in the ComfyUI sub-folders for the model kind
(``text_encoders/``, ``clip/``, ``diffusers/``, ``checkpoints/``, ...). A name that would lead
outside every root is refused; a name found nowhere may be a hub id (``owner/name``). A shared
workflow must not make the machine contact a hub, so a hub id is downloaded only when the user
allows it (``downloads_allowed``); otherwise it must already be in the local hub cache.
"""
from __future__ import annotations

import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path

from ..graph_runtime.errors import NodeInputError
from ..graph_runtime.paths import resolve_inside

_HUB_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*/[A-Za-z0-9][A-Za-z0-9_.-]*")
_WEIGHT_SUFFIXES = (".safetensors", ".ckpt", ".pt", ".pth", ".bin", ".json")
_TRUE = ("1", "true", "yes", "on")
ALLOW_DOWNLOADS_ENV = "IMAGETUNE_ALLOW_DOWNLOADS"
HOW_TO_ALLOW = f"`imagetune run --allow-downloads` or {ALLOW_DOWNLOADS_ENV}=1"


@dataclass(frozen=True)
class ModelSource:
    """Where a model comes from: a local ``path``, or a hub ``repo_id``."""

    name: str
    path: Path | None = None
    repo_id: str | None = None
    downloads: bool = False  # whether loading may fetch from the hub (a single file's configs)

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


def downloads_allowed() -> bool:
    """True when a hub id may be downloaded: $IMAGETUNE_ALLOW_DOWNLOADS when set, else only inside ComfyUI.

    Headless runs take shared workflows, so the hub is opt-in there; inside ComfyUI (whose
    modules are loaded) hub ids keep working as ComfyUI users expect, unless the variable is 0.
    """
    value = os.environ.get(ALLOW_DOWNLOADS_ENV, "").strip().lower()
    if value:
        return value in _TRUE
    return "comfy.model_management" in sys.modules


def is_hub_id(name: str) -> bool:
    """True for an ``owner/name`` that could be a hub repository (not a weight file name)."""
    return _HUB_ID.fullmatch(name) is not None and not name.lower().endswith(_WEIGHT_SUFFIXES)


def cached_hub_folder(repo_id: str) -> Path | None:
    """The local hub cache's snapshot folder of ``repo_id``, or None; never contacts the hub."""
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(repo_id, local_files_only=True))
    except Exception:  # LocalEntryNotFoundError, a malformed id or no huggingface_hub: not cached
        return None


def locate(roots, name: str, subfolders: tuple[str, ...], field: str, downloads: bool = False) -> ModelSource:
    """A local model under ``roots``, else a hub id; NodeInputError when neither fits.

    Without ``downloads`` a hub id resolves only to its folder in the local hub cache.
    """
    path = find_local(roots, name, subfolders, field)
    if path is not None:
        return ModelSource(name, path=path, downloads=downloads)
    shown = ", ".join(str(r) for r in roots) or "(no model roots configured)"
    looked = ", ".join(["<root>"] + [f"<root>/{s}" for s in subfolders])
    if is_hub_id(name):
        if not downloads:
            cached = cached_hub_folder(name)
            if cached is not None:
                return ModelSource(name, path=cached)
            raise NodeInputError(field, f"{name!r} was not found in {looked} of {shown} nor in the local hub "
                                        f"cache, and hub downloads are off for workflows (allow them with "
                                        f"{HOW_TO_ALLOW})")
        if hub_is_offline():
            raise NodeInputError(field, f"{name!r} was not found in {looked} of {shown}, and the "
                                        "model hub is offline (HF_HUB_OFFLINE)")
        return ModelSource(name, repo_id=name, downloads=True)
    raise NodeInputError(field, f"{name!r} was not found in {looked} of {shown}")
