"""Loader nodes: every encoder kind, pipelines and schedulers, the GAN, the cache, and refusals."""
from __future__ import annotations

import gc
import json
import os
import weakref

import pytest
import torch

from imagetune.graph_runtime import NodeInputError
from imagetune.nodes.loaders import LoadGANNode, LoadPipelineNode, LoadTextEncoderNode
from imagetune.ops.model_cache import MODELS


def load_encoder(ctx, name, node_id="1"):
    return LoadTextEncoderNode().run(ctx.for_node(node_id), name, "auto", "auto")[0]


def load_pipeline(ctx, name, scheduler="default", node_id="2", **kw):
    options = dict(dtype="auto", device="auto", cpu_offload=False, attention_slicing=False, config="")
    options.update(kw)
    return LoadPipelineNode().run(ctx.for_node(node_id), name, scheduler, **options)[0]


@pytest.mark.parametrize("name, cls", [
    ("tiny-clip", "CLIPTextModel"), ("tiny-clip-proj", "CLIPTextModelWithProjection"),
    ("tiny-bert", "BertModel"), ("tiny-t5", "T5EncoderModel"), ("tiny-gpt2", "GPT2Model"),
    ("diffusers/tiny-sd-with-encoder", "CLIPTextModel"),
])
def test_text_encoder_of_each_kind_loads_with_its_tokenizer(ctx_for, name, cls):
    handle = load_encoder(ctx_for(), name)
    assert type(handle.model).__name__ == cls
    assert handle.width == 32 and handle.dtype == torch.float32 and handle.device == "cpu"
    ids = handle.tokenizer("red circle")["input_ids"]
    assert handle.tokenizer.convert_ids_to_tokens(ids) == ["<s>", "red", "circle", "</s>"]
    assert not handle.model.training


def test_minilm_is_the_offline_default(ctx_for):
    handle = load_encoder(ctx_for(), "minilm")
    assert type(handle.model).__name__ == "BertModel" and handle.width == 384


def test_saved_tokenizer_names_a_class_transformers_4_knows(models_root):
    config = json.loads((models_root / "text_encoders/tiny-clip/tokenizer_config.json").read_text())
    index = json.loads((models_root / "diffusers/tiny-sd-with-encoder/model_index.json").read_text())
    assert config["tokenizer_class"] == "PreTrainedTokenizerFast" and "backend" not in config
    assert index["tokenizer"] == ["transformers", "PreTrainedTokenizerFast"]


def test_pipeline_without_text_encoder_loads_by_name_from_any_root(ctx_for, models_root, tmp_path):
    import shutil

    shutil.copytree(models_root / "diffusers/tiny-sd", tmp_path / "pack-models/imagetune-shapes")
    handle = load_pipeline(ctx_for(tmp_path / "pack-models"), "imagetune-shapes")
    assert type(handle.pipe).__name__ == "StableDiffusionPipeline"
    assert handle.pipe.text_encoder is None and handle.pipe.tokenizer is None
    assert handle.pipe.safety_checker is None
    assert handle.context_width == 32 and handle.dtype == torch.float32 and not handle.takes_pooled


def test_a_pipelines_own_text_encoder_is_not_loaded_twice(ctx_for):
    handle = load_pipeline(ctx_for(), "tiny-sd-with-encoder")
    assert handle.pipe.text_encoder is None and handle.pipe.tokenizer is None
    encoder = load_encoder(ctx_for(), "diffusers/tiny-sd-with-encoder")
    assert type(encoder.model).__name__ == "CLIPTextModel"  # the text-encode node's copy


@pytest.mark.parametrize("scheduler, cls", [
    ("DDIM", "DDIMScheduler"), ("Euler ancestral", "EulerAncestralDiscreteScheduler"),
    ("DPM++ 2M Karras", "DPMSolverMultistepScheduler"), ("UniPC", "UniPCMultistepScheduler"),
    ("PNDM", "PNDMScheduler"), ("LMS", "LMSDiscreteScheduler"),
])
def test_scheduler_choice_keeps_the_schedule_and_leaves_the_cached_pipeline_alone(ctx_for, scheduler, cls):
    base = load_pipeline(ctx_for(), "tiny-sd")
    handle = load_pipeline(ctx_for(), "tiny-sd", scheduler)
    assert type(handle.pipe.scheduler).__name__ == cls
    assert handle.pipe.unet is base.pipe.unet  # weights are shared, not reloaded
    assert MODELS.stats.loads == 1
    for key in ("beta_schedule", "beta_start", "beta_end", "prediction_type", "num_train_timesteps"):
        assert handle.pipe.scheduler.config[key] == base.pipe.scheduler.config[key]
    if scheduler == "DPM++ 2M Karras":
        assert handle.pipe.scheduler.config.use_karras_sigmas
    assert type(base.pipe.scheduler).__name__ == "DDIMScheduler"
    assert base.pipe.config["scheduler"][1] == "DDIMScheduler"


