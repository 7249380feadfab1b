"""Building the damage mask from several layers: pure array helpers, no Qt, no napari.

The widget turns every ticked mask layer into a bool ``(H, W)`` array (True = hole) with
:func:`label_mask` (a Labels layer, optionally restricted to some label values) or
:func:`shapes_mask` (a Shapes layer's outlines), ORs them with :func:`combine_masks`, and grows
the result with :func:`grow_mask`. :func:`threshold_mask` and :func:`colour_mask` make a mask
from a brightness or colour range of the image.

Every helper takes NumPy arrays and returns NumPy; given a dask or zarr array (a big scan) it
returns a lazy dask array instead, computed chunk by chunk, so a gigapixel mask never sits in
memory whole.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from inpaint_core.errors import InvalidInputError

#: Channels :func:`threshold_mask` can test: brightness is Rec. 601 luma of R, G, B.
CHANNELS = ("brightness", "red", "green", "blue")
_LUMA = (0.299, 0.587, 0.114)
#: Side of the chunks of lazy masks made from shapes (and of new zarr-backed masks).
MASK_CHUNK = 1024


def is_lazy(array: Any) -> bool:
    """Whether ``array`` is not an in-memory NumPy array (dask, zarr, tensorstore, ...)."""
    return not isinstance(array, np.ndarray)


def as_dask(array: Any) -> Any:
    """``array`` as a dask array (a zarr array is wrapped, chunk for chunk)."""
    import dask.array as da

    if isinstance(array, da.Array):
        return array
    chunks = getattr(array, "chunks", None)
    if isinstance(chunks, tuple) and all(isinstance(c, int) for c in chunks):
        return da.from_array(array, chunks=chunks)
    return da.from_array(array, chunks=(MASK_CHUNK,) * 2 + (-1,) * (array.ndim - 2))


def parse_label_values(text: str) -> tuple[int, ...]:
    """``"1, 3-5"`` -> ``(1, 3, 4, 5)``; ``""`` -> ``()`` (every non-zero label).

    Raises:
        InvalidInputError: naming the bad entry.
    """
    values: list[int] = []
    for entry in (part.strip() for part in text.replace(";", ",").split(",")):
        if not entry:
            continue
        low, dash, high = entry.partition("-")
        try:
            first, last = (int(low), int(high)) if dash else (int(entry), int(entry))
        except ValueError:
            raise InvalidInputError(
                f"label values {text!r}: {entry!r} is not an integer or a range like 3-5"
            ) from None
        if first < 1 or last < first:
            raise InvalidInputError(
                f"label values {text!r}: {entry!r} must be positive labels, low-high ascending"
            )
        values.extend(range(first, last + 1))
    return tuple(dict.fromkeys(values))


def label_mask(labels: Any, values: Iterable[int] = ()) -> Any:
    """Bool ``(H, W)``: where ``labels`` is one of ``values`` (empty: any non-zero label)."""
    chosen = np.asarray(sorted(set(values)), dtype=np.int64)
    if is_lazy(labels):
        lazy = as_dask(labels)
        if not chosen.size:
            return lazy != 0
        return lazy.map_blocks(np.isin, chosen, dtype=bool)
    labels = np.asarray(labels)
    return labels != 0 if not chosen.size else np.isin(labels, chosen)


@dataclass(frozen=True)
class Outline:
    """One shape of a Shapes layer, in pixel coordinates of the image.

    Attributes:
        vertices: float ``(N, 2)`` ``(row, col)`` points. For an ellipse, the four corners of
            its (possibly rotated) bounding box, as napari stores it.
        kind: napari's shape type: ``polygon``, ``rectangle``, ``ellipse`` (filled), ``line``
            or ``path`` (stroked).
        width: stroke width in pixels for lines and paths.
    """

    vertices: np.ndarray
    kind: str
    width: float = 1.0

    def bounds(self) -> tuple[float, float, float, float]:
        """``(row0, col0, row1, col1)`` of the pixels it may touch."""
        pad = self.width / 2 + 1
        low, high = self.vertices.min(axis=0) - pad, self.vertices.max(axis=0) + pad
        return float(low[0]), float(low[1]), float(high[0]), float(high[1])


def _grid(canvas: np.ndarray, low: np.ndarray, high: np.ndarray) -> tuple[tuple[slice, slice],
        np.ndarray, np.ndarray] | None:
    """The canvas window covering local ``[low, high]`` and its pixel centres' coordinates."""
    row0, col0 = max(math.floor(low[0]), 0), max(math.floor(low[1]), 0)
    row1 = min(math.ceil(high[0]) + 1, canvas.shape[0])
    col1 = min(math.ceil(high[1]) + 1, canvas.shape[1])
    if row0 >= row1 or col0 >= col1:
        return None
    rows, cols = np.mgrid[row0:row1, col0:col1].astype(np.float64)
    return (slice(row0, row1), slice(col0, col1)), rows, cols


