"""Train the prompt-understanding model (``shapes/understand.py``) on the training language.

    python -m imagetune.shapes.train_understand --out models/imagetune-shapes/understand --work DIR

Draws ``--captions`` seeded (caption, reading) pairs (``shapes/understand_data.py``), encodes them
once with the frozen MiniLM exactly as the Encode Text node does (float16, the first ``--tokens``
of the 77, cached in --work), then fits one cross-entropy per slot (slots that do not apply to a
caption's kind are masked). The token length of each batch varies: cut to a random length past
its longest caption, or filled out to the full 77-token window with the captions' own padding
states, so the model reads a prompt whatever padding follows it. An EMA of the weights is what is
saved. ``--token-dropout`` blanks that share of the token states of each batch (zeros), so no one
word's state decides a slot alone. Every ``--save-every`` steps the whole state goes to
``<work>/checkpoint``; rerunning the same command continues from it. One torch thread by default
(the machine's cores are shared).
"""
from __future__ import annotations

import argparse
import copy
import json
import math
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from .checkpoint import load_checkpoint, save_checkpoint
from .slots import IGNORE, SLOTS, targets
from .train import log, start_run, update_ema
from .understand import WINDOW, PromptReader, ReaderConfig
from .understand_data import caption_states, training_examples


def target_tensor(readings) -> torch.Tensor:
    """Class index per (caption, slot) as long [N, slots] (IGNORE where a slot does not apply)."""
    rows = [targets(r) for r in readings]
    return torch.tensor([[row[slot] for slot in SLOTS] for row in rows], dtype=torch.long)


def token_lengths(texts: list[str]) -> torch.Tensor:
    """Tokens of each caption in its 77-token window (start and end tokens included), long [N]."""
    from ..nodes.text_encoding import tokenize_chunks
    from .evaluate import load_text_encoder
    tokenizer, _ = load_text_encoder()
    return torch.tensor([sum(tokenize_chunks(tokenizer, t)[1][0]) for t in texts], dtype=torch.long)


def batch_states(states: torch.Tensor, lengths: torch.Tensor, idx: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """float32 [B, T, width] states of captions ``idx``: cut to a random T past the longest, or (half
    the time) filled out to 77 tokens with padding states drawn from each caption's own padding."""
    rows, longest, kept = states[idx].float(), int(lengths[idx].max()), states.shape[1]
    if torch.rand((), generator=gen) < 0.5 or longest >= kept:
        cut = int(torch.randint(min(longest + 1, kept), kept + 1, (), generator=gen))
        return rows[:, :cut]
    own = lengths[idx].unsqueeze(1)
    picks = own + (torch.rand(len(idx), WINDOW - kept, generator=gen) * (kept - own)).long()
    filler = rows.gather(1, picks.unsqueeze(-1).expand(-1, -1, rows.shape[-1]))
    return torch.cat([rows, filler], 1)


def slot_loss(logits: dict[str, torch.Tensor], target: torch.Tensor) -> torch.Tensor:
    """Sum over slots of the mean cross-entropy of the captions the slot applies to."""
    total = 0.0
    for i, name in enumerate(SLOTS):
        if (target[:, i] != IGNORE).any():
            total = total + F.cross_entropy(logits[name], target[:, i], ignore_index=IGNORE)
    return total


def learning_rate(args, step: int) -> float:
    """Warm-up over 200 steps, then cosine decay to 5% at ``--steps``."""
    warm = min(1.0, step / 200)
    return args.lr * warm * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * min(1.0, step / args.steps))))


