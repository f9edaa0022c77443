"""The pack inside a real ComfyUI: start it headless on CPU, list our nodes, queue our workflows.

Runs only when IMAGETUNE_COMFYUI_DIR points at a ComfyUI checkout (0.3.64 or newer) and
IMAGETUNE_COMFYUI_PYTHON at a Python that can run it (default: this one). ComfyUI gets a temporary
base directory whose custom_nodes/ links to this repository, an in-memory database and no
bytecode writes, so nothing is left in the checkout or the repository.
"""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
COMFY_DIR = os.environ.get("IMAGETUNE_COMFYUI_DIR")
COMFY_PYTHON = os.environ.get("IMAGETUNE_COMFYUI_PYTHON") or sys.executable
STARTUP_SECONDS = 600
RUN_SECONDS = 600

pytestmark = [pytest.mark.comfyui, pytest.mark.slow,
              pytest.mark.skipif(not COMFY_DIR, reason="set IMAGETUNE_COMFYUI_DIR to a ComfyUI checkout")]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ComfyServer:
    """A ComfyUI process and a tiny client for its HTTP API."""

    def __init__(self, base: Path, port: int, process: subprocess.Popen, log: Path):
        self.base, self.url, self.process, self.log = base, f"http://127.0.0.1:{port}", process, log

    def get(self, path: str):
        with urllib.request.urlopen(self.url + path, timeout=30) as response:
            return json.loads(response.read())

    def post(self, path: str, body: dict):
        request = urllib.request.Request(self.url + path, data=json.dumps(body).encode(),
                                         headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read() or b"{}")

    def queue(self, prompt: dict, workflow: dict | None = None) -> str:
        """POST /prompt and return the prompt id; fail with ComfyUI's validation errors."""
        body = {"prompt": prompt, "client_id": uuid.uuid4().hex}
        if workflow is not None:
            body["extra_data"] = {"extra_pnginfo": {"workflow": workflow}}
        status, answer = self.post("/prompt", body)
        assert status == 200 and not answer.get("node_errors"), f"ComfyUI refused the prompt: {answer}"
        return answer["prompt_id"]

    def wait(self, prompt_id: str) -> dict:
        """Poll /history until the prompt finished; return its history entry."""
        deadline = time.monotonic() + RUN_SECONDS
        while time.monotonic() < deadline:
            entry = self.get(f"/history/{prompt_id}").get(prompt_id)
            if entry and entry.get("status", {}).get("completed") is not None and (
                    entry["status"]["completed"] or entry["status"].get("status_str") == "error"):
                return entry
            assert self.process.poll() is None, f"ComfyUI exited:\n{self.log_tail()}"
            time.sleep(0.5)
        raise AssertionError(f"prompt {prompt_id} did not finish in {RUN_SECONDS}s\n{self.log_tail()}")

    def run(self, prompt: dict, workflow: dict | None = None) -> dict:
        entry = self.wait(self.queue(prompt, workflow))
        assert entry["status"]["status_str"] == "success", \
            f"{json.dumps(entry['status'], indent=1)[:4000]}\n{self.log_tail()}"
        return entry

    def image_files(self, entry: dict) -> list[Path]:
        """The files every output node of a finished prompt reported, checked to exist."""
        files = []
        for output in entry["outputs"].values():
            for image in output.get("images", []):
                assert set(image) >= {"filename", "subfolder", "type"}
                path = self.base / image["type"] / image["subfolder"] / image["filename"]
                assert path.is_file(), f"{path} was reported but not written"
                files.append(path)
        return files

    def log_tail(self, chars: int = 6000) -> str:
        return self.log.read_text(errors="replace")[-chars:]


@pytest.fixture(scope="module")
def comfy(tmp_path_factory):
    base = tmp_path_factory.mktemp("comfyui-base")
    for folder in ("custom_nodes", "input", "output", "models", "user", "temp"):
        (base / folder).mkdir()
    (base / "custom_nodes" / "Image-Tune.pack").symlink_to(ROOT, target_is_directory=True)
    make_input_image().save(base / "input" / "example.png")
    port = _free_port()
    log = base / "comfyui.log"
    command = [COMFY_PYTHON, str(Path(COMFY_DIR) / "main.py"), "--cpu", "--listen", "127.0.0.1",
               "--port", str(port), "--base-directory", str(base), "--disable-auto-launch",
               "--database-url", "sqlite:///:memory:"]
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1", PYTHONUNBUFFERED="1")
    for name in ("IMAGETUNE_OUTPUT_DIR", "IMAGETUNE_INPUT_DIR"):
        env.pop(name, None)
    with open(log, "wb") as sink:
        process = subprocess.Popen(command, cwd=base, stdout=sink, stderr=subprocess.STDOUT, env=env)
    server = ComfyServer(base, port, process, log)
    try:
        _wait_until_up(server)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
        print(f"\nComfyUI log ({log}):\n{server.log_tail(3000)}")


def _wait_until_up(server: ComfyServer) -> None:
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        assert server.process.poll() is None, f"ComfyUI exited at startup:\n{server.log_tail()}"
        try:
            server.get("/system_stats")
            return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(1)
    raise AssertionError(f"ComfyUI did not answer within {STARTUP_SECONDS}s\n{server.log_tail()}")


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
def test_each_api_workflow_runs_in_comfyui(comfy, path):
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
    print(f"\n{path.relative_to(ROOT)}: {len(files)} image(s) in {time.monotonic() - started:.1f}s: "
          f"{[f.name for f in files]}")


def test_comfyui_offers_our_ui_workflows_as_templates(comfy):
    templates = comfy.get("/workflow_templates")
    ours = sorted(p.stem for p in (ROOT / "workflows").glob("*.json"))
    assert sorted(templates.get("Image-Tune.pack", [])) == ours
    for name in ours:  # what the front end fetches when a template is picked
        with urllib.request.urlopen(f"{comfy.url}/api/workflow_templates/Image-Tune.pack/{name}.json") as r:
            assert isinstance(json.loads(r.read()).get("nodes"), list), f"{name} is not a UI workflow"


def interop_prompt(registry_ids: set[str]) -> dict:
    """ComfyUI LoadImage -> ImageTune style transfer -> ImageTune enhance -> ComfyUI SaveImage."""
    style = next((i for i in ("ImageTuneStyleTransfer", "ImageTuneApplyStyle") if i in registry_ids), None)
    enhance = next((i for i in ("ImageTuneUnsharpMask", "ImageTuneAutoContrast", "ImageTuneAdjustColour")
                    if i in registry_ids), None)
    if style is None or enhance is None:
        pytest.skip(f"style transfer / enhance nodes are not in the pack yet (have {sorted(registry_ids)})")
    return {
        "1": {"class_type": "LoadImage", "inputs": {"image": "example.png"}},
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
    make_input_image().save(tmp_path / "in" / "example.png")
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
        "1": {"class_type": "LoadImage", "inputs": {"image": "example.png"}},
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
        "1": {"class_type": "LoadImage", "inputs": {"image": "example.png"}},
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
        "1": {"class_type": "LoadImage", "inputs": {"image": "example.png"}},
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
