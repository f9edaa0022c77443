"""Running a validated workflow: topological order, output cache, timing, progress, interrupt."""
from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from .context import ExecutionContext
from .errors import (ExecutionInterrupted, NodeExecutionError, NodeInputError,
                     ValidationError)
from .accept import accept
from .plan_cache import PlanCache
from .spec import Node
from .validate import Plan, recheck_nodes, validate
from .limits import checked_copy
from .workflow import apply_overrides, as_api_format, is_link, read_source, unwrap_literal


@dataclass
class RunResult:
    """What a run produced: outputs and UI dicts per node id, timings, and what ran vs was cached."""

    outputs: dict[str, tuple] = field(default_factory=dict)
    ui: dict[str, dict] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    executed: list[str] = field(default_factory=list)
    cached: list[str] = field(default_factory=list)
    class_types: dict[str, str] = field(default_factory=dict)
    total_seconds: float = 0.0


class OutputCache:
    """Node outputs keyed by a digest of the node and its parents' digests.

    A node's key is computed from its class, its literal inputs and the keys of the nodes it
    links to, so one key costs O(1) per node (ComfyUI re-hashes the whole ancestry instead).
    After each run only the entries that run used are kept, like ComfyUI's classic cache.
    """

    def __init__(self):
        self.entries: dict[str, tuple[tuple, dict | None]] = {}

    def prune(self, keep: set[str]) -> None:
        """Drop every entry whose key is not in ``keep``."""
        self.entries = {k: v for k, v in self.entries.items() if k in keep}

    def clear(self) -> None:
        """Forget everything."""
        self.entries.clear()


def static_key(plan: Plan, node_id: str) -> str:
    """The part of a node's cache key that depends on the workflow alone (computed once per plan)."""
    cls = plan.classes[node_id]
    inputs = plan.workflow[node_id].get("inputs", {})
    literals = {k: unwrap_literal(v) for k, v in inputs.items() if not is_link(v)}
    links = sorted((k, v[1]) for k, v in inputs.items() if is_link(v))
    text = json.dumps([cls.node_id, cls.version, literals, links], sort_keys=True, default=repr)
    return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()


def node_key(plan: Plan, node_id: str, keys: dict[str, str], ctx: ExecutionContext,
             outputs: dict[str, tuple]) -> str:
    """Digest of a node's static key, its parents' keys and its outside-world fingerprint.

    Costs O(1) per node for a bounded number of inputs: parents contribute their digest, not
    their ancestry. The fingerprint sees every input's value, linked ones from ``outputs`` (the
    parents ran first), so a file name fed by a primitive still tracks the file it names.
    """
    cls = plan.classes[node_id]
    inputs = plan.workflow[node_id].get("inputs", {})
    static = plan.static_keys.get(node_id)
    if static is None:
        static = plan.static_keys[node_id] = static_key(plan, node_id)
    parts = [static]
    parts += [f"{name}={keys[value[0]]}" for name, value in sorted(inputs.items()) if is_link(value)]
    if cls.fingerprint.__func__ is not Node.fingerprint.__func__:
        parts.append(repr(cls.fingerprint(ctx, **_gather_inputs(plan, node_id, outputs))))
    if cls.output_node:
        parts.append(str(ctx.output_dir))
    return hashlib.blake2b("|".join(parts).encode(), digest_size=16).hexdigest()


