"""Does keeping the LiT judge's best of N candidates beat the default workflow's one seed?

    python -m imagetune.lit.best_of_n_eval [--n 4] [--seeds 4] [--judge NAME=FOLDER ...] [--images FOLDER]

For each prompt of the committed held-out list (``shapes/heldout.py``; with ``--seeds 2`` only its
prompts of seeds 0 and 1, half of every kind of wording for every combination), the
shipped generator makes what the default workflow's Generate node makes with ``batch_size`` n: n
images from one noise generator seeded with the prompt's seed (image 0 is the one-image
workflow's picture). Each judge keeps its best-scoring candidate among the first k (k = 1, 2 .., n),
and the committed analyzer says whether the kept picture meets the prompt. Per kind of wording
the report gives: seed only (k = 1), each judge's best of k, any candidate right (what a perfect
judge could reach) and the mean candidate (what a random pick gives), and the judge's time per
pick.

With ``--understand FOLDER`` (a prompt-understanding model; ``workflow``: the one the default workflow's
Understand Prompt node names) the candidates are made as the default workflow makes them since #12: the
generator gets the canonical caption of what the model read in each prompt (regional conditioning for
two or more things, as the node gives), and each judge picks twice, by the prompt as written and by
the understood caption (Understand Prompt's STRING output, which the judge's prompt can be wired to).
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from ..shapes import heldout
from ..shapes.analyzer import analyze
from ..shapes.evaluate import generate, load_text_encoder, understood_descriptions, workflow_reader
from ..shapes.model import load_pipeline
from ..shapes.regions import trained_caption
from ..shapes.saved_png import DEFAULT_WORKFLOW
from ..shapes.scene import canonical_text
from .model import load_lit_model
from .prompt_ranking import POOLED
from .scoring import best_images

ROOT = Path(__file__).resolve().parents[1]
GENERATOR = ROOT / "models" / "imagetune-shapes"
JUDGE = ROOT / "models" / "lit" / "shapes-lite0-minilm"


@torch.no_grad()
def workflow_candidates(pipe, text, prompts: list[str], seeds: list[int], n: int, steps: int = 20,
                        cfg: float = 2.0, per_call: int = 32) -> np.ndarray:
    """Images float [P, n, H, W, 3] 0..1: for each prompt, the Generate node's batch of ``n`` at its seed.

    The node draws the batch's noise from one CPU generator seeded with ``seed`` (``ops.diffusion``),
    so image 0 equals the one-image picture and the others continue the same generator.
    """
    from ..nodes.text_encoding import encode_prompts

    tokenizer, model = text
    channels, side = pipe.unet.config.in_channels, pipe.unet.config.sample_size
    out, chunk = [], max(1, per_call // n)
    for start in range(0, len(prompts), chunk):
        texts, chunk_seeds = prompts[start:start + chunk], seeds[start:start + chunk]
        states, _ = encode_prompts(model, tokenizer, texts)
        empty, _ = encode_prompts(model, tokenizer, [""] * len(texts))
        latents = torch.cat([torch.randn((n, channels, side, side), generator=torch.Generator("cpu").manual_seed(s))
                             for s in chunk_seeds])
        images = pipe(prompt_embeds=states.repeat_interleave(n, 0), negative_prompt_embeds=empty.repeat_interleave(n, 0),
                      latents=latents, num_inference_steps=steps, guidance_scale=cfg, output_type="np").images
        out.append(images.reshape(len(texts), n, *images.shape[1:]))
    return np.concatenate(out)


def cached_candidates(cache: Path | None, prompts: list[str], seeds: list[int], n: int, steps: int,
                      cfg: float, progress=None, chunk: int = 8, descriptions: list | None = None) -> np.ndarray:
    """``workflow_candidates`` of the shipped generator as uint8-exact floats [P, n, H, W, 3]; with
    ``descriptions`` (what the reader understood of each prompt; ``prompts`` their canonical captions), the
    candidates of those as Understand Prompt conditions the generator (``shapes.evaluate.generate``).

    With ``cache`` (a folder) every ``chunk`` prompts are kept in their own file, named by the
    generator's weights, prompts, seeds and settings: an interrupted run keeps what it finished
    and a re-run only generates what is missing.
    """
    import hashlib

    weights = GENERATOR / "unet" / "diffusion_pytorch_model.safetensors"
    loaded, out = None, []
    for start in range(0, len(prompts), chunk):
        texts, chunk_seeds = prompts[start:start + chunk], seeds[start:start + chunk]
        key = json.dumps({"model": str(GENERATOR), "mtime": weights.stat().st_mtime_ns, "prompts": texts,
                          "seeds": chunk_seeds, "n": n, "steps": steps, "cfg": cfg,
                          **({"understood": True} if descriptions is not None else {})})
        path = None if cache is None else cache / f"{hashlib.blake2b(key.encode(), digest_size=12).hexdigest()}.npz"
        if path is not None and path.is_file():
            with np.load(path) as saved:
                images = saved["images"]
        else:
            loaded = loaded or (load_pipeline(GENERATOR), load_text_encoder())
            if descriptions is None:
                made = workflow_candidates(*loaded, texts, chunk_seeds, n, steps, cfg)
            else:
                made = generate(*loaded, texts, chunk_seeds, steps, cfg, descriptions=descriptions[start:start + chunk],
                                caption=trained_caption(GENERATOR), candidates=n)
                made = made.reshape(len(texts), n, *made.shape[1:])
            images = (made * 255 + 0.5).astype(np.uint8)
            if path is not None:
                path.parent.mkdir(parents=True, exist_ok=True)
                np.savez_compressed(path.with_suffix(".part.npz"), images=images)
                path.with_suffix(".part.npz").replace(path)  # a killed run never leaves half a file under the name
        out.append(images)
        if progress is not None:
            progress(min(start + chunk, len(prompts)), len(prompts))
    return np.concatenate(out).astype(np.float32) / 255


def judge_picks(judge, candidates: np.ndarray, prompts: list[str], k: int) -> tuple[list[int], float]:
    """The index each prompt's judge keeps among its first ``k`` candidates, and the seconds per pick."""
    began, picks = time.perf_counter(), []
    for images, prompt in zip(candidates, prompts):
        order, _ = best_images(judge, torch.from_numpy(np.ascontiguousarray(images[:k])).float(), prompt, top_k=1)
        picks.append(int(order[0]))
    return picks, (time.perf_counter() - began) / max(1, len(prompts))


