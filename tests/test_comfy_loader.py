"""The pack loads into ComfyUI the way ComfyUI's loader imports it, and every node it registers works.

ComfyUI (nodes.py ``load_custom_node``) imports ``custom_nodes/<folder>/__init__.py`` with
``spec_from_file_location`` under the folder's absolute path with dots replaced by ``_x_``,
without putting custom_nodes on sys.path, while its own top-level ``nodes`` module is loaded.
These tests copy the repository into a folder whose name has a dash and a dot and do the same.
"""
from __future__ import annotations

import importlib.util
import inspect
import os
import json
import logging
import shutil
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
HIDDEN_KINDS = {"PROMPT", "EXTRA_PNGINFO", "UNIQUE_ID", "DYNPROMPT"}
OPTION_KEYS = {"default", "min", "max", "step", "round", "display", "multiline", "placeholder", "tooltip",
               "forceInput", "control_after_generate", "dynamicPrompts", "label_on", "label_off", "lazy",
               "defaultInput", "rawLink", "image_upload", "advanced"}
WIDGET_KINDS = {"INT", "FLOAT", "STRING", "BOOLEAN"}
COMFY_CORE_NAMES = {"LoadImage", "SaveImage", "PreviewImage", "ImageScale", "ImageInvert"}


class StandInNodes(types.ModuleType):
    """ComfyUI's own top-level ``nodes`` module: records every attribute the pack reads from it."""

    def __init__(self):
        super().__init__("nodes")
        self.reads: list[str] = []

    def __getattr__(self, name):
        self.reads.append(name)
        raise AttributeError(name)


def copy_repository(target: Path) -> Path:
    """Copy the files a clone would have (those git tracks) into ``target``."""
    listed = subprocess.run(["git", "ls-files", "-z"],
                            cwd=ROOT, capture_output=True, check=True).stdout.decode().split("\0")
    for name in filter(None, listed):
        source = ROOT / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)
    return target


def load_like_comfyui(folder: Path):
    """Import ``folder/__init__.py`` exactly as ComfyUI's ``load_custom_node`` does."""
    module_path = str(folder)
    sys_module_name = module_path.replace(".", "_x_")
    spec = importlib.util.spec_from_file_location(sys_module_name, str(folder / "__init__.py"))
    module = importlib.util.module_from_spec(spec)
    sys.modules[sys_module_name] = module
    spec.loader.exec_module(module)
    return module


def _forget(prefix: str) -> None:
    for name in [n for n in sys.modules if n == prefix or n.startswith(prefix + ".")]:
        del sys.modules[name]


@pytest.fixture
def comfy_pack(tmp_path, monkeypatch):
    """A fresh copy of the repository in ``custom_nodes/Image-Tune.pack``, loaded ComfyUI's way."""
    folder = copy_repository(tmp_path / "custom_nodes" / "Image-Tune.pack")
    stand_in = StandInNodes()
    monkeypatch.setitem(sys.modules, "nodes", stand_in)
    path_before = list(sys.path)

    def load():
        module = load_like_comfyui(folder)
        assert sys.modules["nodes"] is stand_in, "the pack replaced ComfyUI's nodes module"
        assert stand_in.reads == [], f"the pack read {stand_in.reads} from ComfyUI's nodes module"
        assert sys.path == path_before, "the pack changed sys.path"
        return module

    yield folder, load, stand_in
    _forget(str(folder).replace(".", "_x_"))


def test_loads_under_a_path_name_with_dash_and_dot(comfy_pack):
    folder, load, stand_in = comfy_pack
    module = load()
    name = str(folder).replace(".", "_x_")
    assert module.__name__ == name and "_x_pack" in name
    assert len(module.NODE_CLASS_MAPPINGS) > 0
    assert set(module.NODE_CLASS_MAPPINGS) == set(module.NODE_DISPLAY_NAME_MAPPINGS)
    assert sys.modules[name + ".nodes"].LOAD_ERRORS == {}, "with every dependency installed, no module is disabled"
    # every submodule lives under the path name; nothing was imported as a top-level "nodes.*"
    assert not [n for n in sys.modules if n.startswith("nodes.")]
    for mod_name, mod in list(sys.modules.items()):
        if mod_name.startswith(name):
            # by identity: `in` compares with ==, which a module-level numpy array answers elementwise
            assert all(value is not stand_in for value in vars(mod).values()), f"{mod_name} holds ComfyUI's nodes module"


