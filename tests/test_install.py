"""The README's pip command installs what the main job needs, beside the torch already installed.

A fresh virtual environment gets torch first (the CPU 2.13.0 wheel, as scripts/setup-venv.sh
installs), then exactly the command of the README's "Install with pip" section, from this
repository's path (not editable), then runs the default workflow offline from another folder, so
nothing can come from the checkout. It downloads the dependencies (a few minutes on a cold pip
cache): ``-m "not slow"`` deselects it, and it skips when pip cannot reach a package index.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
#: the README's command, with the repository's path as the README writes it
DOCUMENTED = "python -m pip install /path/to/ImageTune"
TORCH = "torch==2.13.0"
#: what pip prints when it cannot reach an index (the install then says nothing about our packages)
NETWORK_TROUBLE = ("NewConnectionError", "ConnectTimeoutError", "ReadTimeoutError", "ProxyError",
                   "Temporary failure in name resolution", "Network is unreachable",
                   "Name or service not known", "No route to host", "Connection refused", "SSLError")

TORCH_STATE = """
import importlib.metadata, json, os, torch
init = os.stat(torch.__file__)
print(json.dumps([importlib.metadata.version("torch"), torch.__file__, init.st_ino, init.st_mtime_ns]))
"""

PROBE = """
import importlib.util, json, imagetune
print(json.dumps({name: importlib.util.find_spec(name) is not None for name in ("torchvision", "spandrel")}
                 | {"imagetune": imagetune.__file__}))
"""

pytestmark = pytest.mark.slow


def clean_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME", "PIP_USER")}
    env.update(PIP_DISABLE_PIP_VERSION_CHECK="1", HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    return env


def unreachable(python: Path, output: str, env: dict, cwd: Path) -> bool:
    """Whether a failed pip run failed for want of an index rather than for a wrong requirement."""
    if any(marker in output for marker in NETWORK_TROUBLE):  # pip's retry warnings name the error
        return True
    missing = re.search(r"No matching distribution found for ([A-Za-z0-9._-]+)", output)
    if not missing:
        return False
    # without retries pip says nothing about the connection: ask the index, verbosely, about that name
    done = subprocess.run([str(python), "-m", "pip", "index", "versions", missing.group(1), "-vv", "--retries", "0"],
                          env=env, cwd=cwd, capture_output=True, text=True, timeout=600)
    detail = done.stdout + done.stderr
    failures = [line for line in detail.splitlines() if line.startswith("Could not fetch URL")]  # or a 404
    return done.returncode != 0 and any(": connection error" in line or line.endswith("timed out - skipping")
                                        or any(m in line for m in NETWORK_TROUBLE) for line in failures)


def pip(python: Path, args: list[str], env: dict, cwd: Path, timeout: int) -> None:
    """Run pip; skip the test when it failed for want of a network, fail it otherwise."""
    try:
        done = subprocess.run([str(python), "-m", "pip", *args], env=env, cwd=cwd,
                              capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        pytest.skip(f"pip {' '.join(args)} ran over {timeout} s (no package index in reach?)")
    if done.returncode != 0:
        output = done.stdout + done.stderr
        if unreachable(python, output, env, cwd):
            pytest.skip(f"pip cannot reach a package index: {output.strip().splitlines()[-1]}")
        raise AssertionError(f"pip {' '.join(args)} failed ({done.returncode}):\n{output[-4000:]}")


def run_python(python: Path, code: str, env: dict, cwd: Path):
    done = subprocess.run([str(python), "-c", code], env=env, cwd=cwd, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_readme_pip_command_runs_the_default_workflow_beside_the_installed_torch(tmp_path):
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Install with pip", 1)[-1].split("\n## ", 1)[0]
    assert DOCUMENTED in section, "the test runs the README's command: keep the two in step"
    words = DOCUMENTED.split()
    assert words[:4] == ["python", "-m", "pip", "install"]
    target = [str(ROOT) if word == "/path/to/ImageTune" else word for word in words[4:]]

    env = clean_env(tmp_path)
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300, env=env, cwd=tmp_path)
    python = venv / "bin" / "python"
    # torch first, as on a worker that has its own build (a bare "torch" here would pull a CUDA build)
    pip(python, ["install", "-q", TORCH], env, tmp_path, timeout=1800)
    torch_before = run_python(python, TORCH_STATE, env, tmp_path)
    assert torch_before[0].startswith("2.13.0")

    pip(python, ["install", "-q", *target], env, tmp_path, timeout=3600)

    # torch is the same installation, not a reinstall (that would write torch/__init__.py anew)
    assert run_python(python, TORCH_STATE, env, tmp_path) == torch_before
    probe = run_python(python, PROBE, env, tmp_path)
    assert Path(probe["imagetune"]).is_relative_to(venv), probe  # the installed package, not the checkout
    # no torchvision (PyPI's would not import beside this torch), hence no spandrel: the shipped
    # upscale model runs on ops/realesrgan.py
    assert probe["torchvision"] is False and probe["spandrel"] is False, probe

    out = tmp_path / "out"
    imagetune = str(venv / "bin" / "imagetune")
    done = subprocess.run([imagetune, "run", str(ROOT / "workflows" / "imagetune-text-to-image.json"), "--out", str(out)],
                          env=env, cwd=tmp_path, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, (done.stdout + done.stderr)[-4000:]
    written = sorted(out.glob("*.png"))
    assert [p.name for p in written] == ["imagetune_00001_.png"], done.stdout[-2000:]
    from PIL import Image

    with Image.open(written[0]) as image:
        assert image.format == "PNG" and image.size == (256, 256)
        assert "prompt" in image.info
    # the picture the style-transfer example starts on comes with the package (no input folder here)
    done = subprocess.run([imagetune, "run", str(ROOT / "workflows" / "imagetune-style-transfer.json"), "--out",
                           str(out)], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, (done.stdout + done.stderr)[-4000:]
    assert not (tmp_path / "input").exists() and len(list(out.rglob("stylized_*.png"))) == 1
