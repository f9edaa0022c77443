"""Enhancement ops on [B,C,H,W] float images in 0..1 (C = 1 or 3; alpha is split off by the caller).

Kornia does the colour and filtering work where it has the operation; the blur of the unsharp
mask follows PIL's definition of "radius" (three extended box blurs approximating a Gaussian of
that standard deviation, Gwosdek et al. 2011) so results match ``ImageFilter.UnsharpMask``.
All ops run on the input's device and dtype and return new tensors.
"""
from __future__ import annotations

import functools
import math
import warnings

import torch
import torch.nn.functional as F

from .banded import Block, apply_blocks, banded_blocks
from .color import cielab_to_rgb, rgb_to_cielab
from .image import luminance, row_histograms

BOX_PASSES = 3


def box_radius(sigma: float, passes: int = BOX_PASSES) -> float:
    """The fractional box radius whose ``passes`` repeats approximate a Gaussian of std ``sigma`` (PIL's rule)."""
    sigma2 = sigma * sigma / passes
    length = math.sqrt(12.0 * sigma2 + 1.0)
    whole = math.floor((length - 1.0) / 2.0)
    frac = (2 * whole + 1) * (whole * (whole + 1) - 3 * sigma2) / (6 * (sigma2 - (whole + 1) ** 2))
    return whole + frac


def _box_kernel(radius: float) -> torch.Tensor:
    whole = math.floor(radius)
    frac = radius - whole
    weights = torch.ones(2 * whole + 3, dtype=torch.float64)
    weights[0] = weights[-1] = frac
    return weights / (2 * radius + 1)


def _box_pass(size: int, sigma: float) -> torch.Tensor:
    """One of PIL's box passes along an axis of ``size`` pixels, edges repeated, as a sparse [size, size] matrix."""
    kernel = _box_kernel(box_radius(sigma))
    pad = kernel.numel() // 2
    index = (torch.arange(size)[:, None] + torch.arange(kernel.numel())[None, :] - pad).clamp(0, size - 1)
    rows = torch.arange(size)[:, None].expand_as(index)
    entries = torch.stack([rows.reshape(-1), index.reshape(-1)])
    return torch.sparse_coo_tensor(entries, kernel.expand(size, -1).reshape(-1), (size, size),
                                   check_invariants=True).coalesce()


@functools.lru_cache(maxsize=32)
def blur_operator(size: int, sigma: float, device: str, dtype: torch.dtype) -> tuple[Block, ...]:
    """PIL's three box passes along one axis of ``size`` pixels combined into one banded operator."""
    one = _box_pass(size, sigma)
    with warnings.catch_warnings():
        # sparse x sparse goes through CSR internally, marked beta; the product itself is exact
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta state")
        three = torch.sparse.mm(one, torch.sparse.mm(one, one)).coalesce()
    rows, cols = three.indices()
    return banded_blocks(rows, cols, three.values(), size, dtype, device)


def gaussian_box_blur(image: torch.Tensor, sigma: float) -> torch.Tensor:
    """PIL's GaussianBlur(sigma) on [B,C,H,W]: 3 extended box blurs per axis, edges repeated.

    Each axis is one banded matrix product (the three passes combined), so the cost per pixel
    is the width of the combined kernel and it runs on the image's device.
    """
    if sigma <= 0:
        return image.clone()
    compute = torch.float64 if image.dtype == torch.float64 else torch.float32
    device = str(image.device)
    out = image.to(compute)
    for dim in (3, 2):
        out = apply_blocks(blur_operator(image.shape[dim], float(sigma), device, compute), out, dim)
    return out.contiguous().to(image.dtype)


def unsharp_mask(image: torch.Tensor, radius: float = 2.0, amount: float = 1.5, threshold: float = 3.0) -> torch.Tensor:
    """out = image + amount * (image - blur) where |image - blur| exceeds ``threshold`` (in 8-bit levels), clamped.

    Same parameters as PIL's ``ImageFilter.UnsharpMask(radius, percent=100*amount, threshold)``.
    """
    detail = image - gaussian_box_blur(image, radius)
    # 1 where the detail passes the threshold, 0 elsewhere: one fused multiply-add instead of a where
    passes = (detail.abs() > threshold / 255.0).to(image.dtype)
    return torch.addcmul(image, detail, passes, value=amount).clamp_(0, 1)


