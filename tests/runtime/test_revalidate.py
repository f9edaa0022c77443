"""A changed input re-validates only what it touches: overrides (``--set``, sweep jobs) and re-runs of an
edited workflow re-check the changed nodes against the remembered plan, with the full report on error."""
from __future__ import annotations

import pytest

from imagetune.graph_runtime import Input, Node, NodeRegistry, Output, Runtime, ValidationError, validate
from imagetune.graph_runtime import types as T
from imagetune.graph_runtime.sweeps import load_sweep, validate_jobs
from imagetune.graph_runtime.workflow import apply_overrides

CHECKED: list[int] = []


class CountedNode(Node):
    """Add ``b``; records every call of its own validation."""

    node_id = "ImageTuneTestCounted"
    category = "ImageTune/test"
    inputs = (Input("a", T.INT, optional=True), Input("b", T.INT, default=0, min=0, max=10))
    outputs = (Output(T.INT, "value"),)

    @classmethod
    def check_inputs(cls, b=0, **_):
        CHECKED.append(b)
        return [("b", "7 is unlucky")] if b == 7 else []

    def run(self, ctx, b, a=0):
        return (a + b,)


class OutNode(Node):
    """Output node."""

    node_id = "ImageTuneTestOut"
    category = "ImageTune/test"
    output_node = True
    inputs = (Input("value", T.INT),)

    def run(self, ctx, value):
        return {"ui": {"value": [value]}, "result": ()}


REGISTRY = NodeRegistry([CountedNode, OutNode])
N = 40


def chain(n: int = N) -> dict:
    """Counted x n (node 1 has no link) -> Out."""
    wf = {"1": {"class_type": CountedNode.node_id, "inputs": {"b": 1}}}
    for i in range(2, n + 1):
        wf[str(i)] = {"class_type": CountedNode.node_id, "inputs": {"a": [str(i - 1), 0], "b": 1}}
    wf["out"] = {"class_type": OutNode.node_id, "inputs": {"value": [str(n), 0]}}
    return wf


@pytest.fixture
def runtime():
    CHECKED.clear()
    runtime = Runtime(REGISTRY)
    runtime.prepare(chain())
    assert len(CHECKED) == N  # the first validation checks every node
    CHECKED.clear()
    return runtime


def test_the_same_content_validates_nothing(runtime):
    plan = runtime.prepare(chain())
    assert CHECKED == [] and runtime.prepare(chain()) is plan


def test_an_override_rechecks_only_the_node_it_changes(runtime):
    plan = runtime.prepare(chain(), {"20.b": "3"})
    assert CHECKED == [3]
    assert plan.workflow["20"]["inputs"]["b"] == 3 and plan.workflow["19"]["inputs"]["b"] == 1
    assert len(plan.order) == N + 1 and plan.order[-1] == "out"
    base = runtime.prepare(chain())
    assert base.workflow["20"]["inputs"]["b"] == 1, "the override must not leak into the remembered plan"


def test_a_rerun_of_an_edited_workflow_rechecks_only_the_edited_nodes(runtime):
    edited = chain()
    edited["5"]["inputs"]["b"] = 4
    edited["30"]["inputs"]["b"] = 9
    plan = runtime.prepare(edited)
    assert sorted(CHECKED) == [4, 9]
    edited["5"]["inputs"]["b"] = 99  # later edits of the caller's dict do not reach the plan
    assert plan.workflow["5"]["inputs"]["b"] == 4
    with pytest.raises(ValidationError, match="bigger than the maximum"):
        runtime.prepare(edited)


def test_each_sweep_job_rechecks_only_the_varied_node(runtime):
    spec = load_sweep(chain(), {"12.b": ["0", "1", "2", "5"]}, registry=REGISTRY)
    validate_jobs(runtime, spec, spec.jobs())
    assert CHECKED == [0, 1, 2, 5]


@pytest.mark.parametrize("change", [{"20.b": 11}, {"20.b": 7}, {"20.b": True}, {"20.b": 2.5},
                                    {"20.a": ["nope", 0]}, {"20.a": ["out", 0]}, {"20.a": ["30", 0]},
                                    {"20.zzz": 1}])
def test_a_change_that_breaks_a_node_gets_the_full_report(runtime, change):
    """Out of range, the node's own check, a bool for an INT (1 == True: the comparison is by exact
    text), a fraction, a link to a missing node, to a missing slot or into a cycle, an unknown input."""
    expected = validate(apply_overrides(chain(), change), REGISTRY)[1]
    assert expected is not None
    with pytest.raises(ValidationError) as info:
        runtime.prepare(chain(), change)
    assert info.value.report == expected
    edited = apply_overrides(chain(), change)
    with pytest.raises(ValidationError) as info:
        runtime.prepare(edited)
    assert info.value.report == expected


def test_a_bool_edited_in_for_an_equal_int_is_checked():
    """``True == 1`` in Python; the plan cache must not take the edited workflow for the validated one."""
    runtime = Runtime(REGISTRY)
    runtime.prepare(chain(3))
    edited = chain(3)
    edited["2"]["inputs"]["b"] = True
    with pytest.raises(ValidationError, match="expected an integer"):
        runtime.prepare(edited)


def test_a_change_of_links_or_classes_validates_the_whole_workflow(runtime):
    rewired = chain()
    rewired["out"]["inputs"]["value"] = ["10", 0]  # nodes 11..40 are no longer needed
    plan = runtime.prepare(rewired)
    assert plan.order == [str(i) for i in range(1, 11)] + ["out"]
    assert len(CHECKED) == 10
