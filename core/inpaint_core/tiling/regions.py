"""Hole regions of a large 2-D mask, found one chunk at a time.

The mask is never loaded whole: each chunk is labelled on its own (8-connectivity) and the
labels that touch across chunk borders are joined afterwards with a graph's connected
components, so a crack that runs through many chunks gives one exact bounding box.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from inpaint_core.arrays import is_integer
from inpaint_core.errors import InpaintError, InvalidInputError
from inpaint_core.geometry import Box, chunk_boxes
from inpaint_core.io.guard import corrupt_chunk
from inpaint_core.io.layout import chunk_key, stored_chunk_keys

DEFAULT_BLOCK = 1024
"""Side of the blocks a mask without integer ``chunks`` (NumPy, dask) is read in."""
READ_PIXELS = 2**24
"""Most mask pixels :func:`find_hole_regions` reads at once: a strip of whole blocks along a
band, one read for many chunks (a zarr store then fetches them concurrently)."""


@dataclass(frozen=True)
class HoleRegions:
    """The connected hole components of a mask.

    Attributes:
        shape: the mask's ``(H, W)``.
        boxes: the exact bounding box of each 8-connected component, sorted row-major by
            ``(row0, col0, row1, col1)``.
        hole_pixels: the number of hole (non-zero) pixels in the mask.
    """

    shape: tuple[int, int]
    boxes: tuple[Box, ...]
    hole_pixels: int

    @property
    def hole_fraction(self) -> float:
        """Hole pixels over all pixels, in [0, 1]."""
        return self.hole_pixels / (self.shape[0] * self.shape[1])


def mask_shape(mask: Any) -> tuple[int, int]:
    """Return ``(H, W)`` of a 2-D mask, or raise :class:`InvalidInputError` naming its shape."""
    shape = tuple(getattr(mask, "shape", ()))
    if len(shape) != 2 or not all(is_integer(v) and v > 0 for v in shape):
        raise InvalidInputError(f"mask has shape {shape}; expected a non-empty 2-D (H, W) array")
    return int(shape[0]), int(shape[1])


def read_block(mask: Any) -> tuple[int, int]:
    """The block ``(rows, cols)`` a mask is read in: its zarr chunks, else 1024 x 1024."""
    chunks = getattr(mask, "chunks", None)
    if isinstance(chunks, tuple) and len(chunks) == 2 and all(is_integer(v) for v in chunks):
        return int(chunks[0]), int(chunks[1])
    return DEFAULT_BLOCK, DEFAULT_BLOCK


def _read(mask: Any, box: Box) -> np.ndarray:
    """Bool ``(box.height, box.width)``: True where ``mask`` is non-zero inside ``box``."""
    try:
        block = np.asarray(mask[box.row0 : box.row1, box.col0 : box.col1])
    except (InpaintError, OSError, KeyboardInterrupt, MemoryError):
        raise
    except Exception as error:  # e.g. a corrupt chunk: name where
        where = f"mask rows {box.row0}:{box.row1}, cols {box.col0}:{box.col1}"
        raise corrupt_chunk(getattr(mask, "array", mask), where, error) from error
    if block.shape != (box.height, box.width):
        raise InvalidInputError(
            f"reading mask[{box.row0}:{box.row1}, {box.col0}:{box.col1}] gave shape "
            f"{block.shape}, expected {(box.height, box.width)}"
        )
    if block.dtype.kind == "f" and np.isnan(block).any():
        row, col = (int(v) for v in np.argwhere(np.isnan(block))[0])
        raise InvalidInputError(
            f"mask has NaN values (first at row {box.row0 + row}, column {box.col0 + col}); a "
            "NaN is neither hole nor known: set holes to 1 and the rest to 0"
        )
    return block if block.dtype == np.bool_ else block != 0


def _touching(current: np.ndarray, previous: np.ndarray, offset: int) -> np.ndarray:
    """Int ``(E, 2)`` label pairs joined across a border under 8-connectivity.

    ``current[i]`` sits next to ``previous[offset + i - 1 : offset + i + 2]`` across the border
    (``offset`` places ``current`` along ``previous``); 0 is background.
    """
    index = np.arange(current.size) + offset
    pairs = []
    for shift in (-1, 0, 1):
        neighbour = index + shift
        valid = (neighbour >= 0) & (neighbour < previous.size)
        mine, theirs = current[valid], previous[neighbour[valid]]
        joined = (mine > 0) & (theirs > 0)
        pairs.append(np.stack([mine[joined], theirs[joined]], axis=1))
    return np.concatenate(pairs)


def find_hole_regions(
    mask: Any, block: tuple[int, int] | None = None, read_pixels: int = READ_PIXELS
) -> HoleRegions:
    """Find the 8-connected hole components of ``mask`` and their exact bounding boxes.

    Args:
        mask: a 2-D ``(H, W)`` array (zarr, NumPy, anything sliceable with ``shape``), any
            dtype, non-zero = hole. It is labelled one block at a time and read in strips of
            whole blocks along a band of ``read_pixels`` at most (one block if larger), never
            whole.
        block: the ``(rows, cols)`` labelling block; None: the mask's zarr chunks, else
            1024 x 1024.
        read_pixels: the most pixels read at once.

    Returns:
        :class:`HoleRegions`: the boxes (half-open, in pixels) and the hole pixel count.
    """
    height, width = mask_shape(mask)
    block = read_block(mask) if block is None else block
    if len(block) != 2 or not all(is_integer(v) and v > 0 for v in block):
        raise InvalidInputError(f"block={block!r} must be two positive ints (rows, cols)")
    above = np.zeros(width, dtype=np.int64)  # labels of the pixel row just above this band
    bottom = np.zeros(width, dtype=np.int64)  # labels of this band's last pixel row
    left: np.ndarray | None = None  # labels of the previous block's last column
    boxes: list[np.ndarray] = []
    edges: list[np.ndarray] = []
    count = 0
    labelled = 0
    if not is_integer(read_pixels) or read_pixels < 1:
        raise InvalidInputError(f"read_pixels={read_pixels!r} must be an int >= 1")
    across = max(1, read_pixels // (int(block[0]) * int(block[1])))  # blocks per read
    block = (int(block[0]), int(block[1]))
    unstored = _unstored_blocks(mask, block)
    reads = _read_ahead(mask, _strips((height, width), block, across, unstored))
    strip: Box | None = None
    for box in chunk_boxes((height, width), block):
        if box.col0 == 0:  # a new band of blocks
            above, bottom = bottom, above
            bottom[:] = 0
            left = None
        if unstored(box):  # all fill value, i.e. no hole: not even read
            left = None
            continue
        if strip is None or strip.row0 != box.row0 or box.col0 >= strip.col1:
            strip, holes = next(reads)
        hole = holes[:, box.col0 - strip.col0 : box.col1 - strip.col0]
        found = 0
        if hole.any():  # most chunks of a large scan hold no damage: skip the labelling
            local, found = _label(hole)
        if not found:
            left = None
            continue
        spans, pixels = _spans(hole, local, found)
        count += pixels
        boxes.append(spans + np.array([box.row0, box.row0, box.col0, box.col0]))
        if box.row0 > 0:
            edges.append(_touching(_global(local[0], labelled), above, box.col0))
        if left is not None:
            edges.append(_touching(_global(local[:, 0], labelled), left, 0))
        left = _global(local[:, -1], labelled)
        bottom[box.col0 : box.col1] = _global(local[-1], labelled)
        labelled += found
    if not labelled:
        return HoleRegions((height, width), (), 0)
    return HoleRegions((height, width), _join(np.concatenate(boxes), edges, labelled), count)


def _strips(
    shape: tuple[int, int], block: tuple[int, int], across: int,
    unstored: Callable[[Box], bool],
) -> Iterator[Box]:
    """The strips :func:`find_hole_regions` reads, in order: from each stored block not in
    the previous strip, that block and the stored ones right of it, ``across`` at most."""
    strip: Box | None = None
    for box in chunk_boxes(shape, block):
        if unstored(box) or (
            strip is not None and strip.row0 == box.row0 and box.col0 < strip.col1
        ):
            continue
        end = box.col1
        while (
            end < shape[1]
            and end - box.col0 < across * block[1]
            and not unstored(Box(box.row0, box.row1, end, min(end + block[1], shape[1])))
        ):
            end = min(end + block[1], shape[1])
        strip = Box(box.row0, box.row1, box.col0, end)
        yield strip


def _read_ahead(mask: Any, strips: Iterator[Box]) -> Iterator[tuple[Box, np.ndarray]]:
    """Each of ``strips`` with its hole pixels (:func:`_read`), the next one being read on a
    thread while this one is labelled."""
    with ThreadPoolExecutor(1, thread_name_prefix="inpaint-mask") as pool:
        pending: tuple[Box, Future[np.ndarray]] | None = None
        for strip in strips:
            reading = (strip, pool.submit(_read, mask, strip))
            if pending is not None:
                yield pending[0], pending[1].result()
            pending = reading
        if pending is not None:
            yield pending[0], pending[1].result()


def _label(hole: np.ndarray) -> tuple[np.ndarray, int]:
    """The 8-connected components of bool ``hole`` (H, W): int32 labels 1..n (0 = no hole)
    and n. OpenCV's labelling: the components of ``scipy.ndimage.label`` with a 3 x 3
    structure, about 5x faster."""
    count, labels = cv2.connectedComponents(
        np.ascontiguousarray(hole).view(np.uint8), connectivity=8, ltype=cv2.CV_32S
    )
    return labels, int(count) - 1


def _spans(hole: np.ndarray, labels: np.ndarray, count: int) -> tuple[np.ndarray, int]:
    """The bounding boxes of labels 1..``count`` of a block, int64 ``(count, 4)`` rows of
    ``(row0, row1, col0, col1)`` (half-open, in the block), and its hole pixel count: from
    the hole's few pixels (flat indices), not a scan of the whole label image per label
    (5x faster than ``scipy.ndimage.find_objects`` on 1024 px blocks of cracks)."""
    at = np.flatnonzero(hole)
    rows, cols = np.divmod(at, hole.shape[1])
    pixels = np.stack([rows, rows + 1, cols, cols + 1], axis=1)
    return _union(pixels, labels.reshape(-1)[at] - 1, count), int(at.size)


def _union(boxes: np.ndarray, group: np.ndarray, count: int) -> np.ndarray:
    """The bounding box of each group of int ``boxes`` ``(N, 4)`` (``(row0, row1, col0,
    col1)``, half-open): int64 ``(count, 4)``, row ``g`` the union of the boxes whose ``group``
    is ``g`` (every group in 0..count-1 has one)."""
    union = np.empty((count, 4), dtype=np.int64)
    union[:, [0, 2]] = np.iinfo(np.int64).max
    union[:, [1, 3]] = np.iinfo(np.int64).min
    for column, reduce in ((0, np.minimum), (1, np.maximum), (2, np.minimum), (3, np.maximum)):
        reduce.at(union[:, column], group, boxes[:, column])
    return union


def _unstored_blocks(mask: Any, block: tuple[int, int]) -> Callable[[Box], bool]:
    """Whether a block is a chunk that ``mask``'s zarr store does not hold, so all fill value;
    always False unless ``mask`` is an unsharded zarr array chunked as ``block`` whose fill
    value means no hole (0 / False)."""
    if getattr(mask, "chunks", None) != block or np.asarray(getattr(mask, "fill_value", 1)):
        return lambda box: False
    stored = stored_chunk_keys(mask)
    if stored is None:
        return lambda box: False
    return lambda box: chunk_key(mask, (box.row0 // block[0], box.col0 // block[1])) not in stored


def _global(edge: np.ndarray, offset: int) -> np.ndarray:
    """A block's local labels along one edge (0 = no hole) as labels unique in the scan."""
    edge = edge.astype(np.int64)
    return np.where(edge > 0, edge + offset, 0)


