"""Validation before any work: find every problem, per node, in ComfyUI's error shape."""
from __future__ import annotations

import heapq
import math
from dataclasses import dataclass, field
from typing import Any

from . import types as T
from .limits import MAX_LISTED, MAX_NAME_CHARS, bound_problems
from .spec import Input, Node
from .workflow import is_link, unwrap_literal


@dataclass
class Plan:
    """A validated workflow: the nodes to run, with their classes and literal inputs, and their order."""

    workflow: dict
    classes: dict[str, type[Node]]
    outputs: list[str]
    #: node -> the nodes it links from (the nodes to run, and the links between them)
    parents: dict[str, list[str]] = field(repr=False)
    #: each node's cache-key part that depends on the workflow alone, filled as the executor needs it
    static_keys: dict[str, str] = field(default_factory=dict, repr=False)
    _order: list[str] | None = field(default=None, repr=False)

    @property
    def order(self) -> list[str]:
        """The nodes to run, each after those it links from, the smallest id first among the ready ones
        (computed when first needed: validation itself only needs to know there is no cycle)."""
        if self._order is None:
            self._order = _kahn(self.parents, lexicographic=True)
        return self._order


def literal_problem(spec: Input, value: Any) -> tuple[str, str] | None:
    """Check one literal against its declared input; return (error type, message) or None."""
    if isinstance(value, dict):
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


def validate(workflow: Any, registry, *, bounded: bool = False) -> tuple[Plan | None, dict | None]:
    """Check a whole API-format workflow; return (plan, None) or (None, error report).

    ``bounded``: the caller has checked the limits of untrusted workflows already (as
    ``load_workflow`` does), so the walk over every value is not repeated.
    """
    report = _Report(workflow if isinstance(workflow, dict) else {})
    if not isinstance(workflow, dict):
        report.fail("invalid_prompt", "Workflow must be an object of nodes keyed by id")
        return None, report.as_dict()
    if not bounded and _report_bounds(workflow, report):
        return None, report.as_dict()
    classes = _check_nodes(workflow, registry, report)
    outputs = sorted((nid for nid, cls in classes.items() if cls.output_node), key=id_order)
    if not outputs:
        report.fail("prompt_no_outputs", "Prompt has no outputs",
                    "the workflow needs at least one output node (for example a save node)")
        return None, report.as_dict()
    parents = _reachable_parents(workflow, classes, outputs)
    for node_id in parents:
        _check_inputs(node_id, workflow[node_id], classes[node_id], workflow, classes, report)
    acyclic = _kahn(parents, lexicographic=False) is not None
    if not acyclic or report.node_errors:
        # the error path: networkx names the cycles and finds each failing node's outputs
        graph = _as_digraph(parents)
        _check_cycles(graph, report)
        _fill_dependent_outputs(graph, outputs, report)
    result = report.as_dict()
    if result is not None:
        return None, result
    return Plan(workflow, {n: classes[n] for n in parents}, outputs, parents), None


def recheck_nodes(plan: Plan, workflow: dict, changed) -> Plan | None:
    """The plan of ``workflow`` when it differs from ``plan.workflow`` only in literal inputs of the
    nodes ``changed``, re-checking just those nodes; None when anything else may have changed or a
    re-checked node has a problem (then ``validate`` the whole workflow for the full report).

    The graph is then the same (same nodes, classes and links), so its order, outputs, link
    types and cycles hold; only the changed nodes' own inputs need checking again. ``workflow``
    must be within the limits of untrusted workflows (``load_workflow`` and ``apply_overrides``
    check them).
    """
    if workflow.keys() != plan.workflow.keys():
        return None
    report = _Report(workflow)
    for node_id in changed:
        old, new = plan.workflow.get(node_id), workflow.get(node_id)
        if not (isinstance(new, dict) and isinstance(new.get("inputs", {}), dict)
                and new.get("class_type") == old.get("class_type") and _links(new) == _links(old)):
            return None
        cls = plan.classes.get(node_id)
        if cls is None:
            continue  # not run (no output needs it): validation does not check its inputs either
        _check_inputs(node_id, new, cls, workflow, plan.classes, report)
        if report.node_errors:
            return None
    return Plan(workflow, plan.classes, plan.outputs, plan.parents,
                {n: k for n, k in plan.static_keys.items() if n not in changed}, plan._order)