def test_comfy_core_nodes_stay_out_and_ours_are_under_imagetune(comfy_pack):
    _, load, _ = comfy_pack
    module = load()
    mappings = module.NODE_CLASS_MAPPINGS
    assert not COMFY_CORE_NAMES & set(mappings)
    runtime_ids = {cls.node_id for cls in sys.modules[module.__name__ + ".nodes"].ALL_NODES}
    assert COMFY_CORE_NAMES <= runtime_ids, "the runtime implements the ComfyUI core names itself"
    for node_id, cls in mappings.items():
        assert node_id.startswith("ImageTune"), node_id
        assert cls.CATEGORY.startswith("ImageTune/"), f"{node_id}: {cls.CATEGORY}"
        assert module.NODE_DISPLAY_NAME_MAPPINGS[node_id]


def check_v1_attributes(node_id: str, cls) -> list[str]:
    """Every problem with one class's ComfyUI V1 attributes (INPUT_TYPES grammar and the rest)."""
    problems = []
    spec = cls.INPUT_TYPES()
    if set(spec) - {"required", "optional", "hidden"} or "required" not in spec:
        problems.append(f"INPUT_TYPES sections {sorted(spec)}")
    for section in ("required", "optional"):
        for name, entry in spec.get(section, {}).items():
            problems += [f"input {name}: {p}" for p in _input_problems(entry)]
    for name, kind in spec.get("hidden", {}).items():
        if kind not in HIDDEN_KINDS:
            problems.append(f"hidden {name}: {kind}")
    returns = cls.RETURN_TYPES
    if not (isinstance(returns, tuple) and all(isinstance(t, str) and t for t in returns)):
        problems.append(f"RETURN_TYPES {returns!r}")
    for attr in ("RETURN_NAMES", "OUTPUT_TOOLTIPS"):
        value = getattr(cls, attr)
        if not (isinstance(value, tuple) and len(value) == len(returns) and all(isinstance(v, str) for v in value)):
            problems.append(f"{attr} {value!r}")
    if not callable(getattr(cls, cls.FUNCTION, None)):
        problems.append(f"FUNCTION {cls.FUNCTION!r} is not a method")
    if not isinstance(cls.OUTPUT_NODE, bool) or (not returns and not cls.OUTPUT_NODE):
        problems.append(f"OUTPUT_NODE {cls.OUTPUT_NODE!r} with {len(returns)} outputs")
    if not (isinstance(cls.DESCRIPTION, str) and cls.DESCRIPTION.strip()):
        problems.append("no DESCRIPTION")
    if "__init__" in vars(cls) and len(inspect.signature(cls.__init__).parameters) > 1:
        problems.append("__init__ must take no arguments")
    return problems


def _input_problems(entry) -> list[str]:
    if not isinstance(entry, tuple) or len(entry) not in (1, 2):
        return [f"entry {entry!r} is not a 1- or 2-tuple"]
    kind, opts = entry[0], (entry[1] if len(entry) == 2 else {})
    problems = [] if isinstance(opts, dict) else [f"options {opts!r}"]
    opts = opts if isinstance(opts, dict) else {}
    problems += [f"unknown option {k!r}" for k in set(opts) - OPTION_KEYS]
    if not isinstance(opts.get("tooltip", ""), str):
        problems.append("tooltip is not text")
    if isinstance(kind, list):
        # empty is allowed where the list is of files found (ComfyUI's LoadImage on an empty input/)
        if (not kind and not opts.get("image_upload")) or not all(isinstance(c, str) for c in kind):
            problems.append(f"combo choices {kind!r}")
        elif "default" in opts and opts["default"] not in kind:
            problems.append(f"combo default {opts['default']!r} not a choice")
    elif not isinstance(kind, str) or not kind:
        problems.append(f"type {kind!r}")
    elif kind in ("INT", "FLOAT"):
        # the front end defaults min 0 and max 2048 when they are missing, so they must be set
        if not all(k in opts for k in ("default", "min", "max")):
            problems.append(f"{kind} needs default, min and max, has {sorted(opts)}")
        elif not opts["min"] <= opts["default"] <= opts["max"]:
            problems.append(f"default {opts['default']} outside [{opts['min']}, {opts['max']}]")
    elif kind == "STRING" and not isinstance(opts.get("default", ""), str):
        problems.append("STRING default is not text")
    elif kind == "BOOLEAN" and not isinstance(opts.get("default", False), bool):
        problems.append("BOOLEAN default is not a bool")
    return problems


