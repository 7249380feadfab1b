"""Opening a restoration's inputs: a scan and its damage mask, lazily, never whole.

A scan is a zarr v2 or v3 array, an OME-Zarr group (its level 0; NGFF 0.4 keeps
``multiscales`` in the attributes, 0.5 under ``"ome"``) or a TIFF through tifffile's zarr
interface; it is read back as ``(H, W[, C])`` (:func:`open_scan`). A mask is any of those, or
a PNG read whole (:func:`open_mask`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import tifffile
import zarr

from inpaint_core.errors import ImageIOError, InvalidInputError
from inpaint_core.io.axes import PLAIN_AXES, NgffAxesView, rows_cols
from inpaint_core.io.images import colour_holes, read_mask

TIFF_SUFFIXES = (".tif", ".tiff")
IMAGE_MASK_SUFFIXES = (".png", ".tif", ".tiff")
SCAN_DTYPES = (np.uint8, np.uint16, np.float32, np.float64)

@dataclass(frozen=True)
class ScanSource:
    """An opened scan.

    Attributes:
        array: lazy ``(H, W)`` or ``(H, W, C)`` array (C in {1, 3, 4}; uint8, uint16,
            float32 or float64), sliced chunk by chunk.
        path: the file or store it was opened from.
        kind: ``"zarr"``, ``"ome-zarr"`` or ``"tiff"``.
        levels: an OME-Zarr's lower-resolution levels 1, 2, ... (empty otherwise); the
            restored store's pyramid copies their chunks wherever nothing was restored.
        omero: an OME-Zarr's ``omero`` rendering metadata (channel colours and windows) when
            it describes the scan's channels, else None; the output keeps it.
    """

    array: Any
    path: Path
    kind: str
    levels: tuple[Any, ...] = ()
    omero: dict[str, Any] | None = None

    @property
    def shape(self) -> tuple[int, int]:
        """``(H, W)``."""
        return int(self.array.shape[0]), int(self.array.shape[1])


def _open_zarr(path: Path, what: str) -> Any:

    try:
        return zarr.open(str(path), mode="r")
    except Exception as error:
        raise ImageIOError(f"cannot open {what} {str(path)!r} as zarr: {error}") from error


def _multiscales(group: Any) -> Any:
    attrs = dict(group.attrs)
    return attrs.get("multiscales") or dict(attrs.get("ome") or {}).get("multiscales")


def multiscale_levels(group: Any) -> tuple[Any, ...]:
    """Every level array an OME-Zarr group's first multiscale names, in order (missing or
    unreadable ones end the list)."""
    multiscales = _multiscales(group)
    arrays = []
    try:
        for dataset in multiscales[0]["datasets"]:
            arrays.append(group[dataset["path"]])
    except (TypeError, KeyError, IndexError):
        pass
    return tuple(arrays)


def axis_names(group: Any) -> list[str] | None:
    """The first multiscale's axis names (NGFF 0.4+ dicts or 0.3 strings), or None."""
    try:
        axes = _multiscales(group)[0]["axes"]
        return [str(axis["name"] if isinstance(axis, dict) else axis).lower() for axis in axes]
    except (TypeError, KeyError, IndexError):
        return None


def multiscale_level0(group: Any, path: Path) -> Any:
    """The level-0 array of an OME-Zarr group (NGFF 0.4 ``multiscales`` or 0.5 ``ome``)."""
    multiscales = _multiscales(group)
    try:
        level = multiscales[0]["datasets"][0]["path"]
    except (TypeError, KeyError, IndexError):
        raise InvalidInputError(
            f"{str(path)!r} is a zarr group without OME-Zarr 'multiscales' attributes; "
            "give the path of the image array inside it"
        ) from None
    try:
        return group[level]
    except KeyError:
        raise InvalidInputError(
            f"{str(path)!r}: multiscales level 0 {level!r} is not in the group"
        ) from None


