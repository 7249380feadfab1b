"""Large scans on disk: open a scan and its damage mask lazily, create the restored store.

Scans are read through zarr, never whole: a zarr v2 or v3 array, an OME-Zarr group (its
level 0; NGFF 0.4 keeps ``multiscales`` in the attributes, 0.5 under ``"ome"``) or a TIFF
through tifffile's zarr interface. The output is always a **new** zarr v3 group::

    OUT.zarr/0          the restored scan: the source's shape, dtype and chunking, stored in
                        NGFF's axis order (``c, y, x``; ``y, x`` for grey; a channel-first
                        OME-Zarr's own axes) with those ``dimension_names``
    OUT.zarr/1, 2, ...  2x area-averaged levels, until the long side is <= ``pyramid_side``
    OUT.zarr/.progress  uint8 (chunk rows, chunk cols), 1 = that level-0 chunk is written
    attributes          NGFF 0.5 "multiscales" and "omero" under "ome" (and at the top level
                        for 0.4 readers), and "inpaint" provenance: method, parameters,
                        weights sha256, mask, settings

A valid OME-Zarr (NGFF 0.5) whatever the scan; read back as ``(H, W[, C])`` by
:func:`open_scan`.
"""

from __future__ import annotations

import contextlib
import errno
import itertools
import logging
import math
import os
import shutil
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from inpaint_core.errors import ImageIOError, InvalidInputError, OutputExistsError
from inpaint_core.io.atomic import atomic_write
from inpaint_core.tiling.regions import Box, chunk_boxes

logger = logging.getLogger(__name__)

TIFF_SUFFIXES = (".tif", ".tiff")
IMAGE_MASK_SUFFIXES = (".png", ".tif", ".tiff")
SCAN_DTYPES = (np.uint8, np.uint16, np.float32, np.float64)
PYRAMID_SIDE = 1024
"""The pyramid stops at the first level whose long side is at most this many pixels."""
#: Threads that write a pyramid level's chunks (decoding and encoding release the GIL; copied
#: chunks are file I/O).
PYRAMID_THREADS = 4
#: How chunks that need no restoration reach the output: ``copy`` their stored bytes, or
#: ``link`` them (a hard link to the source's chunk file; see :func:`check_linkable`).
INTACT_MODES = ("copy", "link")
MAX_CHUNK = 4096
"""Output chunk sides are the source's, capped here (a strip TIFF may be one huge chunk)."""
#: Channel counts for which :func:`downsample` of uint8/uint16 runs through OpenCV's 2x area
#: resize, whose results are the exact rounded mean there (checked by the tests; OpenCV
#: rounds differently for 2 and for 5 or more channels, so those take the NumPy path).
AREA_CHANNELS = (1, 3, 4)
PROGRESS = ".progress"
#: OME-Zarr axes read and written as they are stored; any other layout goes through an
#: :class:`NgffAxesView`.
PLAIN_AXES = (["y", "x"], ["y", "x", "c"])
LEVEL0 = "0"


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
    import zarr

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
        rows, cols = _rows_cols(key)
        parts = {"y": rows, "x": cols, "c": slice(None), None: 0}
        block = np.asarray(self.array[tuple(parts[name] for name in self._kept)])
        return _viewed(block, [name for name in self._kept if name])  # the axes it still has

    def __setitem__(self, key: Any, value: np.ndarray) -> None:
        """Write ``(h, w[, C])`` pixels at ``(rows, cols)`` in the stored axis order."""
        rows, cols = _rows_cols(key)
        parts = {"y": rows, "x": cols, "c": slice(None), None: slice(0, 1)}
        self.array[tuple(parts[name] for name in self._kept)] = _laid_out(value, self.axes)

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
    ]:  # fmt: skip
        """The stored shape and chunks of a level ``shape`` ``(H, W[, C])`` chunked ``sides``
        (y, x) in this view's axes."""
        where = {"y": 0, "x": 1}
        lengths = tuple(int(shape[where[n]]) if n in where else int(v)
                        for n, v in zip(self._kept, self.array.shape, strict=True))  # fmt: skip
        chunks = tuple(int(sides[where[n]]) if n in where else int(v)
                       for n, v in zip(self._kept, self.array.chunks, strict=True))  # fmt: skip
        return lengths, chunks

    def with_array(self, array: Any) -> NgffAxesView:
        """This view's axes over another stored ``array`` (e.g. a pyramid level)."""
        return NgffAxesView(array, self.axes, self._path, channels=self._channels)


def _viewed(block: np.ndarray, axes: Sequence[str]) -> np.ndarray:
    """A new contiguous ``(h, w[, C])`` array of ``block``, whose axes are ``axes`` (names
    among y, x, c)."""
    if list(axes) == ["c", "y", "x"] and 1 < len(block) <= 4:  # OpenCV interleaves the planes
        return cv2.merge(list(block))  # some 10x faster than NumPy's transposing copy
    order = [list(axes).index(name) for name in VIEW_AXES if name in axes]
    return np.ascontiguousarray(block.transpose(order))


def _laid_out(pixels: np.ndarray, axes: Sequence[str]) -> np.ndarray:
    """``(h, w[, C])`` ``pixels`` with their axes in ``axes`` order (a name they lack, e.g.
    ``t`` or ``z``: length 1); a view where NumPy can make one."""
    shown = [name for name in VIEW_AXES[: np.ndim(pixels)] if name in axes]
    block = np.asarray(pixels).transpose([shown.index(name) for name in axes if name in shown])
    return block.reshape([pixels.shape[shown.index(name)] if name in shown else 1
                          for name in axes])  # fmt: skip


def _rows_cols(key: Any) -> tuple[Any, Any]:
    """The ``(rows, cols)`` a 2-D view is indexed with; ``...`` means all of both."""
    return (slice(None), slice(None)) if key is Ellipsis else key


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


#: Display colours of an RGB(A) scan's channels, and the label of each.
CHANNEL_COLOURS = (("red", "FF0000"), ("green", "00FF00"), ("blue", "0000FF"),
                   ("alpha", "FFFFFF"))  # fmt: skip


def channel_rendering(channels: int, dtype: Any) -> dict[str, Any]:
    """NGFF ``omero`` rendering metadata for an image of ``channels`` channels (1: grey, 3:
    RGB, 4: RGBA; the alpha channel is listed inactive) of ``dtype``: each channel's colour,
    and a window over the dtype's range (integers: 0 to their maximum, floats: 0 to 1), so NGFF
    viewers that show a channel axis as separate layers blend them back into the picture."""
    kind = np.dtype(dtype)
    top = float(np.iinfo(kind).max) if kind.kind in "ui" else 1.0
    named = [("grey", "FFFFFF")] if channels == 1 else list(CHANNEL_COLOURS[:channels])
    return {
        "channels": [
            {"label": label, "color": colour, "active": label != "alpha", "coefficient": 1.0,
             "family": "linear", "inverted": False,
             "window": {"start": 0.0, "end": top, "min": 0.0, "max": top}}
            for label, colour in named
        ],
        "rdefs": {"model": "greyscale" if channels == 1 else "color"},
    }  # fmt: skip


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
    import tifffile
    import zarr

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
        rows, cols = _rows_cols(key)
        from inpaint_core.io.images import colour_holes

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
        from inpaint_core.io.images import read_mask

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


