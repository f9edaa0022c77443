"""Two-object captions are true of their reading, GenEval's templates are trained on, and the held-out
relation, count and background phrasings are never produced by training."""
import re

import numpy as np
import pytest

from imagetune.shapes import dataset as ds
from imagetune.shapes import heldout_scenes
from imagetune.shapes import language as L
from imagetune.shapes import scene
from imagetune.shapes.reading import Mention, Reading
from imagetune.shapes.understand_data import MIX, example, is_held_out, training_examples

SCENE_FIELDS = ("things", "bare_things", "counted", "bare_counted", "counts", "pairs", "left_of", "above",
                "backgrounds", "not_backgrounds")
COLOUR_WORDS = {w: c for lang in (L.WIDE, *L.HELD_OUT_LISTS.values()) for c, ws in lang.colours.items() for w in ws}
SHAPE_WORDS = {w: s for lang in (L.WIDE, *L.HELD_OUT_LISTS.values()) for table in (lang.shapes, lang.plurals)
               for s, ws in table.items() for w in ws}
PLURAL_WORDS = {w for lang in (L.WIDE, *L.HELD_OUT_LISTS.values()) for ws in lang.plurals.values() for w in ws}


@pytest.fixture(scope="module")
def examples():
    return training_examples(6000, seed=3)


@pytest.fixture(scope="module")
def scene_examples():
    """Captions of every caption kind but the free-order single objects (tests/test_shapes_language.py's)."""
    rng = np.random.default_rng(4)
    return [example(kind, rng) for kind in MIX if kind not in ("single, rich", "single, not shape") for _ in range(600)]


def found(text: str, table: dict[str, str]) -> list[tuple[int, int, str]]:
    """(start, end, word) of each word of ``table`` in ``text``, longest first where they overlap."""
    spans: list[tuple[int, int, str]] = []
    for word in sorted(table, key=len, reverse=True):
        for m in re.finditer(rf"(?<!\w){re.escape(word)}(?!\w)", text):
            if all(m.end() <= a or m.start() >= b for a, b, _ in spans):
                spans.append((m.start(), m.end(), word))
    return sorted(spans)


def bound_colour(text: str, shape: tuple[int, int, str], colours) -> str | None:
    """The colour said of the shape word at ``shape``: just before it ('red disc', 'red coloured disc'),
    or just after 'in' ('disc in red') or 'that is/are' ('discs that are red')."""
    start, end, _ = shape
    for a, b, word in colours:
        between = text[b:start]
        after = text[end:a]
        if between in (" ", " coloured ", " colored ", "-coloured ", "-colored ", "-toned ") or after in (
                " in ", " that is ", " that are ", " in the colour ", " coloured "):
            return COLOUR_WORDS[word]
    return None


def swapped(text: str, reading: Reading) -> bool:
    """Whether the text names the canonical second thing first (right of, below, under, bottom first)."""
    if reading.relation == "left of":
        return re.search(r"\bright (side )?of\b|\bto its left\b", text) is not None
    if reading.relation == "above":
        return (re.search(r"\b(below|under|underneath)\b(?! it\b)|\babove it\b", text) is not None
                or 0 <= text.find("at the bottom") < text.find("at the top"))
    return False


def test_scene_captions_are_true_of_their_reading(scene_examples):
    for text, reading in scene_examples:
        colours, shapes = found(text, COLOUR_WORDS), found(text, SHAPE_WORDS)
        said = {m.colour for m in reading.mentions} | {reading.background, reading.not_background}
        assert {COLOUR_WORDS[w] for _, _, w in colours} == said - {None}, text
        order = list(reading.mentions[::-1] if swapped(text, reading) else reading.mentions)
        assert [SHAPE_WORDS[w] for _, _, w in shapes] == [m.shape for m in order], text
        assert [bound_colour(text, s, colours) for s in shapes] == [m.colour for m in order], text
        plural = [w in PLURAL_WORDS for _, _, w in shapes]
        assert plural == [reading.count > 1] * len(shapes), text
        if reading.count > 1:
            number = {2: r"\b(two|2|pair)\b", 3: r"\b(three|3|trio)\b"}[reading.count]
            assert re.search(number, text), text
        if reading.kind == "pair":
            assert not re.search(r"\b(left|right|above|below|under|underneath|top|bottom)\b", text), text
        if reading.relation == "left of":
            assert re.search(r"\b(left|right)\b", text), text
        if reading.relation == "above":
            assert re.search(r"\b(above|below|under|underneath|top|over)\b", text), text
        negation = re.search(r"\b(not|no|without|except|but|non)\b", text)
        assert (negation is not None) == (reading.not_background is not None), text
        if negation:
            negated = [COLOUR_WORDS[w] for a, _, w in colours if a > negation.start()]
            assert reading.not_background in negated, text


def test_every_kind_and_relation_is_trained(examples):
    readings = [r for _, r in examples]
    kinds = {r.kind for r in readings}
    assert kinds == {"single", "pair", "position", "count"}
    assert {r.relation for r in readings} == {None, "left of", "above"}
    assert {r.count for r in readings} == {1, 2, 3}
    assert any(r.first.colour is None for r in readings) and any(r.not_background for r in readings)
    assert any(r.kind != "single" and r.background is None and r.not_background is None for r in readings)
    texts = [t for t, _ in examples]
    for field in SCENE_FIELDS:
        for template in getattr(L.TRAIN, field):
            assert any(pattern(template, field=field).search(t) for t in texts), (field, template)


