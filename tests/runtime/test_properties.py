"""Property-based: random JSON and random graphs never crash or hang the loader and validator."""
from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from imagetune.graph_runtime import (GraphError, NodeExecutionError, Runtime, WorkflowFormatError,
                                     load_workflow, validate)

CLASS_TYPES = ["ImageTuneTestConst", "ImageTuneTestAdd", "ImageTuneTestOptions", "ImageTuneTestImage",
               "ImageTuneTestImageSize", "ImageTuneTestSink", "Unknown", ""]
INPUT_NAMES = ["value", "a", "b", "flag", "scale", "text", "mode", "count", "size", "image", "extra"]

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats(allow_nan=True) | st.text(max_size=8),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=6), children, max_size=4),
    max_leaves=20,
)
node_ids = st.sampled_from([str(i) for i in range(1, 9)] + ["x", ""])
links = st.tuples(node_ids, st.integers(-1, 3)).map(list)
input_values = links | json_values | st.builds(lambda v: {"__value__": v}, json_values)
nodes = st.fixed_dictionaries(
    {"class_type": st.sampled_from(CLASS_TYPES) | json_values,
     "inputs": st.dictionaries(st.sampled_from(INPUT_NAMES), input_values, max_size=5) | json_values})
workflows = st.dictionaries(node_ids, nodes | json_values, max_size=8)

FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])


@FAST
@given(json_values)
def test_loader_never_crashes_on_random_json(value):
    try:
        load_workflow(json.dumps(value))
    except WorkflowFormatError:
        pass


@FAST
@given(st.text(max_size=60) | st.binary(max_size=60).map(lambda b: b.decode("latin-1")))
def test_loader_never_crashes_on_random_text(text):
    try:
        load_workflow("{" + text)
    except WorkflowFormatError:
        pass


@FAST
@given(workflows)
def test_validator_returns_a_plan_or_a_report(fakes, workflow):
    plan, report = validate(workflow, fakes.registry)
    assert (plan is None) != (report is None)
    if report is not None:
        json.dumps(report, default=str)
        assert report["error"]["type"]


@FAST
@given(workflows)
def test_random_valid_graphs_run_or_fail_cleanly(fakes, workflow):
    plan, _ = validate(workflow, fakes.registry)
    if plan is None:
        return
    assert len(plan.order) == len(set(plan.order))
    try:
        Runtime(fakes.registry).execute(plan, _ctx())
    except NodeExecutionError:
        pass  # e.g. the fail node, or a type the fake nodes do not handle: reported, not raised raw
    except GraphError:
        pass


@st.composite
def nearly_valid_workflows(draw):
    """A valid chain Const -> Add x k -> Sink (with Options -> Sink beside it), then up to two edits of
    an input or a _meta: most are valid, the others a step away from it."""
    size = draw(st.integers(0, 4))
    workflow = {"1": {"class_type": "ImageTuneTestConst", "inputs": {"value": draw(st.sampled_from([0, 7, 2.0]))}}}
    for i in range(2, size + 2):
        workflow[str(i)] = {"class_type": "ImageTuneTestAdd", "inputs": {"a": [str(i - 1), 0], "b": draw(st.integers(-3, 3))}}
    workflow["s"] = {"class_type": "ImageTuneTestSink", "inputs": {"value": [str(size + 1), 0]}}
    if draw(st.booleans()):
        workflow["o"] = {"class_type": "ImageTuneTestOptions",
                         "inputs": {"flag": True, "scale": 0.5, "text": draw(st.text(max_size=4)), "mode": "fast"}}
        workflow["t"] = {"class_type": "ImageTuneTestSink", "inputs": {"value": ["o", 0]}}
    for _ in range(draw(st.integers(0, 2))):
        node = workflow[draw(st.sampled_from(sorted(workflow)))]
        if draw(st.booleans()):
            node["_meta"] = draw(st.dictionaries(st.text(max_size=4), json_values, max_size=2))
        else:
            name = draw(st.sampled_from(sorted(node["inputs"])) | st.sampled_from(INPUT_NAMES))
            node["inputs"][name] = draw(st.tuples(st.sampled_from(sorted(workflow)), st.integers(-1, 1)).map(list)
                                        | st.sampled_from([0, -1, 101, 1.5, 2.0, True, "slow", "x", {"__value__": [1]}])
                                        | json_values)
    return workflow


@settings(FAST, max_examples=300)
@given(workflows | nearly_valid_workflows())
def test_the_one_walk_accepts_only_what_validation_accepts_with_its_plan(fakes, workflow):
    from imagetune.graph_runtime.accept import accept

    quick = accept(workflow, fakes.registry)
    if quick is None:
        return
    full, report = validate(workflow, fakes.registry)
    assert report is None
    assert repr(quick.workflow) == repr(full.workflow)
    assert (quick.classes, quick.outputs, quick.parents, quick.order) == (full.classes, full.outputs,
                                                                           full.parents, full.order)


def _ctx():
    from imagetune.graph_runtime import ExecutionContext

    return ExecutionContext(device="cpu")
