"""The error tree of the graph runtime: every error names where it happened."""
from __future__ import annotations


class GraphError(Exception):
    """Base class of every error the runtime raises on purpose."""

    def __init__(self, message: str, *, node_id: str | None = None, field: str | None = None):
        super().__init__(message)
        self.message = message
        self.node_id = node_id
        self.field = field


class NodeDefinitionError(GraphError, TypeError):
    """A node class is declared wrongly (raised when the class is defined)."""


class WorkflowFormatError(GraphError, ValueError):
    """The workflow is not valid JSON or not in a workflow shape."""


class ValidationError(GraphError, ValueError):
    """The workflow has problems; ``report`` holds all of them in ComfyUI's error shape."""

    def __init__(self, report: dict):
        super().__init__(format_report(report))
        self.report = report


class NodeInputError(GraphError, ValueError):
    """A node got an input it cannot work with (raised by a node while it runs)."""

    def __init__(self, field: str, message: str, *, node_id: str | None = None):
        super().__init__(f"{field}: {message}", node_id=node_id, field=field)
        self.detail = message


class ExecutionInterrupted(GraphError):
    """The run was interrupted between steps; finished outputs are kept."""

    def __init__(self, message: str = "interrupted", *, completed: dict | None = None):
        super().__init__(message)
        self.completed = completed or {}


class NodeExecutionError(GraphError):
    """A node raised while running; carries the outputs that did complete."""

    def __init__(self, node_id: str, class_type: str, error: BaseException, completed: dict):
        name = type(error).__name__
        super().__init__(f"node {node_id} ({class_type}) failed: {name}: {error}", node_id=node_id)
        self.class_type = class_type
        self.error = error
        self.completed = completed


def format_report(report: dict) -> str:
    """Render a validation report as readable lines, one per distinct problem, at most MAX_LISTED.

    A problem that many nodes share (one cycle, the same missing input) is one line naming the
    first node and how many more have it, so the text stays short however big the graph is.
    """
    from .limits import MAX_LISTED  # limits imports this module

    groups: dict[tuple, list[str]] = {}
    for node_id, entry in report.get("node_errors", {}).items():
        for err in entry.get("errors", []):
            name = err.get("extra_info", {}).get("input_name")
            key = (entry.get("class_type"), name, err["type"], err["details"] or err["message"])
            groups.setdefault(key, []).append(node_id)
    lines = [report.get("error", {}).get("message", "workflow is invalid")]
    for (class_type, name, kind, text), node_ids in list(groups.items())[:MAX_LISTED]:
        where = f"node {node_ids[0]} ({class_type})" + (f" input '{name}'" if name else "")
        also = f" (and {len(node_ids) - 1:,} more nodes)" if len(node_ids) > 1 else ""
        lines.append(f"  {where}{also}: {kind}: {text}")
    if len(groups) > MAX_LISTED:
        lines.append(f"  ... and {len(groups) - MAX_LISTED:,} more problems (--json lists every one)")
    if not groups and report.get("error", {}).get("details"):
        lines.append(f"  {report['error']['details']}")
    return "\n".join(lines)
