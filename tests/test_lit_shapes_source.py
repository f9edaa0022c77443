"""The LiT shapes data source: true captions from both worlds, claims read right, nothing held out in training."""
from __future__ import annotations

import numpy as np
import pytest

from imagetune.lit.claims import ALL_COLOURS, Claim, Slot, claim_of, holds, holds_matrix
from imagetune.lit.prompt_ranking import meets
from imagetune.lit.reading import CaptionReader
from imagetune.lit.shapes_source import ShapesPairs, confusers, drawn, hard_negatives, shows_held_out
from imagetune.lit.tune import Meaning, caption_truth
from imagetune.shapes import dataset as ds
from imagetune.shapes import heldout
from imagetune.shapes import language as L
from imagetune.shapes import scene as S
from imagetune.shapes.scene_analyzer import analyze_scene

RED_CIRCLE, BLUE_SQUARE = S.Thing("circle", "red"), S.Thing("square", "blue")


def truth_set(claim: Claim) -> set[ds.ShapeSpec]:
    """The one-object combinations a claim is true of."""
    specs = ds.all_specs()
    return {spec for spec, true in zip(specs, holds_matrix([claim], [S.single(s) for s in specs])[0]) if true}


@pytest.fixture(scope="module")
def source():
    return ShapesPairs(pairs=1200, seed=3, size=32, held_per_combination=1, held_scenes_per_kind=4)


def test_claims_of_scenes_follow_order_relation_count_and_omissions():
    left = S.Scene((RED_CIRCLE, BLUE_SQUARE), "left of", "white")
    assert holds(claim_of(left), left)
    assert not holds(claim_of(left), S.Scene((BLUE_SQUARE, RED_CIRCLE), "left of", "white"))  # order matters
    assert not holds(claim_of(left), S.Scene((RED_CIRCLE, BLUE_SQUARE), "above", "white"))
    anywhere = S.Description((BLUE_SQUARE, RED_CIRCLE), None, "white")  # "a blue square and a red circle"
    assert holds(claim_of(anywhere), left) and holds(claim_of(anywhere), S.Scene((RED_CIRCLE, BLUE_SQUARE), "above", "white"))
    bare = S.omissions(left)[-1]  # "a circle to the left of a square"
    assert holds(claim_of(bare), S.Scene((S.Thing("circle", "green"), S.Thing("square", "black")), "left of", "red"))
    two = S.Scene((RED_CIRCLE,) * 2, None, "green")
    assert holds(claim_of(two), two) and not holds(claim_of(two), S.Scene((RED_CIRCLE,) * 3, None, "green"))
    # identical bare things read as a count, which names no relation: "two circles" is true either way round
    pair = S.Scene((RED_CIRCLE, S.Thing("circle", "blue")), "above", "white")
    assert S.canonical_text(S.omissions(pair)[-1]) == "two circles"
    assert holds(claim_of(S.omissions(pair)[-1]), S.Scene(pair.things, "left of", "black"))
    assert not holds(claim_of(S.single(ds.ShapeSpec("circle", "red", "white"))), left)  # one thing is not two


def test_reader_reads_negations_omissions_and_articles():
    read = CaptionReader().claim
    assert truth_set(read("a red circle, not on a white background")) == {
        ds.ShapeSpec("circle", "red", b) for b in ds.COLOURS if b not in ("red", "white")}
    assert truth_set(read("a photo of a crimson shape on a navy background, not a triangle, 4k.")) == {
        ds.ShapeSpec("circle", "red", "blue"), ds.ShapeSpec("square", "red", "blue")}
    assert truth_set(read("an orange disc over an off-white backdrop")) == {ds.ShapeSpec("circle", "orange", "white")}
    assert read("a golden block") == Claim((Slot(frozenset({"square"}), frozenset({"yellow"})),), None, ALL_COLOURS)
    with pytest.raises(ValueError, match="not a caption of this language"):
        read("a red circle next to a blue square")


def test_reader_agrees_with_every_held_out_prompts_target():
    """An independent check of the reader: the committed held-out list says what each prompt asks for."""
    readers = (CaptionReader(L.TRAIN), CaptionReader(L.HELD_OUT))
    specs = ds.all_specs()
    for prompt in heldout.prompts():
        claims = []
        for reader in readers:
            try:
                claims.append(reader.claim(prompt.text))
            except ValueError:
                pass
        assert claims, prompt.text
        assert truth_set(claims[0]) == {s for s in specs if meets(prompt.target, s)}, prompt.text


def test_every_one_object_caption_is_read_and_true_of_its_picture():
    rng, reader = np.random.default_rng(11), CaptionReader()
    sizes = []
    for spec in ds.training_specs():
        for _ in range(12):
            claimed = truth_set(reader.claim(L.describe(spec, rng)))
            assert spec in claimed
            sizes.append(len(claimed))
    # exact captions, no background (7 backgrounds), not the background (6), not the shape (2)
    assert set(sizes) == {1, 2, 6, 7}
    assert 0.7 < sizes.count(1) / len(sizes) < 0.9


def test_drawn_scenes_say_the_relation_their_picture_has():
    rng = np.random.default_rng(4)
    for _ in range(60):
        scene = S.random_scene(rng, "pair")
        image, shown = drawn(scene, 64, rng)
        assert shown.relation in S.RELATIONS and sorted(shown.things, key=str) == sorted(scene.things, key=str)
        seen = analyze_scene(image)
        first, second = (seen.of(t.shape, t.colour)[0] for t in shown.things)
        axis = "x" if shown.relation == "left of" else "y"
        assert getattr(second, axis) - getattr(first, axis) > 0.1


