"""Loader nodes: a text encoder, a diffusers pipeline and a GAN generator, cached per process.

Each returns a handle (IMAGETUNE_TEXT_ENCODER, IMAGETUNE_PIPELINE, IMAGETUNE_GAN). Models are
found under the model roots (the ComfyUI ``models/`` layout where present); see
``ops/model_files.py``. Loading goes through ``ops/model_cache.MODELS``: running a workflow
again loads no weights, and a changed name or file loads the new model and frees the old.
"""
from __future__ import annotations

from ..graph_runtime import Input, Node, Output, combo
from ..graph_runtime import types as T
from ..graph_runtime.paths import name_problems
from ..ops.choices import DEVICES, DTYPES
from ..ops.model_cache import MODELS, files_signature
from ..ops.model_files import DEFAULT_PIPELINE, MINILM, PIPELINES, TEXT_ENCODERS
from ..ops.schedulers import SCHEDULERS


def _signature(locate, ctx, name: str):
    """Cache-busting material for a model name: its files' sizes and times, or the error."""
    from ..ops.model_files import downloads_allowed

    try:
        source = locate(ctx.models_dirs, name, downloads=downloads_allowed())
    except Exception as exc:  # reported when the node runs; here it only has to be stable
        return f"{type(exc).__name__}: {exc}"
    return files_signature(source.path) if source.path is not None else source.repo_id


class LoadTextEncoderNode(Node):
    """Load a transformers text encoder and its tokenizer ('minilm' is the offline default)."""

    node_id = "ImageTuneLoadTextEncoder"
    category = "ImageTune/loaders"
    inputs = (
        combo("text_encoder", (MINILM,), listing=TEXT_ENCODERS, open=True,
              tooltip="'minilm' (shipped offline) or a folder in models/text_encoders or models/clip; "
                      "also takes a diffusers pipeline folder with text_encoder/, a path under a models "
                      "folder, or a hub id when downloads are allowed"),
        combo("dtype", DTYPES, tooltip="auto: fp16 on CUDA, fp32 on the CPU"),
        combo("device", DEVICES, tooltip="auto: the run's device"),
    )
    outputs = (Output(T.TEXT_ENCODER, "text_encoder"),)

    @classmethod
    def fingerprint(cls, ctx, text_encoder=MINILM, **_):
        from ..ops.text_encoders import locate_encoder

        return _signature(locate_encoder, ctx, text_encoder)

    @classmethod
    def check_inputs(cls, **literals):
        return name_problems(literals, "text_encoder")

    def run(self, ctx, text_encoder, dtype, device):
        from ..ops.model_files import downloads_allowed
        from ..ops.placement import resolve_device
        from ..ops.text_encoders import load_text_encoder, locate_encoder

        source = locate_encoder(ctx.models_dirs, text_encoder, downloads=downloads_allowed())
        target = resolve_device(device, ctx)
        key = ("text_encoder", files_signature(source.path) if source.path else source.repo_id, dtype, target)
        handle = MODELS.get(("text_encoder", ctx.node_id), key,
                            lambda: load_text_encoder(source, target, dtype))
        return (handle,)


