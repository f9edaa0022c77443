"""Declaring a node once: typed inputs and outputs on one small class.

Everything else (validation, the node catalog, CLI help and the ComfyUI V1 attributes) is
derived from these declarations; see ``validate.py`` and ``comfy_bridge.py``.

Example::

    class InvertNode(Node):
        "Invert an image."
        node_id = "ImageTuneInvert"
        category = "ImageTune/image"
        inputs = (Input("image", IMAGE),)
        outputs = (Output(IMAGE, "image"),)

        def run(self, ctx, image):
            return (1.0 - image,)
"""
from __future__ import annotations

import inspect
import math
import re
from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar, Iterable

from . import types as T
from .errors import NodeDefinitionError

NODE_ID_PREFIX = "ImageTune"
_MISSING = object()
_SEED_NAMES = ("seed", "noise_seed")


@dataclass(frozen=True)
class Input:
    """One declared input: a widget (INT, FLOAT, STRING, BOOLEAN, COMBO) or a socket type."""

    name: str
    type: str
    default: Any = _MISSING
    min: float | None = None
    max: float | None = None
    step: float | None = None
    choices: tuple[str, ...] | None = None
    multiline: bool = False
    optional: bool = False
    tooltip: str = ""
    force_input: bool = False
    control_after_generate: bool | None = None
    #: a COMBO's further choices, listed when asked (a callable returning names, e.g. a model
    #: kind or the input folder's files); the declared ``choices`` come first and are always there
    listing: Callable[[], Iterable[str]] | None = None
    #: a COMBO that also takes a value outside its choices (a path under a model root, a hub id):
    #: headless validation leaves it to the node's ``check_inputs``, and inside ComfyUI the
    #: bridge's VALIDATE_INPUTS does the same in place of ComfyUI's list check
    open: bool = False
    #: the front end shows an upload button and a preview (ComfyUI's LoadImage option)
    image_upload: bool = False

    @property
    def is_widget(self) -> bool:
        """True when the value can be typed in (a literal) rather than only linked."""
        return self.type in T.WIDGET_TYPES

    @property
    def has_default(self) -> bool:
        """True when a default value was declared."""
        return self.default is not _MISSING

    @property
    def absent_value(self) -> Any:
        """What ``run`` receives when the workflow leaves this (optional) input out."""
        return self.default if self.has_default else None

    def as_declared(self, value: Any) -> Any:
        """A literal in this input's declared type: a whole number for a FLOAT becomes a float and an
        integral float for an INT an int, as ComfyUI converts them (its front end saves 2.0 as 2)."""
        if isinstance(value, bool):
            return value
        if self.type == T.FLOAT and isinstance(value, int):
            return float(value)
        if self.type == T.INT and isinstance(value, float) and value.is_integer():
            return int(value)
        return value

    def listed_choices(self) -> tuple[str, ...]:
        """A COMBO's choices now: the declared ones, then what ``listing`` finds at this call (so a
        model added to a folder shows at the next ComfyUI Refresh or ``imagetune nodes``)."""
        declared = tuple(self.choices or ())
        if self.listing is None:
            return declared
        return tuple(dict.fromkeys(declared + tuple(n for n in self.listing() if isinstance(n, str))))

    @property
    def has_control_widget(self) -> bool:
        """True when ComfyUI's front end adds a 'control after generate' widget after this one."""
        if self.control_after_generate is not None:
            return bool(self.control_after_generate)
        return self.type == T.INT and self.name in _SEED_NAMES


@dataclass(frozen=True)
class Output:
    """One declared output slot."""

    type: str
    name: str
    tooltip: str = ""


def combo(name: str, choices, default: str | None = None, **kw) -> Input:
    """Declare a COMBO input; the default is the first choice unless given."""
    choices = tuple(choices)
    return Input(name, T.COMBO, default=choices[0] if default is None and choices else default,
                 choices=choices, **kw)


@dataclass
class _Checks:
    problems: list[str] = field(default_factory=list)

    def require(self, ok: bool, message: str) -> None:
        if not ok:
            self.problems.append(message)


class Node:
    """Base class of every node. Subclasses declare the class attributes below and ``run``.

    ``run(self, ctx, **inputs)`` receives the execution context and one keyword per input
    (optional inputs that are absent get their declared default or ``None``) and returns a
    tuple with one value per output. A node must never modify its inputs in place: outputs
    are cached and shared between nodes and runs.
    """

    node_id: ClassVar[str]
    display_name: ClassVar[str] = ""
    category: ClassVar[str] = "ImageTune"
    description: ClassVar[str] = ""
    inputs: ClassVar[tuple[Input, ...]] = ()
    outputs: ClassVar[tuple[Output, ...]] = ()
    output_node: ClassVar[bool] = False
    version: ClassVar[str] = "1.0.0"
    #: ComfyUI core node names implemented by our runtime are marked so they are never
    #: registered into ComfyUI (which has its own).
    comfy_core: ClassVar[bool] = False

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if "node_id" not in cls.__dict__:
            return  # an abstract helper base class
        # Read from the class's own dict: a subclass of another node declares its own text.
        if not cls.__dict__.get("description"):
            cls.description = inspect.cleandoc(cls.__dict__.get("__doc__") or "")
        if not cls.__dict__.get("display_name"):
            cls.display_name = _title_from_id(cls.node_id, cls.comfy_core)
        _check_definition(cls)

    def run(self, ctx, **inputs) -> tuple:  # pragma: no cover - abstract
        raise NotImplementedError

    @classmethod
    def fingerprint(cls, ctx, **literals) -> Any:
        """Extra cache-key material for nodes that read the outside world (files).

        Return something hashable that changes when the outside input changes; the default
        is ``None`` (the output depends on the inputs alone).
        """
        return None

    @classmethod
    def check_inputs(cls, **literals) -> list[tuple[str, str]]:
        """Node-specific checks of literal inputs before anything runs.

        Returns ``(input_name, message)`` pairs; the default finds nothing.
        """
        return []

    @classmethod
    def input(cls, name: str) -> Input:
        """The declared input called ``name``."""
        for spec in cls.inputs:
            if spec.name == name:
                return spec
        raise KeyError(f"{cls.node_id} has no input '{name}'")


