"""Validation before any work: find every problem, per node, in ComfyUI's error shape."""
from __future__ import annotations

import heapq
import math
from dataclasses import dataclass, field
from typing import Any

import networkx as nx

from . import types as T
from .limits import MAX_LISTED, MAX_NAME_CHARS, bound_problems
from .spec import Input, Node
from .workflow import is_link, unwrap_literal


@dataclass
class Plan:
    """A validated workflow: the nodes to run, in order, with their classes and literal inputs."""

    workflow: dict
    order: list[str]
    classes: dict[str, type[Node]]
    outputs: list[str]
    graph: nx.DiGraph = field(repr=False)
    static_keys: dict[str, str] = field(default_factory=dict, repr=False)


def literal_problem(spec: Input, value: Any) -> tuple[str, str] | None:
    """Check one literal against its declared input; return (error type, message) or None."""
    value = unwrap_literal(value)
    kind = spec.type
    if kind == T.INT:
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, float) and value.is_integer():
                value = int(value)
            else:
                return "invalid_input_type", f"expected an integer (INT), got {_show(value)}"
    elif kind == T.FLOAT:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return "invalid_input_type", f"expected a number (FLOAT), got {_show(value)}"
        if not math.isfinite(value):
            return "invalid_input_type", f"expected a finite number (FLOAT), got {value}"
    elif kind == T.STRING:
        if not isinstance(value, str):
            return "invalid_input_type", f"expected text (STRING), got {_show(value)}"
    elif kind == T.BOOLEAN:
        if not isinstance(value, bool):
            return "invalid_input_type", f"expected true or false (BOOLEAN), got {_show(value)}"
    elif kind == T.COMBO:
        if spec.open:  # any name: the node's check_inputs judges one outside the list
            return None if isinstance(value, str) else ("invalid_input_type", f"expected a name (text), got {_show(value)}")
        choices = spec.listed_choices() if isinstance(value, str) else spec.choices or ()
        if not isinstance(value, str) or value not in choices:
            shown = list(choices) if len(choices) <= 20 else f"(list of length {len(choices)})"
            return "value_not_in_list", f"{spec.name}: {_show(value)} not in {shown}"
        return None
    else:
        return "invalid_input_type", f"a {kind} must be linked from another node's output, got a literal {_show(value)}"
    if spec.min is not None and value < spec.min:
        return "value_smaller_than_min", f"{spec.name}: {value} is smaller than the minimum {spec.min}"
    if spec.max is not None and value > spec.max:
        return "value_bigger_than_max", f"{spec.name}: {value} is bigger than the maximum {spec.max}"
    return None


def _show(value: Any) -> str:
    text = repr(value)
    return f"{type(value).__name__} {text[:60] + '...' if len(text) > 60 else text}"


def types_match(output_type: str, input_type: str) -> bool:
    """ComfyUI's rule: equal, '*' on either side, or overlapping comma-separated unions."""
    if output_type == input_type or "*" in (output_type, input_type):
        return True
    return bool(set(output_type.split(",")) & set(input_type.split(",")))


class _Report:
    """Collects errors per node in ComfyUI's shape."""

    def __init__(self, workflow: dict):
        self.workflow = workflow
        self.node_errors: dict[str, dict] = {}
        self.top: dict | None = None

    def add(self, node_id: str, kind: str, message: str, details: str = "", **extra) -> None:
        node = self.workflow.get(node_id)
        class_type = node.get("class_type") if isinstance(node, dict) else None
        if not isinstance(class_type, str) or len(class_type) > MAX_NAME_CHARS:
            class_type = None  # only a name is echoed back, never an arbitrary (huge, nested) value
        entry = self.node_errors.setdefault(
            node_id, {"errors": [], "dependent_outputs": [], "class_type": class_type})
        entry["errors"].append({"type": kind, "message": message, "details": details, "extra_info": extra})

    def fail(self, kind: str, message: str, details: str = "") -> None:
        self.top = self.top or {"type": kind, "message": message, "details": details, "extra_info": {}}

    def as_dict(self) -> dict | None:
        if not self.node_errors and self.top is None:
            return None
        lines = [f"{e['message']}: {e['details']}" for n in self.node_errors.values() for e in n["errors"]]
        # the JSON report keeps every error; the summary text spells out the first MAX_LISTED
        if len(lines) > MAX_LISTED:
            lines[MAX_LISTED:] = [f"... and {len(lines) - MAX_LISTED:,} more (node_errors lists every one)"]
        details = "\n".join(lines)
        top = self.top or {"type": "prompt_outputs_failed_validation",
                           "message": "Prompt outputs failed validation", "details": details,
                           "extra_info": {}}
        return {"error": top, "node_errors": self.node_errors}


