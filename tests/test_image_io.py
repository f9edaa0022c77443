"""Image I/O nodes and the ComfyUI core look-alikes, run through the real runtime."""
from __future__ import annotations

import json
import os
import time

import numpy as np
import pytest
import torch
from PIL import Image

from imagetune.graph_runtime import ExecutionContext, Runtime, ValidationError
from imagetune.graph_runtime.errors import NodeExecutionError
from imagetune.nodes import default_registry
from imagetune.ops.resample import resize


@pytest.fixture()
def dirs(tmp_path):
    (tmp_path / "in").mkdir()
    (tmp_path / "out").mkdir()
    return tmp_path / "in", tmp_path / "out"


def make_ctx(dirs, **kw):
    return ExecutionContext(device="cpu", input_dir=dirs[0], output_dir=dirs[1], models_dirs=[], **kw)


def run(workflow, ctx, runtime=None):
    return (runtime or Runtime(default_registry())).run(workflow, ctx=ctx)


def load_save(name, load="ImageTuneLoadImage", save="ImageTuneSaveImage", prefix="t"):
    return {"1": {"class_type": load, "inputs": {"image": name}},
            "2": {"class_type": save, "inputs": {"images": ["1", 0], "filename_prefix": prefix}}}


def rgba_array(h=5, w=7):
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, size=(h, w, 4), dtype=np.uint8)


def test_png_round_trip_with_alpha_mask_and_metadata(dirs):
    pixels = rgba_array()
    Image.fromarray(pixels, "RGBA").save(dirs[0] / "a.png")
    wf = load_save("a.png")
    ui = {"last_node_id": 2, "nodes": []}
    result = Runtime(default_registry()).run(wf, ctx=make_ctx(dirs), ui_workflow=ui)
    image, mask = result.outputs["1"]
    assert image.shape == (1, 5, 7, 3) and image.dtype == torch.float32
    assert torch.equal(image[0], torch.from_numpy(pixels[..., :3] / 255.0).float())
    assert torch.allclose(mask[0], 1.0 - torch.from_numpy(pixels[..., 3] / 255.0).float())
    entry = result.ui["2"]["images"][0]
    assert entry == {"filename": "t_00001_.png", "subfolder": "", "type": "output"}
    saved = Image.open(dirs[1] / "t_00001_.png")
    assert np.array_equal(np.asarray(saved.convert("RGB")), pixels[..., :3])
    assert json.loads(saved.text["prompt"]) == wf
    assert json.loads(saved.text["workflow"]) == ui


def test_counter_continues_and_subfolder(dirs):
    Image.new("RGB", (3, 2), (10, 20, 30)).save(dirs[0] / "a.png")
    (dirs[1] / "runs").mkdir()
    (dirs[1] / "runs" / "cat_00041_.png").write_bytes(b"x")
    (dirs[1] / "runs" / "catalog_00099_.png").write_bytes(b"x")
    result = run(load_save("a.png", prefix="runs/cat"), make_ctx(dirs))
    assert result.ui["2"]["images"] == [{"filename": "cat_00042_.png", "subfolder": "runs", "type": "output"}]
    assert (dirs[1] / "runs" / "cat_00042_.png").is_file()
    assert not [p for p in (dirs[1] / "runs").iterdir() if p.name.endswith(".part")]


def test_batch_saves_one_file_each(dirs):
    images = torch.rand(3, 4, 5, 3)
    from imagetune.nodes.image_io import save_images
    found = save_images(images, dirs[1], "b", kind="output")
    assert [f["filename"] for f in found] == ["b_00001_.png", "b_00002_.png", "b_00003_.png"]
    back = np.asarray(Image.open(dirs[1] / "b_00003_.png"), dtype=np.float32) / 255
    assert np.abs(back - images[2].numpy()).max() <= 0.5 / 255 + 1e-6


@pytest.mark.parametrize("prefix", ["../evil", "/tmp/evil", "a/../../evil", "link/evil"])
def test_save_refuses_escapes_and_writes_nothing(dirs, tmp_path, prefix):
    Image.new("RGB", (2, 2)).save(dirs[0] / "a.png")
    outside = tmp_path / "outside"
    outside.mkdir()
    os.symlink(outside, dirs[1] / "link")
    before = sorted(p.name for p in tmp_path.rglob("*"))
    with pytest.raises((ValidationError, NodeExecutionError)) as caught:
        run(load_save("a.png", prefix=prefix), make_ctx(dirs))
    assert "filename_prefix" in str(caught.value)
    assert sorted(p.name for p in tmp_path.rglob("*")) == before


