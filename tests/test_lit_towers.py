"""Any transformers vision model or text encoder can be a LiT tower (tiny ones built here, saved, reloaded)."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from imagetune.lit.model import LiTModel, TextHead, build_config, load_lit_model
from imagetune.lit.towers import TextEncoder, load_image_tower, resolve_source
from imagetune.lit.tune import TuneSettings, fit, tower_features


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    """<root>/vit (ViT + processor), <root>/clip (CLIP dual encoder), <root>/bert (BERT + MiniLM's tokenizer)."""
    from transformers import (AutoTokenizer, BertConfig, BertModel, CLIPConfig, CLIPModel, ViTConfig,
                              ViTImageProcessor, ViTModel)

    root = tmp_path_factory.mktemp("towers")
    torch.manual_seed(0)
    vit = ViTConfig(image_size=32, patch_size=8, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                    intermediate_size=64)
    ViTModel(vit).save_pretrained(root / "vit")
    ViTImageProcessor(image_mean=[0.5] * 3, image_std=[0.25] * 3, size={"height": 32, "width": 32}).save_pretrained(root / "vit")
    clip = CLIPConfig(text_config={"hidden_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2,
                                   "intermediate_size": 64, "vocab_size": 99},
                      vision_config={"hidden_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2,
                                     "intermediate_size": 64, "image_size": 32, "patch_size": 8},
                      projection_dim=24)
    CLIPModel(clip).save_pretrained(root / "clip")
    BertModel(BertConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64)
              ).save_pretrained(root / "bert")
    AutoTokenizer.from_pretrained(resolve_source("minilm")).save_pretrained(root / "bert")
    return root


def images(n: int = 3) -> torch.Tensor:
    return torch.rand(n, 40, 40, 3, generator=torch.Generator().manual_seed(1))


def test_vit_tower_gives_its_pooled_feature_with_the_processor_statistics(folders):
    from transformers import ViTModel

    tower = load_image_tower({"kind": "transformers", "source": str(folders / "vit")})
    x = F.interpolate(images().permute(0, 3, 1, 2), size=(32, 32), mode="bicubic", antialias=True, align_corners=False)
    reference = ViTModel.from_pretrained(folders / "vit")(pixel_values=(x - 0.5) / 0.25).pooler_output
    assert tower.dim == 32
    torch.testing.assert_close(tower(images()), F.normalize(reference, dim=-1), atol=1e-5, rtol=1e-5)


def test_clip_checkpoint_uses_its_projected_image_embedding(folders):
    from transformers import CLIPModel

    tower = load_image_tower({"kind": "transformers", "source": "clip"}, [folders])  # found in a search root
    assert tower.dim == 24
    x = F.interpolate(images().permute(0, 3, 1, 2), size=(32, 32), mode="bicubic", antialias=True, align_corners=False)
    x = (x - torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)) / torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    out = CLIPModel.from_pretrained(folders / "clip").get_image_features(pixel_values=x)
    reference = out if isinstance(out, torch.Tensor) else out.pooler_output
    torch.testing.assert_close(tower(images()), F.normalize(reference, dim=-1), atol=1e-5, rtol=1e-5)


def test_any_encoder_pair_tunes_saves_and_reloads(folders, tmp_path):
    image_tower = load_image_tower({"kind": "transformers", "source": "vit"}, [folders])
    text_encoder = TextEncoder(str(folders / "bert"))
    config = build_config({"kind": "transformers", "source": "vit"}, {"kind": "transformers", "source": "bert"},
                          text_encoder.width, image_tower.dim)
    model = LiTModel(image_tower, text_encoder, TextHead(text_encoder.width, image_tower.dim), config)
    captions = ["a cat", "a dog", "a red car", "the sea", "a cat", "a tree"]
    losses = fit(model, tower_features(model, images(6)), captions, TuneSettings(steps=3, batch_size=4, seed=1))
    assert len(losses) == 3 and all(loss > 0 for loss in losses)
    model.save(tmp_path / "head")
    again = load_lit_model(tmp_path / "head", [folders])  # relative tower sources resolve in the search roots
    model._text_cache.clear()
    # identical up to float rounding: multi-threaded CPU kernels may sum in another order (1 ulp)
    torch.testing.assert_close(again.similarity(images(2), captions[:3]), model.similarity(images(2), captions[:3]),
                               atol=1e-6, rtol=0)


def test_mismatched_tower_widths_are_named(folders):
    image_tower = load_image_tower({"kind": "transformers", "source": str(folders / "vit")})
    text_encoder = TextEncoder(str(folders / "bert"))
    with pytest.raises(ValueError, match="text tower width: the head expects token states of width 384"):
        LiTModel(image_tower, text_encoder, TextHead(384, 32), {})
    with pytest.raises(ValueError, match="image tower width: the head projects to 1280 dims, but the image tower gives 32"):
        LiTModel(image_tower, text_encoder, TextHead(32, 1280), {})


def test_unknown_tower_kinds_and_missing_folders_are_errors(tmp_path):
    with pytest.raises(ValueError, match="image tower kind"):
        load_image_tower({"kind": "resnet"})
    with pytest.raises(FileNotFoundError, match="tower source"):
        resolve_source(str(tmp_path / "missing"))
