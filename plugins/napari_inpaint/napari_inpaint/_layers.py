"""napari layers as the arrays the core takes, and new layers made for the user (no Qt).

An image layer's pixels are its data (level 0 of a multiscale layer); a mask layer's holes
are :func:`layer_mask` of it. Big or lazy images get zarr-backed masks, never dense ones.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from inpaint_core.errors import InvalidInputError
from napari_inpaint.masks import (
    MASK_CHUNK,
    Outline,
    is_lazy,
    label_mask,
    shapes_mask,
)

#: Images with more pixels than this (or lazy ones) run through the tiled engine and get
#: zarr-backed masks.
TILED_PIXELS = 4096 * 4096
#: ``metadata`` key of the layers this plugin adds (results, previews, edges).
OWN_KEY = "napari_inpaint"


def image_array(layer: Any) -> Any:
    """The pixels ``(H, W[, C])`` of an Image layer: level 0 of a multiscale one.

    Raises:
        InvalidInputError: the layer is not 2-D (grey) or 2-D colour.
    """
    data = layer.data[0] if getattr(layer, "multiscale", False) else layer.data
    shape = tuple(int(v) for v in data.shape)
    colour = len(shape) == 3 and bool(getattr(layer, "rgb", False))
    if not (len(shape) == 2 or colour):
        raise InvalidInputError(
            f"image layer {layer.name!r} has shape {shape}; expected a 2-D grey (H, W) or "
            "colour (H, W, 3 or 4) image"
        )
    return data


def image_shape(layer: Any) -> tuple[int, int]:
    """``(H, W)`` of an Image layer's level 0."""
    data = image_array(layer)
    return int(data.shape[0]), int(data.shape[1])


def is_big(layer: Any, limit: int = TILED_PIXELS) -> bool:
    """Whether an Image layer is restored by the tiled engine: multiscale, lazy (dask, zarr)
    or more than ``limit`` pixels."""
    data = image_array(layer)
    height, width = int(data.shape[0]), int(data.shape[1])
    return bool(getattr(layer, "multiscale", False)) or is_lazy(data) or height * width > limit


def store_path(layer: Any) -> str | None:
    """The zarr store a layer was read from by this plugin's reader, if any."""
    return dict(layer.metadata.get(OWN_KEY) or {}).get("path")


def outlines(layer: Any) -> list[Outline]:
    """The shapes of a Shapes layer as :class:`Outline` s (pixel coordinates of its data)."""
    widths = np.broadcast_to(np.asarray(layer.edge_width, dtype=float), (len(layer.data),))
    return [
        Outline(np.asarray(vertices, dtype=float)[:, -2:], str(kind), float(width))
        for vertices, kind, width in zip(layer.data, layer.shape_type, widths, strict=True)
    ]


def layer_mask(layer: Any, shape: tuple[int, int], values: tuple[int, ...] = (),
               lazy: bool = False) -> Any:
    """Bool mask of a Labels layer (restricted to ``values``; empty: every label) or of a
    Shapes layer drawn at ``shape``; dask when ``lazy`` or the labels are lazy."""
    import napari

    if isinstance(layer, napari.layers.Shapes):
        return shapes_mask(outlines(layer), shape, lazy=lazy)
    data = layer.data[0] if getattr(layer, "multiscale", False) else layer.data
    return label_mask(data, values)


def new_mask_data(shape: tuple[int, int], lazy: bool, folder: str | Path | None = None) -> Any:
    """An empty uint8 ``(H, W)`` mask to paint on: NumPy, or for a big image a zarr array in a
    new folder under ``folder`` (default: the temporary folder)."""
    if not lazy:
        return np.zeros(shape, dtype=np.uint8)
    import zarr

    parent = Path(tempfile.mkdtemp(prefix="napari-inpaint-mask-", dir=folder))
    chunks = tuple(min(MASK_CHUNK, side) for side in shape)
    return zarr.create_array(store=str(parent / "mask.zarr"), shape=shape, chunks=chunks,
                             dtype="uint8", fill_value=0)


def layer_geometry(layer: Any) -> dict[str, Any]:
    """Keyword arguments that place a new layer exactly over ``layer``."""
    return {"scale": tuple(layer.scale)[-2:], "translate": tuple(layer.translate)[-2:]}
