"""Bounds on what a workflow may hold, checked in one iterative walk before anything else reads it.

Workflows are untrusted input. Without bounds, a list nested 950 levels deep overflows the stack
when the workflow is copied or hashed, an integer with thousands of digits breaks ``int()`` and
``float()``, and a graph of 50,000 nodes keeps validation busy for minutes. Every limit here is
far above what a real ComfyUI workflow uses, and each refusal names the node and input.
"""
from __future__ import annotations

import copy
from typing import Any

from .errors import WorkflowFormatError

MAX_NODES = 20_000          # nodes in a workflow (API), or in a UI file after flattening subgraphs
MAX_LINKS = 100_000         # links: entries of a UI file's links lists, linked inputs of an API file
MAX_INPUTS_PER_NODE = 1_000  # inputs of one API node
MAX_DEPTH = 100             # nesting of objects and lists, counted from the top of the file
MAX_STRING_CHARS = 1_000_000  # one text value
MAX_NAME_CHARS = 1_000      # one object key: node ids, input names
MAX_INT_DIGITS = 30         # one integer (a 64-bit seed has 20 digits)
MAX_LISTED = 50             # problems (or cycle members, dependent outputs) spelled out in one message

_INT_BOUND = 10 ** MAX_INT_DIGITS


class OversizedNumber:
    """Stands in for a JSON integer too long to convert, so the bounds check can say where it is."""

    __slots__ = ("digits",)

    def __init__(self, digits: int):
        self.digits = digits

    def __repr__(self) -> str:
        return f"<a number with {self.digits} digits>"


def parse_json_int(text: str) -> Any:
    """``json``'s ``parse_int`` hook: converting thousands of digits is slow, and above 4,300 an error."""
    return int(text) if len(text) <= MAX_INT_DIGITS + 1 else OversizedNumber(len(text.lstrip("-")))


def checked_copy(data: Any, source: str = "workflow") -> Any:
    """A copy of ``data`` (no one else can change it) once it is checked to be within every limit;
    raises WorkflowFormatError as ``check_bounds`` does when it is not."""
    if not _count_problems(data):
        copied = plain_copy(data)
        if copied is not NOT_PLAIN:
            return copied
    check_bounds(data, source)
    return copy.deepcopy(data)  # within the limits (its depth too), but not plain JSON: a tuple, an object


def check_bounds(data: Any, source: str = "workflow") -> None:
    """Raise WorkflowFormatError listing what in ``data`` breaks a limit (the first MAX_LISTED)."""
    problems = bound_problems(data)
    if problems:
        shown = [f"  {where}: {message}" for where, message in problems[:MAX_LISTED]]
        if len(problems) > MAX_LISTED:
            shown.append(f"  ... and {len(problems) - MAX_LISTED} more")
        raise WorkflowFormatError(f"{source}: the workflow exceeds the limits for untrusted workflows:\n"
                                  + "\n".join(shown), node_id=problems[0][0].node_id)


class Where:
    """A place in a workflow, named the way a reader finds it: a node, its field or input, or a path."""

    __slots__ = ("node_id", "field", "name", "path")

    def __init__(self, node_id: str | None, field: str | None, name: str | None, path: tuple):
        self.node_id, self.field, self.name, self.path = node_id, field, name, path

    def __str__(self) -> str:
        if self.node_id is None:
            text = "".join(f"[{p}]" if isinstance(p, int) else f".{_short(p)}" for p in self.path)
            return "at " + (text.lstrip(".") or "the top level")
        if self.name is not None:
            return f"node {_short(self.node_id)} input {_short(self.name)!r}"
        return f"node {_short(self.node_id)}" + (f" {_short(self.field)}" if self.field else "")


def _short(text: Any) -> str:
    text = _name(text)
    return text if len(text) <= 40 else text[:40] + "..."


def _name(value: Any, fallback: str = "?") -> str:
    """A node id or key as text; a non-text one only when small (``str`` of a huge int raises)."""
    if isinstance(value, str):
        return value
    if isinstance(value, int) and -_INT_BOUND < value < _INT_BOUND:
        return str(value)
    return fallback


