"""Hostile workflows are refused with a clear error, in bounded time and memory (issue 15).

Each test is one case that crashed, hung or was wrongly accepted before: huge numbers, ids that
look numeric, deep nesting, long Reroute and bypass chains, big cycles and graphs, text a
terminal cannot print, byte-order marks, leniency about JSON and PNG text, Ctrl-C at start-up.
"""
from __future__ import annotations

import io
import json
import sys
import time
import zlib

import pytest
from PIL import Image
from PIL.PngImagePlugin import PngInfo

from imagetune.graph_runtime import ExecutionContext, ValidationError, WorkflowFormatError, load_workflow, validate
from imagetune.graph_runtime import cli, limits
from imagetune.graph_runtime.errors import ExecutionInterrupted
from imagetune.graph_runtime.interchange import ui_to_api, workflow_from_png


def const(value=1):
    return {"class_type": "ImageTuneTestConst", "inputs": {"value": value}}


def add(a, b=1):
    return {"class_type": "ImageTuneTestAdd", "inputs": {"a": a, "b": b}}


def sink(link):
    return {"class_type": "ImageTuneTestSink", "inputs": {"value": link}}


def options(**inputs):
    base = {"flag": False, "scale": 1.0, "text": "", "mode": "fast"}
    base.update(inputs)
    return {"class_type": "ImageTuneTestOptions", "inputs": base}


def nested(levels: int):
    value: list = []
    for _ in range(levels):
        value = [value]
    return value


def png(chunks: list[tuple[bytes, bytes]]) -> bytes:
    """A 4x4 PNG with raw text chunks ``(chunk type, data)``."""
    info = PngInfo()
    for kind, data in chunks:
        info.add(kind, data)
    buffer = io.BytesIO()
    Image.new("RGB", (4, 4)).save(buffer, format="PNG", pnginfo=info)
    return buffer.getvalue()


def errors_of(report: dict, node_id: str) -> list[dict]:
    return report["node_errors"][node_id]["errors"]


# --- numbers -----------------------------------------------------------------------------------


def test_float_input_given_a_309_digit_integer_is_refused_naming_the_input(runtime):
    wf = {"1": options(scale=int("17" + "9" * 307)), "2": sink(["1", 0])}
    _, report = validate(wf, runtime.registry)
    (error,) = errors_of(report, "1")
    assert error["type"] == "limit_exceeded" and error["extra_info"]["input_name"] == "scale"
    assert f"more than {limits.MAX_INT_DIGITS} digits" in error["details"]


@pytest.mark.parametrize("form", ["text", "file", "png"])
def test_json_number_with_5000_digits_is_refused_naming_the_node_and_input(form, tmp_path):
    text = '{"1": {"class_type": "ImageTuneTestConst", "inputs": {"value": %s}}}' % ("7" * 5000)
    source = {"text": text, "file": tmp_path / "wf.json", "png": tmp_path / "wf.png"}[form]
    if form == "file":
        source.write_text(text)
    if form == "png":
        source.write_bytes(png([(b"tEXt", b"prompt\0" + text.encode())]))
    with pytest.raises(WorkflowFormatError) as info:
        load_workflow(source)
    assert "node 1 input 'value': a number with 5,000 digits" in str(info.value)


# --- ids -------------------------------------------------------------------------------------


def test_ids_that_look_numeric_but_are_not_are_ordered_without_int(runtime):
    wf = {"²": const(2), "²9": sink(["²", 0]), "10": const(3), "9": sink(["10", 0]), "0010": const(4),
          "11": sink(["0010", 0]), "7" * 900: const(5), "8": sink(["7" * 900, 0])}
    plan, report = validate(wf, runtime.registry)
    assert report is None
    assert plan.outputs == ["8", "9", "11", "²9"]  # numbers first, by value; "0010" sorts as 10
    assert plan.order.index("0010") < plan.order.index("10") < plan.order.index("²")  # ties: by text


# --- nesting -----------------------------------------------------------------------------------


