"""Headless, the loaders' dropdowns list the model roots and the input folder, and stay open.

A name in the list validates and resolves; a name outside it that is a path under a model root
(or a hub id) validates as it did when these inputs were free text, so workflows move between
ComfyUI and the command line both ways. Listing imports no torch.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from imagetune.graph_runtime import Node, NodeRegistry, validate
from imagetune.graph_runtime import types as T
from imagetune.graph_runtime.cli import main as cli_main
from imagetune.nodes import ALL_NODES

ROOT = Path(__file__).resolve().parents[1]
LOADERS = {"ImageTuneLoadTextEncoder": "text_encoder", "ImageTuneLoadPipeline": "model",
           "ImageTuneLoadLiTModel": "model", "ImageTuneLoadUpscaleModel": "model_name", "ImageTuneLoadImage": "image"}


@pytest.fixture
def registry(keep_node):
    """The pack's nodes and a sink, so a lone loader is validated."""
    return NodeRegistry(ALL_NODES + (keep_node,))


def _touch(path: Path, text: str = "{}") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


@pytest.fixture
def roots(tmp_path, monkeypatch):
    """A model root and an input folder with one model of each kind, as a user lays them out."""
    models, inputs = tmp_path / "models", tmp_path / "input"
    for path in ("text_encoders/my-bert/config.json", "clip/old-clip/config.json", "diffusers/my-pipe/model_index.json",
                 "checkpoints/sd15.safetensors", "lit/my-lit/head.safetensors", "upscale_models/4x-mine.safetensors",
                 "upscale_models/sub/2x.pth", "elsewhere/deep/encoder/config.json",
                 "prompt_readers/my-reader/prompt_reader.safetensors"):
        _touch(models / path)
    _touch(models / "text_encoders" / "half-copied" / "vocab.txt")  # no config.json: not a model
    Image.new("RGB", (4, 4)).save(_touch(inputs / "photo.png"))
    Image.new("RGB", (4, 4)).save(_touch(inputs / "shots" / "b.jpg"))
    _touch(inputs / "notes.txt")
    monkeypatch.setenv("IMAGETUNE_MODELS_DIR", str(models))
    monkeypatch.setenv("IMAGETUNE_INPUT_DIR", str(inputs))
    monkeypatch.chdir(tmp_path)
    return models, inputs


def _listed(node_id: str) -> tuple[str, ...]:
    (cls,) = [c for c in ALL_NODES if c.node_id == node_id]
    return cls.input(LOADERS[node_id]).listed_choices()


def test_the_declarations_list_the_model_roots_and_the_input_folder(roots):
    assert _listed("ImageTuneLoadTextEncoder") == ("minilm", "my-bert", "old-clip")
    assert _listed("ImageTuneLoadPipeline") == ("imagetune-shapes", "my-pipe", "sd15.safetensors")
    assert _listed("ImageTuneLoadLiTModel") == ("shapes-lite0-minilm", "my-lit")
    assert _listed("ImageTuneLoadUpscaleModel")[-2:] == ("4x-mine.safetensors", "sub/2x.pth")
    assert _listed("ImageTuneLoadImage") == ("imagetune-example.png", "photo.png", "shots/b.jpg")  # shipped first


def test_a_model_added_later_shows_at_the_next_listing(roots):
    models, inputs = roots
    _touch(models / "text_encoders" / "new-one" / "config.json")
    Image.new("RGB", (2, 2)).save(inputs / "upload.webp")
    assert "new-one" in _listed("ImageTuneLoadTextEncoder")
    assert "upload.webp" in _listed("ImageTuneLoadImage")


