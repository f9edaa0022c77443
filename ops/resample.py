"""Resizing [B,C,H,W] tensors on their own device, with PIL's filters (antialiased when shrinking).

``resize`` reproduces ``PIL.Image.resize`` for BILINEAR, BICUBIC and LANCZOS on float images.
Off the CPU, bilinear and bicubic are torch's antialiased ``interpolate``, which computes PIL's
coefficients (a = -0.5, same support and border renormalisation; equal to 1e-15) in a fused
kernel. Lanczos, which torch lacks, and all three on the CPU are one banded matrix product per
axis with PIL's own coefficients (``Resample.c`` precompute_coeffs, see ``ops/banded.py``).
OpenCV's resize is not used: its bicubic has a = -0.75 and neither its cubic nor its Lanczos-4
antialiases when shrinking, so its images differ from PIL's by whole 8-bit levels.
"""
from __future__ import annotations

import functools
import math

import torch
import torch.nn.functional as F

from . import cpu_image as cpu
from .banded import Block, apply_blocks, banded_blocks

PIL_FILTERS = ("bilinear", "bicubic", "lanczos")
TORCH_MODES = ("nearest-exact", "bilinear", "area", "bicubic")



def _triangle(x: torch.Tensor) -> torch.Tensor:
    x = x.abs()
    return torch.where(x < 1.0, 1.0 - x, torch.zeros_like(x))


def _bicubic(x: torch.Tensor, a: float = -0.5) -> torch.Tensor:
    # PIL uses a = -0.5 (Keys); torch's bicubic uses -0.75
    x = x.abs()
    near = ((a + 2.0) * x - (a + 3.0)) * x * x + 1.0
    far = (((x - 5.0) * x + 8.0) * x - 4.0) * a
    return torch.where(x < 1.0, near, torch.where(x < 2.0, far, torch.zeros_like(x)))


def _lanczos3(x: torch.Tensor) -> torch.Tensor:
    return torch.where(x.abs() < 3.0, torch.sinc(x) * torch.sinc(x / 3.0), torch.zeros_like(x))


_KERNELS = {"bilinear": (_triangle, 1.0), "bicubic": (_bicubic, 2.0), "lanczos": (_lanczos3, 3.0)}


def resample_taps(size_in: int, size_out: int, method: str, device=None) -> tuple[torch.Tensor, torch.Tensor]:
    """PIL's filter ``method`` along one axis as taps: (input index [out,K] long, weight [out,K] float64)."""
    kernel, base_support = _KERNELS[method]
    scale = size_in / size_out
    filterscale = max(scale, 1.0)
    support = base_support * filterscale
    centre = (torch.arange(size_out, dtype=torch.float64, device=device) + 0.5) * scale
    lo = torch.trunc(centre - support + 0.5).clamp(min=0)
    hi = torch.trunc(centre + support + 0.5).clamp(max=size_in)
    width = int(math.ceil(support)) * 2 + 1
    x = lo[:, None] + torch.arange(width, dtype=torch.float64, device=device)[None, :]
    weights = kernel((x - centre[:, None] + 0.5) / filterscale)
    weights = torch.where(x < hi[:, None], weights, torch.zeros_like(weights))
    total = weights.sum(1, keepdim=True)
    weights = weights / torch.where(total == 0, torch.ones_like(total), total)
    return x.clamp(max=size_in - 1).long(), weights


@functools.lru_cache(maxsize=32)
def _resample_operator(size_in: int, size_out: int, method: str, device: str, dtype: torch.dtype) -> tuple[Block, ...]:
    """PIL's filter ``method`` from ``size_in`` to ``size_out`` pixels as a cached banded operator."""
    index, weight = resample_taps(size_in, size_out, method)
    rows = torch.arange(size_out)[:, None].expand_as(index)
    return banded_blocks(rows, index, weight, size_out, dtype, device)


def resize(image: torch.Tensor, height: int, width: int, method: str = "lanczos") -> torch.Tensor:
    """Resize [B,C,H,W] (any float dtype, any range) to [B,C,height,width].

    ``method``: "bilinear", "bicubic" or "lanczos" (PIL's filters, antialiased when shrinking),
    or "nearest-exact" / "area" (torch's). Values may overshoot 0..1 with bicubic and lanczos,
    as in PIL; callers clamp.
    """
    if height < 1 or width < 1:
        raise ValueError(f"resize: target size must be at least 1x1, got {width}x{height}")
    _, _, h, w = image.shape
    if (h, w) == (height, width):
        return image.clone()
    if method in ("nearest-exact", "area"):
        return F.interpolate(image, size=(height, width), mode=method)
    if method not in _KERNELS:
        raise ValueError(f"resize: unknown method {method!r}; expected one of {PIL_FILTERS + ('nearest-exact', 'area')}")
    compute = torch.float64 if image.dtype == torch.float64 else torch.float32
    if method != "lanczos" and not cpu.use_library(image):
        # torch's antialiased kernels are PIL's bilinear/bicubic (also when enlarging, unlike antialias=False);
        # on the CPU the banded products below were 1.5-2x faster (bench/image_ops.py)
        out = F.interpolate(image.to(compute), size=(height, width), mode=method, antialias=True, align_corners=False)
        return out.to(image.dtype)
    if cpu.use_library(image):
        return _resize_stripes(image, height, width, method)
    return _resize_banded(image.to(compute), height, width, method).to(image.dtype)


