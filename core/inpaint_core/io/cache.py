"""A read-through cache of decoded chunks, so that overlapping windows decode each chunk once.

The tiled engine reads a window per tile (tiles overlap, and a window spans up to four
chunks) and then every output chunk's source pixels again; without a cache each read decodes
every chunk it touches. :class:`ChunkCache` wraps a chunked array (zarr, a TIFF's zarr view)
and serves 2-D slices from decoded chunks held in a least-recently-used cache of bounded size.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import numpy as np

from inpaint_core.arrays import is_integer
from inpaint_core.errors import InpaintError, InvalidInputError, ParameterError
from inpaint_core.geometry import Box, chunk_boxes
from inpaint_core.io.guard import corrupt_chunk

#: Bytes of decoded chunks a :class:`ChunkCache` holds by default.
CACHE_BYTES = 128 * 2**20


class ChunkCache:
    """Slices of ``array`` (``(H, W)`` or ``(H, W, C)``, chunked along H and W) served from
    its decoded chunks, the least recently used dropped beyond ``max_bytes``.

    Indexing takes ``(rows, cols)`` slices with step 1 (what the engine reads) and returns a
    new ``(h, w[, C])`` array of ``array``'s dtype, equal to ``np.asarray(array[rows, cols])``.
    Thread-safe: a chunk two threads miss at once may be decoded twice, never stored wrong.
    ``hits`` and ``misses`` count chunk lookups. ``reader``: reads chunk ``(row, col)`` as
    ``array[rows, cols]`` would, e.g. :meth:`~inpaint_core.io.chunks.DirectChunks.read` (which
    decodes in the calling thread); None: ``array`` is sliced.
    """

    def __init__(
        self, array: Any, max_bytes: int = CACHE_BYTES,
        reader: Callable[[tuple[int, int]], np.ndarray] | None = None,
    ) -> None:
        if not is_integer(max_bytes) or max_bytes < 0:
            raise ParameterError(f"max_bytes={max_bytes!r} must be an int >= 0")
        chunks = chunked(array)
        if chunks is None:
            raise InvalidInputError(
                f"a {type(array).__name__} with chunks {getattr(array, 'chunks', None)!r} "
                "cannot be cached chunk by chunk; expected integer chunk sides"
            )
        self.array = array
        self.shape = tuple(int(v) for v in array.shape)
        self.dtype = np.dtype(array.dtype)
        self.chunks = chunks
        self.max_bytes = int(max_bytes)
        self._reader = reader
        self.hits = 0
        self.misses = 0
        self._held: OrderedDict[tuple[int, int], np.ndarray] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def __getitem__(self, key: tuple[slice, slice]) -> np.ndarray:
        rows, cols = (_bounds(part, side) for part, side in zip(key, self.shape[:2], strict=True))
        out = np.empty((rows[1] - rows[0], cols[1] - cols[0], *self.shape[2:]), self.dtype)
        if out.size == 0:
            return out
        region = Box(rows[0], rows[1], cols[0], cols[1])
        for chunk in chunk_boxes(self.shape[:2], self.chunks, within=region):
            block = self._chunk(chunk.row0 // self.chunks[0], chunk.col0 // self.chunks[1])
            piece = chunk.intersection(region)
            assert piece is not None  # chunk_boxes(within=) yields overlapping chunks only
            out[piece.slices_in(region)] = block[piece.slices_in(chunk)]
        return out

    def _chunk(self, row: int, col: int) -> np.ndarray:
        with self._lock:
            block = self._held.get((row, col))
            if block is not None:
                self._held.move_to_end((row, col))
                self.hits += 1
                return block
            self.misses += 1
        rows = slice(row * self.chunks[0], min((row + 1) * self.chunks[0], self.shape[0]))
        cols = slice(col * self.chunks[1], min((col + 1) * self.chunks[1], self.shape[1]))
        try:
            if self._reader is not None:  # decoded in this thread
                block = np.asarray(self._reader((row, col)))
            else:
                block = np.asarray(self.array[rows, cols])
        except (InpaintError, OSError, KeyboardInterrupt, MemoryError):
            raise
        except Exception as error:  # e.g. zarr's "Zstd decompression error": name the chunk

            raise corrupt_chunk(self.array, f"chunk ({row}, {col})", error) from error
        block.setflags(write=False)
        with self._lock:
            if (row, col) not in self._held and block.nbytes <= self.max_bytes:
                self._held[(row, col)] = block
                self._bytes += block.nbytes
                while self._bytes > self.max_bytes:
                    _, dropped = self._held.popitem(last=False)
                    self._bytes -= dropped.nbytes
        return block


def chunked(array: Any) -> tuple[int, int] | None:
    """``(rows, cols)`` chunk sides of a 2-D or 3-D array chunked along H and W only (the
    channels, if any, in one chunk), else None (NumPy arrays, dask arrays, other chunkings)."""
    chunks = getattr(array, "chunks", None)
    shape = tuple(getattr(array, "shape", ()))
    if not isinstance(chunks, tuple) or len(chunks) != len(shape) or len(shape) not in (2, 3):
        return None
    if not all(is_integer(v) and v > 0 for v in chunks):
        return None
    if len(shape) == 3 and chunks[2] < shape[2]:
        return None
    return int(chunks[0]), int(chunks[1])


def _bounds(part: Any, length: int) -> tuple[int, int]:
    if not isinstance(part, slice) or part.step not in (None, 1):
        raise InvalidInputError(f"a ChunkCache is read with step-1 slices, not {part!r}")
    start, stop, _ = part.indices(length)
    return start, max(start, stop)
