"""Colour spaces on [B,3,H,W] RGB tensors in 0..1: Reinhard's lαβ, YCbCr (JPEG's, as kornia's) and CIELAB (kornia's).

Every function works on the input's device and dtype and never modifies its input.
"""
from __future__ import annotations

import torch

# Reinhard et al. 2001, eq. 1-6: RGB -> LMS, log10, then the decorrelating lαβ rotation.
_RGB_TO_LMS = ((0.3811, 0.5783, 0.0402), (0.1967, 0.7244, 0.0782), (0.0241, 0.1288, 0.8444))
_LOG_LMS_TO_LAB = ((1.0, 1.0, 1.0), (1.0, 1.0, -2.0), (1.0, -1.0, 0.0))
_LAB_SCALE = (3 ** -0.5, 6 ** -0.5, 2 ** -0.5)
# Black has no logarithm; LMS below this floor is clamped (about 1/1000 of white).
LMS_FLOOR = 1e-3


def _mix(matrix: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
    return torch.einsum("ij,bjhw->bihw", matrix, image)


def lalphabeta_matrices(like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Reinhard's RGB -> LMS matrix and the log-LMS -> lαβ rotation, in ``like``'s dtype and device."""
    rgb_to_lms = torch.tensor(_RGB_TO_LMS, dtype=torch.float64)
    to_lab = torch.diag(torch.tensor(_LAB_SCALE, dtype=torch.float64)) @ torch.tensor(_LOG_LMS_TO_LAB, dtype=torch.float64)
    return rgb_to_lms.to(like), to_lab.to(like)


def rgb_to_lalphabeta(rgb: torch.Tensor) -> torch.Tensor:
    """RGB [B,3,H,W] in 0..1 -> Reinhard's lαβ [B,3,H,W] (l about -3..0 for 0..1 input)."""
    rgb_to_lms, to_lab = lalphabeta_matrices(rgb)
    lms = _mix(rgb_to_lms, rgb).clamp(min=LMS_FLOOR)
    return _mix(to_lab, torch.log10(lms))


def lalphabeta_to_rgb(lab: torch.Tensor) -> torch.Tensor:
    """Reinhard's lαβ [B,3,H,W] -> RGB [B,3,H,W] (not clamped: out-of-gamut values stay visible)."""
    rgb_to_lms, to_lab = lalphabeta_matrices(lab)
    log_lms = _mix(torch.linalg.inv(to_lab.double()).to(lab), lab)
    return _mix(torch.linalg.inv(rgb_to_lms.double()).to(lab), torch.pow(10.0, log_lms))


def rgb_to_cielab(rgb: torch.Tensor) -> torch.Tensor:
    """sRGB [B,3,H,W] in 0..1 -> CIELAB (L 0..100, a/b about -128..127), D65, via kornia."""
    import kornia

    return kornia.color.rgb_to_lab(rgb.clamp(0, 1))


def cielab_to_rgb(lab: torch.Tensor) -> torch.Tensor:
    """CIELAB [B,3,H,W] -> sRGB [B,3,H,W], not clipped to 0..1."""
    import kornia

    return kornia.color.lab_to_rgb(lab, clip=False)


def rgb_to_ycbcr(rgb: torch.Tensor) -> torch.Tensor:
    """RGB [B,3,H,W] -> YCbCr (JPEG's, all channels 0..1; kornia's coefficients): one 3x3 mix and an offset.

    Written here rather than called in kornia, so that a style run needs no kornia import (about a second).
    """
    matrix = torch.tensor(_RGB_TO_YCBCR, dtype=torch.float64).to(rgb)
    return _mix(matrix, rgb).add_(_ycbcr_offset(rgb))


def ycbcr_to_rgb(ycbcr: torch.Tensor) -> torch.Tensor:
    """YCbCr [B,3,H,W] -> RGB [B,3,H,W] clipped to 0..1, as kornia's (the exact inverse of ``rgb_to_ycbcr`` in gamut)."""
    inverse = torch.linalg.inv(torch.tensor(_RGB_TO_YCBCR, dtype=torch.float64)).to(ycbcr)
    return _mix(inverse, ycbcr - _ycbcr_offset(ycbcr)).clamp_(0, 1)


# Y = Rec. 601 luma; Cb = 0.564 (B - Y) + 0.5; Cr = 0.713 (R - Y) + 0.5
_RGB_TO_YCBCR = ((0.299, 0.587, 0.114),
                 (-0.299 * 0.564, -0.587 * 0.564, (1 - 0.114) * 0.564),
                 ((1 - 0.299) * 0.713, -0.587 * 0.713, -0.114 * 0.713))


def _ycbcr_offset(like: torch.Tensor) -> torch.Tensor:
    return torch.tensor([0.0, 0.5, 0.5], dtype=like.dtype, device=like.device).view(1, 3, 1, 1)


SPACES = {
    "lαβ (Reinhard)": (rgb_to_lalphabeta, lalphabeta_to_rgb),
    "CIELAB": (rgb_to_cielab, cielab_to_rgb),
    "RGB": (lambda x: x, lambda x: x),
}
