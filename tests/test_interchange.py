"""UI-format workflows (v0.4 and v1) and PNG-embedded workflows, converted and then executed.

Each fixture in tests/fixtures/ui/ is a UI workflow written the way ComfyUI's front end saves
it, next to the API form the front end would queue for it (written by hand from the front
end's rules). The conversion must match exactly, and the converted graph must compute the
images that follow from the expected parameters.
"""
from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from PIL.PngImagePlugin import PngInfo

from imagetune.graph_runtime import ExecutionContext, Input, Node, NodeRegistry, Output, Runtime, combo
from imagetune.graph_runtime import types as T
from imagetune.graph_runtime.cli import main as cli_main
from imagetune.graph_runtime.errors import WorkflowFormatError
from imagetune.graph_runtime.interchange import map_widget_values, ui_to_api, widget_layout, workflow_from_png
from imagetune.graph_runtime.workflow import load_workflow

FIXTURES = Path(__file__).parent / "fixtures" / "ui"
COLORS = ("red", "green", "blue")


def solid(width: int, height: int, seed: int, color: str, noise: float) -> torch.Tensor:
    """A [1, H, W, 3] image: one channel at 0.8 plus seeded uniform noise times ``noise``."""
    image = torch.zeros(1, height, width, 3)
    image[..., COLORS.index(color)] = 0.8
    generator = torch.Generator().manual_seed(seed)
    return image + noise * torch.rand(1, height, width, 3, generator=generator)


class MakeSolidNode(Node):
    """Test source: a solid colour with seeded noise."""

    node_id = "ImageTuneTestSolid"
    display_name = "Solid"
    category = "ImageTune/test"
    inputs = (Input("width", T.INT, default=8, min=1, max=64), Input("height", T.INT, default=8, min=1, max=64),
              Input("seed", T.INT, default=0, min=0, max=T.MAX_SEED), combo("color", COLORS),
              Input("noise", T.FLOAT, default=0.0, min=0.0, max=1.0, optional=True))
    outputs = (Output(T.IMAGE, "image"),)

    def run(self, ctx, width, height, seed, color, noise):
        return (solid(width, height, seed, color, noise),)


class ScaleImageNode(Node):
    """Test: image * factor + offset (offset is socket-only)."""

    node_id = "ImageTuneTestScale"
    display_name = "Scale"
    category = "ImageTune/test"
    inputs = (Input("image", T.IMAGE), Input("factor", T.FLOAT, default=1.0, min=-10.0, max=10.0),
              Input("offset", T.FLOAT, optional=True, force_input=True, min=-10.0, max=10.0))
    outputs = (Output(T.IMAGE, "image"),)

    def run(self, ctx, image, factor, offset):
        return (image * factor + (offset or 0.0),)


class BlendImagesNode(Node):
    """Test: a mixed with b (a alone when b is absent)."""

    node_id = "ImageTuneTestBlend"
    display_name = "Blend"
    category = "ImageTune/test"
    inputs = (Input("a", T.IMAGE), Input("b", T.IMAGE, optional=True),
              Input("mix", T.FLOAT, default=0.5, min=0.0, max=1.0))
    outputs = (Output(T.IMAGE, "image"),)

    def run(self, ctx, a, b, mix):
        return (a if b is None else a * (1 - mix) + b * mix,)


class MeasureWidthNode(Node):
    """Test: an image's width as an INT."""

    node_id = "ImageTuneTestWidth"
    display_name = "Width"
    category = "ImageTune/test"
    inputs = (Input("image", T.IMAGE),)
    outputs = (Output(T.INT, "width"),)

    def run(self, ctx, image):
        return (int(image.shape[2]),)


class MeasureMeanNode(Node):
    """Test: an image's mean as a FLOAT."""

    node_id = "ImageTuneTestMean"
    display_name = "Mean"
    category = "ImageTune/test"
    inputs = (Input("image", T.IMAGE),)
    outputs = (Output(T.FLOAT, "mean"),)

    def run(self, ctx, image):
        return (float(image.mean()),)


class ShiftImageNode(Node):
    """Test: roll an image sideways (its first input is not an image)."""

    node_id = "ImageTuneTestShift"
    display_name = "Shift"
    category = "ImageTune/test"
    inputs = (Input("amount", T.INT, force_input=True), Input("image", T.IMAGE))
    outputs = (Output(T.IMAGE, "image"),)

    def run(self, ctx, amount, image):
        return (torch.roll(image, amount, dims=2),)