class Runtime:
    """Runs workflows against a registry; keeps an output cache between runs in this process."""

    def __init__(self, registry=None):
        if registry is None:
            from ..nodes import default_registry

            registry = default_registry()
        self.registry = registry
        self.cache = OutputCache()
        self.plans = PlanCache()

    def prepare(self, workflow: Any, overrides: dict | None = None) -> Plan:
        """Load, override and validate; raise ValidationError listing every problem.

        Validated plans are remembered by the workflow's content: re-running the same workflow
        validates nothing, and a workflow that differs from a remembered one in literal inputs
        (``overrides``, or a dict edited between runs) re-checks only the nodes that changed
        (``validate.recheck_nodes``).
        """
        api, base, report = self._load_and_validate(workflow)
        if not overrides:
            if report is not None:
                raise ValidationError(report)
            return base
        changed = {str(key).partition(".")[0] for key in overrides}
        api = apply_overrides(api, overrides, self.registry)  # checks each value's type and limits
        api = {n: checked_copy(node) if n in changed else node for n, node in api.items()}  # the caller's values
        plan = recheck_nodes(base, api, changed) if base is not None else None
        if plan is None:  # a link, a class or an error changed: the whole workflow, for the full report
            plan, report = validate(api, self.registry, bounded=True)
            if report is not None:
                raise ValidationError(report)
        return plan

    def _load_and_validate(self, workflow: Any) -> tuple[dict, Plan | None, dict | None]:
        """The workflow in API form (this runtime's own copy), its plan and its error report (one is None)."""
        if isinstance(workflow, dict):
            plan, changed = self.plans.lookup(workflow)
            if plan is not None and not changed:  # validated before: no need to walk it again
                return plan.workflow, plan, None
            if plan is None and (quick := accept(workflow, self.registry)) is not None:
                return quick.workflow, self.plans.remember(quick), None  # valid: copied and checked in one walk
        data = read_source(workflow)  # a copy within the limits of untrusted workflows
        api = as_api_format(data, self.registry)
        # a UI file's conversion is new data: validate() checks its limits, reporting per node
        bounded = api is data or (isinstance(data, dict) and api is data.get("prompt"))
        if not (bounded and isinstance(workflow, dict)):  # else the lookup above saw this content
            plan, changed = self.plans.lookup(api)
            if plan is not None and not changed:
                return plan.workflow, plan, None
        if plan is not None and bounded:
            quick = recheck_nodes(plan, api, changed)
            if quick is not None:  # the unchanged nodes keep the remembered plan's copies
                quick.workflow = {n: node if n in changed else plan.workflow[n] for n, node in api.items()}
                return quick.workflow, self.plans.remember(quick), None
        plan, report = validate(api, self.registry, bounded=bounded)
        if report is not None:
            return api, None, report
        return api, self.plans.remember(plan), None

    def run(self, workflow: Any, overrides: dict | None = None, *, ctx: ExecutionContext | None = None,
            progress: bool | Callable = False, ui_workflow: dict | None = None) -> RunResult:
        """Validate then execute ``workflow``; return outputs, UI results and timings.

        Raises ValidationError before anything runs, NodeExecutionError when a node raises
        (with the outputs that completed), and ExecutionInterrupted on interrupt.
        """
        plan = self.prepare(workflow, overrides)
        ctx = ctx or ExecutionContext()
        if ctx.prompt is None:
            ctx.prompt = plan.workflow
        if ui_workflow is not None and ctx.extra_pnginfo is None:
            ctx.extra_pnginfo = {"workflow": ui_workflow}
        return self.execute(plan, ctx, progress)

    def execute(self, plan: Plan, ctx: ExecutionContext, progress: bool | Callable = False) -> RunResult:
        """Run a validated plan in topological order, reusing cached outputs."""
        import torch

        result = RunResult(class_types={n: plan.classes[n].node_id for n in plan.order})
        keys: dict[str, str] = {}
        bar = _NodeBar(len(plan.order)) if progress is True else None
        hook_before = ctx.progress_hook
        if bar is not None and ctx.progress_hook is None:
            ctx.progress_hook = bar.step_hook
        started = time.perf_counter()
        try:
            with torch.inference_mode():
                for node_id in plan.order:
                    ctx.check_interrupt()
                    keys[node_id] = key = node_key(plan, node_id, keys, ctx, result.outputs)
                    if bar is not None:
                        bar.start(node_id, plan.classes[node_id].node_id)
                    hit = self.cache.entries.get(key)
                    if hit is not None:
                        result.cached.append(node_id)
                    else:
                        hit = self._execute_node(plan, node_id, result, ctx)
                        self.cache.entries[key] = hit
                        result.executed.append(node_id)
                    result.outputs[node_id], ui = hit
                    if ui is not None:
                        result.ui[node_id] = ui
                    if callable(progress):
                        progress(node_id, len(result.outputs), len(plan.order))
            # Keep only what this run used; a failed or interrupted run keeps everything.
            self.cache.prune(set(keys.values()))
        except KeyboardInterrupt:
            raise ExecutionInterrupted("interrupted (Ctrl-C)", completed=result.outputs) from None
        except ExecutionInterrupted as exc:
            exc.completed = result.outputs
            raise
        finally:
            ctx.progress_hook = hook_before
            if bar is not None:
                bar.close()
            result.total_seconds = time.perf_counter() - started
        return result

    def _execute_node(self, plan: Plan, node_id: str, result: RunResult, ctx: ExecutionContext):
        cls = plan.classes[node_id]
        kwargs = _gather_inputs(plan, node_id, result.outputs)
        node_ctx = ctx.for_node(node_id)
        start = time.perf_counter()
        try:
            return _split_return(cls, cls().run(node_ctx, **kwargs))
        except (ExecutionInterrupted, KeyboardInterrupt):
            raise
        except Exception as exc:
            if isinstance(exc, NodeInputError):
                exc.node_id = node_id
            raise NodeExecutionError(node_id, cls.node_id, exc, dict(result.outputs)) from exc
        finally:
            result.timings[node_id] = time.perf_counter() - start