@pytest.mark.parametrize("name", ["../secret.png", "/etc/passwd", "link/secret.png"])
def test_load_refuses_escapes(dirs, tmp_path, name):
    outside = tmp_path / "outside"
    outside.mkdir()
    Image.new("RGB", (2, 2)).save(outside / "secret.png")
    os.symlink(outside, dirs[0] / "link")
    with pytest.raises((ValidationError, NodeExecutionError)) as caught:
        run(load_save(name), make_ctx(dirs))
    assert "image" in str(caught.value)


def test_exif_orientation_and_formats(dirs):
    base = Image.fromarray(rgba_array(4, 6)[..., :3], "RGB")
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise for display
    base.save(dirs[0] / "r.jpg", exif=exif, quality=95)
    base.save(dirs[0] / "w.webp", lossless=True)
    out = run(load_save("r.jpg"), make_ctx(dirs)).outputs["1"][0]
    assert out.shape == (1, 6, 4, 3)
    webp = run(load_save("w.webp"), make_ctx(dirs)).outputs["1"][0]
    assert torch.equal(webp[0], torch.from_numpy(np.asarray(base) / 255.0).float())


def test_grey_and_palette_transparency(dirs):
    Image.new("L", (3, 3), 128).save(dirs[0] / "g.png")
    pal = Image.new("P", (2, 2), 0)
    pal.putpalette([255, 0, 0, 0, 255, 0])
    pal.putpixel((1, 1), 1)
    pal.save(dirs[0] / "p.png", transparency=0)
    grey, mask = run(load_save("g.png"), make_ctx(dirs)).outputs["1"]
    assert grey.shape == (1, 3, 3, 3) and torch.allclose(grey, torch.full_like(grey, 128 / 255))
    assert torch.equal(mask, torch.zeros(1, 3, 3))
    rgb, mask = run(load_save("p.png"), make_ctx(dirs)).outputs["1"]
    assert mask[0].tolist() == [[1.0, 1.0], [1.0, 0.0]]
    assert rgb[0, 1, 1].tolist() == [0.0, 1.0, 0.0]


def test_edit_busts_cache(dirs):
    path = dirs[0] / "a.png"
    Image.new("RGB", (2, 2), (255, 0, 0)).save(path)
    runtime = Runtime(default_registry())
    first = run(load_save("a.png"), make_ctx(dirs), runtime)
    again = run(load_save("a.png"), make_ctx(dirs), runtime)
    assert "1" in again.cached
    Image.new("RGB", (2, 2), (0, 0, 255)).save(path)
    os.utime(path, ns=(time.time_ns(), time.time_ns() + 10**9))
    third = run(load_save("a.png"), make_ctx(dirs), runtime)
    assert "1" in third.executed
    assert third.outputs["1"][0][0, 0, 0].tolist() == [0.0, 0.0, 1.0] != first.outputs["1"][0][0, 0, 0].tolist()


def test_preview_goes_to_temp(dirs):
    Image.new("RGB", (2, 2)).save(dirs[0] / "a.png")
    wf = {"1": {"class_type": "LoadImage", "inputs": {"image": "a.png"}},
          "2": {"class_type": "ImageTunePreviewImage", "inputs": {"images": ["1", 0]}},
          "3": {"class_type": "PreviewImage", "inputs": {"images": ["1", 0]}}}
    result = run(wf, make_ctx(dirs))
    for node in ("2", "3"):
        (entry,) = result.ui[node]["images"]
        assert entry["type"] == "temp" and "_temp_" in entry["filename"]
        assert (dirs[1] / "temp" / entry["filename"]).is_file()


