"""Enhancement ops on [B,C,H,W] float images in 0..1 (C = 1 or 3; alpha is split off by the caller).

Each op has two implementations with the same definition: on CPU float32 tensors OpenCV and
numpy on zero-copy [H,W,C] views (``ops/cpu_image.py``; measured fastest, bench/image_ops.py),
elsewhere torch/kornia kernels that stay on the tensor's device. The blur of the unsharp mask
follows PIL's definition of "radius" (three extended box blurs approximating a Gaussian of that
standard deviation, Gwosdek et al. 2011) so results match ``ImageFilter.UnsharpMask``.
All ops run on the input's device and dtype and return new tensors.
"""
from __future__ import annotations

import functools
import math
import warnings

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from . import cpu_image as cpu
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
    if cpu.use_library(image):
        out, views = cpu.new_like(image)
        for src, dst in zip(cpu.hwc_arrays(image), views):
            _box_blur_cpu(src, sigma, dst)
        return out
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
    if cpu.use_library(image):
        return _unsharp_mask_cpu(image, radius, amount, threshold)
    detail = image - gaussian_box_blur(image, radius)
    # 1 where the detail passes the threshold, 0 elsewhere: one fused multiply-add instead of a where
    passes = (detail.abs() > threshold / 255.0).to(image.dtype)
    return torch.addcmul(image, detail, passes, value=amount).clamp_(0, 1)


def _unsharp_mask_cpu(image: torch.Tensor, radius: float, amount: float, threshold: float) -> torch.Tensor:
    """``unsharp_mask`` with OpenCV's separable filter for PIL's box passes and numpy for the rest, in place."""
    out, views = cpu.new_like(image)
    for src, dst in zip(cpu.hwc_arrays(image), views):
        detail = _box_blur_cpu(src, radius) if radius > 0 else src.copy()
        np.subtract(src, detail, out=detail)
        passes = np.greater(np.abs(detail, out=dst), threshold / 255.0)  # dst as scratch until the sum below
        np.multiply(detail, passes, out=detail)
        np.multiply(detail, np.float32(amount), out=detail)
        cpu.clamp_(np.add(src, detail, out=dst))
    return out


def _box_blur_cpu(src: np.ndarray, sigma: float, dst: np.ndarray | None = None) -> np.ndarray:
    """PIL's GaussianBlur(sigma) of one [H,W(,C)] float32 array: three box passes per axis, edges repeated, into ``dst``."""
    kernel = _box_kernel(box_radius(sigma)).numpy().astype(np.float32)
    first = cv2.sepFilter2D(src, -1, kernel, kernel, borderType=cv2.BORDER_REPLICATE)
    second = cv2.sepFilter2D(first, -1, kernel, kernel, borderType=cv2.BORDER_REPLICATE)
    return cv2.sepFilter2D(second, -1, kernel, kernel, dst=first if dst is None else dst, borderType=cv2.BORDER_REPLICATE)


def adjust(image: torch.Tensor, brightness: float = 1.0, contrast: float = 1.0, saturation: float = 1.0,
           gamma: float = 1.0) -> torch.Tensor:
    """PIL ImageEnhance-style factors (1 = unchanged), then ``gamma`` (output = input ** (1 / gamma)).

    brightness scales values; contrast blends with the mean grey level; saturation blends with
    each pixel's grey level (no effect on grey images). Clamped to 0..1 after each step, as PIL.
    Each step is one or two passes over the image, writing into its own fresh tensor, never the input.
    """
    if cpu.use_library(image):
        return _adjust_cpu(image, brightness, contrast, saturation, gamma)
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


def _adjust_cpu(image: torch.Tensor, brightness: float, contrast: float, saturation: float, gamma: float) -> torch.Tensor:
    """``adjust`` with OpenCV/numpy: each step reads the last result (the input first) and writes the output."""
    out, views = cpu.new_like(image)
    grey = np.array(LUMA if image.shape[1] == 3 else [1.0])
    for src, dst in zip(cpu.hwc_arrays(image), views):
        current = src
        if brightness != 1.0:
            current = cpu.clamp_(np.multiply(src, np.float32(brightness), out=dst))
        if contrast != 1.0:  # one scalar multiply-add: OpenCV's addWeighted is 3x faster than a 3x4 transform
            mean = float(grey @ np.array(cv2.mean(current)[:grey.size]))
            current = cpu.clamp_(cv2.addWeighted(current, contrast, current, 0.0, (1.0 - contrast) * mean, dst=dst))
        if saturation != 1.0 and grey.size == 3:  # blend with each pixel's grey (Rec. 601, as LUMA)
            luma = cv2.cvtColor(cv2.cvtColor(current, cv2.COLOR_RGB2GRAY), cv2.COLOR_GRAY2RGB)
            current = cpu.clamp_(cv2.addWeighted(current, saturation, luma, 1.0 - saturation, 0.0, dst=dst))
        if gamma != 1.0:
            current = _gamma_cpu(current, gamma, dst)
        if current is src:
            np.copyto(dst, src)
    return out