def test_every_class_has_valid_v1_attributes(comfy_pack):
    _, load, _ = comfy_pack
    problems = {node_id: p for node_id, cls in load().NODE_CLASS_MAPPINGS.items()
                if (p := check_v1_attributes(node_id, cls))}
    assert problems == {}


def test_every_widget_input_has_a_tooltip(comfy_pack):
    # widgets are what users type into; a socket already shows its type
    _, load, _ = comfy_pack
    missing = []
    for node_id, cls in load().NODE_CLASS_MAPPINGS.items():
        spec = cls.INPUT_TYPES()
        for section in ("required", "optional"):
            for name, entry in spec.get(section, {}).items():
                is_widget = isinstance(entry[0], list) or entry[0] in WIDGET_KINDS
                if is_widget and (len(entry) < 2 or not entry[1].get("tooltip")):
                    missing.append(f"{node_id}.{name}")
    assert missing == [], f"widget inputs without a tooltip: {sorted(missing)}"


# -- calling FUNCTION on small inputs --------------------------------------------------------------

def sample_value(kind, opts: dict):
    """A small value for one declared input: socket types get tiny tensors, widgets their default."""
    if isinstance(kind, list):
        return opts.get("default", kind[0])
    if kind in WIDGET_KINDS:
        return opts["default"] if "default" in opts else {"INT": 0, "FLOAT": 0.0, "STRING": "", "BOOLEAN": False}[kind]
    torch.manual_seed(0)
    return {"IMAGE": lambda: torch.rand(1, 24, 32, 3), "MASK": lambda: torch.rand(1, 24, 32),
            "LATENT": lambda: {"samples": torch.randn(1, 4, 3, 4)},
            "CONDITIONING": lambda: [[torch.randn(1, 77, 32), {"pooled_output": torch.randn(1, 32)}]],
            }[kind]()


DATA_KINDS = WIDGET_KINDS | {"IMAGE", "MASK", "LATENT", "CONDITIONING"}


def needs_model_files(cls) -> bool:
    """Nodes that load or take a model (any socket type other than data) are not called here."""
    spec = cls.INPUT_TYPES()
    kinds = [e[0] for s in ("required", "optional") for e in spec.get(s, {}).values()]
    return any(isinstance(k, str) and k not in DATA_KINDS for k in kinds + list(cls.RETURN_TYPES))


def check_output(kind: str, value) -> str | None:
    """A problem with one returned value against ComfyUI's type conventions, or None."""
    if kind == "IMAGE":
        ok = isinstance(value, torch.Tensor) and value.ndim == 4 and value.shape[-1] in (3, 4) \
            and value.dtype == torch.float32 and float(value.min()) >= 0 and float(value.max()) <= 1
    elif kind == "MASK":
        ok = isinstance(value, torch.Tensor) and value.ndim == 3 and value.dtype == torch.float32
    elif kind == "LATENT":
        ok = isinstance(value, dict) and isinstance(value.get("samples"), torch.Tensor)
    elif kind == "CONDITIONING":
        ok = isinstance(value, list) and all(isinstance(c[0], torch.Tensor) and isinstance(c[1], dict) for c in value)
    elif kind in ("INT", "FLOAT", "STRING", "BOOLEAN"):
        ok = isinstance(value, {"INT": int, "FLOAT": (int, float), "STRING": str, "BOOLEAN": bool}[kind])
    else:
        ok = True
    return None if ok else f"{kind} output {type(value).__name__} {getattr(value, 'shape', '')}"


