"""In-memory images restored tile by tile, with the tiled engine's geometry (no Qt).

An image in memory goes through the same plan as a zarr scan in
:func:`inpaint_core.tiling.engine.iter_restore`: the hole regions
(:func:`~inpaint_core.tiling.find_hole_regions`), the tiles
(:func:`~inpaint_core.tiling.plan_tiles` with the method's preferred tile, context margin and
pad multiple, refined to the holes), and per output block the blend of the tiles whose cores
touch it (:func:`~inpaint_core.tiling.blend_holes`, ramp = overlap). So it gets determinate
progress (tiles done, ETA), a stop between tiles, and blocks written into the output as soon
as their tiles are done, which the widget shows as a live preview. An image no larger than
one tile is one tile: the same result as one :func:`inpaint_core.inpaint` call on it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Generator
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import numpy as np

from inpaint_core.api import NO_HOLE, paste_result, prepare, run_prepared
from inpaint_core.errors import InvalidInputError
from inpaint_core.method import InpaintMethod
from inpaint_core.tiling import (
    Box,
    Tile,
    blend_holes,
    check_geometry,
    find_hole_regions,
    plan_tiles,
    shrink_to_holes,
    tiles_by_block,
)
from inpaint_core.tiling.execution import default_overlap
from inpaint_core.tiling.planner import MAX_GROWTH  # all-hole windows grow as in the engine


@dataclass(frozen=True)
class TilePlan:
    """The tiles of one image and how they are blended."""

    tiles: list[Tile]
    side: int  # tile side in px
    overlap: int  # px over which split holes cross-fade (the blend ramp)
    blocks: dict[tuple[int, int], list[int]]  # output block -> indices of its tiles

    @property
    def window_pixels(self) -> int:
        """Pixels the method computes: the sum of the tiles' windows."""
        return sum(tile.shape[0] * tile.shape[1] for tile in self.tiles)


def plan_image(shape: tuple[int, int], hole: np.ndarray, info: Any,
               tile: int | None = None) -> TilePlan:
    """The engine's tile plan for an in-memory bool ``hole`` ``(H, W)`` and method ``info``
    (tile side: ``tile`` or the method's preferred tile; overlap: the engine's default)."""
    side = int(info.preferred_tile if tile is None else tile)
    overlap = default_overlap(side, info.context_margin)
    check_geometry(side, info.context_margin, info.pad_multiple, overlap)
    regions = find_hole_regions(hole)
    tiles = plan_tiles(shape, regions.boxes, side, info.context_margin, info.pad_multiple,
                       overlap=overlap, refine=partial(shrink_to_holes, hole))
    return TilePlan(list(tiles), side, overlap, tiles_by_block(tiles, (side, side)))


def _grow(window: Box, shape: tuple[int, int]) -> Box:
    """``window`` with each side doubled around its centre, clipped to ``shape``."""
    rows = min(2 * window.height, shape[0])
    cols = min(2 * window.width, shape[1])
    top = min(max((window.row0 + window.row1) // 2 - rows // 2, 0), shape[0] - rows)
    left = min(max((window.col0 + window.col1) // 2 - cols // 2, 0), shape[1] - cols)
    return Box(top, top + rows, left, left + cols)


def read_window(hole: np.ndarray, tile: Tile) -> Box:
    """The window the method sees for ``tile``: its own, or (when that is all hole) one grown
    around it until it holds known pixels, as the tiled engine reads it.

    Raises:
        InvalidInputError: the grown window is still all hole.
    """
    window = tile.window
    shape = (int(hole.shape[0]), int(hole.shape[1]))
    for _ in range(MAX_GROWTH + 1):
        if not hole[window.slices].all():
            return window
        grown = _grow(window, shape)
        if grown == window:
            break
        window = grown
    raise InvalidInputError(
        f"tile rows {tile.row0}:{tile.row1}, cols {tile.col0}:{tile.col1} is all hole, and so "
        f"is the {window.height} x {window.width} window around it: the method needs known "
        f"pixels as context; choose a larger tile than {max(tile.shape)}"
    )


@dataclass
class TileStep:
    """One finished tile: ``done`` of ``total``, the seconds it took, and the output
    ``blocks`` (boxes) it completed."""

    done: int
    total: int
    seconds: float
    pixels: int  # its window's pixels
    blocks: list[Box] = field(default_factory=list)


@dataclass
class TileRun:
    """The result of :func:`restore_tiles`: the output and the method's extra outputs."""

    image: np.ndarray
    extras: dict[str, np.ndarray]
    tiles: int
    seconds_per_pixel: float | None  # the median over tiles (None: no tile computed)


def restore_tiles(
    image: np.ndarray, hole: np.ndarray, method: InpaintMethod, plan: TilePlan,
    stop: threading.Event, output: np.ndarray, seed: int = 0,
) -> Generator[TileStep, None, TileRun | None]:
    """Restore ``image`` ``(H, W[, C])`` where bool ``hole`` ``(H, W)``, tile by tile, into
    ``output`` (a copy of ``image`` that receives each block as soon as its tiles are done).

    Yields a :class:`TileStep` per tile. ``stop`` is checked before each tile: once set, the
    generator returns None within one tile (the method is never left running).
    """
    name = method.info.name
    shape = (int(image.shape[0]), int(image.shape[1]))
    results: dict[int, np.ndarray] = {}
    extras: dict[str, np.ndarray] = {}
    uses = {index: 0 for index in range(len(plan.tiles))}
    for members in plan.blocks.values():
        for index in members:
            uses[index] += 1
    per_pixel: list[float] = []
    for index, tile in enumerate(plan.tiles):
        if stop.is_set():
            return None
        started = time.perf_counter()
        box = read_window(hole, tile)
        item = prepare(image[box.slices], hole[box.slices], name)
        (filled,) = run_prepared(method, [item], seed)
        if filled is NO_HOLE:  # no hole in the window (cannot happen for a planned tile)
            restored, more = item.image.copy(), {}
        else:
            restored, more = paste_result(name, item, filled)
        inner = tile.window.slices_in(box) if box != tile.window else (slice(None),) * 2
        results[index] = restored[inner]
        for key, array in more.items():  # e.g. edge-gan's edges: the tile's window, pasted
            if key not in extras:
                extras[key] = np.zeros(shape + array.shape[2:], dtype=array.dtype)
            extras[key][tile.window.slices] = array[inner]
        seconds = time.perf_counter() - started
        per_pixel.append(seconds / (box.height * box.width))
        finished = []
        for key, members in plan.blocks.items():
            if index not in members or any(i not in results for i in members):
                continue
            block = Box(key[0] * plan.side, min((key[0] + 1) * plan.side, shape[0]),
                        key[1] * plan.side, min((key[1] + 1) * plan.side, shape[1]))
            output[block.slices] = blend_holes(
                image[block.slices], hole[block.slices], block,
                [plan.tiles[i] for i in members], [results[i] for i in members], plan.overlap,
            )
            finished.append(block)
            for i in members:
                uses[i] -= 1
                if uses[i] == 0:
                    del results[i]
        yield TileStep(index + 1, len(plan.tiles), seconds, box.height * box.width, finished)
    cost = float(np.median(per_pixel)) if per_pixel else None
    return TileRun(output, extras, len(plan.tiles), cost)