def train(args, states, lengths, target, logfile: Path, config: ReaderConfig) -> PromptReader:
    """Fit a PromptReader; with a checkpoint in --work, continue it (weights, EMA, optimiser, RNG, step)."""
    torch.manual_seed(args.seed)
    model = PromptReader(config).train()
    model.start_state.copy_(states[:, 0].float().mean(0))
    ema = copy.deepcopy(model).requires_grad_(False)
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.01)
    gen = torch.Generator().manual_seed(args.seed + 1)
    checkpoint, first, before = args.work / "checkpoint", 1, 0.0
    if (checkpoint / "state.json").exists():
        done, before = load_checkpoint(checkpoint, model, ema, opt, gen)
        first = done + 1
        log(logfile, f"resumed from {checkpoint} at step {done} ({before / 60:.1f} min trained before)")
    log(logfile, f"reader parameters {sum(p.numel() for p in model.parameters()) / 1e6:.2f}M, {len(states)} captions")
    start = time.time() - before
    for step in range(first, min(args.steps, args.stop_at or args.steps) + 1):
        torch.manual_seed(args.seed * 1_000_003 + step)  # dropout's masks: the same whether resumed or not
        for group in opt.param_groups:
            group["lr"] = learning_rate(args, step)
        idx = torch.randint(len(states), (args.batch,), generator=gen)
        rows = batch_states(states, lengths, idx, gen)
        rows = rows.masked_fill(torch.rand(rows.shape[:2], generator=gen).unsqueeze(-1) < args.token_dropout, 0.0)
        loss = slot_loss(model(rows), target[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        update_ema(ema, model, min(args.ema, (1 + step) / (10 + step)))
        if step % 50 == 0:
            log(logfile, f"step {step}/{args.steps} loss {loss.item():.4f} lr {learning_rate(args, step):.2e} "
                         f"({time.time() - start:.0f}s)")
        if step % args.save_every == 0 or step in (args.steps, args.stop_at):
            save_checkpoint(checkpoint, model, ema, opt, gen, step, time.time() - start)
            log(logfile, f"checkpoint step {step} in {checkpoint}")
    ema.config.training = {**config.training, "steps": args.steps, "seconds": round(time.time() - start)}
    return ema.eval()


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", type=Path, default=Path("models/imagetune-shapes/understand"))
    p.add_argument("--work", type=Path, default=Path("/tmp/imagetune-understand-train"))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--captions", type=int, default=32000, help="seeded training captions, encoded once")
    p.add_argument("--tokens", type=int, default=48, help="token states kept per caption (of the 77)")
    p.add_argument("--steps", type=int, default=4000)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--ema", type=float, default=0.999)
    p.add_argument("--token-dropout", type=float, default=0.1, help="share of token states blanked per batch")
    p.add_argument("--dim", type=int, default=128)
    p.add_argument("--layers", type=int, default=2)
    p.add_argument("--save-every", type=int, default=500)
    p.add_argument("--stop-at", type=int, default=0,
                   help="stop after this step, checkpointed (the same command without it continues the run)")
    # One thread: the machine's two cores are shared with a UNet training run.
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (0: torch's default)")
    return p.parse_args(argv)


def main(argv=None) -> None:
    args = parse_args(argv)
    logfile = start_run(args)
    began = time.time()
    examples = training_examples(args.captions, args.seed)
    texts = [t for t, _ in examples]
    states = caption_states(texts, args.work, args.tokens, lambda m: log(logfile, m))
    lengths, target = token_lengths(texts).clamp(max=args.tokens - 1), target_tensor([r for _, r in examples])
    command = "python -m imagetune.shapes.train_understand " + " ".join(
        f"--{k.replace('_', '-')} {v}" for k, v in vars(args).items())
    config = ReaderConfig(dim=args.dim, layers=args.layers, ff=4 * args.dim,
                          training={"command": command, "captions": args.captions, "tokens": args.tokens,
                                    "token_dropout": args.token_dropout,
                                    "batch": args.batch, "seed": args.seed, "threads": torch.get_num_threads()})
    model = train(args, states, lengths, target, logfile, config)
    if args.stop_at and args.stop_at < args.steps:
        log(logfile, f"stopped at step {args.stop_at}; the same command without --stop-at continues")
        return
    model.save_pretrained(args.out)
    log(logfile, f"saved the EMA weights to {args.out}; done in {(time.time() - began) / 60:.1f} min")
    (args.work / "done.json").write_text(json.dumps({"minutes": round((time.time() - began) / 60, 1)}) + "\n")


if __name__ == "__main__":
    main()