def test_calling_function_works_on_small_inputs(comfy_pack, tmp_path, monkeypatch):
    _, load, _ = comfy_pack
    folders = {name: tmp_path / name for name in ("input", "output", "models")}
    for env, folder in zip(("IMAGETUNE_INPUT_DIR", "IMAGETUNE_OUTPUT_DIR", "IMAGETUNE_MODELS_DIR"), folders.values()):
        folder.mkdir()
        monkeypatch.setenv(env, str(folder))
    Image.new("RGB", (20, 12), (200, 30, 90)).save(folders["input"] / "example.png")
    called, failures = [], {}
    mappings = load().NODE_CLASS_MAPPINGS
    for node_id, cls in sorted(mappings.items()):
        if needs_model_files(cls):
            continue
        spec = cls.INPUT_TYPES()
        kwargs = {name: sample_value(e[0], e[1] if len(e) > 1 else {}) for name, e in spec["required"].items()}
        kwargs.update(imagetune_unique_id="7", imagetune_prompt={}, imagetune_extra_pnginfo=None)
        try:
            with torch.inference_mode():  # as ComfyUI's executor runs nodes
                returned = getattr(cls(), cls.FUNCTION)(**kwargs)
        except Exception as exc:  # collect every failing node, not just the first
            if not _refuses_a_file_name(cls, exc):
                failures[node_id] = f"{type(exc).__name__}: {exc}"
            continue
        called.append(node_id)
        problems = _return_problems(cls, returned, folders["output"], tmp_path)
        if problems:
            failures[node_id] = problems
    assert failures == {}
    assert called, "no node could be called without model files"
    assert "ImageTuneLoadImage" not in mappings or "ImageTuneLoadImage" in called, "example.png was provided"


def _refuses_a_file_name(cls, exc: Exception) -> bool:
    """True when the node named a text or choice input (a file or model name) it cannot find.

    Such a node needs files this test does not provide; any other error is a failure.
    """
    if type(exc).__name__ != "NodeInputError":
        return False
    spec = cls.INPUT_TYPES()
    entry = {**spec.get("required", {}), **spec.get("optional", {})}.get(getattr(exc, "field", None))
    return entry is not None and (isinstance(entry[0], list) or entry[0] == "STRING")


def _return_problems(cls, returned, output_dir: Path, root: Path) -> list[str]:
    problems = []
    result = returned
    if isinstance(returned, dict):
        result = returned.get("result", ())
        for image in returned.get("ui", {}).get("images", []):
            if set(image) != {"filename", "subfolder", "type"}:
                problems.append(f"ui image entry {image}")
            elif image["type"] in ("output", "temp"):
                base = output_dir if image["type"] == "output" else None
                if base is not None and not (base / image["subfolder"] / image["filename"]).is_file():
                    problems.append(f"ui names {image} but no such file was written")
        if cls.OUTPUT_NODE and "ui" not in returned:
            problems.append("an output node returns no ui")
    if not isinstance(result, tuple) or len(result) != len(cls.RETURN_TYPES):
        return problems + [f"returned {type(result).__name__}, expected a tuple of {len(cls.RETURN_TYPES)}"]
    problems += [p for k, v in zip(cls.RETURN_TYPES, result) if (p := check_output(k, v))]
    return problems


def test_a_missing_optional_dependency_disables_only_its_nodes(comfy_pack, caplog):
    folder, load, _ = comfy_pack
    baseline = set(load().NODE_CLASS_MAPPINGS)
    _forget(str(folder).replace(".", "_x_"))
    (folder / "nodes" / "needs_missing_dependency.py").write_text(
        '"""Nodes that need a library which is not installed."""\n'
        "import imagetune_test_library_that_is_not_installed  # noqa: F401\n\n"
        "from ..graph_runtime import Node, Output\n\n\n"
        "class UseMissingLibraryNode(Node):\n"
        '    """Never registered: its module cannot import."""\n\n'
        '    node_id = "ImageTuneUsesMissingLibrary"\n'
        '    category = "ImageTune/test"\n'
        '    outputs = (Output("INT", "value"),)\n\n'
        "    def run(self, ctx):\n"
        "        return (1,)\n\n\n"
        "NODES = (UseMissingLibraryNode,)\n")
    with caplog.at_level(logging.WARNING, logger="imagetune"):
        module = load()
    load_errors = sys.modules[module.__name__ + ".nodes"].LOAD_ERRORS
    assert "imagetune_test_library_that_is_not_installed" in load_errors["needs_missing_dependency"]
    assert "ModuleNotFoundError" in load_errors["needs_missing_dependency"]
    assert set(module.NODE_CLASS_MAPPINGS) == baseline
    assert any("needs_missing_dependency" in r.getMessage() and "disabled" in r.getMessage()
               for r in caplog.records)


