"""Listing what a dropdown offers: files and model folders, found when asked (never frozen at import).

ComfyUI calls ``INPUT_TYPES`` again for every ``/object_info`` (its Refresh button), so a listing
is computed at each call. Only ``os`` is used here: listing choices imports no torch. Inside
ComfyUI (its ``folder_paths`` module is loaded) ComfyUI's folders are listed; headless, the
runtime's roots.
"""
from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

from .paths import default_root

#: names one listing returns at most: a dropdown of more is unusable, and a huge folder must not
#: make every /object_info slow
MAX_LISTED_NAMES = 10_000
#: folder levels searched below a listed folder
MAX_LISTING_DEPTH = 8
#: file types the image loader lists (those PIL opens that ComfyUI's upload accepts)
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".gif", ".bmp", ".tif", ".tiff", ".avif")


def comfy_folder_paths():
    """ComfyUI's ``folder_paths`` module when running inside ComfyUI, else None (nothing is imported)."""
    return sys.modules.get("folder_paths")


def files_below(folder, suffixes: tuple[str, ...], limit: int = MAX_LISTED_NAMES) -> list[str]:
    """Files under ``folder`` whose names end in ``suffixes``, as '/'-separated relative names.

    Hidden entries are skipped; symlinked folders are followed once each (as ComfyUI's
    ``recursive_search`` follows them), so a link loop ends.
    """
    found: list[str] = []
    seen: set[str] = set()
    stack = [(str(folder), "", 0)]
    while stack and len(found) < limit:
        path, prefix, depth = stack.pop()
        real = os.path.realpath(path)
        if real in seen:
            continue
        seen.add(real)
        try:
            entries = sorted(os.scandir(path), key=lambda e: e.name, reverse=True)
        except OSError:
            continue
        for entry in entries:
            if entry.name.startswith("."):
                continue
            name = prefix + entry.name
            try:
                if entry.is_dir():
                    if depth < MAX_LISTING_DEPTH:
                        stack.append((entry.path, name + "/", depth + 1))
                elif entry.name.lower().endswith(suffixes):
                    found.append(name)
            except OSError:
                continue
    return sorted(found[:limit])


def folders_holding(folder, marker: str, limit: int = MAX_LISTED_NAMES) -> list[str]:
    """Names of the folders directly in ``folder`` that hold a file called ``marker`` (one model each)."""
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return []
    found = []
    for entry in entries:
        try:
            if not entry.name.startswith(".") and entry.is_dir() and os.path.isfile(os.path.join(entry.path, marker)):
                found.append(entry.name)
        except OSError:
            continue
    return sorted(found)[:limit]


@dataclass(frozen=True)
class InputFiles:
    """The files of the input folder (subfolders as 'sub/name.png'), for an upload dropdown.

    Inside ComfyUI that is ``folder_paths.get_input_directory()``; headless the runtime's
    input root ($IMAGETUNE_INPUT_DIR, else ./input).
    """

    suffixes: tuple[str, ...] = IMAGE_SUFFIXES

    def __call__(self) -> list[str]:
        comfy = comfy_folder_paths()
        root = comfy.get_input_directory() if comfy is not None else default_root("IMAGETUNE_INPUT_DIR", "input")
        return files_below(Path(root), self.suffixes)
