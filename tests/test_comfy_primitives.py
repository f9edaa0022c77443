"""ComfyUI's primitive nodes: one value feeding several inputs, in API and UI form, and through --set."""
from __future__ import annotations

import numpy as np
import torch
from PIL import Image

from imagetune.graph_runtime import ExecutionContext, Runtime
from imagetune.graph_runtime.interchange import ui_to_api
from imagetune.nodes import default_registry


def workflow() -> dict:
    """A file name, a width, a brightness and a prefix typed once each into primitives."""
    return {
        "10": {"class_type": "PrimitiveString", "inputs": {"value": "pic.png"}},
        "11": {"class_type": "PrimitiveInt", "inputs": {"value": 3}},
        "12": {"class_type": "PrimitiveFloat", "inputs": {"value": 0.5}},
        "13": {"class_type": "PrimitiveStringMultiline", "inputs": {"value": "runs/half"}},
        "1": {"class_type": "LoadImage", "inputs": {"image": ["10", 0]}},
        "2": {"class_type": "ImageScale", "inputs": {"image": ["1", 0], "upscale_method": "nearest-exact",
                                                     "width": ["11", 0], "height": ["11", 0], "crop": "disabled"}},
        "3": {"class_type": "ImageTuneAdjustColour", "inputs": {"image": ["2", 0], "brightness": ["12", 0],
                                                               "contrast": 1.0, "saturation": 1.0, "gamma": 1.0}},
        "4": {"class_type": "SaveImage", "inputs": {"images": ["3", 0], "filename_prefix": ["13", 0]}},
    }


def run(tmp_path, wf, overrides=None, runtime=None, level=200):
    (tmp_path / "in").mkdir(exist_ok=True)
    if level is not None:  # None: leave the input file as it is
        Image.fromarray(np.full((6, 6, 3), level, np.uint8)).save(tmp_path / "in" / "pic.png")
    ctx = ExecutionContext(device="cpu", input_dir=tmp_path / "in", output_dir=tmp_path / "out", models_dirs=[])
    return (runtime or Runtime(default_registry())).run(wf, overrides, ctx=ctx)


def test_one_value_feeds_several_inputs(tmp_path):
    result = run(tmp_path, workflow())
    image = result.outputs["3"][0]
    assert image.shape == (1, 3, 3, 3)  # the same Int as width and height
    assert torch.allclose(image, torch.full_like(image, 100 / 255), atol=1e-6)  # brightness 0.5 of 200
    assert (tmp_path / "out" / "runs" / "half_00001_.png").is_file()


def test_set_changes_every_input_fed_by_a_primitive(tmp_path):
    result = run(tmp_path, workflow(), {"11.value": "2", "12.value": "1.0"})
    image = result.outputs["3"][0]
    assert image.shape == (1, 2, 2, 3)
    assert torch.allclose(image, torch.full_like(image, 200 / 255), atol=1e-6)


def test_a_linked_file_name_still_tracks_the_file(tmp_path):
    """The cache key of a file-reading node sees a linked file name: an edited file is read again."""
    import os
    runtime = Runtime(default_registry())
    run(tmp_path, workflow(), runtime=runtime)
    again = run(tmp_path, workflow(), runtime=runtime, level=None)
    assert "1" in again.cached
    os.utime(tmp_path / "in" / "pic.png", ns=(1, 10**18))
    edited = run(tmp_path, workflow(), runtime=runtime, level=100)
    assert "1" in edited.executed
    assert torch.allclose(edited.outputs["3"][0], torch.full((1, 3, 3, 3), 50 / 255), atol=1e-6)


def test_ui_form_primitives_convert_with_the_int_control_widget():
    node = lambda i, kind, values, out_type: {  # noqa: E731
        "id": i, "type": kind, "widgets_values": values, "inputs": [],
        "outputs": [{"name": out_type, "type": out_type, "links": [i]}]}
    ui = {"last_node_id": 3, "last_link_id": 3, "version": 0.4, "nodes": [
        node(1, "PrimitiveInt", [7, "randomize"], "INT"),
        node(2, "PrimitiveString", ["hello"], "STRING"),
        node(3, "PrimitiveBoolean", [True], "BOOLEAN")], "links": []}
    api = ui_to_api(ui, default_registry())
    assert api["1"]["class_type"] == "PrimitiveInt" and api["1"]["inputs"] == {"value": 7}
    assert api["2"]["inputs"] == {"value": "hello"} and api["3"]["inputs"] == {"value": True}


def test_primitives_stay_out_of_comfyui():
    from imagetune.graph_runtime.comfy_bridge import to_comfy_mappings
    mappings, _ = to_comfy_mappings(default_registry())
    assert not {"PrimitiveString", "PrimitiveInt", "PrimitiveFloat", "PrimitiveBoolean"} & set(mappings)


def test_file_fingerprint_without_a_name_as_comfyuis_is_changed_calls_it(tmp_path):
    """ComfyUI's IS_CHANGED leaves linked inputs out: the fingerprint must not fail on a missing name."""
    cls = default_registry().get("LoadImage")
    ctx = ExecutionContext(device="cpu", input_dir=tmp_path, output_dir=tmp_path, models_dirs=[])
    assert cls.fingerprint(ctx) is None
