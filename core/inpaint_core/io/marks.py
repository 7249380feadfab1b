"""Progress marks: which level-0 chunks of an output are written, one tiny file each.

A resumed run redoes only the chunks whose mark is missing. A mark is chunk ``(row, col)`` of
the output's uint8 progress array, set to 1 (:func:`mark_done`).
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
from pathlib import Path
from typing import Any

import numpy as np
import zarr
from zarr.codecs import BytesCodec

from inpaint_core.io.atomic import atomic_write
from inpaint_core.io.layout import local_file

logger = logging.getLogger(__name__)

#: The hidden file in a local progress array's folder that its marks are hard links to: the
#: one byte ``0x01`` zarr stores for a chunk of one uint8 1 (:func:`mark_done`).
MARK_FILE = ".mark"


_MARK = b"\x01"


_UNLINKABLE: set[Path] = set()  # templates of progress arrays where hard links were refused


def mark_done(progress: Any, key: tuple[int, int]) -> None:
    """Set chunk ``key`` ``(row, col)`` of an output's progress array to 1.

    In a local folder the chunk's file is made directly, never seen half-written: a hard link
    to the folder's :data:`MARK_FILE`, the one byte ``0x01`` that zarr stores for an
    uncompressed uint8 chunk of one element. A link makes no new file, so it costs the system
    a twentieth of writing one (a 32k scan's 1024 marks: 0.02 s instead of 0.4 s of kernel
    time, taken from the method's cores). zarr replaces a chunk file when it writes one, so a
    later write through zarr changes that chunk only. Where hard links are refused the byte is
    written (renamed into place); any other progress array is written through zarr."""
    path = local_file(progress, key) if _one_raw_byte(progress) else None
    if path is None:
        progress[key] = 1
        return
    template = Path(progress.store_path.store.root) / progress.store_path.path / MARK_FILE
    if template not in _UNLINKABLE:
        try:
            _link_mark(template, path)
            return
        except OSError as error:
            if isinstance(error, FileNotFoundError):  # a folder gone: not a refused link
                raise
            logger.debug("hard links refused in %s; writing marks", template.parent, exc_info=True)
            _UNLINKABLE.add(template)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(path, durable=False) as temporary:  # flushed once at the end
        temporary.write_bytes(_MARK)


def _link_mark(template: Path, path: Path) -> None:
    """Make ``path`` a hard link to ``template``: made when missing (with ``path``'s folder);
    an existing ``path`` is replaced atomically; a ``template`` at the filesystem's link limit
    is replaced by a fresh one (earlier marks keep linking the old one)."""
    for _ in range(4):  # another thread may be making or replacing the template meanwhile
        try:
            os.link(template, path)
            return
        except FileExistsError:  # marked before: replaced, never missing meanwhile
            with atomic_write(path, durable=False) as temporary:
                os.link(template, temporary)
            return
        except FileNotFoundError as error:
            failure: OSError = error
            _make_template(template, replace=False)
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            if error.errno != errno.EMLINK:
                raise
            failure = error
            _make_template(template, replace=True)
    raise failure


def _make_template(template: Path, *, replace: bool) -> None:
    """Write the mark ``template``, unless it exists and not ``replace``. A missing one is
    made without replacing one another thread made meanwhile (whose inode, linked by nothing
    else yet, would vanish under a mark being linked to it: the kernel refuses that link)."""
    if not replace and template.is_file():
        return
    template.parent.mkdir(parents=True, exist_ok=True)
    with (
        contextlib.suppress(FileExistsError),
        atomic_write(template, replace=replace, durable=False) as new,
    ):
        new.write_bytes(_MARK)


def _one_raw_byte(array: Any) -> bool:
    """Whether each chunk of zarr ``array`` is stored as one uncompressed uint8 byte."""

    if not isinstance(array, zarr.Array) or array.metadata.zarr_format != 3:
        return False
    if array.dtype != np.uint8 or any(int(side) != 1 for side in array.chunks):
        return False
    codecs = array.metadata.codecs
    return len(codecs) == 1 and isinstance(codecs[0], BytesCodec)
