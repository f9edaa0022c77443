"""The compiled one-pass loops of ops/level_kernel.py against OpenCV's conversion and numpy's division."""
from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from imagetune.ops import cpu_image, level_kernel

LEVELS = cpu_image.LEVELS[0]


@pytest.fixture(autouse=True)
def compiled():
    """The loops compile on this machine (llvmlite is a dependency); every test below runs them."""
    assert level_kernel.kernels() is not None


def random_levels(shape, seed=0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, shape).astype(np.uint8)


@pytest.mark.parametrize("shape", [(1,), (7,), (5, 9), (33, 17, 3), (3, 1, 4)])
def test_levels_exact_converts_an_image_of_levels_as_opencv_does(shape):
    levels = random_levels(shape)
    image = LEVELS[levels]
    out = np.full(shape, 7, np.uint8)
    assert level_kernel.levels_exact(image, out) is True
    assert np.array_equal(out, cv2.convertScaleAbs(image, alpha=255.0).reshape(shape))


def test_levels_exact_refuses_one_value_off_the_grid_anywhere():
    """Every float32 a step either side of a level, NaN, infinities and out-of-range values, put in the first,
    a middle or the last row, make the answer False; -0.0 is level 0."""
    image = LEVELS[random_levels((40, 24, 3), seed=1)]
    out = np.empty(image.shape, np.uint8)
    for where in ((0, 0, 0), (20, 11, 1), (39, 23, 2)):
        value = image[where]
        for odd in (np.nextafter(value, np.float32(2)), np.nextafter(value, np.float32(-2)), np.nan, np.inf, -np.inf,
                    np.float32(-1 / 255), np.float32(256 / 255), np.float32(1e-30)):
            spoilt = image.copy()
            spoilt[where] = odd
            assert level_kernel.levels_exact(spoilt, out) is False, (where, odd)
    negative_zero = image.copy()
    negative_zero[5, 5, 0] = -0.0
    assert level_kernel.levels_exact(negative_zero, out) is True and out[5, 5, 0] == 0


def test_levels_exact_writes_strided_rows_and_declines_strided_values():
    """Rows may lie strides apart (the inside of a padded buffer); values inside a row must be contiguous."""
    levels = random_levels((16, 20, 3), seed=2)
    padded = np.zeros((20, 24, 3), np.uint8)
    assert level_kernel.levels_exact(LEVELS[levels], padded[2:-2, 2:-2]) is True
    assert np.array_equal(padded[2:-2, 2:-2], levels) and not padded[:2].any() and not padded[:, :2].any()
    wide = np.zeros((16, 40, 3), np.float32)
    wide[:, ::2] = LEVELS[levels]
    assert level_kernel.levels_exact(wide[:, ::2], np.empty(levels.shape, np.uint8)) is None
    assert level_kernel.levels_exact(np.empty(0, np.float32), np.empty(0, np.uint8)) is True


def test_levels_to_float_is_the_loaders_division_bit_for_bit():
    levels = np.arange(256, dtype=np.uint8)
    out = np.empty(256, np.float32)
    assert level_kernel.levels_to_float(levels, out)
    assert np.array_equal(out.view(np.int32), (torch.from_numpy(levels).float() / 255).numpy().view(np.int32))
    padded = random_levels((36, 50, 3), seed=3)
    inside = np.empty((32, 46, 3), np.float32)
    assert level_kernel.levels_to_float(padded[2:-2, 2:-2], inside)
    assert np.array_equal(inside, LEVELS[padded[2:-2, 2:-2]])


def test_mismatched_arrays_are_refused_by_name():
    with pytest.raises(ValueError, match="levels_exact needs float32 in and uint8 out of one shape"):
        level_kernel.levels_exact(np.zeros((2, 3), np.float64), np.zeros((2, 3), np.uint8))
    with pytest.raises(ValueError, match="levels_to_float"):
        level_kernel.levels_to_float(np.zeros((2, 3), np.uint8), np.zeros((3, 2), np.float32))


def test_without_the_compiler_the_callers_keep_numpy(monkeypatch):
    """Where llvmlite is missing the loops answer None / False and eight_bit and from_levels give the same arrays."""
    image = LEVELS[random_levels((300, 300, 3), seed=4)]  # above KERNEL_VALUES
    with_kernel = cpu_image.eight_bit(image).copy(), cpu_image.from_levels(cpu_image.eight_bit(image), np.empty_like(image))
    monkeypatch.setattr(level_kernel, "_compiled", {"functions": None})
    assert level_kernel.levels_exact(image, np.empty(image.shape, np.uint8)) is None
    assert level_kernel.levels_to_float(np.zeros(3, np.uint8), np.zeros(3, np.float32)) is False
    assert np.array_equal(cpu_image.eight_bit(image), with_kernel[0])
    assert np.array_equal(cpu_image.from_levels(with_kernel[0], np.empty_like(image)), with_kernel[1])


def test_a_failed_build_leaves_the_numpy_path(monkeypatch):
    """An llvmlite that cannot compile (here: no llvmlite at all) makes ``_build`` answer None, not raise."""
    import builtins

    real_import = builtins.__import__

    def no_llvmlite(name, *args, **kwargs):
        if name.startswith("llvmlite"):
            raise ImportError("no llvmlite here")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_llvmlite)
    assert level_kernel._build() is None


def test_bands_over_two_threads_give_the_one_thread_arrays(monkeypatch):
    """At two torch threads eight_bit and from_levels run their loops in bands of rows on two threads (here from
    a smaller size than they do): same levels, same floats, and a value off the grid in any band still refuses
    the image."""
    image = LEVELS[random_levels((700, 300, 3), seed=5)]
    alone = cpu_image.eight_bit(image).copy()
    back = cpu_image.from_levels(alone, np.empty_like(image)).copy()
    monkeypatch.setattr(cpu_image, "BANDED_VALUES", 1 << 16)
    shared = []
    real = cpu_image.share_out
    monkeypatch.setattr(cpu_image, "share_out", lambda pieces, threads: shared.append(len(pieces)) or real(pieces, threads))
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        assert np.array_equal(cpu_image.eight_bit(image), alone)
        assert np.array_equal(cpu_image.from_levels(alone, np.empty_like(image)), back)
        assert shared == [4, 4]  # two bands a thread, for each of the two loops
        for row in (0, 350, 699):
            spoilt = image.copy()
            spoilt[row, 7, 1] = np.nextafter(spoilt[row, 7, 1], np.float32(2))
            assert cpu_image.eight_bit(spoilt) is None, row
    finally:
        torch.set_num_threads(before)