@pytest.mark.parametrize("where", ["_meta", "class_type", "input"])
def test_deep_nesting_anywhere_is_refused_naming_the_node(runtime, where):
    deep = nested(950)
    node = const()
    if where == "input":
        node["inputs"]["value"] = {"__value__": deep}
    else:
        node[where] = deep if where == "class_type" else {"title": deep}
    wf = {"1": node, "2": sink(["1", 0])}
    with pytest.raises(WorkflowFormatError) as info:
        runtime.prepare(wf)  # hashing and copying the workflow used to overflow the stack
    expected = {"_meta": "node 1 _meta", "class_type": "node 1 class_type", "input": "node 1 input 'value'"}
    assert f"{expected[where]}: nested more than {limits.MAX_DEPTH} levels deep" in str(info.value)
    _, report = validate(wf, runtime.registry)  # and validating the dict directly
    assert errors_of(report, "1")[0]["type"] == "limit_exceeded"
    json.dumps(report)


def test_deep_nesting_in_a_ui_file_and_in_an_override_is_refused(runtime):
    ui = {"nodes": [{"id": 1, "type": "ImageTuneTestConst", "widgets_values": nested(950)}], "links": []}
    with pytest.raises(WorkflowFormatError, match="node 1 widgets_values: nested more than"):
        load_workflow(ui, runtime.registry)
    with pytest.raises(WorkflowFormatError, match="(?s)override .1.value.*nested more than"):
        runtime.prepare({"1": const(), "2": sink(["1", 0])}, {"1.value": nested(950)})


# --- sizes -------------------------------------------------------------------------------------


def test_huge_text_keys_and_input_counts_are_refused_naming_the_node(runtime):
    wf = {"1": options(text="x" * (limits.MAX_STRING_CHARS + 1)), "2": sink(["1", 0])}
    with pytest.raises(WorkflowFormatError, match="node 1 input 'text': text of 1,000,001 characters"):
        load_workflow(wf)
    wf = {"1": {"class_type": "ImageTuneTestConst", "inputs": {f"i{n}": 0 for n in range(1001)}}}
    with pytest.raises(WorkflowFormatError, match="node 1: too many inputs: 1,001"):
        load_workflow(wf)
    with pytest.raises(WorkflowFormatError, match="an object key must be text, got int"):
        runtime.prepare({1: const(), "2": sink(["1", 0])})  # json.dumps(sort_keys) raised TypeError


def test_fifty_thousand_nodes_are_refused_at_once():
    wf = {str(i): const() for i in range(50_000)}
    started = time.perf_counter()
    with pytest.raises(WorkflowFormatError, match="too many nodes: 50,000, more than 20,000"):
        load_workflow(json.dumps(wf))
    assert time.perf_counter() - started < 5


# --- big graphs: reports linear in the graph ------------------------------------------------------


def test_a_cycle_of_10000_nodes_is_named_once_in_bounded_time(runtime):
    n = 10_000
    wf = {str(i): add([str(i - 1 if i > 1 else n), 0]) for i in range(1, n + 1)}
    wf["sink"] = sink(["1", 0])
    started = time.perf_counter()
    with pytest.raises(ValidationError) as info:
        runtime.prepare(wf)
    assert time.perf_counter() - started < 10  # over 60 s before (every member listed the cycle)
    report = info.value.report
    assert len(report["node_errors"]) == n  # every member is marked ...
    error = errors_of(report, "5000")[0]
    assert error["extra_info"]["cycle_size"] == n and len(error["extra_info"]["cycle"]) == limits.MAX_LISTED
    assert "(10,000 nodes in all) depend on each other" in error["details"]
    assert len(str(info.value)) < 2_000  # ... and the text names the cycle once
    assert len(json.dumps(report)) < 2_000 * n


def test_twenty_thousand_nodes_with_an_error_each_give_a_short_message(runtime):
    n = limits.MAX_NODES
    wf = {str(i): add([str(i - 1), 0], b=5000) for i in range(2, n)}
    wf["1"], wf[str(n)] = const(), sink([str(n - 1), 0])
    started = time.perf_counter()
    with pytest.raises(ValidationError) as info:
        runtime.prepare(wf)
    assert time.perf_counter() - started < 10  # 20 s before
    report = info.value.report
    assert len(report["node_errors"]) == n - 2  # the JSON report is complete ...
    assert report["node_errors"]["2"]["dependent_outputs"] == [str(n)]
    text = str(info.value)
    assert len(text) < 1_000 and "(and 19,997 more nodes)" in text  # ... the text is not 4 MB
    assert len(report["error"]["details"].splitlines()) == limits.MAX_LISTED + 1