def connected_components(count: int, pairs: np.ndarray) -> tuple[int, np.ndarray]:
    """The connected components of an undirected graph of ``count`` nodes and int ``pairs``
    ``(E, 2)`` edges: ``(number of components, int64 (count,) component of each node)``,
    components numbered 0.. in order of their smallest node. Min-label hooking with pointer
    jumping in NumPy, so the restore's start needs no scipy import."""
    parent = np.arange(count, dtype=np.int64)
    first, second = pairs[:, 0].astype(np.int64), pairs[:, 1].astype(np.int64)
    while True:
        root_a, root_b = parent[first], parent[second]
        differ = root_a != root_b
        if not differ.any():
            break
        low, high = np.minimum(root_a, root_b)[differ], np.maximum(root_a, root_b)[differ]
        np.minimum.at(parent, high, low)
        while True:  # every node points at its root: the smallest node reached so far
            jumped = parent[parent]
            if np.array_equal(jumped, parent):
                break
            parent = jumped
    roots, component = np.unique(parent, return_inverse=True)
    return len(roots), component.astype(np.int64)


def _join(boxes: np.ndarray, edges: list[np.ndarray], labelled: int) -> tuple[Box, ...]:
    """Merge the per-block ``boxes`` (label ``i + 1`` is row ``i``) along ``edges``."""
    pairs = np.concatenate(edges) - 1 if edges else np.zeros((0, 2), dtype=np.int64)
    total, component = connected_components(labelled, pairs)
    merged = _union(boxes, component, total)
    order = np.lexsort((merged[:, 3], merged[:, 1], merged[:, 2], merged[:, 0]))
    return tuple(Box(*(int(v) for v in row)) for row in merged[order])


