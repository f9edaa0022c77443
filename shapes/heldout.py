"""The committed held-out evaluation list: held-out combinations in wordings training never sees.

``prompts()`` enumerates (kind, prompt, target, seed) deterministically over the 16 held-out
combinations (``dataset.HELD_OUT``). Kinds: the canonical caption; the training language (its
synonyms, orders and fillers, on combinations it never saw); then, in the held-out language of
``language.HELD_OUT`` (words, templates and fillers training never sees), colour words, shape
words, word orders, fillers and all of them at once; negation of the background or the shape in
the training's and in held-out phrasing; and colour + shape with no background named.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import dataset as ds
from .analyzer import Analysis
from .language import HELD_OUT, TRAIN, Language, full_caption, with_articles

UNSEEN = ("unseen colour words", "unseen shape words", "unseen word orders", "unseen fillers", "all unseen")
NEGATION = ("not background, training phrasing", "not background, unseen phrasing",
            "not shape, training phrasing", "not shape, unseen phrasing")


@dataclass(frozen=True)
class Target:
    """What a prompt asks for: a named shape/colour/background, or one it must not be (None: anything)."""

    shape: str | None
    colour: str
    background: str | None
    not_shape: str | None = None
    not_background: str | None = None

    def check(self, seen: Analysis) -> dict[str, bool]:
        """Per-attribute agreement of the analyzer's ``seen`` with this target, plus "all"."""
        shape = seen.shape == self.shape if self.shape else seen.shape not in (None, self.not_shape)
        background = (seen.background == self.background if self.background
                      else seen.background != self.not_background)
        got = {"shape": shape, "colour": seen.colour == self.colour, "background": background}
        return {**got, "all": all(got.values())}


@dataclass(frozen=True)
class Prompt:
    kind: str
    text: str
    target: Target
    seed: int


def named(spec: ds.ShapeSpec) -> Target:
    """The target of a caption naming all three of ``spec``."""
    return Target(spec.shape, spec.colour, spec.background)


def negated_colour(spec: ds.ShapeSpec) -> str:
    """The issue's example colour to negate ("white"), or black for a white shape."""
    return "white" if spec.colour != "white" else "black"


def other_shape(spec: ds.ShapeSpec, k: int) -> str:
    """The k-th (mod 2) shape other than the spec's."""
    return [s for s in ds.SHAPES if s != spec.shape][k % 2]


def prompts(held_out: Language = HELD_OUT) -> list[Prompt]:
    """Every prompt of the held-out evaluation in the held-out language ``held_out`` (``language.HELD_OUT``
    or the second list, ``HELD_OUT_2``), in a fixed order (see the module docstring)."""
    out: list[Prompt] = []
    rng = np.random.default_rng(12)
    for i, spec in enumerate(ds.HELD_OUT):
        c, s, b = spec.colour, spec.shape, spec.background
        hc, hb = held_out.colours[c][0], held_out.colours[b][0]
        add = lambda kind, text, target, seed: out.append(Prompt(kind, with_articles(text), target, seed))  # noqa: E731
        for k in range(4):
            add("canonical", ds.caption(spec), named(spec), k)
            add("training wordings", full_caption(spec, rng, TRAIN), named(spec), k)
            add("unseen colour words", f"a {hc} {s} on a {hb} background", named(spec), k)
            add("unseen shape words", f"a {c} {held_out.shapes[s][k % 2]} on a {b} background", named(spec), k)
            add("unseen word orders", held_out.full[(i + k) % len(held_out.full)].format(c=c, s=s, b=b),
                named(spec), k)
            add("unseen fillers", held_out.prefixes[(i + k) % len(held_out.prefixes)] + ds.caption(spec)
                + held_out.suffixes[(i + 2 * k) % len(held_out.suffixes)],
                named(spec), k)
            add("all unseen", full_caption(spec, rng, held_out), named(spec), k)
            w = negated_colour(spec) if k < 2 else b
            target = Target(s, c, None, not_background=w)
            add(NEGATION[0], TRAIN.not_background[(i + k) % len(TRAIN.not_background)].format(c=c, s=s, w=w),
                target, k)
            add(NEGATION[1], held_out.not_background[(i + k) % len(held_out.not_background)].format(c=c, s=s, w=w),
                target, k)
            t = other_shape(spec, k)
            target = Target(None, c, b, not_shape=t)
            add(NEGATION[2], TRAIN.not_shape[(i + k) % len(TRAIN.not_shape)].format(c=c, b=b, t=t), target, k)
            add(NEGATION[3], held_out.not_shape[(i + k) % len(held_out.not_shape)].format(c=c, b=b, t=t), target, k)
            if k < 2:
                add("no background named", f"a {c} {s}", Target(s, c, None), k)
    return out


def kinds() -> list[str]:
    """The kinds of wording, in report order."""
    return list(dict.fromkeys(p.kind for p in prompts()))