def _same_or_nested(first: Path, second: Path) -> bool:
    a, b = first.resolve(), second.resolve()
    return a == b or a in b.parents or b in a.parents


def check_output_store(
    path: str | os.PathLike[str], inputs: tuple[Path, ...], *, resume: bool = False
) -> Path:
    """Return ``path`` if a restored store may be created (or resumed) there, else raise.

    Raises:
        OutputExistsError: ``path`` is, holds or lies inside an input; or it exists and
            ``resume`` is False.
        ImageIOError: its parent folder does not exist.
    """
    path = Path(path)
    for source in inputs:
        if _same_or_nested(path, source):
            raise OutputExistsError(
                f"output {str(path)!r} is or overlaps the input {str(source)!r}; the source is "
                "never written: choose another output path"
            )
    if path.exists() and not resume:
        raise OutputExistsError(
            f"output {str(path)!r} already exists; choose another path, or pass --resume "
            "(resume=True) to continue an interrupted run into it"
        )
    if not path.parent.is_dir():
        raise ImageIOError(f"cannot create {str(path)!r}: folder {str(path.parent)!r} is missing")
    return path


def output_chunks(source: Any) -> tuple[int, ...]:
    """The output chunk shape: the source's (whole channels), sides capped at MAX_CHUNK."""
    shape = tuple(int(v) for v in source.shape)
    chunks = getattr(source, "chunks", None)
    if not isinstance(chunks, tuple) or len(chunks) != len(shape):
        chunks = shape
    pairs = zip(chunks[:2], shape[:2], strict=True)
    sides = tuple(max(1, min(int(c), MAX_CHUNK, s)) for c, s in pairs)
    return sides + shape[2:]


#: The stored axes of an output's level (and :func:`stored_axes` of an array that is no
#: :class:`NgffAxesView`): NGFF orders a channel axis before the space axes.
OUTPUT_AXES = {2: ("y", "x"), 3: ("c", "y", "x")}
VIEW_AXES = ("y", "x", "c")
"""The axes of an ``(H, W[, C])`` array as the engine and the methods see it."""


@dataclass(frozen=True)
class Layout:
    """How an output level is stored.

    Attributes:
        axes: the stored axis names (NGFF order, written as the array's ``dimension_names``).
        shape, chunks: the stored shape and chunk shape, in ``axes`` order.
        encoding: ``create_array`` keywords (codecs, fill value).
        kept: whether ``encoding`` keeps the source's stored chunk bytes (:func:`kept_encoding`),
            so that its chunks copy or link as they are stored.
    """

    axes: tuple[str, ...]
    shape: tuple[int, ...]
    chunks: tuple[int, ...]
    encoding: dict[str, Any]
    kept: bool


def stored_axes(array: Any) -> tuple[str, ...]:
    """The stored axis names of an ``(H, W[, C])`` array or :class:`NgffAxesView`."""
    return array.axes if isinstance(array, NgffAxesView) else VIEW_AXES[: len(array.shape)]


def output_layout(source: Any) -> Layout:
    """The :class:`Layout` of the output's level 0 for ``source`` (an ``(H, W[, C])`` array or
    :class:`NgffAxesView`): a channel-first OME-Zarr's own axes, else ``y, x`` or ``c, y, x``
    (:data:`OUTPUT_AXES`); :func:`output_chunks` (whole channels); the source's stored chunk
    bytes where they can be kept (:func:`kept_encoding`: a ``(H, W, C)`` zarr v3 scan's chunks
    are then declared with a ``transpose`` codec, which stores them channel last, as the scan
    does), else :func:`new_encoding`."""
    chunks = output_chunks(source)
    if isinstance(source, NgffAxesView):
        axes = source.axes
        shape, sides = source.stored_level(tuple(source.shape), chunks)
    else:
        axes = OUTPUT_AXES[len(source.shape)]
        shape = _arranged(tuple(int(v) for v in source.shape), axes)
        sides = _arranged(chunks, axes)
    kept = kept_encoding(source, axes, sides)
    return Layout(axes, shape, sides, kept or new_encoding(), kept is not None)


def _arranged(values: tuple[int, ...], axes: Sequence[str]) -> tuple[int, ...]:
    """``values`` given in :data:`VIEW_AXES` order, in ``axes`` order."""
    return tuple(values[VIEW_AXES.index(name)] for name in axes)


def kept_encoding(
    source: Any, axes: Sequence[str], chunks: tuple[int, ...]
) -> dict[str, Any] | None:
    """``create_array`` keywords for a level stored in ``axes`` and chunked ``chunks`` whose
    every chunk is, byte for byte, the same chunk of ``source`` (an array or
    :class:`NgffAxesView`): the stored array's encoding (:func:`same_encoding`), after a
    ``transpose`` codec when its stored axes are in another order. None when ``source`` is no
    unsharded zarr v3 array, or its chunks permuted are not ``chunks``."""
    from zarr.codecs import TransposeCodec

    array, own = stored(source), stored_axes(source)
    if sorted(own) != sorted(axes):
        return None
    order = tuple(axes.index(name) for name in own)  # the stored axes, from the level's
    permuted = tuple(int(chunks[number]) for number in order)
    encoding = same_encoding(array, permuted)
    if encoding is None or order == tuple(range(len(order))):
        return encoding
    return dict(encoding, filters=(TransposeCodec(order=order), *encoding["filters"]))


def create_output(
    path: Path, source: Any, provenance: dict[str, Any], omero: Mapping[str, Any] | None = None,
    name: str | None = None,
) -> Any:  # fmt: skip
    """Create the output group at ``path`` (a new zarr v3 store): level ``"0"`` in the
    :func:`output_layout` of ``source`` (its shape and dtype; NGFF axes, written as the
    array's ``dimension_names`` and in the ``multiscales`` attributes), the progress array,
    and the attributes ``{"inpaint": provenance}``; with a channel axis, the NGFF ``omero``
    rendering metadata too: ``omero`` (the scan's), else :func:`channel_rendering`. ``name``:
    the image's name in the ``multiscales`` (default ``path``'s stem). Returns the
    ``zarr.Group``."""
    import zarr

    group = zarr.open_group(str(path), mode="w-", zarr_format=3)
    layout = output_layout(source)
    group.create_array(LEVEL0, shape=layout.shape, chunks=layout.chunks, dtype=source.dtype,
                       dimension_names=layout.axes, **layout.encoding)  # fmt: skip
    if "c" in layout.axes:
        channels = layout.shape[layout.axes.index("c")]
        write_rendering(group, omero or channel_rendering(channels, source.dtype))
    write_multiscales(group, 1, name or path.stem, layout.axes)  # a resumed run reads the axes
    chunks = output_chunks(source)
    grid = tuple(math.ceil(s / c) for s, c in zip(source.shape[:2], chunks[:2], strict=True))
    # One uncompressed byte per chunk file: marking a chunk never rewrites another's mark.
    group.create_array(
        PROGRESS, shape=grid, chunks=(1, 1), dtype="uint8", fill_value=0, compressors=None
    )
    group.attrs["inpaint"] = provenance
    return group


def new_encoding() -> dict[str, Any]:
    """The ``create_array`` keywords of an output array that takes no source's encoding:
    fill value 0 and zstd at its default level (zarr's default, made explicit so that a run's
    ``zstd_level`` always finds it)."""
    from zarr.codecs import ZstdCodec

    return {"fill_value": 0, "compressors": (ZstdCodec(),)}