def test_a_module_listing_a_missing_lazy_dependency_is_disabled(comfy_pack, caplog):
    # modules import heavy libraries inside functions; REQUIRES names them so a missing one
    # disables the module's nodes at load time instead of failing when a node runs
    folder, load, _ = comfy_pack
    (folder / "nodes" / "lazy_missing_dependency.py").write_text(
        '"""Nodes that import a library lazily."""\n'
        "from ..graph_runtime import Node, Output\n\n"
        'REQUIRES = ("numpy", "imagetune_test_lazy_library_that_is_not_installed")\n\n\n'
        "class UseLazyLibraryNode(Node):\n"
        '    """Never registered: its library is missing."""\n\n'
        '    node_id = "ImageTuneUsesLazyLibrary"\n'
        '    category = "ImageTune/test"\n'
        '    outputs = (Output("INT", "value"),)\n\n'
        "    def run(self, ctx):\n"
        "        import imagetune_test_lazy_library_that_is_not_installed  # noqa: F401\n"
        "        return (1,)\n\n\n"
        "NODES = (UseLazyLibraryNode,)\n")
    with caplog.at_level(logging.WARNING, logger="imagetune"):
        module = load()
    error = sys.modules[module.__name__ + ".nodes"].LOAD_ERRORS["lazy_missing_dependency"]
    assert error == "missing optional dependency: imagetune_test_lazy_library_that_is_not_installed (pip install it)"
    assert "ImageTuneUsesLazyLibrary" not in module.NODE_CLASS_MAPPINGS
    assert any("lazy_missing_dependency" in r.getMessage() for r in caplog.records)


# -- inside ComfyUI: progress, interrupt, memory and folders go to ComfyUI ------------------------

class InterruptProcessingException(Exception):
    """Stands in for comfy.model_management.InterruptProcessingException."""


@pytest.fixture
def comfy_modules(tmp_path, monkeypatch, load_folder_paths):
    """Stand-ins for the ComfyUI modules the bridge talks to (ComfyUI itself is not importable here)."""
    calls: list[tuple] = []
    state = {"interrupted": False}

    class ProgressBar:  # comfy.utils.ProgressBar's interface
        def __init__(self, total, node_id=None):
            self.total = total
            calls.append(("bar", total, node_id))

        def update_absolute(self, value, total=None, preview=None):
            calls.append(("update", value, total))

    def throw_exception_if_processing_interrupted():
        if state["interrupted"]:
            raise InterruptProcessingException()

    utils = types.ModuleType("comfy.utils")
    utils.ProgressBar = ProgressBar
    mm = types.ModuleType("comfy.model_management")
    mm.throw_exception_if_processing_interrupted = throw_exception_if_processing_interrupted
    mm.get_torch_device = lambda: torch.device("cpu")
    mm.free_memory = lambda memory_required, device, keep_loaded=(): calls.append(("free", memory_required, str(device)))
    for name in ("output", "input", "models"):
        (tmp_path / name).mkdir()
    folder_paths = load_folder_paths(tmp_path)
    comfy = types.ModuleType("comfy")
    comfy.utils, comfy.model_management = utils, mm
    for name, module in {"comfy": comfy, "comfy.utils": utils, "comfy.model_management": mm,
                         "folder_paths": folder_paths}.items():
        monkeypatch.setitem(sys.modules, name, module)
    return calls, state, tmp_path


