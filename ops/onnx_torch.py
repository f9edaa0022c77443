"""Run an ONNX file as a torch module: a small interpreter over the op types ImageTune's shipped models use.

The protobuf is parsed with the ``onnx`` package's generated message classes (``onnx_ml_pb2``), loaded
without the package's ``__init__``, which imports ml_dtypes (about a second of a style run's start);
attributes and tensors are read here for the element types in ``NUMPY_DTYPES``. Nodes whose inputs are all constants (weight
dequantisation, the padding arithmetic torch's exporter writes) are evaluated once at load time;
the rest run on torch tensors on whatever device and floating dtype the module is moved to.
Shape-like inputs (pads, axes, target shapes, scales) must be constants and become Python values.
"""
from __future__ import annotations

import contextlib
import importlib.util
import sys
import threading
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

# ONNX TensorProto element types -> torch dtypes (the ones these graphs hold)
DTYPES = {1: torch.float32, 2: torch.uint8, 3: torch.int8, 6: torch.int32, 7: torch.int64, 9: torch.bool,
          10: torch.float16, 11: torch.float64}
QUANT_RANGE = {torch.int8: (-128, 127), torch.uint8: (0, 255)}


NUMPY_DTYPES = {1: np.float32, 2: np.uint8, 3: np.int8, 6: np.int32, 7: np.int64, 9: np.bool_, 10: np.float16,
                11: np.float64}
# TensorProto fields holding the values when there is no raw_data (float16's bits sit in int32_data)
TYPED_FIELDS = {1: "float_data", 2: "int32_data", 3: "int32_data", 6: "int32_data", 7: "int64_data", 9: "int32_data",
                10: "int32_data", 11: "double_data"}
# AttributeProto.type -> the field holding its value (FLOAT, INT, STRING, TENSOR, FLOATS, INTS, STRINGS)
ATTRIBUTE_FIELDS = {1: "f", 2: "i", 3: "s", 4: "t", 6: "floats", 7: "ints", 8: "strings"}


def onnx_proto():
    """onnx's generated protobuf module, from the installed onnx package but without importing the package."""
    spec = importlib.util.find_spec("onnx")
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError("reading the ONNX style models needs the 'onnx' package: pip install onnx")
    if "onnx.onnx_ml_pb2" in sys.modules:  # onnx itself is imported already: share its classes
        return sys.modules["onnx.onnx_ml_pb2"]
    location = Path(list(spec.submodule_search_locations)[0]) / "onnx_ml_pb2.py"
    module_spec = importlib.util.spec_from_file_location("onnx.onnx_ml_pb2", location)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    # registered under its own name, so a later ``import onnx`` reuses it instead of adding the file twice
    sys.modules["onnx.onnx_ml_pb2"] = module
    return module


def load_model(path: Path):
    """The ModelProto in an .onnx file (weights inside the file; external data is not used by these models)."""
    model = onnx_proto().ModelProto()
    model.ParseFromString(path.read_bytes())
    return model


def _attr(node) -> dict:
    attrs = {}
    for a in node.attribute:
        if a.type not in ATTRIBUTE_FIELDS:
            raise NotImplementedError(f"ONNX attribute {a.name!r} of type {a.type} (node {node.name!r})")
        value = getattr(a, ATTRIBUTE_FIELDS[a.type])
        attrs[a.name] = _plain(list(value) if a.type in (6, 7, 8) else value)
    return attrs


def _plain(value):
    """Attribute values as Python/torch values: bytes -> str, TensorProto -> tensor."""
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if hasattr(value, "data_type"):
        return _tensor(value)
    return value