#: The zstd levels: negative ones trade compression for speed; 0 is zstd's default (3).
ZSTD_LEVELS = range(-131072, 23)


def check_zstd_level(level: int | None, codecs: Sequence[Any]) -> None:
    """Raise :class:`~inpaint_core.errors.ParameterError` unless ``level`` is None, or a
    zstd level (:data:`ZSTD_LEVELS`) and ``codecs`` (an output's codecs or compressors)
    hold zstd, naming them."""
    from zarr.codecs import ZstdCodec

    from inpaint_core.errors import ParameterError

    if level is None:
        return
    if not isinstance(level, int) or isinstance(level, bool) or level not in ZSTD_LEVELS:
        raise ParameterError(
            f"zstd_level={level!r} must be an int from {ZSTD_LEVELS[0]} to {ZSTD_LEVELS[-1]}"
        )
    if not any(isinstance(codec, ZstdCodec) for codec in codecs):
        names = ", ".join(type(codec).__name__ for codec in codecs) or "none"
        raise ParameterError(
            f"zstd_level={level} needs an output compressed with zstd; this one's codecs, "
            f"taken from the scan so that its intact chunks copy as stored bytes, are: {names}"
        )


def zstd_writer(array: Any, level: int | None) -> Any:
    """``array`` (a zarr v3 array or an :class:`NgffAxesView`) as one that encodes the chunks
    it writes at zstd ``level``; the store, and the codecs its ``zarr.json`` declares, stay as
    they are: the level is the encoder's effort, and a zstd frame decodes alike whatever level
    made it, so every reader reads these chunks as before. None: ``array`` itself.

    Raises:
        ParameterError: see :func:`check_zstd_level`.
    """
    if level is None:
        return array
    if isinstance(array, NgffAxesView):
        return array.with_array(zstd_writer(array.array, level))
    from zarr.codecs import ZstdCodec

    check_zstd_level(level, array.metadata.codecs)
    described = array.metadata.to_dict()
    described["codecs"] = [
        ZstdCodec(level=level, checksum=codec.checksum) if isinstance(codec, ZstdCodec)
        else codec for codec in array.metadata.codecs
    ]  # fmt: skip
    inner = array.async_array
    metadata = type(array.metadata).from_dict(described)
    return type(array)(type(inner)(metadata=metadata, store_path=inner.store_path,
                                   config=inner.config))  # fmt: skip


class DirectChunks:
    """Whole chunks of a local zarr v3 level read and written **in the calling thread**,
    byte for byte as zarr reads and writes them; see :func:`direct_chunks`.

    zarr decodes and encodes in its own thread pool; the engine's I/O threads, which run at a
    lower CPU priority than the method, do it themselves this way, so that all the work
    beside the method yields to it.
    """

    def __init__(self, array: Any, zstd: Any, dtype: np.dtype, chunk_shape: tuple[int, ...],
                 physical: list[str]) -> None:  # fmt: skip
        self._target = stored(array)
        self._names = stored_axes(array)
        self._zstd, self._dtype, self._shape = zstd, dtype, chunk_shape
        self._physical = physical  # the stored bytes' axes, outermost first
        self._shown = [name for name in VIEW_AXES[: len(array.shape)] if name in physical]
        self._fill = self._target.fill_value
        self.chunks = (int(array.chunks[0]), int(array.chunks[1]))
        self.shape = tuple(int(v) for v in array.shape)

    def _path(self, block: tuple[int, int]) -> Path:
        coords = [0] * len(self._names)
        coords[self._names.index("y")], coords[self._names.index("x")] = block
        path = _local_file(self._target, tuple(coords))
        assert path is not None  # direct_chunks checked the store
        return path

    def read(self, block: tuple[int, int]) -> np.ndarray:
        """Chunk ``block`` ``(row, col)`` as a new ``(h, w[, C])`` array (clipped at the array's
        edges; a chunk the store lacks is the fill value)."""
        box = _block_box(self, block)  # clipped at the array's far edges
        sizes = {"y": box.row1 - box.row0, "x": box.col1 - box.col0}
        try:
            data = self._path(block).read_bytes()
        except FileNotFoundError:  # zarr stores no chunk that is all fill value
            laid = np.full(self._shape, self._fill, dtype=self._dtype)
        else:
            try:
                raw = self._zstd.decode(data) if self._zstd is not None else data
                laid = np.frombuffer(raw, dtype=self._dtype).reshape(self._shape)
            except (RuntimeError, ValueError) as error:  # zstd's error, or a short chunk
                from inpaint_core.io.guard import corrupt_chunk

                key = str(self._path(block).relative_to(self._target.store_path.store.root))
                raise corrupt_chunk(self._target, key, error) from error
        laid = laid[tuple(slice(0, sizes[name]) if name in sizes else slice(None)
                          for name in self._physical)]  # fmt: skip
        kept = [name for name in self._physical if name in self._shown]
        laid = laid.reshape([laid.shape[self._physical.index(name)] for name in kept])
        block = _viewed(laid.astype(self._dtype.newbyteorder("="), copy=False), kept)
        return block if block.flags.writeable else block.copy()  # not the decoded bytes

    def write(self, block: tuple[int, int], pixels: np.ndarray) -> None:
        """Store chunk ``block`` ``(row, col)`` from its ``(h, w[, C])`` ``pixels`` (the whole
        chunk, clipped at the array's edges): arranged in the stored axes, padded with the
        fill value, encoded, written to a new file renamed into place (as zarr does: a hard
        link to another store's file is replaced, never written through)."""
        laid = _laid_out(pixels, self._physical)
        if laid.shape != self._shape:  # an edge chunk: zarr stores it whole, padded
            whole = np.full(self._shape, self._fill, dtype=laid.dtype)
            whole[tuple(slice(0, length) for length in laid.shape)] = laid
            laid = whole
        data = np.ascontiguousarray(laid, dtype=self._dtype).view(np.uint8).reshape(-1)
        encoded = self._zstd.encode(data) if self._zstd is not None else data
        path = self._path(block)
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_write(path, durable=False) as temporary:  # flushed once at the end
            temporary.write_bytes(encoded)


def direct_chunks(array: Any) -> DirectChunks | None:
    """:class:`DirectChunks` of ``array`` (an ``(H, W[, C])`` zarr v3 array or
    :class:`NgffAxesView`, e.g. from :func:`zstd_writer`, whose level it encodes at), or None
    where they do not apply: a store that is no local folder, sharding, a chunk that does not
    hold every channel, or codecs other than ``transpose``, ``bytes`` and ``zstd`` (read and
    write through zarr then)."""
    import zarr
    from numcodecs import Zstd
    from zarr.codecs import BytesCodec, TransposeCodec, ZstdCodec

    target = stored(array)
    if not isinstance(target, zarr.Array) or target.metadata.zarr_format != 3:
        return None
    if target.shards is not None or _local_file(target, (0,) * len(target.shape)) is None:
        return None
    names = stored_axes(array)
    if any(int(side) != int(length) for name, side, length in
           zip(names, target.chunks, target.shape, strict=True) if name not in ("y", "x")):
        return None  # fmt: skip
    order, _, chunk_shape, _ = _physical(target)
    serializer, *compressors = [codec for codec in target.metadata.codecs
                                if not isinstance(codec, TransposeCodec)]  # fmt: skip
    if not isinstance(serializer, BytesCodec) or len(compressors) > 1:
        return None
    if compressors and not isinstance(compressors[0], ZstdCodec):
        return None
    zstd = None
    if compressors:
        zstd = Zstd(level=compressors[0].level, checksum=compressors[0].checksum)
    dtype = np.dtype(target.dtype)
    if dtype.itemsize > 1 and serializer.endian is not None:
        dtype = dtype.newbyteorder("<" if serializer.endian.name == "little" else ">")
    return DirectChunks(array, zstd, dtype, chunk_shape, [names[axis] for axis in order])


