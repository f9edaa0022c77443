"""The procedural shapes data set: a flat-coloured shape on a flat background, with a caption.

Everything is seeded: ``make_dataset(n, seed, size)`` returns the same images and captions on
every machine. A fixed list of (shape, colour, background) combinations, ``HELD_OUT``, never
appears in training, so a model's score on them measures composition, not memory.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

SHAPES = ("circle", "square", "triangle")

# Eight colours far apart in RGB, so a flat render and the analyzer never confuse two of them.
COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (220, 30, 30),
    "orange": (245, 140, 20),
    "yellow": (240, 220, 40),
    "green": (30, 160, 60),
    "blue": (30, 70, 220),
    "purple": (140, 50, 180),
    "white": (245, 245, 245),
    "black": (20, 20, 20),
}

# Caption templates; variant 3 swaps the word order so the model learns to bind by role, not position.
TEMPLATES = (
    "a {colour} {shape} on a {background} background",
    "a {colour} {shape} on {background}",
    "{colour} {shape}, {background} background",
    "a {background} background with a {colour} {shape}",
)

SUPERSAMPLE = 4  # draw at 4x and downsample, for anti-aliased edges


@dataclass(frozen=True)
class ShapeSpec:
    """One combination: a ``shape`` in ``colour`` on a ``background`` colour (names from SHAPES/COLOURS)."""

    shape: str
    colour: str
    background: str

    def __post_init__(self):
        if self.shape not in SHAPES:
            raise ValueError(f"shape: expected one of {SHAPES}, got {self.shape!r}")
        for field in ("colour", "background"):
            if getattr(self, field) not in COLOURS:
                raise ValueError(f"{field}: expected one of {tuple(COLOURS)}, got {getattr(self, field)!r}")
        if self.colour == self.background:
            raise ValueError(f"background: expected a colour other than the shape's, got {self.background!r}")


# Held out of training: every shape, colour and background still appears in training, just not
# in these combinations. Each colour is held out twice as a shape colour and twice as a background.
HELD_OUT: tuple[ShapeSpec, ...] = (
    ShapeSpec("circle", "red", "green"),
    ShapeSpec("square", "red", "purple"),
    ShapeSpec("triangle", "orange", "blue"),
    ShapeSpec("circle", "orange", "white"),
    ShapeSpec("square", "yellow", "black"),
    ShapeSpec("triangle", "yellow", "red"),
    ShapeSpec("circle", "green", "orange"),
    ShapeSpec("square", "green", "yellow"),
    ShapeSpec("triangle", "blue", "white"),
    ShapeSpec("circle", "blue", "yellow"),
    ShapeSpec("square", "purple", "orange"),
    ShapeSpec("triangle", "purple", "green"),
    ShapeSpec("circle", "white", "black"),
    ShapeSpec("square", "white", "blue"),
    ShapeSpec("triangle", "black", "purple"),
    ShapeSpec("circle", "black", "red"),
)


def all_specs() -> list[ShapeSpec]:
    """Every valid combination (3 shapes x 8 colours x 7 other backgrounds = 168), in a fixed order."""
    return [ShapeSpec(s, c, b) for s, c, b in itertools.product(SHAPES, COLOURS, COLOURS) if c != b]


def training_specs() -> list[ShapeSpec]:
    """The combinations used in training: all of them except HELD_OUT."""
    held = set(HELD_OUT)
    return [spec for spec in all_specs() if spec not in held]


def held_out_specs() -> list[ShapeSpec]:
    """The held-out combinations, in HELD_OUT order."""
    return list(HELD_OUT)


def caption(spec: ShapeSpec, variant: int = 0) -> str:
    """The caption of ``spec`` in phrasing ``variant`` (taken modulo the number of templates)."""
    return TEMPLATES[variant % len(TEMPLATES)].format(shape=spec.shape, colour=spec.colour,
                                                       background=spec.background)


def all_captions(specs: list[ShapeSpec]) -> list[str]:
    """Every caption variant of every spec, spec-major (index = spec_index * len(TEMPLATES) + variant)."""
    return [caption(spec, v) for spec in specs for v in range(len(TEMPLATES))]


def render(spec: ShapeSpec, size: int = 64, rng: np.random.Generator | None = None) -> Image.Image:
    """Draw ``spec`` as a ``size`` x ``size`` RGB image; ``rng`` jitters scale and position slightly.

    Without ``rng`` the shape is centred at its nominal size (a canonical picture).
    """
    big = size * SUPERSAMPLE
    scale, dx, dy = (0.55, 0.0, 0.0) if rng is None else (
        rng.uniform(0.45, 0.65), rng.uniform(-0.08, 0.08), rng.uniform(-0.08, 0.08))
    half = scale * big / 2
    cx, cy = big / 2 + dx * big, big / 2 + dy * big
    image = Image.new("RGB", (big, big), COLOURS[spec.background])
    draw = ImageDraw.Draw(image)
    fill = COLOURS[spec.colour]
    if spec.shape == "circle":
        draw.ellipse((cx - half, cy - half, cx + half, cy + half), fill=fill)
    elif spec.shape == "square":
        side = half * 0.9  # a square of equal width looks bigger than the circle; even them out
        draw.rectangle((cx - side, cy - side, cx + side, cy + side), fill=fill)
    else:
        draw.polygon(triangle_points(cx, cy, half), fill=fill)
    return image.resize((size, size), Image.Resampling.BOX)


def triangle_points(cx: float, cy: float, half: float) -> list[tuple[float, float]]:
    """An upright isosceles triangle filling the box of half-width ``half`` around (cx, cy)."""
    return [(cx, cy - half), (cx + half, cy + half), (cx - half, cy + half)]


def make_dataset(n: int, seed: int, size: int = 64, held_out: bool = False
                 ) -> tuple[np.ndarray, list[str], list[ShapeSpec]]:
    """``n`` seeded samples: (uint8 images [n, size, size, 3], captions, specs).

    Specs cycle through the training combinations (or HELD_OUT when ``held_out``) in a seeded
    shuffle, so every combination appears about equally often; caption variants are drawn at random.
    """
    rng = np.random.default_rng(seed)
    pool = held_out_specs() if held_out else training_specs()
    specs: list[ShapeSpec] = []
    while len(specs) < n:
        specs.extend(pool[i] for i in rng.permutation(len(pool)))
    specs = specs[:n]
    images = np.stack([np.asarray(render(spec, size, rng)) for spec in specs]) if n else \
        np.zeros((0, size, size, 3), np.uint8)
    captions = [caption(spec, int(rng.integers(len(TEMPLATES)))) for spec in specs]
    return images, captions, specs
