"""Weight-free style transfer on [B,3,H,W] RGB in 0..1: colour statistics (Reinhard) and histogram matching.

Histogram matching lives in ``ops/histogram_match.py`` and is re-exported here.

Plus the finishing steps every style method shares: keeping the content's luminance or colour,
and blending with the content by a strength.
"""
from __future__ import annotations

import torch

from .color import SPACES, rgb_to_ycbcr, ycbcr_to_rgb
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
    source = forward(content)
    target = forward(style)
    s_mean, s_std = channel_stats(source)
    t_mean, t_std = channel_stats(target)
    return inverse((source - s_mean) * (t_std / s_std) + t_mean)


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
