"""One complete tuning run: towers, cached features, training, held-out evaluation, saving."""
from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from typing import Callable

import torch

from .evaluate import format_report
from .model import LiTModel, check_new_folder
from .sources import TuneData, features_of
from .tune import TuneSettings, evaluate_pairs, fit, new_model

Reporter = Callable[[str, int, int, dict], None]  # (phase, done, total, extra)


def tune_lit(data: TuneData, image_spec: dict, text_spec: dict, settings: TuneSettings,
             out: Path | str | None = None, device: str = "cpu", report: Reporter | None = None,
             search: list[Path] = (), cache_dir: Path | str | None = None,
             record: dict | None = None) -> tuple[LiTModel, dict]:
    """Tune a text head on ``data``; returns the model and its metrics, and saves both when ``out`` is set.

    ``out`` must be a new or empty folder: an earlier model is never replaced (ModelExistsError).

    ``report(phase, done, total, extra)`` is called per batch of features and per training step.
    With ``cache_dir``, image features are kept there and reused by later runs on the same images.
    ``record`` (e.g. the command line) is written into the saved config as it is.
    Runs with autograd enabled even when called under ``torch.inference_mode()``.
    """
    report = report or (lambda *_: None)
    if out is not None:
        check_new_folder(out)  # refuse before minutes of tuning, not after; save() checks again
    started, cpu_started = time.perf_counter(), time.process_time()
    with torch.inference_mode(False):
        model = new_model(image_spec, text_spec, settings, search).to(device)
        train = cached_features(model, data.train_images, image_spec, cache_dir,
                                lambda d, t: report("image features", d, t, {}))
        held = cached_features(model, data.held_images, image_spec, cache_dir,
                               lambda d, t: report("held-out features", d, t, {}))
        if data.train_pair_images is not None:
            train = train[torch.tensor(data.train_pair_images)]
        featured = time.perf_counter()
        losses = fit(model, train, data.train_captions, settings,
                     lambda d, t, loss: report("training", d, t, {"loss": loss}), meaning=data.train_meaning)
        trained = time.perf_counter()
        metrics = {"first_loss": round(losses[0], 4), "final_loss": round(sum(losses[-20:]) / len(losses[-20:]), 4),
                   "temperature": round(1.0 / model.logit_scale.exp().item(), 4)}
        if data.held_captions:
            metrics.update(evaluate_pairs(model, held, data.held_captions, data.candidates, data.held_truth))
        if data.metrics is not None:
            metrics.update(data.metrics(model, held))
        metrics["seconds"] = {"features": round(featured - started, 1), "training": round(trained - featured, 1),
                              "total": round(time.perf_counter() - started, 1),
                              "cpu": round(time.process_time() - cpu_started, 1)}
    model.config["metrics"] = metrics
    model.config["data"] = data.name
    if data.settings:
        model.config["data_settings"] = data.settings
    model.config.update(record or {})
    if out is not None:
        model.save(out)
    return model, metrics


def cached_features(model: LiTModel, images, image_spec: dict, cache_dir: Path | str | None,
                    progress: Callable[[int, int], None]) -> torch.Tensor:
    """Tower features of ``images``, read from / written to ``cache_dir`` under a key of tower and images."""
    if cache_dir is None:
        return features_of(model, images, progress)
    from safetensors.torch import load_file, save_file

    path = Path(cache_dir) / f"features-{images_key(images, image_spec)}.safetensors"
    if path.is_file():
        return load_file(str(path))["features"]
    features = features_of(model, images, progress)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file({"features": features.contiguous()}, str(path))
    return features


def images_key(images, image_spec: dict) -> str:
    """A digest naming the tower and the images: their pixels, or their files' paths, sizes and times."""
    digest = hashlib.blake2b(json.dumps(image_spec, sort_keys=True).encode(), digest_size=12)
    if isinstance(images, torch.Tensor):
        digest.update(str(tuple(images.shape)).encode())
        digest.update(images.contiguous().numpy().tobytes())
    else:
        for path in images:
            stat = Path(path).stat()
            digest.update(f"{path}|{stat.st_size}|{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def tqdm_reporter() -> Reporter:
    """A reporter drawing one tqdm bar per phase (the training bar shows the loss)."""
    from tqdm.auto import tqdm

    bars: dict[str, object] = {}

    def report(phase: str, done: int, total: int, extra: dict) -> None:
        bar = bars.get(phase)
        if bar is None:
            bar = bars[phase] = tqdm(total=total, desc=phase, unit="step" if phase == "training" else "img")
        bar.update(done - bar.n)
        if "loss" in extra and (done % 10 == 0 or done == total):
            bar.set_postfix(loss=f"{extra['loss']:.3f}")
        if done >= total:
            bar.close()

    return report


def describe(metrics: dict) -> str:
    """The held-out report printed at the end of ``imagetune lit-tune``."""
    return "held-out evaluation:\n" + format_report(metrics)
