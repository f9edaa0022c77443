"""The shapes worlds as LiT tuning data: one-object pictures in many wordings, and two-object scenes.

One-object pictures (``shapes.dataset``) are captioned by ``language.describe``: synonyms, word
orders, fillers and negations, each caption true of its picture. Scenes of the two-object world
(``shapes.scene``: pairs, relations, counts) are captioned by ``canonical_text`` of the scene or
of one of its omissions. Both wordings are arguments (``Wording``), so a richer scene language
can be plugged in without touching the rest. Every caption comes with its ``Claim``, so a caption
true of several pictures ("a red circle", "not on a white background", "a circle and a square")
is a positive for all of them in training and in the held-out scores, and with its hard negatives
(``hard_negatives``: the same words with colours swapped, order or relation changed, a thing left
out or counted again), which tuning can put beside it in a batch so the judge learns binding,
not only which words occur.

Held out of training: the ``dataset.HELD_OUT`` combinations (also as one thing of a scene on
that background) and every pair or count ``scene.is_held_out`` names.
"""
from __future__ import annotations

import copy
import math
from typing import Callable

import numpy as np
import torch

from ..shapes import dataset as ds
from ..shapes import language
from ..shapes import scene as S
from .claims import Claim, claim_of, holds_matrix
from .model import LiTModel
from .reading import CaptionReader
from .tune import Meaning

Captioned = tuple[str, Claim, list[tuple[str, Claim]]]  # text, what it claims, its hard negatives
Wording = Callable[[S.Scene, np.random.Generator], Captioned]
SCENE_KINDS = ("pair", "position", "count")
_HELD_OUT = frozenset(ds.HELD_OUT)


def one_object_wording(reader: CaptionReader | None = None) -> Wording:
    """``language.describe`` of a one-object scene, with the claim read back from its words."""
    reader = reader or CaptionReader()

    def word(scene: S.Scene, rng: np.random.Generator) -> Captioned:
        thing = scene.things[0]
        text = language.describe(ds.ShapeSpec(thing.shape, thing.colour, scene.background), rng)
        return text, reader.claim(text), []

    return word


def scene_wording(scene: S.Scene, rng: np.random.Generator) -> Captioned:
    """The canonical caption of the scene or of one of its omissions (background, colours or both left out),
    with the canonical captions of its hard negatives."""
    variants = S.omissions(scene)
    description = variants[int(rng.integers(len(variants)))]
    negatives = [(S.canonical_text(other), claim_of(other)) for other in hard_negatives(description)
                 if not shows_held_out(other)]  # a held-out caption stays unseen, even as a negative
    return S.canonical_text(description), claim_of(description), negatives


def hard_negatives(description: S.Description) -> list[S.Description]:
    """Descriptions that share ``description``'s words but not its meaning: colours swapped between two
    things, order swapped, the other relation, one of two things alone, one thing counted another number
    of times, another background. Each is false of every picture ``description`` is true of."""
    things, background, out = description.things, description.background, []
    if description.count > 1 or len(things) == 1:
        out += [S.Description((things[0],) * n, None, background) for n in (1, 2, 3) if n != len(things)]
    else:
        a, b = things
        if a.colour and b.colour and a.colour != b.colour and a.shape != b.shape:
            out.append(S.Description((S.Thing(a.shape, b.colour), S.Thing(b.shape, a.colour)),
                                     description.relation, background))
        if description.relation:
            out.append(S.Description(things[::-1], description.relation, background))
            out.append(S.Description(things, next(r for r in S.RELATIONS if r != description.relation), background))
        out += [S.Description((t,), None, background) for t in (a, b)]
        out += [S.Description((t, t), None, background) for t in (a, b)]
    if background is not None:
        used = {t.colour for t in things} | {background}
        out.append(S.Description(things, description.relation, next(c for c in ds.COLOURS if c not in used)))
    return list(dict.fromkeys(out))


def shows_held_out(scene: S.Description) -> bool:
    """Whether a scene is held out: a held-out pair or count, or a thing on a background HELD_OUT names.

    A description without colours is not: its words are trained on every shape pair and count."""
    if all(t.colour is not None for t in scene.things) and S.is_held_out(scene):
        return True
    return scene.background is not None and any(
        t.colour is not None and ds.ShapeSpec(t.shape, t.colour, scene.background) in _HELD_OUT for t in scene.things)


def training_scene(rng: np.random.Generator, kind: str) -> S.Scene:
    """A random scene of ``kind`` that shows nothing held out."""
    while True:
        scene = S.random_scene(rng, kind)
        if not shows_held_out(scene):
            return scene