def test_inside_comfyui_progress_interrupt_and_memory_go_to_comfyui(comfy_modules):
    from imagetune.graph_runtime import Input, Node, Output
    from imagetune.graph_runtime import types as T
    from imagetune.graph_runtime.comfy_bridge import comfy_class

    class StepThroughNode(Node):
        """Test: asks for memory, reports each step, and says where it ran."""

        node_id = "ImageTuneTestSteps"
        category = "ImageTune/test"
        inputs = (Input("steps", T.INT, default=3, min=1, max=10),)
        outputs = (Output(T.STRING, "where"),)

        def run(self, ctx, steps):
            ctx.free_memory(1234)
            for step in range(steps):
                ctx.progress(step + 1, steps)
            return (f"{ctx.device} {Path(ctx.output_dir).name} {Path(ctx.models_dirs[0]).name} "
                    f"offload={ctx.offload_after_use}",)

    calls, state, _ = comfy_modules
    comfy_node = comfy_class(StepThroughNode)()
    assert comfy_node.execute(steps=3, imagetune_unique_id="12") == ("cpu output models offload=True",)
    assert calls == [("free", 1234, "cpu"), ("bar", 3, "12"), ("update", 1, 3), ("update", 2, 3), ("update", 3, 3)]
    state["interrupted"] = True
    with pytest.raises(InterruptProcessingException):
        comfy_node.execute(steps=2, imagetune_unique_id="12")


def test_inside_comfyui_an_output_node_saves_into_comfyuis_output_folder(comfy_modules):
    import imagetune

    _, _, root = comfy_modules
    save = imagetune.NODE_CLASS_MAPPINGS["ImageTuneSaveImage"]()
    images = torch.rand(2, 8, 12, 3)
    returned = getattr(save, save.FUNCTION)(images=images, filename_prefix="bridge/test", imagetune_unique_id="3",
                                            imagetune_prompt={"3": {"class_type": "ImageTuneSaveImage", "inputs": {}}},
                                            imagetune_extra_pnginfo={"workflow": {"nodes": []}})
    entries = returned["ui"]["images"]
    assert len(entries) == 2
    for index, entry in enumerate(entries):
        assert entry["type"] == "output" and entry["subfolder"] == "bridge"
        with Image.open(root / "output" / entry["subfolder"] / entry["filename"]) as saved:
            pixels = torch.from_numpy(np.asarray(saved.convert("RGB"), dtype=np.float32) / 255)
            assert json.loads(saved.info["workflow"]) == {"nodes": []}
        torch.testing.assert_close(pixels, images[index], atol=1 / 255, rtol=0)


# -- packaging for ComfyUI installs ---------------------------------------------------------------

def _requirement_name(line: str) -> str:
    import re

    return re.split(r"[<>=!~;\[ ]", line.strip(), maxsplit=1)[0].lower().replace("_", "-")


def test_comfy_registry_metadata_and_requirements():
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    comfy = project["tool"]["comfy"]
    for key in ("PublisherId", "DisplayName", "Icon"):
        assert isinstance(comfy.get(key), str) and comfy[key], f"[tool.comfy] {key} is empty"
    if "://" not in comfy["Icon"]:
        assert (ROOT / comfy["Icon"]).is_file()
    lines = [ln.strip() for ln in (ROOT / "requirements.txt").read_text().splitlines()]
    requirements = {_requirement_name(ln): ln for ln in lines if ln and not ln.startswith("#")}
    # ComfyUI ships its own torch build; a requirement on it would replace that build
    assert not {"torch", "torchvision", "torchaudio", "xformers"} & set(requirements)
    for dependency in project["project"]["dependencies"]:
        name = _requirement_name(dependency)
        if name != "torch":
            assert requirements.get(name) == dependency, f"requirements.txt disagrees on {dependency}"


def test_is_changed_hands_only_declared_inputs_to_the_fingerprint(comfy_modules):
    from imagetune.graph_runtime import Input, Node, Output
    from imagetune.graph_runtime import types as T
    from imagetune.graph_runtime.comfy_bridge import comfy_class

    class ReadStampNode(Node):
        """Test: a node that reads the outside world (its fingerprint takes exactly its inputs)."""

        node_id = "ImageTuneTestStamp"
        category = "ImageTune/test"
        inputs = (Input("name", T.STRING, default="a"),)
        outputs = (Output(T.STRING, "name"),)

        def run(self, ctx, name):
            return (name,)

        @classmethod
        def fingerprint(cls, ctx, name):
            return f"{name}@{Path(ctx.output_dir).name}"

    comfy_node = comfy_class(ReadStampNode)
    # ComfyUI calls IS_CHANGED with the declared inputs plus the hidden ones
    assert comfy_node.IS_CHANGED(name="b", imagetune_prompt={}, imagetune_unique_id="4",
                                 imagetune_extra_pnginfo=None) == repr("b@output")


