"""The held-out two-object prompts: held-out pairs and counts in training and unseen phrasings.

``prompts()`` enumerates (kind, prompt, reading) deterministically over 16 held-out scenes of
each kind (``scene.is_held_out``: pairs and counts training never shows). Kinds: pairs, positions
and counts in the training language; in the held-out phrasings of ``language.HELD_OUT`` (its pair,
relation, count, background and negation templates and number words) with the canonical colour
and shape words, so the phrasing alone is new; in the held-out language throughout (words,
templates and fillers); and GenEval's own templates. GenEval's templates without colours ("a
photo of a circle and a square") have only 9 shape pairs, so those are not new to training.
Each background is named (two in four), left out, or negated.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import language as L
from . import scene
from .dataset import COLOURS
from .reading import Reading

KINDS = ("pair", "position", "count")
GENEVAL_TASKS = {"pair": ("pair", "colour attribution"), "position": ("left of", "right of", "above", "below"),
                 "count": ("count",)}


@dataclass(frozen=True)
class ScenePrompt:
    kind: str
    text: str
    reading: Reading


def prompts(held_out: L.Language = L.HELD_OUT) -> list[ScenePrompt]:
    """Every prompt of the held-out two-object list in the held-out language ``held_out``, in a fixed order
    (see the module docstring)."""
    rng = np.random.default_rng(1212)
    phrasings = {"training phrasing": L.TRAIN, "unseen phrasing": L.in_canonical_words(held_out),
                 "all unseen": held_out}
    out: list[ScenePrompt] = []
    for kind in KINDS:
        scenes = [scene.random_scene(rng, kind, held_out=True) for _ in range(16)]
        for i, drawn in enumerate(scenes):
            for k in range(4):
                reading = with_background(drawn, k)
                for name, lang in phrasings.items():
                    out.append(ScenePrompt(f"{kind}, {name}", L.describe_reading(reading, rng, lang), reading))
                tasks = GENEVAL_TASKS[kind]
                out.append(ScenePrompt(f"{kind}, GenEval template",
                                       *geneval(tasks[(i + k) % len(tasks)], kind, rng)))
    return out


def geneval(task: str, kind: str, rng: np.random.Generator) -> tuple[str, Reading]:
    """A GenEval-template prompt about a held-out scene of ``kind`` (two different shapes, as GenEval's
    two objects always are) and its reading."""
    while True:
        drawn = scene.random_scene(rng, kind, held_out=True)
        if kind == "count" or drawn.things[0].shape != drawn.things[1].shape:
            relation = L.GENEVAL_FITS[task] if kind == "position" else None
            return L.geneval_prompt(task, Reading.of(scene.Description(drawn.things, relation)))


def with_background(drawn: scene.Scene, k: int) -> Reading:
    """The reading of ``drawn`` with its background named (k = 0, 1), left out (2) or negated (3)."""
    if k < 2:
        return Reading.of(drawn)
    bare = scene.Description(drawn.things, drawn.relation)
    if k == 2:
        return Reading.of(bare)
    used = {t.colour for t in drawn.things}
    return Reading.of(bare, not_background=next(c for c in COLOURS if c not in used | {drawn.background}))


def kinds() -> list[str]:
    """The kinds of prompt, in report order."""
    return list(dict.fromkeys(p.kind for p in prompts()))
