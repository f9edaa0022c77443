"""The two implementations of the enhance ops, compared directly: the CPU library path (OpenCV/numpy) and the
torch path that CUDA tensors take, forced here on CPU tensors. Their references are in test_enhance.py."""
from __future__ import annotations

import pytest
import torch

from imagetune.ops import cpu_image
from imagetune.ops.enhance import adjust, auto_contrast, clahe, denoise, gaussian_box_blur, unsharp_mask


def smooth_picture() -> torch.Tensor:
    """An 8-bit RGB picture [1,3,64,80] with gradients, edges and a little noise, dull so CLAHE has work."""
    yy, xx = torch.meshgrid(torch.linspace(0, 1, 64), torch.linspace(0, 1, 80), indexing="ij")
    base = torch.stack([xx, yy, ((xx * 7).floor() + (yy * 5).floor()) % 2 * 0.6 + 0.2]) * 0.3 + 0.35
    noisy = base + 0.02 * torch.randn(base.shape, generator=torch.Generator().manual_seed(5))
    return (noisy.clamp(0, 1) * 255).round()[None] / 255


def grid_and_float(seed: int, shape=(2, 3, 40, 33)) -> list[torch.Tensor]:
    """The same picture on the 8-bit grid (as loaded from a file) and off it (as after any float op)."""
    g = torch.Generator().manual_seed(seed)
    levels = torch.randint(0, 256, shape, generator=g).float() / 255
    return [levels, torch.rand(shape, generator=g)]


TWO_PATH_OPS = {  # op -> (call, largest difference between the two paths)
    "unsharp": (lambda x: unsharp_mask(x, 2.0, 1.5, 3), 1e-5),
    "blur": (lambda x: gaussian_box_blur(x, 1.3), 1e-5),
    "adjust": (lambda x: adjust(x, 1.1, 1.3, 0.7, 1.8), 1e-5),
    "gamma": (lambda x: adjust(x, gamma=2.2), 1e-5),
    "autocontrast": (lambda x: auto_contrast(x, 0.0), 1e-5),
    "autocontrast cut": (lambda x: auto_contrast(x, 1.5), 1e-5),
    "median 5": (lambda x: denoise(x, "median", radius=2), 0.0),
    "median 9": (lambda x: denoise(x, "median", radius=4), 0.0),
    "gaussian": (lambda x: denoise(x, "gaussian", radius=3), 1e-5),
    "bilateral": (lambda x: denoise(x, "bilateral", 0.15, 2), 2e-3),  # OpenCV's colour weights are a 4096-step table
}


@pytest.mark.parametrize("name", list(TWO_PATH_OPS))
@pytest.mark.parametrize("channels", [3, 1])
def test_library_and_torch_paths_agree(name, channels, monkeypatch):
    """The CPU library result equals the torch result (CUDA's path) on and off the 8-bit grid, RGB and grey."""
    op, tolerance = TWO_PATH_OPS[name]
    for image in grid_and_float(11, (2, channels, 40, 33)):
        assert cpu_image.use_library(image)
        library = op(image)
        with monkeypatch.context() as m:
            m.setattr(cpu_image, "use_library", lambda x: False)
            reference = op(image)
        assert library.shape == reference.shape and library.dtype == reference.dtype
        assert (library - reference).abs().max() <= tolerance, name


def test_clahe_paths_agree_within_a_few_levels(monkeypatch):
    """OpenCV's CLAHE (CPU) and kornia's (elsewhere) share clip limit, residual spreading and 256 levels of L, but
    kornia interpolates between tiles half a pixel earlier (to keep flip symmetry) and OpenCV works on 8-bit
    CIELAB: a few levels apart on average, not exactly equal."""
    image = smooth_picture()
    library = clahe(image, 2.5, 4)
    with monkeypatch.context() as m:
        m.setattr(cpu_image, "use_library", lambda x: False)
        reference = clahe(image, 2.5, 4)
    diff = (library - reference).abs() * 255
    assert diff.mean() < 3.0 and torch.quantile(diff.flatten(), 0.99) < 10.0


def test_library_path_writes_an_image_tensor_without_copies_of_its_own():
    """The CPU path returns a [B,C,H,W] view of a contiguous IMAGE, so the node's to_bhwc copies nothing."""
    image = torch.rand(1, 20, 24, 3).movedim(-1, 1)
    out = denoise(image, "gaussian", radius=2)
    assert out.movedim(1, -1).is_contiguous()


@pytest.mark.parametrize("shape", [(1, 3, 2, 2), (1, 1, 3, 9), (1, 3, 5, 6), (1, 4, 7, 3)])
def test_median_paths_agree_on_small_images(shape, monkeypatch):
    """Images no wider than the window (edges repeated) and just wider (edges mirrored), on and off the grid."""
    for image in grid_and_float(3, shape):
        for radius in (1, 2):
            library = denoise(image, "median", radius=radius)
            with monkeypatch.context() as m:
                m.setattr(cpu_image, "use_library", lambda x: False)
                reference = denoise(image, "median", radius=radius)
            assert torch.equal(library, reference), (shape, radius)