class KeepImagesNode(Node):
    """Test sink: reports a file name and passes the images on."""

    node_id = "ImageTuneTestSave"
    display_name = "Save"
    category = "ImageTune/test"
    inputs = (Input("images", T.IMAGE), Input("filename_prefix", T.STRING, default="test"))
    outputs = (Output(T.IMAGE, "images"),)
    output_node = True

    def run(self, ctx, images, filename_prefix):
        return {"ui": {"images": [{"filename": f"{filename_prefix}.png", "subfolder": "", "type": "output"}]},
                "result": (images,)}


TEST_NODES = (MakeSolidNode, ScaleImageNode, BlendImagesNode, MeasureWidthNode, MeasureMeanNode,
              ShiftImageNode, KeepImagesNode)


@pytest.fixture
def registry():
    return NodeRegistry(TEST_NODES)


def _basic():
    return {"3": solid(16, 12, 42, "green", 0.25) * 0.5}


def _force_input():
    small = solid(4, 4, 0, "green", 0.0)
    return {"6": (solid(4, 8, 3, "red", 0.1) * 0.5 + small.mean()) * 3.0}


def _subgraph():
    first = solid(8, 8, 5, "red", 0.0) * 3.0 * 0.25
    return {"3": first, "5": first * 0.5 * 0.25}


#: fixture name -> the images each output node must produce
EXPECTED_IMAGES = {
    "v04_basic": _basic,
    "v1_links": _basic,
    "reroute_primitive": lambda: {"3": solid(24, 8, 7, "red", 0.0) * 2.0},
    "modes": lambda: {"5": solid(8, 8, 1, "blue", 0.0), "9": solid(8, 8, 1, "blue", 0.0)},
    "force_input_and_linked_widgets": _force_input,
    "widgets_by_name": lambda: {"3": solid(4, 6, 9, "blue", 0.0)},
    "subgraph": _subgraph,
}


def _load(name: str) -> dict:
    return json.loads((FIXTURES / name).read_text())


def test_every_fixture_is_covered():
    names = {p.name[:-len(".api.json")] for p in FIXTURES.glob("*.api.json")}
    assert names == set(EXPECTED_IMAGES)
    assert all((FIXTURES / f"{n}.json").is_file() for n in names)
    for name in names:
        data = _load(f"{name}.json")
        if data["version"] == 0.4:
            assert front_end_shape_problems(data) == [], name


@pytest.mark.parametrize("name", sorted(EXPECTED_IMAGES))
def test_fixture_converts_to_the_expected_api(name, registry):
    assert ui_to_api(_load(f"{name}.json"), registry) == _load(f"{name}.api.json")


@pytest.mark.parametrize("name", sorted(EXPECTED_IMAGES))
def test_fixture_runs_and_computes_the_expected_images(name, registry, tmp_path):
    ctx = ExecutionContext(device="cpu", output_dir=tmp_path, input_dir=tmp_path, models_dirs=[tmp_path])
    result = Runtime(registry).run(_load(f"{name}.json"), ctx=ctx)  # the UI form, converted by the runtime
    expected = EXPECTED_IMAGES[name]()
    assert set(result.ui) == set(expected)
    for node_id, image in expected.items():
        torch.testing.assert_close(result.outputs[node_id][0], image)


def test_widget_layout_follows_the_front_end():
    # required before optional, a control slot after the seed, forceInput has no slot since FE 1.16
    assert widget_layout(MakeSolidNode) == ["width", "height", "seed", None, "color", "noise"]
    assert widget_layout(ScaleImageNode) == ["factor"]
    assert widget_layout(ScaleImageNode, legacy=True) == ["factor", None]
    assert widget_layout(ShiftImageNode) == []


class PickFileNode(Node):
    """Test: an upload dropdown followed by another widget."""

    node_id = "ImageTuneTestPickFile"
    category = "ImageTune/test"
    inputs = (Input("image", T.COMBO, default="a.png", listing=lambda: ["a.png", "b.png"], open=True,
                    image_upload=True), Input("frames", T.INT, default=1, min=1, max=9))
    outputs = (Output(T.STRING, "name"),)

    def run(self, ctx, image, frames):
        return (image,)


