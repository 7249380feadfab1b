"""The writer: a Labels layer (a damage mask) to a zarr store or a PNG.

``.zarr`` writes a zarr v3 array chunk by chunk (a zarr- or dask-backed mask of a big scan is
never loaded whole), marked so that the reader opens it as Labels again; ``inpaint restore
SCAN --mask MASK.zarr`` reads it directly. ``.png`` writes 8-bit labels (16-bit when a label
exceeds 255), the mask format of ``inpaint run``. An existing file is never replaced.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from napari_inpaint.masks import MASK_CHUNK, as_dask, is_lazy


def _level0(data: Any) -> Any:
    """A multiscale layer's data is a list of levels: level 0 is the mask."""
    return data[0] if isinstance(data, (list, tuple)) else data


def write_labels(path: str, data: Any, meta: dict[str, Any]) -> list[str]:
    """npe2 single-layer writer for Labels: ``.zarr`` or ``.png``; returns the written path.

    Raises:
        OutputExistsError: ``path`` exists. ImageIOError: another suffix, or a bad folder.
    """
    import numpy as np

    from inpaint_core.errors import ImageIOError, InvalidInputError, OutputExistsError

    target = Path(path)
    suffix = target.suffix.lower()
    if suffix not in (".zarr", ".png"):
        raise ImageIOError(f"cannot write a mask to {path!r}: use a .zarr or .png path")
    if target.exists():
        raise OutputExistsError(f"output {path!r} already exists; choose another path")
    labels = _level0(data)
    if len(labels.shape) != 2:
        raise InvalidInputError(f"mask of shape {tuple(labels.shape)} is not 2-D (H, W)")
    if suffix == ".png":
        from inpaint_core.io import write_image

        array = np.asarray(labels)
        top = int(array.max()) if array.size else 0
        if top > 65535 or (array.dtype.kind == "i" and array.size and int(array.min()) < 0):
            raise InvalidInputError(
                f"labels range up to {top}; a PNG holds 0 to 65535: save as .zarr instead"
            )
        array = array.astype(np.uint8 if top <= 255 else np.uint16)
        write_image(target, array)
        return [str(target)]
    import zarr

    dtype = np.dtype(labels.dtype)
    dtype = np.dtype(np.uint8) if dtype == np.bool_ else dtype
    chunks = tuple(min(MASK_CHUNK, int(side)) for side in labels.shape)
    store = zarr.create_array(store=str(target), shape=tuple(labels.shape), chunks=chunks,
                              dtype=dtype, fill_value=0)
    store.attrs["napari_inpaint"] = {"kind": "labels", "name": meta.get("name", "")}
    if is_lazy(labels):
        as_dask(labels).astype(dtype).rechunk(chunks).to_zarr(store)
    else:
        store[...] = np.asarray(labels).astype(dtype)
    return [str(target)]
