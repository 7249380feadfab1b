"""Atomic file writes: write a hidden sibling, rename it over the target only once complete.

A reader never sees a half-written file, and a failed write leaves nothing behind. The file and
its folder are fsynced, so a power cut leaves the old file or the new one, never an empty one.
"""

from __future__ import annotations

import errno
import os
import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

#: The names :func:`temporary_sibling` makes: ``.NAME.PID-HEX8.tmpSUFFIX``.
_TEMPORARY = re.compile(r"^\..+\.\d+-[0-9a-f]{8}\.tmp[^/]*$")


def temporary_sibling(path: str | os.PathLike[str]) -> Path:
    """A unique, not yet existing hidden name beside ``path`` that keeps its suffix."""
    path = Path(path)
    token = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
    return path.with_name(f".{path.name}.{token}.tmp{path.suffix}")


@contextmanager
def atomic_write(
    path: str | os.PathLike[str], *, replace: bool = True, durable: bool = True
) -> Iterator[Path]:
    """Yield a temporary path to write (or link); on success it replaces ``path``, on error
    it is removed. With ``replace=False`` it becomes ``path`` only if none exists by then
    (hard-linked into place: no other writer's file is ever replaced), else FileExistsError.
    With ``durable=False`` the file and folder are not fsynced: for bulk writers (a restore's
    chunks and progress marks) that flush everything once with :func:`flush_to_disk` before
    they record the work as complete, as two fsyncs per chunk would cost more than the chunk.

    Example::

        with atomic_write("report.md") as temporary:
            temporary.write_text(text)
    """
    path = Path(path)
    temporary = temporary_sibling(path)
    try:
        yield temporary
        if durable:
            fsync_path(temporary)  # the data is on disk before the name points to it
        if replace:
            os.replace(temporary, path)
        else:
            os.link(temporary, path)
        if durable:
            fsync_path(path.parent)  # and the new name too: a power cut leaves old or new
    finally:
        temporary.unlink(missing_ok=True)


def fsync_path(path: str | os.PathLike[str]) -> None:
    """Flush the file or folder ``path`` to disk (``fsync``). A folder that cannot be opened
    for it (Windows) or a filesystem that refuses it is skipped: nothing more can be done."""
    try:
        handle = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0)
                         if os.path.isdir(path) else os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(handle)
    except OSError as error:
        if error.errno not in (errno.EINVAL, errno.ENOTSUP, errno.EBADF):
            raise
    finally:
        os.close(handle)


def flush_to_disk() -> None:
    """Write every file's pending data to disk (``os.sync``; nothing where the OS has none)."""
    sync = getattr(os, "sync", None)
    if sync is not None:
        sync()


def remove_stale_temporaries(root: str | os.PathLike[str]) -> int:
    """Remove the temporaries a killed writer left under ``root`` (names as
    :func:`temporary_sibling` makes them). Call it only while no other process writes there
    (e.g. holding the output's lock). Returns how many were removed."""
    removed = 0
    for folder, _, files in os.walk(root):
        for name in files:
            if _TEMPORARY.match(name):
                Path(folder, name).unlink(missing_ok=True)
                removed += 1
    return removed
