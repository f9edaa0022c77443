"""The one-walk fast path (``accept``) accepts valid workflows with the plan the full checks give,
and refuses (answers None, so the full checks explain) everything they refuse."""
from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from imagetune.graph_runtime import Input, Node, NodeRegistry, Output, Runtime, ValidationError, validate
from imagetune.graph_runtime import types as T
from imagetune.graph_runtime.accept import accept
from imagetune.graph_runtime.limits import MAX_DEPTH, MAX_INPUTS_PER_NODE, MAX_NAME_CHARS, MAX_STRING_CHARS

WORKFLOWS = Path(__file__).resolve().parents[2] / "workflows" / "api"


class CheckedNode(Node):
    """An output node with a check of its own: ``value`` must be even."""

    node_id = "ImageTuneTestChecked"
    category = "ImageTune/test"
    output_node = True
    inputs = (Input("value", T.INT, default=0),)

    @classmethod
    def check_inputs(cls, value=0, **_):
        return [] if value % 2 == 0 else [("value", "must be even")]

    def run(self, ctx, value):
        return {"ui": {}, "result": ()}


@pytest.fixture
def registry(fakes):
    return NodeRegistry([*fakes.registry, CheckedNode])


def valid() -> dict:
    """A workflow using every kind of input: literals of each type, links, _meta, an optional input left out."""
    return {
        "1": {"inputs": {"value": 3}, "class_type": "ImageTuneTestConst", "_meta": {"title": "Zahl ½"}},
        "2": {"class_type": "ImageTuneTestAdd", "inputs": {"a": ["1", 0], "b": 2.0}},
        "3": {"class_type": "ImageTuneTestOptions",
              "inputs": {"flag": True, "scale": 1, "text": "naïve", "mode": "slow"}},
        "4": {"class_type": "ImageTuneTestSink", "inputs": {"value": ["2", 0]}},
        "5": {"class_type": "ImageTuneTestSink", "inputs": {"value": ["3", 0]}, "_meta": {"tags": [[1], {"a": None}]}},
        "6": {"class_type": "ImageTuneTestChecked", "inputs": {"value": 4}},
        "7": {"class_type": "ImageTuneTestConst", "inputs": {"value": 1}},  # no output needs it
    }


def assert_same_plan(quick, workflow, registry):
    full, report = validate(workflow, registry)
    assert report is None and quick is not None
    assert repr(quick.workflow) == repr(full.workflow)  # same content and key order, 1 and 1.0 apart
    assert (quick.classes, quick.outputs, quick.parents) == (full.classes, full.outputs, full.parents)
    assert quick.order == full.order


def test_a_valid_workflow_is_accepted_with_the_plan_validation_gives(registry):
    workflow = valid()
    assert_same_plan(accept(workflow, registry), workflow, registry)


@pytest.mark.parametrize("path", sorted(WORKFLOWS.glob("*.json")), ids=lambda p: p.stem)
def test_the_shipped_workflows_are_accepted_with_the_plan_validation_gives(path):
    from imagetune.nodes import default_registry

    workflow = json.loads(path.read_text())
    assert_same_plan(accept(workflow, default_registry()), workflow, default_registry())


def test_the_plan_holds_its_own_copy(registry):
    workflow = valid()
    plan = accept(workflow, registry)
    before = repr(plan.workflow)
    workflow["2"]["inputs"]["a"][0] = "7"
    workflow["5"]["_meta"]["tags"][0].append(2)
    workflow["1"]["inputs"]["value"] = 5
    workflow["1"]["_meta"]["title"] = "x"
    assert repr(plan.workflow) == before


def _edit(path: str, value):
    """A change to ``valid()``: set the value at ``node/field/name`` (or drop it when value is DROP)."""
    def edited():
        workflow = valid()
        *parents, last = path.split("/")
        target = workflow
        for key in parents:
            target = target[key]
        if value is DROP:
            del target[last]
        else:
            target[last] = value() if callable(value) else value
        return workflow
    return edited


DROP = object()

