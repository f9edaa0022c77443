"""Loading workflows in ComfyUI's API ("prompt") format, and applying overrides.

The API format is ``{"<id>": {"class_type": str, "inputs": {name: literal | [src_id, slot]},
"_meta": {"title": str}}}``; a literal list is wrapped as ``{"__value__": [...]}``.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from .errors import WorkflowFormatError
from .limits import check_bounds, checked_copy, parse_json_int

MAX_WORKFLOW_BYTES = 64 * 1024 * 1024


def is_link(value: Any) -> bool:
    """True for a link ``[source_id: str, slot: int]`` as ComfyUI defines it."""
    return (isinstance(value, list) and len(value) == 2 and isinstance(value[0], str)
            and isinstance(value[1], int) and not isinstance(value[1], bool))


def unwrap_literal(value: Any) -> Any:
    """Undo the front end's ``{"__value__": [...]}`` wrapping of list literals."""
    if isinstance(value, dict) and set(value) == {"__value__"}:
        return value["__value__"]
    return value


def parse_json(text: str | bytes, source: str = "workflow") -> Any:
    """Parse strict JSON within the limits of ``limits.py``; any problem is a WorkflowFormatError.

    Syntax errors name the line and column; a leading byte-order mark is allowed (editors and
    ComfyUI's front end on Windows write one).
    """
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise WorkflowFormatError(f"{source}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    text = text.removeprefix("\ufeff")
    try:
        data = json.loads(text, parse_constant=_reject_constant, parse_int=parse_json_int)
    except json.JSONDecodeError as exc:
        raise WorkflowFormatError(
            f"{source}: malformed JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}") from None
    except RecursionError:
        raise WorkflowFormatError(f"{source}: JSON nested too deeply") from None
    check_bounds(data, source)
    return data


def _reject_constant(name: str):
    raise json.JSONDecodeError(f"{name} is not valid JSON", name, 0)


def read_source(source: Any) -> Any:
    """The parsed JSON of a workflow source: a copy of a dict, JSON text, or a JSON/PNG file's content.

    Always within the limits of ``limits.py``, and the caller's own: a dict is copied as it is checked.
    """
    if isinstance(source, dict):
        return checked_copy(source)
    if isinstance(source, (str, os.PathLike)) and looks_like_path(source):
        return _read_file(Path(source))
    if isinstance(source, (str, bytes)):
        return parse_json(source)
    raise WorkflowFormatError(f"workflow must be a dict, JSON text or a path, got {type(source).__name__}")


def load_workflow(source: Any, registry=None) -> dict:
    """Load an API-format workflow from a dict, a JSON string, or a path to a JSON/PNG file.

    UI-format workflows (with "nodes" and "links") and PNGs are converted, mapping widget
    values with ``registry`` (the pack's nodes when None); see ``interchange.py``.
    """
    return as_api_format(read_source(source), registry)


def looks_like_path(source) -> bool:
    """True for a path, or text that is not JSON and is short enough to be one."""
    if isinstance(source, os.PathLike):
        return True
    text = source.lstrip().removeprefix("\ufeff").lstrip()
    return not text.startswith(("{", "[")) and len(text) < 4096


def _read_file(path: Path) -> Any:
    if not path.is_file():
        raise WorkflowFormatError(f"{path}: no such workflow file")
    if path.stat().st_size > MAX_WORKFLOW_BYTES:
        raise WorkflowFormatError(f"{path}: larger than {MAX_WORKFLOW_BYTES} bytes")
    raw = path.read_bytes()
    if raw.startswith(b"\x89PNG"):
        from .interchange import workflow_from_png

        return workflow_from_png(raw, str(path))
    return parse_json(raw, str(path))


def as_api_format(data: Any, registry=None) -> dict:
    """Return ``data`` in API format, converting a UI-format workflow when needed."""
    if isinstance(data, dict) and "nodes" in data and isinstance(data.get("nodes"), list):
        from .interchange import ui_to_api

        return ui_to_api(data, registry)
    if isinstance(data, dict) and isinstance(data.get("prompt"), dict) and "class_type" not in data:
        data = data["prompt"]  # a POST /prompt body
    if not isinstance(data, dict):
        raise WorkflowFormatError(
            f"workflow must be a JSON object of nodes keyed by id, got {type(data).__name__}")
    return data


def coerce_override(input_type: str, raw: str) -> Any:
    """Turn a command-line ``--set`` value into the declared widget type."""
    if input_type == "INT":
        return int(raw, 0)
    if input_type == "FLOAT":
        return float(raw)
    if input_type == "BOOLEAN":
        lowered = raw.strip().lower()
        if lowered in ("true", "1", "yes", "on"):
            return True
        if lowered in ("false", "0", "no", "off"):
            return False
        raise ValueError(f"expected true or false, got {raw!r}")
    return raw


_EXPECTED = {"INT": "a whole number (INT)", "FLOAT": "a number (FLOAT)", "BOOLEAN": "true or false (BOOLEAN)"}


def apply_overrides(workflow: dict, overrides: dict[str, Any], registry=None) -> dict:
    """Return a copy of ``workflow`` with ``{"ID.INPUT": value}`` overrides applied.

    String values are coerced to the declared widget type when a registry is given. Only the
    overridden nodes (and their inputs) are new objects; the others are ``workflow``'s own.
    """
    result = dict(workflow)
    copied = set()
    for key, value in overrides.items():
        node_id, sep, name = str(key).partition(".")
        if not sep or not name:
            raise WorkflowFormatError(f"override {key!r}: expected NODE_ID.INPUT=VALUE")
        node = result.get(node_id)
        if not isinstance(node, dict):
            raise WorkflowFormatError(f"override {key!r}: the workflow has no node {node_id!r}")
        if node_id not in copied:
            if not isinstance(node.get("inputs", {}), dict):
                raise WorkflowFormatError(f"override {key!r}: node {node_id}'s inputs are not an object")
            node = result[node_id] = dict(node, inputs=dict(node.get("inputs", {})))
            copied.add(node_id)
        if isinstance(value, str) and registry is not None:
            cls = registry.get(node.get("class_type"))
            spec = next((i for i in cls.inputs if i.name == name), None) if cls else None
            if spec is None and cls is not None:
                raise WorkflowFormatError(f"override {key!r}: {cls.node_id} has no input {name!r}")
            if spec is not None:
                try:
                    value = coerce_override(spec.type, value)
                except ValueError:
                    raise WorkflowFormatError(f"override {key!r}: node {node_id} ({cls.node_id}) input {name!r} "
                                              f"expects {_EXPECTED.get(spec.type, spec.type)}, got {value[:80]!r}") from None
        check_bounds({node_id: {"inputs": {name: value}}}, f"override {key!r}")
        node["inputs"][name] = value
    return result
