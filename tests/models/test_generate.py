"""Generate nodes end to end through workflows: shapes, determinism, the reference call, progress,
interrupt, caching, img2img, restyle, errors and the GAN path."""
from __future__ import annotations

import pytest
import torch

from imagetune.graph_runtime import ExecutionInterrupted, NodeExecutionError, ValidationError
from imagetune.ops.model_cache import MODELS

STEPS = 2
AUTO = {"dtype": "auto", "device": "auto"}


def workflow(prompt="a red circle", seed=0, width=16, height=16, batch=1, steps=STEPS,
             encoder="tiny-clip", model="tiny-sd", scheduler="default"):
    return {
        "1": {"class_type": "ImageTuneLoadTextEncoder", "inputs": {"text_encoder": encoder, **AUTO}},
        "2": {"class_type": "ImageTuneEncodeText",
              "inputs": {"text_encoder": ["1", 0], "text": prompt, "one_prompt_per_line": False}},
        "3": {"class_type": "ImageTuneEncodeText",
              "inputs": {"text_encoder": ["1", 0], "text": "", "one_prompt_per_line": False}},
        "4": {"class_type": "ImageTuneLoadPipeline",
              "inputs": {"model": model, "scheduler": scheduler, **AUTO, "cpu_offload": False,
                         "attention_slicing": False}},
        "5": {"class_type": "ImageTuneGenerate",
              "inputs": {"pipeline": ["4", 0], "positive": ["2", 0], "negative": ["3", 0], "width": width,
                         "height": height, "steps": steps, "guidance": 4.0, "seed": seed, "batch_size": batch}},
        "6": {"class_type": "ImageTuneTestKeep", "inputs": {"value": ["5", 0]}},
    }


def test_generate_returns_image_and_latent_of_the_asked_shape(runtime, ctx_for):
    result = runtime.run(workflow(batch=2, width=24, height=16), ctx=ctx_for())
    image, latent = result.outputs["5"]
    assert image.shape == (2, 16, 24, 3) and image.dtype == torch.float32
    assert 0 <= image.min() and image.max() <= 1 and image.std() > 0
    assert latent["samples"].shape == (2, 4, 8, 12) and latent["samples"].dtype == torch.float32


def test_generate_equals_a_direct_pipeline_call_with_the_same_embeddings_and_seed(runtime, ctx_for):
    from diffusers import StableDiffusionPipeline

    result = runtime.run(workflow(seed=7), ctx=ctx_for())
    image, latent = result.outputs["5"]
    positive, negative = result.outputs["2"][0][0][0], result.outputs["3"][0][0][0]
    folder = ctx_for().models_dirs[0] / "diffusers/tiny-sd"
    pipe = StableDiffusionPipeline.from_pretrained(folder, text_encoder=None, tokenizer=None,
                                                   safety_checker=None, requires_safety_checker=False)
    pipe.set_progress_bar_config(disable=True)
    expected = pipe(prompt_embeds=positive, negative_prompt_embeds=negative, width=16, height=16,
                    num_inference_steps=STEPS, guidance_scale=4.0, output_type="pt",
                    generator=torch.Generator().manual_seed(7)).images
    torch.testing.assert_close(image, expected.permute(0, 2, 3, 1), atol=1e-5, rtol=0)
    with torch.no_grad():
        decoded = pipe.vae.decode(latent["samples"]).sample  # ComfyUI's LATENT: unscaled
    torch.testing.assert_close(image, (decoded / 2 + 0.5).clamp(0, 1).permute(0, 2, 3, 1), atol=1e-5, rtol=0)


def test_same_seed_same_image_other_seed_other_image(runtime, ctx_for, tmp_path):
    from imagetune.graph_runtime import Runtime

    first = runtime.run(workflow(seed=3), ctx=ctx_for()).outputs["5"][0]
    again = Runtime(runtime.registry).run(workflow(seed=3), ctx=ctx_for()).outputs["5"][0]
    other = runtime.run(workflow(seed=4), ctx=ctx_for()).outputs["5"][0]
    assert torch.equal(first, again)
    assert (first - other).abs().max() > 1e-3


