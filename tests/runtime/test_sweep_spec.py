"""Sweeps on the fake nodes: values, jobs, saved sweep files, validation of every job, the manifest."""
from __future__ import annotations

import json
import os

import pytest

from imagetune.graph_runtime import SweepValidationError, WorkflowFormatError, cli, executor, sweep
from imagetune.graph_runtime.sweeps import load_sweep
from imagetune.graph_runtime.sweep_manifest import MANIFEST, append_row, read_rows
from imagetune.graph_runtime.sweep_spec import Sweep, parse_values, parse_vary

WF = {"1": {"class_type": "ImageTuneTestConst", "inputs": {"value": 2}},
      "2": {"class_type": "ImageTuneTestAdd", "inputs": {"a": ["1", 0], "b": 0}},
      "3": {"class_type": "ImageTuneTestSink", "inputs": {"value": ["2", 0]}}}


@pytest.mark.parametrize("text, values", [
    ("a|b|c", ["a", "b", "c"]),
    ("only one", ["only one"]),
    ("0..3", ["0", "1", "2", "3"]),
    (" 3 .. 1 ", ["3", "2", "1"]),
    ("-1..1", ["-1", "0", "1"]),
    ("a..b", ["a..b"]),  # not whole numbers: one literal value
    ("a|", ["a", ""]),
])
def test_value_forms(text, values):
    assert parse_values(text) == values


def test_values_from_a_file(tmp_path):
    path = tmp_path / "prompts.txt"
    path.write_bytes("\ufeffa red circle\r\n\na blue | square\nä ü\n".encode("utf-8"))
    assert parse_vary([f"2.text=@{path}"]) == {"2.text": ["a red circle", "a blue | square", "ä ü"]}
    with pytest.raises(WorkflowFormatError, match="cannot read"):
        parse_values(f"@{tmp_path / 'missing.txt'}")
    (tmp_path / "bad.txt").write_bytes(b"\xff\xfe")
    with pytest.raises(WorkflowFormatError, match="not UTF-8"):
        parse_values(f"@{tmp_path / 'bad.txt'}")


@pytest.mark.parametrize("item", ["seed=1", "6=1", ".seed=1", "6.=1", "6.seed"])
def test_malformed_vary_is_a_clear_error(item):
    with pytest.raises(WorkflowFormatError, match="ID.INPUT=VALUES"):
        parse_vary([item])


def test_product_and_zip():
    product = Sweep(WF, {"1.value": [1, 2], "2.b": [10, 20, 30]}).jobs()
    assert len(product) == 6
    assert product[:4] == [{"1.value": 1, "2.b": 10}, {"1.value": 1, "2.b": 20}, {"1.value": 1, "2.b": 30},
                           {"1.value": 2, "2.b": 10}]
    assert Sweep(WF, {"1.value": [1, 2], "2.b": [10, 20]}, zip=True).jobs() == [
        {"1.value": 1, "2.b": 10}, {"1.value": 2, "2.b": 20}]
    with pytest.raises(WorkflowFormatError, match="equal length: 1.value has 2, 2.b has 3"):
        Sweep(WF, {"1.value": [1, 2], "2.b": [10, 20, 30]}, zip=True).jobs()
    assert Sweep(WF, {}).jobs() == [{}]


def test_values_are_typed_by_the_declaration(fakes):
    spec = load_sweep(WF, ["1.value=0..2", "2.b=5|x"], registry=fakes.registry)
    assert spec.vary == {"1.value": [0, 1, 2], "2.b": [5, "x"]}  # "x" stays, validation names it


def test_every_job_is_validated_before_any_runs(runtime, fakes, tmp_path):
    seeds = [str(v) for v in range(40)]
    seeds[37] = "101"                       # above ConstNode's maximum of 100
    values = tmp_path / "values.txt"
    values.write_text("\n".join(seeds))
    with pytest.raises(SweepValidationError) as caught:
        sweep(WF, [f"1.value=@{values}", "2.b=1|x"], out=tmp_path / "out", runtime=runtime)
    text = str(caught.value)
    assert "job 74 (value=101, b=1)" in text          # 37 * 2: the product puts b fastest
    assert "node 1 (ImageTuneTestConst) input 'value': value_bigger_than_max" in text
    assert ("jobs 1, 3, 5, 7, 9, 11, 13, 15 and 32 more: override '2.b': node 2 (ImageTuneTestAdd) "
            "input 'b' expects a whole number (INT), got 'x'") in text  # every odd job, reported once
    assert text.startswith("41 of 80 jobs are invalid; no job ran")
    assert fakes.calls == [] and not (tmp_path / "out").exists()
    problems = {p["message"]: p["jobs"] for p in caught.value.problems}
    assert [jobs for m, jobs in problems.items() if "'b'" in m] == [list(range(1, 80, 2))]


def test_unknown_node_or_input_names_the_job(runtime, tmp_path):
    with pytest.raises(SweepValidationError, match=r"job 0 \(nope=1\): override '1.nope': "
                                                   r"ImageTuneTestConst has no input 'nope'"):
        sweep(WF, ["1.nope=1"], out=tmp_path, runtime=runtime)
    with pytest.raises(SweepValidationError, match="the workflow has no node '9'"):
        sweep(WF, ["9.value=1|2"], out=tmp_path, runtime=runtime)


