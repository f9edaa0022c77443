"""Make the README pictures: the default workflow's output, a grid of generator samples, and style before/after.

    .venv/bin/python scripts/make_samples.py     # writes docs/images/default.png, samples.png, style-before-after.png

Seeded, so reruns give the same pictures on the same machine.
"""
from __future__ import annotations

import importlib.util
import shutil
import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

ROOT = Path(__file__).resolve().parents[1]
PROMPTS = (
    "a red circle on a blue background",
    "a green triangle on a yellow background",
    "a white square on a black background",
    "an orange circle on a purple background",
    "a purple triangle on a green background",   # held out of training
    "a black circle on a red background",         # held out of training
    "a red circle to the left of a blue square on a white background",  # the two-object world (#12)
    "two yellow triangles on a black background",
)
SEEDS = (0, 1, 2, 3)
# The default workflow's post-generator settings before #12 (the "before" row of style-before-after.png).
BEFORE = {"7.style": "style 19", "7.strength": 0.5, "8.model_name": "RealESRGAN_animevideov3_x4 (compact)",
          "10.radius": 1.0, "10.amount": 0.5}
CELL = 128
LABEL = 18


def load_pack():
    """Import the pack as ``imagetune`` from this checkout (as the tests and ComfyUI do)."""
    spec = importlib.util.spec_from_file_location("imagetune", ROOT / "__init__.py",
                                                  submodule_search_locations=[str(ROOT)])
    module = importlib.util.module_from_spec(spec)
    sys.modules["imagetune"] = module
    spec.loader.exec_module(module)


def default_picture(out: Path) -> None:
    """Run workflows/imagetune-text-to-image.json as the README's main command does and copy its PNG to ``out``."""
    from imagetune.graph_runtime import ExecutionContext, Runtime, load_workflow
    from imagetune.nodes import default_registry
    work = ROOT / "output" / "samples"
    ctx = ExecutionContext(device="cpu", output_dir=work, input_dir=ROOT / "input", models_dirs=[ROOT / "models"])
    workflow = load_workflow(ROOT / "workflows" / "imagetune-text-to-image.json")
    result = Runtime(default_registry()).run(workflow, ctx=ctx)
    (entry,) = result.ui["11"]["images"]
    shutil.copyfile(work / entry["subfolder"] / entry["filename"], out)


def generated(prompts: list[str], seeds: list[int]):
    """The shipped generator's 64x64 images of ``prompts`` as the default workflow makes them: through its
    Understand Prompt node's reading (regional conditioning for two or more things, when the model has it)."""
    import torch
    from imagetune.shapes.evaluate import DEFAULT_WORKFLOW, generate, load_text_encoder
    from imagetune.shapes.geneval import understood
    from imagetune.shapes.model import load_pipeline
    from imagetune.shapes.regions import trained_caption
    from imagetune.shapes.scene import canonical_text
    torch.set_num_threads(1)
    folder = ROOT / "models" / "imagetune-shapes"
    pipe, text = load_pipeline(folder), load_text_encoder()
    asked = understood(prompts, DEFAULT_WORKFLOW, text)
    return generate(pipe, text, [canonical_text(d) for d in asked], seeds, descriptions=asked,
                    caption=trained_caption(folder))


def sample_grid(out: Path) -> None:
    """One row per prompt, one column per seed, of the generator's 64x64 output (shown 2x, nearest)."""
    prompts = [p for p in PROMPTS for _ in SEEDS]
    images = generated(prompts, list(SEEDS) * len(PROMPTS))
    grid = Image.new("RGB", (CELL * len(SEEDS), (CELL + LABEL) * len(PROMPTS)), "white")
    draw = ImageDraw.Draw(grid)
    for i, image in enumerate(images):
        row, col = divmod(i, len(SEEDS))
        tile = Image.fromarray((image * 255 + 0.5).astype(np.uint8)).resize((CELL, CELL), Image.Resampling.NEAREST)
        grid.paste(tile, (col * CELL, row * (CELL + LABEL) + LABEL))
        if col == 0:
            draw.text((4, row * (CELL + LABEL) + 3), PROMPTS[row], fill="black")
    grid.save(out)


def before_after(out: Path) -> None:
    """Seed 0 of each prompt through the workflow's post-generator nodes: before #12 (top), now (bottom)."""
    from imagetune.shapes.saved_png import SavedPng
    images = generated(list(PROMPTS), [0] * len(PROMPTS))
    rows = [SavedPng(overrides=BEFORE)(images), SavedPng()(images)]
    grid = Image.new("RGB", (CELL * len(PROMPTS), (CELL + LABEL) * 2), "white")
    draw = ImageDraw.Draw(grid)
    for r, (row, label) in enumerate(zip(rows, ("before: style 19 at 0.5", "now: the default workflow"))):
        draw.text((4, r * (CELL + LABEL) + 3), label, fill="black")
        for c, png in enumerate(row):
            grid.paste(Image.fromarray(png).resize((CELL, CELL), Image.Resampling.LANCZOS),
                       (c * CELL, r * (CELL + LABEL) + LABEL))
    grid.save(out)


def main() -> None:
    load_pack()
    images = ROOT / "docs" / "images"
    images.mkdir(parents=True, exist_ok=True)
    default_picture(images / "default.png")
    sample_grid(images / "samples.png")
    before_after(images / "style-before-after.png")
    print(f"wrote default.png, samples.png and style-before-after.png in {images}")


if __name__ == "__main__":
    main()
