"""A deterministic judge of shapes images: which shape, which colour, which background.

The background is the palette colour nearest the median of the image border; the shape is the
largest connected region of pixels clearly farther from the background than the palette's
nearest other colour would allow (after a 3x3 majority filter against speckle); its colour is the palette colour nearest the median of those pixels; its kind is
the ideal shape (circle, square, triangle) whose mask, fitted to the shape's bounding box,
overlaps it best (intersection over union).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

from .dataset import COLOURS, SHAPES, ShapeSpec

ANALYSIS_SIZE = 64
_NAMES = tuple(COLOURS)
_PALETTE = np.array([COLOURS[n] for n in _NAMES], np.float32)


@dataclass(frozen=True)
class Analysis:
    """What the analyzer saw; ``shape``/``colour`` are None when no shape stands out."""

    shape: str | None
    colour: str | None
    background: str
    ious: dict[str, float]

    def matches(self, spec: ShapeSpec) -> dict[str, bool]:
        """Per-attribute agreement with ``spec``, plus "all" for all three."""
        got = {"shape": self.shape == spec.shape, "colour": self.colour == spec.colour,
               "background": self.background == spec.background}
        return {**got, "all": all(got.values())}


def as_array(image) -> np.ndarray:
    """A PIL image, uint8 [H, W, 3] array, or float [H, W, 3] array in 0..1 -> float32 [64, 64, 3] in 0..255."""
    if not isinstance(image, Image.Image):
        array = np.asarray(image)
        if array.dtype != np.uint8:
            array = (np.clip(array, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
        image = Image.fromarray(array)
    image = image.convert("RGB")
    if image.size != (ANALYSIS_SIZE, ANALYSIS_SIZE):
        image = image.resize((ANALYSIS_SIZE, ANALYSIS_SIZE), Image.Resampling.BOX)
    return np.asarray(image, np.float32)


def nearest_colour(rgb: np.ndarray) -> str:
    """Name of the palette colour nearest ``rgb`` (Euclidean in RGB)."""
    return _NAMES[int(np.argmin(((_PALETTE - rgb) ** 2).sum(-1)))]


def background_and_rest(pixels: np.ndarray) -> tuple[str, np.ndarray]:
    """The background (palette colour nearest the border median) and the majority-filtered mask of pixels off it."""
    border = np.concatenate([pixels[0], pixels[-1], pixels[:, 0], pixels[:, -1]])
    background = nearest_colour(np.median(border, axis=0))
    bg_rgb = _PALETTE[_NAMES.index(background)]
    distance = np.sqrt(((pixels - bg_rgb) ** 2).sum(-1))
    # Half the distance to the closest other palette colour separates "background" from "not".
    others = np.sqrt(((_PALETTE - bg_rgb) ** 2).sum(-1))
    return background, majority_filter(distance > 0.5 * np.sort(others)[1])


def analyze(image) -> Analysis:
    """Decide shape, colour and background of one image (see the module docstring)."""
    pixels = as_array(image)
    background, rest = background_and_rest(pixels)
    mask = largest_component(rest)
    if mask.sum() < 16:
        return Analysis(None, None, background, {})
    colour = nearest_colour(np.median(pixels[mask], axis=0))
    ious = shape_ious(mask)
    return Analysis(max(ious, key=ious.get), colour, background, ious)


def majority_filter(mask: np.ndarray) -> np.ndarray:
    """Each pixel takes the majority vote of its 3x3 neighbourhood (drops speckles, fills pinholes)."""
    padded = np.pad(mask.astype(np.int32), 1, mode="edge")
    h, w = mask.shape
    votes = sum(padded[dy:dy + h, dx:dx + w] for dy in range(3) for dx in range(3))
    return votes >= 5


def largest_component(mask: np.ndarray) -> np.ndarray:
    """The largest 4-connected region of ``mask`` (stray blobs would stretch the bounding box)."""
    labels = np.zeros(mask.shape, np.int32)
    best, best_size, current = 0, 0, 0
    for start in zip(*np.nonzero(mask)):
        if labels[start]:
            continue
        current += 1
        labels[start], stack, size = current, [start], 0
        while stack:
            y, x = stack.pop()
            size += 1
            for ny, nx in ((y - 1, x), (y + 1, x), (y, x - 1), (y, x + 1)):
                if 0 <= ny < mask.shape[0] and 0 <= nx < mask.shape[1] and mask[ny, nx] and not labels[ny, nx]:
                    labels[ny, nx] = current
                    stack.append((ny, nx))
        if size > best_size:
            best, best_size = current, size
    return labels == best if best else mask


def shape_ious(mask: np.ndarray) -> dict[str, float]:
    """IoU of ``mask`` with each ideal shape fitted to the mask's bounding box."""
    ys, xs = np.nonzero(mask)
    top, bottom, left, right = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    yy, xx = np.mgrid[0:mask.shape[0], 0:mask.shape[1]] + 0.5
    u = (xx - left) / (right - left)  # 0..1 across the box
    v = (yy - top) / (bottom - top)
    inside = (u >= 0) & (u <= 1) & (v >= 0) & (v <= 1)
    ideal = {
        "circle": (u - 0.5) ** 2 + (v - 0.5) ** 2 <= 0.25,
        "square": inside,
        "triangle": inside & (np.abs(u - 0.5) <= v / 2),
    }
    return {name: float((ideal[name] & mask).sum() / (ideal[name] | mask).sum()) for name in SHAPES}
