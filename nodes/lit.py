"""LiT (locked-image text tuning) nodes: load a model, score, keep the best of N, classify, tune."""
from __future__ import annotations

import json
from contextlib import contextmanager
from pathlib import Path

from ..graph_runtime import Input, Node, NodeInputError, Output, combo
from ..graph_runtime import types as T
from ..graph_runtime.paths import name_problems, resolve_inside
from ..ops.model_files import DEFAULT_LIT_MODEL, LIT_MODELS

CATEGORY = "ImageTune/lit"


def input_error(exc: Exception, default_field: str) -> NodeInputError:
    """A NodeInputError from a lit ValueError/FileNotFoundError whose message starts with '<field>: '."""
    field, sep, detail = str(exc).partition(": ")
    if not sep or " " in field:
        return NodeInputError(default_field, str(exc))
    return NodeInputError(field, detail)


def check_problem(field: str, check, *args) -> list[tuple[str, str]]:
    """``[(field, message)]`` when ``check(*args)`` raises ValueError('<field>: message'), else ``[]``."""
    try:
        check(*args)
    except ValueError as exc:
        return [(field, str(exc).partition(": ")[2])]
    return []


def check_tower(ctx, name: str, field: str, aliases: tuple[str, ...]) -> None:
    """Raise NodeInputError unless a tower input is an alias, a name inside a model root, or a usable hub id.

    Checked before tuning, so a workflow's name never reaches the towers module's lookups
    relative to the working directory, and a hub id is refused without downloads allowed.
    """
    from ..ops.model_files import downloads_allowed, locate

    if name not in aliases:
        locate(ctx.models_dirs, name, (), field, downloads=downloads_allowed())


def model_folder(ctx, name: str) -> Path:
    """The folder of the LiT model ``name`` inside ``<models dir>/lit`` (first root that has it; inside
    ComfyUI also its "lit" folders)."""
    folder = LIT_MODELS.find(ctx.models_dirs, name, "model")
    if folder is None:
        roots = ", ".join(str(Path(root) / "lit") for root in ctx.models_dirs)
        raise NodeInputError("model", f"{name!r} was not found in {roots}")
    return folder


@contextmanager
def on_device(ctx, model):
    """Move ``model`` to the context's device for the block; send it back afterwards when asked to."""
    import torch

    target = torch.device(ctx.device)
    if model.device != target:
        ctx.free_memory(sum(p.numel() * p.element_size() for p in model.parameters()))
        model.to(target)
    try:
        yield model
    finally:
        if ctx.offload_after_use and target.type != "cpu":
            model.to("cpu")


class LoadLiTModelNode(Node):
    """Load a LiT model: a tuned text head plus the locked image and frozen text towers it names."""

    node_id = "ImageTuneLoadLiTModel"
    category = CATEGORY
    inputs = (combo("model", (DEFAULT_LIT_MODEL,), listing=LIT_MODELS, open=True,
                    tooltip="A folder in models/lit with config.json and head.safetensors "
                            "(ImageTuneLiTTune saves to output/lit/<name>: move it there to pick it)"),)
    outputs = (Output(T.LIT_MODEL, "lit_model"),)

    def run(self, ctx, model):
        from ..lit.model import load_lit_model

        folder = model_folder(ctx, model)
        try:
            return (load_lit_model(folder, [Path(root) for root in ctx.models_dirs]),)
        except (ValueError, FileNotFoundError) as exc:
            raise NodeInputError("model", f"{folder}: {exc}") from exc

    @classmethod
    def check_inputs(cls, **literals):
        return name_problems(literals, "model")

    @classmethod
    def fingerprint(cls, ctx, model=None, **_):
        try:
            folder = model_folder(ctx, model)
        except NodeInputError:
            return None
        return tuple((p.name, p.stat().st_mtime_ns, p.stat().st_size) for p in sorted(folder.glob("*")) if p.is_file())


