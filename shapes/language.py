"""How people write shapes prompts: synonyms, word orders, filler words, negation; and what is held out.

``describe(spec, rng)`` draws one caption that is *true of* ``spec`` from the training language
(``TRAIN``): colour and shape synonyms, many word orders, prompt-style prefixes and suffixes,
trailing punctuation, captions that leave the background out, and negations ("not on a white
background", "a red shape, not a triangle") whose negated word differs from the spec. The
held-out language (``HELD_OUT``) is a disjoint set of synonyms, templates, fillers and negation
phrasings that training never sees; ``shapes/evaluate.py`` scores the model on it.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from .dataset import COLOURS, SHAPES, ShapeSpec


@dataclass(frozen=True)
class Language:
    """Word lists and templates; templates use {c} colour, {s} shape, {b} background, {w}/{t} negated words."""

    colours: dict[str, tuple[str, ...]]   # canonical colour -> words for it (the canonical word included)
    shapes: dict[str, tuple[str, ...]]    # canonical shape -> words for it
    full: tuple[str, ...]                 # name colour, shape and background
    prefixes: tuple[str, ...]
    suffixes: tuple[str, ...]
    not_background: tuple[str, ...]       # {c} {s}, the background is not {w}; background otherwise unnamed
    not_shape: tuple[str, ...]            # {c} colour, {b} background, the shape is not {t}; shape unnamed


TRAIN = Language(
    colours={
        "red": ("red", "crimson", "scarlet", "cherry red", "vermilion", "bright red", "blood red"),
        "orange": ("orange", "deep orange", "pumpkin orange", "amber", "carrot orange", "bright orange"),
        "yellow": ("yellow", "golden", "gold", "canary yellow", "sunny yellow", "bright yellow", "mustard"),
        "green": ("green", "lime green", "forest green", "grass green", "kelly green", "bright green"),
        "blue": ("blue", "navy", "azure", "royal blue", "sapphire", "cerulean", "bright blue"),
        "purple": ("purple", "violet", "lilac", "plum", "mauve", "grape purple", "bright purple"),
        "white": ("white", "snow white", "pearl white", "off-white", "milky white", "pure white"),
        "black": ("black", "jet black", "charcoal", "coal black", "pitch black", "pure black"),
    },
    shapes={
        "circle": ("circle", "disc", "disk", "round", "ball", "dot", "ring", "sphere", "round shape",
                   "circular shape"),
        "square": ("square", "box", "rectangle", "block", "tile", "square shape", "four-sided shape"),
        "triangle": ("triangle", "pyramid", "wedge", "triangular shape", "three-sided shape", "delta"),
    },
    full=(
        "a {c} {s} on a {b} background",
        "a {c} {s} on {b}",
        "{c} {s}, {b} background",
        "a {b} background with a {c} {s}",
        "a {c} {s} against a {b} background",
        "a {c} {s} on a plain {b} background",
        "a {c} {s} over a {b} backdrop",
        "{c} {s} on a {b} backdrop",
        "a {s}, {c}, on a {b} background",
        "a {s} in {c} on a {b} background",
        "a {s} coloured {c} on a {b} background",
        "a {s} colored {c}, {b} background",
        "a {s} that is {c}, on a {b} background",
        "on a {b} background, a {c} {s}",
        "{b} background, {c} {s}",
        "a {c} {s} with a {b} background",
        "the {c} {s} on the {b} background",
        "a {c} {s} in the middle of a {b} background",
        "{c} {s} centered on {b}",
        "a {c} coloured {s} on a {b} coloured background",
        "a {s} ({c}) on a {b} background",
        "shape: {s}, colour: {c}, background: {b}",
        "{s}, {c}, {b} background",
        "a single {c} {s} on a solid {b} background",
        "one {c} {s}, {b} backdrop",
        "{b} backdrop with a {c} {s} on it",
    ),
    prefixes=("", "a photo of ", "a picture of ", "an image of ", "a drawing of ", "an illustration of ",
              "a simple flat illustration of ", "a minimalist illustration of ", "clip art of ", "an icon of ",
              "a vector illustration of ", "flat design, ", "minimalist, ", "please draw ", "draw ",
              "generate ", "a logo of ", "a painting of "),
    suffixes=("", ", high quality", ", minimalist", ", flat colours", ", flat colors", ", simple", ", vector art",
              ", 4k", ", hd", ", highly detailed", ", clean lines", ", centered", ", masterpiece",
              ", best quality", ", high quality, 4k", " in flat style", ", sharp edges"),
    not_background=(
        "a {c} {s}, not on a {w} background",
        "a {c} {s}, no {w} background",
        "a {c} {s} without a {w} background",
        "a {c} {s} on a background that is not {w}",
        "{c} {s}, background not {w}",
        "a {c} {s} on any background except {w}",
    ),
    not_shape=(
        "a {c} shape on a {b} background, not a {t}",
        "a {c} shape, no {t}, on a {b} background",
        "a {c} object on {b}, not a {t}",
        "something {c} on a {b} background that is not a {t}",
    ),
)

HELD_OUT = Language(
    colours={"red": ("ruby",), "orange": ("tangerine",), "yellow": ("lemon",), "green": ("emerald",),
             "blue": ("cobalt",), "purple": ("lavender",), "white": ("ivory",), "black": ("ebony",)},
    shapes={"circle": ("orb", "circular form"), "square": ("cube", "square form"),
            "triangle": ("triangular form", "arrowhead")},
    full=(
        "there is a {c} {s} on a {b} background",
        "a {s} painted {c}, sitting on a {b} background",
        "{b} backdrop, {c} {s} in the centre",
        "a {c} {s} placed on a {b} field",
        "colour {c}, shape {s}, background {b}",
        "on {b}: one {c} {s}",
        "a {s} of {c} colour on a background of {b}",
        "{b} canvas and a {c} {s}",
    ),
    prefixes=("a render of ", "a digital artwork of ", "a screenshot of ", "an artwork showing "),
    suffixes=(", trending on artstation", ", award winning", ", ultra sharp", ", 8k wallpaper"),
    not_background=(
        "a {c} {s}, the background is not {w}",
        "a {c} {s}, avoid a {w} background",
        "a {c} {s} with anything but a {w} background",
    ),
    not_shape=(
        "a {c} thing on a {b} background, anything but a {t}",
        "a {c} figure on {b} that isn't a {t}",
    ),
)

# Weights of the caption kinds in training (the rest: a full caption with synonyms and fillers).
P_CANONICAL = 0.25      # the four original dataset templates with the canonical words
P_NO_BACKGROUND = 0.05  # "a red circle": colour and shape only
P_NOT_BACKGROUND = 0.12
P_NOT_SHAPE = 0.08
PUNCTUATION = ("", "", "", ".", "!", " .")


def with_articles(text: str) -> str:
    """'a orange' -> 'an orange' (and 'A ivory' -> 'An ivory'), everywhere in ``text``."""
    return re.sub(r"\b([Aa]) (?=[aeiouAEIOU])", r"\1n ", text)


def pick(rng: np.random.Generator, options):
    """One element of ``options``, uniformly."""
    return options[int(rng.integers(len(options)))]


def other_than(rng: np.random.Generator, options, *excluded):
    """A uniformly drawn element of ``options`` that is none of ``excluded``."""
    return pick(rng, [o for o in options if o not in excluded])


def describe(spec: ShapeSpec, rng: np.random.Generator, lang: Language = TRAIN) -> str:
    """One random caption, true of ``spec``, in ``lang`` (see the module docstring for the mix)."""
    from .dataset import TEMPLATES
    roll = rng.random()
    if lang is TRAIN and roll < P_CANONICAL:
        return pick(rng, TEMPLATES).format(colour=spec.colour, shape=spec.shape, background=spec.background)
    c, s = pick(rng, lang.colours[spec.colour]), pick(rng, lang.shapes[spec.shape])
    b = pick(rng, lang.colours[spec.background])
    roll = (roll - P_CANONICAL) / (1 - P_CANONICAL) if lang is TRAIN else rng.random()
    if roll < P_NO_BACKGROUND:
        body = f"a {c} {s}"
    elif roll < P_NO_BACKGROUND + P_NOT_BACKGROUND:
        w = pick(rng, TRAIN.colours[other_than(rng, tuple(COLOURS), spec.background, spec.colour)])
        body = pick(rng, lang.not_background).format(c=c, s=s, w=w)
    elif roll < P_NO_BACKGROUND + P_NOT_BACKGROUND + P_NOT_SHAPE:
        t = pick(rng, TRAIN.shapes[other_than(rng, SHAPES, spec.shape)])
        body = pick(rng, lang.not_shape).format(c=c, b=b, t=t)
    else:
        body = pick(rng, lang.full).format(c=c, s=s, b=b)
    return dressed(body, rng, lang)


def dressed(body: str, rng: np.random.Generator, lang: Language = TRAIN) -> str:
    """``body`` with a random prefix, suffix and trailing punctuation of ``lang``, articles fixed."""
    return with_articles(pick(rng, lang.prefixes) + body + pick(rng, lang.suffixes) + pick(rng, PUNCTUATION))


def full_caption(spec: ShapeSpec, rng: np.random.Generator, lang: Language = TRAIN) -> str:
    """A caption naming colour, shape and background in ``lang``'s words, template and fillers."""
    c, s, b = (pick(rng, lang.colours[spec.colour]), pick(rng, lang.shapes[spec.shape]),
               pick(rng, lang.colours[spec.background]))
    return dressed(pick(rng, lang.full).format(c=c, s=s, b=b), rng, lang)


def training_words() -> set[str]:
    """Every word of the training language (templates, fillers and synonyms), lower case."""
    from .dataset import TEMPLATES
    pieces = [*TRAIN.full, *TRAIN.prefixes, *TRAIN.suffixes, *TRAIN.not_background, *TRAIN.not_shape, *TEMPLATES,
              *(w for ws in TRAIN.colours.values() for w in ws), *(w for ws in TRAIN.shapes.values() for w in ws)]
    return {w for p in pieces for w in words(re.sub(r"\{\w+\}", " ", p))}


def words(text: str) -> list[str]:
    """The lower-case words of ``text`` (letters, digits, apostrophes and hyphens)."""
    return re.findall(r"[a-z0-9'-]+", text.lower())
