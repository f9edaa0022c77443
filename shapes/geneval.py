"""GenEval-style scoring of the two-object world: six tasks, judged by the scene analyzer.

    python -m imagetune.shapes.geneval models/imagetune-shapes --json docs/geneval.json [--best-of 1]

By default the prompts go as the default workflow takes them: through its Understand Prompt node, and,
since its Generate node makes 4 candidates that its LiT judge picks among, the judge's pick is scored
(beside the first candidate alone and any of the 4 right); ``--best-of 1`` scores one image a prompt.

The tasks and prompt templates are GenEval's (Ghosh et al. 2023), with its objects replaced by our
shapes: single object ("a photo of a circle"), two objects ("a photo of a circle and a square"),
counting ("a photo of three triangles"), colours ("a photo of a red square"), position ("a photo
of a circle right of a square") and colour attribution ("a photo of a red circle and a blue
square"). As in GenEval an image is right when the named objects are found (exactly the named
number for counting; the named colour for colours; centres more than a tenth of the side apart
in the named direction for position), and the overall score is the mean of the six task scores.
Colour attribution uses only pairs of things held out of training (``scene.is_held_out``); two
extra rows, not in the mean, hold out pairs and counts in the issue's own phrasing.
"""
from __future__ import annotations

import argparse
import itertools
import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .dataset import COLOURS, SHAPES
from .scene import COUNT_WORDS, PLURALS, Description, Scene, Thing, all_things, article, canonical_text, is_held_out
from .regions import trained_caption
from .saved_png import DEFAULT_WORKFLOW
from .scene_analyzer import SceneAnalysis, Seen, analyze_scene

JUDGE = Path(__file__).resolve().parents[1] / "models" / "lit" / "shapes-lite0-minilm"

TASKS = ("single object", "two objects", "counting", "colours", "position", "colour attribution")
EXTRA = ("held-out pairs with colours and position", "held-out counts with colours")
MARGIN = 0.1  # GenEval's position threshold, as a fraction of the image side
OPPOSITE = {"left of": "right of", "right of": "left of", "above": "below", "below": "above"}


@dataclass(frozen=True)
class Ask:
    """What one prompt asks: things (shape, colour or None), a count, or a relation of the first to the second."""

    things: tuple[Thing, ...]
    count: int = 0
    relation: str | None = None

    def description(self) -> Description:
        """What is asked, as the generator's canonical description (right of / below read the other way round)."""
        things = self.things * (self.count or 1)
        if self.relation in ("right of", "below"):
            return Description(things[::-1], {"right of": "left of", "below": "above"}[self.relation])
        return Description(things, self.relation)

    def check(self, seen: SceneAnalysis) -> bool:
        """Whether the analyzer's ``seen`` satisfies the prompt, GenEval's way."""
        if self.count:
            return len(seen.of(self.things[0].shape, self.things[0].colour)) == self.count
        found = [largest(seen.of(t.shape, t.colour)) for t in self.things]
        if any(f is None for f in found):
            return False
        return self.relation is None or stands(found[0], self.relation, found[1])


@dataclass(frozen=True)
class Prompt:
    task: str
    text: str
    ask: Ask
    seed: int


def largest(objects: list[Seen]) -> Seen | None:
    """The biggest of ``objects`` (GenEval judges the most confident detection), or None."""
    return max(objects, key=lambda o: o.area) if objects else None


def stands(a: Seen, relation: str, b: Seen) -> bool:
    """Whether ``a`` is ``relation`` ``b`` by more than MARGIN of the side."""
    dx, dy = b.x - a.x, b.y - a.y
    return {"left of": dx > MARGIN, "right of": -dx > MARGIN, "above": dy > MARGIN, "below": -dy > MARGIN}[relation]


