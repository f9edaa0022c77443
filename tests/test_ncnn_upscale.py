"""The ncnn Real-ESRGAN reader against an independent interpreter of the ncnn graph, and the upscale nodes."""
from __future__ import annotations

import struct
import sys

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from imagetune.graph_runtime import ExecutionContext, Runtime
from imagetune.nodes import default_registry
from imagetune.ops import upscale as U
from imagetune.ops.ncnn import NcnnFormatError, load_ncnn, realesrgan_state_dict

FOLDER = U.builtin_folder()


@pytest.fixture(params=["spandrel", "native"])
def backend(request, monkeypatch):
    """Run with spandrel, and as a pip install without spandrel (any ``import spandrel`` then fails)."""
    if request.param == "native":
        monkeypatch.setitem(sys.modules, "spandrel", None)
    assert U.have_spandrel() == (request.param == "spandrel")
    return request.param


# ---- an independent ncnn interpreter: own .param/.bin parsing, ncnn op semantics in plain torch ----

def read_graph(stem: str):
    """(layers, weights by layer name) read straight from the files."""
    lines = (FOLDER / f"{stem}.param").read_text().split("\n")[2:]
    data = (FOLDER / f"{stem}.bin").read_bytes()
    pos, layers, weights = 0, [], {}

    def floats(count, half=False):
        nonlocal pos
        if half:
            values = np.frombuffer(data, "<f2", count, pos).astype(np.float32)
            pos += (count * 2 + 3) // 4 * 4
        else:
            values = np.frombuffer(data, "<f4", count, pos)
            pos += count * 4
        return torch.from_numpy(values.copy())

    for line in filter(None, (ln.split() for ln in lines)):
        kind, name, n_in, n_out = line[0], line[1], int(line[2]), int(line[3])
        ins, outs = line[4:4 + n_in], line[4 + n_in:4 + n_in + n_out]
        params = dict(item.split("=") for item in line[4 + n_in + n_out:])
        layers.append((kind, name, ins, outs, params))
        if kind == "Convolution":
            (tag,) = struct.unpack_from("<I", data, pos)
            assert tag == 0x01306B47
            pos += 4
            out_ch, k = int(params["0"]), int(params["1"])
            w = floats(int(params["6"]), half=True)
            weights[name] = (w.reshape(out_ch, -1, k, k), floats(out_ch))
        elif kind == "PReLU":
            weights[name] = (floats(int(params["0"])),)
    assert pos == len(data), "the interpreter must consume every byte too"
    return layers, weights