# -- dropdowns inside ComfyUI: its model folders, extra_model_paths.yaml, Refresh, image upload -----

def _touch(path: Path, text: str = "{}") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def _refreshed(folder: Path) -> None:
    """Move a folder's modification time on, as adding a file does (whatever the clock's resolution)."""
    stamp = folder.stat().st_mtime + 5
    os.utime(folder, (stamp, stamp))


def _choices(cls, name: str) -> list[str]:
    spec = cls.INPUT_TYPES()
    return ({**spec["required"], **spec.get("optional", {})})[name][0]


@pytest.fixture
def comfy_install(comfy_modules, comfy_pack, tmp_path, monkeypatch):
    """A ComfyUI base folder with models in models/ and in an extra_model_paths.yaml folder, the pack
    loaded into it the way ComfyUI loads it (after reading the yaml, with folder_paths loaded)."""
    monkeypatch.chdir(tmp_path)  # ComfyUI runs in its base folder
    monkeypatch.delenv("IMAGETUNE_MODELS_DIR", raising=False)
    models, extra = tmp_path / "models", tmp_path / "extra"
    for path in ("text_encoders/t5-small/config.json", "clip/clip-l/config.json", "diffusers/sd-tiny/model_index.json",
                 "lit/photos/head.safetensors", "upscale_models/4x-Test.safetensors", "upscale_models/photo/2x.pth"):
        _touch(models / path)
    for path in ("text_encoders/empty-folder/readme.txt", "upscale_models/notes.txt", "upscale_models/old.pkl"):
        _touch(models / path)  # not models: no config.json; not a weight file; a pickle we never read
    for path in ("te/my-bert/config.json", "pipes/my-pipe/model_index.json", "ckpts/sd15.safetensors",
                 "lits/my-lit/head.safetensors", "upscalers/extra-x2.safetensors"):
        _touch(extra / path)
    _touch(tmp_path / "extra_model_paths.yaml",
           "mine:\n  base_path: extra\n  text_encoders: te\n  diffusers: pipes\n  checkpoints: ckpts\n"
           "  lit: lits\n  upscale_models: upscalers\n")
    folder_paths = sys.modules["folder_paths"]
    folder_paths.load_extra_path_config(str(tmp_path / "extra_model_paths.yaml"))
    _, load, _ = comfy_pack
    return load().NODE_CLASS_MAPPINGS, folder_paths, models, extra


def test_inside_comfyui_model_dropdowns_list_its_model_folders_and_extra_paths(comfy_install):
    mappings, folder_paths, models, extra = comfy_install
    assert _choices(mappings["ImageTuneLoadTextEncoder"], "text_encoder") == ["minilm", "clip-l", "my-bert", "t5-small"]
    assert _choices(mappings["ImageTuneLoadPipeline"], "model") == ["imagetune-shapes", "my-pipe", "sd-tiny", "sd15.safetensors"]
    assert _choices(mappings["ImageTuneLoadLiTModel"], "model") == ["shapes-lite0-minilm", "my-lit", "photos"]
    upscale = _choices(mappings["ImageTuneLoadUpscaleModel"], "model_name")
    from imagetune.ops.upscale import BUILTIN_MODELS

    assert upscale[:5] == list(BUILTIN_MODELS)  # the shipped ones, always
    assert upscale[5:] == ["4x-Test.safetensors", "extra-x2.safetensors", "photo/2x.pth"]
    # the LiT folder is ComfyUI's now: models/lit and the yaml's "lit" entry
    assert folder_paths.get_folder_paths("lit") == [str(extra / "lits"), str(models / "lit")]


def test_inside_comfyui_refresh_lists_a_model_added_since(comfy_install):
    mappings, folder_paths, models, extra = comfy_install
    upscaler, encoder, lit = (mappings[n] for n in ("ImageTuneLoadUpscaleModel", "ImageTuneLoadTextEncoder",
                                                   "ImageTuneLoadLiTModel"))
    before = _choices(upscaler, "model_name")
    walks = len(folder_paths.walks)
    assert _choices(upscaler, "model_name") == before and len(folder_paths.walks) == walks  # ComfyUI's cache
    _touch(models / "upscale_models" / "new-x4.safetensors")
    _refreshed(models / "upscale_models")
    _touch(extra / "te" / "new-encoder" / "config.json")
    _touch(extra / "lits" / "new-lit" / "head.safetensors")
    # the front end's Refresh fetches /object_info again, which calls INPUT_TYPES again
    with folder_paths.cache_helper:
        assert "new-x4.safetensors" in _choices(upscaler, "model_name")
        assert "new-encoder" in _choices(encoder, "text_encoder")
        assert "new-lit" in _choices(lit, "model")
    assert len(folder_paths.walks) > walks, "the file list was made again"