def _tensor(proto) -> torch.Tensor:
    """A TensorProto (initializer or attribute) -> a CPU torch tensor that owns its memory."""
    if proto.data_type not in NUMPY_DTYPES:
        raise NotImplementedError(f"ONNX tensor {proto.name!r}: element type {proto.data_type}")
    if proto.data_location == 1:  # EXTERNAL
        raise NotImplementedError(f"ONNX tensor {proto.name!r} keeps its data in another file")
    dtype = np.dtype(NUMPY_DTYPES[proto.data_type]).newbyteorder("<")
    if proto.HasField("raw_data"):
        array = np.frombuffer(proto.raw_data, dtype=dtype)
    else:
        values = np.asarray(getattr(proto, TYPED_FIELDS[proto.data_type]))
        array = values.astype(np.uint16).view(np.float16) if proto.data_type == 10 else values.astype(dtype)
    return torch.from_numpy(array.astype(dtype.newbyteorder("="), copy=True).reshape(tuple(proto.dims)))


def _static(value):
    """A constant tensor input -> a Python list or scalar (None for an absent optional input)."""
    return None if value is None else value.tolist()


# --- op implementations: fn(inputs, attrs) -> tensor or tuple of tensors ---------------------------

def _conv(x, w, b=None, *, pads=None, strides=(1, 1), dilations=(1, 1), group=1, auto_pad="NOTSET", **_):
    if auto_pad != "NOTSET":
        raise NotImplementedError(f"Conv auto_pad={auto_pad!r}")
    rank = w.dim() - 2
    pads = list(pads or [0] * 2 * rank)
    begin, end = pads[:rank], pads[rank:]
    if begin != end:  # asymmetric padding: torch's conv only pads symmetrically
        x = F.pad(x, [p for i in reversed(range(rank)) for p in (begin[i], end[i])])
        begin = [0] * rank
    conv = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}[rank]
    return conv(x, w, b, stride=strides, padding=begin, dilation=dilations, groups=group)


def _pad(x, pads, value=None, axes=None, *, mode="constant"):
    rank = x.dim()
    axes = [a % rank for a in (axes if axes is not None else range(rank))]
    per_axis = {a: (pads[i], pads[i + len(axes)]) for i, a in enumerate(axes)}
    padded = [a for a in range(rank) if any(per_axis.get(a, (0, 0)))]
    if mode == "constant" or not padded or min(padded) >= 2:
        return _pad_trailing(x, per_axis, min(padded, default=rank - 1), mode, value)
    # torch reflects/replicates only trailing (spatial) axes: move the padded axes there (an NHWC image)
    order = [a for a in range(rank) if a not in padded] + padded
    if len(padded) > rank - 2:
        raise NotImplementedError(f"Pad mode {mode!r} on {len(padded)} of {rank} axes")
    moved = {order.index(a): pair for a, pair in per_axis.items()}
    out = _pad_trailing(x.permute(order), moved, rank - len(padded), mode, value)
    return out.permute([order.index(a) for a in range(rank)])


def _pad_trailing(x, per_axis: dict, first: int, mode: str, value):
    """F.pad with ONNX (begin, end) pairs per axis for axes first..last."""
    torch_pads = [p for a in range(x.dim() - 1, first - 1, -1) for p in per_axis.get(a, (0, 0))]
    if mode == "constant":
        return F.pad(x, torch_pads, value=float(value or 0))
    return F.pad(x, torch_pads, mode={"reflect": "reflect", "edge": "replicate"}[mode])


def _reshape(x, shape, *, allowzero=0):
    shape = [x.shape[i] if s == 0 and not allowzero else s for i, s in enumerate(shape)]
    return x.reshape(shape)


def _slice(x, starts, ends, axes=None, steps=None):
    axes = axes if axes is not None else list(range(len(starts)))
    steps = steps if steps is not None else [1] * len(starts)
    for start, end, axis, step in zip(starts, ends, axes, steps):
        index = range(*slice(start, end, step).indices(x.shape[axis]))  # Python's clamping is ONNX's
        x = x.index_select(axis, torch.tensor(index, dtype=torch.long, device=x.device))
    return x


def _reduce(fn):
    def reduce(x, axes=None, *, keepdims=1, noop_with_empty_axes=0):
        if not axes:
            return x if noop_with_empty_axes else fn(x, dim=tuple(range(x.dim())), keepdim=bool(keepdims))
        return fn(x, dim=tuple(axes), keepdim=bool(keepdims))
    return reduce


