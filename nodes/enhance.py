"""Enhance nodes: sharpen, colour adjustments, auto-contrast, CLAHE, denoise and resize.

Each takes and returns ComfyUI IMAGE batches; alpha passes through untouched (resized along
when the size changes) and grey (C = 1) images stay grey.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Callable

from ..graph_runtime import Input, Node, Output, combo
from ..graph_runtime import types as T
from ..ops.limits import MAX_IMAGE_PIXELS, check_pixels

if TYPE_CHECKING:
    import torch

# The ops (torch) are imported in run(): declaring and validating these nodes needs no torch.

RESIZE_METHODS = ("lanczos", "bicubic", "bilinear", "area", "nearest-exact")


def on_colour(image: torch.Tensor, op: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:
    """Apply ``op`` to the colour channels ([B,C,H,W], C = 1 or 3) of an IMAGE, keeping alpha."""
    from ..ops.image import check_image, join_alpha, split_alpha, to_bchw, to_bhwc

    colour, alpha = split_alpha(to_bchw(check_image(image)))
    return to_bhwc(join_alpha(op(colour), alpha))


class UnsharpMaskNode(Node):
    """Sharpen with an unsharp mask (PIL's parameters: radius, amount, threshold)."""

    node_id = "ImageTuneUnsharpMask"
    category = "ImageTune/enhance"
    inputs = (Input("image", T.IMAGE),
              Input("radius", T.FLOAT, default=2.0, min=0.0, max=64.0, step=0.1, tooltip="Blur standard deviation in pixels."),
              Input("amount", T.FLOAT, default=1.5, min=0.0, max=10.0, step=0.05, tooltip="How much of the detail to add (1.5 = PIL's 150%)."),
              Input("threshold", T.INT, default=3, min=0, max=255, tooltip="Leave differences up to this many 8-bit levels alone (spares noise)."))
    outputs = (Output(T.IMAGE, "image"),)

    def run(self, ctx, image, radius, amount, threshold):
        from ..ops.enhance import unsharp_mask

        return (on_colour(image, lambda x: unsharp_mask(x, radius, amount, threshold)),)


class AdjustColourNode(Node):
    """Brightness, contrast, saturation (factors, 1 = unchanged, as PIL's ImageEnhance) and gamma."""

    node_id = "ImageTuneAdjustColour"
    category = "ImageTune/enhance"
    inputs = (Input("image", T.IMAGE),
              Input("brightness", T.FLOAT, default=1.0, min=0.0, max=4.0, step=0.01,
                    tooltip="Multiplies every value (PIL's ImageEnhance.Brightness); 1 = unchanged."),
              Input("contrast", T.FLOAT, default=1.0, min=0.0, max=4.0, step=0.01,
                    tooltip="Spreads values away from the mean grey (PIL's ImageEnhance.Contrast); 1 = unchanged."),
              Input("saturation", T.FLOAT, default=1.0, min=0.0, max=4.0, step=0.01,
                    tooltip="Moves colours away from their grey (PIL's ImageEnhance.Color); 0 = grey, 1 = unchanged."),
              Input("gamma", T.FLOAT, default=1.0, min=0.05, max=10.0, step=0.01, tooltip="Above 1 brightens mid-tones (out = in^(1/gamma))."))
    outputs = (Output(T.IMAGE, "image"),)

    def run(self, ctx, image, brightness, contrast, saturation, gamma):
        from ..ops.enhance import adjust

        return (on_colour(image, lambda x: adjust(x, brightness, contrast, saturation, gamma)),)


class AutoContrastNode(Node):
    """Stretch each channel to the full range, ignoring a percentage of extreme pixels."""

    node_id = "ImageTuneAutoContrast"
    category = "ImageTune/enhance"
    inputs = (Input("image", T.IMAGE),
              Input("cutoff", T.FLOAT, default=0.5, min=0.0, max=49.0, step=0.1, tooltip="Percent clipped at each end."))
    outputs = (Output(T.IMAGE, "image"),)

    def run(self, ctx, image, cutoff):
        from ..ops.enhance import auto_contrast

        return (on_colour(image, lambda x: auto_contrast(x, cutoff)),)


class EqualizeClaheNode(Node):
    """Local contrast with CLAHE on the lightness (CIELAB L) of each image."""

    node_id = "ImageTuneCLAHE"
    category = "ImageTune/enhance"
    inputs = (Input("image", T.IMAGE),
              Input("clip_limit", T.FLOAT, default=2.0, min=0.1, max=40.0, step=0.1, tooltip="Higher allows more contrast (OpenCV's default is 40)."),
              Input("grid", T.INT, default=8, min=1, max=64, tooltip="Tiles per side."))
    outputs = (Output(T.IMAGE, "image"),)

    def run(self, ctx, image, clip_limit, grid):
        from ..ops.enhance import clahe

        return (on_colour(image, lambda x: clahe(x, clip_limit, grid)),)


class DenoiseNode(Node):
    """Reduce noise: edge-preserving bilateral filter, median, or Gaussian blur."""

    node_id = "ImageTuneDenoise"
    category = "ImageTune/enhance"
    inputs = (Input("image", T.IMAGE),
              combo("method", ("bilateral", "median", "gaussian"),
                    tooltip="bilateral keeps edges, median removes speckles, gaussian smooths everything."),
              Input("strength", T.FLOAT, default=0.1, min=0.001, max=1.0, step=0.005, tooltip="Bilateral: how different colours may be and still be averaged."),
              Input("radius", T.INT, default=2, min=1, max=15, tooltip="Window radius in pixels."))
    outputs = (Output(T.IMAGE, "image"),)

    def run(self, ctx, image, method, strength, radius):
        from ..ops.enhance import denoise

        return (on_colour(image, lambda x: denoise(x, method, strength, radius)),)


class ResizeImageNode(Node):
    """Resize by a factor with Lanczos, bicubic or bilinear (PIL's filters), area or nearest."""

    node_id = "ImageTuneResize"
    category = "ImageTune/enhance"
    inputs = (Input("image", T.IMAGE),
              combo("method", RESIZE_METHODS, tooltip="lanczos is sharpest; bicubic/bilinear are PIL's filters; area averages when shrinking."),
              Input("scale_by", T.FLOAT, default=2.0, min=0.01, max=16.0, step=0.01, tooltip="Size factor (0.5 halves, 2 doubles)."))
    outputs = (Output(T.IMAGE, "image"),)

    def run(self, ctx, image, method, scale_by):
        from ..ops.image import check_image, to_bchw, to_bhwc
        from ..ops.resample import resize, scaled_size

        x = to_bchw(check_image(image))
        height, width = scaled_size(x.shape[2], x.shape[3], scale_by)
        check_pixels("scale_by", x.shape[0], height, width, MAX_IMAGE_PIXELS, "the resized images")
        return (to_bhwc(resize(x, height, width, method).clamp(0, 1)),)


NODES = (UnsharpMaskNode, AdjustColourNode, AutoContrastNode, EqualizeClaheNode, DenoiseNode, ResizeImageNode)
