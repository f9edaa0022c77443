"""Loading images from the input folder and saving PNGs (with the workflow embedded) to the output folder.

The plain functions here are shared by the ImageTune nodes and the ComfyUI core look-alikes in
``comfy_core.py``.
"""
from __future__ import annotations

import io
import json
import os
import random
import re
import string
import struct
import zlib
from pathlib import Path
from typing import TYPE_CHECKING

from ..graph_runtime import Input, Node, Output
from ..graph_runtime.atomic import write_new_bytes
from ..graph_runtime import types as T
from ..graph_runtime.errors import NodeInputError
from ..graph_runtime.listings import InputFiles
from ..graph_runtime.paths import name_problem, resolve_inside

if TYPE_CHECKING:
    import torch

# numpy, torch and PIL are imported where the pixels are handled: declaring and validating these
# nodes needs none of them.
_ANNOTATIONS = {" [input]": "input", " [output]": "output", " [temp]": "temp"}


def split_annotation(name: str) -> tuple[str, str]:
    """ComfyUI's annotated file names ("a.png [output]") -> (name, root kind); plain names are "input"."""
    for suffix, kind in _ANNOTATIONS.items():
        if name.endswith(suffix):
            return name[: -len(suffix)], kind
    return name, "input"


def temp_dir(ctx) -> Path:
    """Where previews go: ComfyUI's temp folder inside ComfyUI, else ``<output>/temp``."""
    from ..graph_runtime.comfy_bridge import ComfyContext

    if isinstance(ctx, ComfyContext):
        import folder_paths

        return Path(folder_paths.get_temp_directory())
    return Path(ctx.output_dir) / "temp"


#: pictures the pack ships for its example workflows: an input folder searched after the user's
#: own, so the examples run on a fresh install and a file of the same name in input/ wins
PACK_INPUT_DIR = Path(__file__).resolve().parents[1] / "example_inputs"
#: the picture the example workflows start on, and a new image loader's default
EXAMPLE_INPUT = "imagetune-example.png"


def input_path(ctx, name: str, field: str = "image") -> Path:
    """The file an image input names, inside its root (input, or output/temp when annotated)."""
    relative, kind = split_annotation(name)
    root = {"input": ctx.input_dir, "output": ctx.output_dir, "temp": temp_dir(ctx)}[kind]
    path = resolve_inside(root, relative, field)
    if not path.is_file() and kind == "input":
        shipped = resolve_inside(PACK_INPUT_DIR, relative, field)
        path = shipped if shipped.is_file() else path
    if not path.is_file():
        raise NodeInputError(field, f"no image file {relative!r} in {root}")
    return path


def path_problem(name) -> str | None:
    """A reason a file name from a workflow can never be valid, or None: ``paths.name_problem``
    (absolute, '..', '~', NUL, unencodable text) on the name without its ComfyUI annotation."""
    if not isinstance(name, str) or not name.strip():
        return f"expected a file name, got {name!r}"
    return name_problem(split_annotation(name)[0])


def file_fingerprint(ctx, name) -> object:
    """(mtime_ns, size) of the named input file, so an edited file busts the cache."""
    if not isinstance(name, str):  # ComfyUI's IS_CHANGED leaves out a linked file name
        return None
    try:
        stat = input_path(ctx, name).stat()
    except (NodeInputError, OSError) as exc:
        return f"unreadable: {exc}"
    return (stat.st_mtime_ns, stat.st_size)


#: pixels of one decoded frame: one 8192² image (1 GB as float32 RGB + mask); the same bound as
#: ops.limits.MAX_IMAGE_PIXELS for resize results, and below PIL's 89 M warning threshold
MAX_LOAD_PIXELS = 1 << 26
#: frames x pixels of an animated file: the whole IMAGE batch stays within one 8192² frame's memory
MAX_LOAD_BATCH_PIXELS = 1 << 26
#: frames of an animated file (each costs a decode and a Python step even when tiny)
MAX_LOAD_FRAMES = 4096
#: what PIL raises on a damaged or hostile file (SyntaxError: "broken PNG file"; ValueError: a
#: text chunk past MAX_TEXT_CHUNK; OSError: truncated data)
_DECODE_ERRORS = (OSError, ValueError, SyntaxError, EOFError, struct.error, zlib.error)


def size_problem(width: int, height: int, frames: int) -> str | None:
    """Why an image of ``frames`` frames of width x height is too large to decode, or None."""
    if width * height > MAX_LOAD_PIXELS:
        return f"{width} x {height} = {width * height:,} pixels per frame; expected at most {MAX_LOAD_PIXELS:,}"
    if frames > MAX_LOAD_FRAMES:
        return f"{frames:,} frames; expected at most {MAX_LOAD_FRAMES:,}"
    if frames * width * height > MAX_LOAD_BATCH_PIXELS:
        return (f"{frames:,} frames of {width} x {height} = {frames * width * height:,} pixels in all; "
                f"expected at most {MAX_LOAD_BATCH_PIXELS:,}")
    return None