def _unsqueeze(x, axes):
    rank = x.dim() + len(axes)
    for axis in sorted(a % rank for a in axes):
        x = x.unsqueeze(axis)
    return x


def _resize(x, roi=None, scales=None, sizes=None, *, mode="nearest", coordinate_transformation_mode="half_pixel",
            nearest_mode="round_prefer_floor", **_):
    if (mode, coordinate_transformation_mode, nearest_mode) != ("nearest", "asymmetric", "floor"):
        raise NotImplementedError(f"Resize mode={mode!r} coordinate_transformation_mode="
                                  f"{coordinate_transformation_mode!r} nearest_mode={nearest_mode!r}")
    if sizes:
        if list(sizes[:2]) != list(x.shape[:2]):
            raise NotImplementedError("Resize of the batch or channel axis")
        return F.interpolate(x, size=tuple(sizes[2:]), mode="nearest")
    if list(scales[:2]) != [1.0, 1.0]:
        raise NotImplementedError("Resize of the batch or channel axis")
    if all(s == 1.0 for s in scales):
        return x
    # torch's "nearest" with a scale factor maps out -> floor(out / scale): ONNX's asymmetric + floor
    return F.interpolate(x, scale_factor=tuple(scales[2:]), mode="nearest")


def _per_axis(value: torch.Tensor, x: torch.Tensor, axis: int) -> torch.Tensor:
    """A per-axis scale/zero point shaped to broadcast along ``axis`` of x (scalars unchanged)."""
    if value.dim() == 0:
        return value
    return value.reshape([-1] + [1] * (x.dim() - axis % x.dim() - 1))


def _quantize(x, scale, zero_point=None, *, axis=1, saturate=1):
    qtype = zero_point.dtype if zero_point is not None else torch.uint8
    low, high = QUANT_RANGE[qtype]
    q = torch.round(x / _per_axis(scale, x, axis))  # round half to even, as ONNX specifies
    if zero_point is not None:
        q = q + _per_axis(zero_point, x, axis).to(q.dtype)
    return q.clamp(low, high).to(qtype)


def _dequantize(x, scale, zero_point=None, *, axis=1):
    scale = _per_axis(scale, x, axis)
    centred = x.to(scale.dtype)
    if zero_point is not None:
        centred = centred - _per_axis(zero_point, x, axis).to(scale.dtype)
    return centred * scale


def _cast(x, *, to, **_):
    target = DTYPES[to]
    # a float Cast keeps a floating input's own precision (the module runs in the input's dtype)
    return x if target.is_floating_point and x.is_floating_point() else x.to(target)


def _constant_of_shape(shape, *, value=None):
    value = value if value is not None else torch.zeros(1)
    return torch.full(list(shape), value.item(), dtype=value.dtype)


def _clip(x, low=None, high=None, **attrs):
    return x.clamp(attrs.get("min", low), attrs.get("max", high))


def _global_average_pool(x):
    return x.mean(dim=tuple(range(2, x.dim())), keepdim=True)


