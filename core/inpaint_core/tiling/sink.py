"""The output sink: where a restoration's results go, and the output's safe lifecycle.

:class:`OutputSink` writes level-0 chunks (restored ones, and hole-free ones copied as the
source's stored bytes or linked), marks each done in the progress array once written, hands
each restored chunk to the pyramid (:class:`~inpaint_core.io.pyramid.PyramidWriter`, which
writes the levels above it as soon as it can) and finishes the output. :func:`output_session`
creates the output (or reopens it to resume) under a lock, and decides on failure whether it
is kept (resumable) or removed.
"""

from __future__ import annotations

import errno
import os
import shutil
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from inpaint_core.errors import ImageIOError, InpaintError, OutputExistsError
from inpaint_core.geometry import Box
from inpaint_core.io import store
from inpaint_core.io.atomic import flush_to_disk, remove_stale_temporaries, temporary_sibling
from inpaint_core.io.axes import stored, stored_chunks
from inpaint_core.io.chunks import chunk_store, copy_chunk_bytes, copyable_as_bytes
from inpaint_core.io.guard import OutputLock, remove_new_output
from inpaint_core.io.layout import zstd_writer
from inpaint_core.io.marks import MARK_FILE, mark_done
from inpaint_core.io.pyramid import PyramidWriter
from inpaint_core.io.store import LEVEL0, PROGRESS, level_array, open_output
from inpaint_core.tiling.execution import check_resumable


class OutputSink:
    """Level 0 of an output ``group``, its progress marks and its pyramid.

    Args:
        group: the output group (created or reopened by :func:`output_session`).
        source: the scan ``(H, W[, C])`` hole-free chunks are copied from.
        link: hard-link hole-free chunks instead of copying them (where their stored bytes
            can be kept; else they are written through zarr).
        zstd_level: the zstd level of the chunks encoded (None: the declared one).
        restored: the event to set once a restored chunk is written
            (:attr:`OutputSession.restored`); None: a new one.

    A copy of the sink sent to another process (a dask worker copying chunks) keeps level 0
    and the marks, not the pyramid.
    """

    def __init__(self, group: Any, source: Any, *, link: bool = False,
                 zstd_level: int | None = None, restored: threading.Event | None = None,
                 ) -> None:
        # A restored chunk is never all fill value in practice: skip zarr's check of each
        # written chunk against it (a full comparison per chunk, a quarter of the encoding).
        level0 = level_array(group, LEVEL0, {"write_empty_chunks": True})
        self.group, self.source, self.link = group, source, link
        self.level0 = zstd_writer(level0, zstd_level)
        self.progress = group[PROGRESS]
        self._store = chunk_store(self.level0)  # encodes in the calling thread where it can
        self.pyramid: PyramidWriter | None = None
        self.restored = restored or threading.Event()  # set once a restored chunk is marked

    def __getstate__(self) -> dict[str, Any]:
        return {name: value for name, value in self.__dict__.items()
                if name not in ("pyramid", "restored")}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state, pyramid=None, restored=threading.Event())

    @property
    def block(self) -> tuple[int, int]:
        """Level 0's chunk sides ``(rows, cols)``."""
        return int(self.level0.chunks[0]), int(self.level0.chunks[1])

    def done(self, resuming: bool) -> np.ndarray:
        """Bool, the chunk grid: chunks marked written (a new output has none: not read)."""
        if not resuming:
            return np.zeros(self.progress.shape, bool)
        return np.asarray(self.progress[...]) != 0

    def start_pyramid(
        self, side: int, *, source_levels: Sequence[Any], changed: Sequence[tuple[int, ...]],
        final: set[tuple[int, int]], zstd_level: int | None,
    ) -> PyramidWriter:
        """Begin the pyramid (arguments as for :class:`PyramidWriter`): its chunks over
        restored chunks are then written as those are, beside the method."""
        self.pyramid = PyramidWriter(self.group, side, source_levels=source_levels,
                                     changed=changed, link=self.link, final=final,
                                     zstd_level=zstd_level)
        return self.pyramid

    def write_chunk(self, key: tuple[int, int], pixels: np.ndarray) -> None:
        """Store restored chunk ``key`` ``(row, col)`` from its ``(h, w[, C])`` ``pixels``,
        mark it done, then hand it to the pyramid. Thread-safe (one caller per key)."""
        self._store(key, pixels)
        self.mark(key)
        self.restored.set()
        if self.pyramid is not None:
            self.pyramid.written(key, pixels)

    def copy_chunk(self, box: Box, key: tuple[int, int]) -> None:
        """Copy hole-free chunk ``key`` (pixels ``box``) from the source, as its stored bytes
        where they can be kept, and mark it done."""
        if copyable_as_bytes(self.source, self.level0):  # no decoding, no encoding
            origin, target = stored(self.source), stored(self.level0)
            for coords in stored_chunks(self.level0, key):  # one per stored chunk of channels
                copy_chunk_bytes(origin, target, coords, link=self.link)
        else:
            self.level0[box.slices] = np.asarray(self.source[box.slices])
        self.mark(key)

    def mark(self, key: tuple[int, int]) -> None:
        """Mark level-0 chunk ``key`` written (:func:`~inpaint_core.io.marks.mark_done`)."""
        mark_done(self.progress, key)

    def finish(self, name: str, provenance: dict[str, Any]) -> int:
        """Write the rest of the pyramid, if one was begun (its NGFF metadata naming the image
        ``name``; else the output is level 0 alone), flush every chunk and mark to disk, then
        record ``provenance`` as complete. Returns the number of levels; an output already
        complete (a finished run resumed) keeps its own."""
        if provenance.get("complete"):
            return len(self.group.attrs["ome"]["multiscales"][0]["datasets"])
        if self.pyramid is None:
            levels = 1
            stale = [key for key in self.group.array_keys() if key.isdigit() and key != LEVEL0]
            for key in stale:
                del self.group[key]  # begun by an earlier run that built a pyramid
        else:
            levels = self.pyramid.finish(name)
        flush_to_disk()  # chunks and marks were written without fsync: on disk before "complete"
        self.group.attrs["inpaint"] = dict(provenance, complete=True)
        return levels