def _links(node: dict) -> dict:
    """A node's linked inputs: name -> [source id, slot]."""
    return {k: v for k, v in node.get("inputs", {}).items() if is_link(v)}


def id_order(node_id: str):
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


def _reachable_parents(workflow, classes, outputs) -> dict[str, list[str]]:
    """The output nodes and their ancestors over valid links, in the order found: id -> the ids it links from."""
    parents: dict[str, list[str]] = {node_id: [] for node_id in outputs}
    stack = list(outputs)
    while stack:
        node_id = stack.pop()
        own = parents[node_id]
        for value in workflow[node_id].get("inputs", {}).values():
            if not isinstance(value, list) or not is_link(value):  # most are literals: no call for them
                continue
            src = value[0]
            if src in classes:
                if src not in parents:
                    parents[src] = []
                    stack.append(src)
                if src not in own:
                    own.append(src)
    return parents


def _kahn(parents: dict[str, list[str]], lexicographic: bool) -> list[str] | None:
    """Every node after the nodes it links from (Kahn's algorithm), or None when there is a cycle.

    ``lexicographic``: the smallest id (``id_order``) first among the ready ones, as networkx's
    lexicographical_topological_sort; else in any order, without the heap (enough to find cycles).
    """
    waiting, children, ready = {}, {}, []
    for node_id, srcs in parents.items():
        waiting[node_id] = len(srcs)
        if not srcs:
            ready.append(node_id)
        for src in srcs:
            children.setdefault(src, []).append(node_id)
    if lexicographic:
        ready = [(id_order(n), n) for n in ready]
        heapq.heapify(ready)
    order = []
    while ready:
        node_id = heapq.heappop(ready)[1] if lexicographic else ready.pop()
        order.append(node_id)
        for child in children.get(node_id, ()):
            waiting[child] -= 1
            if not waiting[child]:
                if lexicographic:
                    heapq.heappush(ready, (id_order(child), child))
                else:
                    ready.append(child)
    return order if len(order) == len(parents) else None


def _as_digraph(parents: dict[str, list[str]]):
    """The reachable graph as a networkx DiGraph (only on the error path: networkx takes a while to import)."""
    import networkx as nx

    graph = nx.DiGraph()
    graph.add_nodes_from(parents)
    graph.add_edges_from((src, node_id) for node_id, srcs in parents.items() for src in srcs)
    return graph


_DECLARED: dict[type, tuple] = {}


def declared_inputs(cls: type[Node]) -> tuple[dict[str, Input], frozenset[str], bool]:
    """A node class's inputs by name, the names it requires, and whether it has checks of its own
    (computed once per class)."""
    entry = _DECLARED.get(cls)
    if entry is None or entry[0] is not cls.inputs:  # a class may be re-declared (tests do)
        own_check = getattr(cls.check_inputs, "__func__", None) is not Node.check_inputs.__func__
        required = frozenset(spec.name for spec in cls.inputs if not spec.optional)
        entry = _DECLARED[cls] = (cls.inputs, {spec.name: spec for spec in cls.inputs}, required, own_check)
    return entry[1:]


def check_own_inputs(cls: type[Node], inputs: dict) -> list[tuple[str, str]]:
    """What a node class's own ``check_inputs`` finds in a node's literal inputs (a check that raises
    is a problem too: it must not break validation of the rest)."""
    specs = declared_inputs(cls)[0]
    literals = {k: specs[k].as_declared(unwrap_literal(v)) for k, v in inputs.items() if not is_link(v)}
    try:
        return list(cls.check_inputs(**literals))
    except Exception as exc:
        return [("", f"check failed: {type(exc).__name__}: {exc}")]


