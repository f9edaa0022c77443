"""Weight-free style transfer on [B,3,H,W] RGB in 0..1: colour statistics (Reinhard) and histogram matching.

Plus the finishing steps every style method shares: keeping the content's luminance or colour,
and blending with the content by a strength.
"""
from __future__ import annotations

import torch

from .color import SPACES, rgb_to_ycbcr, ycbcr_to_rgb


def per_image_style(style: torch.Tensor, batch: int) -> torch.Tensor:
    """Broadcast a style batch of 1 to ``batch``; otherwise the sizes must match."""
    if style.shape[0] not in (1, batch):
        raise ValueError(f"style batch of {style.shape[0]} does not match the content batch of {batch} (use 1 or {batch})")
    return style.expand(batch, *style.shape[1:]) if style.shape[0] == 1 else style


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


def _interp(x: torch.Tensor, xp: torch.Tensor, fp: torch.Tensor) -> torch.Tensor:
    """numpy.interp for 1-D tensors (xp increasing)."""
    index = torch.searchsorted(xp, x).clamp(1, xp.numel() - 1)
    x0, x1, y0, y1 = xp[index - 1], xp[index], fp[index - 1], fp[index]
    t = ((x - x0) / (x1 - x0).clamp(min=1e-12)).clamp(0, 1)
    return y0 + t * (y1 - y0)


def match_channel(source: torch.Tensor, template: torch.Tensor) -> torch.Tensor:
    """Map the values of 1-D ``source`` so their empirical CDF is ``template``'s (skimage's algorithm)."""
    values, inverse, counts = torch.unique(source, return_inverse=True, return_counts=True)
    t_values, t_counts = torch.unique(template, return_counts=True)
    s_quantiles = torch.cumsum(counts, 0).to(source.dtype) / source.numel()
    t_quantiles = torch.cumsum(t_counts, 0).to(source.dtype) / template.numel()
    if t_values.numel() == 1:
        return t_values.expand_as(source).clone()
    return _interp(s_quantiles, t_quantiles, t_values)[inverse]


def histogram_match(content: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
    """Per-image, per-channel histogram matching of content [B,C,H,W] to style [1 or B,C,h,w]."""
    style = per_image_style(style, content.shape[0])
    out = torch.empty_like(content)
    for b in range(content.shape[0]):
        for c in range(content.shape[1]):
            out[b, c] = match_channel(content[b, c].flatten(), style[b, c].flatten()).view_as(content[b, c])
    return out


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
