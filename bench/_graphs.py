"""The trivial nodes and chain graphs the runtime benchmarks measure (no models, no tensors)."""
from __future__ import annotations

from _pack import load_pack  # bench/ is on sys.path when a script here runs

load_pack()

from imagetune.graph_runtime import Input, Node, NodeRegistry, Output  # noqa: E402


class Const(Node):
    """Emit an integer."""

    node_id = "ImageTuneBenchConst"
    category = "ImageTune/bench"
    inputs = (Input("value", "INT", default=0, min=0, max=10**9),)
    outputs = (Output("INT", "value"),)

    def run(self, ctx, value):
        return (value,)


class Inc(Node):
    """Add one."""

    node_id = "ImageTuneBenchInc"
    category = "ImageTune/bench"
    inputs = (Input("a", "INT"), Input("b", "INT", default=1, min=0, max=10))
    outputs = (Output("INT", "value"),)

    def run(self, ctx, a, b):
        return (a + b,)


class Sink(Node):
    """Output node."""

    node_id = "ImageTuneBenchSink"
    category = "ImageTune/bench"
    output_node = True
    inputs = (Input("value", "INT"),)

    def run(self, ctx, value):
        return {"ui": {"v": [value]}, "result": ()}


REGISTRY = NodeRegistry([Const, Inc, Sink])


def chain(n: int, b: int = 1) -> dict:
    """Const -> Inc x (n - 2) -> Sink; ``b`` above 10 gives every Inc an error."""
    wf = {"1": {"class_type": Const.node_id, "inputs": {"value": 0}}}
    for i in range(2, n):
        wf[str(i)] = {"class_type": Inc.node_id, "inputs": {"a": [str(i - 1), 0], "b": b}}
    wf[str(n)] = {"class_type": Sink.node_id, "inputs": {"value": [str(n - 1), 0]}}
    return wf


def wide(n: int) -> dict:
    """n independent Const -> Sink pairs (n nodes in all)."""
    wf = {}
    for i in range(0, n, 2):
        wf[str(i + 1)] = {"class_type": Const.node_id, "inputs": {"value": i}}
        wf[str(i + 2)] = {"class_type": Sink.node_id, "inputs": {"value": [str(i + 1), 0]}}
    return wf
