"""Masks and a recording mask shared by ``tests/core/test_tiling*.py``."""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from inpaint_core.tiling import Box


def _random_mask(shape: tuple[int, int], seed: int) -> np.ndarray:
    """Blobs of many sizes, a long crack and single pixels: bool ``shape``."""
    rng = np.random.default_rng(seed)
    mask = rng.random(shape) < 0.002
    mask = ndimage.binary_dilation(mask, iterations=int(rng.integers(1, 4)))
    mask |= rng.random(shape) < 0.001
    rows = np.linspace(0, shape[0] - 1, 4 * shape[0]).astype(int)
    cols = (np.linspace(0.1, 0.9, rows.size) * shape[1]).astype(int)
    mask[rows, cols] = True
    return mask


def _whole_mask_boxes(mask: np.ndarray) -> list[Box]:
    labels, _ = ndimage.label(mask, structure=np.ones((3, 3)))
    boxes = [Box(r.start, r.stop, c.start, c.stop) for r, c in ndimage.find_objects(labels)]
    return sorted(boxes, key=lambda b: (b.row0, b.col0, b.row1, b.col1))
