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


def _quantiles(sorted_rows: torch.Tensor) -> torch.Tensor:
    """For each sorted value, the fraction of its row that is <= it (ties share their group's end)."""
    n = sorted_rows.shape[1]
    position = torch.arange(1, n + 1, device=sorted_rows.device).expand_as(sorted_rows)
    last_of_group = torch.ones_like(sorted_rows, dtype=torch.bool)
    last_of_group[:, :-1] = sorted_rows[:, 1:] != sorted_rows[:, :-1]
    # each value's group ends at the next group end to its right: a reversed running minimum
    ends = torch.where(last_of_group, position, torch.full_like(position, n)).flip(1).cummin(1).values.flip(1)
    return ends.to(sorted_rows.dtype) / n


def _interp_rows(x: torch.Tensor, xp: torch.Tensor, fp: torch.Tensor) -> torch.Tensor:
    """numpy.interp row by row for [R,N] queries on [R,M] increasing (non-strictly) points."""
    xp, x = xp.contiguous(), x.contiguous()
    index = torch.searchsorted(xp, x).clamp(1, xp.shape[1] - 1)
    x0, x1 = xp.gather(1, index - 1), xp.gather(1, index)
    y0, y1 = fp.gather(1, index - 1), fp.gather(1, index)
    t = ((x - x0) / (x1 - x0).clamp(min=1e-12)).clamp(0, 1)
    return torch.where(x <= xp[:, :1], fp[:, :1], y0 + t * (y1 - y0))


def histogram_match(content: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
    """Per-image, per-channel histogram matching of content [B,C,H,W] to style [1 or B,C,h,w].

    skimage's ``match_histograms``: each content value goes to the style value at the same
    quantile (interpolated), ties sharing one quantile; all channels at once with batched sorts.
    """
    style = per_image_style(style, content.shape[0])
    rows = content.shape[0] * content.shape[1]
    source = content.reshape(rows, -1)
    s_sorted, order = source.sort(dim=1)
    t_sorted = style.reshape(rows, -1).to(content.dtype).sort(dim=1).values
    mapped = _interp_rows(_quantiles(s_sorted), _quantiles(t_sorted), t_sorted)
    return torch.empty_like(source).scatter_(1, order, mapped).view_as(content)


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