def test_second_run_loads_no_weights_even_in_a_new_runtime(runtime, ctx_for):
    from imagetune.graph_runtime import Runtime

    runtime.run(workflow(seed=1), ctx=ctx_for())
    loads = MODELS.stats.loads
    assert loads == 2  # encoder and pipeline
    rerun = runtime.run(workflow(seed=1), ctx=ctx_for())
    assert rerun.executed == []
    Runtime(runtime.registry).run(workflow(seed=1), ctx=ctx_for())
    assert MODELS.stats.loads == loads and MODELS.stats.hits >= 2


def test_progress_reports_each_step_and_interrupt_stops_between_steps(runtime, ctx_for):
    seen = []
    ctx = ctx_for(progress_hook=lambda node, done, total: seen.append((node, done, total)))
    runtime.run(workflow(steps=3), ctx=ctx)
    assert [s for s in seen if s[0] == "5"] == [("5", 1, 3), ("5", 2, 3), ("5", 3, 3)]

    steps = []

    def stop_after_first(node, done, total):
        steps.append(done)
        if node == "5" and done == 1:
            ctx.interrupt()

    ctx = ctx_for(progress_hook=stop_after_first)
    with pytest.raises(ExecutionInterrupted):
        runtime.run(workflow(steps=3, seed=99), ctx=ctx)
    assert max(steps) == 1


def test_long_prompts_and_prompt_batches_generate(runtime, ctx_for):
    long_prompt = " ".join(["a red circle on a blue background"] * 15)  # 105 tokens: 2 chunks
    flow = workflow(prompt=f"a green square\n{long_prompt}", batch=2)
    flow["2"]["inputs"]["one_prompt_per_line"] = True
    result = runtime.run(flow, ctx=ctx_for())
    assert result.outputs["2"][0][0][0].shape == (2, 154, 32)  # the negative stays [1, 77, 32]
    images = result.outputs["5"][0]
    assert images.shape == (4, 16, 16, 3)  # 2 prompts x batch_size 2
    assert (images[0] - images[2]).abs().max() > 1e-4  # the two prompts differ


def test_width_not_a_multiple_of_8_fails_validation(runtime, ctx_for):
    with pytest.raises(ValidationError, match="width.*multiple of 8"):
        runtime.run(workflow(width=20), ctx=ctx_for())


def test_encoder_width_that_does_not_fit_the_pipeline_names_the_input(runtime, ctx_for):
    with pytest.raises(NodeExecutionError) as err:
        runtime.run(workflow(encoder="minilm"), ctx=ctx_for())
    assert err.value.node_id == "5"
    assert "positive: expected token width 32" in str(err.value) and "got 384" in str(err.value)


def test_img2img_matches_a_direct_img2img_call(ctx_for):
    from diffusers import StableDiffusionImg2ImgPipeline

    from imagetune.nodes.generate import GenerateFromImageNode
    from imagetune.nodes.loaders import LoadPipelineNode

    ctx = ctx_for().for_node("7")
    handle = LoadPipelineNode().run(ctx, "tiny-sd", "default", "auto", "auto", False, False, "")[0]
    gen = torch.Generator().manual_seed(0)
    image = torch.rand(2, 16, 16, 3, generator=gen)
    positive = [[torch.randn(1, 77, 32, generator=gen), {"pooled_output": None}]]
    negative = [[torch.zeros(1, 77, 32), {"pooled_output": None}]]
    out, latent = GenerateFromImageNode().run(ctx, handle, positive, negative, image, 0.5, 4, 3.0, 5)
    assert out.shape == (2, 16, 16, 3) and latent["samples"].shape == (2, 4, 8, 8)
    folder = ctx.models_dirs[0] / "diffusers/tiny-sd"
    pipe = StableDiffusionImg2ImgPipeline.from_pretrained(folder, text_encoder=None, tokenizer=None,
                                                          safety_checker=None, requires_safety_checker=False)
    pipe.set_progress_bar_config(disable=True)
    expected = pipe(prompt_embeds=positive[0][0].expand(2, -1, -1), negative_prompt_embeds=negative[0][0].expand(2, -1, -1),
                    image=image.permute(0, 3, 1, 2), strength=0.5, num_inference_steps=4, guidance_scale=3.0,
                    output_type="pt", generator=torch.Generator().manual_seed(5)).images
    torch.testing.assert_close(out, expected.permute(0, 2, 3, 1), atol=1e-5, rtol=0)