def open_checked(path: Path, field: str = "image"):
    """Open an image lazily (header only) and refuse it before decoding when it is too large."""
    import warnings

    from PIL import Image, UnidentifiedImageError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # our own limit is lower
            picture = Image.open(path)
    except UnidentifiedImageError:
        raise NodeInputError(field, f"{path.name} is not an image PIL can read") from None
    except Image.DecompressionBombError as exc:  # past twice PIL's limit: PIL refuses before we can
        found = re.search(r"\((\d+) pixels\)", str(exc))
        size = f"{int(found.group(1)):,} pixels per frame" if found else str(exc)
        raise NodeInputError(field, f"{path.name} is too large to load: {size}; expected at most "
                                    f"{MAX_LOAD_PIXELS:,}") from None
    except _DECODE_ERRORS as exc:
        raise NodeInputError(field, f"{path.name} is damaged: {type(exc).__name__}: {exc}") from None
    try:
        frames = int(getattr(picture, "n_frames", 1))  # from the header (APNG acTL, WebP, GIF blocks)
    except _DECODE_ERRORS as exc:
        picture.close()
        raise NodeInputError(field, f"{path.name} is damaged: {type(exc).__name__}: {exc}") from None
    problem = size_problem(picture.width, picture.height, frames)
    if problem:
        picture.close()
        raise NodeInputError(field, f"{path.name} is too large to load: {problem}")
    return picture


def load_image_file(path: Path, field: str = "image") -> tuple[torch.Tensor, torch.Tensor]:
    """Read PNG/JPEG/WebP/... -> (IMAGE [F,H,W,3], MASK [F,H,W] = 1 - alpha), EXIF orientation applied.

    Frames of an animated file become the batch (frames of another size than the first are skipped,
    as ComfyUI does). Sizes past MAX_LOAD_PIXELS / MAX_LOAD_BATCH_PIXELS / MAX_LOAD_FRAMES are
    refused from the header, before any pixel is decoded.
    """
    import numpy as np
    import torch
    from PIL import ImageOps, ImageSequence

    from ..ops.image import pil_to_array

    picture = open_checked(path, field)
    images, masks = [], []
    with picture:
        try:
            for frame in ImageSequence.Iterator(picture):
                frame = ImageOps.exif_transpose(frame)
                array = pil_to_array(frame)
                if images and array.shape[:2] != images[0].shape[:2]:
                    continue
                rgb, alpha = array[..., :3], array[..., 3] if array.shape[-1] == 4 else None
                images.append(rgb)
                masks.append(1.0 - alpha if alpha is not None else np.zeros(rgb.shape[:2], np.float32))
        except _DECODE_ERRORS as exc:
            raise NodeInputError(field, f"{path.name} is damaged: {type(exc).__name__}: {exc}") from None
    return torch.from_numpy(np.stack(images)), torch.from_numpy(np.stack(masks))


def output_folder(root: Path, prefix: str) -> tuple[Path, str, str]:
    """Split a save prefix ("sub/name") into (folder inside root, file stem, subfolder); refuse escapes."""
    problem = path_problem(prefix)
    if problem:
        raise NodeInputError("filename_prefix", problem)
    normal = prefix.replace("\\", "/")
    subfolder, _, stem = normal.rpartition("/")
    if not stem or stem in (".",):
        raise NodeInputError("filename_prefix", f"expected a file name after the last '/', got {prefix!r}")
    folder = resolve_inside(root, subfolder or ".", "filename_prefix")
    if folder.exists() and not folder.is_dir():
        raise NodeInputError("filename_prefix", f"{subfolder!r} exists and is not a folder")
    return folder, stem, os.path.normpath(subfolder) if subfolder else ""


def next_counter(folder: Path, stem: str) -> int:
    """One past the largest N of existing ``<stem>_<N>_.*`` files (ComfyUI's numbering), or 1."""
    pattern = re.compile(re.escape(os.path.normcase(stem)) + r"_(\d+)_\.[^.]+$")
    best = 0
    if folder.is_dir():
        for entry in os.listdir(folder):
            found = pattern.match(os.path.normcase(entry))
            if found:
                best = max(best, int(found.group(1)))
    return best + 1


def png_metadata(prompt, extra_pnginfo):
    """ComfyUI's PNG text chunks: ``prompt`` (API JSON) and one per extra_pnginfo key (``workflow``)."""
    from PIL.PngImagePlugin import PngInfo

    info = PngInfo()
    if prompt is not None:
        info.add_text("prompt", json.dumps(prompt))
    for key, value in (extra_pnginfo or {}).items():
        info.add_text(key, json.dumps(value))
    return info


def encode_png(picture, **save_kwargs) -> bytes:
    """A PIL image as PNG file bytes (encoded in memory, so only finished files reach the disk)."""
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG", **save_kwargs)
    return buffer.getvalue()


