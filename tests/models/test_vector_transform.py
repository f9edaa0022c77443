"""Vector transforms on CONDITIONING, checked against direct tensor maths."""
from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from imagetune.graph_runtime import NodeInputError, ValidationError
from imagetune.ops import conditioning as C


def cond(batch=1, tokens=77, width=8, pooled=8, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return [[torch.randn(batch, tokens, width, generator=gen),
             {"pooled_output": torch.randn(batch, pooled, generator=gen) if pooled else None}]]


def angle(a, b):
    return torch.arccos(((a * b).sum(-1) / (a.norm(dim=-1) * b.norm(dim=-1))).clamp(-1, 1))


def test_lerp_blend_endpoints_and_midpoint():
    a, b = cond(seed=1), cond(seed=2)
    for weight in (0.0, 0.25, 1.0):
        out = C.blend(a, b, weight, "lerp")
        torch.testing.assert_close(out[0][0], a[0][0] * (1 - weight) + b[0][0] * weight)
        torch.testing.assert_close(out[0][1]["pooled_output"],
                                   a[0][1]["pooled_output"] * (1 - weight) + b[0][1]["pooled_output"] * weight)


@settings(max_examples=30, deadline=None)
@given(t=st.floats(0.0, 1.0), seed=st.integers(0, 1000))
def test_slerp_walks_the_great_circle_at_a_constant_rate(t, seed):
    gen = torch.Generator().manual_seed(seed)
    a, b = torch.randn(5, 16, generator=gen), torch.randn(5, 16, generator=gen)
    out = C.slerp(a, b, t)
    torch.testing.assert_close(out.norm(dim=-1), torch.lerp(a.norm(dim=-1), b.norm(dim=-1), t))
    torch.testing.assert_close(angle(a, out), t * angle(a, b), atol=2e-3, rtol=0)
    torch.testing.assert_close(angle(out, b), (1 - t) * angle(a, b), atol=2e-3, rtol=0)


def test_slerp_of_parallel_vectors_is_linear():
    a = torch.tensor([[1.0, 2.0, 3.0]])
    torch.testing.assert_close(C.slerp(a, 2 * a, 0.5), 1.5 * a)


def test_blend_broadcasts_a_batch_of_one_and_repeats_token_chunks():
    a, b = cond(batch=3, tokens=154), cond(batch=1, tokens=77, seed=5)
    out = C.blend(a, b, 0.5, "lerp")[0][0]
    assert out.shape == (3, 154, 8)
    torch.testing.assert_close(out[2, 77:], (a[0][0][2, 77:] + b[0][0][0]) / 2)


def test_blend_with_other_width_names_the_second_input():
    with pytest.raises(NodeInputError, match="conditioning_b: expected token width 8 .* got 12"):
        C.blend(cond(), cond(width=12), 0.5, "slerp")


def test_concat_appends_tokens_and_keeps_the_first_pooled():
    a, b = cond(seed=1), cond(tokens=154, seed=2)
    out = C.concat(a, b)
    assert out[0][0].shape == (1, 231, 8)
    torch.testing.assert_close(out[0][0], torch.cat([a[0][0], b[0][0]], 1))
    assert out[0][1]["pooled_output"] is a[0][1]["pooled_output"]
    assert out[0][1] is not a[0][1]  # a new dict: inputs are never modified
    with pytest.raises(NodeInputError, match="conditioning_b"):
        C.concat(a, cond(width=4))


def test_scale_and_normalize():
    a = cond()
    out = C.scale(a, 2.0, False, "tokens")
    torch.testing.assert_close(out[0][0], 2 * a[0][0])
    assert torch.equal(out[0][1]["pooled_output"], a[0][1]["pooled_output"])
    norm = C.scale(a, 1.0, True, "both")
    lengths = norm[0][0].norm(dim=-1)
    torch.testing.assert_close(lengths, torch.full_like(lengths, a[0][0].norm(dim=-1).mean().item()))


def test_seeded_noise_is_deterministic_relative_and_leaves_the_input_alone():
    a = cond(tokens=500)
    before = a[0][0].clone()
    one, two, other = C.add_noise(a, 0.5, 3), C.add_noise(a, 0.5, 3), C.add_noise(a, 0.5, 4)
    assert torch.equal(one[0][0], two[0][0]) and not torch.equal(one[0][0], other[0][0])
    assert torch.equal(a[0][0], before)
    delta = one[0][0] - a[0][0]
    assert abs(delta.std().item() / a[0][0].std().item() - 0.5) < 0.02
    assert torch.equal(C.add_noise(a, 0.0, 3)[0][0], a[0][0])


def test_projection_file_through_the_node_and_width_checks(ctx_for, tmp_path):
    from safetensors.torch import save_file

    from imagetune.nodes.vector_transform import ProjectConditioningNode

    gen = torch.Generator().manual_seed(0)
    weight, bias = torch.randn(16, 8, generator=gen), torch.randn(16, generator=gen)
    (tmp_path / "roots/projections").mkdir(parents=True)
    save_file({"weight": weight, "bias": bias}, str(tmp_path / "roots/projections/8to16.safetensors"))
    ctx = ctx_for(tmp_path / "roots").for_node("4")
    a = cond()
    (out,) = ProjectConditioningNode().run(ctx, a, "8to16.safetensors")
    torch.testing.assert_close(out[0][0], a[0][0] @ weight.T + bias)
    torch.testing.assert_close(out[0][1]["pooled_output"], a[0][1]["pooled_output"] @ weight.T + bias)
    with pytest.raises(NodeInputError, match=r"conditioning: expected token width 8 .* got 12"):
        ProjectConditioningNode().run(ctx, cond(width=12), "8to16.safetensors")
    with pytest.raises(NodeInputError, match="projection: .*not there"):
        ProjectConditioningNode().run(ctx, a, "missing.safetensors")
    with pytest.raises(NodeInputError, match="outside|'..'"):
        ProjectConditioningNode().run(ctx, a, "../../etc/passwd.safetensors")


def test_projection_lets_an_encoder_drive_a_pipeline_of_another_width(runtime, ctx_for, tmp_path):
    from safetensors.torch import save_file

    (tmp_path / "roots/projections").mkdir(parents=True)
    save_file({"weight": torch.randn(32, 384) / 20}, str(tmp_path / "roots/projections/minilm-to-32.safetensors"))
    auto = {"dtype": "auto", "device": "auto"}
    flow = {
        "1": {"class_type": "ImageTuneLoadTextEncoder", "inputs": {"text_encoder": "minilm", **auto}},
        "2": {"class_type": "ImageTuneEncodeText",
              "inputs": {"text_encoder": ["1", 0], "text": "a red circle", "one_prompt_per_line": False}},
        "3": {"class_type": "ImageTuneProjectConditioning",
              "inputs": {"conditioning": ["2", 0], "projection": "minilm-to-32.safetensors"}},
        "4": {"class_type": "ImageTuneScaleConditioning",
              "inputs": {"conditioning": ["3", 0], "scale": 0.0, "normalize": False, "target": "tokens"}},
        "5": {"class_type": "ImageTuneLoadPipeline",
              "inputs": {"model": "tiny-sd", "scheduler": "Euler", **auto, "cpu_offload": False,
                         "attention_slicing": False}},
        "6": {"class_type": "ImageTuneGenerate",
              "inputs": {"pipeline": ["5", 0], "positive": ["3", 0], "negative": ["4", 0], "width": 16,
                         "height": 16, "steps": 2, "guidance": 3.0, "seed": 0, "batch_size": 1}},
        "7": {"class_type": "ImageTuneTestKeep", "inputs": {"value": ["6", 0]}},
    }
    result = runtime.run(flow, ctx=ctx_for(tmp_path / "roots"))
    assert result.outputs["3"][0][0][0].shape == (1, 77, 32)
    assert result.outputs["6"][0].shape == (1, 16, 16, 3)


def test_projection_name_must_be_safetensors_at_validation_time(runtime, ctx_for):
    flow = {
        "1": {"class_type": "ImageTuneProjectConditioning",
              "inputs": {"conditioning": ["4", 0], "projection": "map.ckpt"}},
        "2": {"class_type": "ImageTuneLoadTextEncoder", "inputs": {"text_encoder": "minilm", "dtype": "auto",
                                                                    "device": "auto"}},
        "4": {"class_type": "ImageTuneEncodeText",
              "inputs": {"text_encoder": ["2", 0], "text": "", "one_prompt_per_line": False}},
        "3": {"class_type": "ImageTuneTestKeep", "inputs": {"value": ["1", 0]}},
    }
    with pytest.raises(ValidationError, match="projection: expected a .safetensors file"):
        runtime.run(flow, ctx=ctx_for())


def test_text_to_gan_latent_is_deterministic_and_standard_normal():
    a = cond(pooled=384, width=384)
    z = C.to_gan_latent(a, 4096, seed=1, variation=0.0)
    assert z.shape == (1, 4096)
    assert torch.equal(z, C.to_gan_latent(a, 4096, seed=1, variation=0.0))
    assert not torch.equal(z, C.to_gan_latent(a, 4096, seed=2, variation=0.0))
    assert abs(z.mean().item()) < 0.1 and abs(z.std().item() - 1) < 0.1
    varied = C.to_gan_latent(a, 4096, seed=1, variation=0.5)
    assert 0.6 < torch.cosine_similarity(z, varied).item() < 0.8  # sqrt(0.5) of the text direction


def test_similar_texts_give_nearer_latents(ctx_for):
    from imagetune.nodes.loaders import LoadTextEncoderNode
    from imagetune.nodes.text_encode import EncodeTextNode

    ctx = ctx_for().for_node("1")
    handle = LoadTextEncoderNode().run(ctx, "minilm", "auto", "auto")[0]
    z = {text: C.to_gan_latent(EncodeTextNode().run(ctx, handle, text, False)[0], 128, 0, 0.0)
         for text in ("a red circle", "a red circle on white", "a tax return form")}
    near = torch.cosine_similarity(z["a red circle"], z["a red circle on white"])
    far = torch.cosine_similarity(z["a red circle"], z["a tax return form"])
    assert near > far


def test_not_a_conditioning_is_named():
    with pytest.raises(NodeInputError, match=r"conditioning: expected CONDITIONING .* got a tensor of shape \[1, 8\]"):
        C.scale(torch.zeros(1, 8), 1.0, False, "both")
