"""Every literal reaches run() in its declared type: ComfyUI's front end saves 2.0 as 2, and an INT may come as 60.0."""
from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from imagetune.graph_runtime import ExecutionContext, Runtime, ValidationError
from imagetune.graph_runtime import types as T
from imagetune.graph_runtime.executor import _gather_inputs
from imagetune.nodes import default_registry

REGISTRY = default_registry()
NUMBER_INPUTS = [(cls, spec) for cls in REGISTRY for spec in cls.inputs if spec.type in (T.INT, T.FLOAT)]


@pytest.mark.parametrize("cls, spec", NUMBER_INPUTS, ids=[f"{c.node_id}.{s.name}" for c, s in NUMBER_INPUTS])
def test_every_number_input_gets_its_declared_type(cls, spec):
    whole = 2 if spec.min is None or spec.min <= 2 else int(spec.min)
    given = whole if spec.type == T.FLOAT else float(whole)      # the other type, same value
    plan = SimpleNamespace(classes={"1": cls}, workflow={"1": {"inputs": {spec.name: given}}})
    value = _gather_inputs(plan, "1", {})[spec.name]
    assert type(value) is (float if spec.type == T.FLOAT else int) and value == whole


def test_fake_node_runs_with_swapped_number_types(runtime):
    wf = {"1": {"class_type": "ImageTuneTestOptions",
                "inputs": {"flag": False, "scale": 1, "text": "", "mode": "fast", "count": 2.0}},
          "2": {"class_type": "ImageTuneTestSink", "inputs": {"value": ["1", 0]}}}
    assert runtime.run(wf).ui["2"] == {"values": ["False/1.0//fast/2"]}


def test_a_whole_number_float_runs_headless_as_comfyui_runs_it(tmp_path):
    from PIL import Image

    (tmp_path / "in").mkdir()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (32, 32, 3), dtype=np.uint8)).save(tmp_path / "in" / "x.png")
    wf = {"1": {"class_type": "ImageTuneLoadImage", "inputs": {"image": "x.png"}},
          "2": {"class_type": "ImageTuneCLAHE", "inputs": {"image": ["1", 0], "clip_limit": 2, "grid": 8}},
          "3": {"class_type": "ImageTuneSaveImage", "inputs": {"images": ["2", 0], "filename_prefix": "c"}}}
    ctx = ExecutionContext(device="cpu", output_dir=tmp_path / "out", input_dir=tmp_path / "in")
    result = Runtime(REGISTRY).run(wf, ctx=ctx)
    assert result.ui["3"]["images"][0]["filename"] == "c_00001_.png"


def test_an_integral_float_for_an_int_gets_the_same_checks():
    path = Path(__file__).resolve().parents[2] / "workflows" / "api" / "imagetune-text-to-image.json"
    api = json.loads(path.read_text())
    for width in (60, 60.0):
        api["6"]["inputs"]["width"] = width
        with pytest.raises(ValidationError, match="expected a multiple of 8, got 60"):
            Runtime(REGISTRY).prepare(api)


def test_inside_comfyui_too(fakes):
    from imagetune.graph_runtime.comfy_bridge import comfy_class

    node = comfy_class(fakes.OptionsNode)()
    assert node.execute(flag=False, scale=1, text="", mode="fast", count=2.0) == ("False/1.0//fast/2",)