def test_sweep_on_fakes_records_every_job_and_resumes(runtime, fakes, tmp_path):
    rows = sweep(WF, {"1.value": [1, 2], "2.b": [10, 20]}, out=tmp_path, runtime=runtime)
    assert [(r["job"], r["status"], r["overrides"]) for r in rows] == [
        (0, "done", {"1.value": 1, "2.b": 10}), (1, "done", {"1.value": 1, "2.b": 20}),
        (2, "done", {"1.value": 2, "2.b": 10}), (3, "done", {"1.value": 2, "2.b": 20})]
    assert rows[1]["cached"] == ["1"]                 # the constant did not run again for job 1
    assert fakes.calls.count("1") == 2                # once per value of 1.value
    calls = len(fakes.calls)
    again = sweep(WF, {"1.value": [1, 2], "2.b": [10, 20]}, out=tmp_path, runtime=runtime)
    assert again == rows and len(fakes.calls) == calls  # nothing ran again
    assert len((tmp_path / MANIFEST).read_text().splitlines()) == 4


def test_a_folder_of_another_sweep_is_refused(runtime, tmp_path):
    sweep(WF, {"1.value": [1]}, out=tmp_path, runtime=runtime)
    with pytest.raises(Exception, match="different sweep"):
        sweep(WF, {"1.value": [2]}, out=tmp_path, runtime=runtime)


def test_manifest_skips_a_line_cut_short(tmp_path):
    append_row(tmp_path, {"job": 0, "status": "done", "outputs": []})
    with open(tmp_path / MANIFEST, "ab") as stream:
        stream.write(b'{"job": 1, "status": "do')   # killed while writing
    append_row(tmp_path, {"job": 2, "status": "failed", "outputs": []})
    rows = read_rows(tmp_path)
    assert sorted(rows) == [0, 2]
    assert (tmp_path / MANIFEST).read_text().splitlines()[-1] == (
        '{"job": 2, "outputs": [], "status": "failed"}')


def test_saved_sweep_runs_the_same_jobs(runtime, fakes, monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(executor, "_default_runtime", runtime)
    workflow = tmp_path / "wf.json"
    workflow.write_text(json.dumps(WF))
    saved = tmp_path / "sweep.json"
    assert cli.main(["sweep", str(workflow), "--vary", "1.value=1..3", "--vary", "2.b=7|8", "--zip",
                     "--save-sweep", str(saved)]) == 2            # zip of 3 and 2 values
    assert "equal length" in capsys.readouterr().err
    assert cli.main(["sweep", str(workflow), "--vary", "1.value=1..3", "--vary", "2.b=7..9", "--zip",
                     "--save-sweep", str(saved)]) == 0
    assert fakes.calls == []                                      # saving runs nothing
    assert capsys.readouterr().out.startswith(f"saved {saved}: 3 jobs")
    data = json.loads(saved.read_text())
    assert data["vary"] == {"1.value": [1, 2, 3], "2.b": [7, 8, 9]} and data["zip"] is True
    out = tmp_path / "out"
    assert cli.main(["sweep", str(saved), "--out", str(out), "--no-progress", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["overrides"] for r in rows] == [{"1.value": 1, "2.b": 7}, {"1.value": 2, "2.b": 8},
                                             {"1.value": 3, "2.b": 9}]
    # the sweep file may name its workflow by a path relative to itself
    (tmp_path / "by_path.json").write_text(json.dumps({"workflow": "wf.json", "vary": {"1.value": [5]}}))
    assert [r["overrides"] for r in sweep(str(tmp_path / "by_path.json"), out=tmp_path / "o2",
                                          runtime=runtime)] == [{"1.value": 5}]


def test_failing_job_is_recorded_and_the_others_finish(runtime, monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(executor, "_default_runtime", runtime)
    wf = dict(WF, **{"4": {"class_type": "ImageTuneTestFail", "inputs": {"value": ["1", 0]}},
                     "5": {"class_type": "ImageTuneTestSink", "inputs": {"value": ["4", 0]}}})
    path = tmp_path / "wf.json"
    path.write_text(json.dumps(wf))
    assert cli.main(["sweep", str(path), "--vary", "1.value=1|2", "--out", str(tmp_path / "o"),
                     "--no-progress"]) == cli.EXIT_FAILED
    captured = capsys.readouterr()
    assert "job 0 failed: node 4 (ImageTuneTestFail) failed: RuntimeError: boom" in captured.err
    rows = read_rows(tmp_path / "o")
    assert [rows[i]["status"] for i in (0, 1)] == ["failed", "failed"]
    assert "boom" in rows[1]["error"] and rows[1]["seconds"] >= 0  # job 1 still ran after job 0 failed


def test_allow_downloads_reaches_the_worker(runtime, monkeypatch, tmp_path):
    monkeypatch.delenv("IMAGETUNE_ALLOW_DOWNLOADS", raising=False)
    sweep(WF, {"1.value": [1]}, out=tmp_path / "a", runtime=runtime)
    assert "IMAGETUNE_ALLOW_DOWNLOADS" not in os.environ          # off unless asked for
    sweep(WF, {"1.value": [1]}, out=tmp_path / "b", runtime=runtime, allow_downloads=True)
    assert os.environ["IMAGETUNE_ALLOW_DOWNLOADS"] == "1"
