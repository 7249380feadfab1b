"""Mask-aware tiling of large scans: the pure geometry, and the engine built on it.

Geometry (pure, no I/O loop):

- :mod:`~inpaint_core.tiling.regions`: connected hole regions of a mask, read chunk by chunk.
- :mod:`~inpaint_core.tiling.plan`: the tiles (window + core) that cover every hole pixel with
  the method's context margin.
- :mod:`~inpaint_core.tiling.blend`: smooth weights and the weighted stitching of results.

The engine (:mod:`~inpaint_core.tiling.engine`, ``iter_restore`` and ``restore_scan``), from
parts each usable alone: :mod:`~inpaint_core.tiling.options` (the frozen ``RestoreOptions``),
:mod:`~inpaint_core.tiling.planner` (which tiles, in which order, with which context),
:mod:`~inpaint_core.tiling.executor` (this thread, local threads or dask.distributed) and
:mod:`~inpaint_core.tiling.sink` (chunks, progress marks, pyramid). Per output chunk, the
results of the tiles :func:`tiles_by_block` lists are stitched by :func:`blend_holes` (the
bytes :func:`accumulate` and :func:`normalise` give, at the cost of the hole pixels only).
"""

from __future__ import annotations

from inpaint_core.geometry import Box, chunk_boxes
from inpaint_core.tiling.blend import (
    accumulate,
    blend_holes,
    blend_window,
    new_accumulators,
    normalise,
    ramp_profile,
    tile_weights,
)
from inpaint_core.tiling.plan import (
    Tile,
    check_geometry,
    fits,
    merge_boxes,
    place_tile,
    plan_tiles,
    split_box,
    split_span,
    tiles_by_block,
    window_start,
)
from inpaint_core.tiling.regions import (
    HoleRegions,
    find_hole_regions,
    hole_fraction,
    read_block,
    shrink_to_holes,
)

__all__ = [
    "Box",
    "HoleRegions",
    "Tile",
    "accumulate",
    "blend_holes",
    "blend_window",
    "check_geometry",
    "chunk_boxes",
    "find_hole_regions",
    "fits",
    "hole_fraction",
    "merge_boxes",
    "new_accumulators",
    "normalise",
    "place_tile",
    "plan_tiles",
    "ramp_profile",
    "read_block",
    "shrink_to_holes",
    "split_box",
    "split_span",
    "tile_weights",
    "tiles_by_block",
    "window_start",
]
