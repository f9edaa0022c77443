"""The analyzer is validated on procedural ground truth before it judges generated images."""
import numpy as np

from imagetune.shapes import dataset as ds
from imagetune.shapes.analyzer import analyze, nearest_colour


def test_analyzer_on_ground_truth_renders():
    rng = np.random.default_rng(123)
    specs = ds.all_specs()
    hits = [analyze(ds.render(s, 64, rng)).matches(s)["all"] for s in specs for _ in range(2)]
    assert np.mean(hits) >= 0.99


def test_analyzer_at_other_sizes_and_float_input():
    rng = np.random.default_rng(7)
    for spec in ds.held_out_specs():
        big = np.asarray(ds.render(spec, 256, rng)).astype(np.float32) / 255.0  # float 0..1 like IMAGE
        assert analyze(big).matches(spec)["all"]
        assert analyze(ds.render(spec, 32, rng)).matches(spec)["all"]


def test_analyzer_tolerates_noise_and_blur():
    from PIL import ImageFilter
    rng = np.random.default_rng(0)
    hits = []
    for spec in ds.all_specs()[::3]:
        image = ds.render(spec, 64, rng).filter(ImageFilter.GaussianBlur(1.5))
        noisy = np.clip(np.asarray(image, np.float32) + rng.normal(0, 12, (64, 64, 3)), 0, 255).astype(np.uint8)
        hits.append(analyze(noisy).matches(spec)["all"])
    assert np.mean(hits) >= 0.95


def test_plain_background_has_no_shape_and_colours_map_to_names():
    flat = np.full((64, 64, 3), ds.COLOURS["blue"], np.uint8)
    result = analyze(flat)
    assert result.background == "blue" and result.shape is None and not result.matches(
        ds.ShapeSpec("circle", "red", "blue"))["all"]
    for name, rgb in ds.COLOURS.items():
        assert nearest_colour(np.array(rgb, np.float32) + 15) == name
