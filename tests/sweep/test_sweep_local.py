"""Sweeps of a real workflow (the shipped models) in this process and on local worker processes."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from imagetune.graph_runtime import cli, executor, sweep
from imagetune.graph_runtime.contact_sheet import make_contact_sheet
from imagetune.graph_runtime.sweep_manifest import MANIFEST, SHEET, read_rows


def manifest_lines(folder) -> list[dict]:
    return [json.loads(line) for line in (folder / MANIFEST).read_text().splitlines()]


def embedded_prompt(path) -> dict:
    from PIL import Image

    with Image.open(path) as picture:
        return json.loads(picture.text["prompt"])


def test_two_prompts_by_three_seeds(small, shared_runtime, tmp_path):
    rows = sweep(small.workflow, small.vary, out=tmp_path, runtime=shared_runtime)
    assert [r["status"] for r in rows] == ["done"] * 6
    lines = manifest_lines(tmp_path)
    assert [line["job"] for line in lines] == [0, 1, 2, 3, 4, 5]
    for index, line in enumerate(lines):
        text, seed = small.prompts[index // 3], index % 3
        assert line["overrides"] == {"2.text": text, "6.seed": seed}
        assert line["outputs"] == [f"job-{index:05d}/shape_00001_.png"]
        assert line["seconds"] > 0 and "error" not in line
        prompt = embedded_prompt(tmp_path / line["outputs"][0])  # the job's own workflow is in its PNG
        assert prompt["2"]["inputs"]["text"] == text and prompt["6"]["inputs"]["seed"] == seed
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        ".lock", "job-00000", "job-00001", "job-00002", "job-00003", "job-00004", "job-00005",
        "sweep.json", "sweep.jsonl", "sweep.png"]
    # a seed sweep does not encode the text again; a new prompt does, the models stay loaded
    assert {"1", "2", "3", "5"} <= set(lines[1]["cached"]) and "6" not in lines[1]["cached"]
    assert {"1", "3", "5"} <= set(lines[3]["cached"]) and "2" not in lines[3]["cached"]
    images = [small.pixels(tmp_path / line["outputs"][0]).astype(int) for line in lines]
    assert not np.array_equal(images[0], images[1])                        # seeds differ
    red_on_blue, green_on_yellow = images[0][32, 32], images[3][32, 32]
    assert red_on_blue[0] > red_on_blue[2] and green_on_yellow[1] > green_on_yellow[0]

    # the contact sheet shows each job's image in its cell (prompts down, seeds across)
    again = tmp_path.parent / "sheet-again.png"
    boxes = make_contact_sheet(tmp_path, small.vary, False, [line["overrides"] for line in lines],
                               read_rows(tmp_path), again)
    assert again.read_bytes() == (tmp_path / SHEET).read_bytes()
    sheet = small.pixels(tmp_path / SHEET).astype(int)
    (x0, y0, _, _), (x1, y1, _, _), (x3, y3, _, _) = boxes[0], boxes[1], boxes[3]
    assert y0 == y1 and x1 > x0 and x3 == x0 and y3 > y0                  # a 2 x 3 table
    for index, (left, top, right, bottom) in boxes.items():
        centre = sheet[(top + bottom) // 2, (left + right) // 2]
        assert np.abs(centre - images[index][32, 32]).max() <= 24, index


def test_zip_with_prompts_from_a_file(small, shared_runtime, monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(executor, "_default_runtime", shared_runtime)
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("\n".join(small.prompts) + "\n", encoding="utf-8")
    out = tmp_path / "out"
    assert cli.main(["sweep", small.write(tmp_path), "--vary", f"2.text=@{prompts}", "--vary", "6.seed=5..6",
                     "--zip", "--out", str(out), "--no-progress"]) == 0
    assert "2 of 2 jobs done, 0 failed" in capsys.readouterr().out
    assert [r["overrides"] for r in manifest_lines(out)] == [
        {"2.text": small.prompts[0], "6.seed": 5}, {"2.text": small.prompts[1], "6.seed": 6}]
    assert (out / SHEET).is_file()


def test_a_failing_job_is_recorded_the_others_finish_and_a_rerun_retries_it(small, shared_runtime, tmp_path):
    vary = {"1.text_encoder": ["minilm", "no-such-encoder"], "6.seed": [0, 1]}
    rows = sweep(small.workflow, vary, out=tmp_path, runtime=shared_runtime)
    assert [r["status"] for r in rows] == ["done", "done", "failed", "failed"]
    assert "node 1 (ImageTuneLoadTextEncoder) failed" in rows[2]["error"]
    assert "no-such-encoder" in rows[2]["error"] and rows[2]["outputs"] == []
    done_file = tmp_path / rows[0]["outputs"][0]
    before = (done_file.read_bytes(), done_file.stat().st_mtime_ns)
    again = sweep(small.workflow, vary, out=tmp_path, runtime=shared_runtime)
    assert [r["status"] for r in again] == ["done", "done", "failed", "failed"]
    assert [line["job"] for line in manifest_lines(tmp_path)] == [0, 1, 2, 3, 2, 3]  # only the failed ran
    assert (done_file.read_bytes(), done_file.stat().st_mtime_ns) == before


def _sweep_command(workflow, out) -> list[str]:
    return [sys.executable, "-m", "imagetune", "sweep", workflow, "--vary", "6.seed=0..9", "--out", str(out),
            "--no-progress", "--threads", "1"]


def test_killed_sweep_resumes_without_duplicates_or_changed_files(small, tmp_path):
    workflow = small.write(tmp_path, steps=12)
    out = tmp_path / "out"
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    process = subprocess.Popen(_sweep_command(workflow, out), cwd=tmp_path, env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and process.poll() is None:
        if (out / MANIFEST).is_file() and len((out / MANIFEST).read_text().splitlines()) >= 2:
            break
        time.sleep(0.02)
    assert process.poll() is None, process.stderr.read().decode()
    process.send_signal(signal.SIGKILL)
    process.wait()
    finished = read_rows(out)
    assert 2 <= len(finished) < 10
    earlier = {str(p.relative_to(out)): (p.read_bytes(), p.stat().st_mtime_ns)
               for job in finished.values() for p in (out / name for name in job["outputs"])}
    rerun = subprocess.run(_sweep_command(workflow, out), cwd=tmp_path, env=env, capture_output=True, text=True)
    assert rerun.returncode == 0, rerun.stderr
    lines = manifest_lines(out)
    assert sorted(line["job"] for line in lines) == list(range(10))      # each job recorded once
    assert all(line["status"] == "done" for line in lines)
    for name, (data, mtime) in earlier.items():
        assert ((out / name).read_bytes(), (out / name).stat().st_mtime_ns) == (data, mtime), name
    assert not (out / ".staging").exists() or not any((out / ".staging").iterdir())


def test_two_worker_processes_make_the_same_images(small, shared_runtime, tmp_path):
    vary = {"6.seed": [0, 1, 2, 3]}
    local = sweep(small.workflow, vary, out=tmp_path / "local", runtime=shared_runtime)
    rows = sweep(small.workflow, vary, out=tmp_path / "workers", workers=2, threads=1)
    assert [r["status"] for r in rows] == ["done"] * 4
    pids = {r["worker"]["pid"] for r in rows}
    assert len(pids) == 2 and os.getpid() not in pids
    for mine, theirs in zip(local, rows):
        assert np.array_equal(small.pixels(tmp_path / "local" / mine["outputs"][0]),
                              small.pixels(tmp_path / "workers" / theirs["outputs"][0]))


def test_ray_missing_is_a_clear_error(small, shared_runtime, monkeypatch, tmp_path, capsys):
    monkeypatch.setitem(sys.modules, "ray", None)  # what an environment without Ray gives
    monkeypatch.setattr(executor, "_default_runtime", shared_runtime)
    assert cli.main(["sweep", small.write(tmp_path), "--vary", "6.seed=0..1", "--ray",
                     "--out", str(tmp_path / "out"), "--no-progress"]) == cli.EXIT_INVALID
    assert "pip install 'imagetune-nodes[ray]'" in capsys.readouterr().err


@pytest.mark.parametrize("workers, cpus, threads, expected", [(2, 2, None, 1), (2, 16, None, 8), (3, 2, None, 1),
                                                             (2, 16, 3, 3)])
def test_threads_are_shared_between_workers(workers, cpus, threads, expected):
    from imagetune.graph_runtime.sweep_local import threads_per_worker

    assert threads_per_worker(workers, threads, cpus) == expected


def test_a_killed_worker_process_is_replaced_and_every_job_ends_done(small, tmp_path):
    workflow = small.write(tmp_path, steps=12)
    out = tmp_path / "out"
    rows, _ = small.run_killing_first_worker(
        lambda: sweep(workflow, {"6.seed": list(range(8))}, out=out, workers=2, threads=1), out)
    assert [r["status"] for r in rows] == ["done"] * 8
    assert len([line["job"] for line in manifest_lines(out)]) == 8          # no job recorded twice
    assert len({r["worker"]["pid"] for r in rows}) >= 3                    # a fresh pool took over
