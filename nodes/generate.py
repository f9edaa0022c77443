"""Generate nodes: diffusion text-to-image, image-to-image and restyle, and GAN z -> image.

Deterministic by seed on the same device (the noise is drawn on the CPU); steps are reported
to the runtime's progress hook and an interrupt stops between steps. See ``ops/diffusion.py``.
"""
from __future__ import annotations

from ..graph_runtime import Input, Node, Output
from ..graph_runtime import types as T
from ..ops.limits import MAX_GENERATED_PIXELS, pixels_problem


def _sampling_inputs(steps: int = 20, guidance: float = 5.0) -> tuple[Input, ...]:
    return (
        Input("steps", T.INT, default=steps, min=1, max=1000, tooltip="denoising steps of the sampler"),
        Input("guidance", T.FLOAT, default=guidance, min=0.0, max=100.0, step=0.1,
              tooltip="classifier-free guidance scale (1 or less: no guidance)"),
        Input("seed", T.INT, default=0, min=0, max=T.MAX_SEED,
              tooltip="noise seed: the same seed on the same device gives the same image"),
        Input("guidance_rescale", T.FLOAT, default=0.0, min=0.0, max=1.0, step=0.05, optional=True,
              tooltip="rescale guided noise towards the conditional one (helps zero-terminal-SNR models)"),
    )


_OUTPUTS = (Output(T.IMAGE, "image"), Output(T.LATENT, "latent", "the VAE's own latents, as ComfyUI's"))


class GenerateImageNode(Node):
    """Generate images from positive and negative conditioning with a diffusers pipeline."""

    node_id = "ImageTuneGenerate"
    category = "ImageTune/generate"
    inputs = (
        Input("pipeline", T.PIPELINE),
        Input("positive", T.CONDITIONING),
        Input("negative", T.CONDITIONING, tooltip="usually the encoded empty prompt"),
        Input("width", T.INT, default=512, min=8, max=T.MAX_RESOLUTION, step=8,
              tooltip="image width in pixels (a multiple of 8)"),
        Input("height", T.INT, default=512, min=8, max=T.MAX_RESOLUTION, step=8,
              tooltip="image height in pixels (a multiple of 8)"),
        *_sampling_inputs(),
        Input("batch_size", T.INT, default=1, min=1, max=64, tooltip="images per prompt"),
    )
    outputs = _OUTPUTS

    @classmethod
    def check_inputs(cls, width=512, height=512, batch_size=1, **_):
        problems = [(name, f"expected a multiple of 8, got {value}")
                    for name, value in (("width", width), ("height", height))
                    if isinstance(value, int) and value % 8]
        if all(isinstance(v, int) for v in (width, height, batch_size)):
            problem = pixels_problem(batch_size, height, width, MAX_GENERATED_PIXELS, "the images")
            if problem:
                problems.append(("batch_size" if batch_size > 1 else "width", problem))
        return problems

    def run(self, ctx, pipeline, positive, negative, width, height, steps, guidance, seed,
            batch_size, guidance_rescale=0.0):
        from ..ops.diffusion import Sampling, text_to_image

        sampling = Sampling(steps, guidance, seed, guidance_rescale or 0.0)
        return text_to_image(pipeline, positive, negative, width, height, batch_size, sampling, ctx)


class GenerateFromImageNode(Node):
    """Re-generate an image with a prompt (img2img): denoise 0 keeps it, 1 replaces it."""

    node_id = "ImageTuneGenerateFromImage"
    category = "ImageTune/generate"
    inputs = (
        Input("pipeline", T.PIPELINE),
        Input("positive", T.CONDITIONING),
        Input("negative", T.CONDITIONING),
        Input("image", T.IMAGE),
        Input("denoise", T.FLOAT, default=0.6, min=0.01, max=1.0, step=0.01,
              tooltip="how much of the schedule is re-run (share of the steps)"),
        *_sampling_inputs(),
    )
    outputs = _OUTPUTS

    def run(self, ctx, pipeline, positive, negative, image, denoise, steps, guidance, seed,
            guidance_rescale=0.0):
        from ..ops.diffusion import Sampling, image_to_image

        sampling = Sampling(steps, guidance, seed, guidance_rescale or 0.0)
        return image_to_image(pipeline, positive, negative, image, denoise, sampling, ctx)


class RestyleWithDiffusionNode(Node):
    """Restyle an image with a style prompt through a diffusion pipeline (img2img)."""

    node_id = "ImageTuneDiffusionRestyle"
    category = "ImageTune/style"
    inputs = (
        Input("pipeline", T.PIPELINE),
        Input("text_encoder", T.TEXT_ENCODER),
        Input("image", T.IMAGE),
        Input("style_prompt", T.STRING, default="", multiline=True,
              tooltip="the style to move towards, e.g. 'an oil painting, thick brush strokes'"),
        Input("negative_prompt", T.STRING, default="", multiline=True, optional=True,
              tooltip="what to steer away from (empty: the unconditional prompt)"),
        Input("strength", T.FLOAT, default=0.5, min=0.01, max=1.0, step=0.01,
              tooltip="denoise strength: how far the image may move towards the style"),
        *_sampling_inputs(),
    )
    outputs = (Output(T.IMAGE, "image"),)

    def run(self, ctx, pipeline, text_encoder, image, style_prompt, strength, steps, guidance, seed,
            negative_prompt="", guidance_rescale=0.0):
        from ..ops.diffusion import Sampling, restyle

        return (restyle(ctx, pipeline, text_encoder, image, style_prompt, strength,
                        Sampling(steps, guidance, seed, guidance_rescale or 0.0), negative_prompt or ""),)


class GenerateWithGANNode(Node):
    """Generate images from GAN latents z with a DCGAN-style generator."""

    node_id = "ImageTuneGANGenerate"
    category = "ImageTune/generate"
    inputs = (Input("gan", T.GAN), Input("z", T.GAN_LATENT))
    outputs = (Output(T.IMAGE, "image"),)

    def run(self, ctx, gan, z):
        from ..ops.gan import generate
        from ..ops.placement import module_bytes, placed

        with placed(gan.model, gan.device, ctx, module_bytes(gan.model)):
            return (generate(gan, z),)


class SampleGANLatentNode(Node):
    """Seeded random GAN latents z ~ N(0, I), one per batch item."""

    node_id = "ImageTuneGANLatent"
    display_name = "Random GAN Latent (ImageTune)"  # the id cannot say the latent is random
    category = "ImageTune/generate"
    inputs = (
        Input("gan", T.GAN),
        Input("seed", T.INT, default=0, min=0, max=T.MAX_SEED, tooltip="seed of the random latents"),
        Input("batch_size", T.INT, default=1, min=1, max=4096, tooltip="how many latents (images)"),
    )
    outputs = (Output(T.GAN_LATENT, "z"),)

    def run(self, ctx, gan, seed, batch_size):
        import torch

        from ..ops.conditioning import seeded_normal

        return (seeded_normal((batch_size, gan.z_dim), seed, torch.empty(0, device=gan.device)),)


NODES = (GenerateImageNode, GenerateFromImageNode, RestyleWithDiffusionNode, GenerateWithGANNode,
         SampleGANLatentNode)
