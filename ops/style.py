"""Weight-free style transfer on [B,3,H,W] RGB in 0..1: colour statistics (Reinhard) and histogram matching.

Histogram matching lives in ``ops/histogram_match.py`` and is re-exported here.

Plus the finishing steps every style method shares: keeping the content's luminance or colour,
and blending with the content by a strength.
"""
from __future__ import annotations

import math

import cv2
import numpy as np
import torch

from . import cpu_image as cpu
from .color import LMS_FLOOR, SPACES, lalphabeta_matrices, rgb_to_ycbcr, ycbcr_to_rgb
from .histogram_match import histogram_match, per_image_style  # noqa: F401  (re-exported for the style node)


def channel_stats(image: torch.Tensor, eps: float = 1e-6) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-image, per-channel mean and standard deviation of [B,C,H,W] -> two [B,C,1,1]."""
    mean = image.mean(dim=(2, 3), keepdim=True)
    std = image.std(dim=(2, 3), keepdim=True, unbiased=False).clamp(min=eps)
    return mean, std


def reinhard_transfer(content: torch.Tensor, style: torch.Tensor, space: str = "lαβ (Reinhard)") -> torch.Tensor:
    """Reinhard et al. 2001: give ``content`` the per-channel mean and std of ``style`` in a decorrelated space.

    content [B,3,H,W], style [1 or B,3,h,w], RGB 0..1 -> [B,3,H,W] RGB, not clamped.
    ``space``: "lαβ (Reinhard)" (the paper's), "CIELAB" or "RGB".
    """
    forward, inverse = SPACES[space]
    style = per_image_style(style, content.shape[0])
    if space in CPU_SPACES and cpu.use_library(content) and cpu.use_library(style):
        return _reinhard_cpu(content, style, space == "RGB")
    source = forward(content)
    target = forward(style)
    s_mean, s_std = channel_stats(source)
    t_mean, t_std = channel_stats(target)
    return inverse((source - s_mean) * (t_std / s_std) + t_mean)


CPU_SPACES = ("lαβ (Reinhard)", "RGB")  # CIELAB stays on kornia's exact conversion (OpenCV's float CIELAB is approximate)


def _reinhard_cpu(content: torch.Tensor, style: torch.Tensor, rgb: bool) -> torch.Tensor:
    """``reinhard_transfer`` in lαβ or RGB with OpenCV colour transforms, log and exp, one image at a time.

    The statistics' affine map, the inverse rotation and log10's base change are folded into one
    3x4 matrix: an image is eight light passes (transform, floor, log, transform, statistics, transform,
    exp, transform) with no temporaries but one lαβ array.
    """
    rgb_to_lms, to_lab = (m.numpy() for m in lalphabeta_matrices(torch.empty(0, dtype=torch.float64)))
    to_lab = to_lab / math.log(10.0)  # cv2.log is the natural logarithm
    forward = (lambda array: array) if rgb else (lambda array: _to_lalphabeta(array, rgb_to_lms, to_lab))
    targets = [_mean_std(forward(array)) for array in cpu.hwc_arrays(style)]
    out, views = cpu.new_like(content)
    back = np.eye(3) if rgb else np.linalg.inv(to_lab)
    for i, (src, dst) in enumerate(zip(cpu.hwc_arrays(content), views)):
        lab = forward(src)
        (s_mean, s_std), (t_mean, t_std) = _mean_std(lab), targets[i if len(targets) > 1 else 0]
        scale = t_std / s_std
        matrix = back @ np.concatenate([np.diag(scale), (t_mean - s_mean * scale)[:, None]], 1)
        if rgb:
            cv2.transform(lab, matrix, dst=dst)
            continue
        cv2.exp(cv2.transform(lab, matrix, dst=lab), dst=lab)
        cv2.transform(lab, np.linalg.inv(rgb_to_lms), dst=dst)
    return out


def _to_lalphabeta(rgb: np.ndarray, rgb_to_lms: np.ndarray, to_lab: np.ndarray) -> np.ndarray:
    """One [H,W,3] RGB array -> lαβ with natural logarithms (a new array)."""
    lms = cv2.transform(rgb, rgb_to_lms)
    return cv2.transform(cv2.log(np.maximum(lms, LMS_FLOOR, out=lms), dst=lms), to_lab, dst=lms)


def _mean_std(array: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean and standard deviation (population, floored as ``channel_stats``) of one [H,W,3] array."""
    mean, std = cv2.meanStdDev(array)
    return mean[:, 0], np.maximum(std[:, 0], 1e-6)


def keep_from_content(stylized: torch.Tensor, content: torch.Tensor, keep: str) -> torch.Tensor:
    """Take the content's luminance ("luminance") or colour ("colour") back in YCbCr; "none" does nothing."""
    if keep == "none":
        return stylized
    styled, original = rgb_to_ycbcr(stylized), rgb_to_ycbcr(content)
    if keep == "luminance":
        mixed = torch.cat([original[:, :1], styled[:, 1:]], 1)
    elif keep == "colour":
        mixed = torch.cat([styled[:, :1], original[:, 1:]], 1)
    else:
        raise ValueError(f"keep must be 'none', 'luminance' or 'colour', got {keep!r}")
    return ycbcr_to_rgb(mixed)


def blend(content: torch.Tensor, stylized: torch.Tensor, strength: float) -> torch.Tensor:
    """content + strength * (stylized - content); strength 1 is the stylized image."""
    return torch.lerp(content, stylized.to(content), strength)