def test_comfy_core_chain_matches_comfy_semantics(dirs):
    pixels = rgba_array(8, 12)[..., :3]
    Image.fromarray(pixels, "RGB").save(dirs[0] / "a.png")
    wf = {"1": {"class_type": "LoadImage", "inputs": {"image": "a.png"}},
          "2": {"class_type": "ImageInvert", "inputs": {"image": ["1", 0]}},
          "3": {"class_type": "ImageScale", "inputs": {"image": ["2", 0], "upscale_method": "lanczos",
                                                       "width": 6, "height": 0, "crop": "disabled"}},
          "4": {"class_type": "ImageScale", "inputs": {"image": ["2", 0], "upscale_method": "nearest-exact",
                                                       "width": 4, "height": 4, "crop": "center"}},
          "5": {"class_type": "SaveImage", "inputs": {"images": ["3", 0], "filename_prefix": "ComfyUI"}},
          "6": {"class_type": "SaveImage", "inputs": {"images": ["4", 0], "filename_prefix": "sq"}}}
    result = run(wf, make_ctx(dirs))
    inverted = 1.0 - torch.from_numpy(pixels / 255.0).float()
    assert torch.allclose(result.outputs["2"][0][0], inverted)
    scaled = result.outputs["3"][0]
    assert scaled.shape == (1, 4, 6, 3)
    reference = np.stack([np.asarray(Image.fromarray(inverted[..., c].numpy(), "F").resize((6, 4), Image.LANCZOS))
                          for c in range(3)], -1)
    assert np.abs(scaled[0].numpy() - np.clip(reference, 0, 1)).max() < 1e-5
    # centre crop of 12x8 to square keeps columns 2..9, then nearest to 4x4
    square = result.outputs["4"][0][0]
    assert torch.equal(square, inverted[1::2, 3:11:2])
    assert result.ui["5"]["images"][0]["filename"] == "ComfyUI_00001_.png"


@pytest.mark.usefixtures("image_path")  # the CPU's banded products and torch's interpolate (CUDA's)
@pytest.mark.parametrize("method,pil", [("lanczos", Image.LANCZOS), ("bicubic", Image.BICUBIC),
                                        ("bilinear", Image.BILINEAR)])
@pytest.mark.parametrize("size", [(1, 1), (5, 3), (23, 17), (40, 64)])
def test_resize_matches_pil(method, pil, size):
    rng = np.random.default_rng(1)
    plane = rng.random((13, 19), dtype=np.float32)
    expected = np.asarray(Image.fromarray(plane, "F").resize(size, pil))
    got = resize(torch.from_numpy(plane)[None, None], size[1], size[0], method)[0, 0].numpy()
    assert np.abs(got - expected).max() < 1e-5


@pytest.mark.parametrize("method,pil", [("lanczos", Image.LANCZOS), ("bicubic", Image.BICUBIC),
                                        ("bilinear", Image.BILINEAR)])
@pytest.mark.parametrize("size", [(300, 250), (61, 45), (131, 40)])
def test_resize_matches_pil_across_many_blocks(method, pil, size):
    """Sizes that cut each axis into many operator blocks (ops/banded.py), up and down, in float64."""
    plane = np.random.default_rng(2).random((97, 131), dtype=np.float32)
    expected = np.asarray(Image.fromarray(plane, "F").resize(size, pil))
    got = resize(torch.from_numpy(plane).double()[None, None], size[1], size[0], method)[0, 0].numpy()
    assert np.abs(got - expected).max() < 1e-5


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("size", [(300, 250), (61, 45), (131, 97), (97, 40)])
def test_cpu_resize_in_stripes_matches_pil(size, threads):
    """The CPU path (float32 IMAGE layout, a batch, stripes of many blocks shared out over ``threads`` threads,
    one axis left alone in (131, 97)), inside inference mode, is PIL's float resize of every channel."""
    planes = np.random.default_rng(3).random((2, 97, 131, 3), dtype=np.float32)
    image = torch.from_numpy(planes).movedim(-1, 1)
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        with torch.inference_mode():  # as the runtime runs nodes: the worker threads must write its tensors too
            got = resize(image, size[1], size[0], "lanczos").movedim(1, -1).numpy()
    finally:
        torch.set_num_threads(before)
    assert torch.get_num_threads() == before
    expected = np.stack([np.stack([np.asarray(Image.fromarray(np.ascontiguousarray(p[..., c]), "F").resize(size, Image.LANCZOS))
                                   for c in range(3)], -1) for p in planes])
    assert got.shape == expected.shape and np.abs(got - expected).max() < 1e-5


def test_comfy_core_names_match_comfyui():
    registry = default_registry()
    titles = {"LoadImage": "Load Image", "SaveImage": "Save Image", "PreviewImage": "Preview Image",
              "ImageScale": "Upscale Image", "ImageInvert": "Invert Image"}
    for node_id, title in titles.items():
        cls = registry.get(node_id)
        assert cls.comfy_core and cls.display_name == title
    assert [i.name for i in registry.get("ImageScale").inputs] == ["image", "upscale_method", "width", "height", "crop"]
    assert [o.type for o in registry.get("LoadImage").outputs] == ["IMAGE", "MASK"]
    from imagetune.graph_runtime.comfy_bridge import to_comfy_mappings
    mappings, _ = to_comfy_mappings(registry)
    assert not set(titles) & set(mappings), "ComfyUI has its own; ours must never be registered there"
