"""Where an image op runs: CPU float32 tensors go to OpenCV/numpy on zero-copy [H,W,C] views, the rest stays in torch.

ComfyUI's IMAGE is [B,H,W,C] float32, so ``to_bchw(image)`` is a view whose per-image [H,W,C]
numpy view costs nothing; OpenCV reads it and writes the result straight into the output
tensor's memory (``dst=``), which is again a [B,C,H,W] view of a contiguous [B,H,W,C] tensor,
so ``to_bhwc`` has nothing to copy either. Other devices (CUDA) and dtypes keep the torch
kernels, which never leave the device; tests run those on CPU tensors too (``use_library``
patched to False) and hold both paths to the same references.
"""
from __future__ import annotations

import contextlib
import functools
import itertools
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Sequence

import cv2
import numpy as np
import torch

from . import level_kernel


def use_library(image: torch.Tensor) -> bool:
    """Whether ``image`` takes the CPU library path: a float32 CPU tensor that needs no gradient."""
    return image.device.type == "cpu" and image.dtype == torch.float32 and not image.requires_grad


def opencv_threads() -> None:
    """Give OpenCV torch's thread count (set with ``--threads``), so one thread means one for both."""
    wanted = torch.get_num_threads()
    if cv2.getNumThreads() != wanted:
        cv2.setNumThreads(wanted)


def run_jobs(fn: Callable, jobs: Sequence) -> None:
    """``fn(job)`` for every job, torch kept to one thread inside: at one torch thread (or one job) in this thread,
    else on that many Python threads taking jobs in turn, so a thread a busy machine holds up delays one job
    (torch's static split of one op over its OpenMP threads waits for it: 10-50x slower on two shared cores)."""
    threads = torch.get_num_threads()
    if threads == 1:
        for job in jobs:
            fn(job)
        return
    torch.set_num_threads(1)  # process-wide: the ops here run one at a time
    try:
        if len(jobs) < 2:
            for job in jobs:
                fn(job)
        else:
            for _ in _pool(threads).map(_in_callers_mode(fn), jobs):
                pass
    finally:
        torch.set_num_threads(threads)


def share_out(pieces: Sequence[Callable], threads: int) -> list:
    """The pieces' results, computed on this thread and up to ``threads - 1`` pool threads (with torch kept to one
    thread meanwhile: ``one_thread``). Each thread takes the next piece nobody has started, so a thread a busy
    machine holds up delays at most the piece it holds (OpenMP's split of one op waits for every thread)."""
    results, errors = [None] * len(pieces), [None] * len(pieces)
    done = [threading.Event() for _ in pieces]
    claims = itertools.count()  # next() on it is atomic: each index is handed out once

    def work():
        while (index := next(claims)) < len(pieces):
            try:
                results[index] = pieces[index]()
            except BaseException as exc:  # re-raised in the calling thread
                errors[index] = exc
            finally:
                done[index].set()

    for _ in range(min(len(pieces), threads) - 1):
        _pool(threads).submit(_in_callers_mode(lambda _: work()), None)
    work()
    for event in done:  # every piece is claimed now: wait only for those still running on a helper
        event.wait()
    for exc in errors:
        if exc is not None:
            raise exc
    return results


@contextlib.contextmanager
def one_thread():
    """Torch at one thread inside (process-wide); yields the count it had, the threads ``share_out`` may use."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield threads
    finally:
        torch.set_num_threads(threads)


def _in_callers_mode(fn: Callable) -> Callable:
    """``fn`` run under this thread's inference and gradient modes, which are per thread in torch."""
    inference, grad = torch.is_inference_mode_enabled(), torch.is_grad_enabled()

    def run(job):
        with torch.inference_mode(inference), torch.set_grad_enabled(grad):
            return fn(job)
    return run


@functools.lru_cache(maxsize=4)
def _pool(threads: int) -> ThreadPoolExecutor:
    """A pool of ``threads`` worker threads, kept (idle workers wait on a queue, they do not spin)."""
    return ThreadPoolExecutor(threads, thread_name_prefix="imagetune-cpu")


