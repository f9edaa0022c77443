"""Writing files so that a reader never sees half of one: a temp file beside it, then a rename or a link."""
from __future__ import annotations

import errno
import os
import secrets
from pathlib import Path
from typing import Callable

#: errors of os.link on file systems without hard links (FAT, some network and FUSE mounts)
_NO_LINKS = {errno.EPERM, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EXDEV, errno.ENOSYS, errno.EMLINK}


def _write_temp(target: Path, data: bytes) -> Path:
    """``data`` in a fresh hidden temp file beside ``target``, flushed to disk; returns its path.

    The temp file is opened like any new file (mode 0666 less the umask), not with mkstemp's
    0600, so a web server or a second user reads the result as they would any other file.
    """
    temp = target.with_name(f".{target.name}.{secrets.token_hex(4)}.part")
    try:
        with open(temp, "xb") as stream:
            stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())
    except BaseException:
        _remove(temp)
        raise
    return temp


def _remove(path: Path) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def write_bytes_atomically(target: Path, data: bytes) -> None:
    """Write ``data`` to ``target`` through a temp file in the same folder, with a normal file's mode."""
    target = Path(target)
    temp = _write_temp(target, data)
    try:
        os.replace(temp, target)
    except BaseException:
        _remove(temp)
        raise


def write_text_atomically(target: Path, text: str) -> None:
    """``write_bytes_atomically`` for UTF-8 text."""
    write_bytes_atomically(target, text.encode("utf-8"))


def link_new(temp: Path, target: Path) -> bool:
    """Give the finished file ``temp`` the name ``target`` only if no file has it; True when it did.

    ``os.link`` fails when the name exists, so two writers can never both claim one name (a
    rename would silently replace the other's file).
    """
    try:
        os.link(temp, target)
    except FileExistsError:
        return False
    except OSError as exc:
        if exc.errno not in _NO_LINKS:
            raise
        return _claim_without_links(temp, target)
    _remove(temp)
    return True


def _claim_without_links(temp: Path, target: Path) -> bool:
    """Fallback: reserve the name with O_EXCL, then rename the finished file over the reservation."""
    try:
        os.close(os.open(target, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666))
    except FileExistsError:
        return False
    os.replace(temp, target)
    return True


def write_new_bytes(target_for: Callable[[int], Path], data: bytes, first: int = 1,
                    attempts: int = 100_000) -> tuple[Path, int]:
    """Write ``data`` under the first free name ``target_for(n)``, n = first, first + 1, ...; never replaces.

    Returns the path and its n. A reader never sees a partial file under any of the names, and
    writers in other processes racing for the same names each get one of their own.

    Raises:
        FileExistsError: every one of ``attempts`` names was taken.
    """
    target = Path(target_for(first))
    temp = _write_temp(target, data)
    try:
        for n in range(first, first + attempts):
            target = Path(target_for(n))
            if link_new(temp, target):
                return target, n
    finally:
        _remove(temp)
    raise FileExistsError(f"{target_for(first)}: {attempts} names from there on are all taken")
