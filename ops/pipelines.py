"""Loading diffusers pipelines: a local folder, a single checkpoint file, or a hub id.

Pipelines load without their safety checker, text encoders and tokenizers: conditioning always
comes from the text-encode node as ``prompt_embeds`` (whose loader can read a pipeline folder's
``text_encoder/``), so those weights are never held twice.
A ``.ckpt`` is read only with ``torch.load(weights_only=True)``: one that carries pickled code
is refused before anything else reads it.
"""
from __future__ import annotations

import copy
import inspect
from dataclasses import dataclass, field, replace
from pathlib import Path

import torch

from ..graph_runtime.errors import NodeInputError
from .model_files import PIPELINES, ModelSource, locate
from .placement import dtype_keyword, module_bytes, resolve_dtype, same_device
from .schedulers import make_scheduler

_SKIPPED_PARTS = ("text_encoder", "tokenizer", "text_encoder_2", "tokenizer_2", "text_encoder_3", "tokenizer_3",
                  "safety_checker", "feature_extractor", "image_encoder")


@dataclass(eq=False)
class Pipeline:
    """A loaded diffusers pipeline (on the CPU until used), the device it runs on, and its options."""

    pipe: object
    name: str
    device: str
    dtype: torch.dtype
    cpu_offload: bool = False
    scheduler_name: str = "default"
    variants: dict = field(default_factory=dict, repr=False)

    @property
    def context_width(self) -> int | None:
        """The width D the denoiser expects in ``prompt_embeds`` (None if it does not say)."""
        denoiser = getattr(self.pipe, "unet", None) or getattr(self.pipe, "transformer", None)
        config = getattr(denoiser, "config", None)
        width = getattr(config, "cross_attention_dim", None) or getattr(config, "joint_attention_dim", None)
        return int(width[0] if isinstance(width, (list, tuple)) else width) if width else None

    @property
    def takes_pooled(self) -> bool:
        """True for pipelines with a pooled text embedding input (SDXL and the like)."""
        return "pooled_prompt_embeds" in inspect.signature(type(self.pipe).__call__).parameters

    def with_scheduler(self, name: str) -> "Pipeline":
        """A handle sharing this pipeline's weights but sampling with the scheduler ``name``."""
        scheduler = make_scheduler(name, self.pipe.scheduler.config)
        if scheduler is None:
            return self
        # A shallow copy shares the modules; assigning the scheduler re-registers it in the
        # copy's config (a new frozen dict), so the cached original keeps its own.
        pipe = copy.copy(self.pipe)
        pipe.scheduler = scheduler
        return replace(self, pipe=pipe, scheduler_name=name, variants={})

    def image_to_image(self):
        """The img2img pipeline over the same weights (made once per handle)."""
        if "img2img" not in self.variants:
            from diffusers import AutoPipelineForImage2Image

            try:
                self.variants["img2img"] = AutoPipelineForImage2Image.from_pipe(self.pipe)
            except ValueError as exc:
                raise NodeInputError("pipeline", f"{type(self.pipe).__name__} has no image-to-image "
                                                 f"variant: {exc}") from exc
            self.variants["img2img"].set_progress_bar_config(disable=True)
        return self.variants["img2img"]

    def size_bytes(self) -> int:
        """Bytes of all the pipeline's torch modules."""
        return sum(module_bytes(m) for m in self.modules())

    def modules(self) -> list[torch.nn.Module]:
        """The torch modules of the pipeline (unet, vae, text encoders...)."""
        return [c for c in self.pipe.components.values() if isinstance(c, torch.nn.Module)]

    def release(self) -> None:
        """Leave the accelerator (the cache drops the last reference)."""
        if not self.cpu_offload:
            self.pipe.to("cpu")


def locate_pipeline(roots, name: str, field: str = "model", downloads: bool = False) -> ModelSource:
    """Resolve a pipeline name: a diffusers folder or a checkpoint file under the roots, or a hub id."""
    return locate(roots, name, PIPELINES, field, downloads)


def load_pipeline(source: ModelSource, device: str, dtype_name: str = "auto", cpu_offload: bool = False,
                  attention_slicing: bool = False, config: Path | None = None) -> Pipeline:
    """Load ``source`` on the CPU in the chosen dtype, with the memory options applied."""
    dtype = resolve_dtype(dtype_name, device)
    path = source.path
    if path is not None and path.is_file():
        pipe = _load_single_file(path, dtype, config, local_only=not source.downloads)
    else:
        pipe = _load_folder(path if path is not None else source.repo_id, dtype)
    pipe.set_progress_bar_config(disable=True)
    if attention_slicing:
        pipe.enable_attention_slicing()
    if cpu_offload:
        if not str(device).startswith("cuda"):
            raise NodeInputError("cpu_offload", f"expected a CUDA device for CPU offload, got {device!r}")
        pipe.enable_model_cpu_offload(device=device)
    return Pipeline(pipe, source.name, device, dtype, cpu_offload=cpu_offload)