def bound_problems(data: Any) -> list[tuple[Where, str]]:
    """Every place where ``data`` (a workflow in any form, or any parsed JSON) breaks a limit.

    The walk is iterative and stops descending at MAX_DEPTH, so it cannot overflow the stack.
    """
    problems = _count_problems(data)
    if problems:
        return problems  # refuse at once instead of walking a huge graph
    if plain_copy(data) is not NOT_PLAIN:
        return problems
    places = _Places(data)
    stack = [(data, 0, Where(None, None, None, ()))]
    while stack:
        value, depth, where = stack.pop()
        if isinstance(value, str):
            if len(value) > MAX_STRING_CHARS:
                problems.append((where, f"text of {len(value):,} characters, more than {MAX_STRING_CHARS:,}"))
            elif not is_unicode(value):
                problems.append((where, "text with a lone surrogate (\\ud800-\\udfff), which is not Unicode"))
        elif isinstance(value, (dict, list, tuple)):
            if depth >= MAX_DEPTH:
                problems.append((where, f"nested more than {MAX_DEPTH} levels deep"))
                continue
            is_dict = isinstance(value, dict)
            for key, item in value.items() if is_dict else enumerate(value):
                if is_dict and (problem := _key_problem(key)):
                    problems.append((where, problem))
                    continue
                stack.append((item, depth + 1, places.child(where, key, item)))
        elif isinstance(value, OversizedNumber):
            problems.append((where, f"a number with {value.digits:,} digits, more than {MAX_INT_DIGITS}"))
        elif isinstance(value, int) and not isinstance(value, bool) and not -_INT_BOUND < value < _INT_BOUND:
            problems.append((where, f"an integer of more than {MAX_INT_DIGITS} digits"))
    return problems


def plain_copy(data: Any) -> Any:
    """A copy of ``data`` when it is plain JSON (dict, list, str, int, float, bool, None) within every
    limit but the counts of ``_count_problems``; else ``NOT_PLAIN``.

    The fast path of the checks: it names no places, so it keeps no paths; anything unusual (a
    limit broken, a tuple, a str subclass, an OversizedNumber) answers NOT_PLAIN and the full walk
    of ``bound_problems`` then finds and names the problems, if any. Copying while checking costs
    little more than checking, and gives the caller data no one else can change.
    """
    try:
        return copy_plain_at(data, 0)
    except NotPlain:
        return NOT_PLAIN


NOT_PLAIN = object()


class NotPlain(Exception):
    """Raised by ``copy_plain_at`` for a value that is not plain JSON within the limits."""


def copy_plain_at(value: Any, depth: int) -> Any:
    """A copy of ``value``, found ``depth`` levels down, when it is plain JSON within the limits; else
    raises NotPlain. ``plain_copy``'s walk; its recursion ends at MAX_DEPTH. (Scalars are checked
    inline, in one loop for objects and lists: a call per value would double the time.)"""
    kind = type(value)
    if kind is dict:
        out, items = {}, value.items()
    elif kind is list:
        out, items = [None] * len(value), enumerate(value)
    elif kind is str and len(value) <= MAX_STRING_CHARS and (value.isascii() or is_unicode(value)):
        return value
    elif (kind is int and -_INT_BOUND < value < _INT_BOUND) or kind in _OTHER_SCALARS:
        return value
    else:
        raise NotPlain
    if depth >= MAX_DEPTH:
        raise NotPlain
    for key, item in items:
        if kind is dict and (type(key) is not str or len(key) > MAX_NAME_CHARS
                             or not (key.isascii() or is_unicode(key))):
            raise NotPlain
        inner = type(item)
        if inner is str:
            if len(item) > MAX_STRING_CHARS or not (item.isascii() or is_unicode(item)):
                raise NotPlain
        elif inner is int:
            if not -_INT_BOUND < item < _INT_BOUND:
                raise NotPlain
        elif inner is list and len(item) == 2 and _is_plain_link(item) and depth + 1 < MAX_DEPTH:
            item = [item[0], item[1]]  # a link, the commonest list: copied without the recursion
        elif inner not in _OTHER_SCALARS:
            item = copy_plain_at(item, depth + 1)
        out[key] = item
    return out


def _is_plain_link(pair: list) -> bool:
    """True for ``[id: str, slot: int]`` within the limits."""
    node_id, slot = pair
    return (type(node_id) is str and type(slot) is int and len(node_id) <= MAX_STRING_CHARS
            and (node_id.isascii() or is_unicode(node_id)) and -_INT_BOUND < slot < _INT_BOUND)


