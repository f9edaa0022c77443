"""A deterministic judge of two-object pictures: every shape in it, with its colour and place.

The background is found as in ``analyzer``; every pixel clearly off the background (after the same
3x3 majority filter) takes its nearest palette colour, and each 8-connected region of one colour
that is large enough is one object. An object's kind is the ideal shape fitted to its box with the
best overlap (``analyzer.shape_ious``), its place the centre of its pixels. Thin rims where an
anti-aliased edge passes through a third colour are too small to count.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .analyzer import _NAMES, _PALETTE, as_array, background_and_rest, shape_ious

MIN_AREA = 24  # pixels at 64x64: the smallest drawn object (three in a row) covers ~150
OPENING = np.ones((3, 3), np.uint8)


@dataclass(frozen=True)
class Seen:
    """One object the judge found: kind, colour, centre (fractions of the side) and area in pixels."""

    shape: str
    colour: str
    x: float
    y: float
    area: int


@dataclass(frozen=True)
class SceneAnalysis:
    """Everything found in one picture."""

    background: str
    objects: tuple[Seen, ...]

    def of(self, shape: str | None = None, colour: str | None = None) -> list[Seen]:
        """The objects of that kind and colour (None: any)."""
        return [o for o in self.objects if shape in (None, o.shape) and colour in (None, o.colour)]


def analyze_scene(image) -> SceneAnalysis:
    """Find the background and every object of one image (see the module docstring)."""
    import cv2

    pixels = as_array(image)
    background, foreground = background_and_rest(pixels)
    nearest = np.argmin(((pixels[:, :, None, :] - _PALETTE) ** 2).sum(-1), axis=-1)
    found = []
    for index, name in enumerate(_NAMES):
        mask = (foreground & (nearest == index)).astype(np.uint8)
        if name == background or mask.sum() < MIN_AREA:
            continue
        raw, mask = mask, cv2.morphologyEx(mask, cv2.MORPH_OPEN, OPENING)  # drops one-pixel rims of blended edges
        count, labels, stats, centroids = cv2.connectedComponentsWithStats(mask, connectivity=8)
        for label in range(1, count):
            if stats[label, cv2.CC_STAT_AREA] < MIN_AREA:
                continue
            # The opening rounds small corners off; judge the kind on the unopened pixels around it.
            core = (labels == label).astype(np.uint8)
            region = (cv2.dilate(core, OPENING) > 0) & (raw > 0)
            ious = shape_ious(region)
            x, y = centroids[label]
            found.append(Seen(max(ious, key=ious.get), name, float((x + 0.5) / region.shape[1]),
                              float((y + 0.5) / region.shape[0]), int(stats[label, cv2.CC_STAT_AREA])))
    found.sort(key=lambda o: (o.x, o.y))
    return SceneAnalysis(background, tuple(found))