def open_scan(path: str | os.PathLike[str]) -> ScanSource:
    """Open a scan lazily: a zarr array, an OME-Zarr group (level 0) or a TIFF.

    Raises:
        ImageIOError: the path is missing or unreadable.
        InvalidInputError: wrong dimensions, channels or dtype, naming them.
    """
    path = Path(path)
    if not path.exists():
        raise ImageIOError(f"scan {str(path)!r} does not exist")
    if path.is_file() and path.suffix.lower() not in TIFF_SUFFIXES:
        raise InvalidInputError(
            f"scan {str(path)!r} is a {path.suffix or 'suffix-less'} file; `inpaint restore` "
            "reads zarr, OME-Zarr or TIFF scans: restore a PNG or JPEG with `inpaint run`, or "
            "convert it to TIFF"
        )
    if path.suffix.lower() in TIFF_SUFFIXES:
        array, kind = _open_tiff(path, "scan"), "tiff"
    else:
        array, kind = _open_zarr(path, "scan"), "zarr"
    levels: tuple[Any, ...] = ()
    omero = None
    if not hasattr(array, "dtype"):  # a group: OME-Zarr (or a pyramidal TIFF)
        group = array
        array, kind = multiscale_level0(group, path), "ome-zarr" if kind == "zarr" else kind
        levels = multiscale_levels(group)[1:]
        omero = _omero(group)
        axes = axis_names(group)
        if axes is not None and axes not in PLAIN_AXES:
            array, levels = NgffAxesView(array, axes, path), _views(levels, axes, path)
    shape, dtype = tuple(array.shape), np.dtype(array.dtype)
    if not (len(shape) == 2 or (len(shape) == 3 and shape[2] in (1, 3, 4))) or 0 in shape:
        raise InvalidInputError(
            f"scan {str(path)!r} has shape {shape}; expected (H, W) or (H, W, C) with C in 1, 3, 4"
        )
    if dtype not in [np.dtype(t) for t in SCAN_DTYPES]:
        raise InvalidInputError(
            f"scan {str(path)!r} has dtype {dtype}; expected uint8, uint16, float32 or float64"
        )
    channels = shape[2] if len(shape) == 3 else 1
    if omero is not None and len(omero.get("channels") or ()) != channels:
        omero = None  # describes other channels than the scan's
    return ScanSource(array, path, kind, levels, omero)


def _omero(group: Any) -> dict[str, Any] | None:
    """An OME-Zarr group's ``omero`` metadata (NGFF 0.4 top level, 0.5 under ``"ome"``)."""
    attrs = dict(group.attrs)
    found = attrs.get("omero") or dict(attrs.get("ome") or {}).get("omero")
    return dict(found) if isinstance(found, Mapping) else None


def _views(levels: Sequence[Any], axes: Sequence[str], path: Path) -> tuple[Any, ...]:
    """:class:`NgffAxesView` s of an OME-Zarr's ``levels``, up to the first that has no such
    view (the rest of the pyramid is then computed, not reused)."""
    views = []
    for level in levels:
        try:
            views.append(NgffAxesView(level, axes, path))
        except InvalidInputError:
            break
    return tuple(views)


def _open_tiff(path: Path, what: str) -> Any:
    """A TIFF (or a pyramidal TIFF's group) through tifffile's zarr interface, unread."""

    try:
        return zarr.open(tifffile.imread(path, aszarr=True), mode="r")
    except Exception as error:
        raise ImageIOError(f"cannot open TIFF {what} {str(path)!r}: {error}") from error


