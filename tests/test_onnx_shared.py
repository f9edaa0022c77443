"""A network call shared out over threads (ops/onnx_shared.py): each piece-wise step equals the whole step,
and a thread that is held up does not hold up the others."""
from __future__ import annotations

import threading

import pytest
import torch

from imagetune.ops import cpu_image, onnx_shared
from imagetune.ops.onnx_torch import OPS, _conv, _pad


def channels_last(*shape: int, seed: int = 0) -> torch.Tensor:
    return torch.rand(*shape, generator=torch.Generator().manual_seed(seed)).contiguous(memory_format=torch.channels_last)


@pytest.fixture
def one_thread():
    with cpu_image.one_thread():
        yield


@pytest.mark.parametrize("kernel,stride,pads,dilation", [(3, 1, 1, 1), (9, 1, 0, 1), (3, 2, 1, 1), (3, 1, 2, 2), (1, 1, 0, 1)])
def test_a_convolution_by_bands_of_rows_equals_the_whole(one_thread, kernel, stride, pads, dilation):
    x = channels_last(1, 16, 67, 71)
    w = torch.randn(24, 16, kernel, kernel, generator=torch.Generator().manual_seed(1)) * 0.1
    b = torch.randn(24, generator=torch.Generator().manual_seed(2))
    attrs = {"strides": [stride, stride], "pads": [pads] * 4, "dilations": [dilation, dilation]}
    (shared,) = onnx_shared.split_step("Conv", [x, w, b], attrs, False, 2)
    whole = _conv(x, w, b, **attrs)
    assert shared.shape == whole.shape and shared.is_contiguous(memory_format=torch.channels_last)
    assert torch.allclose(shared, whole, atol=1e-5)


@pytest.mark.parametrize("op", ["Add", "Mul", "Sub", "Div", "Relu", "Pow"])
@pytest.mark.parametrize("in_place", [True, False])
def test_an_elementwise_op_by_bands_of_rows_equals_the_whole(one_thread, op, in_place):
    x = channels_last(1, 32, 50, 60)
    other = {"Add": channels_last(1, 32, 50, 60, seed=1), "Mul": torch.rand(1, 32, 1, 1), "Sub": torch.rand(1, 32, 1, 1),
             "Div": 2.5 + torch.rand(1, 1, 50, 60), "Relu": None, "Pow": 2.0}[op]
    inputs = [x] if other is None else [x, other]
    whole = OPS[op](*[t.clone() if isinstance(t, torch.Tensor) else t for t in inputs])
    copy = x.clone()
    (shared,) = onnx_shared.split_step(op, [copy] + inputs[1:], {}, in_place, 2)
    assert torch.equal(shared, whole)
    assert (shared is copy) == in_place and (in_place or torch.equal(copy, x))  # the input kept unless it may go


@pytest.mark.parametrize("pads", [[0, 0, 4, 4, 0, 0, 4, 4], [0, 0, 1, 2, 0, 0, 3, 1]])
def test_a_reflect_padding_by_bands_of_rows_equals_the_whole(one_thread, pads):
    x = channels_last(1, 32, 70, 90)
    (shared,) = onnx_shared.split_step("Pad", [x, pads], {"mode": "reflect"}, False, 2)
    assert torch.equal(shared, _pad(x, pads, mode="reflect"))


def test_small_steps_and_other_ops_run_whole():
    small = channels_last(1, 4, 8, 8)
    assert onnx_shared.split_step("Add", [small, small], {}, False, 2) is None
    big = channels_last(1, 32, 64, 64)
    assert onnx_shared.split_step("ReduceMean", [big, [2, 3]], {"keepdims": 1}, False, 2) is None
    assert onnx_shared.split_step("Pad", [big, [0, 0, 1, 1, 0, 0, 1, 1], 0.0], {"mode": "constant"}, False, 2) is None


def test_share_out_finishes_without_a_held_up_thread():
    """The calling thread takes every piece nobody has started: a pool thread stuck elsewhere delays nothing."""
    release = threading.Event()
    held = [threading.Event(), threading.Event()]
    for event in held:  # both of the pool's threads stuck elsewhere
        cpu_image._pool(2).submit(lambda event=event: (event.set(), release.wait(30)))
    assert all(event.wait(5) for event in held)
    try:
        finished = threading.Event()
        results = []
        runner = threading.Thread(target=lambda: (results.append(cpu_image.share_out([lambda i=i: i * i for i in range(8)], 2)),
                                                  finished.set()))
        runner.start()
        assert finished.wait(10), "share_out waited for the held-up thread"
        assert results == [[i * i for i in range(8)]]
    finally:
        release.set()


def test_share_out_raises_a_pieces_error():
    def boom():
        raise ValueError("piece 3")

    with pytest.raises(ValueError, match="piece 3"):
        cpu_image.share_out([lambda: 1, lambda: 2, boom, lambda: 4], 2)
