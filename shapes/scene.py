"""The two-object world of #12: one to three flat shapes on a background, with a relation or a count.

A ``Scene`` is what a picture holds: its things (shape + colour each), how the first two stand to
each other (``relation``: "left of" or "above", the first thing being left of / above the second;
None: anywhere) and the background colour. Counting scenes repeat one thing two or three times.
``canonical(scene)`` is the one caption the generator is trained on for it; a ``Description``
is what a prompt says (a colour or the background may be left out) and ``canonical_text`` writes
it in the same words. ``render`` draws a scene with seeded jitter, and a fixed share of pairs and
counts (``is_held_out``) never appears in training.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

from .dataset import COLOURS, SHAPES, SUPERSAMPLE, ShapeSpec, triangle_points
from .dataset import render as dataset_render

RELATIONS = ("left of", "above")
COUNT_WORDS = {2: "two", 3: "three"}
PLURALS = {"circle": "circles", "square": "squares", "triangle": "triangles"}


@dataclass(frozen=True)
class Thing:
    """One object: a ``shape`` in a ``colour`` (None in a description that leaves the colour out)."""

    shape: str
    colour: str | None

    def __post_init__(self):
        if self.shape not in SHAPES:
            raise ValueError(f"shape: expected one of {SHAPES}, got {self.shape!r}")
        if self.colour is not None and self.colour not in COLOURS:
            raise ValueError(f"colour: expected one of {tuple(COLOURS)} or None, got {self.colour!r}")

    def words(self) -> str:
        """'red circle', or 'circle' without a colour."""
        return f"{self.colour} {self.shape}" if self.colour else self.shape


@dataclass(frozen=True)
class Description:
    """What a prompt asks for: things, the relation of the first two, and the background (None: any)."""

    things: tuple[Thing, ...]
    relation: str | None = None
    background: str | None = None

    def __post_init__(self):
        if not 1 <= len(self.things) <= 3:
            raise ValueError(f"things: expected 1 to 3, got {len(self.things)}")
        if self.relation is not None and (self.relation not in RELATIONS or len(self.things) != 2):
            raise ValueError(f"relation: expected one of {RELATIONS} between exactly two things, got {self.relation!r}")
        if len(self.things) == 3 and len(set(self.things)) != 1:
            raise ValueError("things: three things must be one thing counted three times")
        if self.background is not None and self.background not in COLOURS:
            raise ValueError(f"background: expected one of {tuple(COLOURS)} or None, got {self.background!r}")
        if self.background is not None and self.background in {t.colour for t in self.things}:
            raise ValueError(f"background: expected a colour other than the things', got {self.background!r}")

    @property
    def count(self) -> int:
        """How many of one thing a counting scene shows (1 when the things differ or there is one)."""
        return len(self.things) if len(self.things) > 1 and len(set(self.things)) == 1 else 1

    @property
    def kind(self) -> str:
        """'single', 'count' (one thing repeated), 'position' (two things and a relation) or 'pair'."""
        if len(self.things) == 1:
            return "single"
        if self.count > 1:
            return "count"
        return "position" if self.relation else "pair"


class Scene(Description):
    """A Description with every colour and the background named: what a picture holds."""

    def __post_init__(self):
        super().__post_init__()
        if self.background is None or any(t.colour is None for t in self.things):
            raise ValueError("a scene names every colour and its background")


def single(spec: ShapeSpec) -> Scene:
    """The one-object scene of a first-world ``ShapeSpec``."""
    return Scene((Thing(spec.shape, spec.colour),), None, spec.background)


def canonical_text(description: Description) -> str:
    """The caption in the generator's own words: 'a red circle to the left of a blue square on a white background'."""
    things = description.things
    if description.count > 1:
        body = f"{COUNT_WORDS[description.count]} " + (
            f"{things[0].colour} " if things[0].colour else "") + PLURALS[things[0].shape]
    elif len(things) == 2:
        link = f" to the {description.relation} " if description.relation == "left of" else (
            " above " if description.relation == "above" else " and ")
        body = article(things[0].words()) + link + article(things[1].words())
    else:
        body = article(things[0].words())
    return body + (" on " + article(f"{description.background} background") if description.background else "")


def canonical(scene: Description) -> str:
    """``canonical_text`` of a scene (the name the training data uses)."""
    return canonical_text(scene)


def omissions(scene: Scene) -> list[Description]:
    """The scene said four ways: everything named (listed twice: 2 draws in 5), no background, no colours, neither."""
    bare = tuple(Thing(t.shape, None) for t in scene.things)
    return [scene, scene, Description(scene.things, scene.relation, None),
            Description(bare, scene.relation, scene.background), Description(bare, scene.relation, None)]


