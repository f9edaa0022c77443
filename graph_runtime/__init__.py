"""The graph runtime: node declarations, workflow validation and execution.

It knows no concrete node; ``run`` uses the pack's nodes by default.
"""
from .context import ExecutionContext
from .errors import (ExecutionInterrupted, GraphError, NodeDefinitionError, NodeExecutionError,
                     NodeInputError, ValidationError, WorkflowFormatError)
from .executor import RunResult, Runtime, run
from .registry import NodeRegistry
from .spec import Input, Node, Output, combo
from .sweeps import SweepValidationError, sweep
from .validate import validate
from .workflow import load_workflow

__all__ = [
    "ExecutionContext", "ExecutionInterrupted", "GraphError", "Input", "Node", "NodeDefinitionError",
    "NodeExecutionError", "NodeInputError", "NodeRegistry", "Output", "RunResult", "Runtime",
    "SweepValidationError", "ValidationError", "WorkflowFormatError", "combo", "load_workflow", "run",
    "sweep", "validate",
]