def test_default_scheduler_is_the_folders_own(ctx_for):
    assert type(load_pipeline(ctx_for(), "tiny-sd").pipe.scheduler).__name__ == "DDIMScheduler"


def test_same_model_twice_loads_once_and_a_changed_name_frees_the_old(ctx_for):
    ctx = ctx_for()
    first = load_encoder(ctx, "tiny-clip")
    assert load_encoder(ctx, "tiny-clip") is first
    assert load_encoder(ctx, "tiny-clip", node_id="9") is first  # another node shares it
    assert (MODELS.stats.loads, MODELS.stats.hits) == (1, 2)
    gone = weakref.ref(first.model)
    load_encoder(ctx, "tiny-bert", node_id="9")
    assert MODELS.stats.releases == 0  # node 1 still holds tiny-clip
    load_encoder(ctx, "tiny-bert")
    del first
    gc.collect()
    assert MODELS.stats.releases == 1 and gone() is None
    assert MODELS.stats.loads == 2


def test_editing_a_file_on_disk_loads_it_again(ctx_for, tmp_path, models_root):
    import shutil

    root = tmp_path / "edit"
    shutil.copytree(models_root / "gan", root / "gan")
    ctx = ctx_for().__class__(device="cpu", models_dirs=[root])
    first = LoadGANNode().run(ctx.for_node("3"), "tiny.safetensors", "auto")[0]
    before = LoadGANNode.fingerprint(ctx, gan_name="tiny.safetensors")
    config = json.loads((root / "gan/tiny.json").read_text())
    os.utime(root / "gan/tiny.safetensors", ns=(1, 1))
    assert LoadGANNode.fingerprint(ctx, gan_name="tiny.safetensors") != before
    second = LoadGANNode().run(ctx.for_node("3"), "tiny.safetensors", "auto")[0]
    assert second is not first and MODELS.stats.loads == 2 and second.z_dim == config["z_dim"]


def test_gan_loads_strictly_from_safetensors_and_json(ctx_for, models_root):
    from safetensors.torch import load_file

    gan = LoadGANNode().run(ctx_for().for_node("3"), "tiny.safetensors", "auto")[0]
    saved = load_file(str(models_root / "gan/tiny.safetensors"))
    assert gan.z_dim == 8 and gan.model.image_size == 16
    assert saved.keys() == gan.model.state_dict().keys()
    for key, value in gan.model.state_dict().items():
        assert torch.equal(value, saved[key]), key


@pytest.mark.parametrize("change, message", [
    ({"z_dim": 9}, "does not fit the config"),
    ({"colour": 1}, "unknown"),
])
def test_gan_with_a_wrong_config_is_refused(ctx_for, models_root, tmp_path, change, message):
    import shutil

    shutil.copytree(models_root / "gan", tmp_path / "bad" / "gan")
    config_file = tmp_path / "bad/gan/tiny.json"
    config_file.write_text(json.dumps({**json.loads(config_file.read_text()), **change}))
    with pytest.raises(NodeInputError, match=message) as err:
        LoadGANNode().run(ctx_for().__class__(device="cpu", models_dirs=[tmp_path / "bad"]).for_node("3"),
                          "tiny.safetensors", "auto")
    assert err.value.field == "gan_name"


@pytest.mark.parametrize("loader, name", [
    (load_encoder, "no-such-encoder"), (load_pipeline, "no-such-pipeline"),
    (load_encoder, "someone/some-encoder"),  # a hub id, but the hub is offline
])
def test_missing_model_is_a_clear_error(ctx_for, loader, name):
    with pytest.raises(NodeInputError, match="was not found") as err:
        loader(ctx_for(), name)
    assert name in str(err.value)