@dataclass
class OutputSession:
    """An output opened for writing by :func:`output_session`.

    Attributes:
        group: the output's zarr group.
        resuming: it existed (``resume``) and is continued.
        provenance: the provenance recorded in it (a resumed output's own).
        restored: set by the sink once a restored chunk is written: the output is then kept
            whatever happens.
    """

    group: Any
    resuming: bool
    provenance: dict[str, Any]
    restored: threading.Event = field(default_factory=threading.Event)


@contextmanager
def output_session(
    path: Path, source: Any, provenance: dict[str, Any], omero: dict[str, Any] | None, *,
    resume: bool, check_inputs: Callable[[], None] = lambda: None,
) -> Iterator[OutputSession]:
    """Create the output at ``path`` for ``source`` (or reopen it when ``resume`` and it
    exists, checking the settings match) and hold its lock while the block runs. The last
    input checks, ``check_inputs()``, run before a new output exists, or once a resumed one
    is known to match. On an error in the block the output is removed unless it holds written
    chunks (or was resumed); the error is then the one the user sees (:func:`explained`)."""
    resuming = resume and path.exists()
    lock = OutputLock(path)
    if resuming:
        lock.acquire()
        try:
            group = open_output(path)
            provenance = check_resumable(path, dict(group.attrs.get("inpaint", {})), provenance)
            check_inputs()
            remove_stale_temporaries(path)  # a killed run's half-written files: never kept
        except BaseException:
            lock.release()
            raise
    else:
        check_inputs()
        group = create_locked(path, source, provenance, omero, lock)
    session = OutputSession(group, resuming, provenance)
    try:
        yield session
    except BaseException as error:
        kept = resuming or session.restored.is_set() or chunks_written(path)
        if not kept:
            remove_new_output(path)
        told = explained(error, path, kept)
        if told is error:
            raise
        raise told from error
    finally:
        lock.release()


def create_locked(
    path: Path, source: Any, provenance: dict[str, Any], omero: dict[str, Any] | None,
    lock: OutputLock,
) -> Any:
    """Create the output in a hidden sibling folder, with ``lock`` in it, and rename it into
    place once whole: ``path`` never holds a half-made output (a run killed meanwhile leaves
    only the hidden folder), and it appears already locked by this run."""
    temporary = temporary_sibling(path)
    try:
        store.create_output(temporary, source, provenance, omero, name=path.stem)
        lock.write_into(temporary)
        os.rename(temporary, path)
    except BaseException as error:
        shutil.rmtree(temporary, ignore_errors=True)
        if isinstance(error, OSError) and error.errno in (errno.EEXIST, errno.ENOTEMPTY):
            raise OutputExistsError(
                f"output {str(path)!r} was created by another run meanwhile; choose another "
                "path, or pass --resume once that run has finished"
            ) from error
        told = explained(error, path, kept=False)
        if told is error:
            raise
        raise told from error
    return open_output(path)


def chunks_written(path: Path) -> bool:
    """Whether the output at ``path`` has a chunk marked done (restored or copied) in its
    progress array; True when that cannot be told (it is then kept)."""
    folder = path / PROGRESS
    try:
        return any(file.is_file() and file.name not in ("zarr.json", MARK_FILE)
                   and not file.name.startswith(".") for file in folder.rglob("*"))
    except OSError:
        return True


def explained(error: BaseException, path: Path, kept: bool) -> BaseException:
    """``error`` as the user sees it: an OSError becomes an ImageIOError naming the path and
    the reason; once chunks are written, an InpaintError's message (changed in place, so its
    cause stays) says that the output is resumable."""
    if isinstance(error, (KeyboardInterrupt, GeneratorExit, SystemExit)):
        return error
    after = (f"; {str(path)!r} is kept: fix that, then rerun the same command with --resume to "
             "continue" if kept else "")
    if isinstance(error, OSError) and not isinstance(error, InpaintError):
        reason = error.strerror or str(error)
        where = f" ({error.filename})" if error.filename else ""
        return ImageIOError(f"cannot write the output {str(path)!r}: {reason}{where}{after}")
    if isinstance(error, InpaintError) and after and len(error.args) == 1:
        error.args = (f"{error.args[0]}{after}",)
    return error
