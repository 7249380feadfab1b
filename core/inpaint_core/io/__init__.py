"""Reading and writing images and masks."""

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

__all__ = [
    "READ_SUFFIXES",
    "WRITE_SUFFIXES",
    "check_output_path",
    "find_images",
    "read_colour",
    "read_image",
    "read_mask",
    "write_image",
]
