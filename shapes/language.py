"""How people write shapes prompts: synonyms, word orders, filler words, negation; and what is held out.

``describe(spec, rng)`` draws one caption that is *true of* ``spec`` from the training language
(``TRAIN``): colour and shape synonyms, many word orders, prompt-style prefixes and suffixes,
trailing punctuation, captions that leave the background out, and negations ("not on a white
background", "a red shape, not a triangle") whose negated word differs from the spec. The
held-out language (``HELD_OUT``) is a disjoint set of synonyms, templates, fillers and negation
phrasings that training never sees; ``shapes/evaluate.py`` scores the model on it.

The two-object world (``shapes/scene.py``) is said with ``describe_reading`` (any ``Reading``:
one thing, a pair, a pair with a relation, a count; colours and background optional, the
background negated or not): things joined by pair, relation ("B to the right of A", "B under A"
put the canonical first thing second) or count phrasings. ``GENEVAL`` holds GenEval's own prompt
templates, which training produces word for word.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, replace

import numpy as np

from .dataset import COLOURS, SHAPES, ShapeSpec
from .reading import Mention, Reading


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
    # the two-object world: {x} a thing, a pair or a count; {a}/{b} the canonical first/second thing
    plurals: dict[str, tuple[str, ...]]   # canonical shape -> plural words for it
    things: tuple[str, ...]               # one thing with its colour: {c} {s}
    bare_things: tuple[str, ...]          # one thing, colour unsaid: {s}
    counted: tuple[str, ...]              # the counted things: {c} colour, {p} plural shape
    bare_counted: tuple[str, ...]         # the counted things, colour unsaid: {p}
    numbers: dict[int, tuple[str, ...]]   # count -> words for it ({n})
    counts: tuple[str, ...]               # {n} number, {t} counted things
    pairs: tuple[str, ...]                # {a} and {b}, no relation
    left_of: tuple[str, ...]              # {a} is left of {b} (whichever is said first)
    above: tuple[str, ...]                # {a} is above {b}
    backgrounds: tuple[str, ...]          # {x} on background {b}
    not_backgrounds: tuple[str, ...]      # {x}, the background is not {w}


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
    plurals={
        "circle": ("circles", "discs", "disks", "balls", "dots", "rings", "spheres", "round shapes",
                   "circular shapes"),
        "square": ("squares", "boxes", "rectangles", "blocks", "tiles", "square shapes", "four-sided shapes"),
        "triangle": ("triangles", "pyramids", "wedges", "triangular shapes", "three-sided shapes", "deltas"),
    },
    things=("a {c} {s}", "one {c} {s}", "a {s} in {c}", "a {c} coloured {s}", "a {c} colored {s}", "a {c}-coloured {s}",
            "a {c}-colored {s}", "a {s} that is {c}"),
    bare_things=("a {s}", "one {s}", "a single {s}"),
    counted=("{c} {p}", "{p} in {c}", "{c} coloured {p}", "{c}-colored {p}", "{p} that are {c}"),
    bare_counted=("{p}",),
    numbers={2: ("two", "2", "a pair of", "a group of two"), 3: ("three", "3", "a trio of", "a group of three")},
    counts=("{n} {t}", "{n} {t} side by side", "{n} {t} in a row", "{n} {t} next to each other", "{n} {t} together",
            "{n} {t} spaced apart"),
    pairs=("{a} and {b}", "{a} next to {b}", "{a} with {b}", "{a} beside {b}", "{a}, {b}", "{a} and {b} together",
           "{a} plus {b}", "{a} and also {b}", "{a} near {b}", "both {a} and {b}"),
    left_of=("{a} to the left of {b}", "{a} left of {b}", "{a} on the left of {b}", "{a} on the left side of {b}",
             "{b} to the right of {a}", "{b} right of {a}", "{b} on the right of {a}", "{b} on the right side of {a}",
             "{a} on the left and {b} on the right", "on the left {a}, on the right {b}", "{a} is left of {b}",
             "{b} is to the right of {a}", "{a} positioned left of {b}", "{b} sits to the right of {a}"),
    above=("{a} above {b}", "{a} on top of {b}", "{a} over {b}", "{b} below {a}", "{b} under {a}",
           "{b} underneath {a}", "{a} at the top and {b} at the bottom", "{b} at the bottom, {a} at the top",
           "{a} is above {b}", "{b} is below {a}", "{a} placed above {b}", "{b} sits under {a}"),
    backgrounds=("{x} on a {b} background", "{x} on {b}", "{x}, {b} background", "{x} against a {b} background",
                 "{x} on a plain {b} background", "{x} over a {b} backdrop", "a {b} background with {x}",
                 "on a {b} background, {x}", "{b} background, {x}", "{x} on a solid {b} background",
                 "{x} in front of a {b} background", "{x}, background colour {b}", "{x} on a {b} colored background",
                 "{b} backdrop behind {x}", "{x} on a {b} surface"),
    not_backgrounds=("{x}, not on a {w} background", "{x}, no {w} background", "{x} without a {w} background",
                     "{x} on a background that is not {w}", "{x} on any background except {w}",
                     "{x}, background not {w}", "{x}, but not on {w}"),
)

#: more colour and shape words, for the prompt reader's training (``WIDE``) only: the generator's
#: captions (``describe`` in TRAIN) keep TRAIN's words; none of these is a held-out word
MORE_COLOURS = {
    "red": ("rose red", "brick red", "tomato red", "carmine", "cardinal red", "cherry", "garnet", "strawberry red"),
    "orange": ("apricot", "burnt orange", "mandarin orange", "marigold", "copper orange", "rust orange",
               "peach orange"),
    "yellow": ("banana yellow", "butter yellow", "sunflower yellow", "daffodil yellow", "honey yellow", "buttercup"),
    "green": ("olive green", "mint green", "jade", "sage green", "leaf green", "pine green", "moss green", "lime"),
    "blue": ("sky blue", "ocean blue", "denim blue", "midnight blue", "baby blue", "ultramarine", "cornflower blue"),
    "purple": ("amethyst", "orchid purple", "eggplant", "heather purple", "mulberry", "grape", "royal purple"),
    "white": ("cream white", "chalk white", "bone white", "cotton white", "porcelain white", "alabaster",
              "paper white"),
    "black": ("onyx", "obsidian", "ink black", "raven black", "soot black", "midnight black", "inky black"),
}
MORE_SHAPES = {"circle": ("bubble", "coin", "spot", "round disc"), "square": ("plate", "slab", "panel", "square tile"),
               "triangle": ("spike", "prism", "tent shape", "triangle shape")}
MORE_PLURALS = {"circle": ("bubbles", "coins", "spots"), "square": ("plates", "slabs", "panels"),
                "triangle": ("spikes", "prisms", "tent shapes")}


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
    plurals={"circle": ("orbs", "circular forms"), "square": ("cubes", "square forms"),
             "triangle": ("triangular forms", "arrowheads")},
    things=("a {s} of {c} colour", "a {c}-tinted {s}"),
    bare_things=("a lone {s}",),
    counted=("{p} of {c} colour", "{c}-tinted {p}"),
    bare_counted=("identical {p}",),
    numbers={2: ("a couple of", "twin"), 3: ("a set of three", "a triplet of")},
    counts=("{n} {t} lined up", "{n} {t} grouped together"),
    pairs=("{a} alongside {b}", "{a} together with {b}", "{a} as well as {b}"),
    left_of=("{a} at the left of {b}", "{b} placed right of {a}", "{a} on the left-hand side of {b}",
             "{b}, and left of it {a}"),
    above=("{b} beneath {a}", "{a} sitting atop {b}", "{a} higher than {b}", "{b} lower than {a}"),
    backgrounds=("{x} on a {b} field", "{b} canvas and {x}", "{x}, set on {b}"),
    not_backgrounds=("{x}, the background is not {w}", "{x}, avoid a {w} background",
                     "{x} with anything but a {w} background"),
)

#: a second held-out language, written on 2026-12-02 (seventh session) before that session's reader
#: training was designed or run: other words and templates than HELD_OUT's, none in training, so a
#: score on it is not shaped by reading the first list's misses. Colour words a person might type,
#: taken as written (resolution then does what it does with them: eggshell is a survey yellow).
HELD_OUT_2 = Language(
    colours={"red": ("burgundy",), "orange": ("persimmon",), "yellow": ("dandelion",), "green": ("shamrock",),
             "blue": ("periwinkle",), "purple": ("magenta",), "white": ("eggshell",), "black": ("sable",)},
    shapes={"circle": ("globe", "roundel"), "square": ("quad", "four-cornered shape"),
            "triangle": ("three-cornered shape", "cone")},
    full=(
        "i want a {c} {s} on a {b} background",
        "{c} {s} against {b}",
        "make me a {c} {s} with {b} behind it",
        "a {b} wall with a {c} {s} on it",
        "{s}: {c}; background: {b}",
        "a {c} {s} in front of {b}",
        "the background should be {b} and the {s} {c}",
        "a {c} {s} surrounded by {b}",
    ),
    prefixes=("a cartoon of ", "a sticker of ", "concept art of ", "a studio shot of "),
    suffixes=(", octane render", ", studio lighting", ", no text", ", unreal engine"),
    not_background=(
        "a {c} {s}, the background must not be {w}",
        "a {c} {s} but not against {w}",
        "a {c} {s}, do not use a {w} background",
    ),
    not_shape=(
        "a {c} item on a {b} background, not shaped like a {t}",
        "a {c} piece on {b} which is never a {t}",
    ),
    plurals={"circle": ("globes", "roundels"), "square": ("quads", "four-cornered shapes"),
             "triangle": ("three-cornered shapes", "cones")},
    things=("a {c}-hued {s}", "a {s} in a {c} shade"),
    bare_things=("just a {s}",),
    counted=("{c}-hued {p}", "{p} in a {c} shade"),
    bare_counted=("matching {p}",),
    numbers={2: ("a duo of", "a twosome of"), 3: ("a threesome of", "a trinity of")},
    counts=("{n} {t} arranged in a line", "{n} {t} scattered around"),
    pairs=("{a} accompanied by {b}", "{a} paired with {b}", "{a} in addition to {b}"),
    left_of=("{a} placed to the left, {b} to the right", "{b} on the righthand side of {a}",
             "from left to right: {a}, {b}", "{b} to the east of {a}"),
    above=("{a} stacked on top of {b}", "{a} up top and {b} down below", "{a} floating above {b}",
           "{b} directly below {a}"),
    backgrounds=("{x} against {b}", "{x} with {b} behind", "{x} on a {b} wall", "{b} scene with {x}"),
    not_backgrounds=("{x}, the background must not be {w}", "{x} but not against {w}",
                     "{x}, do not use a {w} background"),
)
#: the held-out languages by the name the evaluations take (``--held-out``)
HELD_OUT_LISTS = {"first": HELD_OUT, "second": HELD_OUT_2}

#: more templates and fillers per Language field, for the prompt reader's training (``WIDE``) only
#: (added 2026-12-02, seventh session): other nouns for the background and for a thing whose shape is
#: unsaid, things said before or after their background, relations and counts in more words, negation
#: in more words, and more prompt fillers. Written after reading the first held-out list's misses and
#: before the second list's were read; none uses a word of either held-out list (tests).
MORE_TEMPLATES = {
    "full": ("a {c} {s} resting on a {b} background", "a {c} {s} lying on {b}", "{b} background and a {c} {s}",
             "{b} backdrop and a {c} {s}", "{b} background: a {c} {s}", "a {c} {s}, background: {b}",
             "a {c} {s}; {b} background", "a {c} {s} on a {b} base", "a {c} {s} on {b} paper",
             "background {b}, {s} {c}", "a {s} in the colour {c} on {b}", "a {c}-toned {s} on a {b} surface",
             "with a {b} background, a {c} {s}", "a {c} {s} drawn on a {b} background",
             "a {s} coloured {c} before a {b} backdrop", "a {c} {s} on a {b}-coloured backdrop",
             "{b} surface, {c} {s} on it", "a {c} {s} over a {b} ground"),
    "prefixes": ("a poster of ", "a photograph of ", "a sketch of ", "a graphic of ", "an emoji of ",
                 "a picture featuring ", "a print of ", "an abstract painting of ", "a rendering of ", "a 3d image of "),
    "suffixes": (", photorealistic", ", professional", ", detailed", ", 1080p", ", crisp", ", beautiful",
                 ", high resolution", ", smooth shading", ", cinematic", ", perfect composition"),
    "not_background": ("a {c} {s}, any background but {w}", "a {c} {s} with no {w} in the background",
                       "a {c} {s}, no {w} backdrop", "a {c} {s}, background of any colour except {w}",
                       "a {c} {s}, exclude a {w} background", "a {c} {s} on a non-{w} background",
                       "a {c} {s}, its background not {w}"),
    "not_shape": ("a {c} element on a {b} background, not a {t}", "a {c} symbol on {b}, no {t}",
                  "a {c} blob on a {b} background that is not a {t}", "any {c} shape except a {t}, on a {b} background",
                  "a {c} shape on a {b} background, excluding a {t}", "a {c} object that is not a {t}, on a {b} backdrop",
                  "a {c} mark on {b}, but no {t}", "something {c}, not a {t}, on a {b} surface",
                  "a {c} shape on {b}, without any {t}"),
    "things": ("a {c}-toned {s}", "a {s} in the colour {c}", "a {s} coloured {c}", "a {c} {s} shape"),
    "counted": ("{c}-toned {p}", "{p} in the colour {c}", "{p} coloured {c}"),
    "counts": ("{n} {t} in a group", "{n} {t} close together", "{n} {t} side-by-side", "exactly {n} {t}"),
    "pairs": ("{a} along with {b}", "{a} combined with {b}", "{a} joined by {b}", "{a} & {b}", "{a}; {b}"),
    "left_of": ("{a} to the left side of {b}", "{b} situated right of {a}", "{b} with {a} to its left",
                "{a} at left, {b} at right", "{b} located to the right of {a}"),
    "above": ("{a} located above {b}", "{b} positioned under {a}", "{a} at the top, {b} below it",
              "{b} with {a} above it", "{a} perched over {b}"),
    "backgrounds": ("{x} resting on a {b} background", "{x} lying on {b}", "{b} background and {x}",
                    "{b} backdrop and {x}", "{b} background: {x}", "{x}; {b} background", "{x} on a {b} base",
                    "{x} on {b} paper", "with a {b} background, {x}", "{x} drawn on a {b} background",
                    "{x} on a {b}-coloured backdrop", "{x} over a {b} ground"),
    "not_backgrounds": ("{x}, any background but {w}", "{x}, with no {w} in the background", "{x}, no {w} backdrop",
                        "{x}, background of any colour except {w}", "{x} on a non-{w} background"),
}
#: the training language of the prompt reader: TRAIN with MORE_COLOURS, MORE_SHAPES, MORE_PLURALS and MORE_TEMPLATES
WIDE = replace(TRAIN, colours={c: TRAIN.colours[c] + MORE_COLOURS[c] for c in COLOURS},
               shapes={s: TRAIN.shapes[s] + MORE_SHAPES[s] for s in SHAPES},
               plurals={s: TRAIN.plurals[s] + MORE_PLURALS[s] for s in SHAPES},
               **{field: getattr(TRAIN, field) + more for field, more in MORE_TEMPLATES.items()})

#: GenEval's own prompt templates ({o} object, {o1}/{o2} two objects, {p} plural, {c} colours),
#: with this world's shapes as its objects; "right of"/"below" name the canonical second thing first
GENEVAL = {
    "single": "a photo of a {o}",
    "colour": "a photo of a {c} {o}",
    "pair": "a photo of a {o1} and a {o2}",
    "colour attribution": "a photo of a {c1} {o1} and a {c2} {o2}",
    "count": "a photo of {n} {p}",
    "left of": "a photo of a {o1} left of a {o2}",
    "right of": "a photo of a {o2} right of a {o1}",
    "above": "a photo of a {o1} above a {o2}",
    "below": "a photo of a {o2} below a {o1}",
}
#: what a reading must be for each GenEval template: its kind, or for a position its relation
GENEVAL_FITS = {"single": "single", "colour": "single", "pair": "pair", "colour attribution": "pair", "count": "count",
                "left of": "left of", "right of": "left of", "above": "above", "below": "above"}

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
    return describe_spec(spec, rng, lang)[0]


def describe_spec(spec: ShapeSpec, rng: np.random.Generator, lang: Language = TRAIN) -> tuple[str, Reading]:
    """``describe``'s caption (the same draws from ``rng``) and the ``Reading`` that says what it asks for."""
    from .dataset import TEMPLATES
    named = Mention(spec.shape, spec.colour)
    roll = rng.random()
    if lang is TRAIN and roll < P_CANONICAL:
        text = pick(rng, TEMPLATES).format(colour=spec.colour, shape=spec.shape, background=spec.background)
        return text, Reading(named, background=spec.background)
    c, s = pick(rng, lang.colours[spec.colour]), pick(rng, lang.shapes[spec.shape])
    b = pick(rng, lang.colours[spec.background])
    roll = (roll - P_CANONICAL) / (1 - P_CANONICAL) if lang is TRAIN else rng.random()
    if roll < P_NO_BACKGROUND:
        body, reading = f"a {c} {s}", Reading(named)
    elif roll < P_NO_BACKGROUND + P_NOT_BACKGROUND:
        negated = other_than(rng, tuple(COLOURS), spec.background, spec.colour)
        w = pick(rng, TRAIN.colours[negated])
        body, reading = pick(rng, lang.not_background).format(c=c, s=s, w=w), Reading(named, not_background=negated)
    elif roll < P_NO_BACKGROUND + P_NOT_BACKGROUND + P_NOT_SHAPE:
        negated = other_than(rng, SHAPES, spec.shape)
        t = pick(rng, TRAIN.shapes[negated])
        body = pick(rng, lang.not_shape).format(c=c, b=b, t=t)
        reading = Reading(Mention(None, spec.colour), background=spec.background, not_shape=negated)
    else:
        body, reading = pick(rng, lang.full).format(c=c, s=s, b=b), Reading(named, background=spec.background)
    return dressed(body, rng, lang), reading


