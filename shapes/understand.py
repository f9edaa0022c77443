"""The prompt-understanding model: MiniLM token states in, one choice per slot (``shapes/slots.py``) out.

``PromptReader`` reads exactly the conditioning the Encode Text node makes from the frozen MiniLM
(float [B, T, 384], T a multiple of 77): a LayerNorm and a projection to ``dim``, ``layers``
transformer encoder layers over the tokens, then one learnt query per slot attends over them
(attention pooling) and a linear head per slot gives that slot's logits. The padding after a
prompt is not masked (a CONDITIONING carries no mask); the model learns to look past it.

``read(model, states)`` decodes the most likely class of each slot into ``Reading``s, whose
descriptions the Understand Prompt node and the evaluation both write as the generator's canonical
captions (and, for two or three things, as regional conditioning: ``shapes/regions.py``);
``save_pretrained`` / ``from_pretrained`` write and read a folder of ``prompt_reader.safetensors``
(float16) and ``config.json`` (architecture, slots, the text encoder it reads, training facts). No
pickle. The weights include ``start_state``, the mean MiniLM state of the start token, by which
``not_minilm`` tells token states of another encoder (or none) from MiniLM's.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from torch import nn

from .reading import Reading
from .slots import SLOTS, decode

FORMAT = "imagetune-prompt-reader"
WEIGHTS, CONFIG = "prompt_reader.safetensors", "config.json"
#: what the model was trained to read: all-MiniLM-L6-v2's last hidden states in 77-token windows
MINILM = {"model_type": "bert", "hidden_size": 384, "num_hidden_layers": 6, "vocab_size": 30522}
WINDOW = 77
#: least cosine similarity of a window's first state to MiniLM's mean start-token state: MiniLM's
#: are 0.65-0.88 (prompts, empty windows, long and non-English text), another map of them ~0
START_SIMILARITY = 0.4


@dataclass
class ReaderConfig:
    """Architecture and provenance of a PromptReader (saved as config.json)."""

    width: int = 384          # input token width (MiniLM's hidden size)
    dim: int = 128
    layers: int = 2
    heads: int = 4
    ff: int = 512
    dropout: float = 0.1
    window: int = WINDOW      # the conditioning's token length is a multiple of this
    slots: dict = field(default_factory=lambda: {k: list(v) for k, v in SLOTS.items()})
    text_encoder: dict = field(default_factory=lambda: dict(MINILM))
    training: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        """The config.json content."""
        return {"format": FORMAT, **asdict(self)}

    @classmethod
    def from_json(cls, data: dict) -> "ReaderConfig":
        """Checked against this code's slots; ValueError naming what does not fit."""
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            found = data.get("format") if isinstance(data, dict) else data
            raise ValueError(f"config.json: expected format {FORMAT!r}, got {found!r}")
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        config = cls(**known)
        expected = {k: list(v) for k, v in SLOTS.items()}
        if config.slots != expected:
            raise ValueError(f"config.json: slots {config.slots} are not the slots this code decodes ({expected})")
        return config


class PromptReader(nn.Module):
    """States float [B, T, width] -> {slot: logits [B, classes]} (see the module docstring)."""

    def __init__(self, config: ReaderConfig):
        super().__init__()
        self.config = config
        self.norm = nn.LayerNorm(config.width)
        self.project = nn.Linear(config.width, config.dim)
        layer = nn.TransformerEncoderLayer(config.dim, config.heads, config.ff, config.dropout, batch_first=True,
                                           norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, config.layers, enable_nested_tensor=False)
        self.queries = nn.Parameter(torch.randn(len(config.slots), config.dim) * 0.02)
        self.pool = nn.MultiheadAttention(config.dim, config.heads, dropout=config.dropout, batch_first=True)
        self.out_norm = nn.LayerNorm(config.dim)
        self.heads = nn.ModuleDict({name: nn.Linear(config.dim, len(classes))
                                    for name, classes in config.slots.items()})
        self.register_buffer("start_state", torch.zeros(config.width))  # set from the training states

    def forward(self, states: torch.Tensor) -> dict[str, torch.Tensor]:
        tokens = self.encoder(self.project(self.norm(states)))
        queries = self.queries.unsqueeze(0).expand(states.shape[0], -1, -1)
        pooled = self.out_norm(self.pool(queries, tokens, tokens, need_weights=False)[0])
        return {name: head(pooled[:, i]) for i, (name, head) in enumerate(self.heads.items())}

    def save_pretrained(self, folder) -> None:
        """Write ``model.safetensors`` (float16) and ``config.json`` into ``folder``."""
        from safetensors.torch import save_file
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        save_file({k: v.detach().to("cpu", torch.float16).contiguous() for k, v in self.state_dict().items()},
                  folder / WEIGHTS)
        (folder / CONFIG).write_text(json.dumps(self.config.to_json(), indent=2) + "\n")

    @classmethod
    def from_pretrained(cls, folder, device: str | torch.device = "cpu") -> "PromptReader":
        """The model saved in ``folder``, float32, in eval mode on ``device``; ValueError when it is not one."""
        from safetensors.torch import load_file
        folder = Path(folder)
        for name in (WEIGHTS, CONFIG):
            if not (folder / name).is_file():
                raise ValueError(f"{name}: expected it in {folder} (a prompt-reader folder holds {WEIGHTS} and "
                                 f"{CONFIG})")
        try:
            data = json.loads((folder / CONFIG).read_text())
        except (OSError, ValueError) as exc:
            raise ValueError(f"config.json: not readable JSON ({exc})") from exc
        model = cls(ReaderConfig.from_json(data))
        weights = {k: v.float() for k, v in load_file(folder / WEIGHTS).items()}
        missing, unexpected = model.load_state_dict(weights, strict=False)
        if missing or unexpected:
            raise ValueError(f"{WEIGHTS}: does not fit config.json (missing {missing[:3]}, "
                             f"unexpected {unexpected[:3]})")
        return model.eval().to(device)


def not_minilm(model: PromptReader, states: torch.Tensor) -> list[int]:
    """The rows of ``states`` [B, T, width] whose 77-token windows do not start with a MiniLM start state."""
    starts = states[:, ::model.config.window].float()
    similar = torch.nn.functional.cosine_similarity(starts, model.start_state.to(starts.device), dim=-1)
    return [i for i, worst in enumerate(similar.min(1).values.tolist()) if not worst >= START_SIMILARITY]  # NaN too


@torch.no_grad()
def read(model: PromptReader, states: torch.Tensor) -> list[Reading]:
    """The Reading of each row of ``states`` float [B, T, width]: the most likely class of every slot."""
    logits = model(states.to(next(model.parameters()).device, torch.float32))
    choices = {name: scores.argmax(-1).tolist() for name, scores in logits.items()}
    return [decode({name: picked[i] for name, picked in choices.items()}) for i in range(states.shape[0])]
