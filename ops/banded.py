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
    last = dim in (-1, image.dim() - 1)
    if not last and dim not in (-2, image.dim() - 2):
        raise ValueError(f"apply_blocks works along the last two dimensions, got dim={dim}")
    if image.requires_grad:  # autograd cannot record products written with out=: concatenate instead
        return torch.cat([_block_product(b, image, last) for b in blocks], -1 if last else -2)
    size = blocks[-1].out_stop
    out = image.new_empty((*image.shape[:-1], size) if last else (*image.shape[:-2], size, image.shape[-1]))
    for b in blocks:  # each block's product goes straight into its rows: no concatenation copy
        _block_product(b, image, last, out[..., b.out_start:b.out_stop] if last else out[..., b.out_start:b.out_stop, :])
    return out


def _block_product(block: Block, image: torch.Tensor, last: bool, out: torch.Tensor | None = None) -> torch.Tensor:
    """One block's output rows (into ``out`` when given) along the last (``last``) or second-to-last axis."""
    cols = slice(block.in_start, block.in_start + block.weight.shape[1])
    if last:
        return torch.matmul(image[..., cols], block.weight.T, out=out)
    return torch.matmul(block.weight, image[..., cols, :], out=out)