def describe_reading(reading: Reading, rng: np.random.Generator, lang: Language = TRAIN) -> str:
    """One random caption of ``reading`` (not a shape negation: that is ``describe_spec``'s) in ``lang``."""
    return dressed(scene_body(reading, rng, lang), rng, lang)


def scene_body(reading: Reading, rng: np.random.Generator, lang: Language) -> str:
    """The things of ``reading`` with their relation or count, then its background or negated one."""
    if reading.not_shape is not None or reading.first.shape is None:
        raise ValueError("reading: a shape negation is said by describe_spec, not describe_reading")
    if reading.count > 1:
        body = pick(rng, lang.counts).format(n=pick(rng, lang.numbers[reading.count]),
                                             t=counted(reading.first, rng, lang))
    elif reading.second is None:
        body = thing(reading.first, rng, lang)
    else:
        links = {None: lang.pairs, "left of": lang.left_of, "above": lang.above}[reading.relation]
        body = pick(rng, links).format(a=thing(reading.first, rng, lang), b=thing(reading.second, rng, lang))
    if reading.background is not None:
        return pick(rng, lang.backgrounds).format(x=body, b=pick(rng, lang.colours[reading.background]))
    if reading.not_background is not None:
        return pick(rng, lang.not_backgrounds).format(x=body, w=pick(rng, lang.colours[reading.not_background]))
    return body


