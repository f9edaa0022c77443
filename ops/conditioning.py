"""Arithmetic on CONDITIONING: blend, slerp, concat, scale, noise, projection, and text -> GAN z.

A CONDITIONING is ComfyUI's list of ``[tokens, extras]`` entries: ``tokens`` float [B, T, D] and
``extras["pooled_output"]`` float [B, D'] or None. Every function returns new lists and dicts
and new tensors (inputs are shared by the runtime's cache) on the inputs' device and dtype.
"""
from __future__ import annotations

import math

import torch

from ..graph_runtime.errors import NodeInputError

REGIONS = "token_regions"  # [B, T, h, w]: where each token may be attended from (ops/regional_attention.py)
POOLED = "pooled_output"
# the text each row was encoded from (list[str]), as Encode Text wrote it; later ops may change the tokens and keep
# it, so a reader checks it against the tokens before it trusts it (nodes/understand_prompt.py)
PROMPTS = "imagetune_prompts"


def make(tokens: torch.Tensor, pooled: torch.Tensor | None, prompts: list[str] | None = None) -> list:
    """A one-entry CONDITIONING (with the prompts its rows encode, when given)."""
    return [[tokens, {POOLED: pooled} if prompts is None else {POOLED: pooled, PROMPTS: list(prompts)}]]


def first(cond, field: str) -> tuple[torch.Tensor, torch.Tensor | None, dict]:
    """(tokens, pooled, extras) of the first entry; NodeInputError if ``cond`` is not CONDITIONING."""
    ok = (isinstance(cond, list) and cond and isinstance(cond[0], (list, tuple)) and len(cond[0]) == 2
          and torch.is_tensor(cond[0][0]) and cond[0][0].dim() == 3 and isinstance(cond[0][1], dict))
    if not ok:
        raise NodeInputError(field, f"expected CONDITIONING ([[tokens [B,T,D], {{...}}]]), got {_describe(cond)}")
    tokens, extras = cond[0]
    return tokens, extras.get(POOLED), extras


def _describe(value) -> str:
    if torch.is_tensor(value):
        return f"a tensor of shape {list(value.shape)}"
    return type(value).__name__


def each(cond, fn, field: str) -> list:
    """Apply ``fn(tokens, pooled) -> (tokens, pooled)`` to every entry, copying the extras."""
    first(cond, field)
    out = []
    for tokens, extras in cond:
        new_tokens, new_pooled = fn(tokens, extras.get(POOLED))
        out.append([new_tokens, {**extras, POOLED: new_pooled}])
    return out


def check_widths(a: torch.Tensor, b: torch.Tensor, field_b: str, what: str = "token") -> None:
    """NodeInputError naming ``field_b`` when the last dimensions of ``a`` and ``b`` differ."""
    if a.shape[-1] != b.shape[-1]:
        raise NodeInputError(field_b, f"expected {what} width {a.shape[-1]} (like the first input), got "
                                      f"{b.shape[-1]}; put an ImageTuneConditioningProject node before it")


