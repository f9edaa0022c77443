"""Regional conditioning: the attention processor, the two-object world's maps, training contexts, generation."""
from __future__ import annotations

import json

import pytest
import torch

from imagetune.ops import conditioning as C
from imagetune.ops.regional_attention import (RegionalAttention, check_regions, fit_tokens, grid_of, region_bias,
                                              use_regions)
from imagetune.shapes import regions
from imagetune.shapes.scene import Description, Thing


def tiny_unet():
    from diffusers import UNet2DConditionModel
    torch.manual_seed(0)
    return UNet2DConditionModel(sample_size=8, in_channels=4, out_channels=4, layers_per_block=1,
                                block_out_channels=(16, 32), down_block_types=("CrossAttnDownBlock2D",) * 2,
                                up_block_types=("CrossAttnUpBlock2D",) * 2, cross_attention_dim=24,
                                attention_head_dim=4, norm_num_groups=8).eval()


def unet_out(unet, context, seen=None):
    torch.manual_seed(1)
    x = torch.randn(context.shape[0], 4, 8, 8)
    kwargs = {} if seen is None else {"cross_attention_kwargs": {C.REGIONS: seen}}
    with torch.no_grad():
        return unet(x, torch.tensor([500] * context.shape[0]), encoder_hidden_states=context, **kwargs).sample


def test_a_map_that_shows_every_token_changes_nothing():
    """With every token seen everywhere the regional processor is diffusers' own attention."""
    unet = tiny_unet()
    context = torch.randn(2, 10, 24)
    plain = unet_out(unet, context)
    use_regions(unet)
    assert torch.allclose(unet_out(unet, context, torch.ones(2, 10, 8, 8)), plain, atol=1e-5)
    assert torch.allclose(unet_out(unet, context), plain, atol=1e-5)  # no map: the same maths


def test_tokens_seen_from_nowhere_are_as_if_absent():
    """Extra tokens that no pixel may see leave the output exactly as without them, whatever they hold."""
    unet = tiny_unet()
    use_regions(unet)
    context = torch.randn(1, 10, 24)
    garbage = torch.cat([context, 100 * torch.randn(1, 6, 24)], 1)
    seen = torch.cat([torch.ones(1, 10, 8, 8), torch.zeros(1, 6, 8, 8)], 1)
    assert torch.allclose(unet_out(unet, garbage, seen), unet_out(unet, context), atol=1e-5)


def test_a_token_seen_only_on_the_left_reaches_only_left_pixels():
    """One cross-attention layer: changing a token seen from the left half moves only the left half's output."""
    from diffusers.models.attention_processor import Attention
    torch.manual_seed(0)
    attn = Attention(query_dim=16, cross_attention_dim=24, heads=2, dim_head=8, processor=RegionalAttention())
    pixels = torch.randn(1, 16, 16)  # a 4x4 grid of 16 channels
    context = torch.randn(1, 5, 24)
    seen = torch.ones(1, 5, 4, 4)
    seen[:, 4, :, 2:] = 0  # token 4: left half only
    changed = context.clone()
    changed[:, 4] += 3
    a = attn(pixels, encoder_hidden_states=context, token_regions=seen).reshape(1, 4, 4, 16)
    b = attn(pixels, encoder_hidden_states=changed, token_regions=seen).reshape(1, 4, 4, 16)
    assert torch.equal(a[:, :, 2:], b[:, :, 2:]) and not torch.allclose(a[:, :, :2], b[:, :, :2])


def test_the_bias_follows_each_layer_grid_and_spares_the_unconditional_half():
    seen = torch.zeros(1, 3, 16, 16)
    seen[:, 0] = 1
    seen[:, 1, :, :8] = 1
    assert grid_of(64, 16, 16) == (8, 8) and grid_of(32, 16, 32) == (4, 8) and grid_of(16, 16, 16) == (4, 4)
    bias = region_bias(seen, 64, 2, torch.float32)  # classifier-free guidance: [unconditional, conditional]
    assert bias.shape == (2, 1, 64, 3)
    assert torch.equal(bias[0], torch.zeros(1, 64, 3))
    left = bias[1, 0].reshape(8, 8, 3)
    assert (left[:, :4, 1] == 0).all() and torch.isinf(left[:, 4:, 1]).all() and torch.isinf(left[..., 2]).all()
    with pytest.raises(ValueError, match="for 1 prompts, attention over 3"):
        region_bias(seen, 64, 3, torch.float32)


