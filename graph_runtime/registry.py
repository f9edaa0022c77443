"""A registry of node classes built from an explicit list (never filled by imports)."""
from __future__ import annotations

from typing import Iterable, Iterator

from .errors import NodeDefinitionError
from .spec import Node


class NodeRegistry:
    """Maps node ids (ComfyUI's ``class_type``) to node classes."""

    def __init__(self, node_classes: Iterable[type[Node]] = ()):
        self._classes: dict[str, type[Node]] = {}
        for cls in node_classes:
            self.add(cls)

    def add(self, cls: type[Node]) -> None:
        """Register one node class; two classes may not share an id."""
        if not (isinstance(cls, type) and issubclass(cls, Node) and "node_id" in cls.__dict__):
            raise NodeDefinitionError(f"{cls!r} is not a declared Node class")
        existing = self._classes.get(cls.node_id)
        if existing is not None and existing is not cls:
            raise NodeDefinitionError(f"node id {cls.node_id!r} is declared by both "
                                      f"{existing.__name__} and {cls.__name__}")
        self._classes[cls.node_id] = cls

    def get(self, node_id) -> type[Node] | None:
        """The class registered under ``node_id``, or None."""
        return self._classes.get(node_id) if isinstance(node_id, str) else None

    def __contains__(self, node_id) -> bool:
        return self.get(node_id) is not None

    def __iter__(self) -> Iterator[type[Node]]:
        return iter(self._classes.values())

    def __len__(self) -> int:
        return len(self._classes)

    def ids(self) -> list[str]:
        """All registered ids, sorted."""
        return sorted(self._classes)