def report(items: list[heldout.Prompt], right: np.ndarray, picks: dict[str, dict[int, list[int]]]) -> dict:
    """Per kind of wording (and pooled): all three right for the seed, each judge's best of k, any and mean candidate."""
    groups = {kind: [i for i, p in enumerate(items) if p.kind == kind] for kind in dict.fromkeys(p.kind for p in items)}
    groups.update({name: [i for i, p in enumerate(items) if p.kind in kinds] for name, kinds in POOLED.items()})
    groups["ALL PROMPTS"] = list(range(len(items)))
    table = {}
    for kind, index in groups.items():
        if not index:
            continue
        row = {"prompts": len(index), "seed only": _share(right[index, 0])}
        for judge, by_k in picks.items():
            for k, chosen in by_k.items():
                row[f"{judge} best of {k}"] = _share([right[i, chosen[i]] for i in index])
            if by_k:  # the largest k paired against the seed: prompts its pick put right, and prompts it put wrong
                k = max(by_k)
                kept = np.array([right[i, by_k[k][i]] for i in index])
                row[f"{judge} best of {k}: gained"] = int((kept & ~right[index, 0]).sum())
                row[f"{judge} best of {k}: lost"] = int((~kept & right[index, 0]).sum())
        row[f"any of {right.shape[1]} right"] = _share(right[index].any(axis=1))
        row["mean candidate"] = _share(right[index].mean(axis=1))
        table[kind] = row
    return table


def _share(values) -> float:
    return round(float(np.mean(values)), 4)


def run(n: int = 4, seeds: int = 4, judges: dict[str, Path] | None = None, cache: Path | None = None,
        steps: int = 20, cfg: float = 2.0, progress=None, understand: Path | None = None) -> dict:
    """The whole measurement as a dict (see the module docstring)."""
    items = [p for p in heldout.prompts() if p.seed < seeds]
    prompts = [p.text for p in items]
    began = time.perf_counter()
    asked, ranked_by = None, {"": prompts}
    if understand is not None:
        from ..shapes.understand import PromptReader
        asked = understood_descriptions(PromptReader.from_pretrained(understand), load_text_encoder(), prompts)
        ranked_by = {" by prompt": prompts, " by caption": [canonical_text(d) for d in asked]}
    given = prompts if asked is None else ranked_by[" by caption"]
    candidates = cached_candidates(cache, given, [p.seed for p in items], n, steps, cfg, progress, descriptions=asked)
    generated = time.perf_counter() - began
    right = np.array([[p.target.check(analyze(image))["all"] for image in row] for p, row in zip(items, candidates)])
    picks, seconds = {}, {}
    for judge_name, folder in (judges or {"shipped judge": JUDGE}).items():
        judge = load_lit_model(folder)
        for by, texts in ranked_by.items():
            name = judge_name + by
            picks[name] = {}
            for k in sorted({2, n} - {1}):
                picks[name][k], seconds[name] = judge_picks(judge, candidates, texts, k)
    return {"per_kind": report(items, right, picks),
            "settings": {"n": n, "seeds": seeds, "prompts": len(items), "ddim_steps": steps, "cfg": cfg,
                         "judges": {name: str(folder) for name, folder in (judges or {"shipped judge": JUDGE}).items()},
                         "understand": str(understand) if understand else None,
                         "generation_seconds": round(generated, 1),
                         "judge_seconds_per_pick_of_n": {k: round(v, 4) for k, v in seconds.items()}}}


def main(argv=None) -> None:
    """Command-line entry: print the comparison as JSON (and write it with --json)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=4, help="candidates per prompt (the Generate node's batch_size)")
    parser.add_argument("--seeds", type=int, default=4, help="use the held-out prompts of seeds 0 .. seeds-1 (at most 4)")
    parser.add_argument("--judge", action="append", metavar="NAME=FOLDER",
                        help="a LiT model to pick with (repeatable; default: the shipped one)")
    parser.add_argument("--images", type=Path, help="folder to keep the generated candidates in (resumable)")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--understand", metavar="FOLDER",
                        help="make the candidates through this prompt-understanding model, as the default workflow "
                             "does ('workflow': the one its Understand Prompt node names)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    judges = None
    if args.judge:
        judges = dict(j.split("=", 1) if "=" in j else (Path(j).name, j) for j in args.judge)
        judges = {name: Path(folder) for name, folder in judges.items()}
    from tqdm.auto import tqdm
    bar = tqdm(desc="prompts generated", unit="prompt")

    def progress(done, total):
        bar.total = total
        bar.update(done - bar.n)

    understand = None
    if args.understand:
        understand = workflow_reader(DEFAULT_WORKFLOW) if args.understand == "workflow" else Path(args.understand)
    result = run(args.n, args.seeds, judges, args.images, progress=progress, understand=understand)
    bar.close()
    text = json.dumps(result, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")


if __name__ == "__main__":
    main()
