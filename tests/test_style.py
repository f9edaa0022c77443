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
from imagetune.ops.style import reinhard_transfer


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


@pytest.mark.usefixtures("image_path")
def test_reinhard_output_statistics_equal_style_statistics():
    content, style = smooth_image(1, lo=0.3, hi=0.6), smooth_image(2, h=16, w=16, lo=0.35, hi=0.55)
    out = reinhard_transfer(content, style).double()
    got = paper_lab(out[0].reshape(3, -1).numpy())
    want = paper_lab(style[0].double().reshape(3, -1).numpy())
    assert np.allclose(got.mean(1), want.mean(1), atol=1e-4)
    assert np.allclose(got.std(1), want.std(1), atol=1e-4)
    # and it is not simply the style: the content's structure survives
    assert np.corrcoef(out[0, 0].flatten(), content[0, 0].flatten())[0, 1] > 0.9


@pytest.mark.usefixtures("image_path")
@pytest.mark.parametrize("space", ["CIELAB", "RGB"])
def test_reinhard_in_other_spaces(space):
    import kornia
    content, style = smooth_image(3, lo=0.3, hi=0.6), smooth_image(4, lo=0.4, hi=0.5)
    out = reinhard_transfer(content, style, space)
    convert = kornia.color.rgb_to_lab if space == "CIELAB" else (lambda x: x)
    got, want = convert(out), convert(style)
    assert torch.allclose(got.mean((2, 3)), want.mean((2, 3)), atol=1e-3)
    assert torch.allclose(got.std((2, 3), unbiased=False), want.std((2, 3), unbiased=False), atol=1e-3)


def ort_session(name, optimise=True):
    """onnxruntime on the shipped model: the reference the torch conversion is compared with."""
    import onnxruntime as ort
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    if not optimise:  # run the graph node by node, as written (no fused int8 kernels)
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    return ort.InferenceSession(str(N.models_folder() / f"{name}.onnx"), options, providers=["CPUExecutionProvider"])


def test_builtin_neural_style_matches_direct_onnx_run(tmp_path):
    image = smooth_image(6, b=2, h=24, w=32, lo=0.0, hi=1.0)
    out = run_node(tmp_path, image.permute(0, 2, 3, 1), NEURAL, style="style 07")
    session = ort_session("multistyle26")
    weights = np.eye(26, dtype=np.float32)[7]
    for b in range(2):
        ref = session.run(None, {"image": image[b:b + 1].numpy(), "style_weights": weights})[0]
        assert np.abs(out[b].permute(2, 0, 1).numpy() - np.clip(ref[0], 0, 1)).max() < 1e-5
    assert (out - image.permute(0, 2, 3, 1)).abs().mean() > 0.05


def torch_modules_on_the_cpu(monkeypatch):
    """Run the torch conversion (what CUDA and float64 images run) on CPU float32 tensors, instead of onnxruntime."""
    monkeypatch.setattr(N, "_on_onnxruntime", lambda like: False)


@pytest.mark.parametrize("h,w", [(17, 23), (16, 16), (31, 9)])
def test_multistyle26_in_torch_equals_onnxruntime_odd_sizes_and_batch(h, w, monkeypatch):
    torch_modules_on_the_cpu(monkeypatch)
    image = smooth_image(h * w, b=2, h=h, w=w, lo=0.0, hi=1.0)
    weights = torch.softmax(torch.rand(26, generator=torch.Generator().manual_seed(h)), 0)  # a blend of styles
    out = N.stylize_builtin(image, weights)  # both images in one batch
    assert out.shape == image.shape and out.dtype == torch.float32
    monkeypatch.setattr(N, "BATCH_PIXELS", 1)  # one image per network call gives the same result
    assert torch.allclose(N.stylize_builtin(image, weights), out, atol=1e-5)
    before = torch.get_num_threads()
    torch.set_num_threads(2)  # the calls shared out over two threads, inside inference mode as the runtime runs nodes
    try:
        with torch.inference_mode():
            assert torch.allclose(N.stylize_builtin(image, weights), out, atol=1e-5)
    finally:
        torch.set_num_threads(before)
    session = ort_session("multistyle26")
    for b in range(2):
        padded = N._pad_to_multiple(image[b:b + 1], 4)  # the network needs sides a multiple of 4
        ref = session.run(None, {"image": padded.numpy(), "style_weights": weights.numpy()})[0][..., :h, :w]
        assert np.abs(out[b:b + 1].numpy() - ref).max() < 1e-4