def test_diffusion_restyle_is_img2img_with_the_encoded_style_prompt(ctx_for):
    gen = torch.Generator().manual_seed(1)
    image = torch.rand(1, 16, 16, 3, generator=gen)
    from imagetune.nodes.generate import GenerateFromImageNode, RestyleWithDiffusionNode
    from imagetune.nodes.loaders import LoadPipelineNode, LoadTextEncoderNode
    from imagetune.nodes.text_encode import EncodeTextNode

    ctx = ctx_for().for_node("8")
    pipe = LoadPipelineNode().run(ctx, "tiny-sd", "default", "auto", "auto", False, False, "")[0]
    encoder = LoadTextEncoderNode().run(ctx, "tiny-clip", "auto", "auto")[0]
    (out,) = RestyleWithDiffusionNode().run(ctx, pipe, encoder, image, "oil painting style", 0.5, 2, 3.0, 0)
    positive = EncodeTextNode().run(ctx, encoder, "oil painting style", False)[0]
    negative = EncodeTextNode().run(ctx, encoder, "", False)[0]
    expected = GenerateFromImageNode().run(ctx, pipe, positive, negative, image, 0.5, 2, 3.0, 0)[0]
    assert out.shape == image.shape and torch.equal(out, expected)


def test_gan_workflow_from_text_and_from_seed(runtime, ctx_for, models_root):
    from safetensors.torch import load_file

    from imagetune.ops.gan import DCGANGenerator

    flow = {
        "1": {"class_type": "ImageTuneLoadTextEncoder", "inputs": {"text_encoder": "tiny-clip", **AUTO}},
        "2": {"class_type": "ImageTuneEncodeText",
              "inputs": {"text_encoder": ["1", 0], "text": "a red square", "one_prompt_per_line": False}},
        "3": {"class_type": "ImageTuneLoadGAN", "inputs": {"gan_name": "tiny.safetensors", "device": "auto"}},
        "4": {"class_type": "ImageTuneConditioningToGANLatent",
              "inputs": {"conditioning": ["2", 0], "gan": ["3", 0], "seed": 5, "variation": 0.0}},
        "5": {"class_type": "ImageTuneGANGenerate", "inputs": {"gan": ["3", 0], "z": ["4", 0]}},
        "6": {"class_type": "ImageTuneGANLatent", "inputs": {"gan": ["3", 0], "seed": 5, "batch_size": 3}},
        "7": {"class_type": "ImageTuneGANGenerate", "inputs": {"gan": ["3", 0], "z": ["6", 0]}},
        "8": {"class_type": "ImageTuneTestKeep", "inputs": {"value": ["5", 0]}},
        "9": {"class_type": "ImageTuneTestKeep", "inputs": {"value": ["7", 0]}},
    }
    result = runtime.run(flow, ctx=ctx_for())
    z, image = result.outputs["4"][0], result.outputs["5"][0]
    assert z.shape == (1, 8) and image.shape == (1, 16, 16, 3)
    assert result.outputs["7"][0].shape == (3, 16, 16, 3)
    reference = DCGANGenerator(z_dim=8, image_size=16, channels=3, base_channels=4).eval()
    reference.load_state_dict(load_file(str(models_root / "gan/tiny.safetensors")))
    with torch.no_grad():
        expected = (reference(z.reshape(1, 8, 1, 1)) + 1) / 2
    torch.testing.assert_close(image, expected.permute(0, 2, 3, 1).clamp(0, 1))