def test_inside_comfyui_a_listed_model_resolves_and_any_name_passes_comfyuis_list_check(comfy_install):
    mappings, _, _, extra = comfy_install
    encoder, upscaler = mappings["ImageTuneLoadTextEncoder"], mappings["ImageTuneLoadUpscaleModel"]
    # IS_CHANGED resolves the name as the run does: a listed one from the yaml's folder is found
    assert "was not found" not in encoder.IS_CHANGED(text_encoder="my-bert", dtype="auto", device="auto")
    assert "was not found" in encoder.IS_CHANGED(text_encoder="nowhere", dtype="auto", device="auto")
    stat = (extra / "upscalers" / "extra-x2.safetensors").stat()
    assert upscaler.IS_CHANGED(model_name="extra-x2.safetensors") == repr((stat.st_mtime_ns, stat.st_size))
    # ComfyUI skips its list check for exactly the inputs VALIDATE_INPUTS names, and asks it instead
    assert inspect.getfullargspec(encoder.VALIDATE_INPUTS).args == ["c", "text_encoder"]
    assert inspect.getfullargspec(upscaler.VALIDATE_INPUTS).args == ["c", "model_name"]
    assert encoder.VALIDATE_INPUTS(text_encoder="someone/hub-model") is True  # saved headless, runs here
    assert encoder.VALIDATE_INPUTS(text_encoder="te/my-bert") is True
    assert encoder.VALIDATE_INPUTS() is True  # linked: ComfyUI passes nothing
    assert "absolute path" in encoder.VALIDATE_INPUTS(text_encoder="/etc/passwd")
    assert "'..'" in upscaler.VALIDATE_INPUTS(model_name="../../x.safetensors")
    assert "expected a name" in upscaler.VALIDATE_INPUTS(model_name=7)


def test_inside_comfyui_the_image_loader_lists_uploads_and_loads_them(comfy_install, tmp_path):
    mappings, folder_paths, _, _ = comfy_install
    loader = mappings["ImageTuneLoadImage"]
    spec = loader.INPUT_TYPES()["required"]["image"]
    # the picture the pack ships is always there (the example workflows start on it), and the default
    assert spec[0] == ["imagetune-example.png"] and spec[1]["image_upload"] is True
    assert spec[1]["default"] == "imagetune-example.png"
    inputs = Path(folder_paths.get_input_directory())
    # what /upload/image writes: input/<name>, or input/<subfolder>/<name>
    Image.new("RGB", (6, 4), (250, 0, 0)).save(inputs / "photo.png")
    Image.new("RGBA", (3, 2), (0, 0, 250, 0)).save(_touch(inputs / "pasted" / "clip.png").with_suffix(".png"))
    Image.new("RGB", (3, 2)).save(inputs / "example.png")
    _touch(inputs / "notes.txt")
    _touch(inputs / ".hidden.png")
    spec = loader.INPUT_TYPES()["required"]["image"]
    assert spec[0] == ["imagetune-example.png", "example.png", "pasted/clip.png", "photo.png"]
    image, mask = getattr(loader(), loader.FUNCTION)(image="pasted/clip.png", imagetune_unique_id="1")
    assert image.shape == (1, 2, 3, 3) and float(mask.min()) == 1.0  # fully transparent
    assert loader.VALIDATE_INPUTS(image="photo.png") is True
    assert "'..'" in loader.VALIDATE_INPUTS(image="../models/x.png")
    before = loader.IS_CHANGED(image="photo.png")
    Image.new("RGB", (8, 8), (0, 250, 0)).save(inputs / "photo.png")
    os.utime(inputs / "photo.png", ns=(1, 1))
    assert loader.IS_CHANGED(image="photo.png") != before  # an edited file runs again
