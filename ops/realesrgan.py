"""Real-ESRGAN's two networks in plain torch, and a model descriptor, for installs without spandrel.

Inside ComfyUI spandrel is always installed and ``ops/upscale.py`` uses it, so ``UPSCALE_MODEL``
values are spandrel's own ``ImageModelDescriptor``s there. A pip install of this package does not
bring spandrel, because spandrel declares a torchvision requirement that would pull a torchvision
built for another torch. Without it, the shipped Real-ESRGAN models (and user files in the same two
layouts) load into the networks here, wrapped in ``ImageModel``: the same attributes and call
semantics as spandrel's descriptor (``model``, ``architecture.id/name``, ``purpose``, ``tags``,
``scale``, ``input_channels``, ``output_channels``, ``size_requirements``, ``tiling``,
``supports_half``, ``supports_bfloat16``, ``device``, ``dtype``, ``to``/``half``/``float``/``cpu``/
``cuda``/``eval``; calling it takes [1,C,H,W] in 0..1 and returns the clamped result without
gradients), so the upscale nodes and ComfyUI's ``ImageUpscaleWithModel`` use either.

The state-dict keys are Real-ESRGAN's (and spandrel's for these two architectures):
- ``SRVGGNetCompact``: ``body.2i`` 3x3 convolutions and ``body.2i+1`` PReLUs, the last convolution
  giving ``out_ch * scale**2`` channels for a pixel shuffle; the nearest-upsampled input is added.
- ``RRDBNet`` (x4): ``conv_first``, ``body.N.rdbR.convC`` (R = 1..3 residual dense blocks of five
  convolutions, C = 1..5), ``conv_body``, two nearest x2 upsamplings with ``conv_up1``/``conv_up2``,
  then ``conv_hr`` and ``conv_last``; leaky ReLU 0.2; residual scaling 0.2.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from enum import Enum
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

#: what to install for model files in any other layout (spandrel's other requirements are ours too)
SPANDREL_FIX = "pip install --no-deps spandrel==0.4.2"


@dataclass(frozen=True)
class Architecture:
    """The ``id`` and ``name`` spandrel gives the architecture."""

    id: str
    name: str

    def __str__(self) -> str:
        return self.name


COMPACT = Architecture("Compact", "RealESRGAN Compact")
ESRGAN = Architecture("ESRGAN", "ESRGAN")


class ModelTiling(Enum):
    """Whether running the model on tiles is fine (it is for both networks here)."""

    SUPPORTED = 1
    DISCOURAGED = 2
    INTERNAL = 3


@dataclass
class SizeRequirements:
    """Input sides the network wants: at least ``minimum``, a multiple of ``multiple_of``, square or not."""

    minimum: int = 0
    multiple_of: int = 1
    square: bool = False

    def get_padding(self, width: int, height: int) -> tuple[int, int]:
        """(extra width, extra height) that make an input of this size acceptable."""
        w = -(-max(self.minimum, width) // self.multiple_of) * self.multiple_of
        h = -(-max(self.minimum, height) // self.multiple_of) * self.multiple_of
        if self.square:
            w = h = max(w, h)
        return w - width, h - height

    def check(self, width: int, height: int) -> bool:
        return self.get_padding(width, height) == (0, 0)


def _pad(image: torch.Tensor, requirements: SizeRequirements) -> torch.Tensor:
    """Pad right and bottom: mirrored as far as the image allows, then by repeating the edge."""
    pad_w, pad_h = requirements.get_padding(image.shape[-1], image.shape[-2])
    if not (pad_w or pad_h):
        return image
    mirror_w, mirror_h = min(pad_w, image.shape[-1] - 1), min(pad_h, image.shape[-2] - 1)
    image = F.pad(image, (0, mirror_w, 0, mirror_h), mode="reflect")
    return F.pad(image, (0, pad_w - mirror_w, 0, pad_h - mirror_h), mode="replicate")


class ImageModel:
    """An image-to-image network with spandrel ``ImageModelDescriptor``'s attributes and call."""

    def __init__(self, model: nn.Module, state_dict: dict, architecture: Architecture, purpose: str,
                 tags: list[str], supports_half: bool, supports_bfloat16: bool, scale: int,
                 input_channels: int, output_channels: int, size_requirements: SizeRequirements | None = None,
                 tiling: ModelTiling = ModelTiling.SUPPORTED,
                 call_fn: Callable[[nn.Module, torch.Tensor], torch.Tensor] | None = None):
        self._model, self._architecture, self._purpose = model, architecture, purpose
        self.tags, self.scale = tags, scale
        self.supports_half, self.supports_bfloat16 = supports_half, supports_bfloat16
        self.input_channels, self.output_channels = input_channels, output_channels
        self.size_requirements = size_requirements or SizeRequirements()
        self.tiling = tiling
        self._call_fn = call_fn or (lambda net, image: net(image))
        model.load_state_dict(state_dict)

    @property
    def model(self) -> nn.Module:
        return self._model

    @property
    def architecture(self) -> Architecture:
        return self._architecture

    @property
    def purpose(self) -> str:
        return self._purpose

    @property
    def device(self) -> torch.device:
        return next(self._model.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        return next(self._model.parameters()).dtype

    def to(self, *args, **kwargs) -> "ImageModel":
        """Move and/or cast the network, as ``nn.Module.to`` (a half/bfloat16 the model refuses raises)."""
        dtypes = [a for a in (*args, kwargs.get("dtype")) if isinstance(a, torch.dtype)]
        for dtype in dtypes:
            if (dtype == torch.float16 and not self.supports_half) or \
                    (dtype == torch.bfloat16 and not self.supports_bfloat16):
                raise ValueError(f"{self._architecture} does not support {dtype}")
        self._model.to(*args, **kwargs)
        return self

    def half(self) -> "ImageModel":
        return self.to(torch.float16)

    def bfloat16(self) -> "ImageModel":
        return self.to(torch.bfloat16)

    def float(self) -> "ImageModel":
        return self.to(torch.float32)

    def cpu(self) -> "ImageModel":
        return self.to("cpu")

    def cuda(self, device: int | None = None) -> "ImageModel":
        self._model.cuda(device)
        return self

    def eval(self) -> "ImageModel":
        self._model.eval()
        return self

    def train(self, mode: bool = True) -> "ImageModel":
        self._model.train(mode)
        return self

    @torch.inference_mode()
    def __call__(self, image: torch.Tensor) -> torch.Tensor:
        """[1,C,H,W] in 0..1 (the model's device and dtype) -> [1,C,H*scale,W*scale], clamped to 0..1."""
        if image.dim() != 4:
            raise ValueError(f"expected a [B,C,H,W] image, got shape {tuple(image.shape)}")
        h, w = image.shape[-2:]
        if self._model.training:
            self._model.eval()
        out = self._call_fn(self._model, _pad(image, self.size_requirements)).clamp_(0, 1)
        return out[..., :h * self.scale, :w * self.scale]

    def __repr__(self) -> str:
        return f"ImageModel({self._architecture.name}, x{self.scale}, {', '.join(self.tags)})"


class SRVGGNetCompact(nn.Module):
    """Real-ESRGAN's compact network: plain 3x3 convolutions with PReLUs, a pixel shuffle, plus the nearest-upsampled input."""

    def __init__(self, in_ch: int = 3, out_ch: int = 3, features: int = 64, convs: int = 16, scale: int = 4):
        super().__init__()
        self.scale = scale
        layers: list[nn.Module] = [nn.Conv2d(in_ch, features, 3, 1, 1), nn.PReLU(features)]
        for _ in range(convs):
            layers += [nn.Conv2d(features, features, 3, 1, 1), nn.PReLU(features)]
        layers.append(nn.Conv2d(features, out_ch * scale * scale, 3, 1, 1))
        self.body = nn.ModuleList(layers)
        self.upsampler = nn.PixelShuffle(scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = x
        for layer in self.body:
            out = layer(out)
        return self.upsampler(out) + F.interpolate(x, scale_factor=self.scale, mode="nearest")


class ResidualDenseBlock(nn.Module):
    """Five densely connected 3x3 convolutions; the result, scaled by 0.2, is added to the input."""

    def __init__(self, features: int = 64, growth: int = 32):
        super().__init__()
        for index in range(1, 5):
            setattr(self, f"conv{index}", nn.Conv2d(features + (index - 1) * growth, growth, 3, 1, 1))
        self.conv5 = nn.Conv2d(features + 4 * growth, features, 3, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        seen = [x]
        for index in range(1, 5):
            seen.append(F.leaky_relu(getattr(self, f"conv{index}")(torch.cat(seen, 1)), 0.2))
        return self.conv5(torch.cat(seen, 1)) * 0.2 + x


class RRDB(nn.Module):
    """Three residual dense blocks in a row, their result scaled by 0.2 and added to the input."""

    def __init__(self, features: int = 64, growth: int = 32):
        super().__init__()
        self.rdb1, self.rdb2, self.rdb3 = (ResidualDenseBlock(features, growth) for _ in range(3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.rdb3(self.rdb2(self.rdb1(x))) * 0.2 + x


class RRDBNet(nn.Module):
    """ESRGAN's generator at x4 (Real-ESRGAN's key names)."""

    def __init__(self, in_ch: int = 3, out_ch: int = 3, features: int = 64, blocks: int = 23, growth: int = 32):
        super().__init__()
        self.conv_first = nn.Conv2d(in_ch, features, 3, 1, 1)
        self.body = nn.Sequential(*(RRDB(features, growth) for _ in range(blocks)))
        self.conv_body = nn.Conv2d(features, features, 3, 1, 1)
        self.conv_up1 = nn.Conv2d(features, features, 3, 1, 1)
        self.conv_up2 = nn.Conv2d(features, features, 3, 1, 1)
        self.conv_hr = nn.Conv2d(features, features, 3, 1, 1)
        self.conv_last = nn.Conv2d(features, out_ch, 3, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feat = self.conv_first(x)
        feat = feat + self.conv_body(self.body(feat))
        for conv in (self.conv_up1, self.conv_up2):
            feat = F.leaky_relu(conv(F.interpolate(feat, scale_factor=2, mode="nearest")), 0.2)
        return self.conv_last(F.leaky_relu(self.conv_hr(feat), 0.2))


def _shapes(state_dict: dict) -> dict[str, tuple[int, ...]]:
    return {key: tuple(value.shape) for key, value in state_dict.items()}


def _compact(state_dict: dict) -> ImageModel | None:
    first, count = state_dict.get("body.0.weight"), len(state_dict)
    if first is None or first.dim() != 4 or count % 3 != 2 or count < 5:
        return None
    convs = (count + 1) // 3  # each convolution has weight and bias, each PReLU but the last's one slope
    in_ch, features = first.shape[1], first.shape[0]
    last = state_dict.get(f"body.{2 * (convs - 1)}.weight")
    if last is None or last.dim() != 4:
        return None
    scale = math.isqrt(last.shape[0] // in_ch)
    if scale < 1 or in_ch * scale * scale != last.shape[0]:
        return None
    net = SRVGGNetCompact(in_ch, in_ch, features, convs - 2, scale)
    if _shapes(net.state_dict()) != _shapes(state_dict):
        return None
    return ImageModel(net, state_dict, COMPACT, "SR", [f"{features}nf", f"{convs - 2}nc"], True, True, scale,
                      in_ch, in_ch)


def _rrdb(state_dict: dict) -> ImageModel | None:
    first, last = state_dict.get("conv_first.weight"), state_dict.get("conv_last.weight")
    if first is None or last is None or "conv_up2.weight" not in state_dict or "conv_up3.weight" in state_dict:
        return None
    blocks = len({key.split(".")[1] for key in state_dict if key.startswith("body.")})
    growth = state_dict.get("body.0.rdb1.conv1.weight")
    if blocks < 1 or growth is None:
        return None
    net = RRDBNet(first.shape[1], last.shape[0], first.shape[0], blocks, growth.shape[0])
    if _shapes(net.state_dict()) != _shapes(state_dict):
        return None
    return ImageModel(net, state_dict, ESRGAN, "SR", [f"{first.shape[0]}nf", f"{blocks}nb"], True, True, 4,
                      first.shape[1], last.shape[0], size_requirements=SizeRequirements(minimum=2))


def load_state_dict(state_dict: dict) -> ImageModel | None:
    """An ``ImageModel`` for a Real-ESRGAN compact or x4 RRDBNet state dict (exact keys and shapes), else None."""
    return _compact(state_dict) or _rrdb(state_dict)
