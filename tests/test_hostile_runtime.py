"""Hostile but valid-looking workflows at run time: names leaving their roots, size bombs, the hub (#15)."""
from __future__ import annotations

import copy
import json
import socket
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from imagetune.graph_runtime import ExecutionContext, NodeInputError, NodeRegistry, validate
from imagetune.nodes import ALL_NODES
from imagetune.nodes.comfy_core import ComfyImageScaleNode
from imagetune.nodes.enhance import ResizeImageNode
from imagetune.nodes.generate import GenerateImageNode
from imagetune.nodes.image_io import LoadImageNode, file_fingerprint
from imagetune.nodes.lit import LoadLiTModelNode, TuneLiTNode
from imagetune.nodes.loaders import LoadGANNode, LoadPipelineNode, LoadTextEncoderNode
from imagetune.nodes.style_transfer import StyleTransferNode
from imagetune.nodes.upscale import LoadUpscaleModelNode, UpscaleWithModelNode
from imagetune.nodes.vector_transform import ProjectConditioningNode

ROOT = Path(__file__).resolve().parents[1]
REGISTRY = NodeRegistry(list(ALL_NODES))
DEFAULT = json.loads((ROOT / "workflows" / "api" / "imagetune-text-to-image.json").read_text())

#: every input that names a model or file under a root folder, with a valid literal for the rest
NAME_INPUTS = [
    (LoadPipelineNode, "model"), (LoadPipelineNode, "config"), (LoadTextEncoderNode, "text_encoder"),
    (LoadGANNode, "gan_name"), (ProjectConditioningNode, "projection"), (LoadLiTModelNode, "model"),
    (TuneLiTNode, "image_tower"), (TuneLiTNode, "text_tower"), (TuneLiTNode, "folder"), (TuneLiTNode, "name"),
    (LoadUpscaleModelNode, "model_file"), (StyleTransferNode, "vgg_file"),
]
ESCAPES = {"home": "~/tower.safetensors", "parent": "../models/x.safetensors", "absolute": "/etc/passwd.safetensors"}


def errors_of(workflow: dict) -> dict:
    """{node id: [(input name, details)]} of the validation report, or {} when valid."""
    _, report = validate(workflow, REGISTRY)
    return {node: [(e["extra_info"].get("input_name"), e["details"]) for e in found["errors"]]
            for node, found in (report or {}).get("node_errors", {}).items()}


def with_inputs(node_id: str, **inputs) -> dict:
    """The default workflow with some literal inputs of one node changed."""
    workflow = copy.deepcopy(DEFAULT)
    workflow[node_id]["inputs"].update(inputs)
    return workflow


@pytest.fixture
def no_network(monkeypatch, tmp_path):
    """Downloads left at their default, an empty hub cache, and every socket connect recorded and refused."""
    attempts = []

    def refuse(*args, **kwargs):
        attempts.append(args)
        raise OSError("network access in a test")

    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)
    for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "DIFFUSERS_OFFLINE", "IMAGETUNE_ALLOW_DOWNLOADS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.delitem(sys.modules, "comfy.model_management", raising=False)
    return attempts


# --- names that leave their root ------------------------------------------------------------

@pytest.mark.parametrize("kind", sorted(ESCAPES))
@pytest.mark.parametrize("cls, field", NAME_INPUTS, ids=[f"{c.node_id}.{f}" for c, f in NAME_INPUTS])
def test_names_leaving_their_root_are_refused_at_validation(cls, field, kind):
    found = cls.check_inputs(**{field: ESCAPES[kind]})
    assert [name for name, _ in found] == [field]
    assert "inside its root" in found[0][1]


def test_a_pipeline_name_with_dotdot_is_refused_before_any_node_runs():
    report = errors_of(with_inputs("5", model="../secret-pipeline"))
    assert report == {"5": [("model", report["5"][0][1])]}
    assert "'..'" in report["5"][0][1]


def test_a_lit_tower_with_a_tilde_is_refused_at_validation():
    workflow = {"1": {"class_type": "ImageTuneLiTTune", "inputs": {
        "folder": "pairs", "name": "mine", "image_tower": "~/tower", "text_tower": "minilm", "steps": 10,
        "batch_size": 8, "learning_rate": 0.001, "held_out": 0.1, "seed": 0}}}
    assert [name for name, _ in errors_of(workflow)["1"]] == ["image_tower"]


