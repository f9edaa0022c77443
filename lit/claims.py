"""What a shapes caption says, and whether it is true of a picture.

A ``Claim`` is what a caption asserts: its things (each a set of allowed shapes and colours), how
the first two stand ("left of", "above", or None: either way round, anywhere) and the allowed
backgrounds. A picture's content is a ``shapes.scene.Scene``. Negations ("not on a white
background", "not a triangle") and omissions ("a circle and a square") are sets larger than one,
so one caption is true of many pictures; tuning uses ``holds_matrix`` to count every true pair as
a positive, not only the pair the caption was written for.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

from ..shapes.dataset import COLOURS, SHAPES
from ..shapes.scene import RELATIONS, Description, Scene

ALL_COLOURS = frozenset(COLOURS)
ALL_SHAPES = frozenset(SHAPES)
_COLOUR_INDEX = {name: i for i, name in enumerate(COLOURS)}
_SHAPE_INDEX = {name: i for i, name in enumerate(SHAPES)}
_RELATION_CODE = {None: 0, **{name: i + 1 for i, name in enumerate(RELATIONS)}}
_MAX_THINGS = 3


@dataclass(frozen=True)
class Slot:
    """One thing a caption names: the shapes and colours it may have."""

    shapes: frozenset[str]
    colours: frozenset[str]

    def __post_init__(self):
        if not self.shapes <= ALL_SHAPES or not self.colours <= ALL_COLOURS:
            raise ValueError(f"slot: expected shapes in {SHAPES} and colours in {tuple(COLOURS)}, got "
                             f"{sorted(self.shapes)} / {sorted(self.colours)}")


@dataclass(frozen=True)
class Claim:
    """What a caption asserts: its things, the relation of the first to the second, the allowed backgrounds."""

    things: tuple[Slot, ...]
    relation: str | None
    backgrounds: frozenset[str]

    def __post_init__(self):
        if not 1 <= len(self.things) <= _MAX_THINGS:
            raise ValueError(f"things: expected 1 to {_MAX_THINGS}, got {len(self.things)}")
        if self.relation not in _RELATION_CODE or (self.relation and len(self.things) != 2):
            raise ValueError(f"relation: expected one of {RELATIONS} between two things, or None, got {self.relation!r}")
        if not self.backgrounds <= ALL_COLOURS:
            raise ValueError(f"backgrounds: expected colours of {tuple(COLOURS)}, got {sorted(self.backgrounds)}")

    def narrowed(self, other: Claim) -> Claim:
        """The claim true exactly where both are (two readings of one caption that disagree)."""
        if len(other.things) != len(self.things) or other.relation != self.relation:
            raise ValueError(f"claims: cannot narrow {self} by a claim of another structure, {other}")
        things = tuple(Slot(a.shapes & b.shapes, a.colours & b.colours) for a, b in zip(self.things, other.things))
        return Claim(things, self.relation, self.backgrounds & other.backgrounds)


def claim_of(description: Description) -> Claim:
    """What ``scene.canonical_text`` of a description says (a colour or background it leaves out may be anything).

    Things that read the same are a count ("two triangles"), whose caption names no relation.
    """
    slots = tuple(Slot(frozenset({t.shape}), frozenset({t.colour}) if t.colour else ALL_COLOURS)
                  for t in description.things)
    backgrounds = frozenset({description.background}) if description.background else ALL_COLOURS
    return Claim(slots, None if description.count > 1 else description.relation, backgrounds)


def holds(claim: Claim, scene: Scene) -> bool:
    """Whether ``claim`` is true of a picture showing ``scene``."""
    return bool(holds_matrix([claim], [scene])[0, 0])


def holds_matrix(claims: list[Claim], scenes: list[Scene]) -> np.ndarray:
    """Truth [len(claims), len(scenes)] of every claim about every picture's content.

    True when the picture has exactly the claim's number of things, a background it allows, and
    its things fit the slots: in order when the claim names a relation (which must be the
    picture's), in any order when it names none.
    """
    count, shape, colour, relation, background = _encode(scenes)
    truth = np.zeros((len(claims), len(scenes)), bool)
    for row, claim in enumerate(claims):
        ok = (count == len(claim.things)) & _member(claim.backgrounds, _COLOUR_INDEX)[background]
        if claim.relation is not None:
            ok &= relation == _RELATION_CODE[claim.relation]
        orders = [range(len(claim.things))] if claim.relation else itertools.permutations(range(len(claim.things)))
        fits = np.zeros(len(scenes), bool)
        for order in orders:
            fit = np.ones(len(scenes), bool)
            for slot_index, thing_index in enumerate(order):
                slot = claim.things[slot_index]
                fit &= _member(slot.shapes, _SHAPE_INDEX)[shape[:, thing_index]]
                fit &= _member(slot.colours, _COLOUR_INDEX)[colour[:, thing_index]]
            fits |= fit
        truth[row] = ok & fits
    return truth


def _member(allowed: frozenset[str], index: dict[str, int]) -> np.ndarray:
    """A lookup table: entry i is True when name i is allowed; the last entry (padding, index -1) is False."""
    table = np.zeros(len(index) + 1, bool)
    table[[index[name] for name in allowed]] = True
    return table


def _encode(scenes: list[Scene]) -> tuple[np.ndarray, ...]:
    """Scenes as arrays: thing count, shape and colour per thing (-1 past the last), relation code, background."""
    n = len(scenes)
    shape, colour = np.full((n, _MAX_THINGS), -1), np.full((n, _MAX_THINGS), -1)
    for row, scene in enumerate(scenes):
        for j, thing in enumerate(scene.things):
            shape[row, j], colour[row, j] = _SHAPE_INDEX[thing.shape], _COLOUR_INDEX[thing.colour]
    count = np.array([len(s.things) for s in scenes], int)
    relation = np.array([_RELATION_CODE[s.relation] for s in scenes], int)
    background = np.array([_COLOUR_INDEX[s.background] for s in scenes], int)
    return count, shape, colour, relation, background
