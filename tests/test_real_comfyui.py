"""The pack inside a real ComfyUI: start it headless on CPU, list our nodes, queue our workflows.

Runs only when IMAGETUNE_COMFYUI_DIR points at a ComfyUI checkout (0.3.64 or newer) and
IMAGETUNE_COMFYUI_PYTHON at a Python that can run it (default: this one). ComfyUI gets a temporary
base directory whose custom_nodes/ links to this repository, an in-memory database and no
bytecode writes, so nothing is left in the checkout or the repository (scripts/comfyui_server.py).
The checks in the real front end also need Playwright in that Python and a Chromium
(IMAGETUNE_CHROMIUM, else ``chromium`` on the PATH); without them those two tests skip.
"""
from __future__ import annotations

import io
import json
import os
import runpy
import shutil
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
COMFY_DIR = os.environ.get("IMAGETUNE_COMFYUI_DIR")
COMFY_PYTHON = os.environ.get("IMAGETUNE_COMFYUI_PYTHON") or sys.executable
#: the test picture ComfyUI's own LoadImage reads; not ComfyUI's example.png, which our examples must not need
TEST_INPUT = "test-input.png"
#: the model folders the fixture's extra_model_paths.yaml adds under <base>/shared-models
EXTRA_MODEL_KINDS = ("upscale_models", "text_encoders", "diffusers", "checkpoints", "lit")

pytestmark = [pytest.mark.comfyui, pytest.mark.slow,
              pytest.mark.skipif(not COMFY_DIR, reason="set IMAGETUNE_COMFYUI_DIR to a ComfyUI checkout")]


server_module = SimpleNamespace(**runpy.run_path(str(ROOT / "scripts" / "comfyui_server.py")))
ComfyServer = server_module.ComfyServer


@pytest.fixture(scope="module")
def comfy(tmp_path_factory):
    base = tmp_path_factory.mktemp("comfyui-base")
    server_module.make_base(base)
    make_input_image().save(base / "input" / TEST_INPUT)
    # a second model folder, as users have in extra_model_paths.yaml (a shared models drive)
    (base / "extra_model_paths.yaml").write_text(json.dumps({"shared": {  # JSON is YAML
        "base_path": str(base / "shared-models"), **{kind: kind for kind in EXTRA_MODEL_KINDS}}}))
    server = server_module.start(COMFY_DIR, COMFY_PYTHON, base, umask=0o022,
                                 extra_args=("--extra-model-paths-config", str(base / "extra_model_paths.yaml")))
    try:
        yield server
    finally:
        server.stop()
        print(f"\nComfyUI log ({server.log}):\n{server.log_tail(3000)}")


