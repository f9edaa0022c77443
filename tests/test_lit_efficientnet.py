"""The plain-torch EfficientNet-Lite0 reproduces the shipped ImageNet classifier."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw

from imagetune.lit import efficientnet_lite as E

# ImageNet-1k class indices of things that can be drawn procedurally
MAZE, HONEYCOMB, CROSSWORD = 646, 599, 918


def maze(n: int = 12, cell: int = 18, seed: int = 0) -> Image.Image:
    """A perfect maze (randomised depth-first search) drawn in black on white."""
    rng = np.random.default_rng(seed)
    size = n * cell + 2
    picture = Image.new("RGB", (size, size), "white")
    draw = ImageDraw.Draw(picture)
    walls = {(x, y, side) for x in range(n) for y in range(n) for side in "ES"}
    seen, stack = {(0, 0)}, [(0, 0)]
    while stack:
        x, y = stack[-1]
        free = [(x + dx, y + dy) for dx, dy in ((1, 0), (-1, 0), (0, 1), (0, -1))
                if 0 <= x + dx < n and 0 <= y + dy < n and (x + dx, y + dy) not in seen]
        if not free:
            stack.pop()
            continue
        nx, ny = free[rng.integers(len(free))]
        walls.discard((min(x, nx), y, "E") if nx != x else (x, min(y, ny), "S"))
        seen.add((nx, ny))
        stack.append((nx, ny))
    draw.rectangle((0, 0, size - 1, size - 1), outline="black", width=3)
    for x, y, side in walls:
        if side == "E":
            draw.line(((x + 1) * cell, y * cell, (x + 1) * cell, (y + 1) * cell), fill="black", width=3)
        else:
            draw.line((x * cell, (y + 1) * cell, (x + 1) * cell, (y + 1) * cell), fill="black", width=3)
    return picture


def crossword(n: int = 13, cell: int = 17, seed: int = 0) -> Image.Image:
    """A crossword grid: white cells, some filled black, thin black rules."""
    rng = np.random.default_rng(seed)
    size = n * cell + 1
    picture = Image.new("RGB", (size, size), "white")
    draw = ImageDraw.Draw(picture)
    for i in range(n):
        for j in range(n):
            if rng.random() < 0.18:
                draw.rectangle((i * cell, j * cell, (i + 1) * cell, (j + 1) * cell), fill="black")
    for k in range(n + 1):
        draw.line((k * cell, 0, k * cell, size), fill="black")
        draw.line((0, k * cell, size, k * cell), fill="black")
    return picture


def honeycomb(radius: int = 16, size: int = 224) -> Image.Image:
    """Amber hexagonal cells separated by dark wax walls."""
    picture = Image.new("RGB", (size, size), (120, 70, 10))
    draw = ImageDraw.Draw(picture)
    height = radius * math.sqrt(3)
    for row in range(-1, int(size / height) + 2):
        for col in range(-1, int(size / (1.5 * radius)) + 2):
            cx, cy = col * 1.5 * radius, row * height + (height / 2 if col % 2 else 0)
            draw.polygon([(cx + (radius - 2) * math.cos(a), cy + (radius - 2) * math.sin(a))
                          for a in np.arange(6) * math.pi / 3], fill=(235, 170, 40))
    return picture


def as_image_batch(pictures) -> torch.Tensor:
    return torch.from_numpy(np.stack([np.asarray(p.resize((224, 224))) for p in pictures])).float() / 255


@pytest.fixture(scope="module")
def pictures():
    return as_image_batch([maze(seed=0), maze(seed=1), crossword(), honeycomb()])


def test_pretrained_weights_recognise_procedural_pictures(pictures):
    model = E.load_efficientnet_lite0()
    with torch.no_grad():
        probs = model(E.preprocess(pictures)).softmax(-1)
    assert probs.argmax(-1).tolist() == [MAZE, MAZE, CROSSWORD, HONEYCOMB]
    assert probs.max(-1).values.min() > 0.3  # confident, not a lucky argmax of a flat distribution


def test_randomly_initialised_copy_does_not(pictures):
    torch.manual_seed(0)
    model = E.EfficientNetLite0().eval()
    with torch.no_grad():
        probs = model(E.preprocess(pictures)).softmax(-1)
    assert probs.argmax(-1).tolist() != [MAZE, MAZE, CROSSWORD, HONEYCOMB]
    assert probs.max() < 0.05


def test_state_dict_keys_match_exactly():
    state = torch.load(E.default_weights_path(), map_location="cpu", weights_only=True)
    assert set(state) == set(E.EfficientNetLite0().state_dict())
    assert sum(v.numel() for k, v in state.items() if "num_batches" not in k and "running" not in k) > 4.6e6


@pytest.mark.parametrize("size,kernel,stride", [(224, 3, 2), (113, 3, 2), (28, 5, 2), (14, 5, 1), (7, 3, 1)])
def test_same_padding_gives_tensorflow_output_sizes(size, kernel, stride):
    conv = E.Conv2dSame(1, 1, kernel, stride, bias=False)
    with torch.no_grad():
        conv.weight.fill_(1.0)
        out = conv(torch.ones(1, 1, size, size))
    assert out.shape[-1] == math.ceil(size / stride)
    # TF pads the extra pixel at the end: the top-left output sees no padding when the total is odd
    total = max((math.ceil(size / stride) - 1) * stride + kernel - size, 0)
    assert out[0, 0, 0, 0].item() == (kernel - total // 2) ** 2


def test_preprocess_scales_like_tensorflow():
    image = torch.tensor([0.0, 127 / 255, 1.0]).view(1, 1, 3, 1).expand(1, 3, 3, 3)  # [B, H, W, C], varies along W
    x = E.preprocess(image, size=3)
    assert x.shape == (1, 3, 3, 3)
    assert x[0, 0, 0].tolist() == pytest.approx([-127 / 128, 0.0, 1.0])


def test_missing_weights_file_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="EfficientNet-Lite0 weights"):
        E.load_efficientnet_lite0(tmp_path / "nope.pth")


def test_multilevel_features_concatenate_normalised_pooled_block_outputs(pictures):
    model = E.load_efficientnet_lite0()
    captured = {}
    hooks = [model._blocks[i].register_forward_hook(lambda m, a, out, i=i: captured.__setitem__(i, out))
             for i in E.MULTILEVEL_TAPS]
    x = E.preprocess(pictures[:2], size=96)
    with torch.no_grad():
        head = model.features(x)
        multi = model.multilevel_features(x)
    for hook in hooks:
        hook.remove()
    parts = [torch.nn.functional.normalize(captured[i].mean(dim=(2, 3)), dim=-1) for i in E.MULTILEVEL_TAPS]
    parts.append(torch.nn.functional.normalize(head, dim=-1))
    reference = torch.cat(parts, dim=1) / math.sqrt(len(parts))
    assert multi.shape == (2, 2048)
    torch.testing.assert_close(multi, reference)


def test_halves_say_which_side_a_thing_is_on():
    """Mirrored pictures pool alike; the halves' contrasts tell them apart, and the pooled part is unchanged."""
    from imagetune.shapes import scene as S

    model = E.load_efficientnet_lite0()
    red, blue = S.Thing("circle", "red"), S.Thing("square", "blue")
    pictures = [np.asarray(S.render(S.Scene(things, "left of", "white"), 64)) for things in ((red, blue), (blue, red))]
    x = E.preprocess(torch.from_numpy(np.stack(pictures)).float() / 255, size=128)
    with torch.no_grad():
        plain, halves = model.multilevel_features(x), model.multilevel_features(x, halves=E.HALVES_TAPS)
    assert halves.shape == (2, 2048 + 2 * 424)
    torch.testing.assert_close(halves[:, :2048], plain)
    pooled = torch.nn.functional.cosine_similarity(plain[0], plain[1], dim=0)
    where = torch.nn.functional.cosine_similarity(halves[0, 2048:], halves[1, 2048:], dim=0)
    assert pooled > 0.95 and where < 0  # the left-right contrasts of mirrored pictures point opposite ways