#: words with a capital inside, which no case rule can split right ('LiT' would read 'Li T')
SPELLED_WORDS = ("LiT",)
#: a spelled word; an acronym (capitals not followed by a lower-case letter: 'GAN' in 'GANLatent');
#: a word; a number with its unit ("4x")
_WORD = re.compile("|".join(f"{w}(?![a-z])" for w in SPELLED_WORDS) + r"|[A-Z]+(?![a-z])|[A-Z]?[a-z]+|[0-9]+[a-z]*")


def id_words(name: str) -> list[str]:
    """The words of a CamelCase id: 'GANLatent' -> ['GAN', 'Latent'], 'LiTBestOfN' -> ['LiT', 'Best', 'Of', 'N']."""
    return _WORD.findall(name)


def _title_from_id(node_id: str, comfy_core: bool = False) -> str:
    """'ImageTuneUnsharpMask' -> 'Unsharp Mask (ImageTune)'; a ComfyUI core name keeps its words alone."""
    if comfy_core or not node_id.startswith(NODE_ID_PREFIX):
        return " ".join(id_words(node_id)) or node_id
    words = " ".join(id_words(node_id[len(NODE_ID_PREFIX):]))
    return f"{words} (ImageTune)" if words else node_id


def _check_definition(cls: type[Node]) -> None:
    """Raise NodeDefinitionError naming every mistake in a node's declaration."""
    c = _Checks()
    name = cls.__name__
    c.require(isinstance(cls.node_id, str) and (cls.comfy_core or cls.node_id.startswith(NODE_ID_PREFIX))
              and re.fullmatch(r"[A-Za-z0-9_]+", cls.node_id or "") is not None,
              f"node_id {cls.node_id!r} must be an identifier starting with {NODE_ID_PREFIX!r}")
    c.require(bool(cls.category) and (cls.comfy_core or cls.category.startswith(NODE_ID_PREFIX + "/")),
              f"category {cls.category!r} must be under 'ImageTune/'")
    c.require(re.fullmatch(r"\d+\.\d+\.\d+", cls.version or "") is not None,
              f"version {cls.version!r} is not semver (like 1.0.0)")
    c.require(bool(cls.description), "needs a docstring or description")
    c.require(cls.output_node or len(cls.outputs) > 0, "declares no outputs and is not an output node")
    seen: set[str] = set()
    for spec in cls.inputs:
        c.require(isinstance(spec, Input), f"inputs must be Input(...), got {spec!r}")
        if not isinstance(spec, Input):
            continue
        c.require(spec.name not in seen, f"input '{spec.name}' is declared twice")
        seen.add(spec.name)
        _check_input(c, spec)
    for out in cls.outputs:
        c.require(isinstance(out, Output), f"outputs must be Output(...), got {out!r}")
    _check_run_signature(c, cls)
    if c.problems:
        raise NodeDefinitionError(f"{name} ({cls.__dict__.get('node_id')}): " + "; ".join(c.problems))


def _check_input(c: _Checks, spec: Input) -> None:
    where = f"input '{spec.name}'"
    c.require(re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", spec.name) is not None, f"{where}: bad name")
    if spec.type == T.COMBO:
        c.require(bool(spec.choices) or spec.listing is not None, f"{where}: a COMBO needs choices or a listing")
    else:
        c.require(spec.listing is None and not spec.open and not spec.image_upload,
                  f"{where}: listing, open and image_upload are for a COMBO")
    if spec.type in (T.INT, T.FLOAT):
        lo = -math.inf if spec.min is None else spec.min
        hi = math.inf if spec.max is None else spec.max
        c.require(lo <= hi, f"{where}: min > max")
    if spec.has_default and spec.is_widget:
        from .validate import literal_problem  # local: validate imports this module

        problem = literal_problem(spec, spec.default)
        c.require(problem is None, f"{where}: default {spec.default!r}: {problem and problem[1]}")
    if not spec.is_widget:
        c.require(not spec.has_default, f"{where}: a {spec.type} socket cannot have a default")


def _check_run_signature(c: _Checks, cls: type[Node]) -> None:
    params = inspect.signature(cls.run).parameters
    if any(p.kind is p.VAR_KEYWORD for p in params.values()):
        return
    names = [n for n in params if n not in ("self", "ctx")]
    declared = [spec.name for spec in cls.inputs if isinstance(spec, Input)]
    c.require(set(names) == set(declared),
              f"run() parameters {names} must match the declared inputs {declared}")