def shrink_to_holes(mask: Any, box: Box) -> Box | None:
    """The exact bounding box of the hole pixels of ``mask`` inside ``box``, or None if none.

    ``mask`` is as for :func:`find_hole_regions`; only the part of each read block that lies
    in ``box`` is read. The engine passes this (with its mask) to ``plan_tiles(refine=...)`` so
    that the pieces of a split box shrink to their holes and empty pieces are dropped.
    """
    height, width = mask_shape(mask)
    box = Box(*(int(v) for v in box))
    if not (0 <= box.row0 < box.row1 <= height and 0 <= box.col0 < box.col1 <= width):
        raise InvalidInputError(
            f"box {tuple(box)} is not inside the mask of shape {(height, width)}"
        )
    found: Box | None = None
    for chunk in chunk_boxes((height, width), read_block(mask)):
        part = chunk.intersection(box)
        if part is None:
            continue
        hole = _read(mask, part)
        rows, cols = np.flatnonzero(hole.any(axis=1)), np.flatnonzero(hole.any(axis=0))
        if not rows.size:
            continue
        inner = Box(
            part.row0 + int(rows[0]),
            part.row0 + int(rows[-1]) + 1,
            part.col0 + int(cols[0]),
            part.col0 + int(cols[-1]) + 1,
        )
        found = inner if found is None else found.union(inner)
    return found


