"""The procedural shapes data set: deterministic, labels right, held-out combinations kept out."""
import numpy as np
import pytest

from imagetune.shapes import dataset as ds


def test_same_seed_same_samples_and_different_seed_differs():
    a_images, a_caps, a_specs = ds.make_dataset(40, seed=3, size=32)
    b_images, b_caps, b_specs = ds.make_dataset(40, seed=3, size=32)
    c_images, _, _ = ds.make_dataset(40, seed=4, size=32)
    assert np.array_equal(a_images, b_images) and a_caps == b_caps and a_specs == b_specs
    assert not np.array_equal(a_images, c_images)
    assert a_images.shape == (40, 32, 32, 3) and a_images.dtype == np.uint8


def test_combinations_and_held_out_split():
    everything = ds.all_specs()
    assert len(everything) == len(ds.SHAPES) * len(ds.COLOURS) * (len(ds.COLOURS) - 1)
    assert all(s.colour != s.background for s in everything)
    train, held = set(ds.training_specs()), set(ds.held_out_specs())
    assert not train & held and train | held == set(everything)
    # every attribute value still occurs in training, so held-out scores measure composition
    for field, values in (("shape", ds.SHAPES), ("colour", ds.COLOURS), ("background", ds.COLOURS)):
        assert {getattr(s, field) for s in train} == set(values)
    _, _, specs = ds.make_dataset(300, seed=0, size=16)
    assert not set(specs) & held
    _, _, held_specs = ds.make_dataset(32, seed=0, size=16, held_out=True)
    assert set(held_specs) == held


def test_captions_name_the_spec():
    spec = ds.ShapeSpec("triangle", "red", "blue")
    assert ds.caption(spec) == "a red triangle on a blue background"
    for v in range(len(ds.TEMPLATES)):
        words = ds.caption(spec, v).replace(",", "").split()
        assert {"red", "triangle", "blue"} <= set(words)
        assert words.index("red") + 1 == words.index("triangle")  # the colour word sits before the shape
    _, caps, specs = ds.make_dataset(50, seed=1, size=16)
    for cap, s in zip(caps, specs):
        assert f"{s.colour} {s.shape}" in cap and s.background in cap


@pytest.mark.parametrize("spec", [ds.ShapeSpec("circle", "yellow", "black"),
                                  ds.ShapeSpec("square", "white", "purple"),
                                  ds.ShapeSpec("triangle", "green", "orange")])
def test_render_pixels_match_the_spec(spec):
    image = np.asarray(ds.render(spec, 64))
    assert tuple(image[0, 0]) == ds.COLOURS[spec.background]
    assert tuple(image[32, 32]) == ds.COLOURS[spec.colour]
    filled = (np.abs(image.astype(int) - ds.COLOURS[spec.colour]).sum(-1) < 30).mean()
    half = 0.55 / 2  # nominal half-width as a fraction of the image
    expected = {"circle": np.pi * half ** 2, "square": (2 * half * 0.9) ** 2, "triangle": 2 * half ** 2}
    assert filled == pytest.approx(expected[spec.shape], rel=0.08)


def test_bad_spec_is_rejected():
    with pytest.raises(ValueError, match="background"):
        ds.ShapeSpec("circle", "red", "red")
    with pytest.raises(ValueError, match="shape"):
        ds.ShapeSpec("hexagon", "red", "blue")
