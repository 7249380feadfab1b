"""The output's pyramid: levels 1, 2, ... each a 2x area average of the one below.

:class:`PyramidWriter` writes a level's chunk as soon as the chunks below it are final, so
most of the pyramid is written while the method still runs; an OME-Zarr source's own levels
lend their stored chunks wherever nothing was restored under them.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from typing import Any

import cv2
import numpy as np

from inpaint_core.geometry import (
    Box,
    block_box,
    chunk_blocks,
    chunk_boxes,
    dirty_blocks,
    doubled,
    half,
)
from inpaint_core.io.axes import NgffAxesView, arranged, stored, stored_axes, stored_chunks
from inpaint_core.io.chunks import chunk_store, copy_chunk_bytes, copyable_as_bytes
from inpaint_core.io.layout import (
    MAX_CHUNK,
    kept_encoding,
    new_encoding,
    zstd_writer,
)
from inpaint_core.io.store import LEVEL0, level_array, write_multiscales

logger = logging.getLogger(__name__)

PYRAMID_SIDE = 1024
"""The pyramid stops at the first level whose long side is at most this many pixels."""

#: Threads that write a pyramid level's chunks (decoding and encoding release the GIL; copied
#: chunks are file I/O).
PYRAMID_THREADS = 4


#: Channel counts for which :func:`downsample` of uint8/uint16 runs through OpenCV's 2x area
#: resize, whose results are the exact rounded mean there (checked by the tests; OpenCV
#: rounds differently for 2 and for 5 or more channels, so those take the NumPy path).
AREA_CHANNELS = (1, 3, 4)


def pyramid_shapes(shape: tuple[int, ...], side: int = PYRAMID_SIDE) -> list[tuple[int, ...]]:
    """Shapes of levels 1, 2, ...: each halves (rounding up) the previous ``(H, W)`` until
    the long side is at most ``side``; channels are kept."""
    shapes: list[tuple[int, ...]] = []
    current = tuple(shape)
    while max(current[:2]) > side:
        current = ((current[0] + 1) // 2, (current[1] + 1) // 2, *current[2:])
        shapes.append(current)
    return shapes


def downsample(block: np.ndarray) -> np.ndarray:
    """2x area average of ``(h, w[, C])``: ``((h+1)//2, (w+1)//2[, C])`` in the same dtype.

    An odd last row or column averages only itself; integers are rounded half up (summed in
    a wider integer type, no float copy), floats averaged in float64.
    """
    rows, cols = block.shape[0], block.shape[1]
    if rows % 2 or cols % 2:
        pad = [(0, rows % 2), (0, cols % 2)] + [(0, 0)] * (block.ndim - 2)
        block = np.pad(block, pad, mode="edge")
    channels = block.shape[2] if block.ndim == 3 else 1
    if block.dtype in (np.uint8, np.uint16) and channels in AREA_CHANNELS and block.size:
        # OpenCV's 2x area resize is this same rounded-half-up mean, 10-20x faster than NumPy.
        small = cv2.resize(np.ascontiguousarray(block), (block.shape[1] // 2, block.shape[0] // 2),
                           interpolation=cv2.INTER_AREA)
        return small.reshape(block.shape[0] // 2, block.shape[1] // 2, *block.shape[2:])
    quarters = (block[0::2, 0::2], block[1::2, 0::2], block[0::2, 1::2], block[1::2, 1::2])
    if np.issubdtype(block.dtype, np.integer):
        wide = np.uint32 if block.dtype.itemsize <= 2 else np.int64
        total = quarters[0].astype(wide)
        for quarter in quarters[1:]:
            total += quarter
        return ((total + 2) // 4).astype(block.dtype)
    total = quarters[0].astype(np.float64)
    for quarter in quarters[1:]:
        total += quarter
    return (total / 4.0).astype(block.dtype)


def _halved(
    lower: Any, region: tuple[int, int, int, int],
    parts: Mapping[tuple[int, int], np.ndarray] | None,
    source: tuple[Any, set[tuple[int, int]]] | None = None,
) -> np.ndarray:
    """The 2x-smaller pixels of ``lower[row0:row1, col0:col1]`` (``region``), chunk of
    ``lower`` by chunk: :func:`downsample` of it, or the part ``parts`` holds for it (by its
    pixel origin, already downsampled), or, with ``source = (level, lower_dirty)``, for a
    chunk whose block index is not in ``lower_dirty`` (so whose pixels are the source's own),
    the source's pyramid ``level`` there (one read for the whole region): the output's level
    then keeps the source's pixels wherever nothing was restored under them, as its copied
    chunks do. Chunk by chunk needs ``lower``'s chunk sides even (no 2x2 cell straddles two
    chunks); otherwise ``parts`` and ``source`` must be None."""
    box = Box(*region)
    if not parts and source is None:
        return downsample(np.asarray(lower[box.slices]))
    chunks = (int(lower.chunks[0]), int(lower.chunks[1]))
    shape = (int(lower.shape[0]), int(lower.shape[1]))
    out = np.empty((*half(box).shape, *lower.shape[2:]), lower.dtype)
    from_source = None
    for chunk in chunk_boxes(shape, chunks, within=box):
        piece = chunk.intersection(box)
        assert piece is not None  # chunk_boxes(within=) yields overlapping chunks only
        part = parts.get((chunk.row0, chunk.col0)) if parts and piece == chunk else None
        if part is None and source is not None:
            level, lower_dirty = source
            if (chunk.row0 // chunks[0], chunk.col0 // chunks[1]) not in lower_dirty:
                if from_source is None:
                    from_source = np.asarray(level[half(box).slices])
                part = from_source[half(piece).slices_in(half(box))]
        if part is None:
            part = downsample(np.asarray(lower[piece.slices]))
        out[half(piece).slices_in(half(box))] = part
    return out


def write_pyramid(
    group: Any, name: str, side: int = PYRAMID_SIDE, *, source_levels: Sequence[Any] = (),
    changed: Sequence[tuple[int, int, int, int]] | None = None, link: bool = False,
    parts: Mapping[tuple[int, int], np.ndarray] | None = None,
) -> int:
    """Write levels 1, 2, ... of ``group`` from level 0, one output chunk at a time, and the
    NGFF ``multiscales`` attributes (top level for NGFF 0.4 readers, under ``"ome"`` for 0.5)
    naming the image ``name``. Returns the number of levels, level 0 included.

    Args:
        group: the output group holding level ``"0"``.
        name: the image name in the metadata.
        side: levels are added until the long side is at most this.
        source_levels: the source's own levels 1, 2, ... (an OME-Zarr pyramid). Where one has
            this level's shape, the level takes its chunking and encoding, and every chunk
            that covers no ``changed`` box is copied from it as stored bytes instead of being
            computed: the cost then follows the restored area, not the scan's. A computed
            chunk, too, takes the source level's pixels over the lower chunks that no
            ``changed`` box touches (one read of the source instead of decoding and averaging
            up to four chunks).
        changed: level-0 boxes ``(row0, col0, row1, col1)`` whose pixels may differ from the
            source; None = compute every chunk.
        link: hard-link the reused chunks instead of copying them (:func:`check_linkable`).
        parts: :func:`downsample` of level-0 chunks, by the chunk's pixel origin ``(row,
            col)``, e.g. kept by the engine as it wrote them: level 1 takes them instead of
            reading and averaging those chunks again (then each level keeps its computed
            chunks' for the next). Used only where the lower level's chunk sides are even
            (then the pixels are the same either way); None: every level reads the one below.
    """
    writer = PyramidWriter(group, side, source_levels=source_levels, changed=changed, link=link)
    if parts:
        writer.keep(parts)
    return writer.finish(name)


#: Bytes of downsampled chunks a :class:`PyramidWriter` keeps for the level above.
PARTS_BYTES = 256 * 2**20


@dataclass
class _Level:
    """One pyramid level of a :class:`PyramidWriter` and what computing its chunks needs."""

    array: Any  # this level's output array
    lower: Any  # the output level below (level 0 for level 1)
    reuse: Any  # the source's own array of this shape, else None
    needed: set[tuple[int, int]] | None  # chunk blocks to compute (others copied); None: all
    lower_dirty: set[tuple[int, int]] | None  # lower blocks read from ``lower`` (the others
    # from ``reuse``: the source's pixels); None: every lower block is read from ``lower``
    even: bool  # the lower level's chunk sides are even: kept parts can stand in for chunks
    parts: dict[tuple[int, int], np.ndarray]  # downsampled lower chunks, by pixel origin
    pending: dict[tuple[int, int], int]  # needed block -> lower blocks it waits for
    claimed: set[tuple[int, int]]  # blocks computed or being computed
    store: Callable[[tuple[int, int], np.ndarray], None]  # writes a chunk: chunk_store(array)


class PyramidWriter:
    """Levels 1, 2, ... of an output ``group``, each computed chunk written as soon as the
    chunks below it are final: the engine reports each level-0 chunk it writes
    (:meth:`written`, from its I/O threads), so most of the pyramid is written while the method
    still runs; :meth:`finish` writes the rest (the chunks copied from the source's levels and
    those still waiting) and the NGFF metadata. :func:`write_pyramid` is a writer finished at
    once; the arguments are the same, and the pixels too, whatever the order of the writes.

    Args:
        group: the output group holding level ``"0"``; the levels are created (replacing any
            there) at once.
        side, source_levels, changed, link: as for :func:`write_pyramid`.
        final: the level-0 chunk blocks ``(row, col)`` already final (a resumed run's done
            chunks); None: all of them (level 0 is written).
        zstd_level: the zstd level of the chunks computed and written (:func:`zstd_writer`);
            None: the level the levels declare.
    """

    def __init__(
        self, group: Any, side: int = PYRAMID_SIDE, *, source_levels: Sequence[Any] = (),
        changed: Sequence[tuple[int, int, int, int]] | None = None, link: bool = False,
        final: set[tuple[int, int]] | None = None, zstd_level: int | None = None,
    ) -> None:

        self._lock = threading.Lock()
        self._group = group
        self._link = link
        self._eager = final is not None
        self._room = PARTS_BYTES
        self._clean: int | None = None  # chunks copied by copy_clean, once it ran
        self.levels: list[_Level] = []
        previous = level_array(group, LEVEL0)
        chunks = tuple(previous.chunks)
        self._base = previous
        for level, shape in enumerate(pyramid_shapes(tuple(previous.shape), side), start=1):
            reuse = source_levels[level - 1] if level - 1 < len(source_levels) else None
            if reuse is not None and tuple(reuse.shape) != tuple(shape):
                reuse = None
            pairs = zip(chunks[:2], shape[:2], strict=True)
            layout = _level_layout(previous, shape, tuple(min(c, s) for c, s in pairs))
            encoding = new_encoding()
            if reuse is not None and max(reuse.chunks[:2]) <= MAX_CHUNK:  # its chunks, kept?
                reused = _level_layout(previous, shape, tuple(int(v) for v in reuse.chunks[:2]))
                kept = kept_encoding(reuse, stored_axes(previous), reused["chunks"])
                if kept is not None:
                    layout, encoding = reused, kept
            array = group.create_array(
                str(level), **layout, dtype=previous.dtype, overwrite=True,
                dimension_names=stored_axes(previous), config={"write_empty_chunks": True},
                **encoding,
            )
            if isinstance(previous, NgffAxesView):
                array = previous.with_array(array)
            array = zstd_writer(array, zstd_level)
            raw = reuse is not None and copyable_as_bytes(reuse, array)
            needed = dirty_blocks(changed, level, tuple(array.chunks[:2]), shape) if raw else None
            even = all(int(v) % 2 == 0 for v in previous.chunks[:2])
            lower_dirty = None
            if needed is not None and even:  # the lower level's chunks that may differ
                lower_dirty = dirty_blocks(changed, level - 1, tuple(previous.chunks[:2]),
                                            tuple(previous.shape))
            self.levels.append(_Level(array, previous, reuse, needed, lower_dirty, even, {},
                                      {}, set(), chunk_store(array)))
            previous = array
        for number, entry in enumerate(self.levels, start=1):
            done = final if number == 1 else set()
            every = [b for b, _ in chunk_blocks(entry.array)]
            blocks = every if entry.needed is None else entry.needed
            for block in blocks:
                waits = [child for child in self._children(entry, block)
                         if entry.lower_dirty is None or child in entry.lower_dirty]
                entry.pending[block] = sum(1 for child in waits if done is None or child
                                           not in done)

    def keep(self, parts: Mapping[tuple[int, int], np.ndarray]) -> None:
        """Take level 1's pixels over level-0 chunks, by the chunk's pixel origin: each the
        :func:`downsample` of that chunk (used only where level 0's chunk sides are even)."""
        if self.levels and self.levels[0].even:
            self.levels[0].parts.update(parts)

    def written(self, block: tuple[int, int], pixels: np.ndarray | None = None) -> None:
        """Level-0 chunk ``block`` ``(row, col)`` is final, with ``pixels`` when at hand (kept
        downsampled for level 1). Level-1 chunks waiting for nothing more are then computed
        and written in this thread, and so on up, until :meth:`finish` begins. Thread-safe."""
        self._final(0, block, pixels)

    def copy_clean(self) -> int:
        """Copy (or link) every chunk taken as stored from the source's levels, those over no
        ``changed`` box; they do not depend on level 0, so the engine copies them while it
        restores. Returns their number; :meth:`finish` copies them unless this ran."""
        copied = 0
        with ThreadPoolExecutor(PYRAMID_THREADS) as pool:
            for entry in self.levels:
                if entry.needed is None:
                    continue
                clean = [coords for block, _ in chunk_blocks(entry.array)
                         if block not in entry.needed
                         for coords in stored_chunks(entry.array, block)]
                copy = partial(copy_chunk_bytes, stored(entry.reuse), stored(entry.array),
                               link=self._link)
                list(pool.map(copy, clean))
                copied += len(clean)
        self._clean = copied
        return copied

    def finish(self, name: str) -> int:
        """Write every chunk not yet written (copied from the source's level, or computed),
        then the NGFF ``multiscales`` attributes (top level for NGFF 0.4 readers, under
        ``"ome"`` for 0.5) naming the image ``name``. Returns the number of levels, level 0
        included. Level 0 must be final."""
        self._eager = False
        copied = self.copy_clean() if self._clean is None else self._clean
        for number, entry in enumerate(self.levels, start=1):
            began = time.perf_counter()
            todo = [block for block, _ in chunk_blocks(entry.array)
                    if (entry.needed is None or block in entry.needed)
                    and self._claim(entry, block)]
            with ThreadPoolExecutor(PYRAMID_THREADS) as pool:  # a level's chunks: independent
                list(pool.map(partial(self._compute, number), todo))
            logger.debug("pyramid level %d %s: %d chunks computed now, %.2f s", number,
                         entry.array.shape, len(todo), time.perf_counter() - began)
        write_multiscales(self._group, len(self.levels) + 1, name, stored_axes(self._base))
        logger.info("wrote a pyramid of %d levels (%d chunks copied from the source's)",
                    len(self.levels) + 1, copied)
        return len(self.levels) + 1

    def _children(self, entry: _Level, block: tuple[int, int]) -> list[tuple[int, int]]:
        """The blocks of ``entry.lower`` that the chunk ``block`` of ``entry`` averages."""
        region = doubled(block_box(entry.array, block), entry.lower.shape)
        return [lower for lower, _ in chunk_blocks(entry.lower, region)]

    def _claim(self, entry: _Level, block: tuple[int, int]) -> bool:
        """Whether this caller is the one to compute ``block`` (each block is computed once)."""
        with self._lock:
            if block in entry.claimed:
                return False
            entry.claimed.add(block)
            return True

    def _final(self, number: int, block: tuple[int, int], pixels: np.ndarray | None) -> None:
        """Chunk ``block`` of level ``number`` is written: keep its downsampled ``pixels`` for
        the level above, and compute the chunks there that now wait for nothing."""
        if number >= len(self.levels):
            return
        entry = self.levels[number]
        box = block_box(entry.lower, block)
        small = None
        if pixels is not None and entry.even and self._room > 0:
            small = downsample(pixels)
        ready = []
        with self._lock:
            if small is not None and self._room >= small.nbytes:
                entry.parts[(box.row0, box.col0)] = small
                self._room -= small.nbytes
            if entry.lower_dirty is None or block in entry.lower_dirty:
                for parent, _ in chunk_blocks(entry.array, half(box)):
                    if parent not in entry.pending:
                        continue
                    entry.pending[parent] -= 1
                    if entry.pending[parent] == 0 and self._eager and parent not in entry.claimed:
                        entry.claimed.add(parent)
                        ready.append(parent)
        for parent in ready:
            self._compute(number + 1, parent)

    def _compute(self, number: int, block: tuple[int, int]) -> None:
        """Average the chunk ``block`` of level ``number`` from the level below (kept parts,
        the source's level over lower chunks nothing restored, else the lower chunks), write
        it, and report it final."""
        entry = self.levels[number - 1]
        box = block_box(entry.array, block)
        region = doubled(box, entry.lower.shape)
        source = None if entry.lower_dirty is None else (entry.reuse, entry.lower_dirty)
        pixels = _halved(entry.lower, tuple(region), entry.parts if entry.even else None, source)
        entry.store(block, pixels)  # encoded in this thread where it can be (lower priority)
        with self._lock:  # the parts inside this chunk serve no other chunk: free them
            for _, chunk in chunk_blocks(entry.lower, region):
                if chunk.intersection(region) == chunk:
                    part = entry.parts.pop((chunk.row0, chunk.col0), None)
                    self._room += 0 if part is None else part.nbytes
        self._final(number, block, pixels)


def _level_layout(
    below: Any, shape: tuple[int, ...], sides: tuple[int, int]
) -> dict[str, tuple[int, ...]]:
    """The stored ``shape`` and ``chunks`` (``create_array`` keywords) of a pyramid level
    ``shape`` ``(h, w[, C])`` chunked ``sides`` ``(y, x)`` over level ``below`` (stored in its
    axes)."""
    view_chunks = (*sides, *shape[2:])
    if isinstance(below, NgffAxesView):
        stored_shape, chunks = below.stored_level(shape, view_chunks)
    else:
        axes = stored_axes(below)
        stored_shape, chunks = arranged(shape, axes), arranged(view_chunks, axes)
    return {"shape": stored_shape, "chunks": chunks}
