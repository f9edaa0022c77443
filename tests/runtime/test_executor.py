"""Execution: order, cache across runs, failures, interrupt, progress and timings."""
from __future__ import annotations

import pytest

from imagetune.graph_runtime import ExecutionContext, ExecutionInterrupted, NodeExecutionError


def diamond():
    return {
        "1": {"class_type": "ImageTuneTestConst", "inputs": {"value": 1}},
        "2": {"class_type": "ImageTuneTestAdd", "inputs": {"a": ["1", 0], "b": 10}},
        "3": {"class_type": "ImageTuneTestAdd", "inputs": {"a": ["1", 0], "b": 20}},
        "4": {"class_type": "ImageTuneTestAdd", "inputs": {"a": ["2", 0], "b": ["3", 0]}},
        "5": {"class_type": "ImageTuneTestSink", "inputs": {"value": ["4", 0]}},
        "6": {"class_type": "ImageTuneTestSink", "inputs": {"value": ["3", 0]}},
    }


def test_runs_in_topological_order_with_values(runtime, fakes):
    result = runtime.run(diamond())
    order = fakes.calls
    assert sorted(order) == ["1", "2", "3", "4", "5", "6"]
    for before, after in [("1", "2"), ("1", "3"), ("2", "4"), ("3", "4"), ("4", "5"), ("3", "6")]:
        assert order.index(before) < order.index(after)
    assert result.ui["5"] == {"values": [32]} and result.ui["6"] == {"values": [21]}
    assert result.outputs["4"] == (32,)
    assert set(result.timings) == set(order) and all(t >= 0 for t in result.timings.values())
    assert result.class_types["4"] == "ImageTuneTestAdd"


def test_cached_rerun_executes_nothing(runtime, fakes):
    runtime.run(diamond())
    fakes.calls.clear()
    result = runtime.run(diamond())
    assert fakes.calls == [] and result.executed == []
    assert sorted(result.cached) == ["1", "2", "3", "4", "5", "6"]
    assert result.ui["5"] == {"values": [32]}


@pytest.mark.parametrize("changed,expected", [
    ({"2.b": 11}, {"2", "4", "5"}),
    ({"3.b": 21}, {"3", "4", "5", "6"}),
    ({"1.value": 2}, {"1", "2", "3", "4", "5", "6"}),
    ({"5.value": ["2", 0]}, {"5"}),
])
def test_changed_input_reruns_exactly_its_descendants(runtime, fakes, changed, expected):
    runtime.run(diamond())
    fakes.calls.clear()
    result = runtime.run(diamond(), changed)
    assert set(fakes.calls) == expected == set(result.executed)


def test_cache_keeps_unrelated_branch_when_switching_back(runtime, fakes):
    runtime.run(diamond())
    runtime.run(diamond(), {"2.b": 11})
    fakes.calls.clear()
    runtime.run(diamond(), {"2.b": 11})
    assert fakes.calls == []


def test_node_failure_reports_node_and_completed_outputs(runtime, fakes):
    wf = diamond()
    wf["3"] = {"class_type": "ImageTuneTestFail", "inputs": {"value": ["1", 0]}}
    with pytest.raises(NodeExecutionError) as info:
        runtime.run(wf)
    err = info.value
    assert err.node_id == "3" and err.class_type == "ImageTuneTestFail"
    assert isinstance(err.error, RuntimeError) and "boom" in str(err)
    assert "1" in err.completed and "3" not in err.completed and "4" not in err.completed
    assert "4" not in fakes.calls


def test_failure_keeps_cache_of_completed_nodes(runtime, fakes):
    runtime.run(diamond())
    wf = diamond()
    wf["3"] = {"class_type": "ImageTuneTestFail", "inputs": {"value": ["1", 0]}}
    with pytest.raises(NodeExecutionError):
        runtime.run(wf)
    fakes.calls.clear()
    runtime.run(diamond())
    assert fakes.calls == []


def test_interrupt_between_steps_keeps_finished_outputs(runtime, fakes):
    wf = {
        "1": {"class_type": "ImageTuneTestConst", "inputs": {"value": 7}},
        "2": {"class_type": "ImageTuneTestSink", "inputs": {"value": ["1", 0]}},
        "3": {"class_type": "ImageTuneTestSteps", "inputs": {"value": ["1", 0], "steps": 10, "interrupt_at": 4}},
        "4": {"class_type": "ImageTuneTestSink", "inputs": {"value": ["3", 0]}},
    }
    ctx = ExecutionContext(device="cpu")
    seen = []
    ctx.progress_hook = lambda node, value, total: seen.append((node, value, total))
    with pytest.raises(ExecutionInterrupted) as info:
        runtime.run(wf, ctx=ctx)
    assert seen == [("3", i, 10) for i in range(1, 5)], "steps stop right after the interrupt"
    assert set(info.value.completed) == {"1", "2"}
    assert "4" not in fakes.calls