def all_intermediates(name, module, inputs):
    """onnxruntime's value of every node output of the shipped graph (run as written, unoptimised)."""
    import onnx
    import onnxruntime as ort
    graph = onnx.load(str(N.models_folder() / f"{name}.onnx"))
    outputs = [out for step in module.steps for out in step[2]]
    del graph.graph.output[:]
    graph.graph.output.extend(onnx.helper.make_empty_tensor_value_info(out) for out in outputs)
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    session = ort.InferenceSession(graph.SerializeToString(), options, providers=["CPUExecutionProvider"])
    feeds = {i.name: x.numpy() for i, x in zip(session.get_inputs(), inputs)}
    return dict(zip(outputs, session.run(None, feeds)))


def check_int8_graph_node_by_node(name, inputs):
    """Each converted node, fed onnxruntime's values of its inputs, reproduces onnxruntime's outputs.

    End to end the two runs drift apart: a float summation-order difference at a rounding tie flips
    one int8 value by one step, and instance norm spreads that over a whole channel. Fed the same
    inputs, every node must agree: floats within float32 rounding, int8 values by at most one
    step on a tiny fraction of ties.
    """
    module = N.model(name)
    ref = all_intermediates(name, module, inputs)
    constants = {name: getattr(module, buffer) for name, buffer in module.buffer_names.items()}
    graph_inputs = dict(zip(module.input_names, inputs))
    values = {**constants, **graph_inputs, **{k: torch.from_numpy(v) for k, v in ref.items()}}
    flips = total = 0
    with torch.inference_mode():
        for step in module.steps:
            for out, ours in zip(step[2], module.run_step(step, values)):
                assert ours.shape == ref[out].shape and ours.numpy().dtype == ref[out].dtype, (step[0], out)
                expected = ref[out].astype(np.float64)
                mine = ours.numpy().astype(np.float64)
                with np.errstate(invalid="ignore"):  # equal infinities (a zero variance) count as equal
                    diff = np.where(mine == expected, 0.0, np.abs(mine - expected))
                if step[0] == "QuantizeLinear":
                    assert diff.max() <= 1, out
                    flips, total = flips + (diff > 0).sum(), total + diff.size
                else:
                    scale = 1 + np.abs(expected[np.isfinite(expected)]).max(initial=0)
                    assert diff.max() <= 1e-4 * scale, (step[0], out, diff.max())
    assert flips / total < 1e-4
    with torch.inference_mode():
        final = module(*inputs)[0].numpy()
    drift = np.abs(final - ref[module.output_names[0]])
    assert np.median(drift) < 1e-6 and drift.mean() < 0.01  # the end-to-end drift stays small
    return ref[module.output_names[0]]


def test_arbitrary_predict_in_torch_matches_onnxruntime():
    style = torch.rand(1, 256, 256, 3, generator=torch.Generator().manual_seed(3))
    vector = check_int8_graph_node_by_node("arbitrary_predict", [style])
    assert vector.shape == (1, 1, 1, 100) and np.abs(vector).mean() > 0.1


def test_arbitrary_transform_in_torch_matches_onnxruntime():
    content = smooth_image(4, h=384, w=384, lo=0.0, hi=1.0).permute(0, 2, 3, 1).contiguous()
    vector = torch.randn(1, 1, 1, 100, generator=torch.Generator().manual_seed(4)) * 0.5
    out = check_int8_graph_node_by_node("arbitrary_transform", [content, vector])
    assert out.shape == (1, 384, 384, 3)