_OTHER_SCALARS = frozenset({float, bool, type(None)})


def is_unicode(text: str) -> bool:
    """True for text without a lone surrogate (which UTF-8 cannot encode)."""
    if text.isascii():
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _key_problem(key: Any) -> str | None:
    if not isinstance(key, str):
        return f"an object key must be text, got {type(key).__name__} {_short(repr(key))}"
    if len(key) > MAX_NAME_CHARS:
        return f"a name (object key) of {len(key):,} characters, more than {MAX_NAME_CHARS:,}"
    if not is_unicode(key):
        return "a name (object key) with a lone surrogate, which is not Unicode"
    return None


def _is_ui(data: Any) -> bool:
    return isinstance(data, dict) and isinstance(data.get("nodes"), list)


def _nodes_of(data: Any) -> Any:
    """The object of API nodes: the data itself, or a POST /prompt body's ``prompt``."""
    if isinstance(data, dict) and isinstance(data.get("prompt"), dict) and "class_type" not in data:
        return data["prompt"]
    return data


class _Places:
    """Names the place of each value: node, field and input near the top; deeper values share it."""

    def __init__(self, data: Any):
        self.ui = _is_ui(data)
        nodes = _nodes_of(data)
        # the path of the API nodes object: () for a plain API file, ("prompt",) for a POST body
        self.nodes_path = None if self.ui or not isinstance(nodes, dict) else (() if nodes is data else ("prompt",))
        self.node_depth = 2 if self.ui else len(self.nodes_path or ()) + 1

    def child(self, where: Where, key: Any, item: Any) -> Where:
        """The place of ``parent[key]`` where ``where`` is the parent's place."""
        path = where.path
        if where.node_id is not None:
            if len(path) == self.node_depth:  # a field of the node: inputs, class_type, _meta, ...
                return Where(where.node_id, _name(key), None, path + (key,))
            if not self.ui and len(path) == self.node_depth + 1 and where.field == "inputs":
                return Where(where.node_id, "inputs", _name(key), path + (key,))
            return where
        if len(path) >= 4:
            return where
        path += (key,)
        if self.ui and len(path) == 2 and path[0] == "nodes":
            return Where(_name(item.get("id"), f"#{key}") if isinstance(item, dict) else f"#{key}", None, None, path)
        if self.nodes_path is not None and path[:-1] == self.nodes_path:
            return Where(_name(key), None, None, path)
        return Where(None, None, None, path)


def _count_problems(data: Any) -> list[tuple[Where, str]]:
    """Node, link and input counts, checked before the walk (they bound the work that follows)."""
    top = Where(None, None, None, ())
    if _is_ui(data):
        nodes = len(data["nodes"])
        links = data.get("links") if isinstance(data.get("links"), list) else []
        if nodes > MAX_NODES:
            return [(top, f"too many nodes: {nodes:,}, more than {MAX_NODES:,}")]
        if len(links) > MAX_LINKS:
            return [(top, f"too many links: {len(links):,}, more than {MAX_LINKS:,}")]
        return []
    nodes = _nodes_of(data)
    if not isinstance(nodes, dict):
        return []
    if len(nodes) > MAX_NODES:
        return [(top, f"too many nodes: {len(nodes):,}, more than {MAX_NODES:,}")]
    problems, all_inputs = [], []
    for node_id, node in nodes.items():
        inputs = node.get("inputs") if isinstance(node, dict) else None
        if not isinstance(inputs, dict):
            continue
        if len(inputs) > MAX_INPUTS_PER_NODE:
            problems.append((Where(_name(node_id), None, None, (node_id,)),
                             f"too many inputs: {len(inputs):,}, more than {MAX_INPUTS_PER_NODE:,}"))
        all_inputs.append(inputs)
    if sum(map(len, all_inputs)) <= MAX_LINKS:
        return problems  # links are inputs: there cannot be too many
    links = sum(1 for inputs in all_inputs for v in inputs.values()
                if isinstance(v, list) and len(v) == 2 and isinstance(v[0], str))
    if links > MAX_LINKS:
        problems.insert(0, (top, f"too many links: {links:,}, more than {MAX_LINKS:,}"))
    return problems