LUMA = (0.299, 0.587, 0.114)  # Rec. 601, as ``luminance`` and PIL's convert("L")


def _gamma_cpu(array: np.ndarray, gamma: float, dst: np.ndarray) -> np.ndarray:
    """dst = clamp(array) ** (1 / gamma): a 256-entry float table on 8-bit levels (exact), numpy's power otherwise."""
    levels = cpu.eight_bit(array)
    if levels is not None:
        return cv2.LUT(levels, np.power(cpu.LEVELS, np.float32(1.0 / gamma)), dst=dst)
    return np.power(np.clip(array, 0.0, 1.0, out=dst), np.float32(1.0 / gamma), out=dst)


def auto_contrast(image: torch.Tensor, cutoff: float = 0.0) -> torch.Tensor:
    """Stretch each image's channels so the ``cutoff`` percent darkest/brightest map to 0 and 1 (PIL's autocontrast).

    With a cutoff the bounds come from a 256-bin histogram per channel, as PIL finds them.
    """
    if cpu.use_library(image):
        return _auto_contrast_cpu(image, cutoff)
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


def _auto_contrast_cpu(image: torch.Tensor, cutoff: float) -> torch.Tensor:
    """``auto_contrast`` with OpenCV: bounds from 8-bit histograms (or min/max), the stretch one colour transform."""
    out, views = cpu.new_like(image)
    for src, dst in zip(cpu.hwc_arrays(image), views):
        lo, hi = _cut_bounds(cpu.level_counts(cpu.rounded_levels(src)), cutoff) if cutoff > 0 else _min_max(src)
        span = hi - lo
        scale = np.where(span > 0, 1.0 / np.maximum(span, 1e-12), 1.0)  # channels without any spread stay as they are
        shift = np.where(span > 0, -lo * scale, 0.0)
        cpu.clamp_(cv2.transform(src, np.concatenate([np.diag(scale), shift[:, None]], 1), dst=dst))
    return out


