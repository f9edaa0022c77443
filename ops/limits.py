"""Size limits of what a workflow may ask a node to make, checked before the memory is allocated.

A shared workflow is untrusted: a literal like ``width=16384, batch_size=64`` is within every
single input's range yet asks for tens of GB. Nodes check the product here, at validation when
the sizes are literals (``check_inputs``) and again when they run, once the input shapes are known.
The numbers are listed in the README ("Workflows are untrusted input").
"""
from __future__ import annotations

from ..graph_runtime.errors import NodeInputError

#: batch x height x width of diffusion images: 64 x 512², 16 x 1024², one 4096²
MAX_GENERATED_PIXELS = 1 << 24
#: batch x height x width of a resize, scale or upscale result: one 8192² (768 MB as float32 RGB)
MAX_IMAGE_PIXELS = 1 << 26
#: prompts x 77-token chunks in one text-encoder call
MAX_PROMPT_CHUNKS = 1024


def pixels_problem(batch: int, height: int, width: int, limit: int, what: str) -> str | None:
    """The message when ``batch x height x width`` exceeds ``limit`` pixels, else None."""
    total = int(batch) * int(height) * int(width)
    if total <= limit:
        return None
    return (f"{what} would be {batch} x {height} x {width} = {total:,} pixels (batch x height x width); "
            f"expected at most {limit:,}")


def check_pixels(field: str, batch: int, height: int, width: int, limit: int, what: str) -> None:
    """Raise NodeInputError naming ``field`` when the result would exceed ``limit`` pixels."""
    problem = pixels_problem(batch, height, width, limit, what)
    if problem:
        raise NodeInputError(field, problem)
