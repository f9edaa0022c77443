#!/usr/bin/env bash
# Create or refresh ./.venv with everything ImageTune and its tests need.
# Safe to run again: it only installs what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
VPY=.venv/bin/python
stamp=.venv/.imagetune-installed
want=$(cat pyproject.toml scripts/setup-venv.sh | sha256sum | cut -c1-16)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  exit 0
fi
# A bare "torch" requirement would pull a multi-GB CUDA build: install the CPU 2.13.0 first.
if ! "$VPY" -c "import torch" >/dev/null 2>&1; then
  "$VPY" -m pip install -q torch==2.13.0
fi
"$VPY" -m pip install -q -e ".[test,ray]"
# spandrel, as inside ComfyUI: the tests check the shipped upscale models against it, and user
# model files of other architectures need it. --no-deps: its torchvision requirement would pull a
# torchvision that breaks beside this torch (ops/upscale.py lends spandrel a stand-in instead).
"$VPY" -m pip install -q --no-deps spandrel==0.4.2
echo "$want" > "$stamp"
