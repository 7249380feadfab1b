"""The reader: zarr arrays, OME-Zarr scans and the tiled engine's output stores, lazily.

Every level becomes a dask array read chunk by chunk; an OME-Zarr group (NGFF 0.4 or 0.5, as
``inpaint restore`` writes its output) opens as one multiscale layer. A store written by the
engine carries its provenance (method, parameters, weights, mask, settings) in the layer's
``metadata["inpaint"]``. A 2-D bool or integer array that is not a scan (a damage mask) opens
as a Labels layer. Every layer's ``metadata["napari_inpaint"]["path"]`` names the store, so the
widget hands the engine the store itself rather than a copy.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

LayerData = tuple[Any, dict[str, Any], str]
_MARKERS = ("zarr.json", ".zarray", ".zgroup")


def is_zarr(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is a zarr store (v2 or v3): a folder with a zarr marker file."""
    folder = Path(path)
    return folder.is_dir() and any((folder / marker).is_file() for marker in _MARKERS)


def get_reader(path: str | list[str]) -> Callable[[str | list[str]], list[LayerData]] | None:
    """npe2 reader hook: :func:`read_zarr` for a zarr store (or a list of them), else None."""
    paths = [path] if isinstance(path, (str, os.PathLike)) else list(path)
    if not paths or not all(is_zarr(p) for p in paths):
        return None
    return read_zarr


def read_zarr(path: str | list[str]) -> list[LayerData]:
    """The layers of one or more zarr stores; see the module docstring."""
    paths = [path] if isinstance(path, (str, os.PathLike)) else list(path)
    return [layer for each in paths for layer in read_store(each)]


def _is_mask(array: Any) -> bool:
    import numpy as np

    dtype = np.dtype(array.dtype)
    wide = dtype.kind == "i" or (dtype.kind == "u" and dtype.itemsize > 2)
    return len(array.shape) == 2 and (dtype == np.bool_ or wide)


def read_store(path: str | os.PathLike[str]) -> list[LayerData]:
    """One layer for the zarr array or OME-Zarr group at ``path``.

    Raises:
        InpaintError: the store cannot be opened or holds no image (naming it).
    """
    import dask.array as da
    import numpy as np
    import zarr

    from inpaint_core.errors import ImageIOError, InvalidInputError
    from inpaint_core.io.inputs import axis_names, multiscale_levels
    from inpaint_core.io.store import LEVEL0

    path = Path(path)
    try:
        opened = zarr.open(str(path), mode="r")
    except Exception as error:
        raise ImageIOError(f"cannot open {str(path)!r} as zarr: {error}") from error
    attrs: dict[str, Any] = dict(opened.attrs)
    if isinstance(opened, zarr.Array):
        levels = [opened]
    else:
        levels = list(multiscale_levels(opened))
        if not levels and LEVEL0 in opened:  # an engine store stopped before its pyramid
            levels = [opened[LEVEL0]]
        if not levels:
            arrays = sorted(key for key, _ in opened.arrays())
            raise InvalidInputError(
                f"{str(path)!r} is a zarr group without OME-Zarr 'multiscales' attributes "
                f"(its arrays: {', '.join(arrays) or 'none'}); open one of its arrays instead"
            )
    data = [da.from_zarr(level) for level in levels]
    if not isinstance(opened, zarr.Array):  # NGFF axes (channel first): as (y, x[, c])
        data = [_as_viewed(level, axis_names(opened)) for level in data]
    metadata: dict[str, Any] = {"napari_inpaint": {"path": str(path), "levels": len(data)}}
    if "inpaint" in attrs:
        metadata["inpaint"] = dict(attrs["inpaint"])
    name = path.stem
    shape = tuple(data[0].shape)
    kwargs: dict[str, Any] = {"name": name, "metadata": metadata}
    if len(data) > 1:
        kwargs["multiscale"] = True
    layer_data: Any = data if len(data) > 1 else data[0]
    written_as_labels = dict(attrs.get("napari_inpaint") or {}).get("kind") == "labels"
    if written_as_labels or _is_mask(data[0]):
        labels = [level.astype(np.uint8) if level.dtype == bool else level for level in data]
        return [(labels if len(data) > 1 else labels[0], kwargs, "labels")]
    if len(shape) == 3 and shape[2] in (3, 4):
        kwargs["rgb"] = True
    if np.dtype(levels[0].dtype).kind == "f":
        kwargs["contrast_limits"] = (0.0, 1.0)
    return [(layer_data, kwargs, "image")]


def _as_viewed(level: Any, axes: list[str] | None) -> Any:
    """A dask ``level`` stored with NGFF ``axes`` as ``(y, x[, c])`` (other axes must be one
    long; they are dropped); unchanged when ``axes`` is None or names other axes."""
    if axes is None or len(axes) != level.ndim or not {"y", "x"} <= set(axes):
        return level
    shown = [name for name in axes if name in ("y", "x", "c")]
    others = [length for name, length in zip(axes, level.shape, strict=True) if name not in shown]
    if any(length != 1 for length in others):
        return level
    level = level[tuple(slice(None) if name in shown else 0 for name in axes)]
    return level.transpose([shown.index(name) for name in ("y", "x", "c") if name in shown])