@pytest.mark.parametrize("name", ["../tiny-sd", "diffusers/../../x", "/etc", "escape/tiny-sd"])
def test_paths_outside_the_roots_are_refused(ctx_for, models_root, tmp_path, name):
    outside = tmp_path / "outside"
    (outside / "tiny-sd").mkdir(parents=True)
    root = tmp_path / "root"
    root.mkdir()
    os.symlink(outside, root / "escape")
    ctx = ctx_for().__class__(device="cpu", models_dirs=[root])
    with pytest.raises(NodeInputError) as err:
        load_pipeline(ctx, name)
    assert err.value.field == "model"
    assert any(word in str(err.value) for word in ("outside", "'..'", "absolute"))


class Payload:
    """Anything that is not a tensor: torch.save pickles it as code to run on load."""

    def __reduce__(self):
        return (os.getcwd, ())


def test_a_ckpt_carrying_pickled_code_is_refused(ctx_for, tmp_path):
    root = tmp_path / "root"
    (root / "checkpoints").mkdir(parents=True)
    torch.save({"state_dict": {"w": torch.ones(2)}, "extra": Payload()}, root / "checkpoints/evil.ckpt")
    with pytest.raises(NodeInputError, match="refused evil.ckpt.*weights_only") as err:
        load_pipeline(ctx_for(root), "evil.ckpt")
    assert err.value.field == "model"


def test_a_plain_weights_ckpt_passes_the_pickle_check_and_fails_only_on_its_content(ctx_for, tmp_path):
    root = tmp_path / "root"
    (root / "checkpoints").mkdir(parents=True)
    torch.save({"state_dict": {"w": torch.ones(2)}}, root / "checkpoints/plain.ckpt")
    with pytest.raises(NodeInputError, match="could not load plain.ckpt as a StableDiffusionPipeline") as err:
        load_pipeline(ctx_for(root), "plain.ckpt")
    assert "refused" not in str(err.value) and err.value.field == "model"


@pytest.mark.parametrize("suffix", [".safetensors", ".ckpt"])
def test_single_file_checkpoint_loads_the_same_weights_as_the_folder(ctx_for, models_root, tmp_path, suffix):
    """An original-layout SD checkpoint (written by the test) through from_single_file, offline via 'config'."""
    import importlib.util
    from pathlib import Path

    from safetensors.torch import save_file

    spec = importlib.util.spec_from_file_location("tiny_models", Path(__file__).with_name("conftest.py"))
    helpers = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(helpers)
    folder = load_pipeline(ctx_for(), "tiny-sd", node_id="5")
    checkpoint = helpers.ldm_checkpoint(folder.pipe.unet, folder.pipe.vae)
    root = tmp_path / "root"
    (root / "checkpoints").mkdir(parents=True)
    if suffix == ".safetensors":
        save_file(checkpoint, str(root / "checkpoints/tiny.safetensors"))
    else:
        torch.save({"state_dict": checkpoint}, root / "checkpoints/tiny.ckpt")
    ctx = ctx_for().__class__(device="cpu", models_dirs=[root, models_root])
    single = load_pipeline(ctx, f"tiny{suffix}", config="tiny-sd")
    assert type(single.pipe).__name__ == "StableDiffusionPipeline" and single.pipe.text_encoder is None
    assert type(single.pipe.scheduler).__name__ == "DDIMScheduler"
    for part in ("unet", "vae"):
        mine, theirs = getattr(single.pipe, part).state_dict(), getattr(folder.pipe, part).state_dict()
        assert mine.keys() == theirs.keys()
        for key in mine:
            assert torch.equal(mine[key], theirs[key]), (part, key)


def test_cpu_offload_needs_cuda(ctx_for):
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(NodeInputError, match="CUDA") as err:
        load_pipeline(ctx_for(), "tiny-sd", cpu_offload=True)
    assert err.value.field == "cpu_offload"


def test_attention_slicing_option_is_applied(ctx_for):
    handle = load_pipeline(ctx_for(), "tiny-sd", attention_slicing=True)
    processors = handle.pipe.unet.attn_processors.values()
    assert any("Sliced" in type(p).__name__ for p in processors)


def test_shipped_default_model_loads_when_present(ctx_for):
    from imagetune.graph_runtime.context import default_models_dirs

    roots = default_models_dirs()
    if not any((r / "imagetune-shapes" / "model_index.json").is_file() for r in roots):
        pytest.skip("models/imagetune-shapes is not trained yet")
    ctx = ctx_for().__class__(device="cpu", models_dirs=roots)
    handle = load_pipeline(ctx, "imagetune-shapes")
    assert handle.pipe.text_encoder is None and handle.context_width == 384
