"""The training language is true of its combination, and the held-out language is never trained on."""
import re

import numpy as np
import pytest

from imagetune.shapes import dataset as ds
from imagetune.shapes import heldout
from imagetune.shapes import language as L
from imagetune.shapes.analyzer import Analysis


def canonical(word: str, table: dict[str, tuple[str, ...]]) -> str:
    """The canonical name whose word list holds ``word``."""
    (name,) = [k for k, words in table.items() if word in words]
    return name


def pattern(template: str) -> re.Pattern:
    """A regex matching ``template`` with every {x} slot captured by name."""
    parts = re.split(r"\{(\w)\}", template)
    body = "".join(re.escape(p) if i % 2 == 0 else f"(?P<{p}>.+?)" for i, p in enumerate(parts))
    return re.compile(rf"(?:^|\b){body}(?:$|,|\.|!| )")


@pytest.fixture(scope="module")
def captions():
    rng = np.random.default_rng(5)
    specs = ds.training_specs()
    return [(spec, L.describe(spec, rng)) for spec in specs for _ in range(20)]


def test_captions_use_only_training_words_and_name_the_shape_colour(captions):
    known = L.training_words()
    for spec, text in captions:
        assert set(L.words(text)) <= known | {"an"}, text
        assert any(re.search(rf"\b{re.escape(w)}\b", text) for w in L.TRAIN.colours[spec.colour]), text


def test_every_kind_of_caption_occurs(captions):
    texts = [t for _, t in captions]
    assert sum(any(pattern(tp).search(t) for tp in L.TRAIN.not_background) for t in texts) > 0.08 * len(texts)
    assert sum(any(pattern(tp).search(t) for tp in L.TRAIN.not_shape) for t in texts) > 0.04 * len(texts)
    assert sum(t in ds.all_captions(ds.training_specs()) for t in texts) > 0.15 * len(texts)
    assert len(set(texts)) > 0.7 * len(texts)


def test_negations_are_true_of_the_combination(captions):
    checked = 0
    for spec, text in captions:
        for template in L.TRAIN.not_background:
            m = pattern(template).search(text)
            if m and m["w"] in (w for ws in L.TRAIN.colours.values() for w in ws):
                assert canonical(m["w"], L.TRAIN.colours) not in (spec.background, spec.colour), text
                checked += 1
        for template in L.TRAIN.not_shape:
            m = pattern(template).search(text)
            if m and m["t"] in (w for ws in L.TRAIN.shapes.values() for w in ws):
                assert canonical(m["t"], L.TRAIN.shapes) != spec.shape, text
                assert canonical(m["b"], L.TRAIN.colours) == spec.background, text
                checked += 1
    assert checked > 0.1 * len(captions)


@pytest.mark.parametrize("name", list(L.HELD_OUT_LISTS))
def test_held_out_language_is_disjoint_from_training(name):
    held_out, known = L.HELD_OUT_LISTS[name], L.training_words()
    for table in (held_out.colours, held_out.shapes, held_out.plurals, held_out.numbers):
        for words in table.values():
            for phrase in words:
                assert not set(L.words(phrase)) <= known, f"{phrase!r} is all training words"
    for field in ("full", "prefixes", "suffixes", "not_background", "not_shape"):
        assert not set(getattr(held_out, field)) & set(getattr(L.TRAIN, field)), field
    for filler in held_out.prefixes + held_out.suffixes:
        assert not set(L.words(filler)) <= known, filler


@pytest.mark.parametrize("name", list(L.HELD_OUT_LISTS))
def test_held_out_prompts_are_unseen_where_they_say_so(captions, name):
    trained = {t for _, t in captions}
    known = L.training_words()
    items = heldout.prompts(L.HELD_OUT_LISTS[name])
    assert {p.kind for p in items} >= set(heldout.UNSEEN) | set(heldout.NEGATION)
    for p in items:
        if p.kind in ("unseen colour words", "unseen shape words", "unseen fillers"):
            assert not set(L.words(p.text)) <= known, p.text
        if p.kind in heldout.UNSEEN or "unseen phrasing" in p.kind:
            assert p.text not in trained
    # every prompt is about a held-out combination
    assert all(p.target.colour in ds.COLOURS for p in items)
    assert {(p.target.shape, p.target.colour, p.target.background) for p in items if p.kind == "canonical"} == {
        (s.shape, s.colour, s.background) for s in ds.HELD_OUT}


def test_targets_judge_negation():
    seen = Analysis("circle", "red", "green", {})
    assert heldout.Target("circle", "red", None, not_background="white").check(seen)["all"]
    assert not heldout.Target("circle", "red", None, not_background="green").check(seen)["all"]
    assert heldout.Target(None, "red", "green", not_shape="square").check(seen)["all"]
    assert not heldout.Target(None, "red", "green", not_shape="circle").check(seen)["all"]
    assert not heldout.Target(None, "red", "green", not_shape="circle").check(Analysis(None, None, "green", {}))["all"]


def test_articles_follow_the_next_word():
    assert L.with_articles("a orange disc on a ivory background") == "an orange disc on an ivory background"
    assert L.with_articles("A emerald box, a red dot") == "An emerald box, a red dot"


def test_the_readers_extra_language_adds_no_held_out_word():
    def words_of(lang):
        return {w for p in L.phrases(lang) for w in L.words(re.sub(r"\{\w+\}", " ", p))}

    extra = words_of(L.WIDE) - words_of(L.TRAIN)  # what only the prompt reader trains on
    assert len(extra) > 50
    for held_out in L.HELD_OUT_LISTS.values():
        assert not extra & words_of(held_out), sorted(extra & words_of(held_out))
        for field in L.TEMPLATE_FIELDS:
            assert not set(getattr(held_out, field)) & set(getattr(L.WIDE, field)), field
