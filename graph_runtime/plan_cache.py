"""Validated plans remembered by their workflow's content, so a re-run validates nothing, or only what changed.

A workflow's content is the exact text of each node (``repr``: 1, 1.0 and true differ, as they
do for validation). The same content finds its plan; the same node ids with some nodes changed
find the newest such plan and the changed ids, for ``validate.recheck_nodes``. Texts are
computed only once a remembered plan may match: a runtime that validates one workflow (the
``imagetune validate`` command, a first run) computes none.
"""
from __future__ import annotations

import hashlib

from .validate import Plan


def node_texts(workflow: dict) -> dict | None:
    """Each node's exact text by id, or None for content that has none (nested too deep, a huge
    integer): such a workflow matches no plan, and its checks report the problem."""
    try:
        return {node_id: repr(node) for node_id, node in workflow.items()}
    except (RecursionError, ValueError):
        return None


def _digest(texts: dict) -> str:
    # repr escapes newlines, so one line per node cannot be confused with another layout
    joined = "\n".join(f"{node_id!r}={text}" for node_id, text in texts.items())
    return hashlib.blake2b(joined.encode("utf-8", "surrogatepass"), digest_size=16).hexdigest()


class PlanCache:
    """The newest ``size`` valid plans, each with its node texts, by content digest."""

    def __init__(self, size: int = 32):
        self.size = size
        self._entries: dict[str, tuple[Plan, dict]] = {}  # oldest first
        self._unread: list[Plan] = []  # remembered plans whose texts wait until a lookup needs them

    def lookup(self, workflow: dict) -> tuple[Plan | None, set[str]]:
        """The plan closest to ``workflow`` and the ids of the nodes whose content differs from it
        (an empty set: the same content); ``(None, set())`` when no plan has the same node ids."""
        if not self._entries and not self._unread:
            return None, set()
        self._read_unread()
        texts = node_texts(workflow)
        if texts is None:
            return None, set()
        entry = self._entries.get(_digest(texts))
        if entry is not None:
            return entry[0], set()
        for plan, known in reversed(self._entries.values()):
            if known.keys() == texts.keys():
                return plan, {node_id for node_id, text in texts.items() if known[node_id] != text}
        return None, set()

    def remember(self, plan: Plan) -> Plan:
        """Keep ``plan``, whose workflow must be the runtime's own copy (no caller can change it)."""
        self._unread.append(plan)
        while len(self._entries) + len(self._unread) > self.size:
            if self._entries:
                self._entries.pop(next(iter(self._entries)))
            else:
                self._unread.pop(0)
        return plan

    def _read_unread(self) -> None:
        for plan in self._unread:
            texts = node_texts(plan.workflow)
            if texts is not None:
                self._entries.pop(digest := _digest(texts), None)  # re-inserted as the newest
                self._entries[digest] = (plan, texts)
        self._unread.clear()