def test_maps_are_checked_and_fitted_to_a_repeated_context():
    with pytest.raises(ValueError, match=r"expected token_regions \[B, 4, h, w\]"):
        check_regions(torch.ones(1, 3, 4, 4), 4)
    blind = torch.ones(1, 2, 4, 4)
    blind[:, :, 0, 0] = 0
    with pytest.raises(ValueError, match="every pixel must see at least one token"):
        check_regions(blind, 2)
    seen = torch.rand(1, 3, 4, 4)
    assert torch.equal(fit_tokens(seen, 6)[:, 3:], seen)
    with pytest.raises(ValueError, match="cover 3 tokens, the context has 4"):
        fit_tokens(seen, 4)


def test_custom_attention_processors_are_not_silently_replaced():
    from diffusers.models.attention_processor import AttnProcessor2_0

    class Custom(AttnProcessor2_0):
        pass

    unet = tiny_unet()
    unet.set_attn_processor(Custom())
    with pytest.raises(ValueError, match="Custom"):
        use_regions(unet)


def test_territories_split_rows_columns_and_thirds():
    left, right = regions.territories([(0.26, 0.5, 0.18), (0.74, 0.5, 0.18)])
    assert left[:, :8].all() and not left[:, 8:].any() and right[:, 8:].all() and not right[:, :8].any()
    bottom, top = regions.territories([(0.5, 0.74, 0.18), (0.5, 0.26, 0.18)])  # listed bottom first
    assert top[:8].all() and not top[8:].any() and bottom[8:].all()
    thirds = regions.territories([(0.18, 0.5, 0.13), (0.5, 0.5, 0.13), (0.82, 0.5, 0.13)])
    assert thirds.sum((1, 2)).tolist() == [5 * 16, 6 * 16, 5 * 16] and bool((thirds.sum(0) == 1).all())


def test_a_description_gives_its_things_captions_and_places():
    red, blue = Thing("circle", "red"), Thing("square", "blue")
    pair = Description((red, blue), "above", "white")
    assert regions.thing_captions(pair) == ["a red circle on a white background", "a blue square on a white background"]
    assert regions.regional_texts([pair]) == ["a red circle above a blue square on a white background",
                                              *regions.thing_captions(pair)]
    seen = regions.canonical_map(pair)
    assert seen.shape == (regions.TOKENS, 16, 16) and seen[:77].all()
    first, second = seen[77], seen[77 + regions.THING_TOKENS]
    assert first[:8].all() and not first[8:].any() and second[8:].all() and not seen[-2:].any()
    assert regions.thing_captions(Description((red,), None, "white")) == []
    assert not regions.canonical_map(Description((red,))).any(0).logical_not().any()  # the caption is seen everywhere
    states = torch.randn(3, 77, 8)
    ctx, _ = regions.regional_conditioning([pair], states)
    assert torch.equal(ctx[0, :77], states[0]) and torch.equal(ctx[0, 77:102], states[1, :25])
    assert torch.equal(ctx[0, 102:127], states[2, :25]) and not ctx[0, 127:].any()


def test_a_territory_can_read_its_own_words_alone():
    """With the caption seen "outside things" a territory sees only its thing's block; a single thing is unchanged."""
    red, blue = Thing("circle", "red"), Thing("square", "blue")
    seen = regions.canonical_map(Description((red, blue), "left of", "white"), caption="outside things")
    assert not seen[:77].any()  # the two territories tile the picture: the caption is seen from nowhere
    assert seen[77, :, :8].all() and not seen[77, :, 8:].any() and bool((seen.any(0)).all())
    alone = regions.canonical_map(Description((red,), None, "white"), caption="outside things")
    assert torch.equal(alone, regions.canonical_map(Description((red,), None, "white")))
    with pytest.raises(ValueError, match="caption: expected one of"):
        regions.token_map(torch.zeros(0, 16, 16), caption="somewhere")