def thing(mention: Mention, rng: np.random.Generator, lang: Language) -> str:
    """'a crimson disc', 'a box in navy', or 'a ball' when the colour is unsaid."""
    s = pick(rng, lang.shapes[mention.shape])
    if mention.colour is None:
        return pick(rng, lang.bare_things).format(s=s)
    return pick(rng, lang.things).format(c=pick(rng, lang.colours[mention.colour]), s=s)


def counted(mention: Mention, rng: np.random.Generator, lang: Language) -> str:
    """'scarlet discs', 'boxes in navy', or 'balls' when the colour is unsaid."""
    p = pick(rng, lang.plurals[mention.shape])
    if mention.colour is None:
        return pick(rng, lang.bare_counted).format(p=p)
    return pick(rng, lang.counted).format(c=pick(rng, lang.colours[mention.colour]), p=p)


def geneval_prompt(task: str, reading: Reading) -> tuple[str, Reading]:
    """GenEval's template ``task`` (a key of GENEVAL) filled in with ``reading``'s canonical words, and
    the reading of what it says (the colours it names, no background: GenEval never names one)."""
    from .scene import COUNT_WORDS, PLURALS
    if GENEVAL_FITS[task] != (reading.relation or reading.kind):
        raise ValueError(f"reading: GenEval's {task!r} template says a {GENEVAL_FITS[task]}, got a {reading.kind}")
    first, second = reading.first, reading.second
    text = GENEVAL[task].format(o=first.shape, c=first.colour, n=COUNT_WORDS.get(reading.count),
                                p=PLURALS[first.shape], o1=first.shape, c1=first.colour,
                                o2=second and second.shape, c2=second and second.colour)
    coloured = "{c" in GENEVAL[task]
    said = [Mention(m.shape, m.colour if coloured else None) for m in reading.mentions]
    return with_articles(text), Reading(said[0], said[1] if len(said) > 1 else None, reading.relation, reading.count)


