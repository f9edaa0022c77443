"""``imagetune lit-tune``: tune a LiT text head from the command line and print its held-out scores."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

EXIT_BAD_INPUT = 2


def add_parser(sub) -> argparse.ArgumentParser:
    """Add the ``lit-tune`` subcommand to an argparse subparsers object."""
    p = sub.add_parser("lit-tune", help="tune a LiT text head on image-caption pairs (locked image tower)",
                       description="Locked-image text tuning: train a small text head so captions land next to "
                                   "their images' features from a frozen vision backbone.")
    p.add_argument("data", help="folder of captioned images (captions.tsv/.json/.jsonl, <image>.txt, or PNGs "
                                "with an embedded workflow), or 'shapes' for the procedural shapes set")
    p.add_argument("--out", type=Path, required=True,
                   help="new (or empty) folder to write config.json and head.safetensors to (never replaced)")
    p.add_argument("--image-tower", default="efficientnet-lite0-multi",
                   help="efficientnet-lite0-multi (default: pooled features of several depths), "
                        "efficientnet-lite0-multi-halves (those and where in the picture they are), efficientnet-lite0 "
                        "(the head's feature only), or a transformers vision model folder / hub id")
    p.add_argument("--image-size", type=int, help="input size of the image tower (default: its own)")
    p.add_argument("--text-tower", default="minilm", help="minilm (default), or a transformers encoder folder / hub id")
    p.add_argument("--steps", type=int, default=1500)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--layers", type=int, default=1, help="transformer layers in the text head")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--held-out", type=float, default=0.1, help="share of distinct captions held out (folders)")
    p.add_argument("--pairs", type=int, default=4000, help="number of training pairs (shapes only)")
    p.add_argument("--scene-share", type=float, default=0.5,
                   help="share of training pictures from the two-object world (shapes only)")
    p.add_argument("--captions-per-image", type=int, default=2,
                   help="captions drawn for each training picture (shapes only)")
    p.add_argument("--hard-negatives", type=int, default=0, metavar="K",
                   help="shapes only: per caption in a batch, add K of its hard negatives (colours swapped, order, "
                        "relation or count changed, a thing left out) to the batch's texts")
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, help="torch CPU threads (1 is fastest on a busy machine)")
    p.add_argument("--cache", type=Path, help="folder to keep image features in, reused by later runs")
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--json", action="store_true", help="print the metrics as JSON")
    p.set_defaults(func=cmd_lit_tune)
    return p


def command_line(args) -> str:
    """The ``imagetune lit-tune`` command that reproduces this run (its settings, not its paths' cache)."""
    import shlex

    words = ["imagetune", "lit-tune", args.data, "--out", str(args.out)]
    for option in ("image_tower", "image_size", "text_tower", "steps", "batch_size", "lr", "layers", "seed", "held_out",
                   "pairs", "scene_share", "captions_per_image", "hard_negatives", "threads"):
        value = getattr(args, option)
        if value is not None:
            words += ["--" + option.replace("_", "-"), str(value)]
    return shlex.join(words)


def cmd_lit_tune(args) -> int:
    """Run ``lit-tune``; returns the exit status."""
    import torch

    from .model import ModelExistsError
    from .run import describe, tqdm_reporter, tune_lit
    from .sources import folder_data, shapes_data
    from .towers import image_tower_spec, text_tower_spec
    from .tune import TuneSettings

    if args.threads:
        torch.set_num_threads(args.threads)
    settings = TuneSettings(steps=args.steps, batch_size=args.batch_size, lr=args.lr, seed=args.seed,
                            layers=args.layers, hard_negatives=args.hard_negatives)
    try:
        data = shapes_data(args.pairs, args.seed, scene_share=args.scene_share,
                           captions_per_image=args.captions_per_image) if args.data == "shapes" else \
            folder_data(args.data, args.held_out, args.seed)
        _, metrics = tune_lit(data, image_tower_spec(args.image_tower, args.image_size),
                              text_tower_spec(args.text_tower), settings, args.out, args.device,
                              None if args.no_progress else tqdm_reporter(), cache_dir=args.cache,
                              record={"command": command_line(args)})
    except ModelExistsError as exc:
        print(f"imagetune lit-tune: --out {exc.folder} already exists and is not empty; a tuned model never "
              "replaces files: choose a new folder or remove that one", file=sys.stderr)
        return EXIT_BAD_INPUT
    except (ValueError, FileNotFoundError) as exc:
        print(f"imagetune lit-tune: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    print(json.dumps(metrics, indent=2) if args.json else describe(metrics))
    print(f"saved {args.out}", file=sys.stderr)
    return 0