def test_the_node_builds_the_maps_the_shipped_generator_was_trained_on():
    from pathlib import Path
    shipped = Path(__file__).resolve().parents[1] / "models" / "imagetune-shapes"
    assert regions.trained_caption(shipped) == regions.SHIPPED_CAPTION
    assert regions.trained_caption(shipped / "understand") is None  # no regions.json: not regional
    config = json.loads((shipped / regions.MARKER).read_text())
    assert (config["tokens"], config["thing_tokens"], config["max_things"], config["grid"]) == (
        regions.TOKENS, regions.THING_TOKENS, regions.MAX_THINGS, regions.GRID)


def test_training_contexts_drop_to_the_plain_empty_prompt():
    from imagetune.shapes.train import Regional, regional_data
    masks = regions.territories([(0.26, 0.5, 0.18), (0.74, 0.5, 0.18)])
    data = regional_data([[[]], [["t0", "t1"], []]], torch.tensor([5, 6]), singles=1,
                         scene_places=[[(0.26, 0.5, 0.18), (0.74, 0.5, 0.18)]])
    assert isinstance(data, Regional) and data.thing_index.tolist() == [[-1, -1, -1], [5, 6, -1], [-1, -1, -1]]
    states, empty = torch.randn(8, 77, 4), torch.randn(1, 77, 4)
    ctx, seen = data.context(states, empty, rows=torch.tensor([0, 1, 1, 2]), flat=torch.tensor([0, 1, 1, 2]),
                             samples=torch.tensor([0, 1, 1, 1]), drop=torch.tensor([False, False, True, False]))
    assert ctx.shape == (4, 154, 4) and seen.shape == (4, 154, 16, 16)
    assert torch.equal(ctx[1, 77:102], states[5, :25]) and torch.equal(seen[1, 77], masks[0])
    assert torch.equal(seen[1, 102], masks[1]) and not seen[1, 127:].any()
    assert not seen[0, 77:].any() and not seen[3, 77:].any()  # no things (one object, or a caption without them)
    assert torch.equal(ctx[2], empty[0].repeat(2, 1)) and seen[2].all()  # dropped: the negative prompt's context


def test_generation_takes_the_map_and_names_a_bad_one():
    from imagetune.graph_runtime.errors import NodeInputError
    from imagetune.ops.diffusion import regional

    class Handle:
        device, dtype = "cpu", torch.float32

        def __init__(self):
            self.pipe = type("Pipe", (), {"unet": tiny_unet()})()

    handle = Handle()
    seen = torch.ones(2, 6, 16, 16)
    positive = [[torch.randn(2, 6, 24), {C.REGIONS: seen}]]
    extra = regional(handle, positive, {"prompt_embeds": torch.randn(2, 12, 24)}, batch_size=3)
    assert extra["cross_attention_kwargs"][C.REGIONS].shape == (6, 12, 16, 16)
    assert all(isinstance(p, RegionalAttention) for p in handle.pipe.unet.attn_processors.values())
    assert regional(handle, [[torch.randn(2, 6, 24), {}]], {"prompt_embeds": torch.randn(2, 6, 24)}, 1) == {}
    with pytest.raises(NodeInputError, match="positive.*B = 2 prompts"):
        regional(handle, [[torch.randn(2, 6, 24), {C.REGIONS: seen[:1]}]], {"prompt_embeds": torch.randn(2, 6, 24)}, 1)
    with pytest.raises(NodeInputError, match="positive.*token_regions: every pixel"):
        regional(handle, [[torch.randn(2, 6, 24), {C.REGIONS: torch.zeros(2, 6, 4, 4)}]],
                 {"prompt_embeds": torch.randn(2, 6, 24)}, 1)