def match_batch(a: torch.Tensor, b: torch.Tensor, field_b: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Broadcast a batch of 1 to the other's batch; NodeInputError for other mismatches."""
    if a.shape[0] == b.shape[0]:
        return a, b
    if b.shape[0] == 1:
        return a, b.expand(a.shape[0], *b.shape[1:])
    if a.shape[0] == 1:
        return a.expand(b.shape[0], *a.shape[1:]), b
    raise NodeInputError(field_b, f"expected batch {a.shape[0]} or 1, got {b.shape[0]}")


def match_tokens(a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Repeat each along tokens to their least common multiple, as ComfyUI does for CFG batches."""
    if a.shape[1] == b.shape[1]:
        return a, b
    n = math.lcm(a.shape[1], b.shape[1])
    return a.repeat(1, n // a.shape[1], 1), b.repeat(1, n // b.shape[1], 1)


def lerp(a: torch.Tensor, b: torch.Tensor, t: float) -> torch.Tensor:
    """(1 - t) * a + t * b."""
    return torch.lerp(a, b.to(a.dtype), t)


def slerp(a: torch.Tensor, b: torch.Tensor, t: float, eps: float = 1e-7) -> torch.Tensor:
    """Spherical interpolation of the vectors along the last axis; magnitudes are interpolated linearly.

    Nearly parallel vectors fall back to linear interpolation (the angle formula is unstable there).
    """
    b = b.to(a.dtype)
    na, nb = a.norm(dim=-1, keepdim=True), b.norm(dim=-1, keepdim=True)
    ua, ub = a / na.clamp_min(eps), b / nb.clamp_min(eps)
    cos = (ua * ub).sum(-1, keepdim=True).clamp(-1.0, 1.0)
    omega = torch.arccos(cos)
    sin = torch.sin(omega)
    safe = sin.abs() > 1e-4
    wa = torch.where(safe, torch.sin((1 - t) * omega) / torch.where(safe, sin, 1.0), 1 - t)
    wb = torch.where(safe, torch.sin(t * omega) / torch.where(safe, sin, 1.0), t)
    direction = wa * ua + wb * ub
    direction = direction / direction.norm(dim=-1, keepdim=True).clamp_min(eps)
    return direction * torch.lerp(na, nb, t)


def blend(a, b, weight: float, method: str) -> list:
    """Mix two CONDITIONINGs entry by entry: weight 0 gives ``a``, 1 gives ``b``."""
    ta, pa, _ = first(a, "conditioning_a")
    tb, pb, _ = first(b, "conditioning_b")
    check_widths(ta, tb, "conditioning_b")
    if pa is not None and pb is not None:
        check_widths(pa, pb, "conditioning_b", "pooled")
    mix = slerp if method == "slerp" else lerp

    def one(tokens, pooled):
        x, y = match_batch(tokens, tb.to(tokens.device), "conditioning_b")
        x, y = match_tokens(x, y)
        new_pooled = pooled
        if pooled is not None and pb is not None:
            p, q = match_batch(pooled, pb.to(pooled.device), "conditioning_b")
            new_pooled = mix(p, q, weight)
        return mix(x, y, weight), new_pooled

    return each(a, one, "conditioning_a")


def concat(a, b) -> list:
    """``b``'s token states appended after ``a``'s (pooled from ``a``), like ComfyUI's ConditioningConcat."""
    tb, _, _ = first(b, "conditioning_b")
    first(a, "conditioning_a")
    check_widths(a[0][0], tb, "conditioning_b")

    def one(tokens, pooled):
        x, y = match_batch(tokens, tb.to(tokens.device, tokens.dtype), "conditioning_b")
        return torch.cat([x, y], dim=1), pooled

    return each(a, one, "conditioning_a")


def scale(cond, factor: float, normalize: bool, target: str) -> list:
    """Multiply by ``factor``; with ``normalize`` first rescale each vector to the mean norm of its tensor.

    ``target`` is 'tokens', 'pooled' or 'both'.
    """
    def op(x):
        if x is None:
            return None
        if normalize:
            norms = x.norm(dim=-1, keepdim=True)
            x = x / norms.clamp_min(1e-12) * norms.mean()
        return x * factor

    def one(tokens, pooled):
        return (op(tokens) if target in ("tokens", "both") else tokens,
                op(pooled) if target in ("pooled", "both") else pooled)

    return each(cond, one, "conditioning")


def seeded_normal(shape, seed: int, like: torch.Tensor) -> torch.Tensor:
    """Standard normal noise of ``shape`` from ``seed``, drawn on the CPU so every device gets the same."""
    gen = torch.Generator(device="cpu").manual_seed(int(seed) % (1 << 64))
    return torch.randn(tuple(shape), generator=gen, dtype=torch.float32).to(like.device, like.dtype)


def add_noise(cond, strength: float, seed: int) -> list:
    """Add Gaussian noise scaled by ``strength`` times each tensor's standard deviation."""
    counter = iter(range(1 << 30))

    def noisy(x):
        if x is None:
            return None
        noise = seeded_normal(x.shape, seed + next(counter), x)
        return x + strength * x.float().std().to(x.dtype) * noise

    return each(cond, lambda tokens, pooled: (noisy(tokens), noisy(pooled)), "conditioning")


def project(cond, weights: dict[str, torch.Tensor], source: str) -> list:
    """Map token states (and pooled) through ``x @ weight.T + bias`` from a projection file.

    ``weights`` holds ``weight`` [D', D] and optionally ``bias`` [D'], ``pooled_weight`` [P', P]
    and ``pooled_bias``; without ``pooled_weight`` the pooled vector uses the token map when its
    width fits, else it is left unchanged.
    """
    weight, bias = weights["weight"], weights.get("bias")
    pooled_weight = weights.get("pooled_weight", weight)
    pooled_bias = weights.get("pooled_bias", bias if "pooled_weight" not in weights else None)

    def linear(x, w, b):
        b = None if b is None else b.to(x.device, x.dtype)
        return torch.nn.functional.linear(x, w.to(x.device, x.dtype), b)

    def one(tokens, pooled):
        if tokens.shape[-1] != weight.shape[1]:
            shape = list(weight.shape)
            raise NodeInputError("conditioning", f"expected token width {weight.shape[1]} for the projection "
                                                 f"{source} ({shape}), got {tokens.shape[-1]}")
        new_pooled = pooled
        if pooled is not None and pooled.shape[-1] == pooled_weight.shape[1]:
            new_pooled = linear(pooled, pooled_weight, pooled_bias)
        return linear(tokens, weight, bias), new_pooled

    return each(cond, one, "conditioning")


def to_gan_latent(cond, z_dim: int, seed: int, variation: float) -> torch.Tensor:
    """A GAN latent z [B, z_dim] from the text: a seeded random projection of the pooled vector.

    The pooled vector (the token mean when there is none) is standardised and multiplied by a
    Gaussian matrix drawn from ``seed``, giving z ~ N(0, I) whose directions follow the text
    (similar prompts give nearby z). ``variation`` in 0..1 mixes in seeded noise on the sphere
    of the same radius: z = sqrt(1 - v) z_text + sqrt(v) noise.
    """
    tokens, pooled, _ = first(cond, "conditioning")
    vector = (pooled if pooled is not None else tokens.mean(dim=1)).float()
    vector = (vector - vector.mean(-1, keepdim=True)) / vector.std(-1, keepdim=True).clamp_min(1e-6)
    matrix = seeded_normal((vector.shape[-1], z_dim), seed, vector) / math.sqrt(vector.shape[-1])
    z = vector @ matrix
    if variation > 0:
        noise = seeded_normal(z.shape, seed + 1, z)
        z = math.sqrt(1 - variation) * z + math.sqrt(variation) * noise
    return z
