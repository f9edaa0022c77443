"""The shipped demo generator "imagetune-shapes" and the default workflow, end to end."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from imagetune.graph_runtime import ExecutionContext, Runtime, load_workflow
from imagetune.nodes import default_registry
from imagetune.shapes import dataset as ds
from imagetune.shapes.analyzer import analyze

ROOT = Path(__file__).resolve().parents[1]
MODEL = ROOT / "models" / "imagetune-shapes"
WORKFLOW = ROOT / "workflows" / "imagetune-text-to-image.json"


@pytest.fixture(scope="module")
def text_encoder():
    from imagetune.shapes.evaluate import load_text_encoder
    return load_text_encoder()


@pytest.fixture(scope="module")
def pipe():
    from diffusers import StableDiffusionPipeline
    pipe = StableDiffusionPipeline.from_pretrained(
        str(MODEL), text_encoder=None, tokenizer=None, safety_checker=None, feature_extractor=None,
        requires_safety_checker=False)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def test_shipped_folder_is_small_safetensors_with_trailing_ddim():
    files = [p for p in MODEL.rglob("*") if p.is_file()]
    weights = [p for p in files if p.suffix in (".safetensors", ".bin", ".ckpt", ".pt", ".pth")]
    assert weights and all(p.suffix == ".safetensors" for p in weights)
    assert sum(p.stat().st_size for p in files) < 40 * 2 ** 20
    scheduler = json.loads((MODEL / "scheduler" / "scheduler_config.json").read_text())
    assert scheduler["_class_name"] == "DDIMScheduler" and scheduler["timestep_spacing"] == "trailing"
    assert json.loads((MODEL / "unet" / "config.json").read_text())["cross_attention_dim"] == 384


def test_generates_from_minilm_states_at_the_right_size(pipe, text_encoder):
    from imagetune.nodes.text_encoding import encode_prompts
    tokenizer, model = text_encoder
    states, _ = encode_prompts(model, tokenizer, ["a red circle on a blue background"])
    empty, _ = encode_prompts(model, tokenizer, [""])
    assert states.shape == (1, 77, 384)
    import torch
    out = pipe(prompt_embeds=states, negative_prompt_embeds=empty, num_inference_steps=4, guidance_scale=3.0,
               generator=torch.Generator().manual_seed(0), output_type="np").images
    assert out.shape == (1, 64, 64, 3) and np.isfinite(out).all() and out.std() > 0.05


def test_held_out_prompts_follow_the_shape_well_above_chance(pipe, text_encoder):
    from imagetune.shapes.evaluate import generate
    specs = ds.held_out_specs()[::2]  # 8 combinations never seen in training
    images = generate(pipe, text_encoder, [ds.caption(s) for s in specs], list(range(len(specs))), steps=10)
    hits = [analyze(img).matches(spec) for img, spec in zip(images, specs)]
    shape = np.mean([h["shape"] for h in hits])
    background = np.mean([h["background"] for h in hits])
    assert shape >= 0.75, f"shape right in {shape:.0%} of held-out images (chance: 33%)"
    assert background >= 0.5, f"background right in {background:.0%} (chance: 12.5%)"


def test_default_workflow_end_to_end(tmp_path):
    workflow = load_workflow(WORKFLOW)
    prompt = "a yellow square, not on a white background"  # the generator alone mostly draws the negated colour
    workflow["2"]["inputs"]["text"] = prompt  # as --set 2.text=... does
    ctx = ExecutionContext(device="cpu", input_dir=tmp_path, output_dir=tmp_path / "out",
                           models_dirs=[ROOT / "models"])
    result = Runtime(default_registry()).run(workflow, ctx=ctx)
    (entry,) = result.ui["11"]["images"]
    path = tmp_path / "out" / entry["subfolder"] / entry["filename"]
    with Image.open(path) as png:
        png.verify()
    saved = Image.open(path)
    assert saved.format == "PNG" and saved.size[0] >= 256 and saved.size[1] >= 256
    assert json.loads(saved.text["prompt"])["2"]["inputs"]["text"] == prompt
    # the Understand Prompt node re-wrote it in the generator's words (white negated: black, by reading.py's rule)
    assert result.outputs["4"][1] == "a yellow square on a black background"
    generated = result.outputs["6"][0][0].numpy()  # the generator's own 64x64 picture, before style
    assert analyze(generated).background == "black"
    final = np.asarray(saved.convert("RGB"), np.float32)
    corner, centre = final[:32, :32].mean((0, 1)), final[112:144, 112:144].mean((0, 1))
    assert corner.mean() < centre.mean(), "a bright square on a dark background survives style and upscale"
