"""Pixel rectangles and chunk grids: pure geometry, no I/O, imported by ``io`` and ``tiling``.

A :class:`Box` is a half-open rectangle of a scan; :func:`chunk_boxes` lays a chunk grid over
a shape. The helpers that take an ``array`` only read its ``shape`` and ``chunks`` (any zarr
array, :class:`~inpaint_core.io.axes.NgffAxesView` or object with those two attributes).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from typing import Any, NamedTuple


class Box(NamedTuple):
    """A half-open pixel rectangle ``[row0, row1) x [col0, col1)`` of the scan."""

    row0: int
    row1: int
    col0: int
    col1: int

    @property
    def height(self) -> int:
        return self.row1 - self.row0

    @property
    def width(self) -> int:
        return self.col1 - self.col0

    @property
    def shape(self) -> tuple[int, int]:
        """``(height, width)``."""
        return self.height, self.width

    @property
    def slices(self) -> tuple[slice, slice]:
        """``(rows, cols)`` slices selecting the box from a scan-sized array."""
        return slice(self.row0, self.row1), slice(self.col0, self.col1)

    def slices_in(self, outer: Box) -> tuple[slice, slice]:
        """``(rows, cols)`` slices selecting this box from an array that covers ``outer``
        (whose first pixel is ``outer``'s top-left); the box must lie inside ``outer``."""
        return (
            slice(self.row0 - outer.row0, self.row1 - outer.row0),
            slice(self.col0 - outer.col0, self.col1 - outer.col0),
        )

    def intersection(self, other: Box) -> Box | None:
        """The overlap of two boxes, or None where they share no pixel."""
        row0, row1 = max(self.row0, other.row0), min(self.row1, other.row1)
        col0, col1 = max(self.col0, other.col0), min(self.col1, other.col1)
        if row0 >= row1 or col0 >= col1:
            return None
        return Box(row0, row1, col0, col1)

    def union(self, other: Box) -> Box:
        """The smallest box holding both boxes."""
        return Box(
            min(self.row0, other.row0),
            max(self.row1, other.row1),
            min(self.col0, other.col0),
            max(self.col1, other.col1),
        )


def chunk_boxes(
    shape: tuple[int, int], block: tuple[int, int], within: Box | None = None
) -> Iterator[Box]:
    """Yield the boxes of a ``block``-sized grid over ``shape``, row-major; edge ones clipped.
    With ``within``, only the grid boxes that share a pixel with it (whole, not clipped to it)."""
    rows, cols = (0, shape[0]), (0, shape[1])
    if within is not None:
        rows = (within.row0 - within.row0 % block[0], min(within.row1, shape[0]))
        cols = (within.col0 - within.col0 % block[1], min(within.col1, shape[1]))
    for row in range(rows[0], rows[1], block[0]):
        for col in range(cols[0], cols[1], block[1]):
            yield Box(row, min(row + block[0], shape[0]), col, min(col + block[1], shape[1]))


def block_box(array: Any, block: tuple[int, int]) -> Box:
    """The pixels of chunk ``block`` ``(row, col)`` of ``array`` (clipped at its edges)."""
    sides = (int(array.chunks[0]), int(array.chunks[1]))
    row0, col0 = block[0] * sides[0], block[1] * sides[1]
    return Box(row0, min(row0 + sides[0], int(array.shape[0])), col0,
               min(col0 + sides[1], int(array.shape[1])))


def chunk_blocks(array: Any, within: Box | None = None) -> list[tuple[tuple[int, int], Box]]:
    """The chunks of ``array`` (all, or those sharing a pixel with ``within``), row by row:
    each one's block ``(row, col)`` and pixels (clipped at the array's edges)."""
    sides = (int(array.chunks[0]), int(array.chunks[1]))
    return [((box.row0 // sides[0], box.col0 // sides[1]), box)
            for box in chunk_boxes(tuple(array.shape[:2]), sides, within=within)]


def half(box: Box) -> Box:
    """The pixels of the next pyramid level that a 2x area average makes from ``box``."""
    return Box(box.row0 // 2, (box.row1 + 1) // 2, box.col0 // 2, (box.col1 + 1) // 2)


def doubled(box: Box, shape: tuple[int, ...]) -> Box:
    """The pixels of the level below that a 2x area average makes ``box`` from (the inverse
    of :func:`half`), clipped to that level's ``shape``."""
    return Box(2 * box.row0, min(2 * box.row1, int(shape[0])), 2 * box.col0,
               min(2 * box.col1, int(shape[1])))


def dirty_blocks(
    boxes: Sequence[tuple[int, int, int, int]] | None, level: int, sides: tuple[int, ...],
    shape: tuple[int, ...],
) -> set[tuple[int, int]] | None:
    """Chunks of pyramid ``level`` (chunk ``sides``, level ``shape``) that cover any level-0
    box ``(row0, col0, row1, col1)``; None (all) when ``boxes`` is None."""
    if boxes is None:
        return None
    scale = 2**level
    grid = (math.ceil(shape[0] / sides[0]), math.ceil(shape[1] / sides[1]))
    dirty: set[tuple[int, int]] = set()
    for row0, col0, row1, col1 in boxes:
        first_row, last_row = row0 // scale // sides[0], (row1 - 1) // scale // sides[0]
        first_col, last_col = col0 // scale // sides[1], (col1 - 1) // scale // sides[1]
        for row in range(first_row, min(last_row, grid[0] - 1) + 1):
            for col in range(first_col, min(last_col, grid[1] - 1) + 1):
                dirty.add((row, col))
    return dirty