def _stroke(canvas: np.ndarray, points: np.ndarray, width: float) -> None:
    """Pixels whose centre lies within ``width / 2`` of the polyline ``points``."""
    radius = max(width, 1.0) / 2
    for start, end in itertools.pairwise(points):
        window = _grid(canvas, np.minimum(start, end) - radius, np.maximum(start, end) + radius)
        if window is None:
            continue
        where, rows, cols = window
        step = end - start
        length = float(step @ step)
        along = ((rows - start[0]) * step[0] + (cols - start[1]) * step[1]) / (length or 1.0)
        along = np.clip(along, 0.0, 1.0)
        distance = np.hypot(rows - start[0] - along * step[0], cols - start[1] - along * step[1])
        canvas[where] |= distance <= radius


def _draw(canvas: np.ndarray, outline: Outline, origin: tuple[int, int]) -> None:
    """Rasterise ``outline`` into bool ``canvas`` whose pixel (0, 0) is ``origin``: a pixel
    is in a shape when its centre is, so a shape drawn chunk by chunk matches one drawn whole."""
    from skimage.draw import polygon

    local = outline.vertices[:, :2] - np.asarray(origin, dtype=float)
    if outline.kind in ("line", "path"):
        _stroke(canvas, local, outline.width)
    elif outline.kind == "ellipse":
        centre = local.mean(axis=0)
        first, second = (local[1] - local[0]) / 2, (local[2] - local[1]) / 2
        reach = np.abs(first) + np.abs(second)
        window = _grid(canvas, centre - reach, centre + reach)
        if window is not None:
            where, rows, cols = window
            offsets = np.stack([rows - centre[0], cols - centre[1]], axis=-1)
            u = offsets @ first / max(float(first @ first), 1e-12)
            v = offsets @ second / max(float(second @ second), 1e-12)
            canvas[where] |= u * u + v * v <= 1.0
    elif outline.kind in ("polygon", "rectangle"):
        rows, cols = polygon(local[:, 0], local[:, 1], shape=canvas.shape)
        canvas[rows, cols] = True
    else:
        raise InvalidInputError(
            f"shape type {outline.kind!r} cannot be a mask; use polygon, rectangle, ellipse, "
            "line or path"
        )


def _shapes_block(outlines: Sequence[Outline], rows: slice, cols: slice) -> np.ndarray:
    canvas = np.zeros((rows.stop - rows.start, cols.stop - cols.start), dtype=bool)
    for outline in outlines:
        row0, col0, row1, col1 = outline.bounds()
        if row1 < rows.start or row0 > rows.stop or col1 < cols.start or col0 > cols.stop:
            continue
        _draw(canvas, outline, (rows.start, cols.start))
    return canvas


def shapes_mask(outlines: Sequence[Outline], shape: tuple[int, int], lazy: bool = False) -> Any:
    """Bool ``shape``: the filled polygons, rectangles and ellipses and the stroked lines and
    paths of ``outlines``. ``lazy``: a dask array drawn chunk by chunk (for big scans)."""
    outlines = list(outlines)
    if not lazy:
        return _shapes_block(outlines, slice(0, shape[0]), slice(0, shape[1]))
    import dask.array as da

    def block(block_info: Any = None) -> np.ndarray:
        (row0, row1), (col0, col1) = block_info[None]["array-location"]
        return _shapes_block(outlines, slice(row0, row1), slice(col0, col1))

    chunks = da.core.normalize_chunks((MASK_CHUNK, MASK_CHUNK), shape)
    return da.map_blocks(block, chunks=chunks, dtype=bool)


def combine_masks(masks: Sequence[tuple[str, Any]], shape: tuple[int, int]) -> Any:
    """OR the bool masks ``[(layer name, mask)]`` of an image of ``(H, W)`` = ``shape``.

    Raises:
        InvalidInputError: no mask is given, or one's shape differs (naming the layer).
    """
    if not masks:
        raise InvalidInputError(
            "no mask layer: add a Labels or Shapes layer (New mask) and paint the damage on it, "
            "or tick a mask layer in the list"
        )
    for name, mask in masks:
        if tuple(mask.shape) != tuple(shape):
            raise InvalidInputError(
                f"mask layer {name!r}: mask shape {tuple(mask.shape)} does not match image "
                f"{tuple(shape)}"
            )
    arrays = [mask for _, mask in masks]
    if any(is_lazy(mask) for mask in arrays):
        arrays = [as_dask(mask) for mask in arrays]
    combined = arrays[0] != 0
    for mask in arrays[1:]:
        combined = combined | (mask != 0)
    return combined


