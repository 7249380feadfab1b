"""How an output or OME-Zarr level's axes are stored, and the ``(H, W[, C])`` view of them.

The engine and the methods see every scan as ``(H, W)`` or ``(H, W, C)``
(:data:`VIEW_AXES`). An OME-Zarr stores its level in NGFF's axis order (``c, y, x``; or
``t, c, z, y, x`` with one plane): :class:`NgffAxesView` shows such a level as ``(H, W[, C])``
and writes back in its stored order. Pure array bookkeeping: no store is opened here.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from inpaint_core.errors import InvalidInputError

#: OME-Zarr axes read and written as they are stored; any other layout goes through an
#: :class:`NgffAxesView`.
PLAIN_AXES = (["y", "x"], ["y", "x", "c"])
VIEW_AXES = ("y", "x", "c")
"""The axes of an ``(H, W[, C])`` array as the engine and the methods see it."""
#: The stored axes of an output's level (and :func:`stored_axes` of an array that is no
#: :class:`NgffAxesView`): NGFF orders a channel axis before the space axes.
OUTPUT_AXES = {2: ("y", "x"), 3: ("c", "y", "x")}

class NgffAxesView:
    """A lazy ``(H, W)`` or ``(H, W, C)`` view of an OME-Zarr level stored with other NGFF
    axes: channel first (``c, y, x``), or ``t, c, z, y, x`` with one time point and one plane.

    Attributes:
        array: the stored array; ``axes`` its axis names in stored order.
        shape, dtype, chunks: as the view shows them (chunks: the stored ``y``, ``x`` chunk
            sides, whole channels).

    Indexing takes ``(rows, cols)`` (or ``...``) and returns a new NumPy ``(h, w[, C])``.
    With ``channels=False`` (a mask) a channel axis must have length 1 and is dropped.
    """

    def __init__(self, array: Any, axes: Sequence[str], path: Path, channels: bool = True):
        stored = tuple(int(v) for v in array.shape)
        if len(axes) != len(stored) or "y" not in axes or "x" not in axes:
            raise InvalidInputError(
                f"{str(path)!r}: OME-Zarr axes {list(axes)} do not describe its level-0 "
                f"shape {stored} with a y and an x axis"
            )
        kept = ("y", "x", "c") if channels else ("y", "x")
        for name, length in zip(axes, stored, strict=True):
            if name not in kept and length != 1:
                raise InvalidInputError(
                    f"{str(path)!r}: axis {name!r} has length {length} (shape {stored}, axes "
                    f"{list(axes)}); only one plane {'' if channels else 'and channel '}can "
                    "be restored: write that plane out as its own OME-Zarr"
                )
        self.array, self.axes = array, tuple(axes)
        self._path, self._channels = path, channels
        self._kept = tuple(name if name in kept else None for name in axes)
        self.dtype = np.dtype(array.dtype)
        chunks = tuple(int(v) for v in getattr(array, "chunks", stored))
        where = {name: number for number, name in enumerate(self._kept) if name}
        channel = (stored[where["c"]],) if "c" in where else ()
        self.shape = (stored[where["y"]], stored[where["x"]], *channel)
        self.chunks = (chunks[where["y"]], chunks[where["x"]], *channel)

    def __getitem__(self, key: Any) -> np.ndarray:
        rows, cols = rows_cols(key)
        parts = {"y": rows, "x": cols, "c": slice(None), None: 0}
        block = np.asarray(self.array[tuple(parts[name] for name in self._kept)])
        return viewed(block, [name for name in self._kept if name])  # the axes it still has

    def __setitem__(self, key: Any, value: np.ndarray) -> None:
        """Write ``(h, w[, C])`` pixels at ``(rows, cols)`` in the stored axis order."""
        rows, cols = rows_cols(key)
        parts = {"y": rows, "x": cols, "c": slice(None), None: slice(0, 1)}
        self.array[tuple(parts[name] for name in self._kept)] = laid_out(value, self.axes)

    def stored_chunks(self, block: tuple[int, int]) -> list[tuple[int, ...]]:
        """The stored chunk-grid coordinates of the view's chunk ``block`` ``(row, col)``:
        one per stored chunk of its channels."""
        sides = tuple(int(v) for v in self.array.chunks)
        ranges = []
        for name, length, side in zip(self._kept, self.array.shape, sides, strict=True):
            count = math.ceil(int(length) / side) if name == "c" else 1
            ranges.append({"y": [block[0]], "x": [block[1]]}.get(name or "", range(count)))
        return list(itertools.product(*ranges))

    def stored_level(self, shape: tuple[int, ...], sides: tuple[int, ...]) -> tuple[
        tuple[int, ...], tuple[int, ...]
    ]:
        """The stored shape and chunks of a level ``shape`` ``(H, W[, C])`` chunked ``sides``
        (y, x) in this view's axes."""
        where = {"y": 0, "x": 1}
        lengths = tuple(int(shape[where[n]]) if n in where else int(v)
                        for n, v in zip(self._kept, self.array.shape, strict=True))
        chunks = tuple(int(sides[where[n]]) if n in where else int(v)
                       for n, v in zip(self._kept, self.array.chunks, strict=True))
        return lengths, chunks

    def with_array(self, array: Any) -> NgffAxesView:
        """This view's axes over another stored ``array`` (e.g. a pyramid level)."""
        return NgffAxesView(array, self.axes, self._path, channels=self._channels)


