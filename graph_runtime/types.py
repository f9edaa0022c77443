"""Socket type names: ComfyUI's own, plus ImageTune's handle types for loaded models.

Tensor conventions are ComfyUI's:
- IMAGE: float32 tensor [B, H, W, C] with values in 0..1 (C = 3, or 4 with alpha)
- MASK: float32 tensor [B, H, W] in 0..1
- LATENT: {"samples": tensor [B, C, h, w]}
- CONDITIONING: list of [tensor [B, T, D], {"pooled_output": tensor [B, D'] or None, ...}]
"""
from __future__ import annotations

IMAGE = "IMAGE"
MASK = "MASK"
LATENT = "LATENT"
CONDITIONING = "CONDITIONING"
INT = "INT"
FLOAT = "FLOAT"
STRING = "STRING"
BOOLEAN = "BOOLEAN"
COMBO = "COMBO"

# Handles for loaded models: our own names, prefixed so they never meet ComfyUI's.
TEXT_ENCODER = "IMAGETUNE_TEXT_ENCODER"
PIPELINE = "IMAGETUNE_PIPELINE"
GAN = "IMAGETUNE_GAN"
GAN_LATENT = "IMAGETUNE_GAN_LATENT"
# ComfyUI's own name: the value is a spandrel ImageModelDescriptor, as from its UpscaleModelLoader.
UPSCALE_MODEL = "UPSCALE_MODEL"
LIT_MODEL = "IMAGETUNE_LIT_MODEL"

WIDGET_TYPES = frozenset({INT, FLOAT, STRING, BOOLEAN, COMBO})

MAX_RESOLUTION = 16384
MAX_SEED = 0xFFFFFFFFFFFFFFFF
