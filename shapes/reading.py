"""What a prompt says, slot by slot (a ``Reading``), and the fixed rules that make it drawable.

A Reading is what the prompt-understanding model predicts: the things it names (a shape or none,
a colour or none), how two of them stand (``relation``, in canonical order: the first thing is
left of / above the second), a count, the background (or none) and what it negates (a background
colour, a shape). ``Reading.description()`` turns it into a ``scene.Description`` the generator's
canonical caption can say, by rules fixed here:

- a negated background that names no background becomes the first of ``BACKGROUND_ORDER`` that
  is neither negated nor a thing's colour;
- a thing with no shape (only "not a triangle" said) gets the first of ``SHAPES`` not negated;
- a background that is also a thing's colour (an inconsistent prediction) is left out;
- two equal things make a count of two (no relation), as ``scene.Description`` counts them.
"""
from __future__ import annotations

from dataclasses import dataclass

from .dataset import COLOURS, SHAPES
from .scene import RELATIONS, Description, Thing

#: the background a negated one is replaced by: the first of these allowed (white and black first:
#: the plainest, and each the other's fallback)
BACKGROUND_ORDER = ("white", "black") + tuple(c for c in COLOURS if c not in ("white", "black"))
KINDS = ("single", "pair", "position", "count")


@dataclass(frozen=True)
class Mention:
    """One named thing: its ``shape`` and ``colour``, either one None when the prompt leaves it out."""

    shape: str | None
    colour: str | None

    def __post_init__(self):
        if self.shape is not None and self.shape not in SHAPES:
            raise ValueError(f"shape: expected one of {SHAPES} or None, got {self.shape!r}")
        if self.colour is not None and self.colour not in COLOURS:
            raise ValueError(f"colour: expected one of {tuple(COLOURS)} or None, got {self.colour!r}")


@dataclass(frozen=True)
class Reading:
    """The slots of a prompt: ``first`` (and ``second`` for pairs), relation, count, background, negations."""

    first: Mention
    second: Mention | None = None
    relation: str | None = None
    count: int = 1
    background: str | None = None
    not_background: str | None = None
    not_shape: str | None = None

    def __post_init__(self):
        if self.relation is not None and (self.relation not in RELATIONS or self.second is None):
            raise ValueError(f"relation: expected one of {RELATIONS} between two things, got {self.relation!r}")
        if self.count not in (1, 2, 3) or (self.count > 1 and self.second is not None):
            raise ValueError(f"count: expected 1, or 2-3 of one thing, got {self.count} (second {self.second})")
        for field in ("background", "not_background"):
            value = getattr(self, field)
            if value is not None and value not in COLOURS:
                raise ValueError(f"{field}: expected one of {tuple(COLOURS)} or None, got {value!r}")
        if self.not_shape is not None and self.not_shape not in SHAPES:
            raise ValueError(f"not_shape: expected one of {SHAPES} or None, got {self.not_shape!r}")

    @property
    def kind(self) -> str:
        """'single', 'pair', 'position' (a pair with a relation) or 'count'."""
        if self.count > 1:
            return "count"
        if self.second is None:
            return "single"
        return "position" if self.relation else "pair"

    @property
    def mentions(self) -> tuple[Mention, ...]:
        """The named things, first first."""
        return (self.first,) if self.second is None else (self.first, self.second)

    def description(self) -> Description:
        """The Description this reading asks the generator for (the module docstring's rules)."""
        things = tuple(Thing(m.shape or first_shape_but(self.not_shape), m.colour) for m in self.mentions)
        if self.count > 1:
            things = things * self.count
        colours = {t.colour for t in things}
        background = self.background if self.background not in colours else None
        if background is None and self.not_background is not None:
            background = next(c for c in BACKGROUND_ORDER if c != self.not_background and c not in colours)
        relation = self.relation if len(set(things)) == len(things) else None
        return Description(things, relation, background)

    @classmethod
    def of(cls, description: Description, not_background: str | None = None,
           not_shape: str | None = None) -> "Reading":
        """The reading of a prompt that says ``description`` (plus these negations) in so many words."""
        mentions = [Mention(t.shape, t.colour) for t in description.things]
        if description.count > 1:
            return cls(mentions[0], None, None, description.count, description.background, not_background, not_shape)
        second = mentions[1] if len(mentions) == 2 else None
        return cls(mentions[0], second, description.relation, 1, description.background, not_background, not_shape)


def first_shape_but(excluded: str | None) -> str:
    """The first of SHAPES that is not ``excluded``."""
    return next(s for s in SHAPES if s != excluded)
