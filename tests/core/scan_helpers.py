"""Pictures and zarr, OME-Zarr stores shared by ``tests/core/test_scans*.py``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import zarr

from inpaint_core.io.store import multiscales_metadata

SHAPE = (96, 128)


def image() -> np.ndarray:
    return np.random.default_rng(3).integers(0, 256, (*SHAPE, 3), dtype=np.uint8)


def write_array(path: Path, array: np.ndarray, zarr_format: int = 3) -> Path:
    chunks = (32, 32, *array.shape[2:])
    store = zarr.create_array(
        str(path), shape=array.shape, chunks=chunks, dtype=array.dtype, zarr_format=zarr_format
    )
    store[...] = array
    return path


def write_ome(path: Path, array: np.ndarray, ngff: str) -> Path:
    """An OME-Zarr group with level "s0" (and a half-size "s1") and its multiscales attrs."""
    zarr_format = 3 if ngff == "0.5" else 2
    group = zarr.open_group(str(path), mode="w", zarr_format=zarr_format)
    for name, level in (("s0", array), ("s1", array[::2, ::2])):
        chunks = (32, 32, *level.shape[2:])
        group.create_array(name, shape=level.shape, chunks=chunks, dtype=level.dtype)[...] = level
    entry = multiscales_metadata(2, "scan", ("y", "x", "c")[: array.ndim])
    for number, dataset in enumerate(entry["datasets"]):
        dataset["path"] = f"s{number}"
    if ngff == "0.5":
        group.attrs["ome"] = {"version": "0.5", "multiscales": [entry]}
    else:
        group.attrs["multiscales"] = [dict(entry, version="0.4")]
    return path


def write_ngff(path: Path, array: np.ndarray, axes: list[str], ngff: str = "0.5") -> Path:
    """An OME-Zarr of ``array`` stored with ``axes`` (names among t, c, z, y, x), one level."""
    group = zarr.open_group(str(path), mode="w", zarr_format=3 if ngff == "0.5" else 2)
    chunks = tuple(32 if name in "yx" else 1 for name in axes)
    group.create_array("0", shape=array.shape, chunks=chunks, dtype=array.dtype)[...] = array
    kinds = {"t": "time", "c": "channel", "z": "space", "y": "space", "x": "space"}
    entry = {"name": "scan", "axes": [{"name": n, "type": kinds[n]} for n in axes],
             "datasets": [{"path": "0", "coordinateTransformations": [
                 {"type": "scale", "scale": [1.0] * len(axes)}]}]}
    if ngff == "0.5":
        group.attrs["ome"] = {"version": "0.5", "multiscales": [entry]}
    else:
        group.attrs["multiscales"] = [dict(entry, version="0.4")]
    return path
