"""The imagetune command line, run in-process against the fake nodes."""
from __future__ import annotations

import json

import pytest

from imagetune.graph_runtime import cli, executor


@pytest.fixture
def use_fakes(monkeypatch, runtime):
    monkeypatch.setattr(executor, "_default_runtime", runtime)
    return runtime


def write(tmp_path, wf):
    path = tmp_path / "wf.json"
    path.write_text(json.dumps(wf))
    return str(path)


WF = {"1": {"class_type": "ImageTuneTestConst", "inputs": {"value": 2}},
      "2": {"class_type": "ImageTuneTestSink", "inputs": {"value": ["1", 0]}}}


def test_run_with_override(use_fakes, fakes, tmp_path, capsys):
    assert cli.main(["run", write(tmp_path, WF), "--set", "1.value=9", "--no-progress", "--json",
                     "--device", "cpu", "--out", str(tmp_path)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["executed"] == ["1", "2"]
    assert use_fakes.run(WF, {"1.value": 9}).ui["2"] == {"values": [9]}


def test_threads_option_sets_torchs_cpu_threads(use_fakes, tmp_path, capsys):
    import torch

    before = torch.get_num_threads()
    try:
        assert cli.main(["run", write(tmp_path, WF), "--threads", "2", "--no-progress", "--out", str(tmp_path)]) == 0
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)
    with pytest.raises(SystemExit):
        cli.main(["run", write(tmp_path, WF), "--threads", "0"])
    assert "at least 1" in capsys.readouterr().err


def test_validate_exit_codes(use_fakes, tmp_path, capsys):
    assert cli.main(["validate", write(tmp_path, WF)]) == 0
    bad = dict(WF, **{"1": {"class_type": "ImageTuneTestConst", "inputs": {"value": 1000}}})
    assert cli.main(["validate", "--json", write(tmp_path, bad)]) == cli.EXIT_INVALID
    report = json.loads(capsys.readouterr().out.split("\n", 1)[1])
    assert report["node_errors"]["1"]["errors"][0]["type"] == "value_bigger_than_max"


def test_bad_override_value_is_a_clear_error(use_fakes, tmp_path, capsys):
    assert cli.main(["run", write(tmp_path, WF), "--set", "1.value=lots", "--no-progress"]) == cli.EXIT_INVALID
    assert "1.value" in capsys.readouterr().err
    assert cli.main(["run", write(tmp_path, WF), "--set", "7.value=1", "--no-progress"]) == cli.EXIT_INVALID
    assert "no node '7'" in capsys.readouterr().err


def test_malformed_json_file(use_fakes, tmp_path, capsys):
    path = tmp_path / "bad.json"
    path.write_text('{"1": {')
    assert cli.main(["validate", str(path)]) == cli.EXIT_INVALID
    err = capsys.readouterr().err
    assert "line 1, column 8" in err and "Traceback" not in err


def test_failure_exit_code_names_node(use_fakes, tmp_path, capsys):
    wf = {"1": {"class_type": "ImageTuneTestConst", "inputs": {"value": 2}},
          "2": {"class_type": "ImageTuneTestFail", "inputs": {"value": ["1", 0]}},
          "3": {"class_type": "ImageTuneTestSink", "inputs": {"value": ["2", 0]}}}
    assert cli.main(["run", write(tmp_path, wf), "--no-progress"]) == cli.EXIT_FAILED
    err = capsys.readouterr().err
    assert "node 2 (ImageTuneTestFail)" in err and "boom" in err and "completed: 1" in err


def test_nodes_catalog(use_fakes, capsys):
    assert cli.main(["nodes", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["ImageTuneTestOptions"]["input"]["required"]["mode"][0] == ["fast", "slow"]
    assert cli.main(["nodes"]) == 0
    text = capsys.readouterr().out
    assert "ImageTuneTestOptions" in text and "one of fast, slow" in text


@pytest.mark.parametrize("kind,raw,value", [("INT", "0x10", 16), ("FLOAT", "2.5", 2.5), ("BOOLEAN", "off", False),
                                            ("STRING", "a red circle", "a red circle")])
def test_override_coercion(kind, raw, value):
    from imagetune.graph_runtime.workflow import coerce_override

    assert coerce_override(kind, raw) == value


UI = {"last_node_id": 2, "last_link_id": 1, "version": 0.4,
      "nodes": [{"id": 1, "type": "ImageTuneTestConst", "mode": 0, "inputs": [],
                 "outputs": [{"name": "value", "type": "INT", "links": [1]}], "widgets_values": [2]},
                {"id": 2, "type": "ImageTuneTestPngInfo", "mode": 0,
                 "inputs": [{"name": "value", "type": "INT", "link": 1}], "outputs": []}],
      "links": [[1, 1, 0, 2, 0, "INT"]]}


def test_ui_workflow_is_embedded_unless_overrides_change_the_prompt(use_fakes, tmp_path, capsys):
    path = write(tmp_path, UI)
    assert cli.main(["run", path, "--no-progress", "--json"]) == 0
    assert use_fakes.run(UI, ui_workflow=UI).ui["2"] == {"embedded": [sorted(UI)]}
    capsys.readouterr()
    seen = []
    original = use_fakes.execute
    use_fakes.execute = lambda plan, ctx, progress=False: seen.append(ctx.extra_pnginfo) or original(plan, ctx, progress)
    assert cli.main(["run", path, "--no-progress"]) == 0
    assert cli.main(["run", path, "--no-progress", "--set", "1.value=5"]) == 0
    assert seen[0] == {"workflow": UI} and seen[1] is None


def test_the_command_line_starts_before_the_nodes_are_imported():
    """The pack's root builds ComfyUI's mappings only when asked, so `imagetune` installs its
    Ctrl-C handling (exit 130, no traceback) before the nodes are imported; and declaring them
    imports no torch (tests/runtime/test_startup.py checks every command)."""
    import subprocess
    import sys

    code = ("import sys, imagetune.graph_runtime.cli as cli; assert 'imagetune.nodes' not in sys.modules; "
            "import imagetune; assert len(imagetune.NODE_CLASS_MAPPINGS) > 20; assert 'torch' not in sys.modules")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