def _check_inputs(node_id, node, cls, workflow, classes, report) -> None:
    inputs = node.get("inputs", {})
    specs, _, own_check = declared_inputs(cls)
    for name in inputs:
        if name not in specs:
            report.add(node_id, "unknown_input", f"{cls.node_id} has no input named {name!r}",
                       f"{name}: declared inputs are {sorted(specs)}", input_name=name)
    for spec in specs.values():
        if spec.name not in inputs:
            if not spec.optional:
                report.add(node_id, "required_input_missing", "Required input is missing",
                           f"{spec.name} ({spec.type})", input_name=spec.name)
            continue
        value = inputs[spec.name]
        if is_link(value):
            _check_link(node_id, spec, value, workflow, classes, report)
        elif isinstance(value, list):
            report.add(node_id, "bad_linked_input", "Bad linked input, must be a [node_id, slot] pair",
                       f"{spec.name}: {value!r}"[:200], input_name=spec.name, received_value=repr(value)[:200])
        else:
            problem = literal_problem(spec, value)
            if problem:
                report.add(node_id, problem[0], _TITLES.get(problem[0], problem[0]), problem[1],
                           input_name=spec.name, received_value=_jsonable(value))
    if own_check and node_id not in report.node_errors:
        for name, message in check_own_inputs(cls, inputs):
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


def _check_cycles(graph, report: _Report) -> None:
    """Name every cycle once: each strongly connected component of several nodes, or a self loop.

    Every member gets the same error (one shared message), which lists at most MAX_LISTED
    members, so reports stay linear in the graph's size however long the cycle is.
    """
    import networkx as nx

    for component in nx.strongly_connected_components(graph):
        if len(component) == 1:
            (only,) = component
            if not graph.has_edge(only, only):
                continue
        members = sorted(component, key=id_order)
        listed = members[:MAX_LISTED]
        if len(members) > len(listed):
            cycle = " -> ".join(listed) + f" -> ... ({len(members):,} nodes in all)"
        else:
            cycle = " -> ".join(members + [members[0]])
        details = f"nodes {cycle} depend on each other"
        for node_id in members:
            report.add(node_id, "dependency_cycle", "Dependency cycle detected", details,
                       cycle=listed, cycle_size=len(members))


def _fill_dependent_outputs(graph, outputs: list[str], report: _Report) -> None:
    """Each failing node's ``dependent_outputs``: the output nodes that need it (the first MAX_LISTED)."""
    if not report.node_errors:
        return
    reach = _outputs_reached(graph, set(outputs))
    for node_id, entry in report.node_errors.items():
        if node_id in reach:
            entry["dependent_outputs"] = reach[node_id]


def _outputs_reached(graph, outputs: set[str]) -> dict[str, list[str]]:
    """For every node, the first MAX_LISTED output nodes reachable from it, in id order.

    One pass over the condensation from the sinks up, merging capped lists: linear in the
    graph's size (a search from every failing node would be quadratic).
    """
    import networkx as nx

    dag = nx.condensation(graph)
    found: dict[int, list[str]] = {}
    for component in reversed(list(nx.topological_sort(dag))):
        own = [n for n in dag.nodes[component]["members"] if n in outputs]
        merged = heapq.merge(sorted(own, key=id_order), *(found[c] for c in dag.successors(component)),
                             key=id_order)
        found[component] = [n for n, _ in zip(_unique(merged), range(MAX_LISTED))]
    return {node: found[c] for node, c in dag.graph["mapping"].items()}


def _unique(ordered):
    """Drop repeats from an ordered iterable."""
    last = object()
    for item in ordered:
        if item != last:
            yield item
            last = item