def tiny_qdq_model(path):
    """QuantizeLinear -> DequantizeLinear -> Conv (int8 per-channel weights) -> Clip, as the int8 graphs use."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper
    weights = np.array([[[[1, -2], [3, 4]]], [[[-5, 6], [7, -8]]]], dtype=np.int8)  # [2,1,2,2]
    inits = [numpy_helper.from_array(np.array(0.5, np.float32), "s"), numpy_helper.from_array(np.array(3, np.int8), "z"),
             numpy_helper.from_array(weights, "wq"), numpy_helper.from_array(np.array([0.25, 0.125], np.float32), "ws"),
             numpy_helper.from_array(np.zeros(2, np.int8), "wz"), numpy_helper.from_array(np.array(0.0, np.float32), "lo"),
             numpy_helper.from_array(np.array(6.0, np.float32), "hi")]
    nodes = [helper.make_node("QuantizeLinear", ["x", "s", "z"], ["xq"]),
             helper.make_node("DequantizeLinear", ["xq", "s", "z"], ["xd"]),
             helper.make_node("DequantizeLinear", ["wq", "ws", "wz"], ["w"], axis=0),
             helper.make_node("Conv", ["xd", "w"], ["c"], pads=[1, 0, 0, 1]),
             helper.make_node("Clip", ["c", "lo", "hi"], ["y"])]
    graph = helper.make_graph(nodes, "qdq", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, 4, 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], inits)
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    return path


def test_quantize_dequantize_semantics_match_onnxruntime_exactly(tmp_path):
    import onnxruntime as ort
    from imagetune.ops.onnx_torch import OnnxModule
    path = tiny_qdq_model(tmp_path / "qdq.onnx")
    # exact ties x/0.5 = k + 0.5 (round half to even), values that saturate at -128 and 127
    x = torch.tensor([0.25, 0.75, 1.25, -0.25, -0.75, 2.2, -70.0, 70.0, 0.1, 1.0, 3.3, -1.1, 0.6, 5.0, -2.0, 9.9]).reshape(1, 1, 4, 4)
    ours = OnnxModule(path)(x)[0]
    ref = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"x": x.numpy()})[0]
    assert ours.shape == ref.shape == (1, 2, 4, 4)
    assert np.abs(ours.numpy() - ref).max() < 1e-6 and ref.max() > 0


def test_in_place_ops_never_overwrite_a_value_still_read_through_a_view(tmp_path):
    import onnx
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper
    from imagetune.ops.onnx_torch import OnnxModule
    g = np.random.default_rng(0)
    inits = [numpy_helper.from_array(g.normal(size=(4, 2, 3, 3)).astype(np.float32), "w"),
             numpy_helper.from_array(np.array([1, 4, 5, 5], np.int64), "flat"),
             numpy_helper.from_array(np.array([1, 4, 1, 25], np.int64), "back"),
             numpy_helper.from_array(np.array(0.5, np.float32), "half")]
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"]),  # fresh: its consumers may write into it
             helper.make_node("Reshape", ["c", "back"], ["view"]),  # a view of c, still read below
             helper.make_node("Relu", ["view"], ["r"]),  # must not overwrite c through the view
             helper.make_node("Reshape", ["r", "flat"], ["r4"]),
             helper.make_node("Sub", ["c", "r4"], ["d"]),  # c's last read: d may be written in place
             helper.make_node("Mul", ["d", "half"], ["m"]), helper.make_node("Sigmoid", ["m"], ["y"])]
    graph = helper.make_graph(nodes, "views", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, 7, 7])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], inits)
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(tmp_path / "views.onnx"))
    x = torch.randn(1, 2, 7, 7, generator=torch.Generator().manual_seed(0))
    module = OnnxModule(tmp_path / "views.onnx")
    assert module.in_place == [False, False, False, False, True, True, True]
    with torch.inference_mode():
        ours = module(x)[0]
    ref = ort.InferenceSession(str(tmp_path / "views.onnx"), providers=["CPUExecutionProvider"]).run(None, {"x": x.numpy()})[0]
    assert np.abs(ours.numpy() - ref).max() < 1e-6 and np.abs(ref - 0.5).max() > 0.1


def test_unknown_onnx_op_names_op_and_file(tmp_path):
    import onnx
    from onnx import TensorProto, helper
    from imagetune.ops.onnx_torch import OnnxModule
    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["r"]), helper.make_node("Softmax", ["r"], ["y"], name="odd")],
                              "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])])
    onnx.save(helper.make_model(graph), str(tmp_path / "softmax.onnx"))
    with pytest.raises(NotImplementedError, match=r"softmax\.onnx: ONNX op Softmax \(node 'odd'\) is not supported"):
        OnnxModule(tmp_path / "softmax.onnx")


def test_neural_style_follows_float64_input():
    image = smooth_image(9, h=12, w=20, lo=0.0, hi=1.0)
    out64 = N.stylize_builtin(image.double(), N.style_weights(4))
    out32 = N.stylize_builtin(image, N.style_weights(4))
    assert out64.dtype == torch.float64 and out64.device == image.device
    assert (out64 - out32.double()).abs().max() < 1e-4
    vector = N.style_vector(image.double())
    assert vector.dtype == torch.float64 and vector.shape == (1, 1, 1, 100)
    styled = N.stylize_arbitrary(image.double(), [vector])
    assert styled.dtype == torch.float64 and styled.shape == image.shape


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_neural_style_stays_on_cuda():
    image = smooth_image(10, b=2, h=20, w=28, lo=0.0, hi=1.0)
    gpu = image.cuda()
    out = N.stylize_builtin(gpu, N.style_weights(2))
    assert out.device.type == "cuda" and out.shape == gpu.shape
    assert (out.cpu() - N.stylize_builtin(image, N.style_weights(2))).abs().max() < 1e-3
    vector = N.style_vector(gpu[:1])
    assert vector.device.type == "cuda"
    styled = N.stylize_arbitrary(gpu, [vector, vector])
    assert styled.device.type == "cuda" and styled.shape == gpu.shape


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


def test_missing_onnx_package_is_a_clear_error(monkeypatch):
    import sys

    from imagetune.ops.onnx_torch import OnnxModule
    monkeypatch.setitem(sys.modules, "onnx", None)  # what an environment without the package looks like
    with pytest.raises(ModuleNotFoundError, match="needs the 'onnx' package: pip install onnx"):
        OnnxModule(N.models_folder() / "multistyle26.onnx")


def test_ycbcr_equals_kornias():
    """The YCbCr used to keep luminance or colour is kornia's definition (written without importing kornia)."""
    import kornia
    from imagetune.ops.color import rgb_to_ycbcr, ycbcr_to_rgb
    rgb = torch.rand(2, 3, 9, 7, generator=torch.Generator().manual_seed(8))
    assert torch.allclose(rgb_to_ycbcr(rgb), kornia.color.rgb_to_ycbcr(rgb), atol=1e-6)
    off_gamut = torch.rand(2, 3, 9, 7, generator=torch.Generator().manual_seed(9))
    assert torch.allclose(ycbcr_to_rgb(off_gamut), kornia.color.ycbcr_to_rgb(off_gamut), atol=1e-6)
    assert torch.allclose(ycbcr_to_rgb(rgb_to_ycbcr(rgb)), rgb, atol=1e-6)


