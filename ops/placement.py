"""Where and in what precision models run: dtype choice, moving to the GPU and back.

Models load on the CPU and move to their device when first used. Inside ComfyUI the host is
asked to make room first (``ctx.free_memory``) and models go back to the CPU after each use
(``ctx.offload_after_use``), because ComfyUI's memory manager cannot see them.
"""
from __future__ import annotations

from contextlib import contextmanager

import torch

from ..graph_runtime.errors import NodeInputError

_BY_NAME = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


def resolve_device(choice: str, ctx, field: str = "device") -> str:
    """The device to run on: the run's device for 'auto', else the one chosen (which must exist)."""
    if choice in ("auto", "", None):
        return ctx.device
    if choice.startswith("cuda") and not torch.cuda.is_available():
        raise NodeInputError(field, f"expected a device this machine has, got {choice!r} (no CUDA)")
    return choice


def resolve_dtype(choice: str, device: str) -> torch.dtype:
    """fp16 on CUDA and fp32 elsewhere for 'auto' (CPU half precision is slow), else as chosen."""
    if choice == "auto":
        return torch.float16 if str(device).startswith("cuda") else torch.float32
    return _BY_NAME[choice]


def module_bytes(module: torch.nn.Module) -> int:
    """Bytes of a module's parameters and buffers."""
    tensors = list(module.parameters()) + list(module.buffers())
    return sum(t.numel() * t.element_size() for t in tensors)


def module_device(module: torch.nn.Module) -> torch.device:
    """The device of a module's first parameter (CPU for a module without parameters)."""
    first = next(module.parameters(), None)
    return first.device if first is not None else torch.device("cpu")


def same_device(a: torch.device, b: torch.device) -> bool:
    """True when ``a`` and ``b`` name the same device ('cuda' matches 'cuda:N')."""
    return a.type == b.type and (a.index is None or b.index is None or a.index == b.index)


@contextmanager
def placed(module, device: str, ctx, size: int):
    """Run the body with ``module`` on ``device``; free host memory first, offload after if asked."""
    target = torch.device(device)
    if not same_device(module_device(module), target):
        if target.type != "cpu":
            ctx.free_memory(size)
        module.to(target)
    try:
        yield module
    finally:
        if target.type != "cpu" and ctx.offload_after_use:
            module.to("cpu")


def dtype_keyword(library: str) -> str:
    """The ``from_pretrained`` keyword for the dtype: ``dtype`` in new releases, ``torch_dtype`` before.

    transformers took ``dtype`` in 4.56 and diffusers later (with ``_resolve_dtype``); ComfyUI
    installs may carry older ones, where ``dtype`` would be ignored.
    """
    if library == "diffusers":
        try:
            from diffusers.utils.deprecation_utils import _resolve_dtype  # noqa: F401
        except ImportError:
            return "torch_dtype"
        return "dtype"
    import transformers

    major, minor = (int(p) for p in transformers.__version__.split(".")[:2])
    return "dtype" if (major, minor) >= (4, 56) else "torch_dtype"
