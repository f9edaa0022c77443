"""Parse accuracy of the prompt-understanding model on the held-out prompts, per kind of wording.

    python -m imagetune.shapes.understand_eval models/imagetune-shapes/understand --json OUT.json

A prompt is right when the ``scene.Description`` decoded from the model's reading equals the one
its truth decodes to (the same rules, ``reading.py``). Prompts are encoded exactly as the default
workflow encodes them (``nodes/text_encoding.encode_prompts``: 77-token windows, padding included),
after Understand Prompt's resolution of colour names (``shapes/colour_names.py``; ``--as-written``: none).
Lists: the 736 single-object prompts of ``shapes/heldout.py`` (truth from each ``Target``) and the
768 two-object prompts of ``shapes/heldout_scenes.py``, their unseen kinds in ``language.HELD_OUT``
(``--held-out second``: in ``language.HELD_OUT_2``); each miss is listed with what was read.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from . import heldout, heldout_scenes
from .language import HELD_OUT, HELD_OUT_LISTS, Language
from .reading import Mention, Reading
from .scene import canonical_text


def target_reading(target: heldout.Target) -> Reading:
    """What a held-out single-object prompt says, as a Reading."""
    return Reading(Mention(target.shape, target.colour), background=target.background,
                   not_background=target.not_background, not_shape=target.not_shape)


def heldout_items(held_out: Language = HELD_OUT) -> list[tuple[str, str, Reading]]:
    """(kind, prompt, truth) of both held-out lists in the held-out language ``held_out``, single objects first."""
    return ([(p.kind, p.text, target_reading(p.target)) for p in heldout.prompts(held_out)]
            + [(p.kind, p.text, p.reading) for p in heldout_scenes.prompts(held_out)])


def read_prompts(model, text, prompts: list[str], batch: int = 128, as_written: bool = False) -> list[Reading]:
    """The model's reading of each prompt, encoded by ``text`` = (tokenizer, MiniLM) as the workflow does (colour
    names resolved as Understand Prompt resolves them, unless ``as_written``)."""
    from ..nodes.text_encoding import encode_prompts
    from .colour_names import as_reader_reads
    from .understand import read
    tokenizer, encoder = text
    prompts = prompts if as_written else as_reader_reads(prompts)
    out: list[Reading] = []
    for i in range(0, len(prompts), batch):
        out += read(model, encode_prompts(encoder, tokenizer, prompts[i:i + batch])[0])
    return out


def score(items: list[tuple[str, str, Reading]], readings: list[Reading]) -> dict:
    """Exact-Description accuracy per kind, pooled groups, and the misses."""
    right = [got.description() == truth.description() for (_, _, truth), got in zip(items, readings)]
    groups: dict[str, list[int]] = {}
    for i, (kind, _, _) in enumerate(items):
        groups.setdefault(kind, []).append(i)
    groups["ALL UNSEEN WORDINGS (pooled)"] = [i for i, it in enumerate(items) if it[0] in heldout.UNSEEN]
    groups["ALL NEGATION (pooled)"] = [i for i, it in enumerate(items) if it[0] in heldout.NEGATION]
    groups["ALL TWO-OBJECT (pooled)"] = [i for i, it in enumerate(items) if it[0] in heldout_scenes.kinds()]
    report = {kind: {"prompts": len(index), "exact": round(sum(right[i] for i in index) / len(index), 4)}
              for kind, index in groups.items()}
    report["misses"] = [{"kind": items[i][0], "prompt": items[i][1], "truth": canonical_text(items[i][2].description()),
                         "read": canonical_text(readings[i].description())} for i in range(len(items)) if not right[i]]
    return report


def evaluate(folder, text=None, as_written: bool = False, held_out: Language = HELD_OUT) -> dict:
    """The whole report for the model in ``folder`` on the prompts in the held-out language ``held_out``."""
    from .evaluate import load_text_encoder
    from .understand import PromptReader
    model = PromptReader.from_pretrained(folder)
    items = heldout_items(held_out)
    return score(items, read_prompts(model, text or load_text_encoder(), [p for _, p, _ in items], as_written=as_written))


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("folder", type=Path)
    p.add_argument("--json", type=Path)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--as-written", action="store_true",
                   help="the model alone: no colour names resolved first (Understand Prompt resolves them)")
    p.add_argument("--held-out", choices=list(HELD_OUT_LISTS), default="first",
                   help="which held-out language the unseen kinds are in (language.HELD_OUT_LISTS)")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    report = evaluate(args.folder, as_written=args.as_written, held_out=HELD_OUT_LISTS[args.held_out])
    for kind, row in report.items():
        if kind != "misses":
            print(f"{kind:45s} {row['prompts']:5d} {100 * row['exact']:6.1f} %")
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
