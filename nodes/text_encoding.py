"""Turning prompts into token embeddings, chunked the way ComfyUI chunks CLIP prompts.

A prompt is tokenized without its special tokens, split into chunks of ``window - 2`` tokens,
and each chunk is wrapped in the tokenizer's start/end tokens and padded to ``window`` (77, as
for CLIP). The encoder's last hidden states of all chunks are concatenated along the token
axis: [B, 77 * chunks, D]. The pooled vector is the model's projected text embedding when it
has one (CLIP with projection), else the attention-masked mean of the first chunk's states
(what sentence-transformers does for MiniLM).
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from ..graph_runtime.errors import NodeInputError
from ..ops.limits import MAX_PROMPT_CHUNKS

if TYPE_CHECKING:
    import torch

WINDOW = 77


def tokenize_chunks(tokenizer, prompt: str, window: int = WINDOW) -> tuple[list[list[int]], list[list[int]]]:
    """Token ids and attention masks of ``prompt``, one padded list of ``window`` per chunk."""
    body = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    start, end = _special_ids(tokenizer)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else (end if end is not None else 0)
    inner = window - (start is not None) - (end is not None)
    pieces = [body[i:i + inner] for i in range(0, len(body), inner)] or [[]]
    ids, masks = [], []
    for piece in pieces:
        chunk = ([start] if start is not None else []) + piece + ([end] if end is not None else [])
        masks.append([1] * len(chunk) + [0] * (window - len(chunk)))
        ids.append(chunk + [pad] * (window - len(chunk)))
    return ids, masks


def _special_ids(tokenizer) -> tuple[int | None, int | None]:
    """Start and end token ids: CLS/SEP for BERT, BOS/EOS for CLIP and GPT-2, none for T5's start."""
    probe = tokenizer("", add_special_tokens=True)["input_ids"]
    start = probe[0] if len(probe) >= 2 else None
    end = probe[-1] if len(probe) >= 1 else None
    return start, end


def encode_prompts(model, tokenizer, prompts: list[str], window: int = WINDOW,
                   device=None) -> tuple[torch.Tensor, torch.Tensor]:
    """Encode a batch of prompts into ([B, T, D] token states, [B, D'] pooled vectors).

    Prompts with fewer chunks than the longest one are padded with chunks of the empty
    prompt, so the batch shares one token length.
    """
    import torch  # here, not at the top: everything in nodes/ imports without torch

    with torch.no_grad():
        return _encode_batch(model, tokenizer, prompts, window, device)


def _encode_batch(model, tokenizer, prompts: list[str], window: int, device) -> tuple[torch.Tensor, torch.Tensor]:
    """encode_prompts' work, under no_grad."""
    import torch

    device = device or next(model.parameters()).device
    tokenized = [tokenize_chunks(tokenizer, p, window) for p in prompts]
    most = max(len(ids) for ids, _ in tokenized)
    if len(prompts) * most > MAX_PROMPT_CHUNKS:  # every prompt is padded to the longest one's chunks
        raise NodeInputError("text", f"{len(prompts)} prompt(s) of up to {most} chunks of {window} tokens would be "
                                     f"{len(prompts) * most:,} chunks; expected at most {MAX_PROMPT_CHUNKS:,}")
    empty_ids, empty_mask = tokenize_chunks(tokenizer, "", window)
    ids = [chunks + empty_ids * (most - len(chunks)) for chunks, _ in tokenized]
    masks = [m + empty_mask * (most - len(m)) for _, m in tokenized]
    flat_ids = torch.tensor([c for row in ids for c in row], device=device)
    flat_mask = torch.tensor([c for row in masks for c in row], device=device)
    out = _run_encoder(model, flat_ids, flat_mask)
    states = out.last_hidden_state
    batch = len(prompts)
    tokens = states.reshape(batch, most * window, states.shape[-1])
    pooled = _pooled(out, states, flat_mask).reshape(batch, most, -1)[:, 0]
    return tokens.float(), pooled.float()


def _run_encoder(model, ids, mask):
    if getattr(model.config, "is_encoder_decoder", False) and hasattr(model, "get_encoder"):
        return model.get_encoder()(input_ids=ids, attention_mask=mask)
    return model(input_ids=ids, attention_mask=mask)


def _pooled(out, states: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    embeds = getattr(out, "text_embeds", None)
    if embeds is not None:
        return embeds
    weights = mask.unsqueeze(-1).to(states.dtype)
    return (states * weights).sum(1) / weights.sum(1).clamp(min=1.0)