def test_a_lit_tower_source_never_expands_the_home_folder(monkeypatch, tmp_path, no_network):
    from imagetune.lit.towers import resolve_source

    (tmp_path / "tower").mkdir()
    monkeypatch.setenv("HOME", str(tmp_path))
    with pytest.raises(FileNotFoundError, match="allow-downloads"):
        resolve_source("~/tower")


def test_a_lit_tower_outside_the_model_roots_is_refused_when_it_runs(monkeypatch, tmp_path, no_network):
    (tmp_path / "cwd" / "tower").mkdir(parents=True)
    monkeypatch.chdir(tmp_path / "cwd")  # a folder relative to the working directory is no model root
    ctx = ExecutionContext(device="cpu", input_dir=tmp_path / "in", output_dir=tmp_path / "out",
                           models_dirs=[tmp_path / "models"]).for_node("1")
    with pytest.raises(NodeInputError) as err:
        TuneLiTNode().run(ctx, "pairs", "mine", "tower", "minilm", 10, 8, 0.001, 0.1, 0)
    assert err.value.field == "image_tower"


# --- text the file system cannot encode -----------------------------------------------------

def test_a_lone_surrogate_in_an_image_name_is_refused_at_validation():
    workflow = {"1": {"class_type": "ImageTuneLoadImage", "inputs": {"image": "cat\ud800.png"}},
                "2": {"class_type": "ImageTunePreviewImage", "inputs": {"images": ["1", 0]}}}
    ((field, message),) = errors_of(workflow)["1"]
    assert field == "image" and "\\ud800" in message  # shown escaped: printable on any terminal
    assert "encode" in LoadImageNode.check_inputs(image="cat\ud800.png")[0][1]  # the node's own check too


def test_a_lone_surrogate_in_an_image_name_stays_an_input_error_when_it_runs(tmp_path):
    ctx = ExecutionContext(device="cpu", input_dir=tmp_path, output_dir=tmp_path)
    assert "encode" in str(file_fingerprint(ctx, "cat\ud800.png"))  # the cache key, outside any node
    with pytest.raises(NodeInputError) as err:
        LoadImageNode().run(ctx, "cat\ud800.png")
    assert err.value.field == "image"


# --- size bombs -----------------------------------------------------------------------------

def test_generate_refuses_a_pixel_bomb_at_validation():
    report = errors_of(with_inputs("6", width=16384, height=16384, batch_size=64))
    ((field, message),) = report["6"]
    assert field == "batch_size" and "16,777,216" in message


def test_generate_refuses_a_prompt_batch_bomb_before_sampling():
    from imagetune.ops.diffusion import Sampling, text_to_image

    handle = SimpleNamespace(context_width=None, takes_pooled=False, pipe=SimpleNamespace(), device="cpu",
                             dtype=torch.float32, name="fake")
    positive = [[torch.zeros(300, 4, 8), {"pooled_output": None}]]  # 300 prompts, one per line
    negative = [[torch.zeros(1, 4, 8), {"pooled_output": None}]]
    with pytest.raises(NodeInputError) as err:
        text_to_image(handle, positive, negative, 512, 512, 64, Sampling(), None)
    assert err.value.field == "batch_size" and "300 prompt" in str(err.value)


def test_image_scale_refuses_a_huge_size_at_validation():
    assert [f for f, _ in ComfyImageScaleNode.check_inputs(width=16384, height=16384)] == ["width"]


def test_image_scale_refuses_a_thin_image_made_huge_by_its_aspect_ratio():
    thin = torch.zeros(1, 1, 16384, 3)  # height 16384 with width 0 keeps the aspect: 268 M pixels wide
    with pytest.raises(NodeInputError, match="expected at most") as err:
        ComfyImageScaleNode().run(None, thin, "nearest-exact", 0, 16384, "disabled")
    assert err.value.field == "width"


def test_resize_refuses_a_result_over_the_pixel_budget():
    with pytest.raises(NodeInputError, match="expected at most") as err:
        ResizeImageNode().run(None, torch.zeros(1, 600, 600, 3), "lanczos", 16.0)
    assert err.value.field == "scale_by"


def test_upscale_refuses_a_result_over_the_pixel_budget():
    class FakeModel:
        scale = 4

        def __call__(self, image):  # pragma: no cover - must never run
            raise AssertionError("the model ran")

    images = torch.zeros(1, 1, 1, 3).expand(16, 1024, 1024, 3)  # a view: no memory of its own
    with pytest.raises(NodeInputError, match="4x upscaled") as err:
        UpscaleWithModelNode().run(None, FakeModel(), images, 512, 32)
    assert err.value.field == "image"


def test_upscale_tiles_are_bounded():
    assert UpscaleWithModelNode.input("tile").max <= 1024