def test_interrupt_before_run_executes_nothing(runtime, fakes):
    ctx = ExecutionContext(device="cpu")
    ctx.interrupt()
    with pytest.raises(ExecutionInterrupted):
        runtime.run(diamond(), ctx=ctx)
    assert fakes.calls == []


def test_progress_callback_and_bar(runtime, capsys):
    seen = []
    runtime.run(diamond(), progress=lambda node, done, total: seen.append((done, total)))
    assert seen == [(i, 6) for i in range(1, 7)]
    runtime.cache.clear()
    runtime.run(diamond(), progress=True)
    assert "nodes" in capsys.readouterr().err


def test_optional_input_absent_gets_default(runtime):
    wf = {"1": {"class_type": "ImageTuneTestOptions", "inputs": {"flag": True, "scale": 0.5, "text": "hi",
                                                                 "mode": "slow"}},
          "2": {"class_type": "ImageTuneTestSink", "inputs": {"value": ["1", 0]}}}
    assert runtime.run(wf).ui["2"] == {"values": ["True/0.5/hi/slow/1"]}


def test_context_carries_device_and_node_id(fakes):
    from imagetune.graph_runtime import Node, NodeRegistry, Output, Runtime

    class DeviceNode(Node):
        """Report the device."""

        node_id = "ImageTuneTestDevice"
        category = "ImageTune/test"
        inputs = ()
        outputs = (Output("STRING", "device"),)

        def run(self, ctx):
            return (f"{ctx.device}:{ctx.node_id}",)

    rt = Runtime(NodeRegistry(list(fakes.registry) + [DeviceNode]))
    wf = {"9": {"class_type": "ImageTuneTestDevice", "inputs": {}},
          "2": {"class_type": "ImageTuneTestSink", "inputs": {"value": ["9", 0]}}}
    assert rt.run(wf, ctx=ExecutionContext(device="cpu")).ui["2"] == {"values": ["cpu:9"]}


def test_default_device_is_cuda_only_when_available():
    import torch

    assert ExecutionContext().device == ("cuda" if torch.cuda.is_available() else "cpu")


def test_wrong_return_shape_is_reported(fakes):
    from imagetune.graph_runtime import Node, NodeRegistry, Output, Runtime

    class BadNode(Node):
        """Return the wrong thing."""

        node_id = "ImageTuneTestBad"
        category = "ImageTune/test"
        inputs = ()
        outputs = (Output("INT", "a"), Output("INT", "b"))

        def run(self, ctx):
            return (1,)

    rt = Runtime(NodeRegistry(list(fakes.registry) + [BadNode]))
    wf = {"1": {"class_type": "ImageTuneTestBad", "inputs": {}},
          "2": {"class_type": "ImageTuneTestSink", "inputs": {"value": ["1", 1]}}}
    with pytest.raises(NodeExecutionError, match="must return a tuple of 2 outputs, got a tuple of 1"):
        rt.run(wf)


def test_long_chain(runtime, make_chain):
    result = runtime.run(make_chain(300))
    assert result.ui["300"] == {"values": [299]}


def test_rerun_after_editing_the_same_dict_sees_the_edit(runtime, fakes):
    wf = diamond()
    runtime.run(wf)
    wf["2"]["inputs"]["b"] = 100
    fakes.calls.clear()
    result = runtime.run(wf)
    assert result.ui["5"] == {"values": [122]}
    assert set(fakes.calls) == {"2", "4", "5"}


def test_fingerprint_change_reruns_the_node(fakes):
    from imagetune.graph_runtime import Node, NodeRegistry, Output, Runtime

    state = {"version": 1}

    class ReadNode(Node):
        """Read the outside world."""

        node_id = "ImageTuneTestRead"
        category = "ImageTune/test"
        inputs = ()
        outputs = (Output("INT", "value"),)

        @classmethod
        def fingerprint(cls, ctx, **literals):
            return state["version"]

        def run(self, ctx):
            fakes.calls.append("read")
            return (state["version"],)

    rt = Runtime(NodeRegistry(list(fakes.registry) + [ReadNode]))
    wf = {"1": {"class_type": "ImageTuneTestRead", "inputs": {}},
          "2": {"class_type": "ImageTuneTestSink", "inputs": {"value": ["1", 0]}}}
    rt.run(wf)
    rt.run(wf)
    assert fakes.calls.count("read") == 1
    state["version"] = 2
    assert rt.run(wf).ui["2"] == {"values": [2]}
    assert fakes.calls.count("read") == 2