@pytest.mark.parametrize("values", [["b.png", 3], ["b.png", "image", 3]])
def test_an_upload_buttons_saved_slot_is_skipped(values):
    # LoadImage saves ["example.png", "image"] on front ends that serialise the upload button
    assert widget_layout(PickFileNode, upload=True) == ["image", None, "frames"]
    assert map_widget_values(PickFileNode, values) == {"image": "b.png", "frames": 3}


def test_old_files_with_a_boolean_control_slot_and_missing_optionals():
    values = map_widget_values(MakeSolidNode, [5, 6, 7, True, "blue"])
    assert values == {"width": 5, "height": 6, "seed": 7, "color": "blue", "noise": 0.0}


def test_a_wrong_layout_is_reported_by_validation_not_guessed(registry):
    data = _load("v04_basic.json")
    data["nodes"][0]["widgets_values"] = [16, 12, 42, "green", 0.25]  # the control slot is missing
    api = ui_to_api(data, registry)
    assert api["1"]["inputs"]["color"] == 0.25
    with pytest.raises(Exception, match="color"):
        Runtime(registry).prepare(api)


def test_unknown_node_types_are_named_with_their_pack(registry):
    data = _load("v04_basic.json")
    data["nodes"][1].update(type="KSampler", properties={"cnr_id": "comfy-core"})
    data["nodes"][2].update(type="FancySharpen", properties={"aux_id": "someone/fancy-pack"})
    with pytest.raises(WorkflowFormatError) as info:
        ui_to_api(data, registry)
    message = str(info.value)
    assert "FancySharpen, KSampler" in message
    assert "node 2 (KSampler, from the pack 'comfy-core')" in message
    assert "node 3 (FancySharpen, from the pack 'someone/fancy-pack')" in message
    data["nodes"][0]["type"] = "workflow>My group"
    with pytest.raises(WorkflowFormatError, match=r"node 1 \(workflow>My group, a legacy group node"):
        ui_to_api(data, registry)


def test_a_dangling_link_is_a_format_error(registry):
    data = _load("v04_basic.json")
    data["links"] = data["links"][1:]
    with pytest.raises(WorkflowFormatError, match="link 1 is not in the workflow's links"):
        ui_to_api(data, registry)


def test_list_literals_are_wrapped_so_they_never_look_like_links():
    class TakeListNode(Node):
        """Test: a STRING widget whose saved value is a list (as some front-end widgets store)."""

        node_id = "ImageTuneTestList"
        category = "ImageTune/test"
        inputs = (Input("names", T.STRING, default=""),)
        outputs = (Output(T.STRING, "names"),)

        def run(self, ctx, names):
            return (names,)

    data = {"nodes": [{"id": 1, "type": "ImageTuneTestList", "mode": 0, "widgets_values": [["1", 0]]}],
            "links": [], "version": 0.4}
    api = ui_to_api(data, NodeRegistry([TakeListNode]))
    assert api["1"]["inputs"]["names"] == {"__value__": ["1", 0]}


def _png(**chunks: dict) -> bytes:
    info = PngInfo()
    for key, value in chunks.items():
        info.add_text(key, json.dumps(value))
    buffer = io.BytesIO()
    Image.new("RGB", (4, 4)).save(buffer, format="PNG", pnginfo=info)
    return buffer.getvalue()


def test_png_prefers_the_embedded_prompt(registry, tmp_path):
    prompt = _load("v04_basic.api.json")
    prompt["3"]["inputs"]["filename_prefix"] = "from-prompt"
    path = tmp_path / "ComfyUI_00001_.png"
    path.write_bytes(_png(prompt=prompt, workflow=_load("v04_basic.json")))
    assert load_workflow(path, registry) == prompt


def test_png_with_only_a_workflow_is_converted(registry, tmp_path):
    path = tmp_path / "shared.png"
    path.write_bytes(_png(workflow=_load("subgraph.json")))
    assert load_workflow(path, registry) == _load("subgraph.api.json")


def test_png_without_a_workflow_or_damaged_is_a_clear_error():
    with pytest.raises(WorkflowFormatError, match="no 'prompt' or 'workflow' text chunk"):
        workflow_from_png(_png(), "plain.png")
    with pytest.raises(WorkflowFormatError, match="broken.png: not a readable PNG"):
        workflow_from_png(b"\x89PNG\r\n\x1a\n" + b"\x00" * 20, "broken.png")


