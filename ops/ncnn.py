"""Reading ncnn ``.param``/``.bin`` model pairs, and turning Real-ESRGAN ones into spandrel state dicts.

The ``.param`` file is text: a magic line (7767517), "layer_count blob_count", then one line per
layer: ``Type name n_in n_out in_blobs... out_blobs... key=value...`` (a key -23300-k holds the
array parameter k as "count,v1,v2..."). The ``.bin`` file holds the weights of the layers in the
same order: a Convolution stores a 4-byte tag then its weights (tag 0x01306B47: fp16, padded to
4 bytes; tag 0: fp32), then an untagged fp32 bias; a PReLU stores untagged fp32 slopes.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

MAGIC = 7767517
FP16_TAG = 0x01306B47
WEIGHTLESS = {"Input", "Split", "Concat", "Eltwise", "BinaryOp", "Interp", "PixelShuffle", "ReLU"}


class NcnnFormatError(ValueError):
    """The ncnn files are malformed, or hold a graph this reader does not know."""


@dataclass
class Layer:
    """One layer line of a ``.param`` file, plus the weights read for it from the ``.bin``."""

    type: str
    name: str
    inputs: list[str]
    outputs: list[str]
    params: dict[int, object]
    weights: dict[str, torch.Tensor] = field(default_factory=dict)

    def param(self, key: int, default=None):
        """A parameter by ncnn id, or ``default``."""
        return self.params.get(key, default)


def _number(text: str):
    return float(text) if any(c in text for c in ".eE") else int(text)


def parse_param(text: str) -> list[Layer]:
    """Parse ``.param`` text into layers, in file order."""
    lines = [line.split() for line in text.splitlines() if line.strip()]
    if not lines or lines[0] != [str(MAGIC)]:
        raise NcnnFormatError(f"not an ncnn .param file: the first line must be {MAGIC}")
    layer_count = int(lines[1][0])
    layers = []
    for number, parts in enumerate(lines[2:], start=3):
        try:
            kind, name, n_in, n_out = parts[0], parts[1], int(parts[2]), int(parts[3])
            blobs = parts[4:4 + n_in + n_out]
            params: dict[int, object] = {}
            for item in parts[4 + n_in + n_out:]:
                key, value = item.split("=", 1)
                key = int(key)
                if key <= -23300:
                    params[-23300 - key] = [_number(v) for v in value.split(",")[1:]]
                else:
                    params[key] = _number(value)
        except (ValueError, IndexError) as exc:
            raise NcnnFormatError(f".param line {number}: cannot parse {' '.join(parts)!r} ({exc})") from None
        layers.append(Layer(kind, name, blobs[:n_in], blobs[n_in:], params))
    if len(layers) != layer_count:
        raise NcnnFormatError(f".param declares {layer_count} layers but lists {len(layers)}")
    return layers


class _BinReader:
    """Sequential reads from the ``.bin`` bytes, tracking how much was consumed."""

    def __init__(self, data: bytes):
        self.data = data
        self.offset = 0

    def _take(self, size: int, what: str) -> bytes:
        if self.offset + size > len(self.data):
            raise NcnnFormatError(f".bin ends early while reading {what} ({size} bytes at offset {self.offset})")
        chunk = self.data[self.offset:self.offset + size]
        self.offset += size
        return chunk

    def tagged(self, count: int, what: str) -> np.ndarray:
        tag = int.from_bytes(self._take(4, what), "little")
        if tag == FP16_TAG:
            values = np.frombuffer(self._take(count * 2, what), dtype="<f2").astype(np.float32)
            self._take((4 - count * 2 % 4) % 4, what)  # fp16 data is padded to 4 bytes
            return values
        if tag == 0:
            return np.frombuffer(self._take(count * 4, what), dtype="<f4").copy()
        raise NcnnFormatError(f"{what}: unsupported weight storage tag {tag:#010x} (quantized models are not supported)")

    def raw(self, count: int, what: str) -> np.ndarray:
        return np.frombuffer(self._take(count * 4, what), dtype="<f4").copy()


def read_weights(layers: list[Layer], data: bytes) -> list[Layer]:
    """Attach each layer's weights from the ``.bin`` bytes; every byte must be consumed."""
    reader = _BinReader(data)
    for layer in layers:
        if layer.type == "Convolution":
            out_ch, size = int(layer.param(0)), int(layer.param(6))
            kw = int(layer.param(1, 1))
            kh = int(layer.param(11, kw))
            in_ch, rest = divmod(size, out_ch * kh * kw)
            if rest or in_ch == 0:
                raise NcnnFormatError(f"{layer.name}: weight size {size} is not out*in*{kh}*{kw} for out={out_ch}")
            weight = reader.tagged(size, f"{layer.name} weights")
            layer.weights["weight"] = torch.from_numpy(weight).reshape(out_ch, in_ch, kh, kw)
            if layer.param(5, 0):
                layer.weights["bias"] = torch.from_numpy(reader.raw(out_ch, f"{layer.name} bias"))
        elif layer.type == "PReLU":
            layer.weights["weight"] = torch.from_numpy(reader.raw(int(layer.param(0, 1)), f"{layer.name} slopes"))
        elif layer.type not in WEIGHTLESS:
            raise NcnnFormatError(f"{layer.name}: layer type {layer.type} is not supported")
    if reader.offset != len(reader.data):
        raise NcnnFormatError(f".bin has {len(reader.data) - reader.offset} bytes left after the last layer")
    return layers


