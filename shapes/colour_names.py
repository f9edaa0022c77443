"""Colour names people write, resolved to this world's eight colours before the prompt reader reads them.

The reader learnt the colour words of its training language; MiniLM alone places most other colour
names near the wrong colour (a nearest-colour test on its sentence vectors: 10-12 of 32 new names
right). People name colours in thousands of ways, and the XKCD colour survey collected 949 of those
names with the colour each stands for (plus CSS's 148): ``matplotlib.colors`` ships both. A name the
reader never learnt is replaced, before encoding, by the world colour its value is nearest to:

- a name that holds a basic colour word says it ("forest green", "greenish blue": the last one);
- else by CIELAB hue among the six chromatic colours (a dark or pale shade keeps its hue: navy is
  blue), or white/black by lightness when it has almost no hue (chroma below GREY_CHROMA).

The rule was fixed on the training language's own labelled synonyms (24 of its 26 one-word names that
the survey holds agree with its labels; the chroma bound anywhere in 8-25 gives the same), before the
held-out words were looked up. Only phrases with a word outside the reader's training words are
replaced, so what it learnt reads exactly as before; words that only modify ("dark", "pale") are no
names on their own.
"""
from __future__ import annotations

import functools
import math
import re

import numpy as np

BASIC = ("red", "orange", "yellow", "green", "blue", "purple", "white", "black")
#: least CIELAB chroma (OpenCV's float Lab, 0-100 lightness) of a colour read by its hue
GREY_CHROMA = 16.0
#: survey "names" that are modifiers of another colour word in a prompt
MODIFIERS = frozenset({"dark", "pale", "light", "deep", "bright", "dull", "dusty", "faded", "pastel"})
#: longest name looked for, in words ("very light bluish green" has four)
MAX_WORDS = 4

_WORD = re.compile(r"[a-z]+", re.IGNORECASE)


@functools.lru_cache(maxsize=1)
def survey() -> dict[str, str]:
    """Colour name (lower case, words separated by one space) -> its "#rrggbb": XKCD's survey, then CSS's."""
    from matplotlib.colors import CSS4_COLORS, XKCD_COLORS

    names = {name.lower(): value for name, value in CSS4_COLORS.items()}
    names.update({name[len("xkcd:"):].lower(): value for name, value in XKCD_COLORS.items()})
    return {" ".join(_WORD.findall(name)): value for name, value in names.items() if name not in MODIFIERS}


def world_colour(name: str, value: str) -> str:
    """The world colour a survey colour ``name`` with ``value`` ("#rrggbb") is."""
    said = [word for word in _WORD.findall(name.lower()) if word in BASIC]
    if said:
        return said[-1]
    lightness, chroma, hue = _lch(value)
    if chroma < GREY_CHROMA:
        return "white" if lightness > 50 else "black"
    return min(_hues(), key=lambda colour: _angle(hue, _hues()[colour]))


def resolve(prompt: str, known: frozenset[str]) -> str:
    """``prompt`` with each colour name that has a word outside ``known`` replaced by its world colour
    (longest names first, left to right; "a"/"an" before it made to fit); the rest of the text as written.

    Words are runs of letters: "lilac-colored" is "lilac" and "colored", "cobalt-tinted" holds the name "cobalt"."""
    parts = [(m.start(), m.end(), m.group().lower()) for m in _WORD.finditer(prompt)]
    parts = [(start, end, part, part in known) for start, end, part in parts]
    if all(learnt for *_, learnt in parts):
        return prompt  # nothing new to read: the survey is not even loaded
    names, out, at, i = survey(), [], 0, 0
    while i < len(parts):
        for n in range(min(MAX_WORDS, len(parts) - i), 0, -1):
            name = " ".join(part for _, _, part, _ in parts[i:i + n])
            if name in names and not all(learnt for *_, learnt in parts[i:i + n]):
                colour = world_colour(name, names[name])
                out += [_article_for(prompt[at:parts[i][0]], colour), colour]
                at, i = parts[i + n - 1][1], i + n
                break
        else:
            i += 1
    return "".join(out) + prompt[at:]


def _article_for(before: str, colour: str) -> str:
    """``before`` with a trailing "a"/"an" made the article of ``colour``."""
    article = "an" if colour[0] in "aeiou" else "a"
    return re.sub(r"\b([Aa])n? $", lambda m: (article if m.group(1) == "a" else article.capitalize()) + " ", before)


@functools.lru_cache(maxsize=1)
def reader_words() -> frozenset[str]:
    """The words (runs of letters) the prompt reader was trained on (``language.training_words``)."""
    from .language import training_words

    return frozenset(part for word in training_words() for part in _WORD.findall(word))


def as_reader_reads(prompts: list[str]) -> list[str]:
    """The prompts as the Understand Prompt node gives them to the reader: colour names resolved."""
    return [resolve(prompt, reader_words()) for prompt in prompts]


def _lch(value: str) -> tuple[float, float, float]:
    """CIELAB lightness, chroma and hue angle (degrees) of "#rrggbb"."""
    import cv2

    rgb = np.array([[[int(value[k:k + 2], 16) / 255 for k in (1, 3, 5)]]], np.float32)
    lightness, a, b = cv2.cvtColor(rgb, cv2.COLOR_RGB2Lab)[0, 0]
    return float(lightness), math.hypot(a, b), math.degrees(math.atan2(b, a)) % 360


@functools.lru_cache(maxsize=1)
def _hues() -> dict[str, float]:
    """The hue angle of each chromatic world colour, as the survey's own name for it."""
    names = survey()
    return {colour: _lch(names[colour])[2] for colour in BASIC[:6]}


def _angle(a: float, b: float) -> float:
    """The distance of two hue angles on the circle."""
    d = abs(a - b) % 360
    return min(d, 360 - d)