def _min_max(array: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel minimum and maximum of one [H,W(,C)] array (float64 [C] each)."""
    pixels = array.reshape(-1, 1 if array.ndim == 2 else array.shape[-1])
    return (cv2.reduce(pixels, 0, cv2.REDUCE_MIN)[0].astype(np.float64),
            cv2.reduce(pixels, 0, cv2.REDUCE_MAX)[0].astype(np.float64))


def _cut_bounds(counts: np.ndarray, cutoff: float) -> tuple[np.ndarray, np.ndarray]:
    """PIL's autocontrast bounds from counts [C, 256]: the levels where ``cutoff`` percent lies below / above."""
    cdf = counts.cumsum(1)
    cut = cdf[:, -1:] * cutoff / 100.0
    return (cdf > cut).argmax(1) / 255.0, (cdf >= cdf[:, -1:] - cut).argmax(1) / 255.0


def clahe(image: torch.Tensor, clip_limit: float = 2.0, grid: int = 8) -> torch.Tensor:
    """Contrast-limited adaptive histogram equalisation (OpenCV's on the CPU, kornia's elsewhere); colour images only change CIELAB L.

    kornia's follows OpenCV's clip limit and residual spreading on 256 levels of L, but interpolates
    between tiles half a pixel earlier; OpenCV's runs on 8-bit CIELAB and returns 8-bit levels.
    The two agree to about 2 levels on average (tests/test_enhance.py).
    """
    h, w = image.shape[2:]
    # kornia needs tiles of at least 2x2 pixels: fewer tiles on small images, padding on 1-pixel ones.
    tiles = (max(1, min(grid, max(h, 2) // 2)), max(1, min(grid, max(w, 2) // 2)))
    if cpu.use_library(image):
        return _clahe_cpu(image, clip_limit, tiles)
    import kornia

    padded = F.pad(image, (0, max(0, 2 - w), 0, max(0, 2 - h)), mode="replicate") if min(h, w) < 2 else image
    if image.shape[1] == 1:
        out = kornia.enhance.equalize_clahe(padded, clip_limit=clip_limit, grid_size=tiles)
    else:
        lab = rgb_to_cielab(padded)
        lightness = kornia.enhance.equalize_clahe(lab[:, :1] / 100.0, clip_limit=clip_limit, grid_size=tiles)
        out = cielab_to_rgb(torch.cat([lightness * 100.0, lab[:, 1:]], 1)).clamp(0, 1)
    return out[..., :h, :w]


def _clahe_cpu(image: torch.Tensor, clip_limit: float, tiles: tuple[int, int]) -> torch.Tensor:
    """``clahe`` with OpenCV on 8-bit levels: RGB -> 8-bit CIELAB, CLAHE on L, back, into the float output.

    OpenCV's CLAHE works on 8-bit L whatever the input, so the colour conversions run on 8 bits too
    (2x faster than its float CIELAB, itself approximate); a and b move by at most half a unit.
    """
    equalise = cv2.createCLAHE(clipLimit=clip_limit, tileGridSize=(tiles[1], tiles[0]))
    out, views = cpu.new_like(image)
    for src, dst in zip(cpu.hwc_arrays(image), views):
        levels = cpu.rounded_levels(src)
        if levels.ndim == 2:
            cpu.from_levels(equalise.apply(levels), dst)
            continue
        lab = cv2.cvtColor(levels, cv2.COLOR_RGB2Lab)
        cv2.insertChannel(equalise.apply(cv2.extractChannel(lab, 0)), lab, 0)
        cpu.from_levels(cv2.cvtColor(lab, cv2.COLOR_Lab2RGB, dst=levels), dst)
    return out


def denoise(image: torch.Tensor, method: str = "bilateral", strength: float = 0.1, radius: int = 2) -> torch.Tensor:
    """Smooth noise: "bilateral" (edge-preserving; ``strength`` is the colour sigma), "median" or "gaussian".

    ``radius`` sets the window (2 * radius + 1); borders reflect (repeat on images smaller than that).
    The bilateral filter is OpenCV's definition on every device: a round window, the colour
    distance the sum of the channels' absolute differences.
    """
    if method not in ("bilateral", "median", "gaussian"):
        raise ValueError(f"denoise method must be bilateral, median or gaussian, got {method!r}")
    size = 2 * max(1, radius) + 1
    if cpu.use_library(image):
        return _denoise_cpu(image, method, max(strength, 1e-4), size)
    import kornia

    border = "reflect" if min(image.shape[2:]) > size // 2 else "replicate"
    if method == "bilateral":
        return bilateral(image, size, max(strength, 1e-4), size / 3.0, border)
    if method == "median":
        return kornia.filters.median_blur(image, size, border_type=border)
    return kornia.filters.gaussian_blur2d(image.contiguous(), (size, size), (size / 3.0, size / 3.0), border_type=border)


def bilateral(image: torch.Tensor, size: int, sigma_colour: float, sigma_space: float, border: str) -> torch.Tensor:
    """OpenCV's bilateralFilter in torch ops on [B,C,H,W]: one pass per offset of the round window, no unfolded copy."""
    r = size // 2
    h, w = image.shape[2:]
    padded = F.pad(image, (r, r, r, r), mode=border)
    total, weights = torch.zeros_like(image), torch.zeros_like(image[:, :1])
    for dy in range(-r, r + 1):
        for dx in range(-r, r + 1):
            if dy * dy + dx * dx > r * r:  # OpenCV keeps the offsets within the radius
                continue
            near = padded[:, :, r + dy:r + dy + h, r + dx:r + dx + w]
            distance = (near - image).abs().sum(1, keepdim=True)
            weight = distance.square_().mul_(-0.5 / sigma_colour ** 2).exp_()
            weight.mul_(math.exp(-(dy * dy + dx * dx) / (2 * sigma_space ** 2)))
            total.addcmul_(near, weight)
            weights += weight
    return total.div_(weights)


def _denoise_cpu(image: torch.Tensor, method: str, strength: float, size: int) -> torch.Tensor:
    """``denoise`` with OpenCV (medians of larger windows off the 8-bit grid with scipy), into the output."""
    out, views = cpu.new_like(image)
    border = cpu.border(image, size // 2)
    for src, dst in zip(cpu.hwc_arrays(image), views):
        if method == "gaussian":
            cv2.GaussianBlur(src, (size, size), size / 3.0, dst=dst, sigmaY=size / 3.0, borderType=border)
        elif method == "bilateral":
            cv2.bilateralFilter(src, size, strength, size / 3.0, dst=dst, borderType=border)
        else:
            _median_cpu(src, size, border, dst)
    return out


def _median_cpu(src: np.ndarray, size: int, border: int, dst: np.ndarray) -> None:
    """Median of ``size`` x ``size`` windows: OpenCV on 8-bit levels (exact: a median is one of its values) or on
    float32 up to 5x5; scipy beyond (OpenCV's float median stops at 5x5). Borders as ``border``."""
    r = size // 2
    mirror = r > 0 and border != cv2.BORDER_REPLICATE  # medianBlur always repeats the edge: mirror by hand where asked
    # the 8-bit check writes its levels straight inside the padded buffer the median reads (no padding copy)
    padded = np.empty((src.shape[0] + 2 * r, src.shape[1] + 2 * r) + src.shape[2:], np.uint8) if mirror else None
    levels = cpu.eight_bit(src, out=padded[r:-r, r:-r] if mirror else None)
    if levels is None:
        if size > 5:
            import scipy.ndimage

            mode = "mirror" if border == cv2.BORDER_REFLECT_101 else "nearest"
            scipy.ndimage.median_filter(src, size=(size, size, 1)[:src.ndim], mode=mode, output=dst)
        else:
            median = cv2.medianBlur(cv2.copyMakeBorder(src, r, r, r, r, border), size)[r:-r, r:-r] if mirror else cv2.medianBlur(src, size)
            np.copyto(dst, median)
        return
    median = cv2.medianBlur(cpu.pad_reflect_(padded, r), size)[r:-r, r:-r] if mirror else cv2.medianBlur(levels, size)
    cpu.from_levels(median, dst)