def _resize_banded(image: torch.Tensor, height: int, width: int, method: str) -> torch.Tensor:
    """PIL's filter as one banded product per axis on [B,C,H,W] in its own dtype -> a contiguous [B,C,height,width]."""
    _, _, h, w = image.shape
    device, out = str(image.device), image
    # Shrink first where possible, so the second product works on fewer pixels.
    order = ((2, h, height), (3, w, width)) if height * w <= h * width else ((3, w, width), (2, h, height))
    for dim, size_in, size_out in order:
        if size_in != size_out:
            out = apply_blocks(_resample_operator(size_in, size_out, method, device, image.dtype), out, dim)
    return out.contiguous()


def _resize_stripes(image: torch.Tensor, height: int, width: int, method: str) -> torch.Tensor:
    """``_resize_banded`` on CPU images in stripes of output rows (a stripe's intermediate stays in the cache), each
    written straight into a [B,H,W,C] output, returned as its [B,C,H,W] view (``to_bhwc`` is free). The stripes
    are shared out by ``cpu.run_jobs``: torch's static split of one product over its threads waits for a thread
    that a busy machine holds up, while a held-up thread here delays one stripe (bench/image_ops.py, two threads)."""
    b, c, h, w = image.shape
    out = cpu.empty((b, height, width, c), image.dtype)
    rows = _resample_operator(h, height, method, "cpu", image.dtype) if h != height else _plain_rows(h)
    cols = _resample_operator(w, width, method, "cpu", image.dtype) if w != width else None
    cols_first = cols is not None and height * w > h * width  # shrink first, as _resize_banded does
    stripes = min(STRIPES, max(1, height * width // STRIPE_PIXELS), len(rows))
    per_stripe = -(-len(rows) // stripes)

    def stripe(job: tuple[int, tuple[Block, ...]]) -> None:
        index, blocks = job
        top, bottom = blocks[0].out_start, blocks[-1].out_stop
        lo = min(block.in_start for block in blocks)
        hi = max(block.in_start + (block.out_stop - block.out_start if block.weight is None else block.weight.shape[1])
                 for block in blocks)
        part = image[index:index + 1, :, lo:hi].contiguous()
        if cols_first:
            part = apply_blocks(cols, part, -1)
        if blocks[0].weight is not None:
            local = tuple(block._replace(out_start=block.out_start - top, out_stop=block.out_stop - top,
                                         in_start=block.in_start - lo) for block in blocks)
            part = apply_blocks(local, part, -2)
        if cols is not None and not cols_first:
            part = apply_blocks(cols, part, -1)
        out[index, top:bottom].copy_(part[0].movedim(0, -1))

    cpu.run_jobs(stripe, [(i, rows[s:s + per_stripe]) for i in range(b) for s in range(0, len(rows), per_stripe)])
    return out.movedim(-1, 1)


# Stripes an image is cut into: up to 8 (enough for two threads to even out when one of them is held up),
# of at least 128K output pixels (smaller ones cost more in calls than they gain in cache: /2 of 512² 1.3x slower).
STRIPES = 8
STRIPE_PIXELS = 1 << 17


def _plain_rows(size: int) -> tuple[Block, ...]:
    """Rows taken as they are (an axis that is not resized): blocks of 32 rows with no weight (``None``)."""
    return tuple(Block(start, min(size, start + 32), start, None) for start in range(0, size, 32))


def comfy_scale(image: torch.Tensor, height: int, width: int, method: str, crop: str) -> torch.Tensor:
    """ComfyUI's ``common_upscale`` on [B,C,H,W]: optional centre crop to the target aspect, then resize.

    "lanczos" is PIL's (ComfyUI resizes through PIL); the others are ``F.interpolate`` modes, as in ComfyUI.
    """
    _, _, h, w = image.shape
    if crop == "center":
        old_aspect, new_aspect = w / h, width / height
        if old_aspect > new_aspect:
            x = round((w - w * (new_aspect / old_aspect)) / 2)
            image = image[:, :, :, x:w - x]
        elif old_aspect < new_aspect:
            y = round((h - h * (old_aspect / new_aspect)) / 2)
            image = image[:, :, y:h - y, :]
    if method == "lanczos":
        return resize(image, height, width, "lanczos")
    if method in ("bilinear", "bicubic"):
        return F.interpolate(image, size=(height, width), mode=method, align_corners=False)
    return F.interpolate(image, size=(height, width), mode=method)


def keep_aspect(h: int, w: int, height: int, width: int) -> tuple[int, int]:
    """ComfyUI's rule for a 0 width or height: derive it from the other, keeping the aspect ratio."""
    if width == 0 and height == 0:
        return h, w
    if width == 0:
        width = max(1, round(w * height / h))
    elif height == 0:
        height = max(1, round(h * width / w))
    return height, width


def scaled_size(h: int, w: int, factor: float) -> tuple[int, int]:
    """Target size for a scale factor, at least 1x1."""
    return max(1, int(math.floor(h * factor + 0.5))), max(1, int(math.floor(w * factor + 0.5)))
