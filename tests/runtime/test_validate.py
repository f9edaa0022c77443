"""Validation finds every problem, per node, in ComfyUI's error shape, before anything runs."""
from __future__ import annotations

import json

import pytest

from imagetune.graph_runtime import ValidationError, WorkflowFormatError, load_workflow, validate


def _wf(**nodes):
    return {k.lstrip("n"): v for k, v in nodes.items()}


def const(value=1):
    return {"class_type": "ImageTuneTestConst", "inputs": {"value": value}}


def sink(link):
    return {"class_type": "ImageTuneTestSink", "inputs": {"value": link}}


def options(**inputs):
    base = {"flag": False, "scale": 1.0, "text": "", "mode": "fast"}
    base.update(inputs)
    return {"class_type": "ImageTuneTestOptions", "inputs": base}


MALFORMED = [
    ("unknown class", _wf(n1={"class_type": "NoSuchNode", "inputs": {}}, n2=sink(["3", 0]), n3=const()),
     "1", "missing_node_type"),
    ("missing class_type", _wf(n1={"inputs": {}}, n2=sink(["3", 0]), n3=const()), "1", "invalid_prompt"),
    ("missing required input", _wf(n1={"class_type": "ImageTuneTestAdd", "inputs": {"a": ["2", 0]}},
                                   n2=const(), n3=sink(["1", 0])), "1", "required_input_missing"),
    ("link to missing node", _wf(n1=sink(["9", 0])), "1", "bad_linked_input"),
    ("link to missing slot", _wf(n1=const(), n2=sink(["1", 3])), "2", "bad_linked_input"),
    ("malformed link", _wf(n1=const(), n2=sink(["1", 0, 2])), "2", "bad_linked_input"),
    ("type mismatch on link", _wf(n1={"class_type": "ImageTuneTestImage", "inputs": {"size": 4}},
                                  n2=sink(["1", 0])), "2", "return_type_mismatch"),
    ("string for int", _wf(n1=const("3"), n2=sink(["1", 0])), "1", "invalid_input_type"),
    ("bool for int", _wf(n1=const(True), n2=sink(["1", 0])), "1", "invalid_input_type"),
    ("string false for boolean", _wf(n1=options(flag="false"), n2=sink(["1", 0])), "1", "invalid_input_type"),
    ("number for string", _wf(n1=options(text=5), n2=sink(["1", 0])), "1", "invalid_input_type"),
    ("nan for float", _wf(n1=options(scale=float("nan")), n2=sink(["1", 0])), "1", "invalid_input_type"),
    ("above max", _wf(n1=const(101), n2=sink(["1", 0])), "1", "value_bigger_than_max"),
    ("below min", _wf(n1=const(-1), n2=sink(["1", 0])), "1", "value_smaller_than_min"),
    ("float below min", _wf(n1=options(scale=-0.5), n2=sink(["1", 0])), "1", "value_smaller_than_min"),
    ("not among choices", _wf(n1=options(mode="medium"), n2=sink(["1", 0])), "1", "value_not_in_list"),
    ("literal for a socket", _wf(n1={"class_type": "ImageTuneTestImageSize", "inputs": {"image": 5}},
                                 n2=sink(["1", 0])), "1", "invalid_input_type"),
    ("unknown input name", _wf(n1={"class_type": "ImageTuneTestConst", "inputs": {"value": 1, "valeu": 2}},
                               n2=sink(["1", 0])), "1", "unknown_input"),
    ("cycle", _wf(n1={"class_type": "ImageTuneTestAdd", "inputs": {"a": ["2", 0], "b": 1}},
                  n2={"class_type": "ImageTuneTestAdd", "inputs": {"a": ["1", 0], "b": 1}},
                  n3=sink(["2", 0])), "1", "dependency_cycle"),
    ("self loop", _wf(n1={"class_type": "ImageTuneTestAdd", "inputs": {"a": ["1", 0], "b": 1}},
                      n2=sink(["1", 0])), "1", "dependency_cycle"),
    ("node not an object", _wf(n1=[1, 2], n2=sink(["3", 0]), n3=const()), "1", "invalid_prompt"),
]


@pytest.mark.parametrize("name,workflow,node_id,error_type", MALFORMED, ids=[m[0] for m in MALFORMED])
def test_malformed_workflow_reports_expected_error_and_runs_nothing(runtime, fakes, name, workflow,
                                                                    node_id, error_type):
    with pytest.raises(ValidationError) as info:
        runtime.run(workflow)
    report = info.value.report
    assert fakes.calls == [], "nothing may execute when validation fails"
    json.dumps(report)  # the report is plain JSON
    assert set(report) == {"error", "node_errors"}
    assert set(report["error"]) == {"type", "message", "details", "extra_info"}
    entry = report["node_errors"][node_id]
    assert set(entry) == {"errors", "dependent_outputs", "class_type"}
    assert error_type in [e["type"] for e in entry["errors"]], entry