def test_gan_refuses_a_batch_over_the_pixel_budget():
    from imagetune.ops.gan import generate

    gan = SimpleNamespace(model=SimpleNamespace(image_size=1024), z_dim=8, device="cpu")
    with pytest.raises(NodeInputError, match="expected at most") as err:
        generate(gan, torch.zeros(100, 8))
    assert err.value.field == "z"


def test_lit_tune_batch_size_and_steps_are_bounded():
    assert TuneLiTNode.input("batch_size").max <= 4096  # a batch x batch similarity matrix
    assert TuneLiTNode.input("steps").max <= 100_000


def test_text_encode_refuses_a_prompt_chunk_bomb():
    from imagetune.nodes.text_encoding import encode_prompts

    def tokenizer(text, add_special_tokens=True):
        return {"input_ids": [1] * (len(text.split()) if not add_special_tokens else 2)}

    tokenizer.pad_token_id = 0
    with pytest.raises(NodeInputError, match="chunks") as err:
        encode_prompts(None, tokenizer, ["a red circle"] * 2000, device="cpu")
    assert err.value.field == "text"


# --- the model hub --------------------------------------------------------------------------

@pytest.mark.parametrize("cls, args, field", [
    (LoadTextEncoderNode, ("someone/some-encoder", "auto", "auto"), "text_encoder"),
    (LoadPipelineNode, ("someone/some-pipeline", "default", "auto", "auto", False, False), "model"),
    (TuneLiTNode, ("pairs", "mine", "someone/some-vit", "minilm", 10, 8, 0.001, 0.1, 0), "image_tower"),
], ids=["text_encoder", "pipeline", "lit_tower"])
def test_a_hub_id_is_not_downloaded_without_permission(cls, args, field, tmp_path, no_network):
    ctx = ExecutionContext(device="cpu", input_dir=tmp_path, output_dir=tmp_path,
                           models_dirs=[tmp_path / "models"]).for_node("1")
    with pytest.raises(NodeInputError) as err:
        cls().run(ctx, *args)
    assert err.value.field == field
    assert "--allow-downloads" in str(err.value) and "IMAGETUNE_ALLOW_DOWNLOADS=1" in str(err.value)
    assert no_network == []


def test_a_lit_models_hub_tower_is_not_downloaded_without_permission(no_network):
    from imagetune.lit.towers import load_text_encoder

    with pytest.raises(FileNotFoundError, match="allow-downloads"):
        load_text_encoder({"kind": "transformers", "source": "someone/some-encoder"})
    assert no_network == []


def test_downloads_need_the_flag_headless_and_stay_on_inside_comfyui(monkeypatch, no_network):
    from imagetune.ops.model_files import downloads_allowed, locate

    assert not downloads_allowed()
    monkeypatch.setenv("IMAGETUNE_ALLOW_DOWNLOADS", "1")
    assert downloads_allowed()
    assert locate([], "someone/x", (), "model", downloads=True).repo_id == "someone/x"
    monkeypatch.delenv("IMAGETUNE_ALLOW_DOWNLOADS")
    monkeypatch.setitem(sys.modules, "comfy.model_management", SimpleNamespace())
    assert downloads_allowed()  # ComfyUI users keep today's behaviour...
    monkeypatch.setenv("IMAGETUNE_ALLOW_DOWNLOADS", "0")
    assert not downloads_allowed()  # ...unless the setting says otherwise


def test_the_run_command_allows_downloads_only_with_its_flag(monkeypatch):
    from imagetune.graph_runtime import cli

    assert cli.build_parser().parse_args(["run", "w.json", "--allow-downloads"]).allow_downloads
    assert not cli.build_parser().parse_args(["run", "w.json"]).allow_downloads


def test_a_single_file_checkpoint_reads_configs_only_from_the_local_cache(monkeypatch, tmp_path):
    from imagetune.ops import pipelines
    from imagetune.ops.model_files import ModelSource

    seen = {}

    class FakePipeline:
        def __init__(self, unet=None, text_encoder=None):
            pass

        @classmethod
        def from_single_file(cls, path, **kwargs):
            seen.update(kwargs)
            return SimpleNamespace(set_progress_bar_config=lambda **_: None)

    monkeypatch.setattr(pipelines, "_single_file_class", lambda path: FakePipeline)
    checkpoint = tmp_path / "model.safetensors"
    checkpoint.write_bytes(b"")
    pipelines.load_pipeline(ModelSource("model.safetensors", path=checkpoint), "cpu")
    assert seen["local_files_only"] is True