def chunk_store(array: Any) -> Callable[[tuple[int, int], np.ndarray], None]:
    """A function ``store(block, pixels)`` writing chunk ``block`` ``(row, col)`` of ``array``
    (an ``(H, W[, C])`` zarr array or :class:`NgffAxesView`) from its ``(h, w[, C])``
    ``pixels`` (the whole chunk, clipped at the edges): :meth:`DirectChunks.write` (encoded in
    the calling thread) where :func:`direct_chunks` apply, else through zarr."""
    direct = direct_chunks(array)
    if direct is not None:
        return direct.write

    def store(block: tuple[int, int], pixels: np.ndarray) -> None:
        array[_block_box(array, block).slices] = pixels

    return store


def same_encoding(source: Any, chunks: tuple[int, ...]) -> dict[str, Any] | None:
    """``create_array`` keywords giving a new array ``source``'s encoding, so its chunks can be
    copied as stored bytes (:func:`copy_chunk_bytes`); None when ``source`` is not an
    unsharded zarr v3 array chunked as ``chunks``."""
    import zarr

    if not isinstance(source, zarr.Array) or source.metadata.zarr_format != 3:
        return None
    if source.shards is not None or tuple(source.chunks) != tuple(chunks):
        return None
    return {
        "serializer": source.serializer,
        "compressors": source.compressors,
        "filters": source.filters,
        "fill_value": source.fill_value,
    }


def bytes_compatible(source: Any, target: Any) -> bool:
    """Whether every chunk of ``source`` is, byte for byte, a chunk of ``target`` (the same
    chunk, or its transposed one where a ``transpose`` codec stores the arrays' axes in the
    same order: :func:`copy_chunk_bytes` finds it); their codecs may differ only in what the
    encoder alone uses: zstd's level."""
    import zarr

    if not (isinstance(source, zarr.Array) and isinstance(target, zarr.Array)):
        return False
    first, second = source.metadata, target.metadata
    if first.zarr_format != 3 or second.zarr_format != 3:
        return False
    one, other = _physical(source), _physical(target)
    return (
        one[1:] == other[1:]
        and first.data_type == second.data_type
        and first.chunk_key_encoding == second.chunk_key_encoding
        and np.array_equal(np.asarray(source.fill_value), np.asarray(target.fill_value))
    )


def _physical(array: Any) -> tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...], Any]:
    """A zarr v3 ``array`` as its chunks are stored: the axis order that its leading
    ``transpose`` codecs make (stored axis ``k`` is the array's axis ``order[k]``), the shape
    and chunk shape in that order, and its other codecs (:func:`_decoded_alike`)."""
    from zarr.codecs import TransposeCodec

    codecs = list(array.metadata.codecs)
    order = tuple(range(len(array.shape)))
    while codecs and isinstance(codecs[0], TransposeCodec):
        order = tuple(order[number] for number in codecs.pop(0).order)
    shape = tuple(int(array.shape[number]) for number in order)
    chunks = tuple(int(array.chunks[number]) for number in order)
    return order, shape, chunks, _decoded_alike(codecs)


def _decoded_alike(codecs: Sequence[Any]) -> tuple[Any, ...]:
    """``codecs`` without what only the encoder uses (zstd's level: :func:`zstd_writer`)."""
    from zarr.codecs import ZstdCodec

    return tuple(
        ("zstd", codec.checksum) if isinstance(codec, ZstdCodec) else codec for codec in codecs
    )


def chunk_key(array: Any, coords: tuple[int, ...]) -> str:
    """The store key of chunk ``coords`` (chunk-grid coordinates) of a zarr ``array``."""
    key = array.metadata.encode_chunk_key(coords)
    prefix = array.store_path.path
    return f"{prefix}/{key}" if prefix else key


def stored_chunk_keys(array: Any) -> frozenset[str] | None:
    """The keys a zarr ``array``'s store holds under the array's path (metadata and the
    :func:`chunk_key` of each stored chunk); a chunk whose key is missing is all ``fill_value``
    (zarr does not store those). None when that cannot be told: not a zarr array, or a sharded
    one (a shard holds many chunks). One listing of the store."""
    import zarr
    from zarr.core.sync import sync

    if not isinstance(array, zarr.Array) or array.shards is not None:
        return None
    store, prefix = array.store_path.store, array.store_path.path

    async def listed() -> frozenset[str]:
        return frozenset([key async for key in store.list_prefix(prefix)])

    keys = sync(listed())
    return keys if not prefix else frozenset(k for k in keys if k.startswith(f"{prefix}/"))


def _local_file(array: Any, coords: tuple[int, ...]) -> Path | None:
    """The file that holds chunk ``coords`` of ``array`` when its store is a local folder."""
    from zarr.storage import LocalStore

    store = array.store_path.store
    if not isinstance(store, LocalStore):
        return None
    return Path(store.root) / chunk_key(array, coords)


def filesystem_id(path: Path) -> int:
    """The id of the filesystem holding ``path`` (hard links cannot cross filesystems)."""
    return os.stat(path).st_dev


def check_linkable(source: Any, output: Path) -> None:
    """Raise unless the chunks of ``source`` can be hard-linked into a new store at ``output``.

    Linking (``intact="link"``) needs an unsharded zarr v3 source in a local folder whose
    chunking the output keeps (chunk sides up to :data:`MAX_CHUNK`), on the filesystem of
    ``output``'s folder. A linked chunk file is shared, not copied: zarr replaces a chunk file
    when it writes one (a new file, renamed into place), so writing either store through zarr
    never changes the other; a tool that rewrote chunk files in place would change both.

    Raises:
        InvalidInputError: naming what rules linking out, and ``--intact copy`` as the way out.
    """
    import zarr

    advice = "use --intact copy (intact='copy')"
    kept = output_layout(source).kept
    source = stored(source)
    if not kept:
        if isinstance(source, zarr.Array):
            sharded = "sharded" if source.shards is not None else "unsharded"
            found = f"a {sharded} zarr v{source.metadata.zarr_format} array, chunks {source.chunks}"
        else:
            found = f"a {type(source).__name__}"
        raise InvalidInputError(
            f"--intact link needs an unsharded zarr v3 scan chunked at most {MAX_CHUNK} px; "
            f"this scan is {found}: {advice}"
        )
    first = _local_file(source, (0,) * len(source.shape))
    if first is None:
        raise InvalidInputError(f"--intact link needs a scan in a local folder: {advice}")
    root = Path(source.store_path.store.root)
    if filesystem_id(root) != filesystem_id(output.parent):
        raise InvalidInputError(
            f"--intact link needs the output on the scan's filesystem; {str(root)!r} and "
            f"{str(output.parent)!r} are on different ones: {advice}"
        )


