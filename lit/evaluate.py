"""Held-out evaluation of a LiT model: zero-shot accuracy and retrieval recall@1."""
from __future__ import annotations

import torch


def zero_shot_accuracy(image_embeds: torch.Tensor, true_ids: torch.Tensor, text_embeds: torch.Tensor) -> float:
    """Fraction of images [N, D] whose most similar caption among ``text_embeds`` [C, D] is ``true_ids`` [N]."""
    if image_embeds.shape[0] == 0:
        return float("nan")
    predicted = (image_embeds @ text_embeds.T).argmax(dim=1)
    return (predicted == true_ids.to(predicted.device)).float().mean().item()


def retrieval_recall_at_1(image_embeds: torch.Tensor, caption_ids: torch.Tensor,
                          text_embeds: torch.Tensor) -> dict[str, float]:
    """Recall@1 both ways among held-out pairs.

    ``caption_ids`` [N] indexes each image's caption in ``text_embeds`` [U, D] (several images may
    share a caption). image->text: is the top caption the image's own? text->image: is the top image
    one that carries the caption?
    """
    if image_embeds.shape[0] == 0:
        return {"image_to_text": float("nan"), "text_to_image": float("nan")}
    caption_ids = caption_ids.to(image_embeds.device)
    sims = image_embeds @ text_embeds.T  # [N, U]
    i2t = (sims.argmax(dim=1) == caption_ids).float().mean().item()
    present = torch.unique(caption_ids)
    top_image = sims[:, present].argmax(dim=0)  # best image per caption
    t2i = (caption_ids[top_image] == present).float().mean().item()
    return {"image_to_text": i2t, "text_to_image": t2i}


_FRACTIONS = ("image_to_text", "text_to_image", "exact_among_all", "exact_among_held_out", "shape", "colour",
              "background")


def format_report(metrics: dict, indent: str = "  ") -> str:
    """Metrics as aligned ``name: value`` lines (fractions shown as percentages)."""
    lines = []
    for name, value in metrics.items():
        if isinstance(value, dict):
            lines.append(f"{indent}{name}:")
            lines.append(format_report(value, indent + "  "))
        elif isinstance(value, float) and ("accuracy" in name or name in _FRACTIONS):
            lines.append(f"{indent}{name}: {100 * value:.1f}%")
        else:
            lines.append(f"{indent}{name}: {value}")
    return "\n".join(lines)
