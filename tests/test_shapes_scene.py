"""The two-object world (#12 item 4): scenes, their captions, held-out pairs, the judge and GenEval's tasks."""
import itertools

import numpy as np
import pytest

from imagetune.shapes import geneval
from imagetune.shapes import scene as sc
from imagetune.shapes.dataset import COLOURS, SHAPES, ShapeSpec, render
from imagetune.shapes.scene_analyzer import analyze_scene


def test_canonical_captions_name_what_the_scene_holds():
    red, blue = sc.Thing("circle", "red"), sc.Thing("square", "blue")
    assert sc.canonical(sc.Scene((red, blue), "left of", "white")) == \
        "a red circle to the left of a blue square on a white background"
    assert sc.canonical(sc.Scene((red, blue), "above", "orange")) == "a red circle above a blue square on an orange background"
    assert sc.canonical(sc.Scene((red, blue), None, "white")) == "a red circle and a blue square on a white background"
    assert sc.canonical(sc.Scene((red,) * 3, None, "black")) == "three red circles on a black background"
    assert sc.canonical_text(sc.Description((sc.Thing("triangle", None),) * 2)) == "two triangles"
    assert sc.canonical(sc.single(ShapeSpec("square", "orange", "white"))) == "an orange square on a white background"


@pytest.mark.parametrize("bad", [
    lambda: sc.Scene((sc.Thing("circle", "red"),), None, "red"),           # background = thing colour
    lambda: sc.Description((sc.Thing("circle", "red"),), "left of"),       # a relation needs two things
    lambda: sc.Description((sc.Thing("circle", "red"), sc.Thing("square", "red"), sc.Thing("circle", "red"))),
    lambda: sc.Scene((sc.Thing("circle", None),), None, "white"),          # a scene names every colour
    lambda: sc.Thing("hexagon", "red"),
])
def test_invalid_scenes_are_refused(bad):
    with pytest.raises(ValueError):
        bad()


def test_held_out_pairs_are_held_out_in_every_order_and_arrangement():
    things = sc.all_things()
    pairs = [(a, b) for a, b in itertools.permutations(things, 2)]
    held = {(a, b) for a, b in pairs if sc.is_held_out(sc.Description((a, b)))}
    assert 0.1 < len(held) / len(pairs) < 0.2
    assert all((b, a) in held for a, b in held)
    assert all(sc.is_held_out(sc.Description((a, b), "above")) for a, b in held)
    rng = np.random.default_rng(0)
    for kind in ("pair", "position", "count"):
        for _ in range(200):
            assert not sc.is_held_out(sc.random_scene(rng, kind))
            assert sc.is_held_out(sc.random_scene(rng, kind, held_out=True))


def test_single_object_scenes_render_exactly_as_the_first_world():
    spec = ShapeSpec("triangle", "green", "purple")
    assert np.array_equal(np.asarray(sc.render(sc.single(spec), 64, np.random.default_rng(3))),
                          np.asarray(render(spec, 64, np.random.default_rng(3))))


def test_the_judge_reads_every_object_of_ground_truth_renders():
    """Kind, colour, background and the order along the relation's axis, on 300 jittered renders."""
    rng = np.random.default_rng(1)
    for kind in ("pair", "position", "count"):
        for _ in range(100):
            scene = sc.random_scene(rng, kind, held_out=bool(rng.integers(2)))
            seen = analyze_scene(sc.render(scene, 64, rng))
            assert seen.background == scene.background
            assert sorted((o.shape, o.colour) for o in seen.objects) == sorted((t.shape, t.colour) for t in scene.things)
            if scene.relation:
                first, second = (seen.of(t.shape, t.colour)[0] for t in scene.things)
                axis = "x" if scene.relation == "left of" else "y"
                assert getattr(second, axis) - getattr(first, axis) > geneval.MARGIN


def test_the_judge_reads_single_objects_at_256_pixels_too():
    rng = np.random.default_rng(2)
    for shape, colour in itertools.product(SHAPES, COLOURS):
        background = "black" if colour != "black" else "white"
        seen = analyze_scene(sc.render(sc.Scene((sc.Thing(shape, colour),), None, background), 256, rng))
        assert [(o.shape, o.colour) for o in seen.objects] == [(shape, colour)]


def test_geneval_prompts_cover_the_six_tasks_and_ground_truth_scores_full_marks():
    asked = geneval.prompts(seeds=1)
    assert {p.task for p in asked} == set(geneval.TASKS + geneval.EXTRA)
    attribution = [p for p in asked if p.task == "colour attribution"]
    assert all(sc.is_held_out(sc.Description(p.ask.things)) for p in attribution)
    rng = np.random.default_rng(4)
    found = [analyze_scene(sc.render(geneval.ground_truth(p.ask, rng), 64, rng)) for p in asked]
    result = geneval.score(found, asked)
    assert result["overall"] == 1.0 and not result["misses"]


def test_geneval_checks_fail_wrong_pictures():
    """The same prompts judged against a picture of something else: counts, colours and sides must not pass."""
    rng = np.random.default_rng(5)
    asked = [p for p in geneval.prompts(seeds=1) if p.task in ("counting", "colour attribution", "position")]
    wrong = []
    for p in asked:
        ask = p.ask
        if ask.count:
            ask = geneval.Ask(ask.things, count=5 - ask.count)            # two <-> three
        elif ask.relation:
            ask = geneval.Ask(ask.things, relation=geneval.OPPOSITE[ask.relation])
        else:
            a, b = ask.things
            ask = geneval.Ask((sc.Thing(a.shape, b.colour), sc.Thing(b.shape, a.colour)))  # colours swapped
        wrong.append(analyze_scene(sc.render(geneval.ground_truth(ask, rng), 64, rng)))
    same_colour = [p.ask.things[0].colour == p.ask.things[1].colour for p in asked if p.task == "colour attribution"]
    result = geneval.score(wrong, asked)
    assert result["tasks"]["counting"] == 0.0 and result["tasks"]["position"] == 0.0
    assert result["tasks"]["colour attribution"] <= np.mean(same_colour)