def test_cli_convert_writes_the_api_format(registry, tmp_path, monkeypatch, capsys):
    import imagetune.nodes

    # the command converts with the pack's registry; the test nodes stand in for it
    monkeypatch.setattr(imagetune.nodes, "default_registry", lambda: registry)
    out = tmp_path / "api.json"
    assert cli_main(["convert", str(FIXTURES / "subgraph.json"), "-o", str(out)]) == 0
    assert json.loads(out.read_text()) == _load("subgraph.api.json")
    assert cli_main(["convert", str(FIXTURES / "modes.json")]) == 0
    assert json.loads(capsys.readouterr().out) == _load("modes.api.json")
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"nodes": [{"id": 1, "type": "Mystery", "mode": 0}], "links": []}))
    assert cli_main(["convert", str(bad)]) == 2
    assert "Mystery" in capsys.readouterr().err


# -- the example workflows in workflows/ -------------------------------------------------------------

WORKFLOWS = Path(__file__).resolve().parents[1] / "workflows"
SEMVER = r"^\d+\.\d+\.\d+$"


def _number_pair(value) -> bool:
    return isinstance(value, list) and len(value) == 2 and all(isinstance(v, (int, float)) for v in value)


def front_end_shape_problems(data: dict) -> list[str]:
    """Problems against the front end's schema for a v0.4 workflow (workflowSchema.ts), and link consistency."""
    import re

    problems = []
    for key, kinds in (("last_node_id", (int, str)), ("last_link_id", (int,)), ("nodes", (list,)),
                       ("links", (list,)), ("version", (int, float))):
        if not isinstance(data.get(key), kinds):
            problems.append(f"top-level {key!r} missing or of the wrong type")
    nodes = {}
    for node in data.get("nodes", []):
        where = f"node {node.get('id')}"
        nodes[node.get("id")] = node
        if not (isinstance(node.get("id"), (int, str)) and isinstance(node.get("type"), str)):
            problems.append(f"{where}: id and type")
        if not (_number_pair(node.get("pos")) and _number_pair(node.get("size"))):
            problems.append(f"{where}: pos and size must be [x, y]")
        for key, kind in (("flags", dict), ("order", (int, float)), ("mode", int), ("properties", dict)):
            if not isinstance(node.get(key), kind):
                problems.append(f"{where}: {key}")
        props = node.get("properties", {})
        if "cnr_id" in props and not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*[A-Za-z0-9]", props["cnr_id"]):
            problems.append(f"{where}: cnr_id {props['cnr_id']!r}")
        if "ver" in props and not re.fullmatch(SEMVER, props["ver"]):
            problems.append(f"{where}: ver {props['ver']!r}")
        for slot in node.get("inputs", []):
            if not (isinstance(slot.get("name"), str) and "type" in slot and (slot.get("link") is None
                                                                              or isinstance(slot["link"], int))):
                problems.append(f"{where}: input {slot}")
        for slot in node.get("outputs", []):
            if not (isinstance(slot.get("name"), str) and "type" in slot and isinstance(slot.get("links"), (list, type(None)))):
                problems.append(f"{where}: output {slot}")
    for link in data.get("links", []):
        if not (isinstance(link, list) and len(link) == 6 and all(isinstance(v, int) for v in (link[0], link[2], link[4]))):
            problems.append(f"link {link}: expected [id, origin, slot, target, slot, type]")
            continue
        link_id, origin, oslot, target, tslot, _ = link
        outputs = nodes.get(origin, {}).get("outputs", [])
        inputs = nodes.get(target, {}).get("inputs", [])
        if not (oslot < len(outputs) and link_id in (outputs[oslot].get("links") or [])):
            problems.append(f"link {link_id}: not listed on output {oslot} of node {origin}")
        if not (tslot < len(inputs) and inputs[tslot].get("link") == link_id):
            problems.append(f"link {link_id}: input {tslot} of node {target} does not point back")
    return problems


def ui_workflows() -> list[Path]:
    return sorted(p for p in WORKFLOWS.glob("*.json") if isinstance(json.loads(p.read_text()).get("nodes"), list))


def api_form(ui_path: Path) -> Path:
    """workflows/X.json (UI form, a ComfyUI template) has its API form in workflows/api/X.json.

    The API forms live one folder down because ComfyUI lists every JSON file directly in a pack's
    workflows/ folder as a template, and the front end loads templates as UI workflows.
    """
    return ui_path.parent / "api" / ui_path.name