def dressed(body: str, rng: np.random.Generator, lang: Language = TRAIN) -> str:
    """``body`` with a random prefix, suffix and trailing punctuation of ``lang``, articles fixed."""
    return with_articles(pick(rng, lang.prefixes) + body + pick(rng, lang.suffixes) + pick(rng, PUNCTUATION))


def full_caption(spec: ShapeSpec, rng: np.random.Generator, lang: Language = TRAIN) -> str:
    """A caption naming colour, shape and background in ``lang``'s words, template and fillers."""
    c, s, b = (pick(rng, lang.colours[spec.colour]), pick(rng, lang.shapes[spec.shape]),
               pick(rng, lang.colours[spec.background]))
    return dressed(pick(rng, lang.full).format(c=c, s=s, b=b), rng, lang)


def in_canonical_words(lang: Language) -> Language:
    """``lang``'s templates with the canonical colour, shape and plural words and no fillers (to score
    phrasing alone)."""
    from .scene import PLURALS
    return replace(lang, colours={c: (c,) for c in COLOURS}, shapes={s: (s,) for s in SHAPES},
                   plurals={s: (PLURALS[s],) for s in SHAPES}, prefixes=("",), suffixes=("",))


def training_words() -> set[str]:
    """Every word of the training language (templates, fillers and synonyms), lower case."""
    from .dataset import TEMPLATES
    return {w for p in phrases(WIDE) + [*TEMPLATES, *GENEVAL.values()] for w in words(re.sub(r"\{\w+\}", " ", p))}


def phrases(lang: Language) -> list[str]:
    """Every template, filler and word list entry of ``lang``."""
    tables = (lang.colours, lang.shapes, lang.plurals, lang.numbers)
    return [*(t for field in TEMPLATE_FIELDS for t in getattr(lang, field)),
            *(w for table in tables for ws in table.values() for w in ws)]


#: the fields of a Language that hold templates or fillers (the rest are word tables)
TEMPLATE_FIELDS = ("full", "prefixes", "suffixes", "not_background", "not_shape", "things", "bare_things", "counted",
                   "bare_counted", "counts", "pairs", "left_of", "above", "backgrounds", "not_backgrounds")


def words(text: str) -> list[str]:
    """The lower-case words of ``text`` (letters, digits, apostrophes and hyphens)."""
    return re.findall(r"[a-z0-9'-]+", text.lower())