def make_input_image() -> Image.Image:
    """A 96x64 test picture with edges and gradients (deterministic)."""
    y, x = np.mgrid[0:64, 0:96]
    rgb = np.stack([x * 255 // 95, y * 255 // 63, ((x // 16 + y // 16) % 2) * 200 + 30], axis=-1)
    return Image.fromarray(rgb.astype(np.uint8))


def our_comfy_nodes() -> dict:
    import imagetune

    return imagetune.NODE_CLASS_MAPPINGS


def test_object_info_lists_our_nodes(comfy):
    info = comfy.get("/object_info")
    ours = our_comfy_nodes()
    missing = sorted(set(ours) - set(info))
    assert not missing, f"not in /object_info: {missing}\n{comfy.log_tail()}"
    for node_id, cls in ours.items():
        entry = info[node_id]
        assert entry["category"] == cls.CATEGORY
        assert entry["description"] == cls.DESCRIPTION
        assert entry["python_module"] == "custom_nodes.Image-Tune.pack"
        assert list(entry["input"]["required"]) == list(cls.INPUT_TYPES()["required"])
        assert entry["output"] == list(cls.RETURN_TYPES)
    failed = [line for line in comfy.log_tail(10**6).splitlines() if "IMPORT FAILED" in line and "Image-Tune" in line]
    assert not failed, failed
    stats = comfy.get("/system_stats")
    print(f"\nComfyUI {stats['system'].get('comfyui_version')}, python {stats['system'].get('python_version')[:6]}, "
          f"pytorch {stats['system'].get('pytorch_version')}, devices {[d['type'] for d in stats['devices']]}; "
          f"{len(info)} nodes in /object_info, {len(ours)} from ImageTune")


def api_workflows() -> list[Path]:
    """Every API-format workflow in workflows/ and workflows/api/ (UI-format files have a 'nodes' list)."""
    found = []
    for path in sorted((ROOT / "workflows").glob("*.json")) + sorted((ROOT / "workflows" / "api").glob("*.json")):
        data = json.loads(path.read_text())
        if isinstance(data, dict) and "nodes" not in data:
            found.append(path)
    return found


@pytest.mark.parametrize("path", api_workflows(), ids=lambda p: p.name)
def test_each_api_workflow_runs_in_comfyui_as_headless(comfy, path, tmp_path):
    from imagetune.graph_runtime import ExecutionContext, Runtime

    assert not (comfy.base / "input" / "example.png").exists(), "the examples must not need ComfyUI's example.png"
    prompt = json.loads(path.read_text())
    ui_path = ROOT / "workflows" / path.name
    workflow = json.loads(ui_path.read_text()) if ui_path != path and ui_path.is_file() else None
    started = time.monotonic()
    entry = comfy.run(prompt, workflow)
    files = comfy.image_files(entry)
    assert files, f"{path.name} produced no images"
    for file in files:
        with Image.open(file) as image:
            assert image.size[0] > 0 and image.size[1] > 0
            if file.suffix == ".png" and "/output/" in str(file):
                assert json.loads(image.info["prompt"]).keys() == prompt.keys()
    took = time.monotonic() - started
    # the same file headless, with an empty input folder, saves the same pictures
    ctx = ExecutionContext(device="cpu", output_dir=tmp_path / "out", input_dir=tmp_path / "in")
    result = Runtime().run(prompt, ctx=ctx)
    headless = [tmp_path / "out" / i["subfolder"] / i["filename"]
                for ui in result.ui.values() for i in ui.get("images", [])]  # the Understand Prompt node says text
    assert len(headless) == len(files)
    worst = max(_max_difference(a, b) for a, b in zip(sorted(headless), sorted(files)))
    assert worst <= 2, f"{path.name}: headless and ComfyUI differ by up to {worst}/255"
    print(f"\n{path.relative_to(ROOT)}: {len(files)} image(s) in {took:.1f}s in ComfyUI, "
          f"max difference to headless {worst}/255: {[f.name for f in files]}")


def _max_difference(a: Path, b: Path) -> int:
    """The largest per-channel difference of two same-sized pictures, in 0..255 levels."""
    with Image.open(a) as first, Image.open(b) as second:
        assert first.size == second.size, (first.size, second.size)
        return int(np.abs(np.asarray(first.convert("RGB"), dtype=np.int16)
                          - np.asarray(second.convert("RGB"), dtype=np.int16)).max())


def test_comfyui_serves_our_templates_with_their_thumbnails(comfy):
    templates = comfy.get("/workflow_templates")
    ours = sorted(p.stem for p in (ROOT / "workflows").glob("*.json"))
    assert sorted(templates.get(comfy.pack_folder, [])) == ours
    # the front end's own templates come first where it looks one up by name alone (its All view)
    core = {t["name"] for category in comfy.get("/templates/index.json") for t in category["templates"]}
    assert core and not core & set(ours), f"our template names clash with ComfyUI's: {sorted(core & set(ours))}"
    for name in ours:  # what the front end fetches for a card and when a template is picked
        base = f"/api/workflow_templates/{comfy.pack_folder}/{name}"
        assert isinstance(comfy.get(base + ".json").get("nodes"), list), f"{name} is not a UI workflow"
        status, kind, body = comfy.fetch(base + ".jpg")  # TemplateWorkflowCard: mediaSubtype "jpg"
        assert status == 200 and kind == "image/jpeg", (name, status, kind)
        with Image.open(io.BytesIO(body)) as thumbnail:
            assert thumbnail.format == "JPEG" and thumbnail.size == (256, 256)
    print(f"\ntemplates of {comfy.pack_folder}: {ours}, each with a 256x256 JPEG; {len(core)} core templates")


#: widget types: an input of one of these types (or a list of choices) is a widget in the front end
WIDGET_TYPES = {"INT", "FLOAT", "STRING", "BOOLEAN", "COMBO"}


def ui_workflow(info: dict, nodes: list[tuple[str, dict, int | None]]) -> dict:
    """A v0.4 UI workflow as the front end saves it, laid out from ComfyUI's own /object_info.

    ``nodes`` are (type, widget values, index of the node whose first output feeds this node's
    first non-widget input, or None); widget values are written in /object_info's input order.
    """
    saved, links = [], []
    for index, (kind, values, source) in enumerate(nodes):
        spec = info[kind]
        order = spec["input_order"].get("required", []) + spec["input_order"].get("optional", [])
        every = {**spec["input"].get("required", {}), **spec["input"].get("optional", {})}
        widgets = [name for name in order if isinstance(every[name][0], list) or every[name][0] in WIDGET_TYPES]
        inputs = []
        if source is not None:
            name = next(n for n in order if n not in widgets)
            links.append([len(links) + 1, source + 1, 0, index + 1, 0, every[name][0]])
            inputs.append({"name": name, "type": every[name][0], "link": len(links)})
            saved[source]["outputs"][0]["links"].append(len(links))
        saved.append({"id": index + 1, "type": kind, "pos": [40 + 320 * index, 80], "size": [300, 120],
                      "flags": {}, "order": index, "mode": 0, "properties": {"Node name for S&R": kind},
                      "inputs": inputs, "widgets_values": [values[name] for name in widgets],
                      "outputs": [{"name": n, "type": t, "links": []}
                                  for n, t in zip(spec["output_name"], spec["output"])]})
    return {"last_node_id": len(saved), "last_link_id": len(links), "nodes": saved, "links": links,
            "groups": [], "config": {}, "extra": {}, "version": 0.4}


def api_prompt(nodes: list[tuple[str, dict, int | None]], ui: dict) -> dict:
    """The API prompt the front end queues for ``ui`` (built by ui_workflow from the same ``nodes``)."""
    prompt = {}
    for node, (kind, values, source) in zip(ui["nodes"], nodes):
        inputs = dict(values)
        if source is not None:
            inputs[node["inputs"][0]["name"]] = [str(source + 1), 0]
        prompt[str(node["id"])] = {"class_type": kind, "inputs": inputs}
    return prompt


def _declared(info: dict, kind: str, name: str):
    """The type /object_info declares for input ``name`` of node type ``kind`` (None if not declared)."""
    inputs = info[kind]["input"]
    return {**inputs.get("required", {}), **inputs.get("optional", {})}.get(name, [None])[0]


#: every FLOAT widget a whole number, as the front end writes 2.0 (json.dumps(2) is "2")
WHOLE_NUMBER_FLOATS = [
    ("ImageTuneLoadImage", {"image": "imagetune-example.png"}, None),
    ("ImageTuneCLAHE", {"clip_limit": 2, "grid": 8}, 0),
    ("ImageTuneAdjustColour", {"brightness": 1, "contrast": 1, "saturation": 2, "gamma": 1}, 1),
    ("ImageTuneUnsharpMask", {"radius": 2, "amount": 1, "threshold": 0}, 2),
    ("ImageTuneSaveImage", {"filename_prefix": "whole-numbers"}, 3),
    ("SaveImage", {"filename_prefix": "comfy-save"}, 3),
]


def test_a_workflow_with_whole_number_floats_runs_headless_as_in_comfyui(comfy, tmp_path):
    from imagetune.graph_runtime.cli import main as cli_main

    info = comfy.get("/object_info")
    ui = ui_workflow(info, WHOLE_NUMBER_FLOATS)
    prompt = api_prompt(WHOLE_NUMBER_FLOATS, ui)
    floats = [v for node in prompt.values() for name, v in node["inputs"].items()
              if _declared(info, node["class_type"], name) == "FLOAT"]
    assert len(floats) == 7 and all(type(v) is int for v in floats), floats
    entry = comfy.run(prompt, ui)
    (ours,) = comfy.image_files({"outputs": {"5": entry["outputs"]["5"]}})
    with Image.open(ours) as image:
        assert json.loads(image.info["workflow"]) == ui
    (tmp_path / "api.json").write_text(json.dumps(prompt))
    (tmp_path / "ui.json").write_text(json.dumps(ui))
    differences = {}
    # the prompt as queued and the UI form (whole numbers), and the PNG ComfyUI saved (its prompt
    # chunk carries floats: ComfyUI's validation converts the literals of the prompt in place)
    for source in (tmp_path / "api.json", tmp_path / "ui.json", ours):
        out = tmp_path / f"from-{source.stem}"
        assert cli_main(["run", str(source), "--out", str(out), "--device", "cpu", "--no-progress"]) == 0
        (again,) = sorted(out.glob("whole-numbers_*.png"))
        differences[source.name] = _max_difference(again, ours)
    assert max(differences.values()) <= 2, differences
    print(f"\nwhole-number FLOATs: ComfyUI ran them and headless runs match it (max difference {differences})")


def test_our_saved_files_have_the_mode_comfyuis_own_have(comfy):
    # ComfyUI runs under umask 022 here, and its SaveImage writes 0644 (open() honours the umask)
    prompt = api_prompt(WHOLE_NUMBER_FLOATS, ui_workflow(comfy.get("/object_info"), WHOLE_NUMBER_FLOATS))
    prompt["5"]["inputs"]["filename_prefix"] = "ImageTune/mode"  # a new subfolder too
    entry = comfy.run(prompt)
    (ours,) = comfy.image_files({"outputs": {"5": entry["outputs"]["5"]}})
    (theirs,) = comfy.image_files({"outputs": {"6": entry["outputs"]["6"]}})
    modes = {p.name: oct(p.stat().st_mode & 0o777) for p in (ours, theirs)}
    assert modes == {ours.name: "0o644", theirs.name: "0o644"}, modes
    assert oct(ours.parent.stat().st_mode & 0o777) == "0o755"
    assert not [p.name for p in ours.parent.iterdir() if p.name.startswith(".")], "a temp file was left"


# Run with ComfyUI's Python where it has Playwright: open the real front end in headless Chromium
# and do one job given on stdin, printing its result as JSON:
#   build:   load each UI workflow and keep what the front end's own graphToPrompt makes of it
#            ({"workflow": what it saves, "output": the API prompt it queues});
#   refresh: load a workflow, read a dropdown, let a model file appear, press Refresh (the front
#            end's command), read it again; then upload a picture through the image loader's
#            upload button and keep what the front end would queue.
FRONT_END_SCRIPT = r"""
import json, pathlib, sys
from playwright.sync_api import sync_playwright

def build(page, job):
    return page.evaluate("async (all) => { const out = {}; for (const [name, ui] of Object.entries(all)) {"
                         " await app.loadGraphData(ui, true, true, name); out[name] = await app.graphToPrompt() }"
                         " return out }", job["workflows"])

def refresh(page, job):
    page.evaluate("async (ui) => { await app.loadGraphData(ui, true, true, 'refresh') }", job["workflow"])
    values = "([node, name]) => app.graph.getNodeById(node).widgets.find(w => w.name === name).options.values"
    before = page.evaluate(values, job["dropdown"])
    pathlib.Path(job["place"]).parent.mkdir(parents=True, exist_ok=True)
    pathlib.Path(job["place"]).write_bytes(b"not read")
    page.evaluate("() => app.extensionManager.command.execute('Comfy.RefreshNodeDefinitions')")
    page.wait_for_function("([node, name, want]) => app.graph.getNodeById(node).widgets"
                           ".find(w => w.name === name).options.values.includes(want)",
                           arg=job["dropdown"] + [pathlib.Path(job["place"]).name], timeout=60_000)
    after = page.evaluate(values, job["dropdown"])
    with page.expect_file_chooser() as chooser:  # the upload button's click opens the file dialog
        page.evaluate("(node) => app.graph.getNodeById(node).widgets.find(w => w.name === 'upload').callback()",
                      job["loader"])
    chooser.value.set_files(job["picture"])
    name = pathlib.Path(job["picture"]).name
    page.wait_for_function("([node, want]) => app.graph.getNodeById(node).widgets[0].value === want",
                           arg=[job["loader"], name], timeout=60_000)
    return {"before": before, "after": after, "queued": (page.evaluate("() => app.graphToPrompt()"))["output"]}

url, chromium, job = sys.argv[1], sys.argv[2], json.loads(sys.stdin.read())
with sync_playwright() as playwright:
    browser = playwright.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
    page = browser.new_page()
    page.goto(url)
    page.wait_for_function("() => window.app && window.app.graph && Object.keys(LiteGraph.registered_node_types)"
                           ".some(t => t.startsWith('ImageTune'))", timeout=180_000)
    result = {"build": build, "refresh": refresh}[job["task"]](page, job)
    browser.close()
print(json.dumps(result))
"""
CHROMIUM = os.environ.get("IMAGETUNE_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")


def in_front_end(comfy: ComfyServer, job: dict):
    """Do ``job`` (see FRONT_END_SCRIPT) in ComfyUI's real front end; skip without a browser."""
    has_playwright = subprocess.run([COMFY_PYTHON, "-c", "import playwright.sync_api"], capture_output=True)
    if not CHROMIUM or has_playwright.returncode != 0:
        pytest.skip("needs Chromium (IMAGETUNE_CHROMIUM) and Playwright in ComfyUI's Python")
    done = subprocess.run([COMFY_PYTHON, "-c", FRONT_END_SCRIPT, comfy.url, CHROMIUM], input=json.dumps(job),
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_the_front_end_queues_our_templates_as_we_convert_them_and_they_run_alike(comfy, tmp_path):
    from imagetune.graph_runtime.cli import main as cli_main
    from imagetune.graph_runtime.interchange import ui_to_api
    from imagetune.nodes import default_registry

    templates = {p.stem: json.loads(p.read_text()) for p in sorted((ROOT / "workflows").glob("*.json"))}
    built = in_front_end(comfy, {"task": "build", "workflows": templates})
    info = comfy.get("/object_info")
    whole = []
    for name, made in built.items():
        # our conversion of what the front end saves is what the front end queues
        assert ui_to_api(made["workflow"], default_registry()) == made["output"], name
        whole += [f"{name}:{node_id}.{key}" for node_id, node in made["output"].items()
                  for key, value in node["inputs"].items() if type(value) is int
                  and _declared(info, node["class_type"], key) == "FLOAT"]
    assert whole, "the front end wrote no whole-number FLOAT: this test no longer tests that"
    # the style transfer as the front end queues it (style_weight 1, radius 1), in ComfyUI and headless
    made = built["imagetune-style-transfer"]
    (in_comfy,) = comfy.image_files(comfy.run(made["output"], made["workflow"]))
    (tmp_path / "saved.json").write_text(json.dumps(made["workflow"]))
    assert cli_main(["run", str(tmp_path / "saved.json"), "--out", str(tmp_path / "out"), "--device", "cpu",
                     "--no-progress"]) == 0
    (headless,) = sorted((tmp_path / "out").rglob("*.png"))
    assert _max_difference(headless, in_comfy) == 0
    print(f"\nthe front end's graphToPrompt equals our conversion for {sorted(built)}; whole-number FLOATs it "
          f"wrote: {whole}; the style transfer it queued gives ComfyUI's pixels headless")


def interop_prompt(registry_ids: set[str]) -> dict:
    """ComfyUI LoadImage -> ImageTune style transfer -> ImageTune enhance -> ComfyUI SaveImage."""
    style = next((i for i in ("ImageTuneStyleTransfer", "ImageTuneApplyStyle") if i in registry_ids), None)
    enhance = next((i for i in ("ImageTuneUnsharpMask", "ImageTuneAutoContrast", "ImageTuneAdjustColour")
                    if i in registry_ids), None)
    if style is None or enhance is None:
        pytest.skip(f"style transfer / enhance nodes are not in the pack yet (have {sorted(registry_ids)})")
    return {
        "1": {"class_type": "LoadImage", "inputs": {"image": TEST_INPUT}},
        "2": {"class_type": style, "inputs": {"image": ["1", 0], "strength": 0.7}},
        "3": {"class_type": enhance, "inputs": {"image": ["2", 0]}},
        "4": {"class_type": "SaveImage", "inputs": {"images": ["3", 0], "filename_prefix": "interop"}},
    }


def _with_defaults(prompt: dict) -> dict:
    """Fill every widget input left out with its declared default (ComfyUI fills none)."""
    from imagetune.nodes import default_registry

    registry = default_registry()
    for node in prompt.values():
        cls = registry.get(node["class_type"])
        for spec in cls.inputs if cls else ():
            if spec.name not in node["inputs"] and spec.is_widget and spec.has_default and not spec.optional:
                node["inputs"][spec.name] = spec.default
    return prompt


def test_comfyui_core_nodes_and_ours_interoperate(comfy, tmp_path):
    from imagetune.graph_runtime import ExecutionContext, Runtime

    prompt = _with_defaults(interop_prompt(set(our_comfy_nodes())))
    entry = comfy.run(prompt)
    (file,) = comfy.image_files(entry)
    in_comfy = np.asarray(Image.open(file).convert("RGB"), dtype=np.float32) / 255
    source = np.asarray(make_input_image(), dtype=np.float32) / 255
    assert in_comfy.shape == source.shape
    assert np.abs(in_comfy - source).mean() > 0.02, "style transfer and enhance left the image unchanged"
    # the same graph in our own runtime (which implements LoadImage and SaveImage) gives the same picture
    (tmp_path / "in").mkdir()
    make_input_image().save(tmp_path / "in" / TEST_INPUT)
    ctx = ExecutionContext(device="cpu", output_dir=tmp_path / "out", input_dir=tmp_path / "in")
    result = Runtime().run(prompt, ctx=ctx)
    (saved,) = result.ui["4"]["images"]
    headless = np.asarray(Image.open(tmp_path / "out" / saved["subfolder"] / saved["filename"]).convert("RGB"),
                          dtype=np.float32) / 255
    assert np.abs(headless - in_comfy).max() <= 2 / 255
    print(f"\ninterop {[n['class_type'] for n in prompt.values()]}: ComfyUI and headless agree "
          f"(max diff {np.abs(headless - in_comfy).max() * 255:.1f}/255)")


def test_a_failing_node_reports_our_error_in_comfyui(comfy):
    # a node that cannot find its file fails inside ComfyUI with our message naming the input
    ours = our_comfy_nodes()
    if "ImageTuneLoadImage" not in ours:
        pytest.skip("no ImageTuneLoadImage node")
    prompt = _with_defaults({
        "1": {"class_type": "ImageTuneLoadImage", "inputs": {"image": "no-such-file.png"}},
        "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "never"}},
    })
    status, answer = comfy.post("/prompt", {"prompt": prompt})
    if status == 200 and not answer.get("node_errors"):
        entry = comfy.wait(answer["prompt_id"])
        assert entry["status"]["status_str"] == "error"
        text = json.dumps(entry["status"]["messages"])
    else:
        text = json.dumps(answer)
    assert "no-such-file.png" in text and "image" in text



# A websocket client run with ComfyUI's Python (it has aiohttp): queue a prompt, collect ComfyUI's
# messages for it, and optionally POST /interrupt at the first progress message.
WATCH_SCRIPT = r"""
import asyncio, json, sys, uuid
import aiohttp

async def main(url, prompt, interrupt):
    client = uuid.uuid4().hex
    seen = []
    async with aiohttp.ClientSession() as session:
        async with session.ws_connect(f"{url}/ws?clientId={client}") as ws:
            async with session.post(f"{url}/prompt", json={"prompt": prompt, "client_id": client}) as r:
                prompt_id = (await r.json())["prompt_id"]
            async for msg in ws:
                if msg.type != aiohttp.WSMsgType.TEXT:
                    continue
                data = json.loads(msg.data)
                kind, body = data["type"], data.get("data", {})
                if body.get("prompt_id") not in (None, prompt_id):
                    continue
                seen.append([kind, body.get("node"), body.get("value"), body.get("max")])
                if interrupt and kind == "progress":
                    interrupt = False
                    await session.post(f"{url}/interrupt")
                if kind in ("execution_success", "execution_error", "execution_interrupted"):
                    break
    print(json.dumps(seen))

asyncio.run(asyncio.wait_for(main(sys.argv[1], json.loads(sys.argv[2]), sys.argv[3] == "1"), 300))
"""


def watch(comfy: ComfyServer, prompt: dict, interrupt: bool = False) -> list[list]:
    """ComfyUI's websocket messages [type, node, value, max] while ``prompt`` runs."""
    done = subprocess.run([COMFY_PYTHON, "-c", WATCH_SCRIPT, comfy.url, json.dumps(prompt), "1" if interrupt else "0"],
                          capture_output=True, text=True, timeout=360)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def upscale_prompt(model: str, tile: int, prefix: str) -> dict:
    """ComfyUI's LoadImage -> our upscale model and tiled upscale -> ComfyUI's ImageInvert -> our save."""
    return {
        "1": {"class_type": "LoadImage", "inputs": {"image": TEST_INPUT}},
        "2": {"class_type": "ImageTuneLoadUpscaleModel", "inputs": {"model_name": model, "model_file": ""}},
        "3": {"class_type": "ImageTuneUpscaleWithModel",
              "inputs": {"upscale_model": ["2", 0], "image": ["1", 0], "tile": tile, "overlap": 8}},
        "4": {"class_type": "ImageInvert", "inputs": {"image": ["3", 0]}},
        "5": {"class_type": "ImageTuneSaveImage", "inputs": {"images": ["4", 0], "filename_prefix": prefix}},
    }


def test_progress_reaches_comfyuis_websocket(comfy):
    messages = watch(comfy, upscale_prompt("RealESRGAN_animevideov3_x2 (compact)", 32, "progress"))
    steps = [m for m in messages if m[0] == "progress" and m[1] == "3"]
    assert messages[-1][0] == "execution_success", messages
    # 96x64 in 32-pixel tiles with overlap: several tiles, reported one by one up to the total
    assert len(steps) >= 4 and steps[-1][2] == steps[-1][3] == len(steps), steps
    print(f"\nprogress messages for the tiled upscale: {[(m[2], m[3]) for m in steps]}")


def test_interrupt_from_comfyui_stops_our_node(comfy):
    messages = watch(comfy, upscale_prompt("RealESRGAN_x4plus", 32, "interrupted"), interrupt=True)
    kinds = [m[0] for m in messages]
    assert kinds[-1] == "execution_interrupted", messages
    steps = [m for m in messages if m[0] == "progress" and m[1] == "3"]
    assert steps and steps[-1][2] < steps[-1][3], "the node stopped before its last tile"
    print(f"\ninterrupted after {steps[-1][2]} of {steps[-1][3]} tiles")


def test_our_upscale_model_feeds_comfyuis_own_upscale_node(comfy):
    prompt = {
        "1": {"class_type": "LoadImage", "inputs": {"image": TEST_INPUT}},
        "2": {"class_type": "ImageTuneLoadUpscaleModel",
              "inputs": {"model_name": "RealESRGAN_animevideov3_x2 (compact)", "model_file": ""}},
        "3": {"class_type": "ImageUpscaleWithModel", "inputs": {"upscale_model": ["2", 0], "image": ["1", 0]}},
        "4": {"class_type": "SaveImage", "inputs": {"images": ["3", 0], "filename_prefix": "comfy-upscale"}},
    }
    (file,) = comfy.image_files(comfy.run(prompt))
    with Image.open(file) as image:
        assert image.size == (192, 128)


def test_comfyuis_vae_decode_feeds_our_nodes(comfy):
    # ComfyUI's pixel-space VAE needs no model file: LoadImage -> VAEEncode -> VAEDecode is a real
    # VAE round trip in ComfyUI, and its IMAGE goes into our nodes and back into ComfyUI's VAEEncode
    prompt = {
        "1": {"class_type": "LoadImage", "inputs": {"image": TEST_INPUT}},
        "2": {"class_type": "VAELoader", "inputs": {"vae_name": "pixel_space"}},
        "3": {"class_type": "VAEEncode", "inputs": {"pixels": ["1", 0], "vae": ["2", 0]}},
        "4": {"class_type": "VAEDecode", "inputs": {"samples": ["3", 0], "vae": ["2", 0]}},
        "5": {"class_type": "ImageTuneLoadUpscaleModel",
              "inputs": {"model_name": "RealESRGAN_animevideov3_x2 (compact)", "model_file": ""}},
        "6": {"class_type": "ImageTuneUpscaleWithModel",
              "inputs": {"upscale_model": ["5", 0], "image": ["4", 0], "tile": 512, "overlap": 32}},
        "7": {"class_type": "VAEEncode", "inputs": {"pixels": ["6", 0], "vae": ["2", 0]}},
        "8": {"class_type": "VAEDecode", "inputs": {"samples": ["7", 0], "vae": ["2", 0]}},
        "9": {"class_type": "ImageTuneSaveImage", "inputs": {"images": ["8", 0], "filename_prefix": "vae"}},
        "10": {"class_type": "ImageTunePreviewImage", "inputs": {"images": ["4", 0]}},
    }
    entry = comfy.run(prompt)
    (preview,) = comfy.image_files({"outputs": {"10": entry["outputs"]["10"]}})  # in ComfyUI's temp folder
    assert entry["outputs"]["10"]["images"][0]["type"] == "temp" and preview.is_relative_to(comfy.base / "temp")
    (file,) = comfy.image_files({"outputs": {"9": entry["outputs"]["9"]}})
    with Image.open(file) as image:
        assert image.size == (192, 128)
        small = np.asarray(image.convert("RGB").resize((96, 64), Image.BICUBIC), dtype=np.float32)
    assert np.abs(small - np.asarray(make_input_image(), dtype=np.float32)).mean() < 12


def _tiny_models(root: Path) -> None:
    """The model tests' tiny CLIP text encoder and Stable Diffusion pipeline, saved under ``root``."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("imagetune_tiny_models", ROOT / "tests" / "models" / "conftest.py")
    helpers = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(helpers)
    helpers.tiny_clip(False).save_pretrained(root / "text_encoders" / "tiny-clip")
    helpers.save_tokenizer(helpers.word_level_tokenizer(), root / "text_encoders" / "tiny-clip")
    helpers.save_tiny_pipeline(root / "diffusers" / "tiny-sd")


def test_a_diffusers_pipeline_generates_inside_comfyui(comfy):
    # the models go into ComfyUI's own models folder, which our loaders search first
    _tiny_models(comfy.base / "models")
    auto = {"dtype": "auto", "device": "auto"}
    prompt = {
        "1": {"class_type": "ImageTuneLoadTextEncoder", "inputs": {"text_encoder": "tiny-clip", **auto}},
        "2": {"class_type": "ImageTuneEncodeText",
              "inputs": {"text_encoder": ["1", 0], "text": "a red circle", "one_prompt_per_line": False}},
        # our CONDITIONING through ComfyUI's own conditioning node and back into ours
        "3": {"class_type": "ConditioningZeroOut", "inputs": {"conditioning": ["2", 0]}},
        "4": {"class_type": "ImageTuneLoadPipeline",
              "inputs": {"model": "tiny-sd", "scheduler": "default", **auto, "cpu_offload": False,
                         "attention_slicing": False}},
        "5": {"class_type": "ImageTuneGenerate",
              "inputs": {"pipeline": ["4", 0], "positive": ["2", 0], "negative": ["3", 0], "width": 32,
                         "height": 24, "steps": 5, "guidance": 4.0, "seed": 3, "batch_size": 2}},
        "6": {"class_type": "SaveImage", "inputs": {"images": ["5", 0], "filename_prefix": "generated"}},
    }
    messages = watch(comfy, prompt)
    assert messages[-1][0] == "execution_success", messages
    steps = [(m[2], m[3]) for m in messages if m[0] == "progress" and m[1] == "5"]
    assert steps[-1] == (5, 5) and len(steps) >= 5, steps
    history = comfy.get("/history")
    entry = next(e for e in history.values() if "6" in e.get("outputs", {})
                 and e["outputs"]["6"]["images"][0]["filename"].startswith("generated"))
    files = comfy.image_files(entry)
    assert len(files) == 2
    for file in files:
        with Image.open(file) as image:
            assert image.size == (32, 24)
    print(f"\ntiny diffusers pipeline in ComfyUI: progress {steps}, {len(files)} images")


# -- the dropdowns and the upload button (#13 items 3 and 4) --------------------------------------

#: per loader input: the shipped choices always listed, and models placed in ComfyUI's folders
#: as (path under a models folder, file to write there, the name the dropdown should list)
DROPDOWNS = {
    ("ImageTuneLoadTextEncoder", "text_encoder"): (("minilm",), [
        ("text_encoders/placed-encoder/config.json", "placed-encoder")]),
    ("ImageTuneLoadPipeline", "model"): (("imagetune-shapes",), [
        ("diffusers/placed-pipeline/model_index.json", "placed-pipeline"),
        ("checkpoints/placed-checkpoint.safetensors", "placed-checkpoint.safetensors")]),
    ("ImageTuneLoadUpscaleModel", "model_name"): (("RealESRGAN_animevideov3_x2 (compact)", "RealESRGAN_x4plus"), [
        ("upscale_models/placed-x2.safetensors", "placed-x2.safetensors"),
        ("upscale_models/sub/placed-x4.pth", "sub/placed-x4.pth")]),
    ("ImageTuneLoadLiTModel", "model"): (("shapes-lite0-minilm",), [
        ("lit/placed-lit/head.safetensors", "placed-lit")]),
}


def dropdown(comfy: ComfyServer, node: str, name: str) -> tuple[list, dict]:
    """The choices and options /object_info gives the front end for one COMBO input now."""
    entry = comfy.get(f"/object_info/{node}")[node]["input"]
    kind, options = {**entry.get("required", {}), **entry.get("optional", {})}[name][:2]
    assert isinstance(kind, list), f"{node}.{name} is {kind}, not a dropdown"
    return kind, options


@pytest.mark.parametrize("folder", ["models", "shared-models"], ids=["models", "extra_model_paths"])
def test_the_model_dropdowns_list_what_is_placed_in_comfyuis_folders(comfy, folder):
    # the front end's Refresh button fetches /object_info again, and ComfyUI calls INPUT_TYPES anew
    for (node, name), (shipped, placed) in DROPDOWNS.items():
        before, _ = dropdown(comfy, node, name)
        assert set(shipped) <= set(before), (node, name, before)
        tag = folder.split("-")[0]
        for relative, listed in placed:
            target = comfy.base / folder / relative.replace("placed", f"placed-{tag}")
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(b"{}" if target.suffix == ".json" else b"not read")
            assert listed.replace("placed", f"placed-{tag}") not in before
        after, _ = dropdown(comfy, node, name)
        for _, listed in placed:
            assert listed.replace("placed", f"placed-{tag}") in after, (node, name, after)
        assert set(shipped) <= set(after)
    print(f"\ndropdowns after placing files in {folder}/: "
          f"{ {f'{n}.{i}': dropdown(comfy, n, i)[0] for n, i in DROPDOWNS} }")


def test_the_tiny_models_placed_for_generation_are_in_the_dropdowns(comfy):
    _tiny_models(comfy.base / "models")
    assert "tiny-clip" in dropdown(comfy, "ImageTuneLoadTextEncoder", "text_encoder")[0]
    assert "tiny-sd" in dropdown(comfy, "ImageTuneLoadPipeline", "model")[0]


def _png(picture: Image.Image) -> bytes:
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.mark.parametrize("subfolder", ["", "pasted"])
def test_an_uploaded_image_is_in_our_loaders_list_and_loads(comfy, subfolder):
    choices, options = dropdown(comfy, "ImageTuneLoadImage", "image")
    assert options.get("image_upload") is True, options  # the front end shows the upload button
    assert "imagetune-example.png" in choices, "the shipped example picture is offered"
    picture = Image.fromarray(np.random.default_rng(7).integers(0, 256, (40, 56, 3), dtype=np.uint8))
    status, answer = comfy.upload("/upload/image", "image", "uploaded.png", _png(picture), type="input",
                                  subfolder=subfolder, overwrite="true")  # what the upload button posts
    assert status == 200, answer
    name = f"{answer['subfolder']}/{answer['name']}" if answer["subfolder"] else answer["name"]
    assert name in dropdown(comfy, "ImageTuneLoadImage", "image")[0]
    prompt = {"1": {"class_type": "ImageTuneLoadImage", "inputs": {"image": name}},
              "2": {"class_type": "ImageTuneSaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "upload"}}}
    (saved,) = comfy.image_files(comfy.run(prompt))
    with Image.open(saved) as image:
        assert np.array_equal(np.asarray(image.convert("RGB")), np.asarray(picture))


def test_in_the_front_end_refresh_lists_a_new_model_and_the_upload_button_loads_a_picture(comfy, tmp_path):
    picture = Image.fromarray(np.random.default_rng(11).integers(0, 256, (30, 44, 3), dtype=np.uint8))
    picture.save(tmp_path / "from-the-button.png")
    late = comfy.base / "models" / "upscale_models" / "added-while-open.safetensors"
    workflow = json.loads((ROOT / "workflows" / "imagetune-upscale-2x.json").read_text())
    seen = in_front_end(comfy, {"task": "refresh", "workflow": workflow,
                                "dropdown": [2, "model_name"], "place": str(late), "loader": 1,
                                "picture": str(tmp_path / "from-the-button.png")})
    assert late.name not in seen["before"] and late.name in seen["after"]
    assert (comfy.base / "input" / "from-the-button.png").is_file(), "the upload button did not upload"
    queued = seen["queued"]
    assert queued["1"]["inputs"]["image"] == "from-the-button.png"
    assert queued["2"]["inputs"]["model_name"] == "RealESRGAN_animevideov3_x2 (compact)"
    (saved,) = comfy.image_files(comfy.run(queued))
    with Image.open(saved) as image:  # the uploaded picture, upscaled 2x
        assert image.size == (88, 60)
        small = np.asarray(image.convert("RGB").resize((44, 30), Image.BOX), dtype=np.float32)
    assert np.abs(small - np.asarray(picture, dtype=np.float32)).mean() < 40
    print(f"\nfront end: Refresh added {late.name} to {seen['after']}; the upload button's picture ran")
