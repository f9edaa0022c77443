"""Where LiT tuning pairs come from: captions files, sidecar texts, PNGs with an embedded workflow; the CLI."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image
from PIL.PngImagePlugin import PngInfo

from imagetune.graph_runtime.cli import main
from imagetune.lit.data import caption_from_png, pairs_from_folder, prompt_of_workflow
from imagetune.lit.sources import folder_data
from imagetune.shapes import dataset as shapes

WORKFLOW = {
    "3": {"class_type": "KSampler", "inputs": {"positive": ["6", 0], "negative": ["7", 0], "seed": 1}},
    "6": {"class_type": "CLIPTextEncode", "inputs": {"text": "a red circle on a blue background", "clip": ["4", 1]}},
    "7": {"class_type": "CLIPTextEncode", "inputs": {"text": "blurry", "clip": ["4", 1]}},
}


def save_png(path, spec, prompt_workflow=None):
    info = None
    if prompt_workflow is not None:
        info = PngInfo()
        info.add_text("prompt", json.dumps(prompt_workflow))
    shapes.render(spec, 32).save(path, pnginfo=info)


def test_caption_is_the_positive_prompt_of_the_embedded_workflow(tmp_path):
    save_png(tmp_path / "a.png", shapes.ShapeSpec("circle", "red", "blue"), WORKFLOW)
    assert caption_from_png(tmp_path / "a.png") == "a red circle on a blue background"
    # without a sampler naming the positive input, the first text-encode node is the prompt
    solo = {"9": {"class_type": "ImageTuneTextEncode", "inputs": {"text": " a cat "}},
            "12": {"class_type": "ImageTuneTextEncode", "inputs": {"text": "a dog"}}}
    assert prompt_of_workflow(solo) == "a cat"
    save_png(tmp_path / "b.png", shapes.ShapeSpec("circle", "red", "blue"))
    assert caption_from_png(tmp_path / "b.png") is None


def test_captions_files_and_sidecars(tmp_path):
    for i in range(3):
        save_png(tmp_path / f"{i}.png", shapes.training_specs()[i])
    (tmp_path / "captions.tsv").write_text("0.png\tfirst\n\n2.png\tthird\n")
    assert [(p.name, c) for p, c in pairs_from_folder(tmp_path)] == [("0.png", "first"), ("2.png", "third")]
    (tmp_path / "captions.tsv").unlink()
    (tmp_path / "1.txt").write_text("second\n")
    (tmp_path / "captions.json").write_text(json.dumps({"1.png": "one"}))
    assert [(p.name, c) for p, c in pairs_from_folder(tmp_path)] == [("1.png", "one")]
    (tmp_path / "captions.json").unlink()
    assert [(p.name, c) for p, c in pairs_from_folder(tmp_path)] == [("1.png", "second")]


def test_bad_folders_give_clear_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="data folder"):
        pairs_from_folder(tmp_path / "missing")
    with pytest.raises(ValueError, match="found none"):
        pairs_from_folder(tmp_path)
    (tmp_path / "captions.tsv").write_text("gone.png\ta caption\n")
    with pytest.raises(FileNotFoundError, match="gone.png"):
        pairs_from_folder(tmp_path)
    (tmp_path / "captions.tsv").write_text("../outside.png\ta caption\n")
    with pytest.raises(ValueError, match="outside"):
        pairs_from_folder(tmp_path)
    (tmp_path / "captions.tsv").write_text("no tab here\n")
    with pytest.raises(ValueError, match="line 1"):
        pairs_from_folder(tmp_path)


def test_held_out_captions_never_appear_in_training(tmp_path):
    specs = shapes.training_specs()[:20]
    lines = []
    for i, spec in enumerate(specs):
        save_png(tmp_path / f"{i}.png", spec)
        lines.append(f"{i}.png\t{shapes.caption(spec)}")
    (tmp_path / "captions.tsv").write_text("\n".join(lines))
    data = folder_data(tmp_path, held_out_fraction=0.25, seed=1)
    assert len(set(data.held_captions)) == 5 and not set(data.held_captions) & set(data.train_captions)
    assert sorted(data.candidates) == sorted(shapes.caption(s) for s in specs)
    assert folder_data(tmp_path, 0.25, seed=1).held_captions == data.held_captions  # seeded


def test_lit_tune_command_on_pngs_with_embedded_prompts(tmp_path, capsys):
    data = tmp_path / "pngs"
    data.mkdir()
    for i, spec in enumerate(shapes.training_specs()[::12][:12]):
        workflow = json.loads(json.dumps(WORKFLOW))
        workflow["6"]["inputs"]["text"] = shapes.caption(spec)
        save_png(data / f"ImageTune_{i:05d}_.png", spec, workflow)
    before = torch.get_num_threads()
    try:
        code = main(["lit-tune", str(data), "--out", str(tmp_path / "head"), "--steps", "3", "--batch-size", "4",
                     "--image-size", "32", "--no-progress", "--threads", "1", "--json", "--held-out", "0.25"])
    finally:
        torch.set_num_threads(before)
    assert code == 0
    metrics = json.loads(capsys.readouterr().out)
    assert metrics["held_out_pairs"] == 3 and metrics["candidates"] == 12
    assert 0.0 <= metrics["zero_shot_accuracy"] <= 1.0
    config = json.loads((tmp_path / "head" / "config.json").read_text())
    assert config["image_tower"] == {"kind": "efficientnet-lite0", "image_size": 32, "pool": "multi"}
    assert config["train"]["steps"] == 3 and (tmp_path / "head" / "head.safetensors").is_file()


def test_lit_tune_command_reports_a_missing_folder(tmp_path, capsys):
    assert main(["lit-tune", str(tmp_path / "nope"), "--out", str(tmp_path / "o"), "--no-progress"]) == 2
    assert "data folder" in capsys.readouterr().err
