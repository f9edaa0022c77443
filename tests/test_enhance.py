"""Enhance ops against PIL/numpy references, and every enhance node on awkward shapes."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image, ImageEnhance, ImageFilter, ImageOps

from imagetune.graph_runtime import ExecutionContext
from imagetune.nodes import enhance as E
from imagetune.ops.enhance import adjust, auto_contrast, clahe, denoise, gaussian_box_blur, unsharp_mask

# every test runs on the CPU library path and on the torch path (what CUDA tensors take)
pytestmark = pytest.mark.usefixtures("image_path")


def photo_like(seed=0, h=37, w=45):
    """An 8-bit RGB picture with edges, gradients and texture."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    base = np.stack([xx / w, yy / h, ((xx // 7 + yy // 5) % 2) * 0.6 + 0.2], -1)
    noisy = base + rng.normal(0, 0.05, base.shape)
    return (np.clip(noisy, 0, 1) * 255).round().astype(np.uint8)


def as_tensor(pixels: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(pixels.astype(np.float32) / 255.0).permute(2, 0, 1)[None]


def as_levels(image: torch.Tensor) -> np.ndarray:
    return image[0].permute(1, 2, 0).numpy() * 255.0


@pytest.mark.parametrize("radius,percent,threshold", [(2, 150, 3), (1, 80, 0), (4.5, 200, 10)])
def test_unsharp_mask_matches_pil(radius, percent, threshold):
    pixels = photo_like()
    expected = np.asarray(Image.fromarray(pixels).filter(ImageFilter.UnsharpMask(radius, percent, threshold)), np.float32)
    got = as_levels(unsharp_mask(as_tensor(pixels), radius, percent / 100, threshold))
    diff = np.abs(got - expected)
    # PIL rounds to 8 bits after each of its six box passes; pixels right at the threshold may flip
    assert np.mean(diff <= 1.5) > 0.97 and diff.mean() < 0.6


def test_blur_matches_pil_gaussian():
    pixels = photo_like(1)
    expected = np.asarray(Image.fromarray(pixels).filter(ImageFilter.GaussianBlur(3)), np.float32)
    got = as_levels(gaussian_box_blur(as_tensor(pixels), 3))
    assert np.abs(got - expected).max() <= 2.0


@pytest.mark.parametrize("name,factor", [("brightness", 1.3), ("contrast", 0.6), ("contrast", 1.7),
                                         ("saturation", 0.4), ("saturation", 1.8)])
def test_adjust_matches_pil_image_enhance(name, factor):
    pixels = photo_like(2)
    enhancer = {"brightness": ImageEnhance.Brightness, "contrast": ImageEnhance.Contrast,
                "saturation": ImageEnhance.Color}[name]
    expected = np.asarray(enhancer(Image.fromarray(pixels)).enhance(factor), np.float32)
    got = as_levels(adjust(as_tensor(pixels), **{name: factor}))
    # PIL's contrast uses the integer-rounded mean of its 8-bit grey image
    assert np.abs(got - expected).max() <= 1.51


def test_gamma():
    image = torch.rand(2, 3, 5, 4)
    assert torch.allclose(adjust(image, gamma=2.2), image ** (1 / 2.2), atol=1e-6)


@pytest.mark.parametrize("cutoff", [0, 2])
def test_auto_contrast_matches_pil(cutoff):
    pixels = (photo_like(3).astype(np.float32) * 0.5 + 60).astype(np.uint8)
    expected = np.asarray(ImageOps.autocontrast(Image.fromarray(pixels), cutoff=cutoff), np.float32)
    got = as_levels(auto_contrast(as_tensor(pixels), cutoff))
    tolerance = 1.0  # same 256-bin cut as PIL; PIL also rounds to 8 bits
    assert np.abs(got - expected).max() <= tolerance
    assert np.abs(got - expected).mean() <= max(0.6, tolerance / 3)  # PIL also quantizes to 8 bits


def test_clahe_raises_local_contrast_and_keeps_hue():
    import kornia
    pixels = (photo_like(4).astype(np.float32) * 0.3 + 90).astype(np.uint8)  # dull, low contrast
    image = as_tensor(pixels)
    out = clahe(image, clip_limit=3.0, grid=4)
    lab_in, lab_out = kornia.color.rgb_to_lab(image), kornia.color.rgb_to_lab(out)
    assert lab_out[:, 0].std() > 1.2 * lab_in[:, 0].std()
    stronger = kornia.color.rgb_to_lab(clahe(image, clip_limit=10.0, grid=4))
    assert stronger[:, 0].std() > lab_out[:, 0].std()
    chroma = lambda lab: torch.atan2(lab[:, 2], lab[:, 1])  # noqa: E731
    saturated = lab_in[:, 1:].norm(dim=1) > 5
    hue_shift = (chroma(lab_out) - chroma(lab_in))[saturated].abs()
    assert torch.quantile(hue_shift, 0.9) < 0.1


@pytest.mark.parametrize("method", ["bilateral", "median", "gaussian"])
def test_denoise_reduces_noise(method):
    clean = torch.full((1, 3, 32, 32), 0.2)
    clean[..., 16:] = 0.8
    noisy = (clean + 0.05 * torch.randn(clean.shape, generator=torch.Generator().manual_seed(0))).clamp(0, 1)
    out = denoise(noisy, method, strength=0.2, radius=2)
    away = [*range(0, 12), *range(20, 32)]  # a blur may soften the step itself
    assert (out - clean)[..., away].pow(2).mean() < 0.5 * (noisy - clean)[..., away].pow(2).mean()
    if method != "gaussian":  # edge-preserving filters keep the step sharp
        assert (out[..., 17] - out[..., 14]).mean() > 0.55  # the step is 0.6


NODE_ARGS = {
    E.UnsharpMaskNode: dict(radius=1.5, amount=0.8, threshold=2),
    E.AdjustColourNode: dict(brightness=1.1, contrast=1.2, saturation=0.8, gamma=1.1),
    E.AutoContrastNode: dict(cutoff=1.0),
    E.EqualizeClaheNode: dict(clip_limit=2.0, grid=8),
    E.DenoiseNode: dict(method="bilateral", strength=0.1, radius=2),
    E.ResizeImageNode: dict(method="lanczos", scale_by=1.5),
}


@pytest.mark.parametrize("node", list(NODE_ARGS), ids=lambda n: n.node_id)
@pytest.mark.parametrize("shape", [(1, 1, 1, 3), (3, 7, 5, 3), (2, 9, 13, 4), (1, 6, 11, 1)])
def test_nodes_on_awkward_shapes(tmp_path, node, shape):
    image = torch.rand(*shape, generator=torch.Generator().manual_seed(1))
    before = image.clone()
    ctx = ExecutionContext(device="cpu", output_dir=tmp_path, input_dir=tmp_path, models_dirs=[])
    (out,) = node().run(ctx, image, **NODE_ARGS[node])
    assert torch.equal(image, before), "inputs must not be modified"
    scale = 1.5 if node is E.ResizeImageNode else 1.0
    assert out.shape == (shape[0], max(1, int(shape[1] * scale + 0.5)), max(1, int(shape[2] * scale + 0.5)), shape[3])
    assert out.dtype == torch.float32 and torch.isfinite(out).all() and 0 <= out.min() and out.max() <= 1
    if shape[-1] == 4 and node is not E.ResizeImageNode:
        assert torch.equal(out[..., 3], image[..., 3])
    if shape[0] > 1 and node is not E.ResizeImageNode:  # each image is processed on its own
        (single,) = node().run(ctx, image[1:2], **NODE_ARGS[node])
        assert torch.allclose(out[1:2], single, atol=1e-5)


def test_large_image_matches_pil():
    """A larger, non-square picture: unsharp mask and Lanczos resize still agree with PIL."""
    rng = np.random.default_rng(9)
    pixels = np.kron(rng.integers(0, 256, (96, 128, 3)), np.ones((8, 8, 1))).astype(np.uint8)  # 768 x 1024
    image = as_tensor(pixels)
    sharpened = np.asarray(Image.fromarray(pixels).filter(ImageFilter.UnsharpMask(2, 120, 3)), np.float32)
    diff = np.abs(as_levels(unsharp_mask(image, 2, 1.2, 3)) - sharpened)
    assert np.mean(diff <= 1.5) > 0.97
    from imagetune.ops.resample import resize
    small = np.stack([np.asarray(Image.fromarray(pixels[..., c]).convert("F").resize((300, 225), Image.LANCZOS))
                      for c in range(3)], -1)
    assert np.abs(as_levels(resize(image, 225, 300, "lanczos")) - small).max() < 0.01