def adjust(image: torch.Tensor, brightness: float = 1.0, contrast: float = 1.0, saturation: float = 1.0,
           gamma: float = 1.0) -> torch.Tensor:
    """PIL ImageEnhance-style factors (1 = unchanged), then ``gamma`` (output = input ** (1 / gamma)).

    brightness scales values; contrast blends with the mean grey level; saturation blends with
    each pixel's grey level (no effect on grey images). Clamped to 0..1 after each step, as PIL.
    Each step is one or two passes over the image, writing into its own fresh tensor, never the input.
    """
    out = image.mul(brightness).clamp_(0, 1) if brightness != 1.0 else image
    if contrast != 1.0:
        # the mean grey level is the luma-weighted mean of the channel means: no grey image needed
        means = out.mean(dim=(2, 3))
        mean = luminance(means[..., None, None]) if out.shape[1] == 3 else means[..., None, None]
        out = torch.add(mean * (1.0 - contrast), out, alpha=contrast).clamp_(0, 1)
    if saturation != 1.0 and out.shape[1] == 3:
        out = torch.add(luminance(out).mul_(1.0 - saturation), out, alpha=saturation).clamp_(0, 1)
    if gamma != 1.0:
        out = (image.clamp(0, 1) if out is image else out).pow_(1.0 / gamma)
    return out if out is not image else image.clone()


def auto_contrast(image: torch.Tensor, cutoff: float = 0.0) -> torch.Tensor:
    """Stretch each image's channels so the ``cutoff`` percent darkest/brightest map to 0 and 1 (PIL's autocontrast).

    With a cutoff the bounds come from a 256-bin histogram per channel, as PIL finds them.
    """
    b, c = image.shape[:2]
    flat = image.reshape(b * c, -1).float()
    if cutoff > 0:
        bins = 256
        levels = flat.mul(bins - 1).clamp_(0, bins - 1).add_(0.5).int()  # round(255 x), in place; int32 is enough
        cdf = row_histograms(levels, bins).cumsum(1)
        cut = flat.shape[1] * cutoff / 100.0
        lo = (cdf > cut).float().argmax(1, keepdim=True).to(flat.dtype) / (bins - 1)
        hi = (cdf >= flat.shape[1] - cut).float().argmax(1, keepdim=True).to(flat.dtype) / (bins - 1)
    else:
        lo, hi = flat.amin(1, keepdim=True), flat.amax(1, keepdim=True)
    span = hi - lo
    # rows without any spread stay as they are
    scale = torch.where(span > 0, 1.0 / span.clamp(min=1e-12), torch.ones_like(span))
    shift = torch.where(span > 0, -lo * scale, torch.zeros_like(lo))
    return torch.addcmul(shift, flat, scale).clamp_(0, 1).reshape(image.shape).to(image.dtype)


def clahe(image: torch.Tensor, clip_limit: float = 2.0, grid: int = 8) -> torch.Tensor:
    """Contrast-limited adaptive histogram equalisation (kornia); colour images only change CIELAB L."""
    import kornia

    h, w = image.shape[2:]
    # kornia needs tiles of at least 2x2 pixels: fewer tiles on small images, padding on 1-pixel ones.
    padded = F.pad(image, (0, max(0, 2 - w), 0, max(0, 2 - h)), mode="replicate") if min(h, w) < 2 else image
    tiles = (max(1, min(grid, padded.shape[2] // 2)), max(1, min(grid, padded.shape[3] // 2)))
    if image.shape[1] == 1:
        out = kornia.enhance.equalize_clahe(padded, clip_limit=clip_limit, grid_size=tiles)
    else:
        lab = rgb_to_cielab(padded)
        lightness = kornia.enhance.equalize_clahe(lab[:, :1] / 100.0, clip_limit=clip_limit, grid_size=tiles)
        out = cielab_to_rgb(torch.cat([lightness * 100.0, lab[:, 1:]], 1)).clamp(0, 1)
    return out[..., :h, :w]


def denoise(image: torch.Tensor, method: str = "bilateral", strength: float = 0.1, radius: int = 2) -> torch.Tensor:
    """Smooth noise: "bilateral" (edge-preserving; ``strength`` is the colour sigma), "median" or "gaussian".

    ``radius`` sets the window (2 * radius + 1); borders reflect (repeat on images smaller than that).
    """
    import kornia

    size = 2 * max(1, radius) + 1
    border = "reflect" if min(image.shape[2:]) > size // 2 else "replicate"
    if method == "bilateral":
        sigma_space = (size / 3.0, size / 3.0)
        return kornia.filters.bilateral_blur(image, size, max(strength, 1e-4), sigma_space, border_type=border)
    if method == "median":
        return kornia.filters.median_blur(image, size, border_type=border)
    if method == "gaussian":
        return kornia.filters.gaussian_blur2d(image, (size, size), (size / 3.0, size / 3.0), border_type=border)
    raise ValueError(f"denoise method must be bilateral, median or gaussian, got {method!r}")
