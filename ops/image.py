"""Image tensor plumbing: ComfyUI's [B,H,W,C] layout <-> torch's [B,C,H,W], PIL <-> tensor, alpha.

Every ImageTune op works on [B,C,H,W] internally; these are the only places that permute.
"""
from __future__ import annotations

import numpy as np
import torch

from ..graph_runtime.errors import NodeInputError


def check_image(image, field: str = "image") -> torch.Tensor:
    """Raise NodeInputError unless ``image`` is a float IMAGE [B,H,W,C] with C in 1..4."""
    if not isinstance(image, torch.Tensor):
        raise NodeInputError(field, f"expected an IMAGE tensor [B,H,W,C], got {type(image).__name__}")
    if image.ndim != 4 or image.shape[-1] not in (1, 2, 3, 4) or 0 in image.shape:
        raise NodeInputError(field, f"expected an IMAGE tensor [B,H,W,C] with C in 1..4, got shape {tuple(image.shape)}")
    if not image.is_floating_point():
        raise NodeInputError(field, f"expected a float IMAGE in 0..1, got dtype {image.dtype}")
    return image


def to_bchw(image: torch.Tensor) -> torch.Tensor:
    """IMAGE [B,H,W,C] -> [B,C,H,W] (a view; no copy)."""
    return image.movedim(-1, 1)


def to_bhwc(image: torch.Tensor) -> torch.Tensor:
    """[B,C,H,W] -> IMAGE [B,H,W,C], made contiguous so consumers get a plain tensor."""
    return image.movedim(1, -1).contiguous()


def split_alpha(image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
    """[B,C,H,W] -> (colour channels, alpha [B,1,H,W] or None); alpha is channel 4 (RGBA) or 2 (LA)."""
    if image.shape[1] in (2, 4):
        return image[:, :-1], image[:, -1:]
    return image, None


def join_alpha(colour: torch.Tensor, alpha: torch.Tensor | None) -> torch.Tensor:
    """Inverse of ``split_alpha``: append the alpha channel when there is one."""
    return colour if alpha is None else torch.cat([colour, alpha.to(colour)], dim=1)


def as_rgb(colour: torch.Tensor) -> torch.Tensor:
    """[B,1|3,H,W] -> [B,3,H,W] (grey is repeated)."""
    return colour.expand(-1, 3, -1, -1) if colour.shape[1] == 1 else colour


def luminance(rgb: torch.Tensor) -> torch.Tensor:
    """Rec. 601 luma of [B,3,H,W] in 0..1 -> [B,1,H,W] (what PIL's convert('L') computes)."""
    weights = torch.tensor([0.299, 0.587, 0.114], device=rgb.device, dtype=rgb.dtype)
    # one weighted pass over the channels (a matrix product), not three products and two sums
    return torch.einsum("bchw,c->bhw", rgb, weights).unsqueeze(1)


def row_histograms(levels: torch.Tensor, bins: int = 256) -> torch.Tensor:
    """Counts [R, bins] of the integer levels 0..bins-1 in each row of [R, N]: one bincount for all rows."""
    rows = levels.shape[0]
    offsets = torch.arange(rows, device=levels.device, dtype=levels.dtype)[:, None] * bins  # own bins per row
    return torch.bincount((levels + offsets).reshape(-1), minlength=rows * bins).view(rows, bins)


def pil_to_array(picture) -> np.ndarray:
    """A PIL image -> float32 array [H,W,C] in 0..1 (C = 3, or 4 with alpha); 16-bit kept exact."""
    mode = picture.mode
    if mode in ("I;16", "I;16B", "I;16L", "I"):
        values = np.asarray(picture, dtype=np.float32)
        scale = 65535.0 if mode.startswith("I;16") or values.max(initial=0) > 255 else 255.0
        grey = np.clip(values / scale, 0.0, 1.0)
        return np.repeat(grey[..., None], 3, axis=2)
    if mode == "F":
        grey = np.clip(np.asarray(picture, dtype=np.float32), 0.0, 1.0)
        return np.repeat(grey[..., None], 3, axis=2)
    has_alpha = "A" in picture.getbands() or (mode == "P" and "transparency" in picture.info)
    picture = picture.convert("RGBA" if has_alpha else "RGB")
    return np.asarray(picture, dtype=np.float32) / 255.0


def tensor_to_pil(image: torch.Tensor):
    """One image [H,W,C] in 0..1 (C = 1, 2, 3 or 4) -> an 8-bit PIL image (L, LA, RGB or RGBA)."""
    from PIL import Image

    array = (image.detach().float().clamp(0, 1) * 255.0).round().to(torch.uint8).cpu().numpy()
    mode = {1: "L", 2: "LA", 3: "RGB", 4: "RGBA"}[array.shape[-1]]
    return Image.fromarray(array[..., 0] if mode == "L" else array, mode=mode)
