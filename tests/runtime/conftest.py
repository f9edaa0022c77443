"""Tiny fake nodes for runtime tests: they need no models and record what ran."""
from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from imagetune.graph_runtime import Input, Node, NodeRegistry, Output, Runtime, combo
from imagetune.graph_runtime import types as T

CALLS: list[str] = []


class ConstNode(Node):
    """Emit an integer."""

    node_id = "ImageTuneTestConst"
    category = "ImageTune/test"
    inputs = (Input("value", T.INT, default=1, min=0, max=100),)
    outputs = (Output(T.INT, "value"),)

    def run(self, ctx, value):
        CALLS.append(ctx.node_id)
        return (value,)


class AddNode(Node):
    """Add two integers."""

    node_id = "ImageTuneTestAdd"
    category = "ImageTune/test"
    inputs = (Input("a", T.INT, default=0), Input("b", T.INT, default=0, min=-1000, max=1000))
    outputs = (Output(T.INT, "sum"),)

    def run(self, ctx, a, b):
        CALLS.append(ctx.node_id)
        return (a + b,)


class OptionsNode(Node):
    """Take one of each widget type."""

    node_id = "ImageTuneTestOptions"
    category = "ImageTune/test"
    inputs = (
        Input("flag", T.BOOLEAN, default=False),
        Input("scale", T.FLOAT, default=1.0, min=0.0, max=2.0),
        Input("text", T.STRING, default="", multiline=True),
        combo("mode", ("fast", "slow")),
        Input("count", T.INT, default=1, min=1, max=4, optional=True),
    )
    outputs = (Output(T.STRING, "summary"),)

    def run(self, ctx, flag, scale, text, mode, count):
        CALLS.append(ctx.node_id)
        return (f"{flag}/{scale}/{text}/{mode}/{count}",)


class ImageNode(Node):
    """Make a grey image of a given size."""

    node_id = "ImageTuneTestImage"
    category = "ImageTune/test"
    inputs = (Input("size", T.INT, default=4, min=1, max=64),)
    outputs = (Output(T.IMAGE, "image"),)

    def run(self, ctx, size):
        CALLS.append(ctx.node_id)
        return (torch.full((1, size, size, 3), 0.5),)


class ImageSizeNode(Node):
    """The width of an image."""

    node_id = "ImageTuneTestImageSize"
    category = "ImageTune/test"
    inputs = (Input("image", T.IMAGE),)
    outputs = (Output(T.INT, "width"),)

    def run(self, ctx, image):
        CALLS.append(ctx.node_id)
        return (image.shape[2],)


class StepsNode(Node):
    """Count steps, reporting progress; stop when interrupted."""

    node_id = "ImageTuneTestSteps"
    category = "ImageTune/test"
    inputs = (Input("value", T.INT), Input("steps", T.INT, default=3, min=1, max=100),
              Input("interrupt_at", T.INT, default=-1, min=-1, max=100))
    outputs = (Output(T.INT, "value"),)

    def run(self, ctx, value, steps, interrupt_at):
        CALLS.append(ctx.node_id)
        for i in range(steps):
            if i == interrupt_at:
                ctx.interrupt()
            ctx.progress(i + 1, steps)
        return (value,)


class FailNode(Node):
    """Raise an error."""

    node_id = "ImageTuneTestFail"
    category = "ImageTune/test"
    inputs = (Input("value", T.INT),)
    outputs = (Output(T.INT, "value"),)

    def run(self, ctx, value):
        CALLS.append(ctx.node_id)
        raise RuntimeError("boom")


class SinkNode(Node):
    """Record a value (an output node)."""

    node_id = "ImageTuneTestSink"
    category = "ImageTune/test"
    output_node = True
    inputs = (Input("value", "INT,STRING"),)

    def run(self, ctx, value):
        CALLS.append(ctx.node_id)
        return {"ui": {"values": [value]}, "result": ()}


class PngInfoNode(Node):
    """Report which workflow a save node would embed (an output node)."""

    node_id = "ImageTuneTestPngInfo"
    category = "ImageTune/test"
    output_node = True
    inputs = (Input("value", T.INT),)

    def run(self, ctx, value):
        CALLS.append(ctx.node_id)
        return {"ui": {"embedded": [sorted((ctx.extra_pnginfo or {}).get("workflow", {}))]}, "result": ()}


FAKES = (PngInfoNode, ConstNode, AddNode, OptionsNode, ImageNode, ImageSizeNode, StepsNode, FailNode, SinkNode)


@pytest.fixture
def fakes():
    """The fake node classes and a fresh call log."""
    CALLS.clear()
    return SimpleNamespace(calls=CALLS, registry=NodeRegistry(FAKES), **{c.__name__: c for c in FAKES})


@pytest.fixture
def runtime(fakes):
    """A runtime over the fake nodes with its own empty cache."""
    return Runtime(fakes.registry)


def chain(n: int) -> dict:
    """A workflow: Const -> Add x (n - 2) -> Sink."""
    wf = {"1": {"class_type": "ImageTuneTestConst", "inputs": {"value": 1}}}
    for i in range(2, n):
        wf[str(i)] = {"class_type": "ImageTuneTestAdd", "inputs": {"a": [str(i - 1), 0], "b": 1}}
    wf[str(n)] = {"class_type": "ImageTuneTestSink", "inputs": {"value": [str(n - 1), 0]}}
    return wf


@pytest.fixture
def make_chain():
    """The ``chain(n)`` workflow builder."""
    return chain