OPS = {
    "Add": lambda a, b: a + b, "Sub": lambda a, b: a - b, "Mul": lambda a, b: a * b, "Div": lambda a, b: a / b,
    "Pow": lambda a, b: torch.pow(a, b), "Sqrt": lambda x: torch.sqrt(x), "Reciprocal": lambda x: torch.reciprocal(x),
    "Relu": lambda x: torch.relu(x), "Sigmoid": lambda x: torch.sigmoid(x), "Clip": _clip,
    "Conv": _conv, "Pad": _pad, "Resize": _resize, "GlobalAveragePool": _global_average_pool,
    "ReduceMean": _reduce(torch.mean), "ReduceSum": _reduce(torch.sum),
    "Reshape": _reshape, "Transpose": lambda x, *, perm: x.permute(perm), "Unsqueeze": _unsqueeze,
    "Concat": lambda *xs, axis: torch.cat(xs, dim=axis), "Slice": _slice, "Cast": _cast,
    "ConstantOfShape": _constant_of_shape, "Constant": lambda *, value: value,
    "QuantizeLinear": _quantize, "DequantizeLinear": _dequantize,
}
# Inputs that carry shapes, axes, pads or scales: they must be constants and become Python values
# (Pow's exponent too: with a Python 2.0, torch squares instead of running a generic pow).
STATIC_INPUTS = {
    "Pad": (1, 2, 3), "Reshape": (1,), "Slice": (1, 2, 3, 4), "Unsqueeze": (1,), "ReduceSum": (1,),
    "ReduceMean": (1,), "Resize": (1, 2, 3), "Clip": (1, 2), "ConstantOfShape": (0,), "Pow": (1,),
}
# Elementwise ops that may overwrite their first input when that value is read for the last time
# (saves allocating and faulting in a fresh image-sized tensor per op on the CPU).
IN_PLACE = {
    "Add": lambda a, b: a.add_(b), "Sub": lambda a, b: a.sub_(b), "Mul": lambda a, b: a.mul_(b),
    "Div": lambda a, b: a.div_(b), "Pow": lambda a, b: a.pow_(b), "Sqrt": lambda x: x.sqrt_(),
    "Reciprocal": lambda x: x.reciprocal_(), "Relu": lambda x: x.relu_(), "Sigmoid": lambda x: x.sigmoid_(),
    "Clip": lambda x, low=None, high=None: x.clamp_(low, high),
}
# Ops whose outputs never share memory with another value (Reshape, Transpose, a float Cast, a
# no-op Pad or Resize may hand back their input or a view of it, so they are not listed).
FRESH_OUTPUTS = set(IN_PLACE) | {"Conv", "GlobalAveragePool", "Concat", "QuantizeLinear", "DequantizeLinear"}


_SHARING = threading.local()  # .threads: the CPU threads this thread's calls share their steps over


@contextlib.contextmanager
def shared_out(threads: int):
    """Inside, this thread's module calls cut their big steps into pieces run on ``threads`` threads
    (``onnx_shared``); torch should be at one thread meanwhile (``cpu_image.one_thread``)."""
    before = getattr(_SHARING, "threads", 1)
    _SHARING.threads = threads
    try:
        yield
    finally:
        _SHARING.threads = before