def load_ncnn(param_path: Path | str, bin_path: Path | str) -> list[Layer]:
    """Layers of an ncnn model pair with their weights."""
    layers = parse_param(Path(param_path).read_text(encoding="utf-8"))
    return read_weights(layers, Path(bin_path).read_bytes())


@dataclass
class ConvertedModel:
    """A spandrel-loadable state dict, and a final resize factor ncnn applies after the network."""

    state_dict: dict[str, torch.Tensor]
    architecture: str
    network_scale: int
    output_resize: float = 1.0


def _conv_keys(layers: list[Layer]) -> list[Layer]:
    for layer in layers:
        if layer.type == "Convolution" and (int(layer.param(1, 1)) != 3 or int(layer.param(3, 1)) != 1
                                            or int(layer.param(4, 0)) != 1 or int(layer.param(2, 1)) != 1):
            raise NcnnFormatError(f"{layer.name}: expected a 3x3 stride-1 pad-1 convolution")
    return [layer for layer in layers if layer.type == "Convolution"]


def _trailing_resize(layers: list[Layer]) -> float:
    """The scale of an Interp that resizes the network's output (the x2/x3 compact models), else 1."""
    last = layers[-1]
    if last.type == "Interp" and last.outputs == ["output"]:
        if int(last.param(0, 0)) != 3:
            raise NcnnFormatError(f"{last.name}: expected a bicubic output resize")
        return float(last.param(1, 1.0))
    return 1.0


def _compact_state(layers: list[Layer]) -> ConvertedModel:
    convs = _conv_keys(layers)
    prelus = [layer for layer in layers if layer.type == "PReLU"]
    if len(prelus) != len(convs) - 1:
        raise NcnnFormatError(f"SRVGGNetCompact needs one PReLU per convolution but the last; "
                              f"got {len(convs)} convolutions and {len(prelus)} PReLUs")
    state = {}
    for index, conv in enumerate(convs):
        state[f"body.{2 * index}.weight"] = conv.weights["weight"]
        state[f"body.{2 * index}.bias"] = conv.weights["bias"]
        if index < len(prelus):
            state[f"body.{2 * index + 1}.weight"] = prelus[index].weights["weight"]
    shuffle = [layer for layer in layers if layer.type == "PixelShuffle"]
    scale = int(shuffle[0].param(0, 1))
    out_ch = convs[-1].weights["weight"].shape[0]
    if out_ch != 3 * scale * scale:
        raise NcnnFormatError(f"last convolution has {out_ch} outputs, expected 3*{scale}^2")
    return ConvertedModel(state, "Compact", scale, _trailing_resize(layers))


def _rrdb_keys(num_blocks: int) -> list[str]:
    keys = ["conv_first"]
    keys += [f"body.{b}.rdb{r}.conv{c}" for b in range(num_blocks) for r in (1, 2, 3) for c in range(1, 6)]
    return keys + ["conv_body", "conv_up1", "conv_up2", "conv_hr", "conv_last"]


def _rrdb_state(layers: list[Layer]) -> ConvertedModel:
    convs = _conv_keys(layers)
    num_blocks, rest = divmod(len(convs) - 6, 15)
    if rest or num_blocks < 1:
        raise NcnnFormatError(f"{len(convs)} convolutions do not form an RRDBNet (6 + 15 per block)")
    ups = [layer for layer in layers if layer.type == "Interp"]
    if len(ups) != 2 or any(int(u.param(0, 0)) != 1 or float(u.param(1, 0)) != 2.0 for u in ups):
        raise NcnnFormatError("RRDBNet x4 needs two nearest x2 upsamplings")
    state = {}
    for key, conv in zip(_rrdb_keys(num_blocks), convs):
        state[f"{key}.weight"] = conv.weights["weight"]
        state[f"{key}.bias"] = conv.weights["bias"]
    return ConvertedModel(state, "ESRGAN", 4)


def realesrgan_state_dict(layers: list[Layer]) -> ConvertedModel:
    """Map the weights of a Real-ESRGAN ncnn graph (RRDBNet or SRVGGNetCompact) to spandrel's keys."""
    kinds = {layer.type for layer in layers}
    if "PReLU" in kinds and "PixelShuffle" in kinds:
        converted = _compact_state(layers)
    elif "Eltwise" in kinds and "Concat" in kinds:
        converted = _rrdb_state(layers)
    else:
        raise NcnnFormatError(f"not a Real-ESRGAN graph (layer types {sorted(kinds)})")
    used = sum(t.numel() for t in converted.state_dict.values())
    stored = sum(t.numel() for layer in layers for t in layer.weights.values())
    if used != stored:
        raise NcnnFormatError(f"{stored - used} of {stored} weights were not mapped to the model")
    if not math.isfinite(converted.output_resize) or converted.output_resize <= 0:
        raise NcnnFormatError(f"bad output resize {converted.output_resize}")
    return converted
