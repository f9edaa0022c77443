"""Optimisation-based style transfer on a VGG-19 encoder the user provides (no VGG weights ship offline).

Weights: a safetensors file in torchvision's ``vgg19().features`` layout (keys ``features.N.weight``
/ ``features.N.bias`` or ``N.weight``); channel widths are read from the file. Two losses:
- "gatys": Gatys et al. 2016, content at conv4_2, Gram matrices at relu1_1 .. relu5_1;
- "adain": Huang & Belongie 2017's target AdaIN(content, style) at relu4_1 plus their
  mean/std style loss at relu1_1 .. relu4_1, optimised on the image (no trained decoder needed).
Images are [B,3,H,W] RGB in 0..1; optimisation runs with autograd even under inference mode.
"""
from __future__ import annotations

import functools
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F

# torchvision's VGG-19 features: conv indices (ReLU follows at +1) and max-pools.
CONV_INDICES = (0, 2, 5, 7, 10, 12, 14, 16, 19, 21, 23, 25, 28, 30, 32, 34)
POOL_INDICES = (4, 9, 18, 27, 36)
LAYER_INDEX = {"relu1_1": 1, "relu2_1": 6, "relu3_1": 11, "relu4_1": 20, "relu4_2": 22, "relu5_1": 29}
GATYS_STYLE = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
ADAIN_STYLE = ("relu1_1", "relu2_1", "relu3_1", "relu4_1")
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class VGGEncoder:
    """The VGG-19 feature stack up to relu5_1, as plain conv weights (no torchvision needed)."""

    def __init__(self, weights: dict[int, tuple[torch.Tensor, torch.Tensor]]):
        self.weights = weights
        self.depth = max(weights) + 1

    def to(self, device, dtype=torch.float32) -> "VGGEncoder":
        """A copy on ``device``."""
        return VGGEncoder({i: (w.to(device, dtype), b.to(device, dtype)) for i, (w, b) in self.weights.items()})

    def features(self, rgb: torch.Tensor, names) -> dict[str, torch.Tensor]:
        """Activations of ``names`` (like "relu4_1") for [B,3,H,W] RGB 0..1."""
        mean = torch.tensor(IMAGENET_MEAN, device=rgb.device, dtype=rgb.dtype).view(1, 3, 1, 1)
        std = torch.tensor(IMAGENET_STD, device=rgb.device, dtype=rgb.dtype).view(1, 3, 1, 1)
        x = (rgb - mean) / std
        wanted = {LAYER_INDEX[n]: n for n in names}
        last = max(wanted)
        found = {}
        for index in range(last + 1):
            if index in self.weights:
                w, b = self.weights[index]
                x = F.conv2d(x, w, b, padding=1)
            elif index in POOL_INDICES:
                x = F.max_pool2d(x, 2, ceil_mode=True)
            else:
                x = F.relu(x)
            if index in wanted:
                found[wanted[index]] = x
        return found


def read_vgg(path: Path) -> VGGEncoder:
    """Load a VGG-19 features file (safetensors); raise ValueError naming what is missing."""
    from safetensors.torch import load_file

    state = load_file(str(path))
    weights = {}
    for index in CONV_INDICES[:13]:  # up to conv5_1, the deepest layer any loss uses
        for prefix in ("features.", "", "vgg.features.", "model.features."):
            if f"{prefix}{index}.weight" in state:
                weights[index] = (state[f"{prefix}{index}.weight"].float(), state[f"{prefix}{index}.bias"].float())
                break
        else:
            raise ValueError(f"{path.name}: no weights for VGG-19 layer features.{index} "
                             f"(expected torchvision's vgg19().features keys)")
    return VGGEncoder(weights)


@functools.lru_cache(maxsize=2)
def _load_cached(path: str, mtime_ns: int, size: int) -> VGGEncoder:
    with torch.inference_mode(False):
        return read_vgg(Path(path))


