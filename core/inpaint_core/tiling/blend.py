"""Blending tile results: smooth weights over each core, a weighted sum, and normalisation.

Each tile contributes to the pixels of its core with a weight that is 1 in the core's middle
and falls, with a raised cosine, towards (never to) zero over ``ramp`` pixels at the core's
edges. Where cores overlap, results cross-fade without a seam; where one core covers a pixel,
that tile's result is taken as it is. Sums are float64, so identical results average back to
exactly themselves: an identity method leaves the scan bit-identical.

:func:`blend_holes` gives the same output as :func:`accumulate` and :func:`normalise` but
computes only at the window's hole pixels, so its cost follows the damage, not the window's
area; the engine uses it for every output chunk.
"""

from __future__ import annotations

import numpy as np

from inpaint_core.arrays import is_integer
from inpaint_core.errors import InvalidInputError, ParameterError
from inpaint_core.geometry import Box
from inpaint_core.tiling.plan import Tile


def ramp_profile(length: int, ramp: int) -> np.ndarray:
    """Float64 ``(length,)`` in (0, 1]: 1 farther than ``ramp`` px from both ends, rising as
    a raised cosine from ``0.5 - 0.5 cos(pi / (ramp + 1))`` at the end pixels to 1."""
    for name, value, low in (("length", length, 1), ("ramp", ramp, 0)):
        if not is_integer(value) or value < low:
            raise ParameterError(f"{name}={value!r} must be an int >= {low}")
    distance = np.minimum(np.arange(length), np.arange(length)[::-1])
    rising = 0.5 - 0.5 * np.cos(np.pi * (distance + 1) / (ramp + 1))
    return np.where(distance < ramp, rising, 1.0)


def blend_window(shape: tuple[int, int], ramp: int) -> np.ndarray:
    """Float64 ``shape`` weights in (0, 1]: the outer product of two :func:`ramp_profile`."""
    return np.outer(ramp_profile(shape[0], ramp), ramp_profile(shape[1], ramp))


def tile_weights(tile: Tile, ramp: int) -> np.ndarray:
    """Float64 ``tile.shape`` weights: :func:`blend_window` over the core, 0 elsewhere.

    ``ramp`` (px) is usually the plan's ``overlap``: neighbouring pieces of a split hole then
    cross-fade over exactly their shared pixels.
    """
    weights = np.zeros(tile.shape, dtype=np.float64)
    weights[tile.core_slices] = blend_window((tile.core.height, tile.core.width), ramp)
    return weights


def new_accumulators(window: Box, channels: int | None) -> tuple[np.ndarray, np.ndarray]:
    """Zeroed ``(total, weight)`` for an output window: float64 ``(h, w)`` or ``(h, w, C)``
    for the weighted sum of results (``channels=None`` for grey ``(H, W)`` scans), and float64
    ``(h, w)`` for the sum of weights."""
    rows, cols = window.height, window.width
    total_shape = (rows, cols) if channels is None else (rows, cols, channels)
    return np.zeros(total_shape, dtype=np.float64), np.zeros((rows, cols), dtype=np.float64)


def accumulate(
    total: np.ndarray,
    weight: np.ndarray,
    window: Box,
    tile: Tile,
    result: np.ndarray,
    weights: np.ndarray,
) -> None:
    """Add a tile's weighted result to the accumulators of an output window, in place.

    Args:
        total: float64 ``(h, w[, C])`` weighted sum of the output ``window``.
        weight: float64 ``(h, w)`` sum of weights of the output ``window``.
        window: the output window's :class:`Box` in scan pixels (e.g. one zarr chunk).
        tile: the tile the result belongs to.
        result: ``tile.shape`` (+ ``(C,)``) restored window, any real dtype (uint8, uint16,
            float), in the scan's value range.
        weights: float ``tile.shape``, >= 0, usually :func:`tile_weights`.

    Only the part of the tile inside ``window`` is added; a tile outside it adds nothing.
    """
    if result.shape[:2] != tile.shape or weights.shape != tile.shape:
        raise InvalidInputError(
            f"tile {tile.window}: result {result.shape} and weights {weights.shape} must "
            f"cover the tile's {tile.shape}"
        )
    if result.shape[2:] != total.shape[2:]:
        raise InvalidInputError(
            f"tile {tile.window}: result channels {result.shape[2:]} do not match the "
            f"output's {total.shape[2:]}"
        )
    common = window.intersection(tile.window)
    if common is None:
        return
    out, inside = common.slices_in(window), common.slices_in(tile.window)
    part = weights[inside].astype(np.float64)
    values = result[inside].astype(np.float64)
    total[out] += values * (part if values.ndim == 2 else part[..., None])
    weight[out] += part


