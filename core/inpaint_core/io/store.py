"""The restored store: created new, reopened to resume, its levels and NGFF metadata.

The output is always a **new** zarr v3 group::

    OUT.zarr/0          the restored scan: the source's shape, dtype and chunking, stored in
                        NGFF's axis order (``c, y, x``; ``y, x`` for grey; a channel-first
                        OME-Zarr's own axes) with those ``dimension_names``
    OUT.zarr/1, 2, ...  2x area-averaged levels (:mod:`inpaint_core.io.pyramid`)
    OUT.zarr/.progress  uint8 (chunk rows, chunk cols), 1 = that level-0 chunk is written
                        (:mod:`inpaint_core.io.marks`)
    attributes          NGFF 0.5 "multiscales" and "omero" under "ome" (and at the top level
                        for 0.4 readers), and "inpaint" provenance: method, parameters,
                        weights sha256, mask, settings

A valid OME-Zarr (NGFF 0.5) whatever the scan; read back as ``(H, W[, C])`` by
:func:`~inpaint_core.io.inputs.open_scan`.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import zarr

from inpaint_core.errors import ImageIOError, OutputExistsError
from inpaint_core.io.axes import PLAIN_AXES, NgffAxesView
from inpaint_core.io.inputs import axis_names
from inpaint_core.io.layout import output_chunks, output_layout

LEVEL0 = "0"
PROGRESS = ".progress"

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


#: Display colours of an RGB(A) scan's channels, and the label of each.
CHANNEL_COLOURS = (("red", "FF0000"), ("green", "00FF00"), ("blue", "0000FF"),
                   ("alpha", "FFFFFF"))


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
    }


def create_output(
    path: Path, source: Any, provenance: dict[str, Any], omero: Mapping[str, Any] | None = None,
    name: str | None = None,
) -> Any:
    """Create the output group at ``path`` (a new zarr v3 store): level ``"0"`` in the
    :func:`output_layout` of ``source`` (its shape and dtype; NGFF axes, written as the
    array's ``dimension_names`` and in the ``multiscales`` attributes), the progress array,
    and the attributes ``{"inpaint": provenance}``; with a channel axis, the NGFF ``omero``
    rendering metadata too: ``omero`` (the scan's), else :func:`channel_rendering`. ``name``:
    the image's name in the ``multiscales`` (default ``path``'s stem). Returns the
    ``zarr.Group``."""

    group = zarr.open_group(str(path), mode="w-", zarr_format=3)
    layout = output_layout(source)
    group.create_array(LEVEL0, shape=layout.shape, chunks=layout.chunks, dtype=source.dtype,
                       dimension_names=layout.axes, **layout.encoding)
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


def open_output(path: Path) -> Any:
    """Open an existing output group for resuming, or raise naming what is wrong with it."""

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