def load_vgg(path: Path) -> VGGEncoder:
    """A VGG-19 encoder from a file, cached per process until the file changes (normal, non-inference tensors)."""
    stat = path.stat()
    return _load_cached(str(path), stat.st_mtime_ns, stat.st_size)


def gram(features: torch.Tensor) -> torch.Tensor:
    """Normalised Gram matrix [B,C,C] of [B,C,H,W] features."""
    b, c, h, w = features.shape
    flat = features.reshape(b, c, h * w)
    return flat @ flat.transpose(1, 2) / (c * h * w)


def mean_std(features: torch.Tensor, eps: float = 1e-5) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel mean and std [B,C,1,1] of [B,C,H,W] features."""
    mean = features.mean(dim=(2, 3), keepdim=True)
    std = (features.var(dim=(2, 3), keepdim=True, unbiased=False) + eps).sqrt()
    return mean, std


def adain(content: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
    """Adaptive instance normalisation: content features with the style's per-channel mean and std."""
    c_mean, c_std = mean_std(content)
    s_mean, s_std = mean_std(style)
    return (content - c_mean) / c_std * s_std + s_mean


def gatys_loss(encoder: VGGEncoder, image, content_feats, style_grams, style_weight: float) -> torch.Tensor:
    """Content MSE at relu4_2 plus ``style_weight`` times the Gram MSE summed over GATYS_STYLE."""
    feats = encoder.features(image, GATYS_STYLE + ("relu4_2",))
    loss = F.mse_loss(feats["relu4_2"], content_feats["relu4_2"])
    style = sum(F.mse_loss(gram(feats[n]), style_grams[n]) for n in GATYS_STYLE)
    return loss + style_weight * style


def adain_loss(encoder: VGGEncoder, image, target, style_stats, style_weight: float) -> torch.Tensor:
    """MSE to the AdaIN target at relu4_1 plus ``style_weight`` times the mean/std distances (Huang's loss)."""
    feats = encoder.features(image, ADAIN_STYLE)
    loss = F.mse_loss(feats["relu4_1"], target)
    style = 0.0
    for name in ADAIN_STYLE:
        mean, std = mean_std(feats[name])
        s_mean, s_std = style_stats[name]
        style = style + F.mse_loss(mean, s_mean) + F.mse_loss(std, s_std)
    return loss + style_weight * style


def optimise_style(encoder: VGGEncoder, content: torch.Tensor, style: torch.Tensor, method: str, steps: int,
                   style_weight: float, learning_rate: float = 0.02,
                   progress: Callable[[int, int], None] | None = None) -> torch.Tensor:
    """Optimise an image from ``content`` [B,3,H,W] towards ``style`` [B,3,h,w] with Adam; returns [B,3,H,W] in 0..1."""
    with torch.inference_mode(False), torch.enable_grad():
        content, style = content.float().clone(), style.float().clone()
        with torch.no_grad():
            if method == "gatys":
                target = encoder.features(content, ("relu4_2",))
                style_feats = encoder.features(style, GATYS_STYLE)
                reference = {n: gram(f) for n, f in style_feats.items()}
            else:
                content_feats = encoder.features(content, ("relu4_1",))
                style_feats = encoder.features(style, ADAIN_STYLE)
                target = adain(content_feats["relu4_1"], style_feats["relu4_1"])
                reference = {n: mean_std(f) for n, f in style_feats.items()}
        image = content.clone().requires_grad_(True)
        optimiser = torch.optim.Adam([image], lr=learning_rate)
        for step in range(steps):
            optimiser.zero_grad()
            if method == "gatys":
                loss = gatys_loss(encoder, image, target, reference, style_weight)
            else:
                loss = adain_loss(encoder, image, target, reference, style_weight)
            loss.backward()
            optimiser.step()
            with torch.no_grad():
                image.clamp_(0, 1)
            if progress is not None:
                progress(step + 1, steps)
        return image.detach().clone()