def validate(workflow: Any, registry) -> tuple[Plan | None, dict | None]:
    """Check a whole API-format workflow; return (plan, None) or (None, error report)."""
    report = _Report(workflow if isinstance(workflow, dict) else {})
    if not isinstance(workflow, dict):
        report.fail("invalid_prompt", "Workflow must be an object of nodes keyed by id")
        return None, report.as_dict()
    if _report_bounds(workflow, report):
        return None, report.as_dict()
    classes = _check_nodes(workflow, registry, report)
    outputs = sorted((nid for nid, cls in classes.items() if cls.output_node), key=_id_order)
    if not outputs:
        report.fail("prompt_no_outputs", "Prompt has no outputs",
                    "the workflow needs at least one output node (for example a save node)")
        return None, report.as_dict()
    graph = _reachable_graph(workflow, classes, outputs, report)
    for node_id in graph.nodes:
        _check_inputs(node_id, workflow[node_id], classes[node_id], workflow, classes, report)
    _check_cycles(graph, report)
    _fill_dependent_outputs(graph, outputs, report)
    result = report.as_dict()
    if result is not None:
        return None, result
    order = list(nx.lexicographical_topological_sort(graph, key=_id_order))
    return Plan(workflow, order, {n: classes[n] for n in order}, outputs, graph), None


def _id_order(node_id: str):
    """Numeric ids in numeric order, then the others by text; never calls int().

    ``"²".isdigit()`` is true but ``int("²")`` fails, and thousands of digits are slow to convert;
    ASCII digits without leading zeros compare as numbers by (length, text).
    """
    if node_id.isascii() and node_id.isdigit():
        digits = node_id.lstrip("0") or "0"
        return 0, len(digits), digits, node_id
    return 1, 0, "", node_id


def _report_bounds(workflow: dict, report: _Report) -> bool:
    """Report what breaks the limits of untrusted workflows; True when anything does.

    Nothing else is checked then: the other checks copy, print and compare values, which is
    only safe within the limits.
    """
    problems = bound_problems(workflow)
    for where, message in problems:
        if where.node_id is None or where.node_id not in workflow:
            report.fail("invalid_prompt", "Workflow exceeds the limits for untrusted workflows",
                        f"{where}: {message}")
        else:
            report.add(where.node_id, "limit_exceeded", "Workflow limit exceeded",
                       f"{where.name}: {message}" if where.name else message,
                       **({"input_name": where.name} if where.name else {}))
    return bool(problems)


def _check_nodes(workflow: dict, registry, report: _Report) -> dict[str, type[Node]]:
    """Every node: an object with a known class_type and an inputs object."""
    classes = {}
    for node_id, node in workflow.items():
        if not isinstance(node, dict):
            report.add(node_id, "invalid_prompt", "Node is not an object", f"Node ID '#{node_id}'")
            continue
        class_type = node.get("class_type")
        if not isinstance(class_type, str) or not class_type:
            report.add(node_id, "invalid_prompt", "Node is missing the class_type property",
                       f"Node ID '#{node_id}'")
            continue
        cls = registry.get(class_type)
        if cls is None:
            report.add(node_id, "missing_node_type", f"Node type {class_type} does not exist",
                       f"Node ID '#{node_id}': no installed node is called {class_type!r}",
                       class_type=class_type)
            continue
        if not isinstance(node.get("inputs", {}), dict):
            report.add(node_id, "invalid_prompt", "Node inputs must be an object", f"Node ID '#{node_id}'")
            continue
        classes[node_id] = cls
    return classes


def _reachable_graph(workflow, classes, outputs, report) -> nx.DiGraph:
    """The DAG of the output nodes and their ancestors, over valid links."""
    graph = nx.DiGraph()
    stack = list(outputs)
    graph.add_nodes_from(outputs)
    while stack:
        node_id = stack.pop()
        for name, value in workflow[node_id].get("inputs", {}).items():
            if not is_link(value):
                continue
            src = value[0]
            if src in classes:
                if src not in graph:
                    graph.add_node(src)
                    stack.append(src)
                graph.add_edge(src, node_id)
    return graph