def copy_chunk_bytes(
    source: Any, target: Any, coords: tuple[int, ...], *, link: bool = False
) -> None:
    """Copy into chunk ``coords`` (full chunk-grid coordinates) of ``target`` the stored bytes
    of the same chunk of ``source`` (its coordinates permuted where the arrays' axes are, see
    :func:`bytes_compatible`, which they must be), without decoding. A chunk
    missing in ``source`` (all fill value) is left missing in ``target``. With ``link`` both
    arrays must be in local folders on one filesystem (:func:`check_linkable`): the target's
    chunk file becomes a hard link to the source's, replacing whatever file was there.

    The source chunk is first decoded (:func:`~inpaint_core.io.guard.check_chunk_bytes`): a
    corrupt one raises CorruptChunkError naming it, and nothing is copied.
    """
    from zarr.core.buffer import default_buffer_prototype
    from zarr.core.sync import sync

    from inpaint_core.io.guard import check_chunk_bytes

    theirs = _source_coords(source, target, coords)
    check_chunk_bytes(source, theirs)
    origin, destination = _local_file(source, theirs), _local_file(target, coords)
    if link and (origin is None or destination is None):
        raise InvalidInputError("hard-linking chunks needs both arrays in local folders")
    if origin is not None and destination is not None:  # file to file, no bytes in Python
        destination.unlink(missing_ok=True)
        if origin.is_file():
            destination.parent.mkdir(parents=True, exist_ok=True)
            if link:
                os.link(origin, destination)
            else:
                shutil.copyfile(origin, destination)
        return
    data = sync(source.store_path.store.get(chunk_key(source, theirs), default_buffer_prototype()))
    key = chunk_key(target, coords)
    if data is None:
        sync(target.store_path.store.delete(key))
    else:
        sync(target.store_path.store.set(key, data))


def _source_coords(source: Any, target: Any, coords: tuple[int, ...]) -> tuple[int, ...]:
    """The chunk of ``source`` whose stored bytes are chunk ``coords`` of ``target``."""
    theirs, ours = _physical(source)[0], _physical(target)[0]
    if theirs == ours:
        return coords
    found = [0] * len(coords)
    for stored_axis, axis in enumerate(theirs):
        found[axis] = coords[ours[stored_axis]]
    return tuple(found)


#: The hidden file in a local progress array's folder that its marks are hard links to: the
#: one byte ``0x01`` zarr stores for a chunk of one uint8 1 (:func:`mark_done`).
MARK_FILE = ".mark"
_MARK = b"\x01"
_UNLINKABLE: set[Path] = set()  # templates of progress arrays where hard links were refused


def mark_done(progress: Any, key: tuple[int, int]) -> None:
    """Set chunk ``key`` ``(row, col)`` of an output's progress array to 1.

    In a local folder the chunk's file is made directly, never seen half-written: a hard link
    to the folder's :data:`MARK_FILE`, the one byte ``0x01`` that zarr stores for an
    uncompressed uint8 chunk of one element. A link makes no new file, so it costs the system
    a twentieth of writing one (a 32k scan's 1024 marks: 0.02 s instead of 0.4 s of kernel
    time, taken from the method's cores). zarr replaces a chunk file when it writes one, so a
    later write through zarr changes that chunk only. Where hard links are refused the byte is
    written (renamed into place); any other progress array is written through zarr."""
    path = _local_file(progress, key) if _one_raw_byte(progress) else None
    if path is None:
        progress[key] = 1
        return
    template = Path(progress.store_path.store.root) / progress.store_path.path / MARK_FILE
    if template not in _UNLINKABLE:
        try:
            _link_mark(template, path)
            return
        except OSError as error:
            if isinstance(error, FileNotFoundError):  # a folder gone: not a refused link
                raise
            logger.debug("hard links refused in %s; writing marks", template.parent, exc_info=True)
            _UNLINKABLE.add(template)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(path, durable=False) as temporary:  # flushed once at the end
        temporary.write_bytes(_MARK)


def _link_mark(template: Path, path: Path) -> None:
    """Make ``path`` a hard link to ``template``: made when missing (with ``path``'s folder);
    an existing ``path`` is replaced atomically; a ``template`` at the filesystem's link limit
    is replaced by a fresh one (earlier marks keep linking the old one)."""
    for _ in range(4):  # another thread may be making or replacing the template meanwhile
        try:
            os.link(template, path)
            return
        except FileExistsError:  # marked before: replaced, never missing meanwhile
            with atomic_write(path, durable=False) as temporary:
                os.link(template, temporary)
            return
        except FileNotFoundError as error:
            failure: OSError = error
            _make_template(template, replace=False)
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            if error.errno != errno.EMLINK:
                raise
            failure = error
            _make_template(template, replace=True)
    raise failure


def _make_template(template: Path, *, replace: bool) -> None:
    """Write the mark ``template``, unless it exists and not ``replace``. A missing one is
    made without replacing one another thread made meanwhile (whose inode, linked by nothing
    else yet, would vanish under a mark being linked to it: the kernel refuses that link)."""
    if not replace and template.is_file():
        return
    template.parent.mkdir(parents=True, exist_ok=True)
    with (
        contextlib.suppress(FileExistsError),
        atomic_write(template, replace=replace, durable=False) as new,
    ):
        new.write_bytes(_MARK)


def _one_raw_byte(array: Any) -> bool:
    """Whether each chunk of zarr ``array`` is stored as one uncompressed uint8 byte."""
    import zarr
    from zarr.codecs import BytesCodec

    if not isinstance(array, zarr.Array) or array.metadata.zarr_format != 3:
        return False
    if array.dtype != np.uint8 or any(int(side) != 1 for side in array.chunks):
        return False
    codecs = array.metadata.codecs
    return len(codecs) == 1 and isinstance(codecs[0], BytesCodec)


def open_output(path: Path) -> Any:
    """Open an existing output group for resuming, or raise naming what is wrong with it."""
    import zarr

    if (path / "zarr.json").is_file() and not (path / LEVEL0 / "zarr.json").is_file():
        raise ImageIOError(
            f"cannot resume {str(path)!r}: it is an unfinished output whose settings were never "
            "recorded (the first run stopped while creating it); delete it and run again "
            "without --resume"
        )
    try:
        group = zarr.open_group(str(path), mode="r+")
        for name in (LEVEL0, PROGRESS):  # both must exist
            group[name]
    except Exception as error:
        raise ImageIOError(
            f"cannot resume {str(path)!r}: it is not an output of `inpaint restore` ({error})"
        ) from error
    return group


def level_array(group: Any, name: str, config: Mapping[str, Any] | None = None) -> Any:
    """Output level ``name`` as the engine reads and writes it, ``(H, W[, C])``: the array, or
    an :class:`NgffAxesView` of it when the output keeps a channel-first source's axes (named in
    its ``multiscales``); ``config`` as for zarr's ``Array.with_config``."""
    array = group[name]
    if config:
        array = array.with_config(dict(config))
    axes = axis_names(group)
    if axes is None or axes in PLAIN_AXES:
        return array
    return NgffAxesView(array, axes, Path(str(group.store_path)))


def stored(array: Any) -> Any:
    """The stored array behind an :class:`NgffAxesView`, else ``array`` itself."""
    return array.array if isinstance(array, NgffAxesView) else array


def stored_chunks(array: Any, block: tuple[int, int]) -> list[tuple[int, ...]]:
    """The stored chunk coordinates of chunk ``block`` ``(row, col)`` of an ``(H, W[, C])``
    array or view (whole channels: one chunk for an array)."""
    if isinstance(array, NgffAxesView):
        return array.stored_chunks(block)
    return [block + (0,) * (len(array.shape) - 2)]


