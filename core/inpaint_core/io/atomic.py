"""Atomic file writes: write a hidden sibling, rename it over the target only once complete.

A reader never sees a half-written file, and a failed write leaves nothing behind.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def temporary_sibling(path: str | os.PathLike[str]) -> Path:
    """A unique, not yet existing hidden name beside ``path`` that keeps its suffix."""
    path = Path(path)
    token = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
    return path.with_name(f".{path.name}.{token}.tmp{path.suffix}")


@contextmanager
def atomic_write(path: str | os.PathLike[str], *, replace: bool = True) -> Iterator[Path]:
    """Yield a temporary path to write (or link); on success it replaces ``path``, on error
    it is removed. With ``replace=False`` it becomes ``path`` only if none exists by then
    (hard-linked into place: no other writer's file is ever replaced), else FileExistsError.

    Example::

        with atomic_write("report.md") as temporary:
            temporary.write_text(text)
    """
    path = Path(path)
    temporary = temporary_sibling(path)
    try:
        yield temporary
        if replace:
            os.replace(temporary, path)
        else:
            os.link(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