def normalise(
    source: np.ndarray, hole: np.ndarray, total: np.ndarray, weight: np.ndarray
) -> np.ndarray:
    """The output window: hole pixels the weighted mean of the tile results, every other
    pixel copied bit-identical from ``source``.

    Args:
        source: ``(h, w)`` or ``(h, w, C)`` scan window, uint8, uint16 or float.
        hole: ``(h, w)``, non-zero = hole.
        total, weight: the window's accumulators after every tile touching it was added.

    Returns:
        A new array like ``source`` (same shape and dtype). Integer results are rounded to
        the nearest value and clipped to the dtype's range.

    Raises:
        InvalidInputError: for mismatched shapes, or hole pixels that no tile weighted
            (naming how many and the first one, relative to the window).
    """
    hole = np.asarray(hole) != 0
    if hole.shape != source.shape[:2] or weight.shape != hole.shape:
        raise InvalidInputError(
            f"hole {hole.shape} and weight {weight.shape} must match the source window "
            f"{source.shape[:2]}"
        )
    if total.shape != source.shape:
        raise InvalidInputError(f"total {total.shape} must match the source window {source.shape}")
    missing = hole & ~(weight > 0)
    if missing.any():
        row, col = (int(v) for v in np.argwhere(missing)[0])
        raise InvalidInputError(
            f"{int(missing.sum())} hole pixels received no tile result, the first at "
            f"(row {row}, col {col}) of the window; the tile plan does not cover them"
        )
    output = source.copy()
    mean = total[hole] / (weight[hole] if total.ndim == 2 else weight[hole][:, None])
    if np.issubdtype(source.dtype, np.integer):
        info = np.iinfo(source.dtype)
        mean = np.clip(np.rint(mean), info.min, info.max)
    output[hole] = mean.astype(source.dtype)
    return output


def blend_holes(
    source: np.ndarray,
    hole: np.ndarray,
    window: Box,
    tiles: list[Tile],
    results: list[np.ndarray],
    ramp: int,
) -> np.ndarray:
    """The output window, as :func:`accumulate` of every tile then :func:`normalise` gives it
    (the same bytes), computed at the hole pixels only.

    Args:
        source: ``(h, w)`` or ``(h, w, C)`` scan pixels of ``window``, uint8, uint16 or float.
        hole: ``(h, w)``, non-zero = hole.
        window: the output window's :class:`Box` in scan pixels (e.g. one zarr chunk).
        tiles: the tiles whose cores may cover the window's hole pixels.
        results: per tile, its restored ``tile.shape`` (+ ``(C,)``) window, any real dtype, in
            the scan's value range.
        ramp: px over which each core's weight rises (:func:`ramp_profile`).

    Returns:
        A new array like ``source``: hole pixels the weighted mean of the tiles whose cores
        cover them (integers rounded and clipped), every other pixel copied bit-identical.

    Raises:
        InvalidInputError: for mismatched shapes, or hole pixels no tile core covers.
    """
    hole = np.asarray(hole) != 0
    if hole.shape != source.shape[:2] or hole.shape != (window.height, window.width):
        raise InvalidInputError(
            f"hole {hole.shape} must match the source window {source.shape[:2]} and the "
            f"window {window.height} x {window.width}"
        )
    if len(tiles) != len(results):
        raise InvalidInputError(f"{len(tiles)} tiles but {len(results)} results")
    at = np.flatnonzero(hole)  # flat indices: one pass over the mask, then only its holes
    rows, cols = np.divmod(at, hole.shape[1])
    rows, cols = rows + window.row0, cols + window.col0  # scan pixels
    total = np.zeros((rows.size, *source.shape[2:]), dtype=np.float64)
    weight = np.zeros(rows.size, dtype=np.float64)
    for tile, result in zip(tiles, results, strict=True):
        if result.shape[:2] != tile.shape or result.shape[2:] != source.shape[2:]:
            raise InvalidInputError(
                f"tile {tile.window}: result {result.shape} must cover the tile's {tile.shape} "
                f"with the source's channels {source.shape[2:]}"
            )
        core = tile.core
        inside = np.flatnonzero(
            (rows >= core.row0) & (rows < core.row1) & (cols >= core.col0) & (cols < core.col1)
        )
        if inside.size == 0:
            continue
        at_rows, at_cols = rows[inside], cols[inside]
        part = (ramp_profile(core.height, ramp)[at_rows - core.row0]
                * ramp_profile(core.width, ramp)[at_cols - core.col0])
        values = result[at_rows - tile.row0, at_cols - tile.col0].astype(np.float64)
        total[inside] += values * (part if values.ndim == 1 else part[:, None])
        weight[inside] += part
    missing = np.flatnonzero(~(weight > 0))
    if missing.size:
        row, col = int(rows[missing[0]] - window.row0), int(cols[missing[0]] - window.col0)
        raise InvalidInputError(
            f"{missing.size} hole pixels received no tile result, the first at "
            f"(row {row}, col {col}) of the window; the tile plan does not cover them"
        )
    output = np.array(source, order="C")  # a copy whose flat view is the pixels in order
    mean = total / (weight if total.ndim == 1 else weight[:, None])
    if np.issubdtype(source.dtype, np.integer):
        info = np.iinfo(source.dtype)
        mean = np.clip(np.rint(mean), info.min, info.max)
    output.reshape(-1, *source.shape[2:])[at] = mean.astype(source.dtype)
    return output
