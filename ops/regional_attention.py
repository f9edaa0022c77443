"""Regional prompting in cross-attention: each token of the context is seen only from its region.

A CONDITIONING may carry ``token_regions`` [B, T, h, w] (1 where a pixel may attend to the token,
0 where it may not) beside its token states [B, T, D]. ``RegionalAttention`` is a diffusers
attention processor that turns the map into an attention bias at every cross-attention layer's
grid (a cell sees a token if any part of its area does), so "a red circle" can be attended to from
the left half of the picture only and "a blue square" from the right. Self-attention, and calls
without a map, run diffusers' own processor unchanged. Every pixel must see at least one token
(``check_regions``): a row with no token would be all -inf.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from diffusers.models.attention_processor import AttnProcessor, AttnProcessor2_0


class RegionalAttention(AttnProcessor2_0):
    """diffusers' scaled-dot-product processor, with a per-pixel token mask in cross-attention."""

    def __call__(self, attn, hidden_states, encoder_hidden_states=None, attention_mask=None, temb=None,
                 token_regions: torch.Tensor | None = None, **kwargs):
        if token_regions is None or encoder_hidden_states is None or hidden_states.ndim != 3:
            return super().__call__(attn, hidden_states, encoder_hidden_states, attention_mask, temb, **kwargs)
        batch, queries, _ = hidden_states.shape
        bias = region_bias(token_regions, queries, batch, hidden_states.dtype)
        if attn.spatial_norm is not None or attn.group_norm is not None or attn.norm_q is not None:
            raise ValueError("token_regions: regional attention supports UNet cross-attention layers "
                             "(no spatial, group or query norm)")
        residual, heads = hidden_states, attn.heads
        query = attn.to_q(hidden_states)
        if attn.norm_cross:
            encoder_hidden_states = attn.norm_encoder_hidden_states(encoder_hidden_states)
        key, value = attn.to_k(encoder_hidden_states), attn.to_v(encoder_hidden_states)
        width = key.shape[-1] // heads
        query, key, value = (t.view(batch, -1, heads, width).transpose(1, 2) for t in (query, key, value))
        out = F.scaled_dot_product_attention(query, key, value, attn_mask=bias)
        out = out.transpose(1, 2).reshape(batch, -1, heads * width).to(query.dtype)
        out = attn.to_out[1](attn.to_out[0](out))
        if attn.residual_connection:
            out = out + residual
        return out / attn.rescale_output_factor


def region_bias(token_regions: torch.Tensor, queries: int, batch: int, dtype: torch.dtype) -> torch.Tensor:
    """Additive attention bias [batch, 1, queries, T]: 0 where the map lets a query cell see a token, -inf elsewhere.

    The map (any resolution) is pooled to the layer's grid: the factorisation of ``queries`` closest
    to the map's aspect ratio. A map for half the batch is the conditional half of classifier-free
    guidance: the unconditional half (a plain prompt) sees every token.
    """
    h, w = grid_of(queries, *token_regions.shape[-2:])
    seen = F.adaptive_max_pool2d(token_regions.float(), (h, w)).flatten(2).transpose(1, 2) > 0  # [B, Q, T]
    if seen.shape[0] * 2 == batch:
        seen = torch.cat([torch.ones_like(seen), seen])
    elif seen.shape[0] != batch:
        raise ValueError(f"token_regions for {seen.shape[0]} prompts, attention over {batch}")
    return torch.zeros(seen.shape, dtype=dtype, device=seen.device).masked_fill_(~seen, float("-inf"))[:, None]


def grid_of(cells: int, height: int, width: int) -> tuple[int, int]:
    """(h, w) with h * w = ``cells`` and h / w nearest ``height / width``."""
    pairs = [(h, cells // h) for h in range(1, cells + 1) if cells % h == 0]
    return min(pairs, key=lambda hw: abs(math.log(hw[0] / hw[1]) - math.log(height / width)))


def check_regions(token_regions: torch.Tensor, tokens: int) -> None:
    """Raise ValueError unless ``token_regions`` is [B, tokens, h, w] with every pixel seeing some token."""
    if token_regions.dim() != 4 or token_regions.shape[1] != tokens:
        raise ValueError(f"expected token_regions [B, {tokens}, h, w], got {list(token_regions.shape)}")
    if not bool((token_regions > 0).any(1).all()):
        raise ValueError("every pixel must see at least one token (a pixel with none would attend to nothing)")


def use_regions(unet) -> None:
    """Give every attention layer of ``unet`` the regional processor (idempotent; the same maths without a map).

    Only diffusers' default processors are replaced: a UNet with others (adapters, custom attention)
    raises ValueError rather than silently losing them.
    """
    processors = getattr(unet, "attn_processors", {})
    if all(isinstance(p, RegionalAttention) for p in processors.values()):
        return
    others = sorted({type(p).__name__ for p in processors.values() if type(p) not in (AttnProcessor2_0, AttnProcessor)})
    if others:
        raise ValueError(f"regional conditioning replaces the UNet's default attention processors; it has {others}")
    unet.set_attn_processor(RegionalAttention())


def fit_tokens(token_regions: torch.Tensor, tokens: int) -> torch.Tensor:
    """The map repeated along tokens to ``tokens`` (a context repeated to match the negative's length, ComfyUI's
    rule: each copy of a token is seen from the same places)."""
    have = token_regions.shape[1]
    if tokens % have:
        raise ValueError(f"token_regions cover {have} tokens, the context has {tokens}")
    return token_regions.repeat(1, tokens // have, 1, 1)
