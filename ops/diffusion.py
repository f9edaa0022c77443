"""Running a diffusers pipeline on CONDITIONING: text-to-image, image-to-image and restyle.

The pipeline gets ``prompt_embeds``/``negative_prompt_embeds`` (and the pooled embeds where it
takes them), a CPU ``torch.Generator`` seeded per call (the same noise on every device), and a
step callback that reports progress and stops between steps on interrupt. It returns latents;
decoding is done here so one call yields both IMAGE and LATENT.

LATENT follows ComfyUI: ``samples`` are the VAE's own latents (divided by the pipeline's scaling
factor), so ComfyUI's VAE Decode reads them.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from ..graph_runtime.errors import NodeInputError
from . import conditioning as C
from .limits import MAX_GENERATED_PIXELS, check_pixels
from .pipelines import Pipeline, after_use, on_device


@dataclass(frozen=True)
class Sampling:
    """The numbers of one generation."""

    steps: int = 20
    guidance: float = 7.0
    seed: int = 0
    guidance_rescale: float = 0.0


def embeds(handle: Pipeline, positive, negative) -> dict:
    """The pipeline's ``prompt_embeds`` keyword arguments from two CONDITIONINGs."""
    pos, pos_pooled, _ = C.first(positive, "positive")
    neg, neg_pooled, _ = C.first(negative, "negative")
    width = handle.context_width
    for field, t in (("positive", pos), ("negative", neg)):
        if width is not None and t.shape[-1] != width:
            raise NodeInputError(field, f"expected token width {width} for {handle.name}, got {t.shape[-1]}; "
                                        "project it with ImageTuneConditioningProject or use a matching encoder")
    pos, neg = C.match_batch(pos, neg, "negative")
    pos, neg = C.match_tokens(pos, neg)
    device, dtype = _execution(handle)
    out = {"prompt_embeds": pos.to(device, dtype), "negative_prompt_embeds": neg.to(device, dtype)}
    if handle.takes_pooled:
        if pos_pooled is None or neg_pooled is None:
            raise NodeInputError("positive" if pos_pooled is None else "negative",
                                 f"{type(handle.pipe).__name__} needs a pooled_output in the conditioning")
        pos_pooled, neg_pooled = C.match_batch(pos_pooled, neg_pooled, "negative")
        out["pooled_prompt_embeds"] = pos_pooled.to(device, dtype)
        out["negative_pooled_prompt_embeds"] = neg_pooled.to(device, dtype)
    return out


def _execution(handle: Pipeline) -> tuple[torch.device, torch.dtype]:
    denoiser = getattr(handle.pipe, "unet", None) or getattr(handle.pipe, "transformer", None)
    return torch.device(handle.device), (denoiser.dtype if denoiser is not None else handle.dtype)


def regional(handle: Pipeline, positive, kwargs: dict, batch_size: int) -> dict:
    """The pipeline call's ``cross_attention_kwargs`` for a positive CONDITIONING with ``token_regions``, else {}.

    The map must cover the positive's tokens; it follows the prompts through ``num_images_per_prompt``
    (each prompt's images are consecutive) and the UNet gets the regional attention processor.
    """
    tokens, _, extras = C.first(positive, "positive")
    seen = extras.get(C.REGIONS)
    if seen is None:
        return {}
    from .regional_attention import check_regions, fit_tokens, use_regions

    denoiser = getattr(handle.pipe, "unet", None)
    if denoiser is None:
        raise NodeInputError("positive", f"token_regions need a UNet pipeline; {type(handle.pipe).__name__} has none")
    if not torch.is_tensor(seen) or seen.shape[0] != tokens.shape[0]:
        raise NodeInputError("positive", f"expected token_regions [B, T, h, w] with B = {tokens.shape[0]} prompts, "
                                         f"got {list(seen.shape) if torch.is_tensor(seen) else type(seen).__name__}")
    try:
        check_regions(seen, tokens.shape[1])
        seen = fit_tokens(seen, kwargs["prompt_embeds"].shape[1])
        use_regions(denoiser)
    except ValueError as exc:
        raise NodeInputError("positive", f"token_regions: {exc}") from exc
    device, dtype = _execution(handle)
    return {"cross_attention_kwargs": {C.REGIONS: seen.repeat_interleave(batch_size, 0).to(device, dtype)}}


def step_callback(ctx):
    """A ``callback_on_step_end`` that reports steps to ``ctx`` (which raises on interrupt)."""
    def callback(pipe, step, _timestep, kwargs):
        ctx.progress(step + 1, int(getattr(pipe, "num_timesteps", 0) or step + 1))
        return kwargs
    return callback