def prompts(seeds: int = 4) -> list[Prompt]:
    """Every prompt of the evaluation, in a fixed order, each with ``seeds`` seeds (0..seeds-1)."""
    rng = np.random.default_rng(2023)
    held_pairs = [(a, b) for a, b in itertools.permutations(all_things(), 2)
                  if a.shape != b.shape and is_held_out(Description((a, b)))]
    held_counts = [(t, n) for t in all_things() for n in COUNT_WORDS if is_held_out(Description((t,) * n))]
    asks: list[tuple[str, str, Ask]] = []
    for shape in SHAPES:
        asks.append((TASKS[0], f"a photo of {article(shape)}", Ask((Thing(shape, None),))))
    for a, b in itertools.permutations(SHAPES, 2):
        asks.append((TASKS[1], f"a photo of {article(a)} and {article(b)}", Ask((Thing(a, None), Thing(b, None)))))
    for shape, n in itertools.product(SHAPES, COUNT_WORDS):
        asks.append((TASKS[2], f"a photo of {COUNT_WORDS[n]} {PLURALS[shape]}", Ask((Thing(shape, None),), n)))
    for colour, shape in itertools.product(COLOURS, SHAPES):
        if rng.random() < 0.5:  # 12 of the 24 colour/shape things, drawn once
            asks.append((TASKS[3], f"a photo of {article(colour + ' ' + shape)}", Ask((Thing(shape, colour),))))
    for (a, b), relation in itertools.product(itertools.permutations(SHAPES, 2), OPPOSITE):
        asks.append((TASKS[4], f"a photo of {article(a)} {relation} {article(b)}",
                     Ask((Thing(a, None), Thing(b, None)), relation=relation)))
    for i in rng.permutation(len(held_pairs))[:24]:
        a, b = held_pairs[i]
        asks.append((TASKS[5], f"a photo of {article(a.words())} and {article(b.words())}", Ask((a, b))))
    for i in rng.permutation(len(held_pairs))[:24]:
        (a, b), relation = held_pairs[i], tuple(OPPOSITE)[int(rng.integers(4))]
        phrase = {"left of": "to the left of", "right of": "to the right of"}.get(relation, relation)
        asks.append((EXTRA[0], f"{article(a.words())} {phrase} {article(b.words())} on a "
                               f"{background_for(a, b)} background", Ask((a, b), relation=relation)))
    for thing, n in held_counts:
        asks.append((EXTRA[1], f"{COUNT_WORDS[n]} {thing.colour} {PLURALS[thing.shape]}", Ask((thing,), n)))
    per_task = {task: sum(1 for t, _, _ in asks if t == task) for task in TASKS + EXTRA}
    out = []
    for task, text, ask in asks:
        repeats = max(1, round(seeds * 24 / per_task[task]))  # about 24 x seeds images per task
        out.extend(Prompt(task, text, ask, seed) for seed in range(repeats))
    return out


def ground_truth(ask: Ask, rng: np.random.Generator) -> Scene:
    """A scene that satisfies ``ask`` (colours left open drawn at random), to check the judge on renders."""
    things = [Thing(t.shape, t.colour) for t in ask.things] * (ask.count or 1)
    free = [c for c in COLOURS if c not in {t.colour for t in things}]
    things = [t if t.colour else Thing(t.shape, free.pop(int(rng.integers(len(free))))) for t in things]
    if ask.count:
        things = [things[0]] * ask.count
    relation = ask.relation
    if relation in ("right of", "below"):
        things, relation = things[::-1], {"right of": "left of", "below": "above"}[relation]
    backgrounds = [c for c in COLOURS if c not in {t.colour for t in things}]
    return Scene(tuple(things), relation, backgrounds[int(rng.integers(len(backgrounds)))])


def background_for(a: Thing, b: Thing) -> str:
    """White, or black when a thing is white (a background unlike both things)."""
    return "white" if "white" not in (a.colour, b.colour) else "black"


