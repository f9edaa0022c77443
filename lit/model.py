"""A LiT model: locked image tower, frozen text encoder, trainable text head and temperature.

Saved as a folder: ``config.json`` (names the towers and the head's shape) and
``head.safetensors`` (the head, the log temperature and the image-feature centre).
"""
from __future__ import annotations

import json
from collections import OrderedDict
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from .towers import load_image_tower, load_text_encoder

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "head.safetensors"
FORMAT = "imagetune-lit"
_TEXT_CACHE_SIZE = 4096


def head_heads(width: int) -> int:
    """Attention heads for a head of ``width``: the most of 12, 8, 6, 4, 2 with >= 32 dims each."""
    return next((h for h in (12, 8, 6, 4, 2) if width % h == 0 and width // h >= 32), 1)


class TextHead(nn.Module):
    """Trainable head on frozen token states: transformer layer(s), masked mean, linear projection.

    ``forward(states [B, T, W] float, mask [B, T] 0/1) -> [B, embed_dim]`` L2-normalised.
    """

    def __init__(self, width: int, embed_dim: int, layers: int = 1, dropout: float = 0.0):
        super().__init__()
        self.width, self.embed_dim = width, embed_dim
        self.blocks = nn.ModuleList(
            nn.TransformerEncoderLayer(width, head_heads(width), 4 * width, dropout, activation="gelu",
                                       batch_first=True, norm_first=True)
            for _ in range(layers))
        self.norm = nn.LayerNorm(width)
        self.proj = nn.Linear(width, embed_dim)

    def forward(self, states: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        padding = mask == 0
        h = states
        for block in self.blocks:
            h = block(h, src_key_padding_mask=padding)
        weights = mask.unsqueeze(-1).to(h.dtype)
        pooled = (h * weights).sum(1) / weights.sum(1).clamp(min=1.0)  # padded slots never count
        return F.normalize(self.proj(self.norm(pooled)), dim=-1)


class LiTModel(nn.Module):
    """Image and text embeddings in one space; ``similarity`` gives cosines, ``logits`` scales them."""

    def __init__(self, image_tower: nn.Module, text_encoder: nn.Module, head: TextHead, config: dict,
                 logit_scale: float = 2.659, image_center: torch.Tensor | None = None):
        super().__init__()
        check_widths(image_tower.dim, text_encoder.width, head)
        self.image_tower, self.text_encoder, self.head = image_tower, text_encoder, head
        self.config = config
        self.logit_scale = nn.Parameter(torch.tensor(float(logit_scale)))
        center = torch.zeros(image_tower.dim) if image_center is None else image_center.float()
        self.register_buffer("image_center", center)
        self._text_cache: OrderedDict[str, torch.Tensor] = OrderedDict()

    @property
    def device(self) -> torch.device:
        return self.image_center.device

    def _apply(self, fn, *args, **kwargs):
        self._text_cache.clear()  # cached embeddings live on the old device
        return super()._apply(fn, *args, **kwargs)

    def adapt_image_features(self, features: torch.Tensor) -> torch.Tensor:
        """Tower features [B, D] -> centred, L2-normalised embeddings [B, D] (a fixed, locked map)."""
        return F.normalize(features - self.image_center.to(features), dim=-1)

    @torch.no_grad()
    def encode_images(self, images: torch.Tensor, batch_size: int = 32, progress=None) -> torch.Tensor:
        """IMAGE [B, H, W, C] 0..1 -> image embeddings [B, D] float32 on the model's device."""
        chunks = []
        for start in range(0, images.shape[0], batch_size):
            chunks.append(self.image_tower(images[start:start + batch_size].to(self.device)))
            if progress is not None:
                progress(min(start + batch_size, images.shape[0]), images.shape[0])
        return self.adapt_image_features(torch.cat(chunks) if chunks else torch.zeros(0, self.image_tower.dim,
                                                                                       device=self.device))

    @torch.no_grad()
    def encode_texts(self, captions: list[str]) -> torch.Tensor:
        """Captions -> text embeddings [N, D] float32; embeddings of recent captions are cached."""
        missing = list(dict.fromkeys(c for c in captions if c not in self._text_cache))
        if missing:
            was_training = self.head.training
            self.head.eval()
            embeds = self.head(*self.text_encoder(missing))
            self.head.train(was_training)
            for caption, embed in zip(missing, embeds):
                self._text_cache[caption] = embed
        for caption in captions:
            self._text_cache.move_to_end(caption)
        rows = [self._text_cache[c] for c in captions]
        while len(self._text_cache) > _TEXT_CACHE_SIZE:
            self._text_cache.popitem(last=False)
        return torch.stack(rows) if rows else torch.zeros(0, self.head.embed_dim, device=self.device)

    def similarity(self, images: torch.Tensor, captions: list[str]) -> torch.Tensor:
        """Cosine similarity [B, N] of every image with every caption."""
        return self.encode_images(images) @ self.encode_texts(captions).T

    def logits(self, similarity: torch.Tensor) -> torch.Tensor:
        """Similarities scaled by the learned inverse temperature (softmax-ready)."""
        return similarity * self.logit_scale.exp()

    def save(self, folder: Path | str, extra: dict | None = None) -> Path:
        """Write ``config.json`` and ``head.safetensors`` as the new folder ``folder``; returns it.

        Both files are written into a hidden temp folder beside it, which is then renamed into
        place: a rename onto a folder that is not empty fails, so an earlier model (or a run
        saving the same name at the same time) is never replaced or mixed with this one.

        Raises:
            ModelExistsError: ``folder`` exists and is not empty.
        """
        import secrets
        import shutil

        from safetensors.torch import save_file

        folder = Path(folder)
        check_new_folder(folder)
        folder.parent.mkdir(parents=True, exist_ok=True)
        temp = folder.with_name(f".{folder.name}.{secrets.token_hex(4)}.part")
        temp.mkdir()
        try:
            tensors = {f"head.{k}": v.detach().cpu().contiguous() for k, v in self.head.state_dict().items()}
            tensors["logit_scale"] = self.logit_scale.detach().cpu().reshape(1)
            tensors["image_center"] = self.image_center.detach().cpu()
            save_file(tensors, str(temp / WEIGHTS_FILE))
            config = dict(self.config, **(extra or {}))
            (temp / CONFIG_FILE).write_text(json.dumps(config, indent=2) + "\n")
            try:
                temp.rename(folder)  # replaces only an empty folder
            except OSError as exc:
                if folder.exists():
                    raise ModelExistsError(folder) from exc
                raise
        except BaseException:
            shutil.rmtree(temp, ignore_errors=True)
            raise
        return folder


class ModelExistsError(FileExistsError, ValueError):
    """The folder a tuned model is to be saved as already holds files (a ValueError for callers' input errors)."""

    def __init__(self, folder: Path):
        super().__init__(f"name: {folder} already exists and is not empty; a tuned LiT model never replaces "
                         "files: choose a new name (folder) or remove that one")
        self.folder = Path(folder)


def check_new_folder(folder: Path | str) -> None:
    """Raise ModelExistsError unless ``folder`` is missing or an empty folder (checked before tuning starts)."""
    folder = Path(folder)
    if folder.is_symlink() or folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        raise ModelExistsError(folder)


def check_widths(image_dim: int, text_width: int, head: TextHead) -> None:
    """Raise ValueError when the head does not fit between the text encoder and the image tower."""
    if head.width != text_width:
        raise ValueError(f"text tower width: the head expects token states of width {head.width}, "
                         f"but the text encoder gives {text_width}")
    if head.embed_dim != image_dim:
        raise ValueError(f"image tower width: the head projects to {head.embed_dim} dims, "
                         f"but the image tower gives {image_dim}")


def build_config(image_spec: dict, text_spec: dict, width: int, embed_dim: int, layers: int = 1,
                 max_tokens: int = 64) -> dict:
    """The JSON config of a LiT model: which towers, and the head's shape."""
    return {"format": FORMAT, "version": 1, "image_tower": image_spec, "text_tower": text_spec,
            "head": {"width": width, "embed_dim": embed_dim, "layers": layers, "max_tokens": max_tokens}}


def read_config(folder: Path) -> dict:
    """The parsed ``config.json`` of a saved model, with clear errors for missing or foreign files."""
    path = Path(folder) / CONFIG_FILE
    if not path.is_file():
        raise FileNotFoundError(f"LiT model: expected {path} (a folder with {CONFIG_FILE} and {WEIGHTS_FILE})")
    config = json.loads(path.read_text())
    if config.get("format") != FORMAT:
        raise ValueError(f"LiT model: {path} has format {config.get('format')!r}, expected {FORMAT!r}")
    return config


def load_lit_model(folder: Path | str, search: list[Path] = ()) -> LiTModel:
    """Rebuild a saved LiT model on the CPU: towers from the config, head and temperature from safetensors.

    ``search`` lists folders in which relative tower sources are looked up (besides ``folder``).
    """
    from safetensors.torch import load_file

    folder = Path(folder)
    config = read_config(folder)
    weights = folder / WEIGHTS_FILE
    if not weights.is_file():
        raise FileNotFoundError(f"LiT model: expected {weights}")
    roots = [folder, *search]
    shape = config["head"]
    text_encoder = load_text_encoder(config["text_tower"], roots, int(shape.get("max_tokens", 64)))
    image_tower = load_image_tower(config["image_tower"], roots)
    head = TextHead(int(shape["width"]), int(shape["embed_dim"]), int(shape.get("layers", 1)))
    model = LiTModel(image_tower, text_encoder, head, config)  # checks the widths before any weight loads
    tensors = load_file(str(weights))
    head.load_state_dict({k[len("head."):]: v for k, v in tensors.items() if k.startswith("head.")}, strict=True)
    with torch.no_grad():
        model.logit_scale.copy_(tensors["logit_scale"].reshape(()))
        model.image_center.copy_(tensors["image_center"])
    return model.eval().requires_grad_(False)