def test_the_repository_has_example_workflows_in_both_forms():
    pairs = [p for p in ui_workflows() if api_form(p).is_file()]
    assert pairs, "workflows/ needs at least one UI workflow with its API form in workflows/api/"
    # ComfyUI lists every JSON file directly in workflows/ as a template, and its front end
    # (1.27) loads a template with loadGraphData, which fails on an API-format file
    api_files = sorted(set(WORKFLOWS.glob("*.json")) - set(ui_workflows()))
    assert not api_files, (f"{[p.name for p in api_files]} would be broken ComfyUI templates: keep the UI form "
                           "in workflows/<name>.json and put the API form in workflows/api/<name>.json")


@pytest.mark.parametrize("path", ui_workflows(), ids=lambda p: p.name)
def test_ui_workflows_are_valid_for_the_front_end(path):
    assert front_end_shape_problems(json.loads(path.read_text())) == []


@pytest.mark.parametrize("path", [p for p in ui_workflows() if api_form(p).is_file()], ids=lambda p: p.name)
def test_example_ui_workflows_convert_to_their_api_form(path):
    assert ui_to_api(json.loads(path.read_text())) == json.loads(api_form(path).read_text())


def test_the_upscale_example_runs_headless(tmp_path):
    (tmp_path / "input").mkdir()
    # a picture of the shipped one's name in the input folder wins over it
    Image.new("RGB", (40, 24), (30, 160, 220)).save(tmp_path / "input" / "imagetune-example.png")
    ctx = ExecutionContext(device="cpu", output_dir=tmp_path / "output", input_dir=tmp_path / "input")
    path = WORKFLOWS / "imagetune-upscale-2x.json"
    result = Runtime().run(path, ctx=ctx, ui_workflow=_load_json(path))
    (saved,) = result.ui["4"]["images"]
    with Image.open(tmp_path / "output" / saved["subfolder"] / saved["filename"]) as image:
        assert image.size == (80, 48)
        assert json.loads(image.info["prompt"]) == _load_json(WORKFLOWS / "api" / "imagetune-upscale-2x.json")
        pixels = np.asarray(image.convert("RGB"), dtype=np.float32)
    assert np.abs(pixels - np.array([30, 160, 220])).mean() < 8  # a flat colour stays that colour


def _load_json(path: Path) -> dict:
    return json.loads(path.read_text())


def test_a_saved_png_runs_again_and_keeps_its_workflow(tmp_path, capsys):
    (tmp_path / "input").mkdir()
    Image.new("RGB", (20, 12), (200, 40, 90)).save(tmp_path / "input" / "imagetune-example.png")
    ui = _load_json(WORKFLOWS / "imagetune-upscale-2x.json")
    common = ["--input-dir", str(tmp_path / "input"), "--device", "cpu", "--no-progress"]
    assert cli_main(["run", str(WORKFLOWS / "imagetune-upscale-2x.json"), "--out", str(tmp_path / "first"),
                     *common]) == 0
    first = Path(capsys.readouterr().out.strip().splitlines()[-1])
    assert cli_main(["run", str(first), "--out", str(tmp_path / "second"), *common]) == 0
    second = Path(capsys.readouterr().out.strip().splitlines()[-1])
    for path in (first, second):
        with Image.open(path) as image:
            assert json.loads(image.info["workflow"]) == ui  # ComfyUI can load either file
            assert json.loads(image.info["prompt"]) == _load_json(WORKFLOWS / "api" / "imagetune-upscale-2x.json")
            assert image.size == (40, 24)


def _io_node(node_id: int) -> dict:
    return {"id": node_id, "bounding": [0, 0, 100, 60]}


def _definition(uuid: str, name: str, inputs: list, outputs: list, nodes: list, links: list, inner=()) -> dict:
    return {"id": uuid, "version": 1, "revision": 0, "name": name, "state": {"lastGroupId": 0, "lastNodeId": 9,
            "lastLinkId": 99, "lastRerouteId": 0}, "inputNode": _io_node(-10), "outputNode": _io_node(-20),
            "inputs": inputs, "outputs": outputs, "widgets": [], "nodes": nodes, "links": links,
            "definitions": {"subgraphs": list(inner)}}


def _link(link_id, origin, oslot, target, tslot, kind):
    return {"id": link_id, "origin_id": origin, "origin_slot": oslot, "target_id": target, "target_slot": tslot,
            "type": kind}