def viewed(block: np.ndarray, axes: Sequence[str]) -> np.ndarray:
    """A new contiguous ``(h, w[, C])`` array of ``block``, whose axes are ``axes`` (names
    among y, x, c)."""
    if list(axes) == ["c", "y", "x"] and 1 < len(block) <= 4:  # OpenCV interleaves the planes
        return cv2.merge(list(block))  # some 10x faster than NumPy's transposing copy
    order = [list(axes).index(name) for name in VIEW_AXES if name in axes]
    return np.ascontiguousarray(block.transpose(order))


def laid_out(pixels: np.ndarray, axes: Sequence[str]) -> np.ndarray:
    """``(h, w[, C])`` ``pixels`` with their axes in ``axes`` order (a name they lack, e.g.
    ``t`` or ``z``: length 1); a view where NumPy can make one."""
    shown = [name for name in VIEW_AXES[: np.ndim(pixels)] if name in axes]
    block = np.asarray(pixels).transpose([shown.index(name) for name in axes if name in shown])
    return block.reshape([pixels.shape[shown.index(name)] if name in shown else 1
                          for name in axes])


def rows_cols(key: Any) -> tuple[Any, Any]:
    """The ``(rows, cols)`` a 2-D view is indexed with; ``...`` means all of both."""
    return (slice(None), slice(None)) if key is Ellipsis else key


def stored(array: Any) -> Any:
    """The stored array behind an :class:`NgffAxesView`, else ``array`` itself."""
    return array.array if isinstance(array, NgffAxesView) else array


def stored_axes(array: Any) -> tuple[str, ...]:
    """The stored axis names of an ``(H, W[, C])`` array or :class:`NgffAxesView`."""
    return array.axes if isinstance(array, NgffAxesView) else VIEW_AXES[: len(array.shape)]


def stored_chunks(array: Any, block: tuple[int, int]) -> list[tuple[int, ...]]:
    """The stored chunk coordinates of chunk ``block`` ``(row, col)`` of an ``(H, W[, C])``
    array or view (whole channels: one chunk for an array)."""
    if isinstance(array, NgffAxesView):
        return array.stored_chunks(block)
    return [block + (0,) * (len(array.shape) - 2)]


def arranged(values: tuple[int, ...], axes: Sequence[str]) -> tuple[int, ...]:
    """``values`` given in :data:`VIEW_AXES` order, in ``axes`` order."""
    return tuple(values[VIEW_AXES.index(name)] for name in axes)