def save_images(images: torch.Tensor, root: Path, prefix: str, *, kind: str, prompt=None,
                extra_pnginfo=None, compress_level: int = 4) -> list[dict]:
    """Save each image of IMAGE [B,H,W,C] as ``<prefix>_<NNNNN>_.png`` under root; return UI entries.

    Each file is claimed under a name no file has yet (another run saving the same prefix at the
    same time takes the next number instead of overwriting), and has a normal file's mode.
    """
    from ..ops.image import check_image, tensor_to_pil

    check_image(images, "images")
    folder, stem, subfolder = output_folder(Path(root), prefix)
    folder.mkdir(parents=True, exist_ok=True)
    counter = next_counter(folder, stem)
    metadata = png_metadata(prompt, extra_pnginfo)
    results = []
    for index in range(images.shape[0]):
        name = stem.replace("%batch_num%", str(index))
        data = encode_png(tensor_to_pil(images[index]), pnginfo=metadata, compress_level=compress_level)
        target, counter = write_new_bytes(lambda n: folder / f"{name}_{n:05}_.png", data, counter)
        results.append({"filename": target.name, "subfolder": subfolder, "type": kind})
        counter += 1
    return results


def metadata_disabled(ctx) -> bool:
    """True inside a ComfyUI started with --disable-metadata (its PNGs then carry no workflow)."""
    from ..graph_runtime.comfy_bridge import ComfyContext

    if not isinstance(ctx, ComfyContext):
        return False
    try:
        from comfy.cli_args import args
    except ImportError:
        return False
    return bool(getattr(args, "disable_metadata", False))


def save_output(ctx, images, prefix: str) -> dict:
    """SaveImage's work: PNGs in the output folder with the workflow embedded; the UI dict."""
    embed = not metadata_disabled(ctx)
    found = save_images(images, ctx.output_dir, prefix, kind="output", prompt=ctx.prompt if embed else None,
                        extra_pnginfo=ctx.extra_pnginfo if embed else None)
    return {"ui": {"images": found}, "result": ()}


def save_preview(ctx, images, prefix: str = "ImageTune") -> dict:
    """PreviewImage's work: fast PNGs in the temp folder, with a random suffix as ComfyUI uses."""
    suffix = "_temp_" + "".join(random.choice(string.ascii_lowercase) for _ in range(5))
    embed = not metadata_disabled(ctx)
    found = save_images(images, temp_dir(ctx), prefix + suffix, kind="temp", prompt=ctx.prompt if embed else None,
                        extra_pnginfo=ctx.extra_pnginfo if embed else None, compress_level=1)
    return {"ui": {"images": found}, "result": ()}


class LoadImageNode(Node):
    """Load an image from the input folder as IMAGE, with its alpha as MASK (1 where transparent)."""

    node_id = "ImageTuneLoadImage"
    category = "ImageTune/image"
    inputs = (Input("image", T.COMBO, default=EXAMPLE_INPUT, choices=(EXAMPLE_INPUT,), listing=InputFiles(),
                    open=True, image_upload=True,
                    tooltip="An image in the input folder (PNG, JPEG, WebP, ...; 'sub/name.png' in a subfolder, "
                            "'name.png [output]' from the output folder); upload one with the button. "
                            f"{EXAMPLE_INPUT} ships with the pack."),)
    outputs = (Output(T.IMAGE, "image", "RGB image [1,H,W,3] (frames of an animation form the batch)"),
               Output(T.MASK, "mask", "1 - alpha (1 where transparent); zeros without alpha"))

    def run(self, ctx, image):
        return load_image_file(input_path(ctx, image))

    @classmethod
    def fingerprint(cls, ctx, image=None, **_):
        return file_fingerprint(ctx, image)

    @classmethod
    def check_inputs(cls, image=None, **_):
        problem = path_problem(image) if image is not None else None
        return [("image", problem)] if problem else []


class SaveImageNode(Node):
    """Save images as PNG files in the output folder, with the workflow embedded as ComfyUI does."""

    node_id = "ImageTuneSaveImage"
    category = "ImageTune/image"
    inputs = (Input("images", T.IMAGE),
              Input("filename_prefix", T.STRING, default="ImageTune",
                    tooltip="File name prefix; may contain a subfolder ('runs/cat'). Files are <prefix>_00001_.png, ..."))
    outputs = ()
    output_node = True

    def run(self, ctx, images, filename_prefix):
        return save_output(ctx, images, filename_prefix)

    @classmethod
    def check_inputs(cls, filename_prefix=None, **_):
        problem = path_problem(filename_prefix) if filename_prefix is not None else None
        return [("filename_prefix", problem)] if problem else []


class PreviewImageNode(Node):
    """Show images without keeping them: fast PNGs in the temp folder."""

    node_id = "ImageTunePreviewImage"
    category = "ImageTune/image"
    inputs = (Input("images", T.IMAGE),)
    outputs = ()
    output_node = True

    def run(self, ctx, images):
        return save_preview(ctx, images)


NODES = (LoadImageNode, SaveImageNode, PreviewImageNode)