def test_many_distinct_problems_list_the_first_fifty(runtime):
    wf = {str(i): const(1000 + i) for i in range(1, 201)}
    wf.update({f"s{i}": sink([str(i), 0]) for i in range(1, 201)})
    with pytest.raises(ValidationError) as info:
        runtime.prepare(wf)
    lines = str(info.value).splitlines()
    assert len(lines) == 1 + limits.MAX_LISTED + 1 and "... and 150 more problems" in lines[-1]


# --- UI files: long chains ----------------------------------------------------------------------


def _ui_chain(length: int, kind: str) -> dict:
    """Const -> ``length`` Reroutes (or bypassed Add nodes) -> Sink, in the UI form."""
    nodes = [{"id": 1, "type": "ImageTuneTestConst", "mode": 0, "widgets_values": [7],
              "outputs": [{"type": "INT", "links": [1]}]}]
    links = []
    for i in range(2, length + 2):
        if kind == "reroute":
            nodes.append({"id": i, "type": "Reroute", "mode": 0, "inputs": [{"name": "", "type": "*", "link": i - 1}],
                          "outputs": [{"type": "*", "links": [i]}]})
        else:
            nodes.append({"id": i, "type": "ImageTuneTestAdd", "mode": 4, "widgets_values": [0, 1],
                          "inputs": [{"name": "a", "type": "INT", "link": i - 1}],
                          "outputs": [{"type": "INT", "links": [i]}]})
        links.append([i - 1, i - 1, 0, i, 0, "INT"])
    nodes.append({"id": length + 2, "type": "ImageTuneTestSink", "mode": 0,
                  "inputs": [{"name": "value", "type": "INT", "link": length + 1}]})
    links.append([length + 1, length + 1, 0, length + 2, 0, "INT"])
    return {"version": 0.4, "nodes": nodes, "links": links}


@pytest.mark.parametrize("kind", ["reroute", "bypass"])
def test_a_chain_of_5000_reroutes_or_bypassed_nodes_converts(fakes, kind):
    api = ui_to_api(_ui_chain(5000, kind), fakes.registry)  # RecursionError in the converter before
    assert api == {"1": {"inputs": {"value": 7}, "class_type": "ImageTuneTestConst",
                         "_meta": {"title": fakes.ConstNode.display_name}},
                   "5002": {"inputs": {"value": ["1", 0]}, "class_type": "ImageTuneTestSink",
                            "_meta": {"title": fakes.SinkNode.display_name}}}


def test_reroutes_shared_by_many_inputs_are_followed_once(fakes):
    data = _ui_chain(3000, "reroute")
    last = len(data["nodes"])
    for k in range(3000):  # a sink on every reroute of the chain: without memory, 4.5 M steps
        data["nodes"].append({"id": last + 1 + k, "type": "ImageTuneTestSink", "mode": 0,
                              "inputs": [{"name": "value", "type": "INT", "link": 100_000 + k}]})
        data["links"].append([100_000 + k, 2 + k, 0, last + 1 + k, 0, "INT"])
    started = time.perf_counter()
    api = ui_to_api(data, fakes.registry)
    assert time.perf_counter() - started < 5
    assert all(node["inputs"]["value"] == ["1", 0] for node in api.values() if "value" in node["inputs"]
               and isinstance(node["inputs"]["value"], list))


# --- text a terminal cannot print ----------------------------------------------------------------


def test_a_lone_surrogate_is_refused_and_the_message_prints_on_an_ascii_terminal(tmp_path, monkeypatch):
    path = tmp_path / "wf.json"
    path.write_text('{"1": {"class_type": "ImageTuneTestConst", "inputs": {"va\\ud800lue": 1, "t": "\\udfff"}}}')
    with pytest.raises(WorkflowFormatError, match="lone surrogate"):
        load_workflow(path)
    stderr = io.TextIOWrapper(io.BytesIO(), encoding="ascii")
    monkeypatch.setattr(sys, "stderr", stderr)
    assert cli.main(["validate", str(path)]) == cli.EXIT_INVALID  # raised UnicodeEncodeError before
    stderr.flush()
    printed = stderr.buffer.getvalue().decode("ascii")
    assert "lone surrogate" in printed and "\\ud800" in printed


# --- strict JSON and PNG text ------------------------------------------------------------------------


