"""Reading and writing images and masks; large scans lazily (:mod:`inpaint_core.io.scans`)."""

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
from inpaint_core.io.scans import ScanSource, open_mask, open_scan

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
