"""Writing files so that a reader never sees half of one: a temp file beside it, then a rename."""
from __future__ import annotations

import os
import secrets
from pathlib import Path


def write_bytes_atomically(target: Path, data: bytes) -> None:
    """Write ``data`` to ``target`` through a temp file in the same folder, with a normal file's mode.

    The temp file is opened like any new file (mode 0666 less the umask), not with mkstemp's
    0600, so a web server or a second user reads the result as they would any other file.
    """
    target = Path(target)
    temp = target.with_name(f".{target.name}.{secrets.token_hex(4)}.part")
    try:
        with open(temp, "xb") as stream:
            stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temp, target)
    except BaseException:
        if temp.exists():
            temp.unlink()
        raise


def write_text_atomically(target: Path, text: str) -> None:
    """``write_bytes_atomically`` for UTF-8 text."""
    write_bytes_atomically(target, text.encode("utf-8"))
