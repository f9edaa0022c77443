"""What a running node may use: device, folders, progress and interruption."""
from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from .errors import ExecutionInterrupted
from .paths import default_root

ProgressHook = Callable[[str, int, int], None]


def default_models_dirs() -> list[Path]:
    """Model roots: $IMAGETUNE_MODELS_DIR (os.pathsep-separated), ./models, and the pack's models/."""
    import os

    roots = [Path(p) for p in os.environ.get("IMAGETUNE_MODELS_DIR", "").split(os.pathsep) if p]
    roots += [Path.cwd() / "models", Path(__file__).resolve().parent.parent / "models"]
    return roots


def default_device() -> str:
    """``cuda`` when a CUDA device is available, else ``cpu``."""
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


@dataclass
class ExecutionContext:
    """Passed to every ``Node.run``; the ComfyUI bridge provides a subclass of its own."""

    device: str = field(default_factory=default_device)
    output_dir: Path = field(default_factory=lambda: default_root("IMAGETUNE_OUTPUT_DIR", "output"))
    input_dir: Path = field(default_factory=lambda: default_root("IMAGETUNE_INPUT_DIR", "input"))
    models_dirs: list[Path] = field(default_factory=default_models_dirs)
    prompt: dict | None = None
    extra_pnginfo: dict | None = None
    node_id: str = ""
    progress_hook: ProgressHook | None = None
    interrupt_event: threading.Event = field(default_factory=threading.Event)

    def progress(self, value: int, total: int) -> None:
        """Report that ``value`` of ``total`` steps of the current node are done; checks interrupt."""
        self.check_interrupt()
        if self.progress_hook is not None:
            self.progress_hook(self.node_id, value, total)

    def check_interrupt(self) -> None:
        """Raise ExecutionInterrupted if the run was asked to stop."""
        if self.interrupt_event.is_set():
            # between nodes the run's own context has no node: say so rather than name an empty one
            where = f"in node {self.node_id}" if self.node_id else "between nodes"
            raise ExecutionInterrupted(f"interrupted {where}")

    def interrupt(self) -> None:
        """Ask the run to stop at the next step boundary."""
        self.interrupt_event.set()

    def free_memory(self, bytes_needed: int) -> None:
        """Ask the host to make room on ``device`` before a model moves there (no-op standalone)."""

    @property
    def offload_after_use(self) -> bool:
        """True when models should leave the GPU after each use (inside ComfyUI, which shares it)."""
        return False

    def for_node(self, node_id: str) -> "ExecutionContext":
        """A shallow copy naming the node about to run (shares hooks and the interrupt flag)."""
        clone = object.__new__(type(self))
        clone.__dict__.update(self.__dict__)
        clone.node_id = node_id
        return clone

    @property
    def torch_device(self) -> Any:
        """The device as a ``torch.device``."""
        import torch

        return torch.device(self.device)
