"""The example workflows as ComfyUI templates: names of their own, true thumbnails, and inputs that ship."""
from __future__ import annotations

import json
import runpy
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image

from imagetune.graph_runtime import ExecutionContext, NodeExecutionError, Runtime
from imagetune.graph_runtime.interchange import ui_to_api
from imagetune.nodes import default_registry
from imagetune.nodes.image_io import PACK_INPUT_DIR

ROOT = Path(__file__).resolve().parents[1]
#: the folders ComfyUI serves a pack's templates from (app/custom_node_manager.py), in its order
COMFY_TEMPLATE_FOLDERS = ("example_workflows", "example", "examples", "workflow", "workflows")
#: node types that read a file named by their "image" input from the input folder
IMAGE_LOADERS = ("ImageTuneLoadImage", "LoadImage")


THUMBNAILS = SimpleNamespace(**runpy.run_path(str(ROOT / "scripts" / "make_thumbnails.py")))
TEMPLATES = THUMBNAILS.templates()


def test_the_pack_has_one_template_folder():
    # ComfyUI mounts every one of these folders at the same URL prefix, so a second one would hide
    # the templates of the first (aiohttp answers from the first static route that matches)
    present = [name for name in COMFY_TEMPLATE_FOLDERS if (ROOT / name).is_dir()]
    assert present == ["workflows"]
    assert TEMPLATES, "workflows/ has no UI workflow to offer as a template"


@pytest.mark.parametrize("path", TEMPLATES, ids=lambda p: p.stem)
def test_each_template_has_a_name_of_its_own(path):
    # the front end finds a template by name alone in its "All" view, where ComfyUI's own
    # templates ("default", "image2image", ...) come first: a pack prefix keeps ours apart
    assert path.stem.startswith("imagetune-") and path.stem == path.stem.lower()
    assert " " not in path.stem


@pytest.mark.parametrize("path", TEMPLATES, ids=lambda p: p.stem)
def test_each_template_has_a_title_and_description_note(path):
    notes = [n for n in json.loads(path.read_text())["nodes"] if n["type"] in ("MarkdownNote", "Note")]
    assert len(notes) == 1, "one note says what the template does"
    title, _, description = notes[0]["widgets_values"][0].partition("\n")
    assert title.startswith("## ImageTune: ") and len(title) > len("## ImageTune: ") + 3
    assert len(description.split()) >= 15


@pytest.mark.parametrize("path", TEMPLATES, ids=lambda p: p.stem)
def test_each_template_has_a_jpeg_thumbnail_of_the_cards_size(path):
    thumbnail = path.with_suffix(".jpg")  # the name the front end asks for (mediaSubtype "jpg")
    assert thumbnail.is_file(), f"run scripts/make_thumbnails.py to make {thumbnail.name}"
    with Image.open(thumbnail) as image:
        assert image.format == "JPEG" and image.mode == "RGB"
        assert image.size == (THUMBNAILS.THUMBNAIL_SIDE, THUMBNAILS.THUMBNAIL_SIDE)


def _loaded_names(path: Path) -> list[str]:
    api = ui_to_api(json.loads(path.read_text()), default_registry())
    return [node["inputs"]["image"] for node in api.values() if node["class_type"] in IMAGE_LOADERS]


@pytest.mark.parametrize("path", TEMPLATES, ids=lambda p: p.stem)
def test_every_picture_an_example_reads_ships_with_the_pack(path):
    for name in _loaded_names(path):
        assert (PACK_INPUT_DIR / name).is_file(), f"{path.name} reads {name!r}, which the pack does not ship"
        assert name != "example.png", "ComfyUI's own input/example.png is not there headless"


@pytest.mark.parametrize("path", [p for p in TEMPLATES if _loaded_names(p)], ids=lambda p: p.stem)
def test_examples_that_read_a_picture_run_with_an_empty_input_folder(path, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no ./input to fall back on either
    (tmp_path / "input").mkdir()
    ctx = ExecutionContext(device="cpu", output_dir=tmp_path / "output", input_dir=tmp_path / "input")
    result = Runtime().run(path, ctx=ctx)
    saved = [image for ui in result.ui.values() for image in ui.get("images", [])]
    assert saved and all((tmp_path / "output" / s["subfolder"] / s["filename"]).is_file() for s in saved)
    assert list((tmp_path / "input").iterdir()) == []


def test_a_picture_in_the_input_folder_wins_over_the_shipped_one(tmp_path):
    (tmp_path / "input").mkdir()
    Image.new("RGB", (24, 16), (10, 200, 30)).save(tmp_path / "input" / "imagetune-example.png")
    ctx = ExecutionContext(device="cpu", output_dir=tmp_path / "output", input_dir=tmp_path / "input")
    prompt = {"1": {"class_type": "ImageTuneLoadImage", "inputs": {"image": "imagetune-example.png"}},
              "2": {"class_type": "ImageTuneSaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "x"}}}
    image = Runtime().run(prompt, ctx=ctx).outputs["1"][0]
    assert tuple(image.shape) == (1, 16, 24, 3)
    (tmp_path / "input" / "imagetune-example.png").unlink()
    shipped = Runtime().run(prompt, ctx=ctx).outputs["1"][0]
    with Image.open(PACK_INPUT_DIR / "imagetune-example.png") as original:
        assert tuple(shipped.shape) == (1, original.height, original.width, 3)
    prompt["1"]["inputs"]["image"] = "missing.png"  # neither folder has it: the error names the user's
    with pytest.raises(NodeExecutionError, match=f"no image file 'missing.png' in {tmp_path / 'input'}"):
        Runtime().run(prompt, ctx=ctx)


@pytest.mark.parametrize("path", [pytest.param(p, marks=[pytest.mark.slow] if not _loaded_names(p) else [])
                                  for p in TEMPLATES], ids=lambda p: p.stem)
def test_each_thumbnail_is_what_its_workflow_makes_now(path):
    def coarse(image: Image.Image) -> np.ndarray:  # 8x8-pixel means: JPEG noise averages out, content stays
        return np.asarray(image.convert("RGB").resize((32, 32), Image.Resampling.BOX), dtype=np.float32)

    made = coarse(THUMBNAILS.make_thumbnail(path))
    with Image.open(path.with_suffix(".jpg")) as committed:
        shown = coarse(committed)
    # about 1 level apart when equal; another template's output is about 30 apart
    assert np.abs(made - shown).mean() < 4, f"{path.name} makes another picture now: run scripts/make_thumbnails.py"
