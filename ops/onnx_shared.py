"""One ONNX network call shared out over several CPU threads, a piece of each big step per task.

Torch's own split of an op over its OpenMP threads waits at the op's end for every thread; on a
busy machine one held-up thread makes each of a network's few hundred ops wait (a 512² style
transfer took 1.7-3.2 s at two threads against 0.2-0.45 s at one). Here torch runs at one thread
and the interpreter (``onnx_torch.OnnxModule``) cuts each big step into pieces that the calling
thread and the pool's take in turn (``cpu_image.share_out``), so a held-up thread delays only
the piece it holds. Pieces: rows of a convolution's output (each from its rows of input) and rows
of an elementwise op, the steps that take most of the time; the rest run whole. Every piece
computes what the whole step computes for its part, so results match the unshared run to float
rounding. (Reductions and paddings by channels were slower: a channel slice of a channels-last
tensor is strided.)
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from . import cpu_image as cpu
from .onnx_torch import IN_PLACE, _conv

PIECES_PER_THREAD = 4  # more pieces than threads: whoever is free takes the next one
MIN_ELEMENTS = 1 << 16  # smaller steps run whole: a piece's call would cost more than it shares


def split_step(op_type: str, inputs: list, attrs: dict, in_place: bool, threads: int) -> tuple | None:
    """The step's outputs computed in pieces over ``threads`` threads, or None when it is not split
    (small, or not one of the kinds below); ``in_place``: the first input may be overwritten."""
    inputs = list(inputs)
    while inputs and inputs[-1] is None:  # absent optional inputs: their defaults apply
        inputs.pop()
    x = inputs[0] if inputs else None
    if not (isinstance(x, torch.Tensor) and x.dim() == 4 and x.is_floating_point() and x.numel() >= MIN_ELEMENTS):
        return None
    pieces = threads * PIECES_PER_THREAD
    if op_type == "Conv":
        return _conv_rows(x, inputs[1], inputs[2] if len(inputs) > 2 else None, attrs, pieces, threads)
    if op_type in IN_PLACE:
        return _elementwise_rows(op_type, x, inputs[1:], attrs, in_place, pieces, threads)
    if op_type == "Pad" and attrs.get("mode") == "reflect":
        return _reflect_pad_rows(x, inputs[1:], pieces, threads)
    return None


def _bands(length: int, pieces: int) -> list[tuple[int, int]]:
    """``pieces`` (or fewer) consecutive ranges covering 0..length."""
    step = -(-length // max(1, min(pieces, length)))
    return [(start, min(start + step, length)) for start in range(0, length, step)]


def _conv_rows(x, w, b, attrs, pieces, threads) -> tuple | None:
    """A 2-D convolution by bands of output rows, each from the input rows it reads, into one output."""
    if w.dim() != 4 or attrs.get("auto_pad", "NOTSET") != "NOTSET":
        return None
    pads = list(attrs.get("pads") or [0, 0, 0, 0])
    if pads[:2] != pads[2:]:  # asymmetric: pad the whole input once, as _conv does
        return None
    strides, dilations = list(attrs.get("strides", (1, 1))), list(attrs.get("dilations", (1, 1)))
    top, left = pads[0], pads[1]
    span, span_w = (w.shape[2] - 1) * dilations[0] + 1, (w.shape[3] - 1) * dilations[1] + 1
    height = (x.shape[2] + 2 * top - span) // strides[0] + 1
    width = (x.shape[3] + 2 * left - span_w) // strides[1] + 1
    if height < 1 or width < 1:
        return None
    whole = torch.empty((x.shape[0], w.shape[0], height, width), dtype=x.dtype, device=x.device,
                        memory_format=_layout(x))
    by_rows = dict(attrs, pads=[0, left, 0, left])  # rows are cut (and padded) below, columns by the conv

    def band(start: int, end: int) -> torch.Tensor:
        first, last = start * strides[0] - top, (end - 1) * strides[0] - top + span  # the input rows read
        rows = x[:, :, max(first, 0):min(last, x.shape[2])]
        if first < 0 or last > x.shape[2]:
            rows = F.pad(rows, (0, 0, max(-first, 0), max(last - x.shape[2], 0)))
        return _conv(rows, w, b, **by_rows)

    def fill(start: int, end: int):
        return lambda: whole[:, :, start:end].copy_(band(start, end))
    cpu.share_out([fill(start, end) for start, end in _bands(height, pieces)], threads)
    return (whole,)


def _elementwise_rows(op_type, x, others, attrs, in_place, pieces, threads) -> tuple | None:
    """An elementwise op by bands of rows, into ``x`` when it may be overwritten, else into a copy of it."""
    tensors = [o for o in others if isinstance(o, torch.Tensor)]
    if any(torch.broadcast_shapes(x.shape, o.shape) != x.shape or torch.result_type(x, o) != x.dtype for o in tensors):
        return None
    out = x if in_place else torch.empty_like(x)

    def rows(value, start, end):
        along = isinstance(value, torch.Tensor) and value.dim() == 4 and value.shape[2] == x.shape[2]
        return value[:, :, start:end] if along else value

    def piece(start: int, end: int):
        def run():
            target = out[:, :, start:end]
            if not in_place:
                target.copy_(x[:, :, start:end])
            IN_PLACE[op_type](target, *(rows(o, start, end) for o in others), **attrs)
        return run
    cpu.share_out([piece(start, end) for start, end in _bands(x.shape[2], pieces)], threads)
    return (out,)


def _reflect_pad_rows(x, others, pieces, threads) -> tuple | None:
    """A reflect padding (OpenCV's REFLECT_101) of the last two axes, by bands of output rows: each band copies
    its rows of the input (the top and bottom frame from the mirrored rows) and mirrors its own columns."""
    pads = others[0] if others else None
    if len(others) > 2 or not pads or len(pads) != 8 or any(pads[i] or pads[i + 4] for i in (0, 1)):
        return None  # constant values, axes, or padding of the batch or channels: the whole step
    top, left, bottom, right = pads[2], pads[3], pads[6], pads[7]
    n, c, h, w = x.shape
    if min(top, left, bottom, right) < 0 or max(top, bottom) >= h or max(left, right) >= w:
        return None
    out = torch.empty((n, c, top + h + bottom, left + w + right), dtype=x.dtype, device=x.device,
                      memory_format=_layout(x))

    def source(row: int) -> int:  # the input row an output row mirrors
        inside = row - top
        return -inside if inside < 0 else (2 * (h - 1) - inside if inside >= h else inside)

    def piece(start: int, end: int):
        def run():
            band = out[:, :, start:end]
            inner = band[..., left:left + w]
            first, last = start - top, end - top
            if first >= 0 and last <= h:
                inner.copy_(x[:, :, first:last])
            else:
                inner.copy_(x[:, :, [source(row) for row in range(start, end)]])
            for i in range(left):
                band[..., left - 1 - i].copy_(band[..., left + 1 + i])
            for i in range(right):
                band[..., left + w + i].copy_(band[..., left + w - 2 - i])
        return run
    cpu.share_out([piece(start, end) for start, end in _bands(out.shape[2], pieces)], threads)
    return (out,)


def _layout(t: torch.Tensor) -> torch.memory_format:
    """channels_last for such a 4-D tensor (the style network's layout), else the default."""
    channels_last = t.is_contiguous(memory_format=torch.channels_last) and not t.is_contiguous()
    return torch.channels_last if channels_last else torch.contiguous_format
