"""A stand-in for ComfyUI's ``folder_paths`` (0.3.64), written for the tests from its behaviour.

What the pack relies on behaves as in ComfyUI: named model folders (``folder_names_and_paths``,
with ``clip`` -> ``text_encoders`` and ``unet`` -> ``diffusion_models`` as legacy names),
``add_model_folder_path`` (which extra_model_paths.yaml goes through: ``load_extra_path_config``),
``get_folder_paths``, and ``get_filename_list``, whose list is cached and made again only when a
listed folder's modification time changes (a file added or removed), or inside ``cache_helper``
(which /object_info uses) kept for the whole request. Load a fresh copy per test with
``configure(base_path)``: the state is module-level, as in ComfyUI.
"""
from __future__ import annotations

import os
import time

supported_pt_extensions = {".ckpt", ".pt", ".pt2", ".bin", ".pth", ".safetensors", ".pkl", ".sft"}
folder_names_and_paths: dict[str, tuple[list[str], set[str]]] = {}
filename_list_cache: dict[str, tuple[list[str], dict[str, float], float]] = {}
base_path = models_dir = input_directory = output_directory = temp_directory = ""
#: calls that walked folders (not answered from the cache): the tests read it
walks: list[str] = []


def configure(base: str) -> None:
    """ComfyUI's default layout under ``base`` (its install folder, or --base-directory)."""
    global base_path, models_dir, input_directory, output_directory, temp_directory
    base_path = os.path.abspath(base)
    models_dir = os.path.join(base_path, "models")
    folder_names_and_paths.clear()
    filename_list_cache.clear()
    for name, subfolders, extensions in (
            ("checkpoints", ["checkpoints"], supported_pt_extensions),
            ("text_encoders", ["text_encoders", "clip"], supported_pt_extensions),
            ("diffusion_models", ["unet", "diffusion_models"], supported_pt_extensions),
            ("diffusers", ["diffusers"], {"folder"}),
            ("upscale_models", ["upscale_models"], supported_pt_extensions),
            ("vae", ["vae"], supported_pt_extensions)):
        folder_names_and_paths[name] = ([os.path.join(models_dir, s) for s in subfolders], set(extensions))
    folder_names_and_paths["custom_nodes"] = ([os.path.join(base_path, "custom_nodes")], set())
    input_directory = os.path.join(base_path, "input")
    output_directory = os.path.join(base_path, "output")
    temp_directory = os.path.join(base_path, "temp")
    os.makedirs(input_directory, exist_ok=True)


def map_legacy(folder_name: str) -> str:
    return {"unet": "diffusion_models", "clip": "text_encoders"}.get(folder_name, folder_name)


def get_input_directory() -> str:
    return input_directory


def get_output_directory() -> str:
    return output_directory


def get_temp_directory() -> str:
    return temp_directory


def add_model_folder_path(folder_name: str, full_folder_path: str, is_default: bool = False) -> None:
    """Add a folder to a name (a new name gets no extension filter); ``is_default`` puts it first."""
    folder_name = map_legacy(folder_name)
    if folder_name not in folder_names_and_paths:
        folder_names_and_paths[folder_name] = ([full_folder_path], set())
        return
    paths = folder_names_and_paths[folder_name][0]
    if full_folder_path in paths:
        if is_default and paths[0] != full_folder_path:
            paths.remove(full_folder_path)
            paths.insert(0, full_folder_path)
    elif is_default:
        paths.insert(0, full_folder_path)
    else:
        paths.append(full_folder_path)


def get_folder_paths(folder_name: str) -> list[str]:
    """The folders of a name (a copy); KeyError for a name ComfyUI does not know."""
    return list(folder_names_and_paths[map_legacy(folder_name)][0])


def load_extra_path_config(yaml_path: str) -> None:
    """Read an extra_model_paths.yaml as ComfyUI's utils/extra_config.py does."""
    import yaml

    with open(yaml_path, encoding="utf-8") as stream:
        config = yaml.safe_load(stream)
    here = os.path.dirname(os.path.abspath(yaml_path))
    for section in config.values():
        if section is None:
            continue
        section = dict(section)
        base = section.pop("base_path", None)
        if base is not None:
            base = os.path.expandvars(os.path.expanduser(base))
            base = base if os.path.isabs(base) else os.path.abspath(os.path.join(here, base))
        is_default = section.pop("is_default", False)
        for name, lines in section.items():
            for line in str(lines).split("\n"):
                if not line:
                    continue
                path = os.path.join(base, line) if base else (line if os.path.isabs(line) else os.path.join(here, line))
                add_model_folder_path(name, os.path.normpath(path), is_default)


def _walk(directory: str) -> tuple[list[str], dict[str, float]]:
    """Files below ``directory`` (relative, OS separators) and every folder's modification time."""
    if not os.path.isdir(directory):
        return [], {}
    files, folders = [], {directory: os.path.getmtime(directory)}
    for dirpath, subdirs, filenames in os.walk(directory, followlinks=True):
        subdirs[:] = [d for d in subdirs if d != ".git"]
        files += [os.path.relpath(os.path.join(dirpath, f), directory) for f in filenames]
        for d in subdirs:
            folders[os.path.join(dirpath, d)] = os.path.getmtime(os.path.join(dirpath, d))
    return files, folders


def _fresh_list(folder_name: str) -> tuple[list[str], dict[str, float], float]:
    walks.append(folder_name)
    paths, extensions = folder_names_and_paths[folder_name]
    names, folders = set(), {}
    for path in paths:
        files, found = _walk(path)
        names.update(f for f in files if not extensions or os.path.splitext(f)[1].lower() in extensions)
        folders.update(found)
    return sorted(names), folders, time.perf_counter()


def _cached_list(folder_name: str):
    """The cached list while it is still true: no listed folder changed and no new folder appeared."""
    held = cache_helper.get(folder_name)
    if held is not None:
        return held
    out = filename_list_cache.get(folder_name)
    if out is None:
        return None
    if any(not os.path.isdir(f) or os.path.getmtime(f) != mtime for f, mtime in out[1].items()):
        return None
    if any(os.path.isdir(p) and p not in out[1] for p in folder_names_and_paths[folder_name][0]):
        return None
    return out


def get_filename_list(folder_name: str) -> list[str]:
    """Every file of a name's folders with an accepted extension, sorted; cached as described above."""
    folder_name = map_legacy(folder_name)
    out = _cached_list(folder_name)
    if out is None:
        out = filename_list_cache[folder_name] = _fresh_list(folder_name)
    cache_helper.set(folder_name, out)
    return list(out[0])


class CacheHelper:
    """While entered (ComfyUI's /object_info handler), lists are kept without checking folders."""

    def __init__(self):
        self.cache: dict = {}
        self.active = False

    def get(self, key, default=None):
        return self.cache.get(key, default) if self.active else default

    def set(self, key, value) -> None:
        if self.active:
            self.cache[key] = value

    def __enter__(self):
        self.active = True
        return self

    def __exit__(self, *exc):
        self.active = False
        self.cache.clear()


cache_helper = CacheHelper()
