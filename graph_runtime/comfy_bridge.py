"""Deriving ComfyUI V1 node classes from our node declarations.

Building the mappings imports nothing from ComfyUI; ``comfy`` and ``folder_paths`` are imported
inside ``execute`` and only when present, so the same classes also run outside ComfyUI.
"""
from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

from . import types as T
from .context import ExecutionContext
from .spec import Input, Node

# Prefixed kwarg names, so they never clash with a declared input called "prompt".
HIDDEN_INPUTS = {"imagetune_prompt": "PROMPT", "imagetune_extra_pnginfo": "EXTRA_PNGINFO",
                 "imagetune_unique_id": "UNIQUE_ID"}


def input_options(spec: Input, choices: tuple[str, ...] = ()) -> dict[str, Any]:
    """The options dict of one input in ComfyUI's INPUT_TYPES grammar (``choices``: a COMBO's list now)."""
    opts: dict[str, Any] = {}
    if spec.has_default and (spec.type != T.COMBO or spec.default in choices):
        opts["default"] = spec.default  # a COMBO default not there now (no example.png): the front end takes the first
    for key in ("min", "max", "step"):
        value = getattr(spec, key)
        if value is not None:
            opts[key] = value
    if spec.type in (T.INT, T.FLOAT) and spec.max is None:
        opts["max"] = T.MAX_SEED if spec.type == T.INT else 1e9  # the front end's default max is 2048
    if spec.type in (T.INT, T.FLOAT) and spec.min is None:
        opts["min"] = -opts["max"] if spec.type == T.FLOAT else 0
    if spec.multiline:
        opts["multiline"] = True
    if spec.tooltip:
        opts["tooltip"] = spec.tooltip
    if spec.force_input:
        opts["forceInput"] = True
    if spec.control_after_generate is not None:
        opts["control_after_generate"] = spec.control_after_generate
    if spec.image_upload:
        opts["image_upload"] = True
    return opts


def input_types(cls: type[Node]) -> dict[str, dict]:
    """``INPUT_TYPES()`` for a node: required, optional and hidden inputs in declared order.

    A COMBO's list is made at each call: ComfyUI calls this again for every /object_info (Refresh).
    """
    result: dict[str, dict] = {"required": {}, "optional": {}}
    for spec in cls.inputs:
        choices = spec.listed_choices() if spec.type == T.COMBO else ()
        kind = list(choices) if spec.type == T.COMBO else spec.type
        result["optional" if spec.optional else "required"][spec.name] = (kind, input_options(spec, choices))
    if not result["optional"]:
        del result["optional"]
    result["hidden"] = dict(HIDDEN_INPUTS)
    return result


class ComfyContext(ExecutionContext):
    """An execution context that reports to ComfyUI's progress bar and interrupt flag."""

    def progress(self, value: int, total: int) -> None:
        import comfy.utils

        bar = self.__dict__.get("_bar")
        if bar is None or bar.total != total:
            bar = self.__dict__["_bar"] = comfy.utils.ProgressBar(total, node_id=self.node_id or None)
        bar.update_absolute(value, total)
        self.check_interrupt()

    def check_interrupt(self) -> None:
        import comfy.model_management

        comfy.model_management.throw_exception_if_processing_interrupted()

    def free_memory(self, bytes_needed: int) -> None:
        import comfy.model_management as mm

        mm.free_memory(bytes_needed, mm.get_torch_device())

    @property
    def offload_after_use(self) -> bool:
        return True


def comfy_context(unique_id=None, prompt=None, extra_pnginfo=None) -> ExecutionContext:
    """The context for a node running inside ComfyUI, or a plain one where ComfyUI is absent."""
    try:
        import comfy.model_management as mm
        import folder_paths
    except ImportError:
        return ExecutionContext(node_id=str(unique_id or ""), prompt=prompt, extra_pnginfo=extra_pnginfo)
    ctx = ComfyContext(
        device=str(mm.get_torch_device()),
        output_dir=Path(folder_paths.get_output_directory()),
        input_dir=Path(folder_paths.get_input_directory()),
        prompt=prompt, extra_pnginfo=extra_pnginfo, node_id=str(unique_id or ""),
    )
    ctx.models_dirs = [Path(folder_paths.models_dir)] + ctx.models_dirs
    return ctx


