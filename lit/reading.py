"""Read a one-object caption of ``shapes.language`` back into the claim it makes.

``language.describe`` returns only text, so what a caption says (a background left out, a negated
colour or shape) is read back from the language's own templates, word lists and fillers: a
language that grows new templates or synonyms is read without changes here. Articles are compared
without their "a"/"an" form, since ``with_articles`` rewrites them after the template is filled.
"""
from __future__ import annotations

import re
from functools import cached_property

from ..shapes import language as L
from ..shapes.dataset import TEMPLATES
from .claims import ALL_COLOURS, ALL_SHAPES, Claim, Slot

NO_BACKGROUND = ("a {c} {s}",)  # describe's caption that names no background
# Each kind of template and how it limits the picture: the slot letters it fills.
KINDS = ("full", "no background", "not background", "not shape")


class CaptionReader:
    """Turns captions written in a ``shapes.language.Language`` into ``Claim``s."""

    def __init__(self, lang: L.Language = L.TRAIN):
        self.lang = lang

    @cached_property
    def _colour_of(self) -> dict[str, str]:
        # negated words are drawn from the training lists whatever the language (describe does so)
        return {word: name for table in (L.TRAIN.colours, self.lang.colours) for name, words in table.items()
                for word in words}

    @cached_property
    def _shape_of(self) -> dict[str, str]:
        return {word: name for table in (L.TRAIN.shapes, self.lang.shapes) for name, words in table.items()
                for word in words}

    @cached_property
    def _patterns(self) -> list[tuple[str, re.Pattern]]:
        canonical = tuple(t.replace("{colour}", "{c}").replace("{shape}", "{s}").replace("{background}", "{b}")
                          for t in TEMPLATES)
        groups = {"full": (*canonical, *self.lang.full), "no background": NO_BACKGROUND,
                  "not background": self.lang.not_background, "not shape": self.lang.not_shape}
        # a prefix, suffix and punctuation are optional: full_caption of a language may not use them
        dressing = (_alternatives(self.lang.prefixes), _alternatives(self.lang.suffixes),
                    _alternatives(L.PUNCTUATION))
        words = {"c": _alternatives(self._colour_of), "b": _alternatives(self._colour_of),
                 "w": _alternatives(self._colour_of), "s": _alternatives(self._shape_of),
                 "t": _alternatives(self._shape_of)}
        patterns = []
        for kind in KINDS:
            for template in dict.fromkeys(groups[kind]):
                parts = re.split(r"\{(\w)\}", _plain_articles(template))
                body = "".join(re.escape(p) if i % 2 == 0 else f"(?P<{p}>{words[p]})" for i, p in enumerate(parts))
                patterns.append((kind, re.compile(f"{dressing[0]}?{body}{dressing[1]}?{dressing[2]}?")))
        return patterns

    def claim(self, text: str) -> Claim:
        """What ``text`` says of a one-object picture; raises ValueError when no template of the language fits."""
        plain = _plain_articles(text)
        found = [self._claim_of(kind, m) for kind, pattern in self._patterns if (m := pattern.fullmatch(plain))]
        if not found:
            raise ValueError(f"caption: {text!r} is not a caption of this language (no template fits)")
        claim = found[0]
        for other in found[1:]:  # two readings: true only where both are
            claim = claim.narrowed(other)
        return claim

    def _claim_of(self, kind: str, match: re.Match) -> Claim:
        slots = match.groupdict()
        colour = self._colour_of[slots["c"]]
        shapes = ALL_SHAPES - {self._shape_of[slots["t"]]} if kind == "not shape" else \
            frozenset({self._shape_of[slots["s"]]})
        if kind in ("full", "not shape"):
            backgrounds = frozenset({self._colour_of[slots["b"]]})
        elif kind == "not background":
            backgrounds = ALL_COLOURS - {self._colour_of[slots["w"]]}
        else:
            backgrounds = ALL_COLOURS
        return Claim((Slot(shapes, frozenset({colour})),), None, backgrounds)


def _plain_articles(text: str) -> str:
    """'an orange' -> 'a orange': undoes ``language.with_articles`` so templates and captions compare."""
    return re.sub(r"\b([Aa])n ", r"\1 ", text)


def _alternatives(options) -> str:
    """A regex group matching any of ``options`` (longest first, so 'cherry red' wins over 'red')."""
    ordered = sorted({_plain_articles(o) for o in options}, key=len, reverse=True)
    return "(?:" + "|".join(re.escape(o) for o in ordered) + ")"