def text_to_image(handle: Pipeline, positive, negative, width: int, height: int, batch_size: int,
                  sampling: Sampling, ctx) -> tuple[torch.Tensor, dict]:
    """(IMAGE [B, H, W, 3] float32 0..1, LATENT) from conditioning; B = prompts x batch_size."""
    kwargs = embeds(handle, positive, negative)
    prompts = kwargs["prompt_embeds"].shape[0]  # one_prompt_per_line multiplies the batch
    check_pixels("batch_size", prompts * batch_size, height, width, MAX_GENERATED_PIXELS,
                 f"{prompts} prompt(s) x batch_size {batch_size} images")
    on_device(handle, ctx)
    try:
        extra = regional(handle, positive, kwargs, batch_size)
        latents = _call(handle.pipe, ctx, sampling, kwargs, width=width, height=height,
                        num_images_per_prompt=batch_size, **extra)
        return decode(handle.pipe, latents), latent_output(handle.pipe, latents)
    finally:
        after_use(handle, ctx)


def image_to_image(handle: Pipeline, positive, negative, image: torch.Tensor, denoise: float,
                   sampling: Sampling, ctx) -> tuple[torch.Tensor, dict]:
    """img2img: re-noise ``image`` (IMAGE [B, H, W, C]) to ``denoise`` and sample back with the prompt.

    Sizes that are not a multiple of the VAE's factor are cropped down to one by diffusers.
    """
    if image.dim() != 4 or image.shape[-1] not in (1, 3, 4):
        raise NodeInputError("image", f"expected IMAGE [B, H, W, C], got shape {list(image.shape)}")
    check_pixels("image", *image.shape[:3], MAX_GENERATED_PIXELS, "re-generating the images")
    pipe = handle.image_to_image()
    kwargs = embeds(handle, positive, negative)
    batch, prompts = image.shape[0], kwargs["prompt_embeds"].shape[0]
    for key in [k for k in kwargs if k.endswith("embeds")]:
        kwargs[key] = _expand(kwargs[key], batch, "positive")
    on_device(handle, ctx)
    device, _ = _execution(handle)
    pixels = _rgb(image).permute(0, 3, 1, 2).to(device, torch.float32)
    try:
        extra = regional(handle, positive, kwargs, batch // prompts)  # one prompt per image, or one for all
        latents = _call(pipe, ctx, sampling, kwargs, image=pixels, strength=float(denoise), **extra)
        return decode(pipe, latents), latent_output(pipe, latents)
    finally:
        after_use(handle, ctx)


def restyle(ctx, pipeline: Pipeline, text_encoder, image: torch.Tensor, style_prompt: str, strength: float,
            sampling: Sampling, negative_prompt: str = "") -> torch.Tensor:
    """IMAGE [B, H, W, 3] restyled by img2img towards ``style_prompt`` (for any style node to call)."""
    from .text_encoders import encode

    positive = C.make(*encode(text_encoder, [style_prompt], ctx))
    negative = C.make(*encode(text_encoder, [negative_prompt], ctx))
    return image_to_image(pipeline, positive, negative, image, strength, sampling, ctx)[0]


def _rgb(image: torch.Tensor) -> torch.Tensor:
    """IMAGE with 3 channels (grey repeated, alpha dropped)."""
    if image.shape[-1] == 1:
        return image.expand(*image.shape[:-1], 3)
    return image[..., :3]


def _expand(t: torch.Tensor, batch: int, field: str) -> torch.Tensor:
    if t.shape[0] == batch:
        return t
    if t.shape[0] == 1:
        return t.expand(batch, *t.shape[1:])
    raise NodeInputError(field, f"expected a batch of 1 or {batch} prompts (one per image), got {t.shape[0]}")


def _call(pipe, ctx, sampling: Sampling, kwargs: dict, **extra) -> torch.Tensor:
    generator = torch.Generator(device="cpu").manual_seed(int(sampling.seed) % (1 << 64))
    options = dict(num_inference_steps=sampling.steps, guidance_scale=sampling.guidance,
                   generator=generator, output_type="latent", return_dict=False,
                   callback_on_step_end=step_callback(ctx))
    if sampling.guidance_rescale:
        options["guidance_rescale"] = sampling.guidance_rescale
    return pipe(**kwargs, **options, **extra)[0]


def decode(pipe, latents: torch.Tensor) -> torch.Tensor:
    """IMAGE [B, H, W, 3] float32 0..1 from the pipeline's (scaled) latents."""
    vae = pipe.vae
    config = vae.config
    raw = latents / config.scaling_factor + (getattr(config, "shift_factor", None) or 0.0)
    upcast = vae.dtype == torch.float16 and getattr(config, "force_upcast", False)
    dtype = torch.float32 if upcast else vae.dtype
    if upcast:
        vae.to(torch.float32)
    try:
        pixels = vae.decode(raw.to(dtype), return_dict=False)[0]
    finally:
        if upcast:
            vae.to(torch.float16)
    return (pixels.float() / 2 + 0.5).clamp(0, 1).permute(0, 2, 3, 1).contiguous()


def latent_output(pipe, latents: torch.Tensor) -> dict:
    """ComfyUI LATENT: the VAE's own latents (unscaled), float32."""
    config = pipe.vae.config
    raw = latents / config.scaling_factor + (getattr(config, "shift_factor", None) or 0.0)
    return {"samples": raw.float()}
