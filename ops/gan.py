"""A DCGAN generator G(z) built from a small JSON config and a safetensors state dict.

The layer layout (``main.N`` keys) is the one of the PyTorch DCGAN tutorial, so a generator
trained with it loads directly: a 4x4 transposed convolution from z, then stride-2 transposed
convolutions with batch norm and ReLU doubling the size, and a tanh output.

Config (``<name>.json`` next to the weights, or ``config.json`` in the same folder)::

    {"z_dim": 100, "image_size": 64, "channels": 3, "base_channels": 64}
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from ..graph_runtime.errors import NodeInputError
from .limits import MAX_IMAGE_PIXELS, check_pixels

DEFAULTS = {"z_dim": 100, "image_size": 64, "channels": 3, "base_channels": 64}


class DCGANGenerator(nn.Module):
    """z [B, z_dim] -> image [B, channels, size, size] in -1..1 (tanh)."""

    def __init__(self, z_dim: int = 100, image_size: int = 64, channels: int = 3, base_channels: int = 64):
        super().__init__()
        doublings = int(math.log2(image_size)) - 2
        if image_size < 8 or 2 ** (doublings + 2) != image_size:
            raise ValueError(f"image_size must be a power of two >= 8, got {image_size}")
        self.z_dim, self.image_size, self.channels = z_dim, image_size, channels
        width = base_channels * 2 ** (doublings - 1)
        layers: list[nn.Module] = [nn.ConvTranspose2d(z_dim, width, 4, 1, 0, bias=False),
                                   nn.BatchNorm2d(width), nn.ReLU(True)]
        for _ in range(doublings - 1):
            layers += [nn.ConvTranspose2d(width, width // 2, 4, 2, 1, bias=False),
                       nn.BatchNorm2d(width // 2), nn.ReLU(True)]
            width //= 2
        layers += [nn.ConvTranspose2d(width, channels, 4, 2, 1, bias=False), nn.Tanh()]
        self.main = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.main(z.reshape(z.shape[0], self.z_dim, 1, 1))


@dataclass(eq=False)
class GAN:
    """A loaded generator (eval mode, on the CPU until used) and where it runs."""

    model: DCGANGenerator
    name: str
    device: str

    @property
    def z_dim(self) -> int:
        """Length of the latent vector z."""
        return self.model.z_dim

    def release(self) -> None:
        """Leave the accelerator (the cache drops the last reference)."""
        self.model.to("cpu")


def read_config(weights: Path, field: str = "gan_name") -> dict:
    """The generator config next to ``weights``: ``<stem>.json`` or the folder's ``config.json``."""
    for candidate in (weights.with_suffix(".json"), weights.parent / "config.json"):
        if candidate.is_file():
            try:
                config = json.loads(candidate.read_text())
            except json.JSONDecodeError as exc:
                raise NodeInputError(field, f"{candidate.name} is not valid JSON: {exc}") from exc
            unknown = set(config) - set(DEFAULTS)
            if unknown:
                raise NodeInputError(field, f"{candidate.name}: expected keys {sorted(DEFAULTS)}, "
                                            f"got unknown {sorted(unknown)}")
            return {**DEFAULTS, **config}
    raise NodeInputError(field, f"expected a config {weights.with_suffix('.json').name} or config.json "
                                f"next to {weights.name}, found neither")


def load_gan(weights: Path, device: str, field: str = "gan_name") -> GAN:
    """Build the generator from its config and load the safetensors state dict strictly."""
    from safetensors.torch import load_file

    if weights.suffix.lower() != ".safetensors":
        raise NodeInputError(field, f"expected a .safetensors state dict, got {weights.name}")
    config = read_config(weights, field)
    try:
        model = DCGANGenerator(**config)
        model.load_state_dict(load_file(str(weights)), strict=True)
    except (ValueError, RuntimeError) as exc:
        raise NodeInputError(field, f"{weights.name} does not fit the config {config}: {exc}") from exc
    return GAN(model.eval().requires_grad_(False), weights.stem, device)


def generate(gan: GAN, z: torch.Tensor) -> torch.Tensor:
    """IMAGE [B, H, W, C] float32 in 0..1 from z [B, z_dim], on the generator's device."""
    if z.dim() != 2 or z.shape[1] != gan.z_dim:
        raise NodeInputError("z", f"expected a latent of shape [B, {gan.z_dim}], got {list(z.shape)}")
    size = gan.model.image_size  # from the generator's config file: checked before the network allocates
    check_pixels("z", z.shape[0], size, size, MAX_IMAGE_PIXELS, "the generated images")
    x = gan.model(z.to(gan.device, torch.float32))
    return ((x + 1) / 2).clamp(0, 1).permute(0, 2, 3, 1).contiguous()
