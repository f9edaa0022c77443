"""Banded linear operators along one image axis (resampling filters, blurs) as a few dense matrix blocks.

A separable filter along an axis is a matrix [out, in] whose non-zeros sit in a narrow band. Cut
into blocks of consecutive output rows, each block touches only a short run of input columns, so
the product becomes a handful of small dense matrix multiplications: BLAS speed on the CPU, one
kernel per block on a GPU, exact weights everywhere (borders included). On this 2-core machine
PIL's 3-pass blur ran 2.4x faster than as one ``torch.sparse.mm`` per axis (same process, one
thread); bench/image_ops.py and docs/image.md have the op timings.
"""
from __future__ import annotations

from typing import NamedTuple

import torch


class Block(NamedTuple):
    """Output rows ``[out_start, out_stop)`` = ``weight`` [rows, cols] @ input ``[in_start, in_start + cols)``."""

    out_start: int
    out_stop: int
    in_start: int
    weight: torch.Tensor


def block_rows(size_out: int, size_in: int) -> int:
    """Output rows per block: 32 when shrinking or blurring, about 64 input columns when enlarging (measured best)."""
    return round(64 * size_out / size_in) if size_out > size_in else 32


def banded_blocks(rows: torch.Tensor, cols: torch.Tensor, values: torch.Tensor, size_out: int,
                  dtype: torch.dtype, device: torch.device | str) -> tuple[Block, ...]:
    """Blocks of the matrix [size_out, *] given by its entries (repeated positions are summed)."""
    rows, cols, values = rows.reshape(-1).cpu(), cols.reshape(-1).cpu(), values.reshape(-1).cpu().double()
    step = block_rows(size_out, int(cols.max()) + 1)
    blocks = []
    for start in range(0, size_out, step):
        stop = min(size_out, start + step)
        keep = (rows >= start) & (rows < stop)
        if not keep.any():
            blocks.append(Block(start, stop, 0, torch.zeros(stop - start, 1, dtype=dtype, device=device)))
            continue
        r, c, v = rows[keep] - start, cols[keep], values[keep]
        lo = int(c.min())
        weight = torch.zeros(stop - start, int(c.max()) - lo + 1, dtype=torch.float64)
        weight.index_put_((r, c - lo), v, accumulate=True)
        blocks.append(Block(start, stop, lo, weight.to(device=device, dtype=dtype)))
    return tuple(blocks)


def apply_blocks(blocks: tuple[Block, ...], image: torch.Tensor, dim: int) -> torch.Tensor:
    """Multiply ``image`` along ``dim`` (the last or second-to-last) by the blocked operator."""
    if dim in (-1, image.dim() - 1):
        parts = [image[..., b.in_start:b.in_start + b.weight.shape[1]] @ b.weight.T for b in blocks]
        return torch.cat(parts, -1)
    if dim in (-2, image.dim() - 2):
        parts = [b.weight @ image[..., b.in_start:b.in_start + b.weight.shape[1], :] for b in blocks]
        return torch.cat(parts, -2)
    raise ValueError(f"apply_blocks works along the last two dimensions, got dim={dim}")