def score(found: list[SceneAnalysis], asked: list[Prompt]) -> dict:
    """Per-task accuracy, GenEval's overall (mean of the six tasks) and each miss."""
    right = [p.ask.check(f) for f, p in zip(found, asked)]
    tasks = {task: round(float(np.mean([r for r, p in zip(right, asked) if p.task == task])), 4)
             for task in TASKS + EXTRA if any(p.task == task for p in asked)}
    misses = [{"task": p.task, "prompt": p.text, "seed": p.seed,
               "seen": [f"{o.colour} {o.shape} at ({o.x:.2f}, {o.y:.2f})" for o in f.objects] + [f"on {f.background}"]}
              for r, f, p in zip(right, found, asked) if not r]
    overall = round(float(np.mean([tasks[t] for t in TASKS if t in tasks])), 4)
    return {"overall": overall, "tasks": tasks, "images": {t: sum(p.task == t for p in asked) for t in tasks},
            "misses": misses}


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("model", type=Path, help="pipeline folder, e.g. models/imagetune-shapes")
    p.add_argument("--json", type=Path, help="write the scores here")
    p.add_argument("--seeds", type=int, default=4)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--cfg", type=float, default=2.0)
    p.add_argument("--plain", action="store_true",
                   help="give the generator the prompts as written, without the understanding step")
    p.add_argument("--canonical", action="store_true",
                   help="give the generator the canonical caption of what each prompt asks (perfect understanding)")
    p.add_argument("--workflow", type=Path, default=DEFAULT_WORKFLOW,
                   help="API workflow whose Understand Prompt node rewrites the prompts (the default workflow's)")
    p.add_argument("--best-of", default="workflow", metavar="N",
                   help="make each prompt's N candidates (Generate's batch_size N) and keep the LiT judge's pick, "
                        "reported beside the first candidate alone and any of the N; 'workflow' (default): as the "
                        "--workflow does (its batch_size when a best-of-N node keeps the judge's pick, else 1)")
    p.add_argument("--judge", action="append", metavar="[NAME=]FOLDER",
                   help="LiT model folder that picks among the candidates (repeatable: every judge picks among the same "
                        "candidates, the first one's pick is the result; default: the workflow's judge)")
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args(argv)
    import torch
    from .evaluate import best_of_setting, generate, load_text_encoder
    from .model import load_pipeline
    torch.set_num_threads(args.threads)
    began = time.time()
    asked = prompts(args.seeds)
    text = load_text_encoder()
    descriptions = None
    if args.canonical:
        descriptions = [q.ask.description() for q in asked]
    elif not args.plain:
        descriptions = understood([q.text for q in asked], args.workflow, text)
    texts = [q.text for q in asked] if descriptions is None else [canonical_text(d) for d in descriptions]
    pipe = load_pipeline(args.model)
    caption = trained_caption(args.model)
    wired = best_of_setting(args.workflow, args.best_of)
    n = wired[0] if wired else 1
    images = generate(pipe, text, texts, [q.seed for q in asked], args.steps, args.cfg, descriptions=descriptions,
                      caption=caption, candidates=n)
    if n > 1:
        result = best_of(images.reshape(len(asked), n, *images.shape[1:]), asked,
                         judges(args.judge) if args.judge else {"workflow's judge": wired[1]}, texts)
        result["ranked_by"] = "the prompt as written" if descriptions is None else "the caption the generator got"
    else:
        result = score([analyze_scene(img) for img in images], asked)
    result.update(model=str(args.model), prompts="canonical" if args.canonical else "plain" if args.plain else "understood",
                  regional=descriptions is not None and caption is not None,
                  steps=args.steps, cfg=args.cfg,
                  seconds=round(time.time() - began, 1))
    for task, value in result["tasks"].items():
        print(f"{task:45s} {value:6.1%}  ({result['images'][task]} images)")
    print(f"{'overall (mean of the six tasks)':45s} {result['overall']:6.1%}")
    for name, other in result.get("compared", {}).items():
        print(f"{name:45s} {other['overall']:6.1%}  " + ", ".join(f"{t} {v:.1%}" for t, v in other["tasks"].items()))
    if args.json:
        args.json.write_text(json.dumps(result, indent=1) + "\n")


def judges(given: list[str] | None) -> dict[str, Path]:
    """``--judge [NAME=]FOLDER`` values as {name: folder}, in order; none given: the shipped judge."""
    if not given:
        return {"shipped judge": JUDGE}
    pairs = [g.split("=", 1) if "=" in g else (Path(g).name, g) for g in given]
    return {name: Path(folder) for name, folder in pairs}


def best_of(candidates: np.ndarray, asked: list[Prompt], judge_folders: dict[str, Path],
            ranked_by: list[str] | None = None) -> dict:
    """``score`` of the first LiT judge's pick among each prompt's candidates [P, n, H, W, 3], ranked against
    ``ranked_by`` (default: the prompts as written; the default workflow's best-of-N node gets Understand
    Prompt's caption, which ``main`` passes), with the first candidate alone (the one-image workflow), any other
    judge's pick, and any candidate right (what a perfect pick reaches) under "compared"."""
    from ..lit.best_of_n_eval import judge_picks
    from ..lit.model import load_lit_model

    found = [[analyze_scene(image) for image in images] for images in candidates]
    first = score([seen[0] for seen in found], asked)
    compared, result = {"first candidate alone": {"overall": first["overall"], "tasks": first["tasks"]}}, None
    for name, folder in judge_folders.items():
        picks, seconds = judge_picks(load_lit_model(folder), candidates, ranked_by or [q.text for q in asked],
                                     candidates.shape[1])
        picked = score([seen[k] for seen, k in zip(found, picks)], asked)
        if result is None:
            result = picked
            result.update(best_of=candidates.shape[1], judge=str(folder), judge_seconds_per_pick=round(seconds, 4))
        else:
            compared[f"{name} best of {candidates.shape[1]}"] = {"overall": picked["overall"], "tasks": picked["tasks"],
                                                                  "judge": str(folder)}
    anyone = [next((s for s in seen if q.ask.check(s)), seen[0]) for seen, q in zip(found, asked)]
    best = score(anyone, asked)
    compared[f"any of {candidates.shape[1]} right (ceiling)"] = {"overall": best["overall"], "tasks": best["tasks"]}
    result["compared"] = compared
    return result


def understood(texts: list[str], workflow: Path, text_encoder) -> list[Description]:
    """What ``workflow``'s Understand Prompt node reads in each prompt (its canonical caption is the caption's)."""
    from .evaluate import understood_descriptions, workflow_reader
    from .understand import PromptReader
    folder = workflow_reader(workflow)
    if folder is None:
        raise SystemExit(f"{workflow}: no Understand Prompt node; use --plain or --canonical")
    return understood_descriptions(PromptReader.from_pretrained(folder), text_encoder, texts)

if __name__ == "__main__":
    main()