def test_training_pairs_come_from_both_worlds_and_are_true(source):
    assert len(source.train_captions) == 1200 and len(source.train_pair_images) == 1200
    contents = [source.train_contents[i] for i in source.train_pair_images]
    truth = holds_matrix(source.train_claims, list(dict.fromkeys(contents)))
    column = {c: i for i, c in enumerate(dict.fromkeys(contents))}
    assert all(truth[row, column[c]] for row, c in enumerate(contents))
    kinds = [source.train_scenes[i].kind for i in source.train_pair_images]
    assert 0.4 < kinds.count("single") / len(kinds) < 0.6
    assert {"pair", "position", "count"} <= set(kinds)
    texts = set(source.train_captions)
    assert any("not" in t or "without" in t or "except" in t for t in texts)  # negations of the rich language
    assert any(" to the left of " in t for t in texts) and any(t.startswith(("two ", "three ")) for t in texts)
    assert any(t.startswith("a circle") or t.startswith("a square") or t.startswith("a triangle") for t in texts)


def test_held_out_combinations_and_pairs_never_reach_training(source):
    for scene in source.train_contents:
        assert not shows_held_out(scene), scene
        if len(scene.things) == 1:
            assert ds.ShapeSpec(scene.things[0].shape, scene.things[0].colour, scene.background) not in ds.HELD_OUT
    held = source.held_scenes
    assert all(ds.ShapeSpec(s.things[0].shape, s.things[0].colour, s.background) in ds.HELD_OUT
               for s in held[:source.held_one_object])
    assert all(S.is_held_out(s) for s in held[source.held_one_object:])
    assert not set(source.held_captions) & set(source.train_captions)


def test_positives_count_every_picture_a_caption_is_true_of(source):
    meaning = source.meaning()
    distinct = list(dict.fromkeys(source.train_captions))
    truth, content_ids = caption_truth(source.train_captions, distinct, meaning)
    per_caption = truth.sum(1)
    row = {c: i for i, c in enumerate(distinct)}
    # a caption that names everything is true of one content; omissions and negations of several
    assert per_caption[row[next(c for c in distinct if c.startswith("two ") and " on " not in c)]] > 1
    assert (per_caption > 1).float().mean() > 0.2
    with pytest.raises(ValueError, match="not true of its own"):
        bad = Meaning([claim_of(S.single(ds.ShapeSpec("circle", "red", "blue")))] * 2,
                      [S.single(ds.ShapeSpec("circle", "red", "blue")), S.single(ds.ShapeSpec("square", "red", "blue"))],
                      holds_matrix)
        caption_truth(["a red circle on a blue background"] * 2, ["a red circle on a blue background"], bad)


def test_held_out_truth_knows_the_confusers_are_false(source):
    scenes = source.held_scenes[source.held_one_object:]
    offset = source.held_one_object
    for index, scene in enumerate(scenes):
        texts = [S.canonical(scene)] + [S.canonical(o) for o in confusers(scene).values()]
        truth = source.held_truth(texts)[:, offset + index]
        assert truth[0] and not truth[1:].any(), texts
    assert bool(source.held_truth(source.held_captions).diagonal().all())


def test_hard_negatives_share_the_words_but_are_false_of_the_picture():
    pictures = [S.Scene((RED_CIRCLE, BLUE_SQUARE), "left of", "white"), S.Scene((RED_CIRCLE,) * 2, None, "green"),
                S.Scene((RED_CIRCLE, S.Thing("circle", "blue")), "above", "yellow"), S.single(ds.ShapeSpec("square", "red", "black"))]
    for picture in pictures:
        for description in S.omissions(picture):
            negatives = hard_negatives(description)
            assert negatives and description not in negatives
            assert holds(claim_of(description), picture)
            assert not holds_matrix([claim_of(n) for n in negatives], [picture]).any(), description
    texts = {S.canonical_text(n) for n in hard_negatives(S.Scene((RED_CIRCLE, BLUE_SQUARE), "left of", "white"))}
    assert {"a blue circle to the left of a red square on a white background",  # colours swapped
            "a blue square to the left of a red circle on a white background",  # order swapped
            "a red circle above a blue square on a white background",  # the other relation
            "a red circle on a white background", "two blue squares on a white background"} <= texts
    assert "three red circles on a green background" in {S.canonical_text(n) for n in hard_negatives(pictures[1])}


def test_scene_captions_carry_hard_negatives_and_none_is_held_out(source):
    meaning = source.meaning()
    scene_pairs = [i for i, image in enumerate(source.train_pair_images) if len(source.train_scenes[image].things) > 1]
    assert scene_pairs and all(meaning.negatives[i] for i in scene_pairs)
    held_texts = {S.canonical_text(d) for s in source.held_scenes[source.held_one_object:] for d in S.omissions(s)
                  if d.things[0].colour}  # the colourless words are trained on every pair
    held_texts |= {S.canonical(S.single(spec)) for spec in ds.HELD_OUT}
    assert not held_texts & {text for group in meaning.negatives for text, _ in group}
    # the negatives' truth is computed with the captions': false of their own caption's picture
    distinct = list(dict.fromkeys(source.train_captions + [t for g in meaning.negatives for t, _ in g]))
    truth, content_ids = caption_truth(source.train_captions, distinct, meaning)
    row = {t: i for i, t in enumerate(distinct)}
    for i in scene_pairs[:200]:
        assert not any(truth[row[t], content_ids[i]] for t, _ in meaning.negatives[i])
