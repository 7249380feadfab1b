"""What keeps a restored store safe to resume: the mask's fingerprint, the writer's lock, the
check of chunks copied as bytes, and the removal of an output that a run failed to begin.

- :func:`mask_digest`: the content of a damage mask, so that resuming with a mask edited in
  place is refused (the mask's path and hole count alone cannot tell).
- :class:`OutputLock`: one writer per output; the lock file holds the writer's pid and host
  and is stale, and taken over, once that process is gone (a ``kill -9`` never leaves an
  output locked for good).
- :func:`check_chunk_bytes`: a chunk's stored bytes decode to a whole chunk; a corrupt one is
  named (array, chunk key) and never copied.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import socket
import time
from pathlib import Path
from typing import Any

import numpy as np
import zarr
from zarr.codecs import BytesCodec, TransposeCodec, ZstdCodec
from zarr.storage import LocalStore

from inpaint_core.errors import ImageIOError, InpaintError
from inpaint_core.io.atomic import atomic_write
from inpaint_core.io.layout import chunk_key, local_file
from inpaint_core.io.zstd_frames import frame_problem

logger = logging.getLogger(__name__)

LOCK_FILE = ".inpaint.lock"
#: Mask rows hashed at once where the mask's pixels are hashed (not its stored chunks).
DIGEST_ROWS = 1024


class OutputLockedError(InpaintError):
    """Another live process is writing the output."""


class CorruptChunkError(ImageIOError):
    """A stored chunk that does not decode: named by its array and chunk key."""


def mask_digest(mask: Any) -> str:
    """A fingerprint of a mask's content: ``sha256:`` and the hex digest.

    A zarr array in a local folder (also behind a colour or axes view) is fingerprinted by
    its stored chunk files and metadata, read as bytes, not decoded; anything else (a PNG or
    TIFF mask, an array) by its hole pixels (``mask != 0``), read ``DIGEST_ROWS`` rows at a
    time. Equal digests: the same mask; a mask edited in place gets another digest.
    """
    stored = _stored_zarr(mask)
    digest = hashlib.sha256()
    if stored is not None:
        root, prefix = stored
        folder = root / prefix if prefix else root
        for file in sorted(path for path in folder.rglob("*") if path.is_file()):
            digest.update(str(file.relative_to(folder)).encode() + b"\0")
            data = file.read_bytes()
            digest.update(len(data).to_bytes(8, "little") + data)
        return f"sha256:{digest.hexdigest()}"
    height, width = int(mask.shape[0]), int(mask.shape[1])
    digest.update(f"{height}x{width}".encode())
    for row in range(0, height, DIGEST_ROWS):
        rows = np.asarray(mask[row : min(row + DIGEST_ROWS, height)])
        digest.update(np.packbits(rows != 0).tobytes())
    return f"sha256:{digest.hexdigest()}"


def _stored_zarr(mask: Any) -> tuple[Path, str] | None:
    """The local store root and array path of the zarr array behind ``mask``, else None."""

    array = mask
    for _ in range(3):  # AnyChannelMask.array, NgffAxesView.array
        if isinstance(array, zarr.Array):
            break
        array = getattr(array, "array", None)
    if not isinstance(array, zarr.Array) or not isinstance(array.store_path.store, LocalStore):
        return None
    return Path(array.store_path.store.root), array.store_path.path


def _alive(pid: int, host: str) -> bool:
    """Whether process ``pid`` on ``host`` may still run (another host's: assumed so)."""
    if host != socket.gethostname():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a killed child not yet reaped by its parent is a zombie: gone for our purpose
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state not in ("Z", "X")


class OutputLock:
    """The lock of one output folder: a file :data:`LOCK_FILE` in it holding the writer's
    ``pid`` and ``host`` (JSON), made atomically (written aside, then hard-linked into place,
    so no reader ever sees it half-written).

    :meth:`acquire` refuses an output whose lock a live process holds, naming it; a lock whose
    process is gone (killed, crashed) on this host is stale and taken over, with a warning.
    :meth:`release` removes the lock if it is still this one.
    """

    def __init__(self, folder: Path) -> None:
        self.path = Path(folder) / LOCK_FILE
        self.record = {"pid": os.getpid(), "host": socket.gethostname(),
                       "started": time.strftime("%Y-%m-%dT%H:%M:%S")}

    def write_into(self, folder: Path) -> None:
        """Write this lock into ``folder`` (a new output being made, before it is renamed
        into place): the output then appears already locked."""
        (Path(folder) / LOCK_FILE).write_text(json.dumps(self.record))

    def acquire(self) -> OutputLock:
        """Take the lock, or raise OutputLockedError naming the live process holding it."""

        for _ in range(3):
            try:
                with atomic_write(self.path, replace=False) as temporary:
                    temporary.write_text(json.dumps(self.record))
                return self
            except FileExistsError:
                holder = self._holder()
                if holder is not None and _alive(int(holder["pid"]), str(holder["host"])):
                    raise OutputLockedError(
                        f"output {str(self.path.parent)!r} is being written by process "
                        f"{holder['pid']} on {holder['host']} (since {holder.get('started')}); "
                        f"wait for it to finish or stop it. If that process is gone, delete "
                        f"{str(self.path)!r}"
                    ) from None
                logger.warning("taking over the stale lock of %s (%s: process gone)",
                               self.path.parent, holder)
                self.path.unlink(missing_ok=True)
        raise OutputLockedError(f"could not lock {str(self.path.parent)!r}: another run races")

    def _holder(self) -> dict[str, Any] | None:
        try:
            holder = json.loads(self.path.read_text())
            int(holder["pid"])
            return dict(holder)
        except FileNotFoundError:
            return {"pid": -1, "host": socket.gethostname()}  # released meanwhile: retry
        except (OSError, ValueError, KeyError, TypeError):
            return None  # unreadable: written by no live run of ours

    def release(self) -> None:
        """Remove the lock if this process still holds it (never another's)."""
        with contextlib.suppress(OSError, ValueError):
            if json.loads(self.path.read_text()).get("pid") == self.record["pid"]:
                self.path.unlink()

    def __enter__(self) -> OutputLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


def check_chunk_bytes(source: Any, coords: tuple[int, ...]) -> None:
    """Raise :class:`CorruptChunkError` unless chunk ``coords`` (chunk-grid coordinates) of
    the zarr ``source`` decodes to a whole chunk with the array's own codecs (read through
    zarr; a chunk the store lacks is its fill value: nothing to check). The scan is never
    changed."""

    framed = _zstd_chunk_file(source, tuple(coords))
    if framed is not None:  # walk the frame: as telling as a decode for a cut or garbled file
        path, size = framed
        if not path.is_file():
            return  # a missing chunk is the fill value
        problem = frame_problem(path, size)
        if problem is not None:
            raise corrupt_chunk(source, chunk_key(source, tuple(coords)), ValueError(problem))
        return
    try:
        block = source.get_block_selection(tuple(coords))
        del block
    except (KeyboardInterrupt, MemoryError):
        raise
    except Exception as error:
        raise corrupt_chunk(source, chunk_key(source, tuple(coords)), error) from error


def _zstd_chunk_file(source: Any, coords: tuple[int, ...]) -> tuple[Path, int] | None:
    """The local file of chunk ``coords`` of ``source`` and its decoded size, where the array
    is an unsharded zarr v3 array stored as ``[transpose,] bytes, zstd``; else None."""


    if not isinstance(source, zarr.Array) or source.metadata.zarr_format != 3:
        return None
    codecs = [c for c in source.metadata.codecs if not isinstance(c, TransposeCodec)]
    if source.shards is not None or [type(c) for c in codecs] != [BytesCodec, ZstdCodec]:
        return None
    path = local_file(source, coords)
    if path is None:
        return None
    return path, int(np.prod(source.chunks)) * np.dtype(source.dtype).itemsize


def corrupt_chunk(array: Any, key: str, error: BaseException) -> CorruptChunkError:
    """The error for chunk ``key`` of zarr ``array`` that failed to decode with ``error``."""
    store = getattr(array, "store_path", None)
    where = getattr(getattr(store, "store", None), "root", store)
    return CorruptChunkError(
        f"chunk {key!r} of {str(where)!r} is corrupt ({type(error).__name__}: {error}); the "
        "scan is never repaired: restore that chunk file from a backup of the scan, then run "
        "the command again"
    )


def remove_new_output(path: Path) -> None:
    """Remove an output this run created but wrote no chunk into (its failure came first)."""
    shutil.rmtree(path, ignore_errors=True)
    logger.info("removed %s: the run failed before writing its first chunk", path)
