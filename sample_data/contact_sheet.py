"""Write a before/after contact sheet: damaged | mask | restored, side by side, as one PNG.

    python sample_data/contact_sheet.py DAMAGED MASK RESTORED --output SHEET.png [--overwrite]

The three images must have the same height and width. Each panel is shown as 8-bit RGB: a
grey image is repeated over three channels, a 16-bit or float image is scaled to 0-255
(uint16 by 257, float in [0, 1] by 255), an alpha channel is dropped. The mask panel is white
where the mask is a hole (any non-zero value or colour channel) and black elsewhere. Panels
are separated by a white gap of ``--gap`` pixels. Uses only NumPy and the project's own image
reader and writer (OpenCV), so it needs none of the optional extras.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from inpaint_core.errors import InpaintError
from inpaint_core.io import read_image, read_mask, write_image


def as_rgb8(image: np.ndarray) -> np.ndarray:
    """``(H, W)`` or ``(H, W, C)`` image (uint8, uint16 or float in [0, 1]) -> ``(H, W, 3)`` uint8.

    Raises:
        ValueError: an unsupported dtype or channel count, naming it.
    """
    if image.ndim == 2:
        image = image[:, :, None]
    if image.ndim != 3 or image.shape[2] not in (1, 3, 4):
        raise ValueError(f"cannot show an image of shape {image.shape}: expected (H, W[, 1|3|4])")
    image = image[:, :, :3]
    if image.shape[2] == 1:
        image = np.repeat(image, 3, axis=2)
    if image.dtype == np.uint8:
        return image
    if image.dtype == np.uint16:
        return (image // 257).astype(np.uint8)
    if image.dtype.kind == "f":
        return np.round(np.clip(image, 0.0, 1.0) * 255.0).astype(np.uint8)
    raise ValueError(f"cannot show {image.dtype} pixels: expected uint8, uint16 or float")


def contact_sheet(
    damaged: np.ndarray, mask: np.ndarray, restored: np.ndarray, gap: int = 4
) -> np.ndarray:
    """Panels side by side: ``damaged | mask | restored``, white gaps between them.

    Args:
        damaged: ``(H, W)`` or ``(H, W, C)`` image, uint8, uint16 or float in [0, 1].
        mask: ``(H, W)`` bool or integer labels, non-zero = hole.
        restored: the restored image, same ``(H, W)`` as ``damaged``.
        gap: white pixels between panels, >= 0.

    Returns:
        ``(H, 3 * W + 2 * gap, 3)`` uint8.

    Raises:
        ValueError: the three sizes differ, or a negative gap (naming the values).
    """
    if gap < 0:
        raise ValueError(f"gap={gap} must be >= 0")
    size = damaged.shape[:2]
    for name, array in (("mask", mask), ("restored", restored)):
        if array.shape[:2] != size:
            raise ValueError(f"{name} is {array.shape[:2]}, the damaged image {size}")
    holes = np.where(mask[:, :, None] != 0, np.uint8(255), np.uint8(0)).repeat(3, axis=2)
    spacer = np.full((size[0], gap, 3), 255, dtype=np.uint8)
    panels = [as_rgb8(damaged), spacer, holes, spacer, as_rgb8(restored)]
    return np.concatenate(panels, axis=1)


def main(argv: list[str] | None = None) -> int:
    """Command line entry point; returns the exit status (2 on a bad input)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("damaged", type=Path)
    parser.add_argument("mask", type=Path)
    parser.add_argument("restored", type=Path)
    parser.add_argument("--output", type=Path, required=True, help="a .png file")
    parser.add_argument("--gap", type=int, default=4, help="white pixels between panels")
    parser.add_argument("--overwrite", action="store_true")
    args = parser.parse_args(argv)
    try:
        sheet = contact_sheet(
            read_image(args.damaged), read_mask(args.mask), read_image(args.restored), args.gap
        )
        inputs = (args.damaged, args.mask, args.restored)
        write_image(args.output, sheet, inputs=inputs, overwrite=args.overwrite)
    except (InpaintError, ValueError) as error:
        print(f"contact_sheet.py: error: {error}", file=sys.stderr)
        return 2
    print(f"wrote {args.output} ({sheet.shape[1]} x {sheet.shape[0]}: damaged | mask | restored)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
