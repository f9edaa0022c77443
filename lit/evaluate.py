"""Held-out evaluation of a LiT model: zero-shot accuracy and retrieval recall@1."""
from __future__ import annotations

import torch


def top1_true(scores: torch.Tensor, right: torch.Tensor) -> float:
    """Fraction of rows of ``scores`` [N, C] whose best-scoring column is marked in ``right`` [N, C] (bool)."""
    if scores.shape[0] == 0:
        return float("nan")
    best = scores.argmax(dim=1)
    return right.to(scores.device)[torch.arange(len(best), device=scores.device), best].float().mean().item()


def zero_shot_accuracy(image_embeds: torch.Tensor, true_ids: torch.Tensor, text_embeds: torch.Tensor) -> float:
    """Fraction of images [N, D] whose most similar caption among ``text_embeds`` [C, D] is ``true_ids`` [N]."""
    right = true_ids.to(image_embeds.device)[:, None] == torch.arange(len(text_embeds), device=image_embeds.device)
    return top1_true(image_embeds @ text_embeds.T, right)


def retrieval_recall_at_1(image_embeds: torch.Tensor, caption_ids: torch.Tensor,
                          text_embeds: torch.Tensor, truth: torch.Tensor | None = None) -> dict[str, float]:
    """Recall@1 both ways among held-out pairs.

    ``caption_ids`` [N] indexes each image's caption in ``text_embeds`` [U, D] (several images may
    share a caption). image->text: is the top caption the image's own? text->image: is the top image
    one that carries the caption? With ``truth`` [U, N] (bool: caption u is true of image n), "own"
    becomes "true of it", and every caption is asked for its best image.
    """
    if image_embeds.shape[0] == 0:
        return {"image_to_text": float("nan"), "text_to_image": float("nan")}
    caption_ids = caption_ids.to(image_embeds.device)
    sims = image_embeds @ text_embeds.T  # [N, U]
    if truth is None:
        truth = torch.arange(len(text_embeds), device=sims.device)[:, None] == caption_ids[None, :]
        asked = torch.unique(caption_ids)
    else:
        asked = torch.arange(len(text_embeds), device=sims.device)
    truth = truth.to(sims.device)
    return {"image_to_text": top1_true(sims, truth.T), "text_to_image": top1_true(sims.T[asked], truth[asked])}


NOT_FRACTIONS = ("first_loss", "final_loss", "temperature", "seconds")  # every other float metric is a share


def format_report(metrics: dict, indent: str = "  ", fractions: bool = True) -> str:
    """Metrics as aligned ``name: value`` lines (shares shown as percentages)."""
    lines = []
    for name, value in metrics.items():
        share = fractions and name not in NOT_FRACTIONS
        if isinstance(value, dict):
            lines.append(f"{indent}{name}:")
            lines.append(format_report(value, indent + "  ", share))
        elif isinstance(value, float) and share:
            lines.append(f"{indent}{name}: {100 * value:.1f}%")
        else:
            lines.append(f"{indent}{name}: {value}")
    return "\n".join(lines)