class ScoreImageTextNode(Node):
    """Score how well each image matches its prompt: cosine similarity of LiT embeddings (-1..1)."""

    node_id = "ImageTuneLiTScore"
    category = CATEGORY
    inputs = (Input("lit_model", T.LIT_MODEL), Input("images", T.IMAGE),
              Input("prompts", T.STRING, default="a red circle on a blue background", multiline=True,
                    tooltip="One prompt for every image, or one line per image"))
    outputs = (Output(T.FLOAT, "score", "Mean score over the batch"),
               Output(T.STRING, "scores", "JSON list: the score of each image"))
    output_node = True  # shows the scores even when nothing is connected

    def run(self, ctx, lit_model, images, prompts):
        from ..lit.scoring import parse_prompts, score_images

        with on_device(ctx, lit_model):
            try:
                scores = score_images(lit_model, images, parse_prompts(prompts)).cpu()
            except ValueError as exc:
                raise input_error(exc, "prompts") from exc
        text = json.dumps([round(float(s), 5) for s in scores])
        return {"ui": {"text": [text]}, "result": (float(scores.mean()), text)}


class SelectBestImagesNode(Node):
    """Keep the top-k images of a batch that best match a prompt (best first), with their scores."""

    node_id = "ImageTuneLiTBestOfN"
    category = CATEGORY
    inputs = (Input("lit_model", T.LIT_MODEL), Input("images", T.IMAGE),
              Input("prompt", T.STRING, default="a red circle on a blue background", multiline=True,
                    tooltip="the text the images are ranked against"),
              Input("top_k", T.INT, default=1, min=1, max=4096, tooltip="How many images to keep"))
    outputs = (Output(T.IMAGE, "images", "The top_k images, best first"),
               Output(T.STRING, "scores", "JSON list: the kept images' scores"),
               Output(T.INT, "best_index", "Batch index of the best image"))

    def run(self, ctx, lit_model, images, prompt, top_k):
        from ..lit.scoring import best_images

        with on_device(ctx, lit_model):
            try:
                order, scores = best_images(lit_model, images, prompt, top_k)
            except ValueError as exc:
                raise input_error(exc, "prompt") from exc
        kept = images[order.to(images.device)]
        return (kept, json.dumps([round(float(s), 5) for s in scores.cpu()]), int(order[0]))


class ClassifyImageZeroShotNode(Node):
    """Zero-shot classify images among comma-separated labels, each put into a caption template."""

    node_id = "ImageTuneLiTClassify"
    display_name = "LiT Zero-Shot Classify (ImageTune)"  # the id cannot say how it classifies
    category = CATEGORY
    inputs = (Input("lit_model", T.LIT_MODEL), Input("images", T.IMAGE),
              Input("labels", T.STRING, default="red, green, blue", multiline=True,
                    tooltip="Comma-separated labels"),
              Input("template", T.STRING, default="{}",
                    tooltip="Caption with {} where the label goes, e.g. 'a photo of a {}'"))
    outputs = (Output(T.STRING, "label", "The most likely label of each image, one per line"),
               Output(T.STRING, "probabilities", "JSON list per image: {label: probability}"))
    output_node = True  # shows the labels even when nothing is connected

    def run(self, ctx, lit_model, images, labels, template):
        from ..lit.scoring import classify_images, label_prompts, parse_labels

        try:
            names = parse_labels(labels)
            prompts = label_prompts(names, template)
            with on_device(ctx, lit_model):
                probs = classify_images(lit_model, images, prompts).cpu()
        except ValueError as exc:
            raise input_error(exc, "labels") from exc
        best = [names[i] for i in probs.argmax(dim=1).tolist()]
        table = [{name: round(float(p), 5) for name, p in zip(names, row)} for row in probs]
        return {"ui": {"text": ["\n".join(best)]}, "result": ("\n".join(best), json.dumps(table))}

    @classmethod
    def check_inputs(cls, labels=None, template=None, **_):
        from ..lit.scoring import label_prompts, parse_labels

        problems = []
        if isinstance(labels, str):
            problems += check_problem("labels", parse_labels, labels)
        if isinstance(template, str):
            problems += check_problem("template", label_prompts, ["label"], template)
        return problems


