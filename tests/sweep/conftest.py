"""The small real workflow the sweep tests run: the shipped text encoder and generator, 64 px, 4 steps."""
from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest

PROMPTS = ("a red circle on a blue background", "a green square on a yellow background")

SMALL = {
    "1": {"class_type": "ImageTuneLoadTextEncoder",
          "inputs": {"text_encoder": "minilm", "dtype": "auto", "device": "auto"}},
    "2": {"class_type": "ImageTuneEncodeText",
          "inputs": {"text": PROMPTS[0], "one_prompt_per_line": False, "text_encoder": ["1", 0]}},
    "3": {"class_type": "ImageTuneEncodeText",
          "inputs": {"text": "", "one_prompt_per_line": False, "text_encoder": ["1", 0]}},
    "5": {"class_type": "ImageTuneLoadPipeline",
          "inputs": {"model": "imagetune-shapes", "scheduler": "default", "dtype": "auto", "device": "auto",
                     "cpu_offload": False, "attention_slicing": False, "config": ""}},
    "6": {"class_type": "ImageTuneGenerate",
          "inputs": {"width": 64, "height": 64, "steps": 4, "guidance": 2.0, "seed": 0, "guidance_rescale": 0.0,
                     "batch_size": 1, "pipeline": ["5", 0], "positive": ["2", 0], "negative": ["3", 0]}},
    "7": {"class_type": "ImageTuneSaveImage", "inputs": {"filename_prefix": "shape", "images": ["6", 0]}},
}

VARY = {"2.text": list(PROMPTS), "6.seed": [0, 1, 2]}


def write_small(folder, steps: int = 4) -> str:
    """Write the small workflow (with ``steps`` denoising steps) into ``folder``; return its path."""
    workflow = json.loads(json.dumps(SMALL))
    workflow["6"]["inputs"]["steps"] = steps
    path = folder / "small.json"
    path.write_text(json.dumps(workflow))
    return str(path)


def pixels(path) -> np.ndarray:
    """A PNG's pixels."""
    from PIL import Image

    with Image.open(path) as picture:
        return np.asarray(picture.convert("RGB"))


def file_bytes(folder) -> dict[str, bytes]:
    """Every file under ``folder`` (relative path -> bytes), the manifest and sheet left out."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and p.name not in ("sweep.jsonl", "sweep.png", ".lock")}


def run_killing_first_worker(run_sweep, out) -> tuple[list[dict], int]:
    """Run ``run_sweep()`` in a thread, SIGKILL the process that recorded the first job, return (rows, pid)."""
    import os
    import signal
    import threading
    import time

    from imagetune.graph_runtime.sweep_manifest import read_rows

    result = {}
    thread = threading.Thread(target=lambda: result.update(rows=run_sweep()))
    thread.start()
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and not read_rows(out) and thread.is_alive():
        time.sleep(0.02)
    first = next(iter(read_rows(out).values()))
    os.kill(first["worker"]["pid"], signal.SIGKILL)          # the worker dies mid-sweep
    thread.join(300)
    return result["rows"], first["worker"]["pid"]


@pytest.fixture(scope="session")
def small():
    """The workflow, its prompts and the 2 x 3 sweep, and the helpers above."""
    return SimpleNamespace(workflow=SMALL, prompts=PROMPTS, vary=VARY, write=write_small, pixels=pixels,
                           file_bytes=file_bytes, run_killing_first_worker=run_killing_first_worker)


@pytest.fixture(scope="session")
def shared_runtime():
    """One runtime (and model cache) for the in-process sweeps of this folder."""
    from imagetune.graph_runtime import Runtime

    return Runtime()