def test_reading_the_style_models_imports_no_onnx_package():
    """The ONNX files are parsed with onnx's protobuf classes alone: importing the onnx package (and the
    ml_dtypes it imports) was about a second of every style run's start."""
    import subprocess
    import sys
    from pathlib import Path
    root = Path(__file__).resolve().parents[1]
    code = ("import importlib.util, sys\n"
            f"spec = importlib.util.spec_from_file_location('imagetune', {str(root / '__init__.py')!r}, "
            f"submodule_search_locations=[{str(root)!r}])\n"
            "module = importlib.util.module_from_spec(spec); sys.modules['imagetune'] = module; spec.loader.exec_module(module)\n"
            "from imagetune.ops import neural_style as N\n"
            "N.model('multistyle26'); N.model('arbitrary_predict')\n"
            "print(sorted(m for m in ('onnx', 'ml_dtypes', 'kornia') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]", done.stdout + done.stderr


def test_one_image_at_two_threads_shares_its_steps_out_with_the_same_result(monkeypatch):
    """One network call at two torch threads runs at one with its big steps in pieces on two threads
    (ops/onnx_shared.py), giving the one-thread result."""
    from imagetune.ops import onnx_shared

    torch_modules_on_the_cpu(monkeypatch)
    image = smooth_image(11, b=1, h=64, w=64, lo=0.0, hi=1.0)
    weights = N.style_weights(5)
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        alone = N.stylize_builtin(image, weights)
        split = []
        real = onnx_shared.split_step
        monkeypatch.setattr(onnx_shared, "split_step", lambda *a: split.append(a[0]) or real(*a))
        torch.set_num_threads(2)
        with torch.inference_mode():
            shared = N.stylize_builtin(image, weights)
        assert torch.get_num_threads() == 2  # restored
    finally:
        torch.set_num_threads(before)
    assert {"Conv", "Pad", "Relu"} <= set(split)
    assert torch.allclose(shared, alone, atol=1e-5)


@pytest.mark.parametrize("threads", [1, 2])
def test_cpu_float32_images_run_on_onnxruntime_one_image_a_call(threads, monkeypatch):
    """On CPU float32 tensors the built-in style runs the shipped file on onnxruntime, one image a call (the graph
    fixes the batch at 1), at one and two threads (a batch shares the threads out, one image takes them all),
    and gives the direct onnxruntime run's pictures at odd sizes."""
    from imagetune.ops import onnx_cpu

    calls = []
    real = onnx_cpu.run
    monkeypatch.setattr(onnx_cpu, "run", lambda *a, threads=1: calls.append((tuple(a[1].shape), threads)) or real(*a, threads=threads))
    weights = torch.softmax(torch.rand(26, generator=torch.Generator().manual_seed(threads)), 0)
    session = ort_session("multistyle26")
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        for b, (h, w) in ((3, (17, 23)), (1, (31, 9))):
            image = smooth_image(h + b, b=b, h=h, w=w, lo=0.0, hi=1.0)
            calls.clear()
            with torch.inference_mode():
                out = N.stylize_builtin(image, weights)
            assert out.shape == image.shape and out.dtype == torch.float32
            padded = N._pad_to_multiple(image, 4)
            assert calls == [((1,) + tuple(padded.shape[1:]), 1 if b > 1 else threads)] * b
            for i in range(b):
                ref = session.run(None, {"image": padded[i:i + 1].numpy(), "style_weights": weights.numpy()})[0]
                assert np.abs(out[i:i + 1].numpy() - ref[..., :h, :w]).max() < 1e-6
        assert torch.get_num_threads() == threads
    finally:
        torch.set_num_threads(before)


def test_onnxruntime_run_names_a_wrong_number_of_inputs():
    from imagetune.ops import onnx_cpu

    with pytest.raises(ValueError, match="multistyle26.onnx takes 2 inputs"):
        onnx_cpu.run(N.models_folder() / "multistyle26.onnx", torch.zeros(1, 3, 16, 16))