def drawn(scene: S.Scene, size: int, rng: np.random.Generator) -> tuple[np.ndarray, S.Scene]:
    """The picture of ``scene`` (uint8 [size, size, 3]) and what it shows.

    Two different things with no relation are laid out side by side or one above the other
    (``scene.layout``): the content then names the relation the picture has, so a caption that
    says it ("a red circle to the left of a blue square") is true of it.
    """
    shown = scene
    if len(scene.things) == 2 and scene.relation is None and scene.count == 1:
        (x0, y0, _), (x1, y1, _) = S.layout(scene, copy.deepcopy(rng))  # the layout render is about to draw
        first, second = scene.things
        if abs(x1 - x0) >= abs(y1 - y0):
            shown = S.Scene((first, second) if x0 < x1 else (second, first), "left of", scene.background)
        else:
            shown = S.Scene((first, second) if y0 < y1 else (second, first), "above", scene.background)
    return np.asarray(S.render(scene, size, rng)), shown


def confusers(scene: S.Scene) -> dict[str, S.Scene]:
    """Scenes a judge must not confuse with ``scene``, by test: colours swapped between two shapes, order
    swapped, the other relation, the other count, another background (each false of the picture)."""
    things, out = scene.things, {}
    if len(things) == 2 and things[0].shape != things[1].shape and things[0].colour != things[1].colour:
        a, b = things
        out["colour attribution"] = S.Scene((S.Thing(a.shape, b.colour), S.Thing(b.shape, a.colour)),
                                            scene.relation, scene.background)
    if scene.relation:
        out["order"] = S.Scene(things[::-1], scene.relation, scene.background)
        other = next(r for r in S.RELATIONS if r != scene.relation)
        out["relation"] = S.Scene(things, other, scene.background)
    if scene.count > 1:
        out["count"] = S.Scene((things[0],) * (5 - len(things)), None, scene.background)
    used = {t.colour for t in things}
    out["background"] = S.Scene(things, scene.relation, next(c for c in ds.COLOURS if c not in used | {scene.background}))
    return out


