"""The planner: which tiles a restoration computes, in which order, with which context.

:func:`plan_restore` finds the hole regions, lays the tiles over them and groups the output's
level-0 chunks into those some tile's core touches (restored, in order) and the others
(copied as they are). :class:`TileSchedule` then says, chunk after chunk, which tiles to
compute next (looking ahead up to a step's worth) and when a tile's result serves no chunk
left. :func:`read_window` gives a tile's window, grown where it is all hole.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np

from inpaint_core.api import Prepared, prepare
from inpaint_core.errors import InvalidInputError, ParameterError
from inpaint_core.geometry import Box, chunk_boxes
from inpaint_core.io.cache import ChunkCache, chunked
from inpaint_core.io.chunks import direct_chunks
from inpaint_core.method import MethodInfo
from inpaint_core.tiling.execution import default_overlap, describe
from inpaint_core.tiling.plan import Tile, check_geometry, plan_tiles, tiles_by_block
from inpaint_core.tiling.regions import HoleRegions, find_hole_regions, shrink_to_holes

#: The engine's parts log as the engine: a restoration's messages stay under one logger.
logger = logging.getLogger("inpaint_core.tiling.engine")

#: A window that is all hole is doubled around its centre at most this many times (so at most
#: 4x the tile's side) to take in known pixels.
MAX_GROWTH = 2

ChunkKey = tuple[int, int]


def tile_geometry(info: MethodInfo, tile: int | None, overlap: int | None) -> tuple[int, int]:
    """The checked tile side and overlap: the method's preferred tile and the default overlap
    unless given."""
    side = info.preferred_tile if tile is None else tile
    overlap = default_overlap(side, info.context_margin) if overlap is None else overlap
    check_geometry(side, info.context_margin, info.pad_multiple, overlap)
    if overlap < 1:
        raise ParameterError(f"overlap={overlap} must be >= 1 so that split holes cross-fade")
    return side, overlap


@dataclass(frozen=True)
class RestorePlan:
    """What a restoration computes and writes.

    Attributes:
        regions: the mask's hole regions.
        tiles: every tile, in the order the planner laid them.
        pixels, damage: the scan ``(H, W[, C])`` and mask ``(H, W)`` behind chunk caches
            (each chunk decoded once for the many windows that read it).
        boxes: every level-0 output chunk's pixels, by chunk key ``(row, col)``.
        users: the chunks some tile's core touches, in writing order, each with the indices
            of its tiles.
    """

    regions: HoleRegions
    tiles: list[Tile]
    pixels: Any
    damage: Any
    boxes: dict[ChunkKey, Box]
    users: dict[ChunkKey, list[int]]

    def restored(self, done: np.ndarray) -> list[ChunkKey]:
        """The chunks to restore: those with tiles, not ``done`` (bool, the chunk grid)."""
        return [key for key in self.users if not done[key]]

    def copied(self, done: np.ndarray) -> list[ChunkKey]:
        """The hole-free chunks to copy: those without tiles, not ``done``."""
        return [key for key in self.boxes if key not in self.users and not done[key]]

    def changed(self) -> list[tuple[int, int, int, int]]:
        """The restored chunks as ``(row0, col0, row1, col1)``: where the output may differ."""
        return [(b.row0, b.col0, b.row1, b.col1) for b in (self.boxes[k] for k in self.users)]


def plan_restore(
    array: Any, hole: Any, info: MethodInfo, side: int, overlap: int, block: tuple[int, int]
) -> RestorePlan:
    """Plan the restoration of ``array`` ``(H, W[, C])`` with mask ``hole`` ``(H, W)`` by a
    method of ``info``, in tiles of ``side`` px cross-fading over ``overlap`` px, into an
    output chunked ``block`` ``(rows, cols)``."""
    regions = find_hole_regions(hole)
    pixels, damage = cached(array), cached(hole)
    shape = (int(array.shape[0]), int(array.shape[1]))
    tiles = list(plan_tiles(
        shape, regions.boxes, side, info.context_margin, info.pad_multiple, overlap=overlap,
        refine=partial(shrink_to_holes, damage),
    ))
    boxes = {(b.row0 // block[0], b.col0 // block[1]): b for b in chunk_boxes(shape, block)}
    return RestorePlan(regions, tiles, pixels, damage, boxes, tiles_by_block(tiles, block))


def check_known_pixels(regions: HoleRegions) -> None:
    """Raise unless the mask leaves some scan pixel known (a method needs context)."""
    height, width = regions.shape
    if regions.hole_pixels == height * width:
        raise InvalidInputError(
            f"the mask covers every pixel of the {height} x {width} scan: nothing is left "
            "to restore from. Check the mask: holes are non-zero, known pixels zero"
        )


def cached(array: Any) -> Any:
    """``array`` behind a :class:`~inpaint_core.io.cache.ChunkCache` when it is chunked; a
    local zarr v3 array's chunks are decoded in the reading thread
    (:func:`~inpaint_core.io.chunks.direct_chunks`), an I/O thread at a lower priority."""
    if chunked(array) is None:
        return array
    direct = direct_chunks(array)
    return ChunkCache(array, reader=None if direct is None else direct.read)


class TileSchedule:
    """Which tiles to compute for each chunk to restore, and when their results can go.

    Args:
        plan: the restoration's plan.
        todo: the chunks to restore, in order (:meth:`RestorePlan.restored`).

    ``tiles_done`` counts the tiles no chunk left needs (resumed ones too).
    """

    def __init__(self, plan: RestorePlan, todo: Sequence[ChunkKey]) -> None:
        self._users = plan.users
        self._todo = list(todo)
        self._uses = dict.fromkeys(range(len(plan.tiles)), 0)  # chunks left needing each tile
        for key in self._todo:
            for index in self._users[key]:
                self._uses[index] += 1
        self.tiles_done = sum(1 for count in self._uses.values() if count == 0)

    def pending(self) -> list[int]:
        """The tiles some chunk left still needs, i.e. the ones the run will compute."""
        return [index for index, count in self._uses.items() if count > 0]

    def wanted(self, position: int, ready: Mapping[int, Any], step: int) -> list[int]:
        """The tiles to compute before chunk ``todo[position]`` is written: none when it
        lacks none (the method never runs ahead of the writes), else the tiles it lacks
        and the next chunks', up to ``step`` (tiles in ``ready`` are computed)."""
        key = self._todo[position]
        if all(index in ready for index in self._users[key]):
            return []
        return self.lookahead(position, ready, step)

    def lookahead(self, position: int, ready: Mapping[int, Any], count: int) -> list[int]:
        """The tiles chunk ``todo[position]`` lacks, then the next chunks' (up to ``count``)."""
        wanted: list[int] = []
        for number, key in enumerate(self._todo[position:]):
            for index in self._users[key]:
                if index not in ready and index not in wanted:
                    if number and len(wanted) >= count:
                        return wanted
                    wanted.append(index)
        return wanted

    def written(self, key: ChunkKey) -> list[int]:
        """Chunk ``key`` is written: the tiles whose results no chunk left needs."""
        freed = []
        for index in self._users[key]:
            self._uses[index] -= 1
            if self._uses[index] == 0:
                freed.append(index)
        return freed