INVALID = {
    "unknown class": _edit("4/class_type", "Nope"),
    "no class_type": _edit("4/class_type", DROP),
    "inputs not an object": _edit("2/inputs", [1, 2]),
    "unknown input": _edit("2/inputs/c", 1),
    "required input missing": _edit("2/inputs/b", DROP),
    "link to a missing node": _edit("2/inputs/a", ["99", 0]),
    "link to a missing slot": _edit("2/inputs/a", ["1", 1]),
    "link of the wrong type": _edit("2/inputs/a", ["3", 0]),  # a STRING into an INT
    "list that is not a link": _edit("2/inputs/a", ["1", 0, 0]),
    "boolean slot": _edit("2/inputs/a", ["1", True]),
    "integer too small": _edit("1/inputs/value", -1),
    "float for an INT": _edit("1/inputs/value", 1.5),
    "text for a FLOAT": _edit("3/inputs/scale", "1"),
    "combo not in list": _edit("3/inputs/mode", "medium"),
    "own check fails": _edit("6/inputs/value", 3),
    "cycle": _edit("2/inputs/a", ["2", 0]),
    "node not an object": _edit("7", [1]),
    "bad node of no output": _edit("7/inputs/value", "x"),  # validation skips it; accept leaves it to validation
}

HOSTILE = {
    "long text": _edit("3/inputs/text", "x" * (MAX_STRING_CHARS + 1)),
    "lone surrogate in a value": _edit("3/inputs/text", "\ud800"),
    "lone surrogate in a node id": lambda: {**valid(), "\udc00": valid()["7"]},
    "lone surrogate in _meta": _edit("1/_meta/title", "a\ud800"),
    "long key in _meta": _edit("1/_meta", {"k" * (MAX_NAME_CHARS + 1): 1}),
    "long node id": lambda: {**valid(), "9" * (MAX_NAME_CHARS + 1): valid()["7"]},
    "huge integer": _edit("1/inputs/value", 10 ** 40),
    "huge slot": _edit("2/inputs/a", ["1", 10 ** 40]),
    "deep nesting in _meta": _edit("1/_meta", lambda: _nested(MAX_DEPTH)),
    "deep nesting in an input": _edit("3/inputs/text", lambda: {"__value__": _nested(MAX_DEPTH)}),
    "non-text key in _meta": _edit("1/_meta", {1: "a"}),
    "too many inputs": _edit("2/inputs", {f"i{i}": 0 for i in range(MAX_INPUTS_PER_NODE + 1)}),
    "tuple link": _edit("2/inputs/a", ("1", 0)),
    "text subclass": _edit("3/inputs/text", type("Text", (str,), {})("a")),
    "POST body": lambda: {"prompt": valid()},
    "UI file": lambda: {"nodes": [], "links": []},
    "not a dict": lambda: [valid()],
}


def _nested(levels: int):
    value: list = []
    for _ in range(levels):
        value = [value]
    return value


@pytest.mark.parametrize("make", [*INVALID.values(), *HOSTILE.values()], ids=[*INVALID, *HOSTILE])
def test_anything_unusual_or_invalid_is_left_to_the_full_checks(registry, make):
    workflow = make()
    assert accept(workflow, registry) is None
    if make is INVALID["bad node of no output"]:
        assert validate(workflow, registry)[1] is None  # valid: only the fast path refers it


@pytest.mark.parametrize("name", sorted(set(INVALID) - {"bad node of no output"}))
def test_the_runtime_still_reports_what_the_full_checks_find(registry, name):
    workflow = INVALID[name]()
    _, report = validate(copy.deepcopy(workflow), registry)
    with pytest.raises(ValidationError) as raised:
        Runtime(registry).prepare(workflow)
    assert raised.value.report["node_errors"] == report["node_errors"]


def test_a_runtime_prepares_through_the_fast_path_and_remembers_the_plan(registry, monkeypatch):
    from imagetune.graph_runtime import executor

    calls = []
    monkeypatch.setattr(executor, "validate", lambda *a, **k: calls.append(a) or validate(*a, **k))
    runtime = Runtime(registry)
    plan = runtime.prepare(valid())
    assert not calls  # accepted in one walk: the full validation did not run
    assert runtime.prepare(valid()) is plan  # remembered by content
