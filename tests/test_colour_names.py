"""Colour names resolved to the world's colours: the rule against the training language's own labels, the
reader's words left as written, and the rewriting itself."""
from __future__ import annotations

from imagetune.shapes import colour_names as N
from imagetune.shapes import language as L
from imagetune.shapes import understand_data
from imagetune.shapes.dataset import COLOURS


def test_every_world_colour_is_its_own_name():
    assert set(N.BASIC) == set(COLOURS)
    assert all(N.world_colour(c, N.survey()[c]) == c for c in N.BASIC)


def test_the_rule_agrees_with_the_training_languages_labels():
    # the language's synonyms that the survey names, less those that say their colour ("forest green")
    labelled = [(w, c) for c, ws in L.WIDE.colours.items() for w in ws
                if w in N.survey() and not set(w.split()) & set(N.BASIC)]
    agree = sum(N.world_colour(w, N.survey()[w]) == c for w, c in labelled)
    assert len(labelled) >= 20 and agree >= 0.9 * len(labelled)
    # a dark or pale shade keeps its hue; a hueless one goes by lightness
    assert N.world_colour("navy", N.survey()["navy"]) == "blue"
    assert N.world_colour("charcoal", N.survey()["charcoal"]) == "black"


def test_what_the_reader_learnt_reads_as_written():
    known = N.reader_words()
    for caption, _ in understand_data.training_examples(2000, seed=5):  # the reader's own training captions
        assert N.resolve(caption, known) == caption


def test_names_it_never_learnt_become_world_colours():
    known = N.reader_words()
    assert N.resolve("a maroon circle on an aubergine background", known) == "a red circle on a purple background"
    assert N.resolve("An Aubergine square, periwinkle-tinted!", known) == "A purple square, blue-tinted!"
    # the longest name wins, a modifier is no name alone, and unknown words that name no colour stay
    assert N.resolve("a light bluish green disc", known) == "a green disc"
    assert N.resolve("a dark zorblax circle", known) == "a dark zorblax circle"
    assert N.as_reader_reads(["a red circle", "a maroon box"]) == ["a red circle", "a red box"]
