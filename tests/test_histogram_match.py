"""Histogram matching: the 8-bit counting path and the sorting path agree, per-image styles, against numpy."""
import numpy as np
import pytest
import torch

from imagetune.ops.histogram_match import _eight_bit_levels, histogram_match


def numpy_match(source: np.ndarray, template: np.ndarray) -> np.ndarray:
    """skimage.exposure.match_histograms for one channel, written with numpy."""
    s_values, s_idx, s_counts = np.unique(source.ravel(), return_inverse=True, return_counts=True)
    t_values, t_counts = np.unique(template.ravel(), return_counts=True)
    return np.interp(np.cumsum(s_counts) / source.size, np.cumsum(t_counts) / template.size,
                     t_values)[s_idx].reshape(source.shape)


# every test runs on the CPU library path and on the torch path (what CUDA tensors take)
pytestmark = pytest.mark.usefixtures("image_path")


def eight_bit(*shape, seed: int) -> torch.Tensor:
    """float32 images exactly as an 8-bit loader makes them (level / 255)."""
    levels = torch.randint(0, 256, shape, generator=torch.Generator().manual_seed(seed))
    return torch.from_numpy(levels.numpy().astype(np.float32) / 255.0)


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


def ort_session(name, optimise=True):
    """onnxruntime on the shipped model: the reference the torch conversion is compared with."""
    import onnxruntime as ort
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    if not optimise:  # run the graph node by node, as written (no fused int8 kernels)
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    return ort.InferenceSession(str(N.models_folder() / f"{name}.onnx"), options, providers=["CPUExecutionProvider"])


def test_counting_path_is_taken_only_for_8_bit_values():
    image = eight_bit(2, 3, 9, 7, seed=0)
    assert torch.equal(_eight_bit_levels(image.reshape(6, -1)), (image * 255).round().long().reshape(6, -1))
    assert _eight_bit_levels(image.reshape(6, -1) + 1e-4) is None
    assert _eight_bit_levels(image.double().reshape(6, -1)) is None  # float64 of a float32 level is off the grid
    assert _eight_bit_levels(torch.full((1, 4), 2.0)) is None  # out of range


def test_counting_and_sorting_paths_agree():
    content = eight_bit(3, 3, 31, 17, seed=1)
    style = torch.rand(1, 3, 20, 25, generator=torch.Generator().manual_seed(2)) ** 2
    counted = histogram_match(content, style)
    sorted_path = histogram_match(content.double(), style.double())
    assert torch.allclose(counted.double(), sorted_path, atol=1e-6)
    for b in range(3):
        for c in range(3):
            assert np.allclose(counted[b, c].numpy(), numpy_match(content[b, c].numpy(), style[0, c].numpy()), atol=1e-6)


def test_one_style_per_image():
    content = torch.rand(2, 3, 12, 10, generator=torch.Generator().manual_seed(3))
    style = eight_bit(2, 3, 8, 9, seed=4)
    out = histogram_match(content, style)
    for b in range(2):
        for c in range(3):
            assert np.allclose(out[b, c].numpy(), numpy_match(content[b, c].numpy(), style[b, c].numpy()), atol=1e-6)


def test_torch_path_used_on_gpus_equals_the_numpy_path(monkeypatch):
    """GPU tensors take torch's sort/search/interp; forced here on the CPU, they must give the same result."""
    from imagetune.ops import histogram_match as H
    content = torch.rand(2, 3, 15, 11, generator=torch.Generator().manual_seed(5))
    content[:, :, :4] = 0.5  # ties
    style = eight_bit(1, 3, 9, 13, seed=6)
    via_numpy = histogram_match(content, style)
    assert H._on_numpy(content)
    monkeypatch.setattr(H, "_on_numpy", lambda rows: False)
    via_torch = histogram_match(content, style)
    assert torch.allclose(via_numpy, via_torch, atol=1e-6)
    assert torch.allclose(histogram_match(eight_bit(2, 3, 6, 6, seed=7), style),
                          histogram_match(eight_bit(2, 3, 6, 6, seed=7).double(), style.double()).float(), atol=1e-6)
