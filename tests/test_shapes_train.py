"""Resuming the shipped generator's training (shapes.train --unet-resume) for a few steps."""
import shutil
from pathlib import Path

import torch
from safetensors.torch import load_file

from imagetune.shapes import train

SHIPPED = Path(__file__).resolve().parents[1] / "models" / "imagetune-shapes"


def test_unet_resume_trains_the_unet_and_keeps_the_shipped_vae(tmp_path):
    out = tmp_path / "out"
    shutil.copytree(SHIPPED, out)
    weights = "diffusion_pytorch_model.safetensors"
    train.main(["--out", str(out), "--work", str(tmp_path / "work"), "--unet-resume", "--steps", "3",
                "--batch", "2", "--renders", "1", "--save-every", "3", "--lr", "1e-3"])
    vae_before, vae_after = load_file(SHIPPED / "vae" / weights), load_file(out / "vae" / weights)
    assert vae_before.keys() == vae_after.keys()
    assert all(torch.equal(vae_before[k], vae_after[k]) for k in vae_before)
    unet_before, unet_after = load_file(SHIPPED / "unet" / weights), load_file(out / "unet" / weights)
    assert unet_before.keys() == unet_after.keys()
    changed = [k for k in unet_before if not torch.equal(unet_before[k], unet_after[k])]
    assert len(changed) > len(unet_before) // 2  # it started from the shipped weights and moved them
    assert max((unet_before[k] - unet_after[k]).abs().max() for k in unet_before) < 0.1


def test_resume_continues_exactly_where_the_run_stopped(tmp_path):
    """4 steps, stop, rerun the same command to 6 == 6 steps at once (weights, EMA, optimiser, RNG restored)."""
    weights = "diffusion_pytorch_model.safetensors"
    results = {}
    for name, stops in (("straight", [6]), ("resumed", [4, 6])):
        out = tmp_path / name / "out"
        shutil.copytree(SHIPPED, out)
        for steps in stops:
            train.main(["--out", str(out), "--work", str(tmp_path / name / "work"), "--unet-resume", "--resume",
                        "--constant-lr", "--language", "rich", "--captions-per-spec", "2", "--steps", str(steps),
                        "--batch", "2", "--renders", "1", "--save-every", "2", "--lr", "1e-3"])
        results[name] = load_file(out / "unet" / weights)
    log = (tmp_path / "resumed" / "work" / "train.log").read_text()
    assert "resumed from" in log and "reusing the MiniLM states" in log
    straight, resumed = results["straight"], results["resumed"]
    assert all(torch.equal(straight[k], resumed[k]) for k in straight)
    shipped = load_file(SHIPPED / "unet" / weights)
    assert any(not torch.equal(shipped[k], resumed[k]) for k in shipped)