def hwc_arrays(image: torch.Tensor) -> list[np.ndarray]:
    """[B,C,H,W] CPU tensor -> one contiguous numpy [H,W,C] (or [H,W] when C = 1) per image; views when the memory allows."""
    opencv_threads()
    arrays = []
    # one torch call, the rest numpy's: a torch call costs ~20 µs when its code is out of the caches, as after a big op
    for array in (image.detach() if image.requires_grad else image).numpy().transpose(0, 2, 3, 1):
        if not array.flags.c_contiguous:  # e.g. the colour of an RGBA image: OpenCV needs packed pixels
            array = np.ascontiguousarray(array)
        arrays.append(array[..., 0] if array.shape[-1] == 1 else array)
    return arrays


def new_like(image: torch.Tensor, height: int | None = None, width: int | None = None) -> tuple[torch.Tensor, list[np.ndarray]]:
    """A fresh output for ``image``: [B,C,H,W] view of a contiguous [B,H,W,C] tensor, and its per-image numpy views."""
    b, c, h, w = image.shape
    out = empty((b, height or h, width or w, c), image.dtype)
    arrays = out.numpy()
    return out.permute(0, 3, 1, 2), list(arrays[..., 0] if c == 1 else arrays)


def empty(shape: tuple, dtype: torch.dtype) -> torch.Tensor:
    """An uninitialised CPU tensor in numpy's memory: numpy asks the kernel for huge pages on big arrays
    (``madvise``), torch does not, so a 48 MiB torch output took 12,289 page faults and 21 ms to fill, numpy's
    536 and 4 ms (2048² RGB, one thread; transparent huge pages set to ``madvise``, the usual default)."""
    numpy_dtype = _NUMPY_DTYPES.get(dtype)
    if numpy_dtype is None:
        return torch.empty(shape, dtype=dtype)
    return torch.from_numpy(np.empty(shape, numpy_dtype))


_NUMPY_DTYPES = {torch.float32: np.float32, torch.float64: np.float64}


def border(image: torch.Tensor, radius: int) -> int:
    """OpenCV's border for a window of ``radius``: mirrored without repeating the edge (torch's "reflect"), repeated on tiny images."""
    return cv2.BORDER_REFLECT_101 if min(image.shape[2:]) > radius else cv2.BORDER_REPLICATE


def clamp_(array: np.ndarray) -> np.ndarray:
    """Clamp ``array`` to 0..1 in place."""
    return np.clip(array, 0.0, 1.0, out=array)


def rounded_levels(array: np.ndarray) -> np.ndarray:
    """round(255 x) of a float array as uint8, saturated (negatives 0, above 1 255) in one pass."""
    return cv2.addWeighted(array, 255.0, array, 0.0, 0.0, dtype=cv2.CV_8U)


def from_levels(levels: np.ndarray, out: np.ndarray) -> np.ndarray:
    """level / 255 of uint8 ``levels`` into float32 ``out``: the 8-bit loaders' values (``LEVELS``), bit for bit.

    ``level_kernel``'s loop of IEEE divisions where it runs (0.056 ms at 512², one thread), else numpy's
    division (0.146 ms; OpenCV's table lookup took 0.257 ms), bit for bit the same floats (docs/image.md)."""
    if _kernel_pays(levels) and _in_bands(level_kernel.levels_to_float, levels, out):
        return out
    return np.divide(levels, _SCALE, out=out, dtype=np.float32)