def comfy_class(cls: type[Node]) -> type:
    """A ComfyUI V1 class for one node, derived from its declaration."""

    def execute(self, imagetune_unique_id=None, imagetune_prompt=None, imagetune_extra_pnginfo=None,
                **kwargs):
        ctx = comfy_context(imagetune_unique_id, imagetune_prompt, imagetune_extra_pnginfo)
        for spec in cls.inputs:
            # ComfyUI converts widget values itself; a value from a custom node may still be 2 for 2.0
            kwargs[spec.name] = spec.as_declared(kwargs[spec.name]) if spec.name in kwargs else spec.absent_value
        return cls().run(ctx, **kwargs)

    attrs = {
        "INPUT_TYPES": classmethod(lambda c: input_types(cls)),
        "RETURN_TYPES": tuple(o.type for o in cls.outputs),
        "RETURN_NAMES": tuple(o.name for o in cls.outputs),
        "OUTPUT_TOOLTIPS": tuple(o.tooltip for o in cls.outputs),
        "FUNCTION": "execute",
        "CATEGORY": cls.category,
        "OUTPUT_NODE": cls.output_node,
        "DESCRIPTION": cls.description,
        "execute": execute,
        "imagetune_node": cls,
        "__doc__": cls.description,
    }
    if cls.fingerprint.__func__ is not Node.fingerprint.__func__:
        def IS_CHANGED(c, **literals):  # noqa: N802 - ComfyUI's name
            # ComfyUI also passes the hidden inputs here; a fingerprint sees declared inputs only
            literals = {k: v for k, v in literals.items() if k not in HIDDEN_INPUTS}
            return repr(cls.fingerprint(comfy_context(), **literals))

        attrs["IS_CHANGED"] = classmethod(IS_CHANGED)
    validator = open_inputs_validator(cls)
    if validator is not None:
        attrs["VALIDATE_INPUTS"] = classmethod(validator)
    return type(cls.__name__, (), attrs)


def open_inputs_validator(cls: type[Node]):
    """VALIDATE_INPUTS for a node's open COMBOs (a name outside the list is allowed), or None.

    ComfyUI skips its own list check for exactly the inputs this function's signature names, so
    it names the open ones alone (min/max and list checks of the others stay ComfyUI's), and
    judges their values as headless validation does: text, then the node's ``check_inputs``.
    """
    from .validate import literal_problem

    names = [spec.name for spec in cls.inputs if spec.type == T.COMBO and spec.open]
    if not names:
        return None

    def VALIDATE_INPUTS(c, **literals):  # noqa: N802 - ComfyUI's name
        given = {k: v for k, v in literals.items() if k in names and v is not None}  # None: linked
        problems = [p[1] for k, v in given.items() if (p := literal_problem(cls.input(k), v))]
        if not problems:
            problems = [message for _, message in cls.check_inputs(**given)]
        return True if not problems else "; ".join(problems)

    params = [inspect.Parameter("c", inspect.Parameter.POSITIONAL_OR_KEYWORD)]
    params += [inspect.Parameter(n, inspect.Parameter.POSITIONAL_OR_KEYWORD, default=None) for n in names]
    VALIDATE_INPUTS.__signature__ = inspect.Signature(params)  # what ComfyUI's getfullargspec reads
    return VALIDATE_INPUTS


def register_listed_folders(node_classes, folder_paths) -> None:
    """Tell ComfyUI's ``folder_paths`` about the model folders our dropdowns list (a LiT folder of
    our own), so extra_model_paths.yaml entries of those names are searched too."""
    sources = {spec.listing for cls in node_classes for spec in cls.inputs if spec.listing is not None}
    for source in sources:
        register = getattr(source, "register_with_comfy", None)
        if register is not None:
            register(folder_paths)


def to_comfy_mappings(node_classes) -> tuple[dict[str, type], dict[str, str]]:
    """NODE_CLASS_MAPPINGS and NODE_DISPLAY_NAME_MAPPINGS for the nodes ComfyUI should see.

    Nodes that re-implement a ComfyUI core node (``comfy_core``) stay out: ComfyUI has its own.
    """
    from .listings import comfy_folder_paths

    classes, names = {}, {}
    if comfy_folder_paths() is not None:
        register_listed_folders(node_classes, comfy_folder_paths())
    for cls in node_classes:
        if cls.comfy_core:
            continue
        classes[cls.node_id] = comfy_class(cls)
        names[cls.node_id] = cls.display_name
    return classes, names


def object_info(node_classes) -> dict[str, dict]:
    """The node catalog in the shape of ComfyUI's ``/object_info``."""
    info = {}
    for cls in node_classes:
        types = input_types(cls)
        info[cls.node_id] = {
            "input": types,
            "input_order": {k: list(v) for k, v in types.items()},
            "output": [o.type for o in cls.outputs],
            "output_is_list": [False] * len(cls.outputs),
            "output_name": [o.name for o in cls.outputs],
            "output_tooltips": [o.tooltip for o in cls.outputs],
            "name": cls.node_id,
            "display_name": cls.display_name,
            "description": cls.description,
            "python_module": "custom_nodes.imagetune",
            "category": cls.category,
            "output_node": cls.output_node,
        }
    return info