def test_gan_rejects_a_latent_of_the_wrong_length(ctx_for):
    from imagetune.graph_runtime import NodeInputError
    from imagetune.nodes.generate import GenerateWithGANNode
    from imagetune.nodes.loaders import LoadGANNode

    ctx = ctx_for().for_node("3")
    gan = LoadGANNode().run(ctx, "tiny.safetensors", "auto")[0]
    with pytest.raises(NodeInputError, match=r"z: expected a latent of shape \[B, 8\], got \[2, 5\]"):
        GenerateWithGANNode().run(ctx, gan, torch.zeros(2, 5))


def test_sdxl_pipeline_gets_the_pooled_output_too(runtime, ctx_for):
    from diffusers import StableDiffusionXLPipeline

    result = runtime.run(workflow(model="tiny-sdxl", seed=2), ctx=ctx_for())
    handle = result.outputs["4"][0]
    assert handle.takes_pooled and type(handle.pipe).__name__ == "StableDiffusionXLPipeline"
    image = result.outputs["5"][0]
    (pos, pos_extra), (neg, neg_extra) = result.outputs["2"][0][0], result.outputs["3"][0][0]
    pipe = StableDiffusionXLPipeline.from_pretrained(ctx_for().models_dirs[0] / "diffusers/tiny-sdxl",
                                                     text_encoder=None, text_encoder_2=None, tokenizer=None,
                                                     tokenizer_2=None)
    pipe.set_progress_bar_config(disable=True)
    expected = pipe(prompt_embeds=pos, negative_prompt_embeds=neg, pooled_prompt_embeds=pos_extra["pooled_output"],
                    negative_pooled_prompt_embeds=neg_extra["pooled_output"], width=16, height=16,
                    num_inference_steps=STEPS, guidance_scale=4.0, output_type="pt",
                    generator=torch.Generator().manual_seed(2)).images
    torch.testing.assert_close(image, expected.permute(0, 2, 3, 1), atol=1e-5, rtol=0)


def test_sdxl_without_a_pooled_output_names_the_input(ctx_for):
    from imagetune.graph_runtime import NodeInputError
    from imagetune.nodes.generate import GenerateImageNode
    from imagetune.nodes.loaders import LoadPipelineNode

    ctx = ctx_for().for_node("4")
    handle = LoadPipelineNode().run(ctx, "tiny-sdxl", "default", "auto", "auto", False, False, "")[0]
    no_pooled = [[torch.zeros(1, 77, 32), {"pooled_output": None}]]
    with_pooled = [[torch.zeros(1, 77, 32), {"pooled_output": torch.zeros(1, 32)}]]
    with pytest.raises(NodeInputError, match="positive: .*needs a pooled_output"):
        GenerateImageNode().run(ctx, handle, no_pooled, with_pooled, 16, 16, 1, 1.0, 0, 1)


def test_half_precision_pipeline_runs_and_decodes_with_an_upcast_vae(ctx_for):
    from imagetune.nodes.generate import GenerateImageNode
    from imagetune.nodes.loaders import LoadPipelineNode

    ctx = ctx_for().for_node("4")
    half = LoadPipelineNode().run(ctx, "tiny-sd", "default", "fp16", "auto", False, False, "")[0]
    full = LoadPipelineNode().run(ctx.for_node("5"), "tiny-sd", "default", "fp32", "auto", False, False, "")[0]
    assert half.pipe.unet.dtype == torch.float16 and half.pipe.vae.config.force_upcast
    gen = torch.Generator().manual_seed(0)
    positive = [[torch.randn(1, 77, 32, generator=gen), {"pooled_output": None}]]
    negative = [[torch.zeros(1, 77, 32), {"pooled_output": None}]]
    image, latent = GenerateImageNode().run(ctx, half, positive, negative, 16, 16, 2, 3.0, 0, 1)
    reference, _ = GenerateImageNode().run(ctx, full, positive, negative, 16, 16, 2, 3.0, 0, 1)
    assert image.dtype == latent["samples"].dtype == torch.float32
    assert half.pipe.vae.dtype == torch.float16  # upcast only while decoding
    torch.testing.assert_close(image, reference, atol=0.02, rtol=0)


