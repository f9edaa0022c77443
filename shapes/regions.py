"""Regional conditioning of the two-object world: each thing's words seen only from its part of the picture.

MiniLM's token states are contextual: every token of "a red circle to the left of a blue square"
carries both colours, so masking tokens of one caption does not bind a colour to a place
(measured: GenEval-style 0.42 either way). Instead the context holds the whole caption (77 tokens,
seen everywhere: layout, background) and then one short block per thing, the thing's own
one-object caption ("a red circle on a white background"), seen only from the thing's territory:
the band of the picture nearer to it than to its neighbours, along the axis they are arranged on.

The context is 154 tokens (two 77-token windows), so a plain 77-token negative prompt is repeated
to match (ComfyUI's rule) and its attention is unchanged: duplicated keys get the same weights.
"""
from __future__ import annotations

import json
from pathlib import Path

import torch

from .scene import Description, canonical_text, layout

WINDOW = 77
THING_TOKENS = 25  # a thing block: "[CLS] a yellow triangle on a purple background [SEP]" is 9 tokens
MAX_THINGS = 3
TOKENS = 2 * WINDOW  # the whole caption, three thing blocks, two tokens never seen
GRID = 16  # the map's resolution (the shipped generator's latent grid; any other is pooled to fit)
CAPTIONS_SEEN = ("everywhere", "outside things")  # where the whole caption's window may be attended from
SHIPPED_CAPTION = "everywhere"  # how models/imagetune-shapes was trained (its regions.json); the node's maps
MARKER = "regions.json"  # in a pipeline folder: its UNet was trained on regional conditioning


def mark_regional(folder: Path, caption: str = "everywhere") -> None:
    """Record in a pipeline folder that its UNet reads the regional context, and where it sees the caption."""
    (Path(folder) / MARKER).write_text(json.dumps({"tokens": TOKENS, "window": WINDOW, "thing_tokens": THING_TOKENS,
                                                   "max_things": MAX_THINGS, "grid": GRID, "caption": caption},
                                                  indent=1) + "\n")


def trained_caption(folder: Path) -> str | None:
    """Where the pipeline folder's UNet saw the whole caption in regional training (``token_map``'s
    ``caption``), or None when it was not trained on the regional context."""
    marker = Path(folder) / MARKER
    return json.loads(marker.read_text()).get("caption", "everywhere") if marker.is_file() else None


def thing_captions(description: Description) -> list[str]:
    """Each thing's own one-object caption, with the description's background (none for a single thing)."""
    if len(description.things) == 1:
        return []
    return [canonical_text(Description((thing,), None, description.background)) for thing in description.things]


def territories(places: list[tuple[float, float, float]], grid: int = GRID) -> torch.Tensor:
    """[n, grid, grid] masks: each thing's band of the picture, split halfway between neighbours.

    ``places`` are ``scene.layout``'s (x, y, half size) fractions; the axis is the one the centres
    spread along most (a row or a column).
    """
    xs, ys = [p[0] for p in places], [p[1] for p in places]
    vertical = max(ys) - min(ys) > max(xs) - min(xs)
    along = ys if vertical else xs
    order = sorted(range(len(places)), key=along.__getitem__)
    masks = torch.zeros(len(places), grid, grid)
    for rank, i in enumerate(order):
        lo = 0.0 if rank == 0 else (along[order[rank - 1]] + along[i]) / 2
        hi = 1.0 if rank == len(order) - 1 else (along[i] + along[order[rank + 1]]) / 2
        a, b = round(lo * grid), round(hi * grid)
        if vertical:
            masks[i, a:b] = 1
        else:
            masks[i, :, a:b] = 1
    return masks


def token_map(masks: torch.Tensor, grid: int = GRID, caption: str = "everywhere") -> torch.Tensor:
    """[TOKENS, grid, grid]: the caption's window seen ``caption`` ("everywhere", or "outside things": only
    where no thing's mask is, so a thing's territory reads its own words alone), thing block k from
    ``masks[k]``, the rest nowhere."""
    if caption not in CAPTIONS_SEEN:
        raise ValueError(f"caption: expected one of {CAPTIONS_SEEN}, got {caption!r}")
    seen = torch.zeros(TOKENS, grid, grid)
    seen[:WINDOW] = 1 if caption == "everywhere" or not len(masks) else 1 - masks.amax(0)
    for k, mask in enumerate(masks[:MAX_THINGS]):
        start = WINDOW + k * THING_TOKENS
        seen[start:start + THING_TOKENS] = mask
    return seen


def context(caption: torch.Tensor, things: list[torch.Tensor]) -> torch.Tensor:
    """[TOKENS, D] context: the caption's 77 states, then the first THING_TOKENS states of each thing (zeros after)."""
    out = caption.new_zeros(TOKENS, caption.shape[-1])
    out[:WINDOW] = caption[:WINDOW]
    for k, states in enumerate(things[:MAX_THINGS]):
        start = WINDOW + k * THING_TOKENS
        out[start:start + THING_TOKENS] = states[:THING_TOKENS]
    return out


def canonical_map(description: Description, grid: int = GRID, caption: str = "everywhere") -> torch.Tensor:
    """The token map for generating ``description``: its things' territories in the canonical layout."""
    if len(description.things) == 1:
        return token_map(torch.zeros(0, grid, grid), grid, caption)
    return token_map(territories(layout(description, None), grid), grid, caption)


def regional_texts(descriptions: list[Description]) -> list[str]:
    """Every caption to encode for ``descriptions``: their canonical captions, then each one's thing captions."""
    return [canonical_text(d) for d in descriptions] + [text for d in descriptions for text in thing_captions(d)]


def regional_conditioning(descriptions: list[Description], states: torch.Tensor,
                          caption: str = "everywhere") -> tuple[torch.Tensor, torch.Tensor]:
    """(context [B, TOKENS, D], token map [B, TOKENS, GRID, GRID]) for generating ``descriptions``, from the
    ``states`` [N, >= 77, D] of ``regional_texts(descriptions)`` (one text encoder call for all of them)."""
    contexts, used = [], len(descriptions)
    for i, d in enumerate(descriptions):
        count = len(thing_captions(d))
        contexts.append(context(states[i], list(states[used:used + count])))
        used += count
    return torch.stack(contexts), torch.stack([canonical_map(d, caption=caption) for d in descriptions])
