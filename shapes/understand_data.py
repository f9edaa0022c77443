"""Training captions for the prompt-understanding model: a seeded mix of the training language, each
with the ``Reading`` it means, and their MiniLM token states cached once.

``training_examples(n, seed)`` draws ``n`` (caption, reading) pairs in the shares of ``MIX``, in
``language.WIDE`` (the training language with more colour and shape words), only
from training combinations (no single-object ``dataset.HELD_OUT`` combination with its background,
no ``scene.is_held_out`` pair or count), so a score on held-out combinations measures composition.
``caption_states`` encodes them with the text encoder exactly as the Encode Text node does
(``nodes/text_encoding.encode_prompts``: the same token states, the first ``tokens`` positions of
the 77-token window kept as float16) and caches them in the work folder.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from . import dataset as ds
from . import language as L
from . import scene
from .reading import Mention, Reading

#: shares of the caption kinds (they sum to 1)
MIX = {
    "single, rich": 0.26,       # language.describe_spec: synonyms, orders, fillers, negation of background/shape
    "single, not shape": 0.04,  # describe_spec's shape negations alone (2.4 % of captions in "single, rich" only)
    "single, optional": 0.08,   # one thing, its colour or background left out, or the background negated
    "pair": 0.14,
    "position": 0.20,
    "count": 0.12,
    "geneval": 0.10,            # GenEval's templates word for word
    "canonical": 0.06,          # the generator's own captions (scene.canonical_text), read back unchanged
}
P_NO_COLOUR = 0.15        # a thing of a scene whose colour is left out
P_BACKGROUND = {"named": 0.55, "none": 0.3, "negated": 0.15}


def training_examples(n: int, seed: int) -> list[tuple[str, Reading]]:
    """``n`` seeded (caption, reading) pairs of the training language (see MIX)."""
    rng = np.random.default_rng([seed, 12])
    kinds, shares = list(MIX), np.array(list(MIX.values()))
    return [example(kinds[int(rng.choice(len(kinds), p=shares / shares.sum()))], rng) for _ in range(n)]


def example(kind: str, rng: np.random.Generator) -> tuple[str, Reading]:
    """One (caption, reading) of caption kind ``kind`` (a key of MIX)."""
    if kind in ("single, rich", "single, not shape"):
        specs = ds.training_specs()
        while True:
            text, said = L.describe_spec(specs[int(rng.integers(len(specs)))], rng, L.WIDE)
            if kind == "single, rich" or said.not_shape is not None:
                return text, said
    if kind == "geneval":
        task = L.pick(rng, tuple(L.GENEVAL))
        while True:
            text, said = L.geneval_prompt(task, training_reading(rng, geneval_kind(task), L.GENEVAL_FITS[task]))
            if said.second is None or said.first != said.second:  # not "a circle and a circle"
                return text, said
    if kind == "canonical":
        while True:  # a negated background resolved by the rules may make a held-out combination
            said = Reading.of(training_reading(rng, L.pick(rng, ("single", "pair", "position", "count"))).description())
            if not is_held_out(said):
                return scene.canonical_text(said.description()), said
    reading = training_reading(rng, "single" if kind == "single, optional" else kind)
    return L.describe_reading(reading, rng, L.WIDE), reading


def geneval_kind(task: str) -> str:
    """The scene kind a GenEval template says."""
    fits = L.GENEVAL_FITS[task]
    return "position" if fits in scene.RELATIONS else fits


def training_reading(rng: np.random.Generator, kind: str, relation: str | None = None) -> Reading:
    """A random reading of ``kind`` about a training combination: colours sometimes left out, the
    background named, left out or negated (P_NO_COLOUR, P_BACKGROUND). A position takes ``relation``
    when it is one of scene.RELATIONS, else the first drawn scene's (kept when a held-out one is redrawn)."""
    while True:
        if kind == "single":
            spec = ds.all_specs()[int(rng.integers(len(ds.all_specs())))]
            things, relation, background = (scene.Thing(spec.shape, spec.colour),), None, spec.background
        else:
            drawn = scene.random_scene(rng, kind)
            things, background = drawn.things, drawn.background
            relation = (relation if relation in scene.RELATIONS else drawn.relation) if kind == "position" else None
        mentions = [Mention(t.shape, None if rng.random() < P_NO_COLOUR else t.colour) for t in things]
        if kind == "count":
            mentions = mentions[:1] * len(things)  # one colour said (or not) for all of them
        if kind in ("pair", "position") and mentions[0] == mentions[1]:
            continue  # "a circle and a circle" is a count
        said = {m.colour for m in mentions} - {None}
        how = list(P_BACKGROUND)[int(rng.choice(len(P_BACKGROUND), p=list(P_BACKGROUND.values())))]
        negated = L.other_than(rng, tuple(ds.COLOURS), background, *said) if how == "negated" else None
        background = background if how == "named" else None
        reading = Reading(mentions[0], mentions[1] if kind in ("pair", "position") else None, relation,
                          len(things) if kind == "count" else 1, background, negated)
        if not is_held_out(reading):
            return reading


def is_held_out(reading: Reading) -> bool:
    """Whether ``reading`` names a held-out combination in full (a single one with its shape, colour and
    background, or a pair or count with every shape and colour)."""
    if any(m.colour is None or m.shape is None for m in reading.mentions):
        return False
    if reading.kind == "single":
        return reading.background is not None and ds.ShapeSpec(
            reading.first.shape, reading.first.colour, reading.background) in ds.HELD_OUT
    return scene.is_held_out(reading.description())


def caption_states(texts: list[str], work: Path, tokens: int, log=print):
    """float16 MiniLM states [N, tokens, 384] of ``texts`` (cached in ``work``; recomputed when they differ)."""
    import torch
    from safetensors.torch import load_file, save_file
    listing, cache = work / "captions.json", work / "caption_states.safetensors"
    if cache.exists() and listing.exists() and json.loads(listing.read_text()) == texts:
        states = load_file(cache)["states"]
        if states.shape[1] == tokens:
            log(f"reusing the MiniLM states of {len(texts)} captions in {cache}")
            return states
    began = time.time()
    states = torch.cat([chunk.half() for chunk in encode_in_chunks(texts, tokens)])
    save_file({"states": states.contiguous()}, cache)
    listing.write_text(json.dumps(texts, indent=0) + "\n")
    log(f"encoded {len(texts)} captions in {time.time() - began:.0f}s")
    return states


def encode_in_chunks(texts: list[str], tokens: int, batch: int = 256):
    """The first ``tokens`` of the MiniLM token states [b, 77, 384] the Encode Text node makes of
    ``texts``, ``batch`` at a time.

    Encoded in a window of ``tokens``: the padding is masked out of attention, so a real token's
    state does not depend on the padding after it, nor a padding state on the padding after it, and
    the first ``tokens`` states are the same as in the 77-token window (to float rounding).
    """
    from ..nodes.text_encoding import encode_prompts, tokenize_chunks
    from .evaluate import load_text_encoder
    tokenizer, model = load_text_encoder()
    for i in range(0, len(texts), batch):
        chunk = texts[i:i + batch]
        too_long = [t for t in chunk if len(tokenize_chunks(tokenizer, t, tokens)[0]) > 1]
        if too_long:
            raise ValueError(f"tokens: {too_long[0]!r} takes more than {tokens} tokens; raise --tokens")
        yield encode_prompts(model, tokenizer, chunk, window=tokens)[0]