def test_demo_architecture_loads_by_name_and_matches_its_own_loader(runtime, ctx_for, tmp_path):
    """The embedded default's layout (shapes/model.py, untrained here) through the loader and generate nodes."""
    from imagetune.shapes import model as shapes_model

    torch.manual_seed(0)
    root = tmp_path / "pack-models"
    shapes_model.save_pipeline(root / "imagetune-shapes", shapes_model.make_vae(), shapes_model.make_unet())
    flow = workflow(encoder="minilm", model="imagetune-shapes", width=64, height=64, seed=5)
    flow["5"]["inputs"]["guidance_rescale"] = 0.7
    result = runtime.run(flow, ctx=ctx_for().__class__(device="cpu", models_dirs=[root]))
    image = result.outputs["5"][0]
    assert image.shape == (1, 64, 64, 3) and result.outputs["5"][1]["samples"].shape == (1, 4, 16, 16)
    pipe = shapes_model.load_pipeline(root / "imagetune-shapes")
    expected = pipe(prompt_embeds=result.outputs["2"][0][0][0], negative_prompt_embeds=result.outputs["3"][0][0][0],
                    width=64, height=64, num_inference_steps=STEPS, guidance_scale=4.0, guidance_rescale=0.7,
                    output_type="pt", generator=torch.Generator().manual_seed(5)).images
    torch.testing.assert_close(image, expected.permute(0, 2, 3, 1), atol=1e-5, rtol=0)


def test_regional_conditioning_reaches_the_unet_in_both_generate_nodes(ctx_for):
    """A positive whose second 77 tokens are seen from nowhere generates exactly what its first 77 alone do
    (text to image with a batch, and image to image); seen from half the picture they change the image."""
    from imagetune.nodes.generate import GenerateFromImageNode, GenerateImageNode
    from imagetune.nodes.loaders import LoadPipelineNode
    from imagetune.ops import conditioning as C

    ctx = ctx_for().for_node("8")
    handle = LoadPipelineNode().run(ctx, "tiny-sd", "default", "auto", "auto", False, False, "")[0]
    gen = torch.Generator().manual_seed(0)
    first, second = torch.randn(1, 77, 32, generator=gen), 3 * torch.randn(1, 77, 32, generator=gen)
    negative = [[torch.zeros(1, 77, 32), {C.POOLED: None}]]
    hidden = torch.cat([torch.ones(1, 77, 16, 16), torch.zeros(1, 77, 16, 16)], 1)
    halves = hidden.clone()
    halves[:, 77:, :, :8] = 1

    def positive(seen=None):
        if seen is None:
            return [[first, {C.POOLED: None}]]
        return [[torch.cat([first, second], 1), {C.POOLED: None, C.REGIONS: seen}]]

    def txt2img(cond):
        return GenerateImageNode().run(ctx, handle, cond, negative, 16, 16, 3, 4.0, 1, 2)[0]

    plain = txt2img(positive())
    torch.testing.assert_close(txt2img(positive(hidden)), plain, atol=1e-5, rtol=0)
    assert (txt2img(positive(halves)) - plain).abs().max() > 1e-3
    image = torch.rand(2, 16, 16, 3, generator=gen)

    def img2img(cond):
        return GenerateFromImageNode().run(ctx, handle, cond, negative, image, 0.6, 3, 4.0, 2)[0]

    torch.testing.assert_close(img2img(positive(hidden)), img2img(positive()), atol=1e-5, rtol=0)