def test_geneval_templates_are_trained_word_for_word(examples):
    texts = {t for t, _ in examples}
    for task, template in L.GENEVAL.items():
        exact = pattern(template, canonical=True)
        assert any(exact.fullmatch(t) for t in texts), task
    text, said = L.geneval_prompt("right of", Reading.of(scene.Description(
        (scene.Thing("circle", "red"), scene.Thing("square", "blue")), "left of")))
    assert text == "a photo of a square right of a circle"
    assert said.description() == scene.Description((scene.Thing("circle", None), scene.Thing("square", None)),
                                                   "left of")
    with pytest.raises(ValueError, match="GenEval"):
        L.geneval_prompt("below", said)


@pytest.mark.parametrize("name", list(L.HELD_OUT_LISTS))
def test_held_out_scene_phrasings_are_never_produced_by_training(examples, name):
    held_out = L.HELD_OUT_LISTS[name]
    texts = [t for t, _ in examples]
    trained = set(texts)
    for field in SCENE_FIELDS:
        assert not set(getattr(held_out, field)) & set(getattr(L.TRAIN, field)), field
        for template in getattr(held_out, field):
            compiled = pattern(template, field=field)
            assert not any(compiled.search(t) for t in texts), (field, template)
    known = L.training_words()
    for table in (held_out.plurals, held_out.numbers):
        for words in table.values():
            for phrase in words:
                assert not set(L.words(phrase)) <= known, f"{phrase!r} is all training words"
    items = heldout_scenes.prompts(held_out)
    unseen = [p for p in items if "unseen" in p.kind]
    assert unseen and not any(p.text in trained for p in unseen)
    for field in ("pairs", "left_of", "above", "counts"):  # the held-out list uses every held-out phrasing
        for template in getattr(held_out, field):
            assert any(pattern(template, field=field).search(p.text) for p in unseen), template


def test_held_out_scene_prompts_are_about_held_out_combinations():
    items = heldout_scenes.prompts()
    assert {p.kind for p in items} == {f"{k}, {w}" for k in heldout_scenes.KINDS for w in (
        "training phrasing", "unseen phrasing", "all unseen", "GenEval template")}
    named = [p for p in items if all(m.colour for m in p.reading.mentions)]
    assert all(p in named for p in items if "GenEval" not in p.kind)
    assert all(is_held_out(p.reading) for p in named)


def test_training_readings_avoid_held_out_combinations(examples):
    for _, reading in examples:
        assert not is_held_out(reading)
    singles = [r for _, r in examples if r.kind == "single" and r.background and r.first.shape and r.first.colour]
    assert singles and not any(ds.ShapeSpec(r.first.shape, r.first.colour, r.background) in ds.HELD_OUT
                               for r in singles)


LINKS = ("pairs", "left_of", "above")


def pattern(template: str, canonical: bool = False, field: str = "") -> re.Pattern:
    """A regex for ``template`` of Language ``field``: word slots match the word lists (canonical words
    only, if asked), thing slots ({a}, {x}, {t}; {b} in a link between two things) any text."""
    colours = list(ds.COLOURS) if canonical else list(COLOUR_WORDS)
    shapes = list(ds.SHAPES) if canonical else [w for w in SHAPE_WORDS if w not in PLURAL_WORDS]
    plurals = list(scene.PLURALS.values()) if canonical else list(PLURAL_WORDS)
    numbers = ["two", "three"] if canonical else [w for lang in (L.TRAIN, *L.HELD_OUT_LISTS.values())
                                                   for ws in lang.numbers.values() for w in ws]
    alternatives = {"c": colours, "b": colours, "w": colours, "c1": colours, "c2": colours, "s": shapes, "o": shapes,
                    "o1": shapes, "o2": shapes, "p": plurals, "n": numbers}

    def slot(name: str) -> str:
        if name in alternatives and not (field in LINKS and name == "b"):
            return "(?:" + "|".join(re.escape(w) for w in sorted(alternatives[name], key=len, reverse=True)) + ")"
        return ".+?"
    parts = re.split(r"\{(\w+)\}", L.with_articles(template) if canonical else template)
    body = "".join(re.escape(p) if i % 2 == 0 else slot(p) for i, p in enumerate(parts))
    return re.compile(body if canonical else rf"(?:^|\b|(?<=\s)){body}")


def test_readings_decode_by_the_fixed_rules():
    red_circle = Mention("circle", "red")
    assert Reading(red_circle, not_background="white").description().background == "black"
    assert Reading(Mention("circle", "black"), not_background="white").description().background == "red"
    assert Reading(red_circle, not_background="black").description().background == "white"
    assert Reading(Mention(None, "red"), background="blue", not_shape="circle").description().things == (
        scene.Thing("square", "red"),)
    assert Reading(Mention(None, "red"), not_shape="square").description().things[0].shape == "circle"
    # a background equal to a thing's colour is left out, not drawn as an invisible thing
    assert Reading(red_circle, background="red").description().background is None
    # two equal things are a count of two
    twice = Reading(red_circle, red_circle, "left of").description()
    assert twice.count == 2 and twice.relation is None
    three = Reading(Mention("square", None), count=3, not_background="white").description()
    assert scene.canonical_text(three) == "three squares on a black background"
    pair = Reading(Mention("circle", "white"), Mention("square", "black"), "above", not_background="red")
    assert scene.canonical_text(pair.description()) == "a white circle above a black square on an orange background"