def interpret(stem: str, x: torch.Tensor) -> torch.Tensor:
    """Run the ncnn graph on [1,3,H,W] following ncnn's layer definitions."""
    layers, weights = read_graph(stem)
    blobs = {}
    for kind, name, ins, outs, p in layers:
        args = [blobs[i] for i in ins]
        if kind == "Input":
            out = [x]
        elif kind == "Split":
            out = args * len(outs)
        elif kind == "Convolution":
            w, b = weights[name]
            y = F.conv2d(args[0], w, b, padding=int(p.get("4", 0)))
            act = int(p.get("9", 0))
            if act == 1:
                y = torch.relu(y)
            elif act == 2:
                slope = float(p["-23310"].split(",")[1])
                y = torch.where(y > 0, y, y * slope)
            out = [y]
        elif kind == "PReLU":
            (slope,) = weights[name]
            out = [torch.where(args[0] > 0, args[0], args[0] * slope.view(1, -1, 1, 1))]
        elif kind == "Concat":
            out = [torch.cat(args, 1)]
        elif kind == "Eltwise":
            assert p["0"] == "1"  # sum, with coefficients
            coeffs = [float(c) for c in p["-23301"].split(",")[1:]]
            out = [sum(c * a for c, a in zip(coeffs, args))]
        elif kind == "BinaryOp":
            assert p.get("0", "0") == "0"  # add
            out = [args[0] + args[1]]
        elif kind == "Interp":
            mode = {"1": "nearest", "2": "bilinear", "3": "bicubic"}[p["0"]]
            size = (int(args[0].shape[2] * float(p["1"])), int(args[0].shape[3] * float(p["2"])))
            extra = {} if mode == "nearest" else {"align_corners": False}
            out = [F.interpolate(args[0], size=size, mode=mode, **extra)]
        elif kind == "PixelShuffle":
            r = int(p["0"])
            n, c, h, w = args[0].shape
            y = args[0].reshape(n, c // (r * r), r, r, h, w).permute(0, 1, 4, 2, 5, 3)
            out = [y.reshape(n, c // (r * r), h * r, w * r)]
        else:
            raise AssertionError(f"unexpected layer {kind}")
        blobs.update(zip(outs, out))
    return blobs["output"]


def fixed_input(h=12, w=16):
    g = torch.Generator().manual_seed(7)
    base = torch.rand(1, 3, h // 4, w // 4, generator=g)
    return F.interpolate(base, size=(h, w), mode="bilinear", align_corners=False)


@pytest.mark.parametrize("name", list(U.BUILTIN_MODELS))
def test_reader_reproduces_ncnn_graph(name, backend):
    stem = U.BUILTIN_MODELS[name]
    x = fixed_input(8, 8) if "plus" in name else fixed_input()  # RRDBNet is slow on CPU
    expected = interpret(stem, x).clamp(0, 1)
    model = U.load_builtin(name)
    assert (type(model).__module__.split(".")[0] == "spandrel") == (backend == "spandrel")
    got = model(x)
    assert got.shape == expected.shape
    assert (got - expected).abs().max().item() < 2e-4


@pytest.mark.parametrize("name", list(U.BUILTIN_MODELS))
def test_native_models_match_spandrel(name, monkeypatch):
    """Without spandrel the shipped models compute what spandrel's do, with the attributes its descriptor has."""
    import spandrel

    theirs = U._load_builtin(name, True)
    ours = U._load_builtin(name, False)
    assert isinstance(theirs, spandrel.ImageModelDescriptor) and not isinstance(ours, spandrel.ImageModelDescriptor)
    for attr in ("purpose", "tags", "scale", "input_channels", "output_channels", "supports_half",
                 "supports_bfloat16", "device", "dtype"):
        assert getattr(ours, attr) == getattr(theirs, attr), attr
    assert (ours.architecture.id, ours.architecture.name) == (theirs.architecture.id, theirs.architecture.name)
    assert ours.tiling.name == theirs.tiling.name
    for attr in ("minimum", "multiple_of", "square"):
        assert getattr(ours.size_requirements, attr) == getattr(theirs.size_requirements, attr)
    assert not ours.model.training
    g = torch.Generator().manual_seed(3)
    small = "plus" in name
    # odd sizes, and a one-pixel-wide image (padded to ESRGAN's minimum of 2 as spandrel pads it)
    for shape in ((1, 3, 5, 7), (1, 3, 1, 4)) if small else ((1, 3, 11, 13), (1, 3, 1, 6)):
        x = torch.rand(*shape, generator=g)
        torch.testing.assert_close(ours(x), theirs(x), atol=1e-6, rtol=0)
        assert not ours(x).requires_grad
    fresh = U._load_builtin.__wrapped__(name, False)  # not the cached one: moved below
    assert fresh.to(torch.float64) is fresh and fresh.dtype == torch.float64
    assert fresh(torch.rand(1, 3, 4, 4, dtype=torch.float64)).dtype == torch.float64
    assert fresh.float().dtype == torch.float32 and fresh.cpu().device.type == "cpu"


def test_every_weight_is_consumed(backend):
    layers = load_ncnn(FOLDER / "REALESRGAN_ANIMAVIDEOV3_UP4X.param", FOLDER / "REALESRGAN_ANIMAVIDEOV3_UP4X.bin")
    converted = realesrgan_state_dict(layers)
    assert sum(t.numel() for t in converted.state_dict.values()) == 619_200 + 1_136 + 1_088
    # the model (spandrel's, or ops/realesrgan.py's) has exactly these tensors (it loads strictly)
    model = U.load_builtin("RealESRGAN_animevideov3_x4 (compact)").model
    assert set(model.state_dict()) == set(converted.state_dict)
    truncated = (FOLDER / "REALESRGAN_ANIMAVIDEOV3_UP4X.bin").read_bytes()
    from imagetune.ops.ncnn import parse_param, read_weights
    with pytest.raises(NcnnFormatError, match="left"):
        read_weights(parse_param((FOLDER / "REALESRGAN_ANIMAVIDEOV3_UP4X.param").read_text()), truncated + b"\0\0\0\0")
    with pytest.raises(NcnnFormatError, match="ends early"):
        read_weights(parse_param((FOLDER / "REALESRGAN_ANIMAVIDEOV3_UP4X.param").read_text()), truncated[:-8])


def edge_energy(img: torch.Tensor) -> float:
    """Mean gradient magnitude (a Tenengrad-style sharpness measure)."""
    dx = img[..., :, 1:] - img[..., :, :-1]
    dy = img[..., 1:, :] - img[..., :-1, :]
    return float(dx.abs().mean() + dy.abs().mean())


def test_x4_is_sharper_than_bicubic():
    yy, xx = torch.meshgrid(torch.arange(128.0), torch.arange(128.0), indexing="ij")
    disc = ((yy - 60) ** 2 + (xx - 70) ** 2 < 40 ** 2).float()
    sharp = torch.stack([disc, 1 - disc, 0.3 * torch.ones_like(disc)])[None]
    small = F.interpolate(sharp, size=(32, 32), mode="area")
    model_out = U.load_builtin("RealESRGAN_animevideov3_x4 (compact)")(small)
    bicubic = F.interpolate(small, size=(128, 128), mode="bicubic", align_corners=False).clamp(0, 1)
    assert edge_energy(model_out) > 1.15 * edge_energy(bicubic)


def test_tiles_blend_to_whole_image_result():
    model = U.load_builtin("RealESRGAN_animevideov3_x4 (compact)")
    x = fixed_input(28, 40)
    whole = model(x)
    steps = []
    # 18 3x3 convolutions see 18 pixels around: with that much context tiling changes nothing
    # (up to float rounding, which differs between convolution sizes)
    tiled = U.upscale_tiled(model, x, tile=16, overlap=18, progress=lambda d, n: steps.append((d, n)))
    assert tiled.shape == whole.shape
    assert (tiled - whole).abs().max() < 1e-3
    assert steps == [(i, 6) for i in range(1, 7)]
    # with little context, tiles still cover every pixel and stay close
    rough = U.upscale_tiled(model, x, tile=16, overlap=4)
    assert 1e-5 < (rough - whole).abs().mean() < 0.05


class OomAboveTile:
    """Wraps a real model; raises CUDA's out-of-memory error for tiles larger than ``limit`` (cannot be provoked on CPU)."""

    def __init__(self, model, limit):
        self.model, self.limit, self.scale, self.seen = model, limit, model.scale, []

    def __call__(self, x):
        self.seen.append(max(x.shape[-2:]))
        if max(x.shape[-2:]) > self.limit:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2 GiB")
        return self.model(x)


def test_out_of_memory_halves_the_tile():
    wrapped = OomAboveTile(U.load_builtin("RealESRGAN_animevideov3_x2 (compact)"), limit=40)
    out = U.upscale_with_halving(wrapped, fixed_input(80, 80), tile=128, overlap=2)
    assert out.shape == (1, 3, 160, 160)
    # 128 (whole image, 80) fails, 64 (+2 context = 66) fails, 32 (+ context <= 36) fits: 3 x 3 tiles
    assert wrapped.seen[:2] == [80, 66] and max(wrapped.seen[2:]) <= 36 and len(wrapped.seen) == 2 + 9
    small = OomAboveTile(wrapped.model, limit=8)
    with pytest.raises(torch.cuda.OutOfMemoryError):
        U.upscale_with_halving(small, fixed_input(80, 80), tile=64, overlap=2)


def test_nodes_batch_alpha_grey_and_progress(tmp_path):
    ctx_steps = []
    ctx = ExecutionContext(device="cpu", output_dir=tmp_path, input_dir=tmp_path, models_dirs=[],
                           progress_hook=lambda node, d, n: ctx_steps.append((node, d, n)))
    rgba = torch.rand(2, 9, 11, 4)
    wf = {"1": {"class_type": "ImageTuneLoadUpscaleModel", "inputs": {"model_name": "RealESRGAN_animevideov3_x2 (compact)"}},
          "2": {"class_type": "ImageTuneUpscaleWithModel", "inputs": {"upscale_model": ["1", 0], "image": ["3", 0], "tile": 32, "overlap": 4}},
          "3": {"class_type": "ImageTunePassImage", "inputs": {}},
          "4": {"class_type": "ImageTunePreviewImage", "inputs": {"images": ["2", 0]}}}
    registry = default_registry()
    from imagetune.graph_runtime import Node, Output
    from imagetune.graph_runtime import types as T

    class PassImageNode(Node):
        """Emit the test image."""
        node_id = "ImageTunePassImage"
        category = "ImageTune/test"
        outputs = (Output(T.IMAGE, "image"),)

        def run(self, ctx):
            return (rgba,)

    registry.add(PassImageNode)
    out = Runtime(registry).run(wf, ctx=ctx).outputs["2"][0]
    assert out.shape == (2, 18, 22, 4)
    assert out[..., 3].min() >= 0 and out[..., 3].max() <= 1
    assert [s[1:] for s in ctx_steps if s[0] == "2"] == [(1, 2), (2, 2)]
    grey = U.upscale_batch(U.load_builtin("RealESRGAN_animevideov3_x2 (compact)"), torch.rand(1, 1, 5, 1), 32, 4)
    assert grey.shape == (1, 1, 10, 2)


def test_user_model_file_loads_safely(tmp_path, backend):
    converted = realesrgan_state_dict(load_ncnn(FOLDER / "REALESRGAN_ANIMAVIDEOV3_UP4X.param",
                                                FOLDER / "REALESRGAN_ANIMAVIDEOV3_UP4X.bin"))
    from safetensors.torch import save_file
    folder = tmp_path / "upscale_models"
    folder.mkdir()
    save_file({k: v.contiguous() for k, v in converted.state_dict.items()}, str(folder / "mine.safetensors"))
    torch.save({"params": converted.state_dict}, folder / "mine.pth")
    ctx = ExecutionContext(device="cpu", output_dir=tmp_path, input_dir=tmp_path, models_dirs=[tmp_path])
    from imagetune.nodes.upscale import LoadUpscaleModelNode
    x = fixed_input()
    reference = U.load_builtin("RealESRGAN_animevideov3_x4 (compact)")(x)
    for name in ("mine.safetensors", "mine.pth"):
        (model,) = LoadUpscaleModelNode().run(ctx, "RealESRGAN_x4plus", name)
        assert model.scale == 4 and torch.allclose(model(x), reference)
    from imagetune.graph_runtime.errors import NodeInputError
    for bad in ("../mine.pth", "nothing.safetensors", "mine.txt"):
        with pytest.raises(NodeInputError):
            LoadUpscaleModelNode().run(ctx, "RealESRGAN_x4plus", bad)
    # an architecture outside the two Real-ESRGAN layouts (here: one tensor renamed)
    other = dict(converted.state_dict)
    other["head.weight"] = other.pop("body.0.weight")
    save_file({k: v.contiguous() for k, v in other.items()}, str(folder / "other.safetensors"))
    with pytest.raises(NodeInputError) as raised:
        LoadUpscaleModelNode().run(ctx, "RealESRGAN_x4plus", "other.safetensors")
    if backend == "native":  # the message names the fix
        assert "pip install --no-deps spandrel==0.4.2" in str(raised.value)
    else:
        assert "does not recognise" in str(raised.value)


def test_spandrel_imports_without_torchvision(tmp_path):
    """In a fresh interpreter where torchvision cannot be imported, the shipped model still loads."""
    import subprocess
    import sys
    from pathlib import Path
    root = Path(__file__).resolve().parents[1]
    script = f"""
import importlib.util, sys
import torch; torch.set_num_threads(1)
sys.modules["torchvision"] = None  # any 'import torchvision' now raises ImportError
spec = importlib.util.spec_from_file_location("imagetune", {str(root / "__init__.py")!r},
                                              submodule_search_locations=[{str(root)!r}])
pack = importlib.util.module_from_spec(spec); sys.modules["imagetune"] = pack; spec.loader.exec_module(pack)
from imagetune.ops.upscale import load_builtin
import torch
model = load_builtin("RealESRGAN_animevideov3_x2 (compact)")
assert model(torch.rand(1, 3, 8, 8)).shape == (1, 3, 16, 16)
assert sys.modules.get("torchvision") is None, "the stand-in must not outlive the import"
import spandrel.architectures.RestoreFormer as rf
print("ok", rf.tv_normalize(torch.ones(3, 2, 2), [0.5] * 3, [0.5] * 3).mean().item())
"""
    # generous timeout: a fresh interpreter importing torch is slow on the shared CI machine
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["ok", "1.0"]


def test_interrupt_between_tiles_stops_the_upscale(tmp_path):
    from imagetune.graph_runtime.errors import ExecutionInterrupted
    from imagetune.nodes.upscale import UpscaleWithModelNode
    seen = []
    ctx = ExecutionContext(device="cpu", output_dir=tmp_path, input_dir=tmp_path, models_dirs=[])

    def hook(node, done, total):
        seen.append(done)
        ctx.interrupt()  # the next tile boundary must stop the run

    ctx.progress_hook = hook
    model = U.load_builtin("RealESRGAN_animevideov3_x2 (compact)")
    with pytest.raises(ExecutionInterrupted):
        UpscaleWithModelNode().run(ctx, model, torch.rand(1, 64, 64, 3), tile=32, overlap=4)
    assert seen == [1]