def _disk(pixels: int) -> np.ndarray:
    """uint8 ``(2N+1, 2N+1)``: the pixels within Euclidean distance ``N`` of the centre."""
    rows, cols = np.ogrid[-pixels : pixels + 1, -pixels : pixels + 1]
    return (rows * rows + cols * cols <= pixels * pixels).astype(np.uint8)


def _grow_block(block: np.ndarray, pixels: int) -> np.ndarray:
    import cv2

    if not block.any():
        return block.astype(bool)
    return cv2.dilate(block.astype(np.uint8), _disk(pixels)).astype(bool)


def grow_mask(mask: Any, pixels: int) -> Any:
    """Dilate bool ``(H, W)`` ``mask`` by a disk of radius ``pixels`` (0: unchanged).

    A lazy mask is dilated chunk by chunk with a ``pixels`` overlap, so chunk borders agree.
    """
    if isinstance(pixels, bool) or not isinstance(pixels, (int, np.integer)) or pixels < 0:
        raise InvalidInputError(f"grow={pixels!r} must be a whole number of pixels >= 0")
    if pixels == 0:
        return mask
    if is_lazy(mask):
        lazy = as_dask(mask)
        return lazy.map_overlap(
            _grow_block, depth=int(pixels), boundary="none", dtype=bool, pixels=int(pixels)
        )
    return _grow_block(np.asarray(mask), int(pixels))


def _unit_colour(image: Any) -> Any:
    """The first three channels (or the grey plane as ``(H, W, 1)``) as float32 in [0, 1]."""
    if image.ndim == 2:
        image = image[:, :, None]
    colour = image[:, :, :3]
    dtype = np.dtype(image.dtype)
    scale = float(np.iinfo(dtype).max) if dtype.kind in "iu" else 1.0
    return colour.astype(np.float32) / np.float32(scale)


def _lazy_image(image: Any) -> Any:
    return as_dask(image).rechunk({2: -1}) if image.ndim == 3 else as_dask(image)


def threshold_mask(image: Any, low: float, high: float, channel: str = "brightness") -> Any:
    """Bool ``(H, W)``: where ``channel`` of ``image`` lies in ``[low, high]`` (values in
    [0, 1]: integer images are divided by their dtype's maximum).

    Args:
        image: ``(H, W)`` or ``(H, W, C)``; C in 1, 3, 4 (alpha ignored).
        channel: one of :data:`CHANNELS`; a grey image has only ``brightness``.
    """
    if channel not in CHANNELS:
        raise InvalidInputError(f"channel {channel!r} is not one of: {', '.join(CHANNELS)}")
    if not (0.0 <= low <= high <= 1.0):
        raise InvalidInputError(
            f"threshold range [{low}, {high}] must satisfy 0 <= low <= high <= 1"
        )
    colour = _unit_colour(_lazy_image(image) if is_lazy(image) else np.asarray(image))
    channels = colour.shape[2]
    if channel == "brightness":
        values = colour[:, :, 0] if channels == 1 else sum(
            weight * colour[:, :, index] for index, weight in enumerate(_LUMA)
        )
    else:
        index = CHANNELS.index(channel) - 1
        if index >= channels:
            raise InvalidInputError(f"channel {channel!r} needs a colour image; this one is grey")
        values = colour[:, :, index]
    return (values >= low) & (values <= high)


def colour_mask(image: Any, colour: Sequence[float], tolerance: float) -> Any:
    """Bool ``(H, W)``: pixels whose colour lies within Euclidean ``tolerance`` of ``colour``
    (both in [0, 1] per channel), e.g. the plaster showing through a loss."""
    target = np.asarray(colour, dtype=np.float32)
    values = _unit_colour(_lazy_image(image) if is_lazy(image) else np.asarray(image))
    if target.shape != (values.shape[2],):
        raise InvalidInputError(
            f"colour {tuple(colour)} has {target.size} values; the image has "
            f"{values.shape[2]} colour channel(s)"
        )
    distance = ((values - target) ** 2).sum(axis=2)
    return distance <= np.float32(tolerance) ** 2
