"""Understand Prompt: read what a MiniLM conditioning asks for and re-encode it in the generator's words.

The prompt-understanding model (``shapes/understand.py``) reads the token states of each row and
predicts what the prompt describes (things, relation or count, background, what it negates);
``shapes/reading.py`` turns that into a ``scene.Description`` by fixed rules, and
``scene.canonical_text`` writes the caption the shapes generator was trained on ("a red circle to the
left of a blue square on a white background"). That caption is encoded with the text encoder, so
the generator only ever sees its own language. The captions also come out as a STRING, one per row.
Colour names the model never learnt ("cobalt", "ruby") are resolved to the world's colours first, from
the prompts Encode Text records in the conditioning (``shapes/colour_names.py``).
"""
from __future__ import annotations

from ..graph_runtime import Input, Node, NodeInputError, Output, combo
from ..graph_runtime import types as T
from ..graph_runtime.paths import name_problems
from ..ops.model_files import DEFAULT_PROMPT_READER, PROMPT_READERS

# torch, the model and the conditioning ops are imported in run(): declaring the node needs none of them.


def reader_folder(ctx, name: str):
    """The folder of the prompt-understanding model ``name`` under the model roots."""
    folder = PROMPT_READERS.find(ctx.models_dirs, name, "model")
    if folder is None or not folder.is_dir():
        roots = ", ".join(str(root) for root in ctx.models_dirs)
        raise NodeInputError("model", f"expected a prompt-understanding model folder (prompt_reader.safetensors and "
                                      f"config.json) under {roots} or their prompt_readers/, got {name!r}, not there")
    return folder


def load_reader(ctx, name: str):
    """The PromptReader ``name``, loaded once per process (``ops/model_cache``) on the CPU."""
    from ..ops.model_cache import MODELS, files_signature
    from ..shapes.understand import PromptReader

    folder = reader_folder(ctx, name)

    def load():
        try:
            return PromptReader.from_pretrained(folder)
        except ValueError as exc:
            raise NodeInputError("model", f"{folder} is not a prompt-understanding model: {exc}") from exc
    return MODELS.get(("prompt_reader", ctx.node_id), ("prompt_reader", files_signature(folder)), load)


def check_states(model, tokens, entry: int) -> None:
    """NodeInputError on ``conditioning`` unless ``tokens`` [B, T, D] are MiniLM states the model reads."""
    from ..shapes.understand import not_minilm

    config, where = model.config, f" in entry {entry}" if entry else ""
    made_by = "from ImageTuneEncodeText with the 'minilm' text encoder"
    if tokens.shape[-1] != config.width:
        raise NodeInputError("conditioning", f"expected MiniLM token states of width {config.width} ({made_by}), got "
                                             f"width {tokens.shape[-1]}{where}")
    if tokens.shape[1] == 0 or tokens.shape[1] % config.window:
        raise NodeInputError("conditioning", f"expected a token length that is a multiple of {config.window} (MiniLM's "
                                             f"{config.window}-token windows, {made_by}), got {tokens.shape[1]}{where}")
    rows = not_minilm(model, tokens)
    if rows:
        raise NodeInputError("conditioning", f"expected MiniLM token states ({made_by}); row(s) {rows[:8]}{where} "
                                             "do not start with MiniLM's start token (another encoder, or changed "
                                             "states?)")


def with_colour_names_resolved(tokens, prompts, text_encoder, ctx):
    """The token states the reader reads: those of the prompts with their colour names resolved
    (``shapes/colour_names.py``) when the conditioning carries the prompts it was encoded from and a name
    needed resolving, else ``tokens`` as given. The prompts are trusted only while ``tokens`` are still
    their encoding by ``text_encoder`` (a blend or another encoder after Encode Text changes them)."""
    from ..ops.text_encoders import encode
    from ..shapes.colour_names import as_reader_reads

    if not (isinstance(prompts, list) and len(prompts) == tokens.shape[0] and all(isinstance(p, str) for p in prompts)):
        return tokens
    resolved = as_reader_reads(prompts)
    if resolved == prompts:
        return tokens
    encoded, _ = encode(text_encoder, prompts, ctx)
    if encoded.shape != tokens.shape or not bool((encoded.to(tokens) == tokens).all()):
        return tokens
    return encode(text_encoder, resolved, ctx)[0].to(tokens)


class UnderstandPromptNode(Node):
    """Read what each prompt asks for and re-encode it as the shapes generator's own caption."""

    node_id = "ImageTuneUnderstandPrompt"
    category = "ImageTune/conditioning"
    inputs = (
        Input("conditioning", T.CONDITIONING, tooltip="MiniLM token states of the prompt(s), from Encode Text"),
        Input("text_encoder", T.TEXT_ENCODER, tooltip="encodes the understood caption (the one the generator reads)"),
        combo("model", (DEFAULT_PROMPT_READER,), listing=PROMPT_READERS, open=True,
              tooltip="a prompt-understanding model folder (prompt_reader.safetensors, config.json) in "
                      "models/prompt_readers, or a path under a models folder"),
        Input("regions", T.BOOLEAN, default=True, optional=True,
              tooltip="regional conditioning: each object's own words are seen only from its part of the picture "
                      "(what imagetune-shapes is trained on); off: the understood caption alone"),
    )
    outputs = (Output(T.CONDITIONING, "conditioning", "the understood captions, encoded; one row per input row"),
               Output(T.STRING, "caption", "the understood caption of each row, one per line"))

    @classmethod
    def check_inputs(cls, **literals):
        return name_problems(literals, "model")

    @classmethod
    def fingerprint(cls, ctx, model=DEFAULT_PROMPT_READER, **_):
        from ..ops.model_cache import files_signature

        try:
            return files_signature(reader_folder(ctx, model))
        except Exception as exc:  # reported when the node runs; here it only has to be stable
            return repr(exc)

    def run(self, ctx, conditioning, text_encoder, model, regions=True):
        from ..ops import conditioning as C
        from ..ops.text_encoders import encode
        from ..shapes.regions import SHIPPED_CAPTION, regional_conditioning, regional_texts
        from ..shapes.scene import canonical_text
        from ..shapes.understand import read

        C.first(conditioning, "conditioning")
        reader = load_reader(ctx, model)
        out, captions = [], []
        for entry, (tokens, extras) in enumerate(conditioning):
            check_states(reader, tokens, entry)
            tokens = with_colour_names_resolved(tokens, extras.get(C.PROMPTS), text_encoder, ctx)
            asked = [reading.description() for reading in read(reader, tokens)]
            rows = [canonical_text(d) for d in asked]
            extras = {k: v for k, v in extras.items() if k != C.REGIONS}
            if regions and any(len(d.things) > 1 for d in asked):  # one thing each: the caption alone is the same
                states, pooled = encode(text_encoder, regional_texts(asked), ctx)
                new_tokens, seen = regional_conditioning(asked, states, SHIPPED_CAPTION)
                out.append([new_tokens, {**extras, C.POOLED: pooled[:len(asked)], C.REGIONS: seen, C.PROMPTS: rows}])
            else:
                new_tokens, pooled = encode(text_encoder, rows, ctx)
                out.append([new_tokens, {**extras, C.POOLED: pooled, C.PROMPTS: rows}])
            captions += rows
        text = "\n".join(captions)
        return {"ui": {"text": [text]}, "result": (out, text)}


NODES = (UnderstandPromptNode,)