def _load_folder(where, dtype):
    from diffusers import DiffusionPipeline

    if isinstance(where, Path) and not (where / "model_index.json").is_file():
        raise NodeInputError("model", f"{where} is not a diffusers pipeline folder (no model_index.json)")
    index = DiffusionPipeline.load_config(str(where))
    return DiffusionPipeline.from_pretrained(str(where), **{dtype_keyword("diffusers"): dtype},
                                             **skipped_parts(index))


def skipped_parts(index: dict) -> dict:
    """None for every text encoder, tokenizer and safety part the pipeline lists, so none loads.

    Conditioning always comes from the text-encode node as ``prompt_embeds``; a pipeline's own
    encoder is used by pointing the text-encoder loader at the same folder (loaded once, there).
    """
    skipped = {part: None for part in _SKIPPED_PARTS if part in index}
    if "requires_safety_checker" in index:
        skipped["requires_safety_checker"] = False
    return skipped


def refuse_pickled_code(path: Path, field: str = "model") -> None:
    """Raise NodeInputError unless ``path`` loads with ``torch.load(weights_only=True)``."""
    try:
        torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception as exc:  # UnpicklingError for code, RuntimeError for a broken file
        raise NodeInputError(field, f"refused {path.name}: it does not load as plain weights "
                                    f"(torch.load weights_only=True: {type(exc).__name__}); "
                                    "convert it to .safetensors") from exc


def _load_single_file(path: Path, dtype, config: Path | None, local_only: bool = True):
    """``from_single_file`` for .safetensors/.ckpt, with the pipeline class inferred from the keys.

    Without ``config`` diffusers reads the architecture's configs from the hub: only from its
    local cache unless downloads are allowed (``local_only=False``).
    """
    suffix = path.suffix.lower()
    if suffix not in (".safetensors", ".ckpt"):
        raise NodeInputError("model", f"expected a .safetensors or .ckpt checkpoint, got {path.name}")
    if suffix == ".ckpt":
        refuse_pickled_code(path)
    cls = _single_file_class(path)
    parameters = inspect.signature(cls.__init__).parameters
    kwargs = skipped_parts({name: None for name in parameters})
    kwargs["local_files_only"] = local_only
    if config is not None:
        kwargs["config"] = str(config)
    try:
        return cls.from_single_file(str(path), **{dtype_keyword("diffusers"): dtype}, **kwargs)
    except (OSError, ValueError) as exc:
        raise NodeInputError("model", f"could not load {path.name} as a {cls.__name__} checkpoint "
                                      f"(offline, give 'config' a local diffusers folder of the same "
                                      f"architecture): {exc}") from exc


def _single_file_class(path: Path):
    """The pipeline class for a checkpoint, from diffusers' inference of its model type."""
    import diffusers
    from diffusers.loaders.single_file_utils import infer_diffusers_model_type, load_single_file_checkpoint

    checkpoint = load_single_file_checkpoint(str(path))
    kind = infer_diffusers_model_type(checkpoint)
    if kind.startswith("xl_refiner"):
        return diffusers.StableDiffusionXLImg2ImgPipeline
    if kind.startswith(("xl", "playground")):
        return diffusers.StableDiffusionXLPipeline
    if kind.startswith(("v1", "v2")):
        return diffusers.StableDiffusionPipeline
    if kind.startswith("sd3"):
        return diffusers.StableDiffusion3Pipeline
    raise NodeInputError("model", f"{path.name} looks like a {kind!r} checkpoint, which the single-file "
                                  "loader does not map to a pipeline; use a diffusers folder instead")


def on_device(handle: Pipeline, ctx):
    """Move the pipeline to its device (making room first); a no-op with CPU offload."""
    if handle.cpu_offload:
        return
    target = torch.device(handle.device)
    unet = getattr(handle.pipe, "unet", None) or getattr(handle.pipe, "transformer", None)
    current = next(unet.parameters()).device if unet is not None else torch.device("cpu")
    if not same_device(current, target):
        if target.type != "cpu":
            ctx.free_memory(handle.size_bytes())
        handle.pipe.to(target)


def after_use(handle: Pipeline, ctx) -> None:
    """Send the pipeline back to the CPU when the host shares the GPU (ComfyUI)."""
    if not handle.cpu_offload and ctx.offload_after_use and torch.device(handle.device).type != "cpu":
        handle.pipe.to("cpu")
