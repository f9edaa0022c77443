"""The sweep's contact sheet: every job's first image in a grid, labelled with its varied values.

Two inputs varied as a product give a table (first input down, second across, values on the
edges); anything else gives a near-square grid with each cell captioned.
"""
from __future__ import annotations

import math
from pathlib import Path

from .sweep_spec import describe_job, short_label

CELL = 160            # thumbnail side in pixels
MAX_SIDE = 8192       # the sheet's largest side; cells shrink to fit
MAX_CELLS = 4096      # more jobs than this: the first MAX_CELLS, and the sheet says so
_IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp")


def first_image(out_dir: Path, row: dict | None):
    """The first image a finished job saved, as a PIL image, or None."""
    from PIL import Image

    if not row or row.get("status") != "done":
        return None
    for name in row.get("outputs", []):
        if name.lower().endswith(_IMAGE_SUFFIXES):
            try:
                with Image.open(Path(out_dir) / name) as picture:
                    picture.draft("RGB", (CELL, CELL))
                    return picture.convert("RGB")
            except (OSError, ValueError):
                return None
    return None


def _font(size: int):
    from PIL import ImageFont

    return ImageFont.load_default(size=size)


def _fit(draw, text: str, font, width: int) -> str:
    """``text`` cut with an ellipsis to fit ``width`` pixels."""
    if draw.textlength(text, font=font) <= width:
        return text
    while text and draw.textlength(text + "…", font=font) > width:
        text = text[:-1]
    return text + "…"


def make_contact_sheet(out_dir: Path, vary: dict, zipped: bool, jobs: list[dict], rows: dict[int, dict],
                       target: Path) -> dict[int, tuple[int, int, int, int]]:
    """Draw the contact sheet of a sweep's jobs into ``target`` (a PNG); return each job's cell box."""
    from PIL import Image, ImageDraw

    from .atomic import write_bytes_atomically

    keys = list(vary)
    table = len(keys) == 2 and not zipped and len(jobs) <= MAX_CELLS
    shown = jobs[:MAX_CELLS]
    if table:
        n_rows, n_cols = len(vary[keys[0]]), len(vary[keys[1]])
    else:
        n_cols = max(1, math.ceil(math.sqrt(len(shown))))
        n_rows = max(1, math.ceil(len(shown) / n_cols))
    cell = max(32, min(CELL, MAX_SIDE // max(n_cols + 1, n_rows + 1)))
    font = _font(max(9, cell // 12))
    line = font.size + 4
    left = cell if table else 0                       # row labels
    top = line * (2 if table else 1)                  # title (+ column labels)
    caption = 0 if table else line
    note = line if len(jobs) > MAX_CELLS else 0
    sheet = Image.new("RGB", (left + n_cols * cell, top + n_rows * (cell + caption) + note), "white")
    draw = ImageDraw.Draw(sheet)
    title = (f"rows: {short_label(keys[0], keys)}, columns: {short_label(keys[1], keys)} ({len(jobs)} jobs)"
             if table else f"{len(jobs)} jobs")
    draw.text((4, 2), _fit(draw, title, font, sheet.width - 8), fill="black", font=font)
    if table:
        for c, value in enumerate(vary[keys[1]]):
            label = f"{short_label(keys[1], keys)}={value}"
            draw.text((left + c * cell + 4, line + 2), _fit(draw, label, font, cell - 8), fill="black", font=font)
        for r, value in enumerate(vary[keys[0]]):
            _wrap(draw, str(value), font, (4, top + r * cell + 4), cell - 8, cell - 8)
    boxes = {}
    for index, overrides in enumerate(shown):
        r, c = divmod(index, n_cols)
        x, y = left + c * cell, top + r * (cell + caption)
        boxes[index] = (x, y, x + cell, y + cell)
        _paste_cell(sheet, draw, first_image(out_dir, rows.get(index)), rows.get(index), (x, y), cell, font)
        if not table:
            label = describe_job(overrides) or f"job {index}"
            draw.text((x + 2, y + cell + 1), _fit(draw, label, font, cell - 4), fill="black", font=font)
    if note:
        draw.text((4, sheet.height - line), f"showing the first {MAX_CELLS} of {len(jobs)} jobs",
                  fill="black", font=font)
    import io

    buffer = io.BytesIO()
    sheet.save(buffer, format="PNG", compress_level=6)
    write_bytes_atomically(Path(target), buffer.getvalue())
    return boxes


def _paste_cell(sheet, draw, picture, row, origin, cell, font) -> None:
    x, y = origin
    if picture is None:
        draw.rectangle((x + 1, y + 1, x + cell - 2, y + cell - 2), fill=(225, 225, 225))
        status = "failed" if row and row.get("status") == "failed" else "not run" if not row else "no image"
        draw.text((x + 6, y + cell // 2 - font.size), status, fill=(160, 0, 0), font=font)
        return
    from PIL import Image

    scale = (cell - 4) / max(picture.width, picture.height)  # small images are enlarged too
    size = (max(1, round(picture.width * scale)), max(1, round(picture.height * scale)))
    picture = picture.resize(size, Image.Resampling.LANCZOS if scale < 1 else Image.Resampling.NEAREST)
    sheet.paste(picture, (x + (cell - picture.width) // 2, y + (cell - picture.height) // 2))


def _wrap(draw, text: str, font, origin, width: int, height: int) -> None:
    """Draw ``text`` word-wrapped inside a box (row labels can be whole prompts)."""
    x, y = origin
    words, line = text.split(), ""
    bottom = y + height - font.size
    for word in words:
        trial = f"{line} {word}".strip()
        if draw.textlength(trial, font=font) <= width or not line:
            line = trial
            continue
        draw.text((x, y), _fit(draw, line, font, width), fill="black", font=font)
        y += font.size + 2
        line = word
        if y > bottom:
            return
    if line:
        draw.text((x, y), _fit(draw, line, font, width), fill="black", font=font)