def _gather_inputs(plan: Plan, node_id: str, outputs: dict[str, tuple]) -> dict[str, Any]:
    """Keyword arguments for a node: linked outputs, literals, and defaults for absent optionals."""
    cls = plan.classes[node_id]
    inputs = plan.workflow[node_id].get("inputs", {})
    kwargs = {}
    for spec in cls.inputs:
        if spec.name in inputs:
            value = inputs[spec.name]
            kwargs[spec.name] = outputs[value[0]][value[1]] if is_link(value) else spec.as_declared(unwrap_literal(value))
        else:
            kwargs[spec.name] = spec.absent_value
    return kwargs


def _split_return(cls, returned) -> tuple[tuple, dict | None]:
    """Accept a tuple of outputs, or ComfyUI's ``{"ui": ..., "result": ...}`` form."""
    ui = None
    if isinstance(returned, dict):
        ui = returned.get("ui")
        returned = returned.get("result", ())
    if not isinstance(returned, tuple) or len(returned) != len(cls.outputs):
        got = f"a tuple of {len(returned)}" if isinstance(returned, tuple) else type(returned).__name__
        raise TypeError(f"{cls.node_id}.run() must return a tuple of {len(cls.outputs)} outputs, got {got}")
    return returned, ui


class _NodeBar:
    """A tqdm bar over nodes, with a second bar for a node's own steps."""

    def __init__(self, total: int):
        from tqdm.auto import tqdm

        self._tqdm = tqdm
        self.nodes = tqdm(total=total, desc="nodes", unit="node", leave=True)
        self.steps = None
        self.started = False

    def start(self, node_id: str, class_type: str) -> None:
        if self.started:
            self.nodes.update(1)
        self.started = True
        self.nodes.set_postfix_str(f"{node_id} {class_type}")
        self._close_steps()

    def step_hook(self, node_id: str, value: int, total: int) -> None:
        if self.steps is None:
            self.steps = self._tqdm(total=total, desc=f"  node {node_id}", unit="step", leave=False)
        self.steps.total = total
        self.steps.n = value
        self.steps.refresh()

    def _close_steps(self) -> None:
        if self.steps is not None:
            self.steps.close()
            self.steps = None

    def close(self) -> None:
        self._close_steps()
        if self.started:
            self.nodes.update(1)
        self.nodes.close()


_default_runtime: Runtime | None = None


def default_runtime() -> Runtime:
    """The process-wide runtime (and cache) used by ``run``."""
    global _default_runtime
    if _default_runtime is None:
        _default_runtime = Runtime()
    return _default_runtime


def run(workflow: Any, overrides: dict | None = None, **kwargs) -> RunResult:
    """Run a workflow (dict, JSON text or path) with the pack's nodes; see ``Runtime.run``."""
    return default_runtime().run(workflow, overrides, **kwargs)