WORKFLOW = {"1": const(3), "2": sink(["1", 0])}


@pytest.mark.parametrize("form", ["file", "text", "png tEXt", "png iTXt"])
def test_a_utf8_byte_order_mark_is_read(form, tmp_path):
    text = "\ufeff" + json.dumps(WORKFLOW)
    if form == "text":
        assert load_workflow(text) == WORKFLOW  # was taken for a file name: OSError
        return
    path = tmp_path / ("wf.json" if form == "file" else "wf.png")
    if form == "file":
        path.write_bytes(text.encode("utf-8"))
    elif form == "png tEXt":
        path.write_bytes(png([(b"tEXt", b"prompt\0" + text.encode("utf-8"))]))
    else:
        path.write_bytes(png([(b"iTXt", b"prompt\0\0\0\0\0" + text.encode("utf-8"))]))
    assert load_workflow(path) == WORKFLOW


@pytest.mark.parametrize("form", ["file", "png"])
def test_a_trailing_comma_is_refused(form, tmp_path):
    text = json.dumps(WORKFLOW)[:-1] + ",}"
    path = tmp_path / ("wf.json" if form == "file" else "wf.png")
    path.write_bytes(text.encode() if form == "file" else png([(b"tEXt", b"prompt\0" + text.encode())]))
    with pytest.raises(WorkflowFormatError, match="malformed JSON at line 1"):
        load_workflow(path)


@pytest.mark.parametrize("chunk", [b"tEXt", b"iTXt", b"zTXt"])
def test_a_png_prompt_chunk_with_invalid_utf8_is_refused(chunk):
    text = json.dumps(options(text="caf\u00e9"), ensure_ascii=False).encode("utf-8").replace(b"\xc3\xa9", b"\xe9")
    data = {b"tEXt": b"prompt\0" + text, b"iTXt": b"prompt\0\0\0\0\0" + text,
            b"zTXt": b"prompt\0\0" + zlib.compress(text)}[chunk]
    raw = png([(chunk, data), (b"tEXt", b"workflow\0" + json.dumps({"nodes": [], "links": []}).encode())])
    # tEXt was read as Latin-1 (any byte is a character); a bad iTXt was dropped, so the workflow
    # chunk was used instead
    with pytest.raises(WorkflowFormatError, match=r"wf.png \(prompt chunk\): not UTF-8 text"):
        workflow_from_png(raw, "wf.png")


def test_png_text_that_inflates_past_the_size_limit_is_refused():
    bomb = zlib.compress(b" " * (65 * 2**20), 9)
    raw = png([(b"zTXt", b"prompt\0\0" + bomb)])
    with pytest.raises(WorkflowFormatError, match="inflates to more than"):
        workflow_from_png(raw, "bomb.png")


def test_a_png_with_two_prompt_chunks_is_refused():
    one = b"prompt\0" + json.dumps(WORKFLOW).encode()
    with pytest.raises(WorkflowFormatError, match="two 'prompt' text chunks"):
        workflow_from_png(png([(b"tEXt", one), (b"tEXt", one)]), "twice.png")


# --- interrupts ----------------------------------------------------------------------------------


def test_an_interrupt_between_nodes_does_not_name_an_empty_node():
    ctx = ExecutionContext(device="cpu")
    ctx.interrupt()
    with pytest.raises(ExecutionInterrupted) as info:
        ctx.check_interrupt()
    assert str(info.value) == "interrupted between nodes"  # was "interrupted in node "
    with pytest.raises(ExecutionInterrupted, match="^interrupted in node 7$"):
        ctx.for_node("7").check_interrupt()


def test_ctrl_c_during_start_up_exits_130_without_a_traceback(monkeypatch, capsys, tmp_path):
    def interrupted():
        raise KeyboardInterrupt  # as when Ctrl-C lands while the nodes are imported

    monkeypatch.setattr(cli, "_runtime", interrupted)
    path = tmp_path / "wf.json"
    path.write_text(json.dumps(WORKFLOW))
    try:
        code = cli.main(["validate", str(path)])
    except KeyboardInterrupt:
        pytest.fail("Ctrl-C escaped the command as a KeyboardInterrupt (a traceback)")
    assert code == cli.EXIT_INTERRUPTED
    assert "Traceback" not in capsys.readouterr().err
