"""Tiny models built once per test session, saved the way real ones are, and a workflow runner.

Everything is saved with ``save_pretrained``/safetensors into a temporary models root laid out
like ComfyUI's ``models/`` folder, and then loaded only through the pack's loader nodes.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from imagetune.graph_runtime import ExecutionContext, NodeRegistry, Runtime

WORDS = ("a red green blue circle square triangle on background small large cat dog the of and with "
         "painting style oil bright dark").split()
WIDTH = 32  # hidden size of the tiny text encoders = cross-attention width of the tiny UNet


def word_level_tokenizer(bos="<s>", eos="</s>"):
    """A PreTrainedTokenizerFast over a WordLevel vocabulary, with start and end tokens."""
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    specials = ["<pad>", "<unk>", bos, eos]
    vocab = {w: i for i, w in enumerate(specials + list(WORDS))}
    core = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.Whitespace()
    core.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A {eos}", special_tokens=[(bos, vocab[bos]), (eos, vocab[eos])])
    return PreTrainedTokenizerFast(tokenizer_object=core, bos_token=bos, eos_token=eos,
                                   pad_token="<pad>", unk_token="<unk>")


def save_tokenizer(tokenizer, folder: Path) -> None:
    """Save so transformers 4 loads it too: PreTrainedTokenizerFast, not TokenizersBackend."""
    tokenizer.save_pretrained(folder)
    config_file = folder / "tokenizer_config.json"
    config = json.loads(config_file.read_text())
    config["tokenizer_class"] = "PreTrainedTokenizerFast"
    config.pop("backend", None)
    config_file.write_text(json.dumps(config, indent=2))


def tiny_clip(projection: bool):
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    torch.manual_seed(0)
    config = CLIPTextConfig(vocab_size=len(WORDS) + 4, hidden_size=WIDTH, intermediate_size=64,
                            num_hidden_layers=2, num_attention_heads=4, max_position_embeddings=77,
                            projection_dim=24, bos_token_id=2, eos_token_id=3, pad_token_id=0)
    return (CLIPTextModelWithProjection if projection else CLIPTextModel)(config).eval()


def tiny_encoder(kind: str):
    """A tiny BERT, T5 or GPT-2 of width WIDTH."""
    import transformers as tf

    torch.manual_seed(0)
    vocab = len(WORDS) + 4
    if kind == "bert":
        return tf.BertModel(tf.BertConfig(vocab_size=vocab, hidden_size=WIDTH, num_hidden_layers=1,
                                          num_attention_heads=2, intermediate_size=48,
                                          max_position_embeddings=160))
    if kind == "t5":
        return tf.T5EncoderModel(tf.T5Config(vocab_size=vocab, d_model=WIDTH, d_kv=8, d_ff=48, num_layers=1,
                                             num_heads=2, decoder_start_token_id=0))
    return tf.GPT2Model(tf.GPT2Config(vocab_size=vocab, n_embd=WIDTH, n_layer=1, n_head=2, n_positions=160))


def tiny_unet(context_width: int = WIDTH):
    from diffusers import UNet2DConditionModel

    torch.manual_seed(0)
    return UNet2DConditionModel(sample_size=8, in_channels=4, out_channels=4, layers_per_block=1,
                                block_out_channels=(32, 32), norm_num_groups=8,
                                down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
                                up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
                                cross_attention_dim=context_width, attention_head_dim=8)


def tiny_vae():
    from diffusers import AutoencoderKL

    torch.manual_seed(0)
    return AutoencoderKL(in_channels=3, out_channels=3, latent_channels=4, block_out_channels=(16, 16),
                         down_block_types=("DownEncoderBlock2D",) * 2, up_block_types=("UpDecoderBlock2D",) * 2,
                         layers_per_block=1, norm_num_groups=8, sample_size=16)


def save_tiny_pipeline(folder: Path, with_text_encoder: bool = False) -> None:
    """A StableDiffusionPipeline folder; without a text encoder unless asked."""
    from diffusers import DDIMScheduler, StableDiffusionPipeline

    text_encoder = tiny_clip(False) if with_text_encoder else None
    tokenizer = word_level_tokenizer() if with_text_encoder else None
    pipe = StableDiffusionPipeline(vae=tiny_vae(), text_encoder=text_encoder, tokenizer=tokenizer,
                                   unet=tiny_unet(), scheduler=DDIMScheduler(beta_schedule="scaled_linear", steps_offset=1,
                                                                             clip_sample=False),
                                   safety_checker=None, feature_extractor=None, requires_safety_checker=False)
    pipe.save_pretrained(folder, safe_serialization=True)
    if with_text_encoder:
        save_tokenizer(tokenizer, folder / "tokenizer")
        index = json.loads((folder / "model_index.json").read_text())
        index["tokenizer"] = ["transformers", "PreTrainedTokenizerFast"]
        (folder / "model_index.json").write_text(json.dumps(index, indent=2))


_RESNET = {"norm1": "in_layers.0", "conv1": "in_layers.2", "time_emb_proj": "emb_layers.1",
           "norm2": "out_layers.0", "conv2": "out_layers.3", "conv_shortcut": "skip_connection"}
_VAE_ATTENTION = {"group_norm": "norm", "to_q": "q", "to_k": "k", "to_v": "v", "to_out.0": "proj_out"}


def _ldm_unet_key(key: str, per_level: int, attention_levels: set[int]) -> str:
    """The original Stable Diffusion (LDM) name of a diffusers UNet2DConditionModel weight."""
    import re

    from diffusers.loaders.single_file_utils import DIFFUSERS_TO_LDM_MAPPING

    fixed = DIFFUSERS_TO_LDM_MAPPING["unet"]["layers"]
    if key in fixed:
        return fixed[key]

    def resnet(rest):
        head, _, tail = rest.partition(".")
        return f"{_RESNET[head]}.{tail}"

    if m := re.fullmatch(r"down_blocks\.(\d+)\.(resnets|attentions)\.(\d+)\.(.+)", key):
        i, kind, j, rest = int(m[1]), m[2], int(m[3]), m[4]
        n = 1 + i * (per_level + 1) + j
        return f"input_blocks.{n}.0.{resnet(rest)}" if kind == "resnets" else f"input_blocks.{n}.1.{rest}"
    if m := re.fullmatch(r"down_blocks\.(\d+)\.downsamplers\.0\.conv\.(.+)", key):
        return f"input_blocks.{(int(m[1]) + 1) * (per_level + 1)}.0.op.{m[2]}"
    if m := re.fullmatch(r"mid_block\.(resnets|attentions)\.(\d+)\.(.+)", key):
        slot = {("resnets", 0): 0, ("attentions", 0): 1, ("resnets", 1): 2}[(m[1], int(m[2]))]
        return f"middle_block.{slot}.{resnet(m[3]) if m[1] == 'resnets' else m[3]}"
    if m := re.fullmatch(r"up_blocks\.(\d+)\.(resnets|attentions)\.(\d+)\.(.+)", key):
        i, kind, j, rest = int(m[1]), m[2], int(m[3]), m[4]
        n = i * (per_level + 1) + j
        return f"output_blocks.{n}.0.{resnet(rest)}" if kind == "resnets" else f"output_blocks.{n}.1.{rest}"
    if m := re.fullmatch(r"up_blocks\.(\d+)\.upsamplers\.0\.conv\.(.+)", key):
        i = int(m[1])
        slot = 2 if i in attention_levels else 1
        return f"output_blocks.{i * (per_level + 1) + per_level}.{slot}.conv.{m[2]}"
    raise KeyError(key)


def _ldm_vae_key(key: str, levels: int) -> str:
    """The original Stable Diffusion (LDM) name of a diffusers AutoencoderKL weight."""
    import re

    from diffusers.loaders.single_file_utils import DIFFUSERS_TO_LDM_MAPPING

    fixed = DIFFUSERS_TO_LDM_MAPPING["vae"]
    if key in fixed:
        return fixed[key]
    key = key.replace("conv_shortcut", "nin_shortcut")
    if m := re.fullmatch(r"(encoder|decoder)\.mid_block\.resnets\.(\d)\.(.+)", key):
        return f"{m[1]}.mid.block_{int(m[2]) + 1}.{m[3]}"
    if m := re.fullmatch(r"(encoder|decoder)\.mid_block\.attentions\.0\.(group_norm|to_q|to_k|to_v|to_out\.0)\.(.+)", key):
        return f"{m[1]}.mid.attn_1.{_VAE_ATTENTION[m[2]]}.{m[3]}"
    if m := re.fullmatch(r"encoder\.down_blocks\.(\d+)\.resnets\.(\d+)\.(.+)", key):
        return f"encoder.down.{m[1]}.block.{m[2]}.{m[3]}"
    if m := re.fullmatch(r"encoder\.down_blocks\.(\d+)\.downsamplers\.0\.conv\.(.+)", key):
        return f"encoder.down.{m[1]}.downsample.conv.{m[2]}"
    if m := re.fullmatch(r"decoder\.up_blocks\.(\d+)\.resnets\.(\d+)\.(.+)", key):
        return f"decoder.up.{levels - 1 - int(m[1])}.block.{m[2]}.{m[3]}"
    if m := re.fullmatch(r"decoder\.up_blocks\.(\d+)\.upsamplers\.0\.conv\.(.+)", key):
        return f"decoder.up.{levels - 1 - int(m[1])}.upsample.conv.{m[2]}"
    raise KeyError(key)


def ldm_checkpoint(unet, vae) -> dict:
    """One original-layout Stable Diffusion state dict (what .ckpt/.safetensors checkpoints hold)."""
    per_level = unet.config.layers_per_block
    attention_levels = {i for i, t in enumerate(unet.config.up_block_types) if "CrossAttn" in t}
    out = {f"model.diffusion_model.{_ldm_unet_key(k, per_level, attention_levels)}": v.clone()
           for k, v in unet.state_dict().items()}
    levels = len(vae.config.block_out_channels)
    for key, value in vae.state_dict().items():
        ldm = _ldm_vae_key(key, levels)
        if ".mid.attn_1." in ldm and ldm.endswith(".weight") and value.dim() == 2:
            value = value[:, :, None, None]  # LDM's attention projections are 1x1 convolutions
        out[f"first_stage_model.{ldm}"] = value.clone()
    return out


def save_tiny_sdxl(folder: Path) -> None:
    """A StableDiffusionXLPipeline folder with no text encoders: pooled width 32, context width 32."""
    from diffusers import EulerDiscreteScheduler, StableDiffusionXLPipeline, UNet2DConditionModel

    torch.manual_seed(0)
    unet = UNet2DConditionModel(sample_size=8, in_channels=4, out_channels=4, layers_per_block=1,
                                block_out_channels=(32, 32), norm_num_groups=8,
                                down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
                                up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"), attention_head_dim=8,
                                cross_attention_dim=WIDTH, use_linear_projection=True,
                                addition_embed_type="text_time", addition_time_embed_dim=8,
                                projection_class_embeddings_input_dim=WIDTH + 6 * 8)
    pipe = StableDiffusionXLPipeline(vae=tiny_vae(), text_encoder=None, text_encoder_2=None, tokenizer=None,
                                     tokenizer_2=None, unet=unet,
                                     scheduler=EulerDiscreteScheduler(beta_schedule="scaled_linear",
                                                                      steps_offset=1))
    pipe.save_pretrained(folder, safe_serialization=True)


def save_tiny_gan(folder: Path, name: str = "tiny", z_dim: int = 8, size: int = 16) -> Path:
    from safetensors.torch import save_file

    from imagetune.ops.gan import DCGANGenerator

    torch.manual_seed(0)
    config = {"z_dim": z_dim, "image_size": size, "channels": 3, "base_channels": 4}
    model = DCGANGenerator(**config)
    folder.mkdir(parents=True, exist_ok=True)
    save_file(model.state_dict(), str(folder / f"{name}.safetensors"))
    (folder / f"{name}.json").write_text(json.dumps(config))
    return folder / f"{name}.safetensors"


@pytest.fixture(scope="session")
def models_root(tmp_path_factory) -> Path:
    """A models root with tiny encoders (text_encoders/), pipelines (diffusers/) and a GAN (gan/)."""
    root = tmp_path_factory.mktemp("models")
    for name, projection in (("tiny-clip", False), ("tiny-clip-proj", True)):
        tiny_clip(projection).save_pretrained(root / "text_encoders" / name)
        save_tokenizer(word_level_tokenizer(), root / "text_encoders" / name)
    for kind in ("bert", "t5", "gpt2"):
        tiny_encoder(kind).save_pretrained(root / "text_encoders" / f"tiny-{kind}")
        save_tokenizer(word_level_tokenizer(), root / "text_encoders" / f"tiny-{kind}")
    save_tiny_pipeline(root / "diffusers" / "tiny-sd")
    save_tiny_pipeline(root / "diffusers" / "tiny-sd-with-encoder", with_text_encoder=True)
    save_tiny_sdxl(root / "diffusers" / "tiny-sdxl")
    save_tiny_gan(root / "gan")
    return root


@pytest.fixture
def runtime(keep_node):
    """A Runtime with the pack's nodes and a test sink node."""
    from imagetune.nodes import ALL_NODES

    return Runtime(NodeRegistry(list(ALL_NODES) + [keep_node]))


@pytest.fixture
def ctx_for(tmp_path, models_root):
    """Make an ExecutionContext on the CPU over the tiny models root (and extra roots if given)."""
    def make(*extra_roots, **kw):
        return ExecutionContext(device="cpu", output_dir=tmp_path / "out", input_dir=tmp_path / "in",
                                models_dirs=[models_root, *extra_roots], **kw)
    return make


@pytest.fixture(autouse=True)
def _fresh_model_cache():
    """Each test starts with an empty model cache, the hub offline and one torch thread.

    The cache is emptied without a garbage collection (a full gc costs about a second here);
    one thread keeps the tiny models fast on a machine shared with other jobs.
    """
    from imagetune.ops.model_cache import MODELS

    MODELS.entries.clear()
    MODELS.slots.clear()
    MODELS.stats.__init__()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    mp = pytest.MonkeyPatch()
    mp.setenv("HF_HUB_OFFLINE", "1")
    yield
    mp.undo()
    torch.set_num_threads(threads)
