"""Image–caption pairs for tuning: from a folder with a captions file, sidecar texts, or our PNGs.

A folder is read in this order of preference:
1. ``captions.tsv`` / ``captions.txt`` (``file<TAB>caption`` per line) or ``captions.json``
   (``{"file": "caption"}``) or ``captions.jsonl`` (``{"file": ..., "caption": ...}`` per line);
2. a ``<image>.txt`` next to each image (the kohya/dreambooth convention);
3. PNGs saved with an embedded workflow: the caption is the prompt of the positive text-encode node.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp")
CAPTION_FILES = ("captions.tsv", "captions.txt", "captions.json", "captions.jsonl")
_TEXT_INPUTS = ("text", "prompt", "text_g", "positive_prompt")


def pairs_from_folder(folder: Path | str) -> list[tuple[Path, str]]:
    """(image path, caption) pairs found in ``folder``, sorted by file name; raises when there are none."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"data folder: expected a folder of images, got missing {str(folder)!r}")
    listed = next((folder / name for name in CAPTION_FILES if (folder / name).is_file()), None)
    if listed is not None:
        pairs = _pairs_from_captions_file(listed)
    else:
        pairs = []
        for image in sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES):
            text = _sidecar_caption(image) or (caption_from_png(image) if image.suffix.lower() == ".png" else None)
            if text:
                pairs.append((image, text))
    if not pairs:
        raise ValueError(f"data folder: expected images with captions ({', '.join(CAPTION_FILES)}, <image>.txt "
                         f"files, or PNGs with an embedded workflow) in {folder}, found none")
    return pairs


def _pairs_from_captions_file(path: Path) -> list[tuple[Path, str]]:
    folder = path.parent
    if path.suffix == ".json":
        entries = list(json.loads(path.read_text(encoding="utf-8")).items())
    elif path.suffix == ".jsonl":
        rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        entries = [(row["file"], row["caption"]) for row in rows]
    else:
        entries = []
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            name, sep, text = line.partition("\t")
            if not sep:
                raise ValueError(f"{path.name} line {number}: expected 'file<TAB>caption', got {line!r}")
            entries.append((name.strip(), text.strip()))
    pairs = []
    for name, text in entries:
        image = (folder / name).resolve()
        if folder.resolve() not in image.parents:
            raise ValueError(f"{path.name}: image {name!r} lies outside {folder}")
        if not image.is_file():
            raise FileNotFoundError(f"{path.name}: image {name!r} was not found in {folder}")
        pairs.append((image, str(text)))
    return pairs


def _sidecar_caption(image: Path) -> str | None:
    side = image.with_suffix(".txt")
    return side.read_text(encoding="utf-8").strip() or None if side.is_file() else None


def caption_from_png(path: Path | str) -> str | None:
    """The prompt of the positive text-encode node in a PNG's embedded ``prompt`` chunk, or None."""
    from PIL import Image

    with Image.open(path) as picture:
        raw = picture.info.get("prompt") if hasattr(picture, "info") else None
    if not raw:
        return None
    try:
        workflow = json.loads(raw)
    except ValueError:
        return None
    return prompt_of_workflow(workflow) if isinstance(workflow, dict) else None


def prompt_of_workflow(workflow: dict) -> str | None:
    """The caption an API-format workflow was made from: the text of the text-encode node feeding a
    ``positive`` input, else of the first text-encode node (by node id)."""
    encoders = {}
    for node_id, node in workflow.items():
        if not isinstance(node, dict) or "TextEncode" not in str(node.get("class_type", "")):
            continue
        texts = [v for k, v in node.get("inputs", {}).items() if k in _TEXT_INPUTS and isinstance(v, str)]
        if texts:
            encoders[str(node_id)] = texts[0]
    if not encoders:
        return None
    for node in workflow.values():
        link = node.get("inputs", {}).get("positive") if isinstance(node, dict) else None
        if isinstance(link, list) and link and str(link[0]) in encoders:
            return encoders[str(link[0])].strip() or None
    first = min(encoders, key=lambda k: (len(k), k))
    return encoders[first].strip() or None


def load_images(paths: list[Path], size: int) -> torch.Tensor:
    """Images as IMAGE [N, size, size, 3] float32 0..1 (resized with bicubic filtering, alpha dropped)."""
    from PIL import Image

    arrays = []
    for path in paths:
        with Image.open(path) as picture:
            arrays.append(np.asarray(picture.convert("RGB").resize((size, size), Image.Resampling.BICUBIC)))
    if not arrays:
        return torch.zeros(0, size, size, 3)
    return torch.from_numpy(np.stack(arrays)).float().div_(255.0)