class ShapesPairs:
    """Training and held-out pictures of both worlds with their captions, claims and contents."""

    def __init__(self, pairs: int = 4000, seed: int = 0, size: int = 64, held_per_combination: int = 8,
                 scene_share: float = 0.5, captions_per_image: int = 2, held_scenes_per_kind: int = 32,
                 one_object: Wording | None = None, scenes: Wording = scene_wording):
        if not 0.0 <= scene_share <= 1.0:
            raise ValueError(f"scene_share: expected a share in [0, 1], got {scene_share}")
        if captions_per_image < 1:
            raise ValueError(f"captions_per_image: expected at least 1, got {captions_per_image}")
        self.size, self.one_object, self.scenes = size, one_object or one_object_wording(), scenes
        self._draw_training(pairs, captions_per_image, scene_share, np.random.default_rng(seed))
        self._draw_held_out(held_per_combination, held_scenes_per_kind, np.random.default_rng(seed + 1))

    def _draw_training(self, pairs: int, captions_per_image: int, scene_share: float, rng: np.random.Generator):
        """The training pictures (one-object first, then scenes) and ``captions_per_image`` wordings of each."""
        pictures = math.ceil(pairs / captions_per_image)
        train = self._one_object_scenes(pictures - round(pictures * scene_share), rng, ds.training_specs())
        train += [training_scene(rng, SCENE_KINDS[i % 3]) for i in range(round(pictures * scene_share))]
        self.train_scenes = train  # as drawn at random; train_contents say what each picture shows
        self.train_images, self.train_contents = self._draw(train, rng)
        self.train_captions, self.train_claims, self.train_pair_images, self.train_negatives = [], [], [], []
        for index, scene in enumerate(train):
            wording = self.one_object if len(scene.things) == 1 else self.scenes
            for _ in range(captions_per_image):
                text, claim, negatives = wording(scene, rng)
                self.train_captions.append(text)
                self.train_claims.append(claim)
                self.train_pair_images.append(index)
                self.train_negatives.append(negatives)
        del self.train_captions[pairs:], self.train_claims[pairs:], self.train_pair_images[pairs:]
        del self.train_negatives[pairs:]

    def _draw_held_out(self, per_combination: int, scenes_per_kind: int, rng: np.random.Generator):
        """Held-out pictures with their full captions, and the candidates they are ranked among."""
        held = self._one_object_scenes(per_combination * len(ds.HELD_OUT), rng, ds.held_out_specs())
        self.held_one_object = len(held)
        held += [S.random_scene(rng, kind, held_out=True) for kind in SCENE_KINDS for _ in range(scenes_per_kind)]
        self.held_scenes = held
        self.held_images, self.held_contents = self._draw(held, rng)
        self.held_captions = [S.canonical(scene) for scene in held]
        tested = [other for scene in held[self.held_one_object:] for other in (scene, *confusers(scene).values())]
        self.candidates = list(dict.fromkeys([S.canonical(S.single(spec)) for spec in ds.all_specs()]
                                             + [S.canonical(other) for other in tested]))
        self._claims = {S.canonical(s): claim_of(s) for s in (S.single(spec) for spec in ds.all_specs())}
        self._claims.update(zip(self.train_captions, self.train_claims))
        self._claims.update((S.canonical(other), claim_of(other)) for other in tested)

    @staticmethod
    def _one_object_scenes(n: int, rng: np.random.Generator, pool: list[ds.ShapeSpec]) -> list[S.Scene]:
        """``n`` one-object scenes cycling through ``pool`` in seeded shuffles (each about equally often)."""
        specs: list[ds.ShapeSpec] = []
        while len(specs) < n:
            specs.extend(pool[i] for i in rng.permutation(len(pool)))
        return [S.single(spec) for spec in specs[:n]]

    def _draw(self, scenes: list[S.Scene], rng: np.random.Generator) -> tuple[torch.Tensor, list[S.Scene]]:
        """IMAGE [N, size, size, 3] float of jittered renders, and what each shows."""
        drawn_ = [drawn(scene, self.size, rng) for scene in scenes]
        images = np.stack([d[0] for d in drawn_]) if drawn_ else np.zeros((0, self.size, self.size, 3), np.uint8)
        return torch.from_numpy(images).float().div_(255.0), [d[1] for d in drawn_]

    def meaning(self) -> Meaning:
        """What each training pair's caption claims and its picture shows (positives for tuning)."""
        return Meaning(self.train_claims, [self.train_contents[i] for i in self.train_pair_images], holds_matrix,
                       self.train_negatives)

    def held_truth(self, texts: list[str]) -> torch.Tensor:
        """Bool [len(texts), held images]: which known captions are true of which held-out pictures."""
        return torch.from_numpy(holds_matrix([self._claims[t] for t in texts], self.held_contents))

    @torch.no_grad()
    def metrics(self, model: LiTModel, raw_features: torch.Tensor, prompts: bool = True) -> dict:
        """Held-out scores by world: one-object combinations among all 168, scenes against their confusers,
        and (``prompts``) the committed held-out prompts per kind of wording (``prompt_ranking``)."""
        from .prompt_ranking import rank_held_out_prompts

        images = model.adapt_image_features(raw_features.to(model.device))
        single = self.held_one_object
        specs = [ds.ShapeSpec(s.things[0].shape, s.things[0].colour, s.background) for s in self.held_scenes[:single]]
        report = {"shapes": shapes_metrics(model, raw_features[:single], specs)}
        if prompts:
            report["held_out_prompts"] = rank_held_out_prompts(model)
        scenes, pictures = self.held_scenes[single:], images[single:]
        if not scenes:
            return report
        tests = [(i, test, S.canonical(other)) for i, scene in enumerate(scenes)
                 for test, other in confusers(scene).items()]
        texts = list(dict.fromkeys([S.canonical(s) for s in scenes] + [text for _, _, text in tests]))
        embeds = dict(zip(texts, model.encode_texts(texts)))
        own = torch.stack([embeds[S.canonical(s)] for s in scenes])
        own_scores = (pictures * own).sum(-1)
        by_test: dict[str, list[bool]] = {}
        for i, test, text in tests:
            by_test.setdefault(test, []).append(bool(own_scores[i] > pictures[i] @ embeds[text]))
        report["scenes"] = {f"own caption over {test}": round(float(np.mean(v)), 4) for test, v in by_test.items()}
        top = (pictures @ model.encode_texts(self.candidates).T).argmax(dim=1)
        right = self.held_truth(self.candidates)[:, single:]
        hits = [bool(right[int(top[i]), i]) for i in range(len(scenes))]
        report["scenes"]["true caption first among all candidates"] = {
            kind: round(float(np.mean([h for h, s in zip(hits, scenes) if s.kind == kind])), 4) for kind in SCENE_KINDS}
        return report


@torch.no_grad()
def shapes_metrics(model: LiTModel, raw_features: torch.Tensor, specs: list) -> dict:
    """Zero-shot on held-out shapes: the predicted combination (best of all 4 phrasings of each of the
    168) must match exactly; also among the held-out combinations only, and per attribute."""
    images = model.adapt_image_features(raw_features.to(model.device))
    results = {}
    for label, pool in (("exact_among_all", ds.all_specs()), ("exact_among_held_out", ds.held_out_specs())):
        variants = len(ds.TEMPLATES)
        texts = model.encode_texts(ds.all_captions(pool))
        best = (images @ texts.T).reshape(len(images), len(pool), variants).amax(dim=2).argmax(dim=1)
        predicted = [pool[i] for i in best.tolist()]
        results[label] = sum(p == s for p, s in zip(predicted, specs)) / max(1, len(specs))
        if label == "exact_among_all":
            for attribute in ("shape", "colour", "background"):
                right = sum(getattr(p, attribute) == getattr(s, attribute) for p, s in zip(predicted, specs))
                results[attribute] = right / max(1, len(specs))
    return results