class TuneLiTNode(Node):
    """Tune a LiT text head on captioned images from the input folder; saves it under output/lit/<name>."""

    node_id = "ImageTuneLiTTune"
    category = CATEGORY
    inputs = (Input("folder", T.STRING, default="lit-pairs",
                    tooltip="Folder in the input dir: images + captions.tsv/json, <image>.txt, or PNGs with a workflow"),
              Input("name", T.STRING, default="my-lit", tooltip="Saved to <output>/lit/<name>"),
              Input("image_tower", T.STRING, default="efficientnet-lite0-multi",
                    tooltip="efficientnet-lite0-multi, efficientnet-lite0-multi-halves (also where things are), "
                            "efficientnet-lite0, or a transformers vision model folder in a models dir (or hub id)"),
              Input("text_tower", T.STRING, default="minilm",
                    tooltip="minilm, or a transformers text encoder folder in a models dir (or hub id)"),
              Input("steps", T.INT, default=1500, min=1, max=100000, tooltip="optimisation steps of the text head"),
              Input("batch_size", T.INT, default=128, min=2, max=4096,
                    tooltip="image-caption pairs per contrastive step (more negatives per batch)"),
              Input("learning_rate", T.FLOAT, default=0.001, min=1e-6, max=1.0, step=0.0001,
                    tooltip="AdamW learning rate of the text head"),
              Input("held_out", T.FLOAT, default=0.1, min=0.0, max=0.9, step=0.05,
                    tooltip="Share of distinct captions held out for evaluation"),
              Input("seed", T.INT, default=0, min=0, max=T.MAX_SEED,
                    tooltip="seeds the head initialisation and batch order"))
    outputs = (Output(T.LIT_MODEL, "lit_model"), Output(T.STRING, "report", "Held-out evaluation"))
    output_node = True

    def run(self, ctx, folder, name, image_tower, text_tower, steps, batch_size, learning_rate, held_out, seed):
        from ..lit.run import describe, tune_lit
        from ..lit.sources import folder_data
        from ..lit.towers import MINILM, POOLS, image_tower_spec, text_tower_spec
        from ..lit.tune import TuneSettings

        check_tower(ctx, image_tower, "image_tower", tuple(POOLS))
        check_tower(ctx, text_tower, "text_tower", (MINILM,))
        source = resolve_inside(ctx.input_dir, folder, "folder")
        target = resolve_inside(Path(ctx.output_dir) / "lit", name, "name")
        settings = TuneSettings(steps=steps, batch_size=batch_size, lr=learning_rate, seed=seed)
        try:
            data = folder_data(source, held_out, seed)
            model, metrics = tune_lit(data, image_tower_spec(image_tower), text_tower_spec(text_tower), settings,
                                      target, ctx.device, self._reporter(ctx), [Path(r) for r in ctx.models_dirs])
        except (ValueError, FileNotFoundError) as exc:
            raise input_error(exc, "folder") from exc
        return {"ui": {"text": [describe(metrics)]}, "result": (model, describe(metrics))}

    @staticmethod
    def _reporter(ctx):
        """Training steps drive the node's progress bar; feature batches only check for interrupts."""
        def report(phase, done, total, extra):
            if phase == "training":
                ctx.progress(done, total)
            else:
                ctx.check_interrupt()
        return report

    @classmethod
    def check_inputs(cls, **literals):
        return name_problems(literals, "image_tower", "text_tower", "folder", "name")


NODES = (LoadLiTModelNode, ScoreImageTextNode, SelectBestImagesNode, ClassifyImageZeroShotNode, TuneLiTNode)