@pytest.mark.parametrize("shape", [(4, 4, 3), (5, 9), (12, 7, 4)])
@pytest.mark.parametrize("r", [1, 2, 3])
def test_pad_reflect_is_opencvs_reflect_101(shape, r):
    """The in-place frame the median's 8-bit buffer gets equals copyMakeBorder's BORDER_REFLECT_101."""
    import cv2
    import numpy as np

    inside = np.random.default_rng(r).integers(0, 256, shape).astype(np.uint8)
    padded = np.zeros((shape[0] + 2 * r, shape[1] + 2 * r) + shape[2:], np.uint8)
    padded[r:-r, r:-r] = inside
    assert np.array_equal(cpu_image.pad_reflect_(padded, r), cv2.copyMakeBorder(inside, r, r, r, r, cv2.BORDER_REFLECT_101))


@pytest.fixture(params=["kernel", "numpy"])
def level_path(request, monkeypatch):
    """Run a test through the compiled one-pass loops (ops/level_kernel.py, every size) and through numpy's passes."""
    from imagetune.ops import level_kernel

    if request.param == "kernel":
        assert level_kernel.kernels() is not None, "llvmlite (a dependency) should compile the loops here"
        monkeypatch.setattr(cpu_image, "KERNEL_VALUES", 0)
    else:
        monkeypatch.setattr(level_kernel, "_compiled", {"functions": None})
    return request.param


def test_eight_bit_takes_exactly_the_levels(monkeypatch, level_path):
    """Every level k / 255 is taken; every other float32 within 64 steps of a level, NaN, infinities and values
    out of 0..1 are refused, wherever they are in an image of levels (the sample that usually refuses an
    image first is skipped, so the full check decides)."""
    import numpy as np

    levels = cpu_image.LEVELS[0]
    image = np.repeat(levels, 8 * 3).reshape(256, 8, 3)  # row k: level k
    assert np.array_equal(cpu_image.eight_bit(image), np.repeat(np.arange(256, dtype=np.uint8), 8 * 3).reshape(256, 8, 3))
    monkeypatch.setattr(cpu_image, "_sample_on_grid", lambda array: True)
    steps = np.arange(-64, 65, dtype=np.int32)
    near = (levels.view(np.int32)[:, None] + steps[steps != 0]).ravel().view(np.float32)
    near = near[~np.isin(near, levels)]  # a step from one level lands on another only near 0
    refused = [cpu_image.eight_bit(np.array([[value]], np.float32)) is None for value in near]
    assert all(refused), near[~np.array(refused)][:5]
    for odd in (np.nan, np.inf, -np.inf, -1 / 255, 256 / 255, 2.0, np.nextafter(np.float32(0), np.float32(1))):
        for where in ((0, 0, 0), (128, 4, 1), (255, 7, 2)):
            spoilt = image.copy()
            spoilt[where] = odd
            assert cpu_image.eight_bit(spoilt) is None, (odd, where)


def test_from_levels_gives_the_loaders_floats_bit_for_bit(level_path):
    """level / 255 through ``from_levels`` is every 8-bit loader's float (torch's division), bit for bit, for all
    256 levels, on a strided view too (the inside of a padded median)."""
    import numpy as np
    import torch

    levels = np.arange(256, dtype=np.uint8)
    loaders = (torch.from_numpy(levels).float() / 255).numpy()
    out = np.empty(256, np.float32)
    assert np.array_equal(cpu_image.from_levels(levels, out).view(np.int32), loaders.view(np.int32))
    padded = np.pad(np.tile(levels.reshape(16, 16), (1, 3)), 2)
    inside = np.empty((16, 48), np.float32)
    cpu_image.from_levels(padded[2:-2, 2:-2], inside)
    assert np.array_equal(inside, cpu_image.LEVELS[0][padded[2:-2, 2:-2]])


def test_the_eight_bit_test_holds_within_4096_steps_of_every_level():
    """The arithmetic ``eight_bit`` relies on (float32(255 x) a whole number 0..255 only for x = k / 255), over
    every float32 within 4,096 steps of a level: where a wrong level could hide (the whole of [-2, 2] was checked
    once; beyond it |255 x| > 255)."""
    import numpy as np

    levels = cpu_image.LEVELS[0]
    steps = np.arange(-4096, 4097, dtype=np.int32)
    near = np.unique((levels.view(np.int32)[:, None] + steps).ravel()).view(np.float32)
    with np.errstate(invalid="ignore"):  # the steps below 0.0 are NaNs
        scaled = near * np.float32(255.0)
    whole = (scaled == np.rint(scaled)) & (scaled >= 0) & (scaled <= 255)
    assert np.array_equal(near[whole], levels)
