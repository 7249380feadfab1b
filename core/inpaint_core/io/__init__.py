"""Reading and writing images and masks; large scans lazily.

- :mod:`~inpaint_core.io.images`: whole images and masks (PNG, TIFF, JPEG, BMP).
- :mod:`~inpaint_core.io.inputs`: a scan and its mask opened lazily (zarr, OME-Zarr, TIFF).
- :mod:`~inpaint_core.io.axes`, :mod:`~inpaint_core.io.layout`: how a level's axes, chunks and
  codecs are stored.
- :mod:`~inpaint_core.io.store`: the restored store, created or reopened.
- :mod:`~inpaint_core.io.chunks`: chunks copied or linked as stored bytes; the direct chunk
  reader and writer.
- :mod:`~inpaint_core.io.marks`: the progress marks a resumed run reads.
- :mod:`~inpaint_core.io.pyramid`: the output's 2x levels.
"""

from __future__ import annotations

from typing import Any

from inpaint_core.io.images import (
    READ_SUFFIXES,
    WRITE_SUFFIXES,
    check_output_path,
    find_images,
    read_colour,
    read_image,
    read_mask,
    write_image,
)

#: Names served by :mod:`inpaint_core.io.inputs`, imported on first use: that module imports
#: zarr (about 0.2 s), which reading a PNG with :func:`read_image` never needs.
_SCAN_NAMES = ("ScanSource", "open_mask", "open_scan")


def __getattr__(name: str) -> Any:
    if name in _SCAN_NAMES:
        from inpaint_core.io import inputs

        return getattr(inputs, name)
    raise AttributeError(f"module 'inpaint_core.io' has no attribute {name!r}")


__all__ = [
    "READ_SUFFIXES",
    "WRITE_SUFFIXES",
    "ScanSource",
    "check_output_path",
    "find_images",
    "open_mask",
    "open_scan",
    "read_colour",
    "read_image",
    "read_mask",
    "write_image",
]