def _check_inputs(node_id, node, cls, workflow, classes, report) -> None:
    inputs = node.get("inputs", {})
    declared = {spec.name for spec in cls.inputs}
    for name in inputs:
        if name not in declared:
            report.add(node_id, "unknown_input", f"{cls.node_id} has no input named {name!r}",
                       f"{name}: declared inputs are {sorted(declared)}", input_name=name)
    for spec in cls.inputs:
        if spec.name not in inputs:
            if not spec.optional:
                report.add(node_id, "required_input_missing", "Required input is missing",
                           f"{spec.name} ({spec.type})", input_name=spec.name)
            continue
        value = inputs[spec.name]
        if isinstance(value, list) and not isinstance(unwrap_literal(value), dict) and not is_link(value):
            report.add(node_id, "bad_linked_input", "Bad linked input, must be a [node_id, slot] pair",
                       f"{spec.name}: {value!r}"[:200], input_name=spec.name, received_value=repr(value)[:200])
        elif is_link(value):
            _check_link(node_id, spec, value, workflow, classes, report)
        else:
            problem = literal_problem(spec, value)
            if problem:
                report.add(node_id, problem[0], _TITLES.get(problem[0], problem[0]), problem[1],
                           input_name=spec.name, received_value=_jsonable(value))
    if not any(e for e in report.node_errors.get(node_id, {}).get("errors", ())):
        specs = {spec.name: spec for spec in cls.inputs}
        literals = {k: specs[k].as_declared(unwrap_literal(v)) for k, v in inputs.items() if not is_link(v)}
        try:
            found = cls.check_inputs(**literals)
        except Exception as exc:  # a node's own check must not break validation of the rest
            found = [("", f"check failed: {type(exc).__name__}: {exc}")]
        for name, message in found:
            report.add(node_id, "custom_validation_failed", "Custom validation failed",
                       f"{name}: {message}" if name else message, input_name=name)


_TITLES = {
    "invalid_input_type": "Invalid input type",
    "value_not_in_list": "Value not in list",
    "value_smaller_than_min": "Value smaller than min",
    "value_bigger_than_max": "Value bigger than max",
}


def _jsonable(value):
    return value if isinstance(value, (str, int, float, bool, type(None))) else repr(value)[:200]


def _check_link(node_id, spec, link, workflow, classes, report) -> None:
    src, slot = link
    if src not in workflow:
        report.add(node_id, "bad_linked_input", "Linked node does not exist",
                   f"{spec.name}: node {src!r} is not in the workflow", input_name=spec.name, linked_node=link)
        return
    src_cls = classes.get(src)
    if src_cls is None:
        return  # the source node's own error is reported on it
    if not 0 <= slot < len(src_cls.outputs):
        report.add(node_id, "bad_linked_input", "Linked output slot does not exist",
                   f"{spec.name}: {src_cls.node_id} (node {src}) has {len(src_cls.outputs)} outputs, "
                   f"slot {slot} asked for", input_name=spec.name, linked_node=link)
        return
    out_type = src_cls.outputs[slot].type
    if not types_match(out_type, spec.type):
        report.add(node_id, "return_type_mismatch", "Return type mismatch between linked nodes",
                   f"{spec.name}: received_type({out_type}) mismatch input_type({spec.type})",
                   input_name=spec.name, received_type=out_type, linked_node=link)


def _check_cycles(graph: nx.DiGraph, report: _Report) -> None:
    """Name every cycle once: each strongly connected component of several nodes, or a self loop.

    Every member gets the same error (one shared message), which lists at most MAX_LISTED
    members, so reports stay linear in the graph's size however long the cycle is.
    """
    for component in nx.strongly_connected_components(graph):
        if len(component) == 1:
            (only,) = component
            if not graph.has_edge(only, only):
                continue
        members = sorted(component, key=_id_order)
        listed = members[:MAX_LISTED]
        if len(members) > len(listed):
            cycle = " -> ".join(listed) + f" -> ... ({len(members):,} nodes in all)"
        else:
            cycle = " -> ".join(members + [members[0]])
        details = f"nodes {cycle} depend on each other"
        for node_id in members:
            report.add(node_id, "dependency_cycle", "Dependency cycle detected", details,
                       cycle=listed, cycle_size=len(members))


def _fill_dependent_outputs(graph: nx.DiGraph, outputs: list[str], report: _Report) -> None:
    """Each failing node's ``dependent_outputs``: the output nodes that need it (the first MAX_LISTED)."""
    if not report.node_errors:
        return
    reach = _outputs_reached(graph, set(outputs))
    for node_id, entry in report.node_errors.items():
        if node_id in reach:
            entry["dependent_outputs"] = reach[node_id]


def _outputs_reached(graph: nx.DiGraph, outputs: set[str]) -> dict[str, list[str]]:
    """For every node, the first MAX_LISTED output nodes reachable from it, in id order.

    One pass over the condensation from the sinks up, merging capped lists: linear in the
    graph's size (a search from every failing node would be quadratic).
    """
    dag = nx.condensation(graph)
    found: dict[int, list[str]] = {}
    for component in reversed(list(nx.topological_sort(dag))):
        own = [n for n in dag.nodes[component]["members"] if n in outputs]
        merged = heapq.merge(sorted(own, key=_id_order), *(found[c] for c in dag.successors(component)),
                             key=_id_order)
        found[component] = [n for n, _ in zip(_unique(merged), range(MAX_LISTED))]
    return {node: found[c] for node, c in dag.graph["mapping"].items()}


def _unique(ordered):
    """Drop repeats from an ordered iterable."""
    last = object()
    for item in ordered:
        if item != last:
            yield item
            last = item
