"""The image half of the default pipeline end to end, and device handling of the image ops."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from imagetune.graph_runtime import ExecutionContext, Runtime
from imagetune.nodes import default_registry

PIPELINE = {
    "1": {"class_type": "LoadImage", "inputs": {"image": "shape.png"}},
    "2": {"class_type": "ImageTuneStyleTransfer", "inputs": {
        "image": ["1", 0], "method": "fast neural (built-in style)", "style": "style 19", "strength": 0.6,
        "preserve": "none", "colour_space": "lalphabeta (Reinhard)"}},
    "3": {"class_type": "ImageTuneLoadUpscaleModel", "inputs": {"model_name": "RealESRGAN_animevideov3_x4 (compact)"}},
    "4": {"class_type": "ImageTuneUpscaleWithModel", "inputs": {"upscale_model": ["3", 0], "image": ["2", 0],
                                                                "tile": 512, "overlap": 32}},
    "5": {"class_type": "ImageTuneUnsharpMask", "inputs": {"image": ["4", 0], "radius": 1.0, "amount": 0.5, "threshold": 2}},
    "6": {"class_type": "ImageTuneSaveImage", "inputs": {"images": ["5", 0], "filename_prefix": "default/out"}},
}


def test_style_upscale_sharpen_save(tmp_path):
    (tmp_path / "in").mkdir()
    yy, xx = np.mgrid[0:32, 0:32]
    pixels = np.zeros((32, 32, 3), np.uint8)
    pixels[...] = (30, 60, 200)
    pixels[(yy - 16) ** 2 + (xx - 16) ** 2 < 100] = (220, 30, 30)
    Image.fromarray(pixels).save(tmp_path / "in" / "shape.png")
    ctx = ExecutionContext(device="cpu", input_dir=tmp_path / "in", output_dir=tmp_path / "out", models_dirs=[])
    result = Runtime(default_registry()).run(PIPELINE, ctx=ctx, ui_workflow={"nodes": []})
    (entry,) = result.ui["6"]["images"]
    saved = Image.open(tmp_path / "out" / entry["subfolder"] / entry["filename"])
    assert saved.size == (128, 128)
    assert json.loads(saved.text["prompt"])["4"]["class_type"] == "ImageTuneUpscaleWithModel"
    out = np.asarray(saved, np.float32)
    centre, corner = out[56:72, 56:72].mean((0, 1)), out[:16, :16].mean((0, 1))
    assert centre[0] > centre[2] and corner[2] > corner[0], "the red disc on blue must survive the style at 0.6"


cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


@cuda
def test_image_ops_stay_on_the_gpu(tmp_path):
    from imagetune.nodes import enhance as E
    from imagetune.nodes.style_transfer import HISTOGRAM, REINHARD, StyleTransferNode
    ctx = ExecutionContext(device="cuda", output_dir=tmp_path, input_dir=tmp_path, models_dirs=[])
    image = torch.rand(2, 33, 47, 3, device="cuda")
    for node, args in [(E.UnsharpMaskNode, dict(radius=2.0, amount=1.0, threshold=3)),
                       (E.AdjustColourNode, dict(brightness=1.1, contrast=1.2, saturation=0.9, gamma=1.2)),
                       (E.AutoContrastNode, dict(cutoff=1.0)), (E.EqualizeClaheNode, dict(clip_limit=2.0, grid=4)),
                       (E.DenoiseNode, dict(method="bilateral", strength=0.1, radius=2)),
                       (E.ResizeImageNode, dict(method="lanczos", scale_by=2.0))]:
        (out,) = node().run(ctx, image, **args)
        (ref,) = node().run(ctx, image.cpu(), **args)
        assert out.is_cuda and torch.allclose(out.cpu(), ref, atol=2e-3), node.node_id
    for method in (REINHARD, HISTOGRAM):
        (out,) = StyleTransferNode().run(ctx, image, method, style="style 00", strength=1.0, preserve="luminance",
                                         colour_space="CIELAB", style_image=image[:1].flip(1))
        assert out.is_cuda