class OnnxModule(torch.nn.Module):
    """An ONNX graph as a torch module: ``module(*inputs) -> tuple of outputs``; move it with ``.to(device, dtype)``."""

    def __init__(self, path: str | Path):
        super().__init__()
        path = Path(path)
        try:
            graph = load_model(path).graph
        except ModuleNotFoundError:  # e.g. a ComfyUI install that skipped the pack's requirements.txt
            raise ModuleNotFoundError(f"reading {path.name} needs the 'onnx' package: pip install onnx") from None
        constants = {t.name: _tensor(t) for t in graph.initializer}
        self.input_names = [i.name for i in graph.input if i.name not in constants]
        self.output_names = [o.name for o in graph.output]
        self.steps = []
        for node in graph.node:
            step = self._prepare(node, constants, path.name)
            if step is not None:
                self.steps.append(step)
        self._keep_runtime_constants(constants)
        self._plan_frees()

    def _prepare(self, node, constants: dict, file: str):
        """Fold a node whose inputs are all constants; otherwise return its run-time step."""
        if node.domain not in ("", "ai.onnx") or node.op_type not in OPS:
            raise NotImplementedError(
                f"{file}: ONNX op {node.domain + '.' if node.domain else ''}{node.op_type} (node {node.name!r}) "
                f"is not supported by the torch reader; supported: {', '.join(sorted(OPS))}")
        attrs, static = _attr(node), STATIC_INPUTS.get(node.op_type, ())
        args = []
        for position, name in enumerate(node.input):
            if position in static:
                if name and name not in constants:
                    raise NotImplementedError(f"{file}: {node.op_type} node {node.name!r} has a computed "
                                              f"input {name!r}; only constant shapes/axes are supported")
                args.append(("value", _static(constants.get(name)) if name else None))
            else:
                args.append(("tensor", name or None))
        if all(kind == "value" or name is None or name in constants for kind, name in args):
            outputs = _call(node.op_type, [v if k == "value" else (constants[v] if v else None) for k, v in args], attrs)
            constants.update(zip(node.output, outputs))
            return None
        return node.op_type, args, list(node.output), attrs

    def _keep_runtime_constants(self, constants: dict) -> None:
        """Register the constants the run-time steps read as (non-persistent) buffers."""
        used = {v for _, args, _, _ in self.steps for k, v in args if k == "tensor" and v in constants}
        used |= {name for name in self.output_names if name in constants}
        self.buffer_names = {}
        for index, name in enumerate(sorted(used)):
            self.buffer_names[name] = f"const_{index}"
            self.register_buffer(f"const_{index}", constants[name], persistent=False)

    def _plan_frees(self) -> None:
        """For each step, the intermediate values read for the last time there (freed to bound memory)."""
        last = {}
        for index, (_, args, _, _) in enumerate(self.steps):
            for kind, name in args:
                if kind == "tensor" and name:
                    last[name] = index
        keep = set(self.output_names)
        self.frees = [[] for _ in self.steps]
        for name, index in last.items():
            if name not in keep:
                self.frees[index].append(name)
        fresh = {out for op_type, _, outputs, _ in self.steps if op_type in FRESH_OUTPUTS for out in outputs}
        self.in_place = [op_type in IN_PLACE and args[0][1] in fresh and args[0][1] in frees
                         for (op_type, args, _, _), frees in zip(self.steps, self.frees)]

    def forward(self, *inputs: torch.Tensor) -> tuple[torch.Tensor, ...]:
        if len(inputs) != len(self.input_names):
            raise ValueError(f"expected {len(self.input_names)} inputs ({', '.join(self.input_names)}), got {len(inputs)}")
        values = {name: getattr(self, buffer) for name, buffer in self.buffer_names.items()}
        values.update(zip(self.input_names, inputs))
        threads = getattr(_SHARING, "threads", 1)
        if threads > 1:
            from .onnx_shared import split_step
        for step, frees, in_place in zip(self.steps, self.frees, self.in_place):
            results = None
            if threads > 1:
                op_type, args, _, attrs = step
                results = split_step(op_type, [values[v] if k == "tensor" and v else v for k, v in args], attrs,
                                     in_place, threads)
            if results is None and in_place:
                results = _call_in_place(step, values)
            values.update(zip(step[2], results if results is not None else self.run_step(step, values)))
            for name in frees:
                if name not in self.buffer_names:
                    values.pop(name, None)
        return tuple(values[name] for name in self.output_names)

    @staticmethod
    def run_step(step: tuple, values: dict) -> tuple:
        """One run-time node's outputs, its tensor inputs looked up by name in ``values``."""
        op_type, args, _, attrs = step
        return _call(op_type, [values[v] if k == "tensor" and v else v for k, v in args], attrs)


def _call_in_place(step: tuple, values: dict) -> tuple | None:
    """Run an elementwise step into its dying first input, or None where the result would not fit there."""
    op_type, args, _, attrs = step
    inputs = [values[v] if k == "tensor" and v else v for k, v in args]
    first, others = inputs[0], [x for x in inputs[1:] if isinstance(x, torch.Tensor)]
    if any(torch.broadcast_shapes(first.shape, x.shape) != first.shape or torch.result_type(first, x) != first.dtype
           for x in others) or not first.is_floating_point():
        return None
    return (IN_PLACE[op_type](*inputs, **attrs),)


def _call(op_type: str, args: list, attrs: dict) -> tuple:
    """Run one op; trailing absent optional inputs are dropped so defaults apply."""
    while args and args[-1] is None:
        args.pop()
    result = OPS[op_type](*args, **attrs)
    return result if isinstance(result, tuple) else (result,)
