"""Make each ComfyUI template's thumbnail from the workflow's own output.

    .venv/bin/python scripts/make_thumbnails.py          # writes workflows/<name>.jpg for each workflows/<name>.json

Each UI workflow in workflows/ runs headless through our runtime on CPU with an empty input
folder (so only the pictures the pack ships are read), and the first image it saves becomes
``workflows/<name>.jpg``: the front end shows ``/api/workflow_templates/<pack>/<name>.jpg`` in a
256x256 box. Seeded workflows, so reruns give the same thumbnails on the same machine;
tests/test_example_workflows.py checks that they still match what the workflows make.
"""
from __future__ import annotations

import importlib.util
import io
import json
import sys
import tempfile
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
WORKFLOWS = ROOT / "workflows"
#: the front end's thumbnail box (BaseThumbnail.vue: w-64 h-64, object-contain)
THUMBNAIL_SIDE = 256
JPEG_QUALITY = 90


def load_pack() -> None:
    """Import the pack as ``imagetune`` from this checkout (as the tests and ComfyUI do)."""
    if "imagetune" in sys.modules:
        return
    spec = importlib.util.spec_from_file_location("imagetune", ROOT / "__init__.py",
                                                  submodule_search_locations=[str(ROOT)])
    module = importlib.util.module_from_spec(spec)
    sys.modules["imagetune"] = module
    spec.loader.exec_module(module)


def templates() -> list[Path]:
    """The UI-form workflows ComfyUI lists as the pack's templates (every JSON file in workflows/)."""
    return sorted(p for p in WORKFLOWS.glob("*.json") if isinstance(json.loads(p.read_text()).get("nodes"), list))


def first_saved_image(path: Path, work: Path) -> Image.Image:
    """Run the workflow at ``path`` headless in ``work`` and return the first image it saved."""
    load_pack()
    from imagetune.graph_runtime import ExecutionContext, Runtime
    from imagetune.nodes import default_registry

    (work / "input").mkdir(parents=True, exist_ok=True)
    ctx = ExecutionContext(device="cpu", output_dir=work / "output", input_dir=work / "input")
    result = Runtime(default_registry()).run(path, ctx=ctx)
    saved = [image for ui in result.ui.values() for image in ui.get("images", []) if image.get("type") == "output"]
    if not saved:
        raise SystemExit(f"{path.name} saved no image to make a thumbnail from")
    with Image.open(work / "output" / saved[0]["subfolder"] / saved[0]["filename"]) as image:
        return image.convert("RGB")


def thumbnail(image: Image.Image) -> Image.Image:
    """The centre square of ``image`` at THUMBNAIL_SIDE pixels (the card shows a square)."""
    side = min(image.size)
    left, top = (image.width - side) // 2, (image.height - side) // 2
    square = image.crop((left, top, left + side, top + side))
    return square.resize((THUMBNAIL_SIDE, THUMBNAIL_SIDE), Image.Resampling.LANCZOS)


def make_thumbnail(path: Path) -> Image.Image:
    """The thumbnail of the template at ``path``, made from a fresh headless run of it."""
    with tempfile.TemporaryDirectory(prefix="imagetune-thumbnail-") as work:
        return thumbnail(first_saved_image(path, Path(work)))


def main() -> None:
    for path in templates():
        target = path.with_suffix(".jpg")
        buffer = io.BytesIO()  # encoded whole first: a failed encode leaves the old file
        make_thumbnail(path).save(buffer, format="JPEG", quality=JPEG_QUALITY, subsampling=0)  # 4:4:4 keeps textures
        target.write_bytes(buffer.getvalue())
        print(f"wrote {target.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
