"""ComfyUI core nodes that our runtime implements itself, so ComfyUI-saved workflows run headless.

Names, inputs (in order) and outputs are ComfyUI's own; they are never registered into ComfyUI
(``comfy_core = True``), which has the originals. The work is shared with the ImageTune nodes.
"""
from __future__ import annotations

from ..graph_runtime import Input, Node, Output, combo
from ..graph_runtime import types as T
from ..ops.limits import MAX_IMAGE_PIXELS, check_pixels, pixels_problem
from .image_io import LoadImageNode, SaveImageNode, save_preview

UPSCALE_METHODS = ("nearest-exact", "bilinear", "area", "bicubic", "lanczos")
CROP_METHODS = ("disabled", "center")


class ComfyLoadImageNode(LoadImageNode):
    """ComfyUI's LoadImage: an image from the input folder, and its alpha as MASK (1 - alpha)."""

    node_id = "LoadImage"
    display_name = "Load Image"  # ComfyUI's own title
    category = "image"
    comfy_core = True
    # ComfyUI lists the input folder as a COMBO; a STRING accepts any file name a saved
    # workflow carries, and the path checks happen at validation and when it runs.
    inputs = (Input("image", T.STRING, default="example.png", tooltip=LoadImageNode.input("image").tooltip),)
    outputs = (Output(T.IMAGE, "IMAGE"), Output(T.MASK, "MASK"))


class ComfySaveImageNode(SaveImageNode):
    """ComfyUI's SaveImage: PNGs in the output folder with the prompt and workflow embedded."""

    node_id = "SaveImage"
    display_name = "Save Image"  # ComfyUI's own title
    category = "image"
    comfy_core = True
    inputs = (Input("images", T.IMAGE, tooltip="The images to save."),
              Input("filename_prefix", T.STRING, default="ComfyUI", tooltip="The prefix for the file to save."))


class ComfyPreviewImageNode(Node):
    """ComfyUI's PreviewImage: temporary PNGs for display."""

    node_id = "PreviewImage"
    display_name = "Preview Image"  # ComfyUI's own title
    category = "image"
    comfy_core = True
    inputs = (Input("images", T.IMAGE),)
    outputs = ()
    output_node = True

    def run(self, ctx, images):
        return save_preview(ctx, images, "ComfyUI")


class ComfyImageScaleNode(Node):
    """ComfyUI's ImageScale: resize to width x height (0 keeps the aspect ratio), optional centre crop."""

    node_id = "ImageScale"
    display_name = "Upscale Image"  # ComfyUI's own title
    category = "image/upscaling"
    comfy_core = True
    inputs = (Input("image", T.IMAGE),
              combo("upscale_method", UPSCALE_METHODS),
              Input("width", T.INT, default=512, min=0, max=T.MAX_RESOLUTION, step=1),
              Input("height", T.INT, default=512, min=0, max=T.MAX_RESOLUTION, step=1),
              combo("crop", CROP_METHODS))
    outputs = (Output(T.IMAGE, "IMAGE"),)

    @classmethod
    def check_inputs(cls, width=0, height=0, **_):
        if isinstance(width, int) and isinstance(height, int):
            problem = pixels_problem(1, height, width, MAX_IMAGE_PIXELS, "each scaled image")
            if problem:
                return [("width", problem)]
        return []

    def run(self, ctx, image, upscale_method, width, height, crop):
        from ..ops.image import check_image, to_bchw, to_bhwc
        from ..ops.resample import comfy_scale, keep_aspect

        check_image(image)
        h, w = image.shape[1:3]
        height, width = keep_aspect(h, w, height, width)
        # a 0 side follows the aspect ratio, so a thin input can ask for a huge other side
        check_pixels("width" if width > height else "height", image.shape[0], height, width,
                     MAX_IMAGE_PIXELS, "the scaled images")
        if (height, width) == (h, w) and crop == "disabled":
            return (image,)
        out = comfy_scale(to_bchw(image), height, width, upscale_method, crop)
        return (to_bhwc(out.clamp(0, 1)),)


class ComfyImageInvertNode(Node):
    """ComfyUI's ImageInvert: 1 - image."""

    node_id = "ImageInvert"
    display_name = "Invert Image"  # ComfyUI's own title
    category = "image"
    comfy_core = True
    inputs = (Input("image", T.IMAGE),)
    outputs = (Output(T.IMAGE, "IMAGE"),)

    def run(self, ctx, image):
        from ..ops.image import check_image

        return (1.0 - check_image(image),)


NODES = (ComfyLoadImageNode, ComfySaveImageNode, ComfyPreviewImageNode, ComfyImageScaleNode,
         ComfyImageInvertNode)