def test_literal_for_socket_input_names_the_input(runtime):
    wf = _wf(n1={"class_type": "ImageTuneTestImageSize", "inputs": {"image": 1}}, n2=sink(["1", 0]))
    _, report = validate(wf, runtime.registry)
    errors = report["node_errors"]["1"]["errors"]
    assert [e["extra_info"]["input_name"] for e in errors] == ["image"]
    assert "must be linked" in errors[0]["details"]
    assert errors[0]["type"] == "invalid_input_type"


def test_every_problem_is_reported_at_once(runtime):
    wf = _wf(n1=const(500), n2={"class_type": "ImageTuneTestAdd", "inputs": {"a": ["1", 0]}},
             n3=options(mode="x", flag="yes"), n4=sink(["2", 0]), n5=sink(["3", 0]),
             n6={"class_type": "Missing", "inputs": {}})
    _, report = validate(wf, runtime.registry)
    found = {(nid, e["type"]) for nid, entry in report["node_errors"].items() for e in entry["errors"]}
    assert found == {("1", "value_bigger_than_max"), ("2", "required_input_missing"),
                     ("3", "value_not_in_list"), ("3", "invalid_input_type"), ("6", "missing_node_type")}
    assert report["node_errors"]["1"]["dependent_outputs"] == ["4"]
    assert report["node_errors"]["3"]["dependent_outputs"] == ["5"]


def test_cycle_is_named(runtime):
    wf = _wf(n1=const(), n2={"class_type": "ImageTuneTestAdd", "inputs": {"a": ["4", 0], "b": ["1", 0]}},
             n3={"class_type": "ImageTuneTestAdd", "inputs": {"a": ["2", 0], "b": 1}},
             n4={"class_type": "ImageTuneTestAdd", "inputs": {"a": ["3", 0], "b": 1}}, n5=sink(["4", 0]))
    with pytest.raises(ValidationError) as info:
        runtime.run(wf)
    cyc = [e for e in info.value.report["node_errors"]["3"]["errors"] if e["type"] == "dependency_cycle"]
    assert cyc and cyc[0]["extra_info"]["cycle"] == ["2", "3", "4"]
    assert "2 -> 3 -> 4 -> 2" in str(info.value)
    assert "1" not in info.value.report["node_errors"]


def test_no_output_node(runtime):
    _, report = validate({"1": const()}, runtime.registry)
    assert report["error"]["type"] == "prompt_no_outputs"


def test_unreachable_nodes_are_not_validated_or_run(runtime, fakes):
    wf = _wf(n1=const(2), n2=sink(["1", 0]), n3=const("not an int"))
    result = runtime.run(wf)
    assert result.ui["2"] == {"values": [2]}
    assert "3" not in fakes.calls


def test_wrapped_list_literal_is_unwrapped(runtime):
    wf = _wf(n1={"class_type": "ImageTuneTestConst", "inputs": {"value": {"__value__": [1]}}}, n2=sink(["1", 0]))
    _, report = validate(wf, runtime.registry)
    assert report["node_errors"]["1"]["errors"][0]["type"] == "invalid_input_type"


def test_integral_float_is_accepted_for_int(runtime):
    assert runtime.run(_wf(n1=const(3.0), n2=sink(["1", 0]))).ui["2"] == {"values": [3.0]}


@pytest.mark.parametrize("text,where", [('{"1": {"class_type": "X",}}', "line 1, column 26"),
                                         ('{\n  "1": \n}', "line 3, column 1"),
                                         ('{"a": NaN}', "NaN")])
def test_malformed_json_names_line_and_column(text, where):
    with pytest.raises(WorkflowFormatError) as info:
        load_workflow(text)
    assert where in str(info.value)
    assert "Traceback" not in str(info.value)


def test_load_from_file_string_and_dict_agree(tmp_path):
    wf = _wf(n1=const(4), n2=sink(["1", 0]))
    path = tmp_path / "wf.json"
    path.write_text(json.dumps(wf))
    assert load_workflow(path) == load_workflow(str(path)) == load_workflow(json.dumps(wf)) == wf


def test_top_level_must_be_object(runtime):
    with pytest.raises(WorkflowFormatError):
        load_workflow("[1, 2]")
    with pytest.raises(WorkflowFormatError, match="no such workflow file"):
        load_workflow("does/not/exist.json")