def article(words: str) -> str:
    """'a red circle', 'an orange square'."""
    return ("an " if words[0] in "aeiou" else "a ") + words


def all_things() -> list[Thing]:
    """Every (shape, colour) thing, in a fixed order (24 of them)."""
    return [Thing(s, c) for s, c in itertools.product(SHAPES, COLOURS)]


def is_held_out(scene: Description) -> bool:
    """Whether training never shows this scene (one pair in seven, one count in five; single objects: never here).

    Decided by the ordered pair of things (and the count), not by background or relation, so a
    held-out pair is new in every arrangement: the score on it measures composition, not memory.
    """
    everything = all_things()
    if scene.kind == "single":
        return False
    first = everything.index(Thing(scene.things[0].shape, scene.things[0].colour))
    if scene.kind == "count":
        return (first * 3 + scene.count) % 5 == 0
    second = everything.index(Thing(scene.things[1].shape, scene.things[1].colour))
    low, high = sorted((first, second))  # a held-out pair is held out in both orders
    return (low * 5 + high * 3) % 7 == 0


def random_scene(rng: np.random.Generator, kind: str, held_out: bool = False) -> Scene:
    """A uniformly drawn scene of ``kind`` ('pair', 'position' or 'count'), held out or from training."""
    everything = all_things()
    while True:
        first = everything[int(rng.integers(len(everything)))]
        if kind == "count":
            things = (first,) * int(rng.integers(2, 4))
            relation = None
        else:
            second = everything[int(rng.integers(len(everything)))]
            if second.colour == first.colour and second.shape == first.shape:
                continue
            things, relation = (first, second), (RELATIONS[int(rng.integers(2))] if kind == "position" else None)
        used = {t.colour for t in things}
        backgrounds = [c for c in COLOURS if c not in used]
        scene = Scene(things, relation, backgrounds[int(rng.integers(len(backgrounds)))])
        if is_held_out(scene) == held_out:
            return scene


def layout(scene: Description, rng: np.random.Generator | None) -> list[tuple[float, float, float]]:
    """(centre x, centre y, half size) of each thing, as fractions of the image side.

    Two things sit in opposite halves (left/right for "left of", top/bottom for "above", either for
    no relation); three sit in a row or a column. Jitter keeps them apart and inside the picture.
    """
    jitter = (lambda lo, hi: (lo + hi) / 2) if rng is None else (lambda lo, hi: float(rng.uniform(lo, hi)))
    n = len(scene.things)
    if n == 1:
        return [(0.5 + jitter(-0.08, 0.08), 0.5 + jitter(-0.08, 0.08), jitter(0.45, 0.65) / 2)]
    vertical = scene.relation == "above" or (scene.relation is None and rng is not None and rng.random() < 0.5)
    # As large as fits: the 16x16 latent blurs small shapes (a VAE round trip lost a fifth of 17-22 px pairs).
    half = jitter(0.16, 0.20) if n == 2 else jitter(0.12, 0.14)
    spots = (0.26, 0.74) if n == 2 else (0.18, 0.5, 0.82)
    places = []
    slack = 0.02 if n == 2 else 0.015  # keep a gap between neighbours
    for along in spots:
        a, b = along + jitter(-slack, slack), 0.5 + jitter(-0.15, 0.15)
        places.append((b, a, half) if vertical else (a, b, half))
    return places


def render(scene: Scene, size: int = 64, rng: np.random.Generator | None = None,
           places: list[tuple[float, float, float]] | None = None) -> Image.Image:
    """Draw ``scene`` as a ``size`` x ``size`` RGB image (no ``rng``: the canonical layout; ``places``: this one)."""
    if len(scene.things) == 1:  # exactly the one-object world's picture
        thing = scene.things[0]
        return dataset_render(ShapeSpec(thing.shape, thing.colour, scene.background), size, rng)
    big = size * SUPERSAMPLE
    image = Image.new("RGB", (big, big), COLOURS[scene.background])
    draw = ImageDraw.Draw(image)
    for thing, (x, y, half) in zip(scene.things, places or layout(scene, rng)):
        draw_thing(draw, thing, x * big, y * big, half * big)
    return image.resize((size, size), Image.Resampling.BOX)


def draw_thing(draw: ImageDraw.ImageDraw, thing: Thing, cx: float, cy: float, half: float) -> None:
    """One flat shape centred at (cx, cy), in pixels, the same way the one-object world draws it."""
    fill = COLOURS[thing.colour]
    if thing.shape == "circle":
        draw.ellipse((cx - half, cy - half, cx + half, cy + half), fill=fill)
    elif thing.shape == "square":
        side = half * 0.9
        draw.rectangle((cx - side, cy - side, cx + side, cy + side), fill=fill)
    else:
        draw.polygon(triangle_points(cx, cy, half), fill=fill)