def grow(window: Box, shape: tuple[int, int]) -> Box:
    """``window`` with each side doubled around its centre, clipped to the scan ``shape``."""
    (row0, row1), (col0, col1) = (window.row0, window.row1), (window.col0, window.col1)
    rows, cols = min(2 * (row1 - row0), shape[0]), min(2 * (col1 - col0), shape[1])
    top = min(max((row0 + row1) // 2 - rows // 2, 0), shape[0] - rows)
    left = min(max((col0 + col1) // 2 - cols // 2, 0), shape[1] - cols)
    return Box(top, top + rows, left, left + cols)


def read_window(source: Any, mask: Any, tile: Tile) -> tuple[np.ndarray, np.ndarray, Box]:
    """The scan pixels and hole of ``tile``'s window, and that window. A window that is all
    hole (inside a loss larger than the tile) is doubled around its centre until it holds known
    pixels, at most :data:`MAX_GROWTH` times; the method then restores the larger window and
    the engine keeps the tile's part (:func:`crop`)."""
    window = tile.window
    shape = (int(mask.shape[0]), int(mask.shape[1]))
    for _ in range(MAX_GROWTH + 1):
        hole = np.asarray(mask[window.slices]) != 0
        if not hole.all():
            if window != tile.window:
                logger.info("%s is all hole: restored within the window rows %d:%d, cols %d:%d",
                            describe(tile), window.row0, window.row1, window.col0,
                            window.col1)
            return np.asarray(source[window.slices]), hole, window
        grown = grow(window, shape)
        if grown == window:
            break
        window = grown
    raise InvalidInputError(
        f"{describe(tile)} is all hole, and so is the {window.row1 - window.row0} x "
        f"{window.col1 - window.col0} window around it: the method needs known pixels as "
        f"context; use a larger --tile than {max(tile.shape)}"
    )


def prepare_window(source: Any, mask: Any, tile: Tile, name: str) -> tuple[Prepared, Box]:
    """:func:`read_window`, checked and converted for method ``name``
    (:func:`~inpaint_core.api.prepare`): read ahead on the I/O threads, so that the
    conversion, too, runs beside the method instead of before it."""
    image, hole, box = read_window(source, mask, tile)
    return prepare(image, hole, name), box


def crop(restored: np.ndarray, window: Box, tile: Tile) -> np.ndarray:
    """The part of a window's result that is ``tile``'s window."""
    return restored if window == tile.window else restored[tile.window.slices_in(window)]