def _nested_subgraph_workflow() -> dict:
    """Solid -> outer instance 2 (holding inner instance 5, holding Scale node 7) -> Save 3."""
    inner_id, outer_id = "11111111-2222-4333-8444-555555555555", "66666666-7777-4888-9999-aaaaaaaaaaaa"
    inner = _definition(
        inner_id, "scale", [{"id": "a", "name": "image", "type": "IMAGE", "linkIds": [20]},
                            {"id": "b", "name": "factor", "type": "FLOAT", "linkIds": [21]}],
        [{"id": "c", "name": "image", "type": "IMAGE", "linkIds": [22]}],
        [{"id": 7, "type": "ImageTuneTestScale", "mode": 0, "widgets_values": [1.0],
          "inputs": [{"name": "image", "type": "IMAGE", "link": 20},
                     {"name": "factor", "type": "FLOAT", "link": 21, "widget": {"name": "factor"}}],
          "outputs": [{"name": "image", "type": "IMAGE", "links": [22]}]}],
        [_link(20, -10, 0, 7, 0, "IMAGE"), _link(21, -10, 1, 7, 1, "FLOAT"), _link(22, 7, 0, -20, 0, "IMAGE")])
    outer = _definition(
        outer_id, "wrapper", [{"id": "d", "name": "image", "type": "IMAGE", "linkIds": [10]}],
        [{"id": "e", "name": "image", "type": "IMAGE", "linkIds": [11]}],
        [{"id": 5, "type": inner_id, "mode": 0, "widgets_values": [4.0],
          "inputs": [{"name": "image", "type": "IMAGE", "link": 10},
                     {"name": "factor", "type": "FLOAT", "link": None, "widget": {"name": "factor"}}],
          "outputs": [{"name": "image", "type": "IMAGE", "links": [11]}]}],
        [_link(10, -10, 0, 5, 0, "IMAGE"), _link(11, 5, 0, -20, 0, "IMAGE")], inner=[inner])
    workflow = {
        "version": 1, "state": {"lastGroupId": 0, "lastNodeId": 3, "lastLinkId": 2, "lastRerouteId": 0},
        "nodes": [
            {"id": 1, "type": "ImageTuneTestSolid", "mode": 0, "widgets_values": [4, 4, 3, "fixed", "blue", 0.5],
             "outputs": [{"name": "image", "type": "IMAGE", "links": [1]}]},
            {"id": 2, "type": outer_id, "mode": 0, "inputs": [{"name": "image", "type": "IMAGE", "link": 1}],
             "outputs": [{"name": "image", "type": "IMAGE", "links": [2]}]},
            {"id": 3, "type": "ImageTuneTestSave", "mode": 0, "widgets_values": ["nested"],
             "inputs": [{"name": "images", "type": "IMAGE", "link": 2}]},
        ],
        "links": [_link(1, 1, 0, 2, 0, "IMAGE"), _link(2, 2, 0, 3, 0, "IMAGE")],
        "definitions": {"subgraphs": [outer]},
    }
    return workflow


def test_nested_subgraphs_flatten_to_paths_and_resolve_promoted_widgets(registry, tmp_path):
    workflow = _nested_subgraph_workflow()
    api = ui_to_api(workflow, registry)
    assert api["2:5:7"] == {"inputs": {"factor": 4.0, "image": ["1", 0]}, "class_type": "ImageTuneTestScale",
                            "_meta": {"title": "Scale"}}
    assert api["3"]["inputs"] == {"filename_prefix": "nested", "images": ["2:5:7", 0]}
    assert set(api) == {"1", "2:5:7", "3"}
    ctx = ExecutionContext(device="cpu", output_dir=tmp_path, input_dir=tmp_path, models_dirs=[tmp_path])
    result = Runtime(registry).run(api, ctx=ctx)
    torch.testing.assert_close(result.outputs["3"][0], solid(4, 4, 3, "blue", 0.5) * 4.0)


@pytest.mark.parametrize("level", ["outer", "inner"])
@pytest.mark.parametrize("mode, images", [(4, ["1", 0]), (2, ["2:5:7", 0])])
def test_a_muted_or_bypassed_subgraph_instance_keeps_its_inner_nodes(registry, level, mode, images):
    # as the front end: getInnerNodes flattens an instance whatever its mode; only what the
    # instance's output resolves to changes (ExecutableNodeDTO.resolveOutput passes a bypassed one's
    # matching input on, and follows a muted one into the subgraph as if it ran)
    workflow = _nested_subgraph_workflow()
    instance = workflow["nodes"][1] if level == "outer" else workflow["definitions"]["subgraphs"][0]["nodes"][0]
    instance["mode"] = mode
    api = ui_to_api(workflow, registry)
    assert set(api) == {"1", "2:5:7", "3"}
    assert api["2:5:7"]["inputs"] == {"factor": 4.0, "image": ["1", 0]}
    assert api["3"]["inputs"]["images"] == images


