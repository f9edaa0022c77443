"""Resumable training state of the shapes UNet: weights, EMA, optimiser, RNG and step, in one folder.

Written to ``<work>/checkpoint`` by replacing the folder whole (write a temp folder, then rename),
so an interrupted save leaves the previous checkpoint intact. Weights are safetensors; the
optimiser state is read back with ``torch.load(weights_only=True)`` (tensors and numbers only).
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file


def save_checkpoint(folder: Path, unet, ema, opt, gen: torch.Generator, step: int, seconds: float) -> None:
    """Write the whole training state to ``folder`` (replacing an earlier checkpoint there)."""
    tmp, old = folder.with_name(folder.name + ".tmp"), folder.with_name(folder.name + ".old")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    save_file({k: v.contiguous() for k, v in unet.state_dict().items()}, tmp / "unet.safetensors")
    save_file({k: v.contiguous() for k, v in ema.state_dict().items()}, tmp / "ema.safetensors")
    save_file({"generator": gen.get_state()}, tmp / "rng.safetensors")
    torch.save(opt.state_dict(), tmp / "optimizer.pt")
    (tmp / "state.json").write_text(json.dumps({"step": step, "seconds": round(seconds, 1)}) + "\n")
    if folder.exists():
        shutil.rmtree(old, ignore_errors=True)
        folder.rename(old)
    tmp.rename(folder)
    shutil.rmtree(old, ignore_errors=True)


def load_checkpoint(folder: Path, unet, ema, opt, gen: torch.Generator) -> tuple[int, float]:
    """Restore the state saved by ``save_checkpoint`` into the given objects; returns (step, seconds)."""
    unet.load_state_dict(load_file(folder / "unet.safetensors"))
    ema.load_state_dict(load_file(folder / "ema.safetensors"))
    gen.set_state(load_file(folder / "rng.safetensors")["generator"])
    opt.load_state_dict(torch.load(folder / "optimizer.pt", weights_only=True))
    state = json.loads((folder / "state.json").read_text())
    return int(state["step"]), float(state["seconds"])
