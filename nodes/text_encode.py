"""Text encode node: prompt(s) + text encoder -> CONDITIONING in ComfyUI's shape.

Long prompts are split into 77-token chunks whose states are concatenated along the token axis,
as ComfyUI does for CLIP (see ``nodes/text_encoding.py``). One prompt per node by default; with
``one_prompt_per_line`` each non-empty line is its own prompt and the batch has one row per line.
"""
from __future__ import annotations

from ..graph_runtime import Input, Node, Output
from ..graph_runtime import types as T


def split_prompts(text: str, one_per_line: bool) -> list[str]:
    """The prompts of a text box: the whole text, or each non-empty line (at least one, maybe '')."""
    if not one_per_line:
        return [text]
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines or [""]


class EncodeTextNode(Node):
    """Encode a prompt into token embeddings [B,T,D] and a pooled vector (empty prompt allowed)."""

    node_id = "ImageTuneEncodeText"
    category = "ImageTune/conditioning"
    inputs = (
        Input("text_encoder", T.TEXT_ENCODER),
        Input("text", T.STRING, default="", multiline=True,
              tooltip="the prompt; longer than 75 tokens is encoded in 77-token chunks, not cut"),
        Input("one_prompt_per_line", T.BOOLEAN, default=False,
              tooltip="treat each non-empty line as its own prompt (a batch of conditionings)"),
    )
    outputs = (Output(T.CONDITIONING, "conditioning", "token states [B,T,D] and pooled_output [B,D']"),)

    def run(self, ctx, text_encoder, text, one_prompt_per_line):
        from ..ops import conditioning as C
        from ..ops.text_encoders import encode

        prompts = split_prompts(text, one_prompt_per_line)
        tokens, pooled = encode(text_encoder, prompts, ctx)
        return (C.make(tokens, pooled, prompts),)


NODES = (EncodeTextNode,)
