"""A per-process cache of loaded models, shared by every loader node.

Each loader node (a *slot*: the loader kind and its node id) holds one model. A slot that asks
for a different model (a changed path or option) gets the new one and the old one is released
once no other slot holds it; two slots asking for the same model share one copy. A model's key
includes its files' modification times, so editing a file on disk loads it again.
"""
from __future__ import annotations

import gc
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Hashable


@dataclass
class CacheStats:
    """How often models were loaded, reused and released (for tests and benchmarks)."""

    loads: int = 0
    hits: int = 0
    releases: int = 0


@dataclass
class ModelCache:
    """Loaded models by key, and which key each slot holds."""

    entries: dict[Hashable, Any] = field(default_factory=dict)
    slots: dict[Hashable, Hashable] = field(default_factory=dict)
    stats: CacheStats = field(default_factory=CacheStats)
    lock: threading.RLock = field(default_factory=threading.RLock, repr=False)

    def get(self, slot: Hashable, key: Hashable, load: Callable[[], Any]) -> Any:
        """The model for ``key`` (loaded with ``load()`` on a miss), now held by ``slot``."""
        with self.lock:
            if key in self.entries:
                self.stats.hits += 1
                model = self.entries[key]
            else:
                model = load()
                self.stats.loads += 1
                self.entries[key] = model
            previous = self.slots.get(slot)
            self.slots[slot] = key
            if previous is not None and previous != key:
                self._release_if_unheld(previous)
            return model

    def clear(self) -> None:
        """Release every model (the "unload models" of a host)."""
        with self.lock:
            self.slots.clear()
            released = [self._release_if_unheld(key, collect=False) for key in list(self.entries)]
            if any(released):
                free_host_and_device_memory()

    def _release_if_unheld(self, key: Hashable, collect: bool = True) -> bool:
        """Drop ``key``'s model when no slot holds it; True when something was released."""
        if key in self.slots.values():
            return False
        model = self.entries.pop(key, None)
        if model is None:
            return False
        self.stats.releases += 1
        release = getattr(model, "release", None)
        if callable(release):
            release()
        del model
        if collect:
            free_host_and_device_memory()
        return True


def free_host_and_device_memory() -> None:
    """Collect garbage and return cached CUDA blocks to the driver."""
    gc.collect()
    import torch

    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def files_signature(path: Path) -> tuple:
    """(path, size, mtime) of a file, or of every file in a folder (recursively), for cache keys."""
    path = Path(path)
    if path.is_file():
        stat = path.stat()
        return (str(path), stat.st_size, stat.st_mtime_ns)
    found = []
    for root, _dirs, files in os.walk(path):
        for name in sorted(files):
            stat = os.stat(os.path.join(root, name))
            found.append((os.path.relpath(os.path.join(root, name), path), stat.st_size, stat.st_mtime_ns))
    return (str(path), tuple(sorted(found)))


#: the process-wide cache used by the loader nodes
MODELS = ModelCache()