def write_rendering(group: Any, omero: Mapping[str, Any]) -> None:
    """Write NGFF ``omero`` rendering metadata (e.g. :func:`channel_rendering`) into
    ``group``'s attributes: top level for NGFF 0.4 readers, under ``"ome"`` for 0.5."""
    group.attrs["omero"] = dict(omero)
    group.attrs["ome"] = dict(dict(group.attrs.get("ome") or {}), version="0.5", omero=dict(omero))


def write_multiscales(group: Any, levels: int, name: str, axes: Sequence[str]) -> None:
    """Write the NGFF ``multiscales`` attributes of ``group``'s ``levels`` levels (top level
    for NGFF 0.4 readers, under ``"ome"`` for 0.5, where other NGFF metadata stays);
    ``axes``: the stored axis names (NGFF orders them time, channel, space)."""
    entry = multiscales_metadata(levels, name, axes)
    group.attrs["multiscales"] = [dict(entry, version="0.4")]
    ome = dict(group.attrs.get("ome") or {})  # other NGFF metadata (omero) stays
    group.attrs["ome"] = dict(ome, version="0.5", multiscales=[entry])


def pyramid_shapes(shape: tuple[int, ...], side: int = PYRAMID_SIDE) -> list[tuple[int, ...]]:
    """Shapes of levels 1, 2, ...: each halves (rounding up) the previous ``(H, W)`` until
    the long side is at most ``side``; channels are kept."""
    shapes: list[tuple[int, ...]] = []
    current = tuple(shape)
    while max(current[:2]) > side:
        current = ((current[0] + 1) // 2, (current[1] + 1) // 2, *current[2:])
        shapes.append(current)
    return shapes


def downsample(block: np.ndarray) -> np.ndarray:
    """2x area average of ``(h, w[, C])``: ``((h+1)//2, (w+1)//2[, C])`` in the same dtype.

    An odd last row or column averages only itself; integers are rounded half up (summed in
    a wider integer type, no float copy), floats averaged in float64.
    """
    rows, cols = block.shape[0], block.shape[1]
    if rows % 2 or cols % 2:
        pad = [(0, rows % 2), (0, cols % 2)] + [(0, 0)] * (block.ndim - 2)
        block = np.pad(block, pad, mode="edge")
    channels = block.shape[2] if block.ndim == 3 else 1
    if block.dtype in (np.uint8, np.uint16) and channels in AREA_CHANNELS and block.size:
        # OpenCV's 2x area resize is this same rounded-half-up mean, 10-20x faster than NumPy.
        half = cv2.resize(np.ascontiguousarray(block), (block.shape[1] // 2, block.shape[0] // 2),
                          interpolation=cv2.INTER_AREA)  # fmt: skip
        return half.reshape(block.shape[0] // 2, block.shape[1] // 2, *block.shape[2:])
    quarters = (block[0::2, 0::2], block[1::2, 0::2], block[0::2, 1::2], block[1::2, 1::2])
    if np.issubdtype(block.dtype, np.integer):
        wide = np.uint32 if block.dtype.itemsize <= 2 else np.int64
        total = quarters[0].astype(wide)
        for quarter in quarters[1:]:
            total += quarter
        return ((total + 2) // 4).astype(block.dtype)
    total = quarters[0].astype(np.float64)
    for quarter in quarters[1:]:
        total += quarter
    return (total / 4.0).astype(block.dtype)


def multiscales_metadata(levels: int, name: str, axes: Sequence[str]) -> dict[str, Any]:
    """One NGFF multiscale entry for ``levels`` arrays named "0", "1", ... with the stored
    ``axes`` (names among t, c, z, y, x), ``y`` and ``x`` halved per level."""
    kinds = {"t": "time", "c": "channel"}
    described = [{"name": axis, "type": kinds.get(axis, "space")} for axis in axes]
    datasets = []
    for level in range(levels):
        scale = [2.0**level if axis in ("y", "x") else 1.0 for axis in axes]
        transform = [{"type": "scale", "scale": scale}]
        datasets.append({"path": str(level), "coordinateTransformations": transform})
    return {"name": name, "axes": described, "datasets": datasets, "type": "mean"}


def _dirty_blocks(
    boxes: Sequence[tuple[int, int, int, int]] | None, level: int, sides: tuple[int, ...],
    shape: tuple[int, ...],
) -> set[tuple[int, int]] | None:  # fmt: skip
    """Chunks of pyramid ``level`` (chunk ``sides``) that cover any level-0 box
    ``(row0, col0, row1, col1)``; None (all) when ``boxes`` is None."""
    if boxes is None:
        return None
    scale = 2**level
    grid = (math.ceil(shape[0] / sides[0]), math.ceil(shape[1] / sides[1]))
    dirty: set[tuple[int, int]] = set()
    for row0, col0, row1, col1 in boxes:
        first_row, last_row = row0 // scale // sides[0], (row1 - 1) // scale // sides[0]
        first_col, last_col = col0 // scale // sides[1], (col1 - 1) // scale // sides[1]
        for row in range(first_row, min(last_row, grid[0] - 1) + 1):
            for col in range(first_col, min(last_col, grid[1] - 1) + 1):
                dirty.add((row, col))
    return dirty


def _halved(
    lower: Any, region: tuple[int, int, int, int],
    parts: Mapping[tuple[int, int], np.ndarray] | None,
    source: tuple[Any, set[tuple[int, int]]] | None = None,
) -> np.ndarray:  # fmt: skip
    """The 2x-smaller pixels of ``lower[row0:row1, col0:col1]`` (``region``), chunk of
    ``lower`` by chunk: :func:`downsample` of it, or the part ``parts`` holds for it (by its
    pixel origin, already downsampled), or, with ``source = (level, lower_dirty)``, for a
    chunk whose block index is not in ``lower_dirty`` (so whose pixels are the source's own),
    the source's pyramid ``level`` there (one read for the whole region): the output's level
    then keeps the source's pixels wherever nothing was restored under them, as its copied
    chunks do. Chunk by chunk needs ``lower``'s chunk sides even (no 2x2 cell straddles two
    chunks); otherwise ``parts`` and ``source`` must be None."""
    box = Box(*region)
    if not parts and source is None:
        return downsample(np.asarray(lower[box.slices]))
    chunks = (int(lower.chunks[0]), int(lower.chunks[1]))
    shape = (int(lower.shape[0]), int(lower.shape[1]))
    out = np.empty((*_half(box).shape, *lower.shape[2:]), lower.dtype)
    from_source = None
    for chunk in chunk_boxes(shape, chunks, within=box):
        piece = chunk.intersection(box)
        assert piece is not None  # chunk_boxes(within=) yields overlapping chunks only
        part = parts.get((chunk.row0, chunk.col0)) if parts and piece == chunk else None
        if part is None and source is not None:
            level, lower_dirty = source
            if (chunk.row0 // chunks[0], chunk.col0 // chunks[1]) not in lower_dirty:
                if from_source is None:
                    from_source = np.asarray(level[_half(box).slices])
                part = from_source[_half(piece).slices_in(_half(box))]
        if part is None:
            part = downsample(np.asarray(lower[piece.slices]))
        out[_half(piece).slices_in(_half(box))] = part
    return out


def _half(box: Box) -> Box:
    """The pixels of the next pyramid level that :func:`downsample` makes from ``box``."""
    return Box(box.row0 // 2, (box.row1 + 1) // 2, box.col0 // 2, (box.col1 + 1) // 2)


def write_pyramid(
    group: Any, name: str, side: int = PYRAMID_SIDE, *, source_levels: Sequence[Any] = (),
    changed: Sequence[tuple[int, int, int, int]] | None = None, link: bool = False,
    parts: Mapping[tuple[int, int], np.ndarray] | None = None,
) -> int:  # fmt: skip
    """Write levels 1, 2, ... of ``group`` from level 0, one output chunk at a time, and the
    NGFF ``multiscales`` attributes (top level for NGFF 0.4 readers, under ``"ome"`` for 0.5)
    naming the image ``name``. Returns the number of levels, level 0 included.

    Args:
        group: the output group holding level ``"0"``.
        name: the image name in the metadata.
        side: levels are added until the long side is at most this.
        source_levels: the source's own levels 1, 2, ... (an OME-Zarr pyramid). Where one has
            this level's shape, the level takes its chunking and encoding, and every chunk
            that covers no ``changed`` box is copied from it as stored bytes instead of being
            computed: the cost then follows the restored area, not the scan's. A computed
            chunk, too, takes the source level's pixels over the lower chunks that no
            ``changed`` box touches (one read of the source instead of decoding and averaging
            up to four chunks).
        changed: level-0 boxes ``(row0, col0, row1, col1)`` whose pixels may differ from the
            source; None = compute every chunk.
        link: hard-link the reused chunks instead of copying them (:func:`check_linkable`).
        parts: :func:`downsample` of level-0 chunks, by the chunk's pixel origin ``(row,
            col)``, e.g. kept by the engine as it wrote them: level 1 takes them instead of
            reading and averaging those chunks again (then each level keeps its computed
            chunks' for the next). Used only where the lower level's chunk sides are even
            (then the pixels are the same either way); None: every level reads the one below.
    """
    writer = PyramidWriter(group, side, source_levels=source_levels, changed=changed, link=link)
    if parts:
        writer.keep(parts)
    return writer.finish(name)


#: Bytes of downsampled chunks a :class:`PyramidWriter` keeps for the level above.
PARTS_BYTES = 256 * 2**20


@dataclass
class _Level:
    """One pyramid level of a :class:`PyramidWriter` and what computing its chunks needs."""

    array: Any  # this level's output array
    lower: Any  # the output level below (level 0 for level 1)
    reuse: Any  # the source's own array of this shape, else None
    needed: set[tuple[int, int]] | None  # chunk blocks to compute (others copied); None: all
    lower_dirty: set[tuple[int, int]] | None  # lower blocks read from ``lower`` (the others
    # from ``reuse``: the source's pixels); None: every lower block is read from ``lower``
    even: bool  # the lower level's chunk sides are even: kept parts can stand in for chunks
    parts: dict[tuple[int, int], np.ndarray]  # downsampled lower chunks, by pixel origin
    pending: dict[tuple[int, int], int]  # needed block -> lower blocks it waits for
    claimed: set[tuple[int, int]]  # blocks computed or being computed
    store: Callable[[tuple[int, int], np.ndarray], None]  # writes a chunk: chunk_store(array)


class PyramidWriter:
    """Levels 1, 2, ... of an output ``group``, each computed chunk written as soon as the
    chunks below it are final: the engine reports each level-0 chunk it writes
    (:meth:`written`, from its I/O threads), so most of the pyramid is written while the method
    still runs; :meth:`finish` writes the rest (the chunks copied from the source's levels and
    those still waiting) and the NGFF metadata. :func:`write_pyramid` is a writer finished at
    once; the arguments are the same, and the pixels too, whatever the order of the writes.

    Args:
        group: the output group holding level ``"0"``; the levels are created (replacing any
            there) at once.
        side, source_levels, changed, link: as for :func:`write_pyramid`.
        final: the level-0 chunk blocks ``(row, col)`` already final (a resumed run's done
            chunks); None: all of them (level 0 is written).
        zstd_level: the zstd level of the chunks computed and written (:func:`zstd_writer`);
            None: the level the levels declare.
    """

    def __init__(
        self, group: Any, side: int = PYRAMID_SIDE, *, source_levels: Sequence[Any] = (),
        changed: Sequence[tuple[int, int, int, int]] | None = None, link: bool = False,
        final: set[tuple[int, int]] | None = None, zstd_level: int | None = None,
    ) -> None:  # fmt: skip
        import threading

        self._lock = threading.Lock()
        self._group = group
        self._link = link
        self._eager = final is not None
        self._room = PARTS_BYTES
        self._clean: int | None = None  # chunks copied by copy_clean, once it ran
        self.levels: list[_Level] = []
        previous = level_array(group, LEVEL0)
        chunks = tuple(previous.chunks)
        self._base = previous
        for level, shape in enumerate(pyramid_shapes(tuple(previous.shape), side), start=1):
            reuse = source_levels[level - 1] if level - 1 < len(source_levels) else None
            if reuse is not None and tuple(reuse.shape) != tuple(shape):
                reuse = None
            pairs = zip(chunks[:2], shape[:2], strict=True)
            layout = _level_layout(previous, shape, tuple(min(c, s) for c, s in pairs))
            encoding = new_encoding()
            if reuse is not None and max(reuse.chunks[:2]) <= MAX_CHUNK:  # its chunks, kept?
                reused = _level_layout(previous, shape, tuple(int(v) for v in reuse.chunks[:2]))
                kept = kept_encoding(reuse, stored_axes(previous), reused["chunks"])
                if kept is not None:
                    layout, encoding = reused, kept
            array = group.create_array(
                str(level), **layout, dtype=previous.dtype, overwrite=True,
                dimension_names=stored_axes(previous), config={"write_empty_chunks": True},
                **encoding,
            )  # fmt: skip
            if isinstance(previous, NgffAxesView):
                array = previous.with_array(array)
            array = zstd_writer(array, zstd_level)
            raw = reuse is not None and bytes_compatible(stored(reuse), stored(array))
            needed = _dirty_blocks(changed, level, tuple(array.chunks[:2]), shape) if raw else None
            even = all(int(v) % 2 == 0 for v in previous.chunks[:2])
            lower_dirty = None
            if needed is not None and even:  # the lower level's chunks that may differ
                lower_dirty = _dirty_blocks(changed, level - 1, tuple(previous.chunks[:2]),
                                            tuple(previous.shape))  # fmt: skip
            self.levels.append(_Level(array, previous, reuse, needed, lower_dirty, even, {},
                                      {}, set(), chunk_store(array)))  # fmt: skip
            previous = array
        for number, entry in enumerate(self.levels, start=1):
            done = final if number == 1 else set()
            blocks = [b for b, _ in _chunks(entry.array)] if entry.needed is None else entry.needed
            for block in blocks:
                waits = [child for child in self._children(entry, block)
                         if entry.lower_dirty is None or child in entry.lower_dirty]  # fmt: skip
                entry.pending[block] = sum(1 for child in waits if done is None or child
                                           not in done)  # fmt: skip

    def keep(self, parts: Mapping[tuple[int, int], np.ndarray]) -> None:
        """Take level 1's pixels over level-0 chunks, by the chunk's pixel origin: each the
        :func:`downsample` of that chunk (used only where level 0's chunk sides are even)."""
        if self.levels and self.levels[0].even:
            self.levels[0].parts.update(parts)

    def written(self, block: tuple[int, int], pixels: np.ndarray | None = None) -> None:
        """Level-0 chunk ``block`` ``(row, col)`` is final, with ``pixels`` when at hand (kept
        downsampled for level 1). Level-1 chunks waiting for nothing more are then computed
        and written in this thread, and so on up, until :meth:`finish` begins. Thread-safe."""
        self._final(0, block, pixels)

    def copy_clean(self) -> int:
        """Copy (or link) every chunk taken as stored from the source's levels, those over no
        ``changed`` box; they do not depend on level 0, so the engine copies them while it
        restores. Returns their number; :meth:`finish` copies them unless this ran."""
        copied = 0
        with ThreadPoolExecutor(PYRAMID_THREADS) as pool:
            for entry in self.levels:
                if entry.needed is None:
                    continue
                clean = [coords for block, _ in _chunks(entry.array) if block not in entry.needed
                         for coords in stored_chunks(entry.array, block)]  # fmt: skip
                copy = partial(copy_chunk_bytes, stored(entry.reuse), stored(entry.array),
                               link=self._link)  # fmt: skip
                list(pool.map(copy, clean))
                copied += len(clean)
        self._clean = copied
        return copied

    def finish(self, name: str) -> int:
        """Write every chunk not yet written (copied from the source's level, or computed),
        then the NGFF ``multiscales`` attributes (top level for NGFF 0.4 readers, under
        ``"ome"`` for 0.5) naming the image ``name``. Returns the number of levels, level 0
        included. Level 0 must be final."""
        self._eager = False
        copied = self.copy_clean() if self._clean is None else self._clean
        for number, entry in enumerate(self.levels, start=1):
            began = time.perf_counter()
            todo = [block for block, _ in _chunks(entry.array)
                    if (entry.needed is None or block in entry.needed)
                    and self._claim(entry, block)]  # fmt: skip
            with ThreadPoolExecutor(PYRAMID_THREADS) as pool:  # a level's chunks: independent
                list(pool.map(partial(self._compute, number), todo))
            logger.debug("pyramid level %d %s: %d chunks computed now, %.2f s", number,
                         entry.array.shape, len(todo), time.perf_counter() - began)  # fmt: skip
        write_multiscales(self._group, len(self.levels) + 1, name, stored_axes(self._base))
        logger.info("wrote a pyramid of %d levels (%d chunks copied from the source's)",
                    len(self.levels) + 1, copied)  # fmt: skip
        return len(self.levels) + 1

    def _children(self, entry: _Level, block: tuple[int, int]) -> list[tuple[int, int]]:
        """The blocks of ``entry.lower`` that the chunk ``block`` of ``entry`` averages."""
        region = _doubled(_block_box(entry.array, block), entry.lower.shape)
        return [lower for lower, _ in _chunks(entry.lower, region)]

    def _claim(self, entry: _Level, block: tuple[int, int]) -> bool:
        """Whether this caller is the one to compute ``block`` (each block is computed once)."""
        with self._lock:
            if block in entry.claimed:
                return False
            entry.claimed.add(block)
            return True

    def _final(self, number: int, block: tuple[int, int], pixels: np.ndarray | None) -> None:
        """Chunk ``block`` of level ``number`` is written: keep its downsampled ``pixels`` for
        the level above, and compute the chunks there that now wait for nothing."""
        if number >= len(self.levels):
            return
        entry = self.levels[number]
        box = _block_box(entry.lower, block)
        half = None
        if pixels is not None and entry.even and self._room > 0:
            half = downsample(pixels)
        ready = []
        with self._lock:
            if half is not None and self._room >= half.nbytes:
                entry.parts[(box.row0, box.col0)] = half
                self._room -= half.nbytes
            if entry.lower_dirty is None or block in entry.lower_dirty:
                for parent, _ in _chunks(entry.array, _half(box)):
                    if parent not in entry.pending:
                        continue
                    entry.pending[parent] -= 1
                    if entry.pending[parent] == 0 and self._eager and parent not in entry.claimed:
                        entry.claimed.add(parent)
                        ready.append(parent)
        for parent in ready:
            self._compute(number + 1, parent)

    def _compute(self, number: int, block: tuple[int, int]) -> None:
        """Average the chunk ``block`` of level ``number`` from the level below (kept parts,
        the source's level over lower chunks nothing restored, else the lower chunks), write
        it, and report it final."""
        entry = self.levels[number - 1]
        box = _block_box(entry.array, block)
        region = _doubled(box, entry.lower.shape)
        source = None if entry.lower_dirty is None else (entry.reuse, entry.lower_dirty)
        pixels = _halved(entry.lower, tuple(region), entry.parts if entry.even else None, source)
        entry.store(block, pixels)  # encoded in this thread where it can be (lower priority)
        with self._lock:  # the parts inside this chunk serve no other chunk: free them
            for _, chunk in _chunks(entry.lower, region):
                if chunk.intersection(region) == chunk:
                    part = entry.parts.pop((chunk.row0, chunk.col0), None)
                    self._room += 0 if part is None else part.nbytes
        self._final(number, block, pixels)


def _level_layout(
    below: Any, shape: tuple[int, ...], sides: tuple[int, int]
) -> dict[str, tuple[int, ...]]:
    """The stored ``shape`` and ``chunks`` (``create_array`` keywords) of a pyramid level
    ``shape`` ``(h, w[, C])`` chunked ``sides`` ``(y, x)`` over level ``below`` (stored in its
    axes)."""
    view_chunks = (*sides, *shape[2:])
    if isinstance(below, NgffAxesView):
        stored_shape, chunks = below.stored_level(shape, view_chunks)
    else:
        axes = stored_axes(below)
        stored_shape, chunks = _arranged(shape, axes), _arranged(view_chunks, axes)
    return {"shape": stored_shape, "chunks": chunks}


def _chunks(array: Any, within: Box | None = None) -> list[tuple[tuple[int, int], Box]]:
    """The chunks of ``array`` (all, or those sharing a pixel with ``within``), row by row:
    each one's block ``(row, col)`` and pixels (clipped at the array's edges)."""
    sides = (int(array.chunks[0]), int(array.chunks[1]))
    return [((box.row0 // sides[0], box.col0 // sides[1]), box)
            for box in chunk_boxes(tuple(array.shape[:2]), sides, within=within)]  # fmt: skip


def _doubled(box: Box, shape: tuple[int, ...]) -> Box:
    """The pixels of the level below that :func:`downsample` makes ``box`` from (the inverse
    of :func:`_half`), clipped to that level's ``shape``."""
    return Box(2 * box.row0, min(2 * box.row1, int(shape[0])), 2 * box.col0,
               min(2 * box.col1, int(shape[1])))  # fmt: skip


def _block_box(array: Any, block: tuple[int, int]) -> Box:
    """The pixels of chunk ``block`` of ``array`` (clipped at its edges)."""
    sides = (int(array.chunks[0]), int(array.chunks[1]))
    row0, col0 = block[0] * sides[0], block[1] * sides[1]
    return Box(row0, min(row0 + sides[0], int(array.shape[0])), col0,
               min(col0 + sides[1], int(array.shape[1])))  # fmt: skip