class AnyChannelMask:
    """A lazy ``(H, W)`` bool view of a colour mask ``(H, W, C)``: a hole wherever any of
    the first three channels is non-zero (alpha ignored):
    :func:`~inpaint_core.io.images.colour_holes`, as a colour mask file is read.
    ``chunks``: the stored ``(rows, cols)`` chunk sides."""

    def __init__(self, array: Any) -> None:
        self.array = array
        self.shape = (int(array.shape[0]), int(array.shape[1]))
        self.dtype = np.dtype(bool)
        chunks = tuple(int(v) for v in getattr(array, "chunks", array.shape))
        self.chunks = chunks[:2]

    def __getitem__(self, key: Any) -> np.ndarray:
        rows, cols = rows_cols(key)

        return colour_holes(self.array[rows, cols, :3])


def open_mask(path: str | os.PathLike[str], shape: tuple[int, int]) -> Any:
    """Open a damage mask of a scan of ``(H, W)`` = ``shape``, non-zero = hole.

    A zarr array, OME-Zarr group or TIFF is read lazily, chunk by chunk (a colour TIFF is a
    hole wherever a colour channel is non-zero: :class:`AnyChannelMask`); a PNG mask is read
    whole (:func:`inpaint_core.io.read_mask`). Returns a 2-D ``(H, W)`` array, any integer,
    float or bool dtype.
    """
    path = Path(path)
    if not path.exists():
        raise ImageIOError(f"mask {str(path)!r} does not exist")
    if path.suffix.lower() in TIFF_SUFFIXES and path.is_file():
        mask = _open_tiff(path, "mask")
        if not hasattr(mask, "dtype"):
            mask = multiscale_level0(mask, path)
        if len(mask.shape) == 3:
            mask = AnyChannelMask(mask)
    elif path.suffix.lower() in IMAGE_MASK_SUFFIXES and path.is_file():

        mask = read_mask(path)
    else:
        mask = _open_zarr(path, "mask")
        if not hasattr(mask, "dtype"):
            group, mask = mask, multiscale_level0(mask, path)
            axes = axis_names(group)
            if axes is not None and axes != ["y", "x"]:
                mask = NgffAxesView(mask, axes, path, channels=False)
        elif len(mask.shape) == 3 and int(mask.shape[2]) in (3, 4):  # a colour mask (H, W, C)
            mask = AnyChannelMask(mask)
    if tuple(mask.shape) != tuple(shape):
        raise InvalidInputError(
            f"mask {str(path)!r} has shape {tuple(mask.shape)}; expected the scan's (H, W) "
            f"{tuple(shape)}"
        )
    return mask


@dataclass(frozen=True)
class Inputs:
    """A restoration's opened inputs (see :func:`open_inputs`)."""

    scan: Any
    mask: Any
    paths: tuple[Path, ...]
    described: dict[str, str]
    levels: tuple[Any, ...] = ()
    omero: dict[str, Any] | None = None  # the scan's OME-Zarr rendering metadata


def open_inputs(scan: Any, mask: Any) -> Inputs:
    """The scan, mask, input paths, a description naming both for provenance, and the scan's
    lower levels, from paths (:func:`open_scan`, :func:`open_mask`) or arrays already open."""
    paths: list[Path] = []
    levels: tuple[Any, ...] = ()
    omero = None
    if isinstance(scan, (str, os.PathLike)):
        source = open_scan(scan)
        array, described = source.array, {"scan": str(source.path), "scan_kind": source.kind}
        paths.append(source.path)
        levels, omero = source.levels, source.omero
    else:
        array, described = scan, {"scan": f"<{type(scan).__name__}>", "scan_kind": "array"}
    shape = (int(array.shape[0]), int(array.shape[1]))
    if isinstance(mask, (str, os.PathLike)):
        hole = open_mask(mask, shape)
        described["mask"] = str(mask)
        paths.append(Path(mask))
    else:
        hole = mask
        described["mask"] = f"<{type(mask).__name__}>"
        if tuple(hole.shape) != shape:
            raise InvalidInputError(
                f"mask shape {tuple(hole.shape)} does not match the scan's (H, W) {shape}"
            )
    return Inputs(array, hole, tuple(paths), described, levels, omero)
