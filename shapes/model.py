"""Architecture of the embedded demo generator: diffusers parts in a Stable Diffusion layout.

64x64 RGB <-> 16x16x4 latents (AutoencoderKL), a UNet2DConditionModel with cross-attention on
MiniLM token states (width 384) at every level, and DDIM with "trailing" timesteps over a
zero-terminal-SNR v-prediction schedule.
"""
from __future__ import annotations

from pathlib import Path

CONTEXT_DIM = 384  # MiniLM hidden size
LATENT_SIZE = 16

SCHEDULE = dict(num_train_timesteps=1000, beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                prediction_type="v_prediction", rescale_betas_zero_snr=True, timestep_spacing="trailing",
                clip_sample=False)


def make_vae():
    """A small AutoencoderKL: 64x64x3 -> 16x16x4 (two downsamplings)."""
    from diffusers import AutoencoderKL
    return AutoencoderKL(in_channels=3, out_channels=3, latent_channels=4,
                         down_block_types=("DownEncoderBlock2D",) * 3,
                         up_block_types=("UpDecoderBlock2D",) * 3,
                         block_out_channels=(16, 32, 32), layers_per_block=1, norm_num_groups=8,
                         mid_block_add_attention=False, sample_size=64)


def make_unet():
    """A ~4.7M-parameter latent UNet with cross-attention at 16x16, 8x8 and 4x4."""
    from diffusers import UNet2DConditionModel
    return UNet2DConditionModel(
        sample_size=LATENT_SIZE, in_channels=4, out_channels=4, layers_per_block=1,
        block_out_channels=(32, 64, 128),
        down_block_types=("CrossAttnDownBlock2D",) * 3,
        up_block_types=("CrossAttnUpBlock2D",) * 3,
        cross_attention_dim=CONTEXT_DIM, attention_head_dim=4, norm_num_groups=32)


def make_scheduler(kind: str = "ddim"):
    """The training ("ddpm") or sampling ("ddim") scheduler on the shared schedule."""
    from diffusers import DDIMScheduler, DDPMScheduler
    cls = DDPMScheduler if kind == "ddpm" else DDIMScheduler
    options = dict(SCHEDULE)
    if kind == "ddim":
        options["set_alpha_to_one"] = False
    return cls(**options)


def save_pipeline(folder: Path, vae, unet) -> None:
    """Write a StableDiffusionPipeline folder (no text encoder, tokenizer or safety checker)."""
    from diffusers import StableDiffusionPipeline
    pipe = StableDiffusionPipeline(vae=vae, text_encoder=None, tokenizer=None, unet=unet,
                                   scheduler=make_scheduler("ddim"), safety_checker=None,
                                   feature_extractor=None, requires_safety_checker=False)
    pipe.save_pretrained(folder, safe_serialization=True)


def load_pipeline(folder, device="cpu"):
    """Load the folder the way the pack's pipeline loader does (diffusers ``from_pretrained``)."""
    from diffusers import StableDiffusionPipeline
    pipe = StableDiffusionPipeline.from_pretrained(
        str(folder), text_encoder=None, tokenizer=None, safety_checker=None, feature_extractor=None,
        requires_safety_checker=False)
    pipe.set_progress_bar_config(disable=True)
    return pipe.to(device)
