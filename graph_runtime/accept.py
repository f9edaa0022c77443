"""The fast path of preparing a dict workflow: one walk that copies it, checks the limits for
untrusted workflows and validates it, and that can only accept.

``checked_copy`` then ``validate`` walk every node twice (once for the limits and the copy, once
for the checks) and are written to name every problem. A valid workflow needs neither the second
walk nor the names: ``accept`` does both jobs per node in one loop and answers None at the first
doubt (anything outside the limits, of an unusual shape, or invalid); the caller then runs the
full checks, so every error still comes from them. It never accepts what they refuse, and its plan
is theirs (it may leave to them a workflow they accept, e.g. one with a bad node that no output
needs): ``tests/runtime/test_accept.py`` and a property test in ``test_properties.py`` compare them.
"""
from __future__ import annotations

from typing import Any

from .limits import MAX_INPUTS_PER_NODE, MAX_LINKS, MAX_NAME_CHARS, MAX_NODES, NotPlain, copy_plain_at, is_unicode
from .spec import Input, Node
from .validate import Plan, check_own_inputs, declared_inputs, id_order, literal_problem, types_match


def accept(workflow: Any, registry) -> Plan | None:
    """The plan of ``workflow`` (an API-format dict, copied: the plan's workflow is its own) when it is
    within the limits and valid; None when it may not be (then ``checked_copy`` and ``validate``
    decide and explain)."""
    if type(workflow) is not dict or len(workflow) > MAX_NODES or "prompt" in workflow:
        return None  # a POST /prompt body, a UI file or a huge graph: the full path reads those
    copy: dict[str, dict] = {}
    classes: dict[str, type[Node]] = {}
    sources: dict[str, list[str]] = {}  # node -> the nodes it links from
    links: list[tuple[str, int, str]] = []  # (source id, slot, input type) of every link
    tables: dict[str, tuple | None] = {}  # class_type -> what the walk needs of its class
    own_checks: list[str] = []  # the nodes whose class has checks of its own
    try:
        for node_id, node in workflow.items():
            if (type(node_id) is not str or len(node_id) > MAX_NAME_CHARS or type(node) is not dict
                    or not (node_id.isascii() or is_unicode(node_id))):
                return None
            class_type, inputs = node.get("class_type"), node.get("inputs", {})
            table = tables.get(class_type) if type(class_type) is str else None
            if table is None and type(class_type) is str and class_type not in tables:
                table = tables[class_type] = _class_table(registry.get(class_type))
            if table is None or type(inputs) is not dict or len(inputs) > MAX_INPUTS_PER_NODE:
                return None
            cls, specs, required, own_check = table
            sources[node_id] = srcs = []
            copied = _copy_inputs(inputs, specs, links, srcs)
            if copied is None or not required <= copied.keys():
                return None
            copy[node_id] = _copy_node(node, copied)
            classes[node_id] = cls
            if own_check:
                own_checks.append(node_id)
    except NotPlain:
        return None
    if len(links) > MAX_LINKS:
        return None
    for src, slot, input_type in links:
        src_cls = classes.get(src)
        if src_cls is None or not 0 <= slot < len(src_cls.outputs):
            return None
        output_type = src_cls.outputs[slot].type
        if output_type != input_type and not types_match(output_type, input_type):
            return None
    outputs = sorted((node_id for node_id, cls in classes.items() if cls.output_node), key=id_order)
    parents = _reachable_if_acyclic(sources, outputs) if outputs else None
    if parents is None:
        return None
    for node_id in own_checks:  # as validation runs them: on the nodes to run
        if node_id in parents and check_own_inputs(classes[node_id], copy[node_id].get("inputs", {})):
            return None
    return Plan(copy, {node_id: classes[node_id] for node_id in parents}, outputs, parents)


def _class_table(cls: type[Node] | None) -> tuple | None:
    """A registered class, its inputs by name, the names it requires and whether it has checks of its
    own; None for no class, or one whose declared names break the limits (the walk trusts them)."""
    if cls is None:
        return None
    specs, required, own_check = declared_inputs(cls)
    if not all(len(name) <= MAX_NAME_CHARS and is_unicode(name) for name in specs):
        return None
    return cls, specs, required, own_check


def _copy_inputs(inputs: dict, specs: dict[str, Input], links: list, srcs: list) -> dict | None:
    """A copy of one node's inputs when each is a declared one holding a link or a valid literal
    within the limits (its links appended to ``links``, their distinct sources to ``srcs``); else None."""
    copied = {}
    for name, value in inputs.items():
        spec = specs.get(name)
        if spec is None:
            return None
        kind = type(value)
        if kind is list:
            if len(value) != 2 or type(value[0]) is not str or type(value[1]) is not int:
                return None
            src, slot = value
            links.append((src, slot, spec.type))
            if src not in srcs:
                srcs.append(src)
            value = [src, slot]
        else:
            value = copy_plain_at(value, 3)  # checks a scalar, copies a wrapped list (node 1, inputs 2)
            if literal_problem(spec, value) is not None:
                return None
        copied[name] = value
    return copied


def _copy_node(node: dict, inputs: dict) -> dict:
    """A copy of one node, in its own key order, with its inputs copied already; other fields
    (_meta, ...) are checked and copied here."""
    copied = node.copy()
    if "inputs" in copied:
        copied["inputs"] = inputs
    others = len(copied) - 1 - ("inputs" in copied)  # fields beside class_type (a registered id) and inputs
    if others == 1 and "_meta" in copied:  # the one ComfyUI writes (its key is within the limits)
        copied["_meta"] = copy_plain_at(copied["_meta"], 2)
    elif others:
        for key in [key for key in copied if key != "inputs" and key != "class_type"]:
            if type(key) is not str or len(key) > MAX_NAME_CHARS or not (key.isascii() or is_unicode(key)):
                raise NotPlain
            copied[key] = copy_plain_at(copied[key], 2)
    return copied


def _reachable_if_acyclic(sources: dict[str, list[str]], outputs: list[str]) -> dict[str, list[str]] | None:
    """The output nodes and their ancestors, each with the nodes it links from, in the order a
    depth-first search finds them; None when they hold a cycle (a link back to a node on the path)."""
    parents: dict[str, list[str]] = {}
    on_path: set[str] = set()
    for output in outputs:
        if output in parents:
            continue
        parents[output] = sources[output]
        on_path.add(output)
        stack = [(output, iter(sources[output]))]
        while stack:
            node_id, pending = stack[-1]
            for src in pending:
                if src in on_path:
                    return None
                if src not in parents:
                    parents[src] = srcs = sources[src]
                    if srcs:
                        on_path.add(src)
                        stack.append((src, iter(srcs)))
                        break
            else:
                stack.pop()
                on_path.discard(node_id)
    return parents