def damage_grid(damage: Any, cell: int) -> tuple[np.ndarray, int]:
    """Return the coarse damage grid of ``damage`` and its count of damaged pixels.

    Args:
        damage: a 2-D array (zarr, NumPy, anything sliceable with ``shape``), non-zero = damage.
            It is read one block at a time (:func:`read_block`: zarr chunks, else 1024 x 1024).
        cell: the grid's cell side in pixels.

    Returns:
        bool ``(ceil(H / cell), ceil(W / cell))``, True where a cell holds a damaged pixel, and
        the number of damaged pixels.
    """
    height, width = mask_shape(damage)
    grid = np.zeros((math.ceil(height / cell), math.ceil(width / cell)), dtype=bool)
    damaged = 0
    for box in chunk_boxes((height, width), read_block(damage)):
        block = _read(damage, box)
        count = int(block.sum())
        if not count:
            continue
        damaged += count
        # Reduce the block to the cells it touches: starts of each cell within the block.
        row_cells = np.arange(box.row0, box.row1) // cell
        col_cells = np.arange(box.col0, box.col1) // cell
        row_starts = np.flatnonzero(np.diff(row_cells, prepend=-1))
        col_starts = np.flatnonzero(np.diff(col_cells, prepend=-1))
        coarse = np.logical_or.reduceat(block, row_starts, axis=0)
        coarse = np.logical_or.reduceat(coarse, col_starts, axis=1)
        rows, cols = row_cells[row_starts], col_cells[col_starts]
        grid[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1] |= coarse
    return grid, damaged


def hole_fraction(mask: Any) -> float:
    """The fraction of hole (non-zero) pixels of a 2-D ``mask``, in [0, 1], read chunk-wise.

    ``mask`` is as for :func:`find_hole_regions`. Use :attr:`HoleRegions.hole_fraction` where
    the regions are found anyway: it comes from the same single pass over the mask.
    """
    height, width = mask_shape(mask)
    cell = max(read_block(mask))
    _, damaged = damage_grid(mask, cell)
    return damaged / (height * width)
