"""The blocked banded operator (ops/banded.py) equals a dense matrix product along either image axis."""
import pytest
import torch

from imagetune.ops.banded import apply_blocks, banded_blocks


def random_banded(size_out: int, size_in: int, width: int, seed: int) -> torch.Tensor:
    """A dense [out, in] matrix with a random band of ``width`` around the scaled diagonal, some rows empty."""
    gen = torch.Generator().manual_seed(seed)
    matrix = torch.zeros(size_out, size_in, dtype=torch.float64)
    for row in range(size_out):
        if row % 7 == 3:
            continue  # an empty row: its output must come out zero
        centre = int(row * size_in / size_out)
        lo, hi = max(0, centre - width), min(size_in, centre + width + 1)
        matrix[row, lo:hi] = torch.randn(hi - lo, generator=gen, dtype=torch.float64)
    return matrix


@pytest.mark.parametrize("size_out,size_in", [(97, 97), (250, 61), (40, 131), (1, 5), (300, 1)])
def test_blocks_equal_the_dense_product(size_out, size_in):
    matrix = random_banded(size_out, size_in, 3, seed=size_out)
    rows, cols = matrix.nonzero(as_tuple=True)
    blocks = banded_blocks(rows, cols, matrix[rows, cols], size_out, torch.float64, "cpu")
    image = torch.rand(2, 3, size_in, size_in + 2, dtype=torch.float64)
    along_h = apply_blocks(blocks, image, -2)
    assert torch.allclose(along_h, torch.einsum("oi,bciw->bcow", matrix, image), atol=1e-12)
    image = image.transpose(-1, -2)
    assert torch.allclose(apply_blocks(blocks, image, 3), image @ matrix.T, atol=1e-12)


def test_gradients_flow_through_the_operator():
    matrix = random_banded(40, 30, 2, seed=1)
    rows, cols = matrix.nonzero(as_tuple=True)
    blocks = banded_blocks(rows, cols, matrix[rows, cols], 40, torch.float64, "cpu")
    image = torch.rand(1, 1, 30, 30, dtype=torch.float64, requires_grad=True)
    apply_blocks(blocks, apply_blocks(blocks, image, 3), 2).sum().backward()
    expected = (matrix.sum(0)[:, None] * matrix.sum(0)[None, :])[None, None]
    assert torch.allclose(image.grad, expected)


def test_repeated_entries_are_summed():
    blocks = banded_blocks(torch.tensor([0, 0, 1]), torch.tensor([1, 1, 0]), torch.tensor([0.25, 0.5, 2.0]),
                           2, torch.float64, "cpu")
    out = apply_blocks(blocks, torch.tensor([[3.0, 4.0]], dtype=torch.float64), -1)
    assert out.tolist() == [[3.0, 6.0]]


def test_only_the_last_two_axes():
    blocks = banded_blocks(torch.tensor([0]), torch.tensor([0]), torch.tensor([1.0]), 1, torch.float32, "cpu")
    with pytest.raises(ValueError, match="last two"):
        apply_blocks(blocks, torch.ones(1, 1, 1, 1), 1)