def eight_bit(array: np.ndarray, out: np.ndarray | None = None) -> np.ndarray | None:
    """The uint8 levels of ``array`` when every value is exactly level / 255 (as 8-bit loaders make it), else None.

    Converted and checked in one pass by ``level_kernel`` where it runs, else in bands of rows that stay in the
    cache (numpy's passes; no image-sized buffer). ``out`` (uint8, ``array``'s shape; may be a view, e.g. the
    inside of a padded buffer) receives the levels.
    """
    levels = np.empty(array.shape, np.uint8) if out is None else out
    if array.dtype == np.float32 and _kernel_pays(array):
        exact = _in_bands(level_kernel.levels_exact, array, levels)  # one pass (a row when the first is off the grid)
        if exact is not None:
            return levels if exact else None
    if not _sample_on_grid(array):  # an image off the grid almost always shows it in its edge rows: no full pass
        return None
    rows = max(1, BAND_BYTES // max(1, array[0].nbytes))
    scaled = np.empty((rows,) + array.shape[1:], np.float32)
    for start in range(0, array.shape[0], rows):
        part, band = array[start:start + rows], levels[start:start + rows]
        cv2.convertScaleAbs(part, dst=band, alpha=255.0)  # rounds and saturates: off-grid values fail below
        # x is level / 255 exactly when float32(255 x) equals that level (below): a product and a comparison,
        # a fifth less time than the table back to float and the norm they replace; a NaN equals nothing
        if not np.array_equal(np.multiply(part, _SCALE, out=scaled[:len(part)]), band):
            return None
    return levels


# The float32 x whose float32 product 255 x is a whole number 0..255 are exactly the 256 levels k / 255
# (and -0.0, taken as 0): checked over every float32 in [-2, 2] (beyond it |255 x| > 255), so no float
# neighbour of a level rounds onto the level. tests/test_image_paths.py checks every float32 within
# 4,096 steps of each level.
_SCALE = np.float32(255.0)


BAND_BYTES = 1 << 18


def _kernel_pays(array: np.ndarray) -> bool:
    """Whether ``array`` goes through a ``level_kernel`` loop: large enough to repay compiling it, or compiled already."""
    return array.size >= KERNEL_VALUES or level_kernel.ready()


def _in_bands(kernel: Callable, array: np.ndarray, out: np.ndarray):
    """``kernel(array, out)`` of a ``level_kernel`` loop, split in bands of rows over torch's threads (OpenCV's own
    conversions use every thread; ctypes releases the GIL): the bands' answers combined, None if one had none."""
    threads = torch.get_num_threads()
    if threads < 2 or array.ndim < 2 or array.size < threads * BANDED_VALUES:
        return kernel(array, out)
    edges = np.linspace(0, array.shape[0], 2 * threads + 1).astype(int)  # two bands a thread: a held-up one waits less
    answers = share_out([functools.partial(kernel, array[a:b], out[a:b]) for a, b in zip(edges, edges[1:]) if b > a],
                        threads)
    return None if any(answer is None for answer in answers) else all(answers)


# Values a thread from which the loops are split over threads: a 512² RGB image's pass takes ~0.08 ms, less than
# handing bands to the pool and waiting for them (the median at 512², two threads: 1.73x OpenCV banded, 2048²: banded)
BANDED_VALUES = 1 << 21

# Images from this many values on compile the one-pass kernel (once per process, ~0.2 s with its import):
# a 150² RGB image; smaller ones alone never repay it, so they keep numpy's passes until it is compiled.
KERNEL_VALUES = 1 << 16


def pad_reflect_(padded: np.ndarray, r: int) -> np.ndarray:
    """Fill the ``r``-pixel frame of ``padded`` by mirroring its inside without repeating the edge
    (OpenCV's BORDER_REFLECT_101), in place: ``copyMakeBorder`` writing around its source (it copies no row
    onto itself), 3 against 23 µs at 512² for numpy's slice copies."""
    h, w = padded.shape[0] - 2 * r, padded.shape[1] - 2 * r
    framed = cv2.copyMakeBorder(padded[r:r + h, r:r + w], r, r, r, r, cv2.BORDER_REFLECT_101, dst=padded)
    if framed.ctypes.data != padded.ctypes.data:  # an OpenCV that allocated anew: same values, one copy more
        np.copyto(padded, framed)
    return padded


def _sample_on_grid(array: np.ndarray) -> bool:
    """Whether the first and last rows of ``array`` are exactly level / 255: contiguous reads, so a few µs
    even when the image is not in the cache (a value every 997 took 789 cache misses at 512²)."""
    sample = np.concatenate([array[:1].reshape(-1), array[-1:].reshape(-1)]) if array.ndim > 1 else array[:1024]
    levels = np.rint(sample * np.float32(255.0))
    if not (levels.min(initial=0) >= 0 and levels.max(initial=0) <= 255):  # a NaN fails too (no index of it)
        return False
    return bool(np.array_equal(LEVELS[0][levels.astype(np.intp)], sample))


# level / 255 in float32, as an 8-bit loader divides (numpy's and torch's float32 division agree)
LEVELS = (np.arange(256, dtype=np.float32) / np.float32(255.0)).reshape(1, 256)


def level_counts(levels: np.ndarray) -> np.ndarray:
    """256-bin counts [C, 256] of each channel of one uint8 [H,W(,C)] array."""
    channels = 1 if levels.ndim == 2 else levels.shape[-1]
    return np.stack([cv2.calcHist([levels], [c], None, [256], [0, 256]).reshape(-1) for c in range(channels)])