class LoadPipelineNode(Node):
    """Load a diffusers pipeline from a folder, a .safetensors/.ckpt checkpoint or a hub id."""

    node_id = "ImageTuneLoadPipeline"
    category = "ImageTune/loaders"
    inputs = (
        combo("model", (DEFAULT_PIPELINE,), listing=PIPELINES, open=True,
              tooltip="a diffusers folder (models/diffusers or models/) or a checkpoint file "
                      "(models/checkpoints); also takes a path under a models folder, or a hub id when "
                      "downloads are allowed"),
        combo("scheduler", tuple(SCHEDULERS), tooltip="default keeps the model's own sampler"),
        combo("dtype", DTYPES, tooltip="auto: fp16 on CUDA, fp32 on the CPU"),
        combo("device", DEVICES, tooltip="auto: the run's device"),
        Input("cpu_offload", T.BOOLEAN, default=False,
              tooltip="keep parts on the CPU and move each to the GPU only while it runs (small GPUs)"),
        Input("attention_slicing", T.BOOLEAN, default=False,
              tooltip="compute attention in slices: less memory, a little slower"),
        Input("config", T.STRING, default="", optional=True,
              tooltip="single-file checkpoints only: a local diffusers folder of the same architecture "
                      "whose configs are used (so nothing is fetched)"),
    )
    outputs = (Output(T.PIPELINE, "pipeline"),)

    @classmethod
    def fingerprint(cls, ctx, model=DEFAULT_PIPELINE, **_):
        from ..ops.pipelines import locate_pipeline

        return _signature(locate_pipeline, ctx, model)

    @classmethod
    def check_inputs(cls, **literals):
        return name_problems(literals, "model", "config")

    def run(self, ctx, model, scheduler, dtype, device, cpu_offload, attention_slicing, config=""):
        from ..ops.model_files import downloads_allowed
        from ..ops.pipelines import load_pipeline, locate_pipeline
        from ..ops.placement import resolve_device

        source = locate_pipeline(ctx.models_dirs, model, downloads=downloads_allowed())
        config_dir = None
        if config:
            config_dir = PIPELINES.find(ctx.models_dirs, config, "config")
            if config_dir is None:
                from ..graph_runtime.errors import NodeInputError

                raise NodeInputError("config", f"expected a diffusers folder under the model roots, got {config!r}")
        target = resolve_device(device, ctx)
        signature = files_signature(source.path) if source.path else source.repo_id
        key = ("pipeline", signature, dtype, target, cpu_offload, attention_slicing, str(config_dir))
        base = MODELS.get(("pipeline", ctx.node_id), key,
                          lambda: load_pipeline(source, target, dtype, cpu_offload, attention_slicing, config_dir))
        return (base.with_scheduler(scheduler),)


class LoadGANNode(Node):
    """Load a DCGAN-style generator G(z) from a .safetensors state dict and its JSON config."""

    node_id = "ImageTuneLoadGAN"
    category = "ImageTune/loaders"
    inputs = (
        Input("gan_name", T.STRING, default="",
              tooltip="a .safetensors file under models/gan (config: same name .json, or config.json)"),
        combo("device", DEVICES, tooltip="auto: the run's device"),
    )
    outputs = (Output(T.GAN, "gan"),)

    @classmethod
    def fingerprint(cls, ctx, gan_name="", **_):
        from ..ops.model_files import find_local

        try:
            path = find_local(ctx.models_dirs, gan_name, ("gan",), "gan_name")
        except Exception as exc:
            return repr(exc)
        if path is None:
            return None
        return _gan_signature(path)

    @classmethod
    def check_inputs(cls, **literals):
        return name_problems(literals, "gan_name")

    def run(self, ctx, gan_name, device):
        from ..graph_runtime.errors import NodeInputError
        from ..ops.gan import load_gan
        from ..ops.model_files import find_local
        from ..ops.placement import resolve_device

        path = find_local(ctx.models_dirs, gan_name, ("gan",), "gan_name")
        if path is None or not path.is_file():
            roots = ", ".join(str(r) for r in ctx.models_dirs)
            raise NodeInputError("gan_name", f"expected a .safetensors file under {roots} (or their gan/), "
                                             f"got {gan_name!r}, which is not there")
        target = resolve_device(device, ctx)
        key = ("gan", _gan_signature(path), target)
        handle = MODELS.get(("gan", ctx.node_id), key, lambda: load_gan(path, target))
        return (handle,)


def _gan_signature(weights) -> tuple:
    """Sizes and times of a GAN's weights and of the config files it may read."""
    configs = [p for p in (weights.with_suffix(".json"), weights.parent / "config.json") if p.is_file()]
    return files_signature(weights), tuple(files_signature(p) for p in configs)


NODES = (LoadTextEncoderNode, LoadPipelineNode, LoadGANNode)