def test_imagetune_nodes_shows_the_lists(roots, capsys):
    assert cli_main(["nodes"]) == 0
    text = capsys.readouterr().out
    assert "one of minilm, my-bert, old-clip; or another name" in text
    assert "one of imagetune-shapes, my-pipe, sd15.safetensors; or another name" in text
    assert cli_main(["nodes", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["ImageTuneLoadLiTModel"]["input"]["required"]["model"][0] == ["shapes-lite0-minilm", "my-lit"]
    image = info["ImageTuneLoadImage"]["input"]["required"]["image"]
    assert image[0] == ["imagetune-example.png", "photo.png", "shots/b.jpg"] and image[1]["image_upload"] is True


def _validated(registry, node_id: str, value) -> dict | None:
    """The errors of a workflow of one loader set to ``value`` (and its other inputs' defaults)."""
    cls = registry.get(node_id)
    inputs = {spec.name: spec.default for spec in cls.inputs if spec.has_default and not spec.optional}
    inputs[LOADERS[node_id]] = value
    workflow = {"1": {"class_type": node_id, "inputs": inputs},
                "2": {"class_type": "ImageTuneTestKeep", "inputs": {"value": ["1", 0]}}}
    plan, errors = validate(workflow, registry)
    return None if plan is not None else errors["node_errors"]["1"]["errors"]


@pytest.mark.parametrize("node_id, listed, unlisted", [
    ("ImageTuneLoadTextEncoder", "my-bert", "elsewhere/deep/encoder"),
    ("ImageTuneLoadTextEncoder", "minilm", "someone/hub-encoder"),
    ("ImageTuneLoadPipeline", "my-pipe", "diffusers/my-pipe"),
    ("ImageTuneLoadLiTModel", "my-lit", "not-yet-copied"),
    ("ImageTuneLoadUpscaleModel", "sub/2x.pth", "upscale_models/4x-mine.safetensors"),
    ("ImageTuneLoadImage", "shots/b.jpg", "result.png [output]"),
])
def test_listed_and_unlisted_names_validate_headless(roots, registry, node_id, listed, unlisted):
    assert listed in _listed(node_id) and unlisted not in _listed(node_id)
    assert _validated(registry, node_id, listed) is None
    assert _validated(registry, node_id, unlisted) is None


@pytest.mark.parametrize("node_id", sorted(LOADERS))
@pytest.mark.parametrize("value, kind", [("/etc/passwd", "custom_validation_failed"),
                                         ("../../secret", "custom_validation_failed"),
                                         (7, "invalid_input_type"), (["1", 0, 2], "bad_linked_input")])
def test_an_open_list_still_refuses_what_no_folder_allows(roots, registry, node_id, value, kind):
    errors = _validated(registry, node_id, value)
    assert errors and errors[0]["type"] == kind and errors[0]["extra_info"]["input_name"] == LOADERS[node_id]


def test_a_listed_model_is_found_where_it_was_listed(roots):
    from imagetune.ops.model_files import LIT_MODELS, PIPELINES, PROMPT_READERS, TEXT_ENCODERS, UPSCALE_MODELS

    models, _ = roots
    for kind in (TEXT_ENCODERS, PIPELINES, LIT_MODELS, UPSCALE_MODELS, PROMPT_READERS):
        names = kind.names([models])
        assert names
        for name in names:
            found = kind.find([models], name, "model")
            assert found is not None and models in found.parents, name


def test_listing_choices_imports_no_torch(roots):
    # the CLI's validate/nodes must start without torch: listing is os-only
    code = ("import sys, imagetune.ops.model_files as m, imagetune.graph_runtime.listings as l; "
            "names = [m.TEXT_ENCODERS(), m.PIPELINES(), m.LIT_MODELS(), m.UPSCALE_MODELS(), l.InputFiles()()]; "
            "assert 'my-bert' in names[0] and 'photo.png' in names[4], names; "
            "assert 'torch' not in sys.modules, 'torch was imported'")
    loader = (f"import importlib.util, sys; s = importlib.util.spec_from_file_location('imagetune', "
              f"{str(ROOT / '__init__.py')!r}, submodule_search_locations=[{str(ROOT)!r}]); "
              "m = importlib.util.module_from_spec(s); sys.modules['imagetune'] = m; s.loader.exec_module(m); ")
    done = subprocess.run([sys.executable, "-c", loader + code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_an_open_combo_is_declared_with_a_listing_or_choices():
    from imagetune.graph_runtime import Input, NodeDefinitionError

    with pytest.raises(NodeDefinitionError, match="listing, open and image_upload are for a COMBO"):
        type("XNode", (Node,), {"__doc__": "x", "node_id": "ImageTuneX", "category": "ImageTune/test",
                                "inputs": (Input("a", T.STRING, open=True),), "outputs": (),
                                "output_node": True, "run": lambda self, ctx, a: ()})


def test_a_name_there_only_through_a_link_out_of_its_folder_is_refused(roots, tmp_path):
    from imagetune.graph_runtime import NodeInputError
    from imagetune.ops.model_files import TEXT_ENCODERS

    models, _ = roots
    _touch(tmp_path / "outside" / "secret-encoder" / "config.json")
    (models / "text_encoders" / "linked").symlink_to(tmp_path / "outside" / "secret-encoder")
    with pytest.raises(NodeInputError, match="leads outside"):
        TEXT_ENCODERS.find([models], "linked", "text_encoder")
    assert TEXT_ENCODERS.find([models], "my-bert", "text_encoder") == models / "text_encoders" / "my-bert"
    assert TEXT_ENCODERS.find([models], "not-there", "text_encoder") is None  # may still be a hub id
    assert TEXT_ENCODERS.find([models], "a" * 300 + "/x", "text_encoder") is None  # too long for the disk


def test_inside_comfyui_a_model_folder_linked_elsewhere_is_comfyuis_folder(roots, tmp_path, monkeypatch,
                                                                          load_folder_paths):
    # ComfyUI installs often link models/checkpoints to a big disk: folder_paths' folder is the root then
    from imagetune.ops.model_files import PIPELINES

    base = tmp_path / "comfy"
    _touch(tmp_path / "disk" / "ckpts" / "big.safetensors")
    (base / "models").mkdir(parents=True)
    (base / "models" / "checkpoints").symlink_to(tmp_path / "disk" / "ckpts")
    monkeypatch.setitem(sys.modules, "folder_paths", load_folder_paths(base))
    assert "big.safetensors" in PIPELINES.names([base / "models"])
    assert PIPELINES.find([base / "models"], "big.safetensors", "model") == tmp_path / "disk" / "ckpts" / "big.safetensors"