@pytest.mark.parametrize("mode, images", [(2, None), (4, ["1", 0])])
def test_a_muted_or_bypassed_node_inside_a_subgraph_is_left_out(registry, mode, images):
    workflow = _nested_subgraph_workflow()
    workflow["definitions"]["subgraphs"][0]["definitions"]["subgraphs"][0]["nodes"][0]["mode"] = mode
    api = ui_to_api(workflow, registry)
    assert set(api) == {"1", "3"}
    assert api["3"]["inputs"].get("images") == images  # a link into a muted node is dropped


def test_the_stylize_example_runs_headless(tmp_path):
    (tmp_path / "input").mkdir()
    source = np.random.default_rng(0).integers(0, 256, (32, 48, 3), dtype=np.uint8)
    Image.fromarray(source).save(tmp_path / "input" / "imagetune-example.png")
    ctx = ExecutionContext(device="cpu", output_dir=tmp_path / "output", input_dir=tmp_path / "input")
    result = Runtime().run(WORKFLOWS / "imagetune-style-transfer.json", ctx=ctx)
    (saved,) = result.ui["4"]["images"]
    with Image.open(tmp_path / "output" / saved["subfolder"] / saved["filename"]) as image:
        assert image.size == (48, 32)
        styled = np.asarray(image.convert("RGB"), dtype=np.float32)
    assert np.abs(styled - source).mean() > 10  # restyled, not passed through


def test_self_containing_or_exploding_subgraphs_are_refused(registry):
    def definition(uuid, inner_type, copies):
        nodes = [{"id": i + 1, "type": inner_type, "mode": 0} for i in range(copies)]
        return _definition(uuid, uuid[:4], [], [], nodes, [])

    loop = "aaaaaaaa-0000-4000-8000-000000000000"
    data = {"version": 1, "state": {}, "links": [], "nodes": [{"id": 1, "type": loop, "mode": 0}],
            "definitions": {"subgraphs": [definition(loop, loop, 1)]}}
    with pytest.raises(WorkflowFormatError, match="nested more than 32 deep"):
        ui_to_api(data, registry)
    # 20 levels of 4 instances each would be 4**20 nodes
    ids = [f"{i:08x}-0000-4000-8000-000000000000" for i in range(21)]
    subgraphs = [definition(ids[i], ids[i + 1], 4) for i in range(20)]
    subgraphs.append(definition(ids[20], "ImageTuneTestSolid", 1))
    data = {"version": 1, "state": {}, "links": [], "nodes": [{"id": 1, "type": ids[0], "mode": 0}],
            "definitions": {"subgraphs": subgraphs}}
    with pytest.raises(WorkflowFormatError, match=r"flattens to more than [0-9,]+ nodes"):
        ui_to_api(data, registry)


def _mutate(data, path, value):
    """A copy of ``data`` with the element at ``path`` (list of keys/indices) replaced by ``value``."""
    import copy

    data = copy.deepcopy(data)
    target = data
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return data


def _paths(value, prefix=()):
    """Every key/index path inside a JSON value."""
    if isinstance(value, dict):
        items = value.items()
    elif isinstance(value, list):
        items = enumerate(value)
    else:
        return
    for key, child in items:
        yield prefix + (key,)
        yield from _paths(child, prefix + (key,))


JUNK = [None, -1, 0, 7, 2.5, True, "", "x", "-10", [], [1, 2], ["1", 0], {}, {"id": 1}, 10**30]


@pytest.mark.parametrize("name", ["v04_basic", "v1_links", "modes", "subgraph", "reroute_primitive"])
def test_damaged_workflows_give_format_errors_never_crashes(name, registry):
    from hypothesis import given, settings, strategies as st

    original = _load(f"{name}.json")
    paths = list(_paths(original))

    @settings(max_examples=150, deadline=None, derandomize=True)
    @given(st.sampled_from(paths), st.sampled_from(JUNK))
    def check(path, value):
        try:
            result = ui_to_api(_mutate(original, path, value), registry)
        except WorkflowFormatError:
            return
        assert isinstance(result, dict)

    check()
