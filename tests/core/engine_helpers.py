"""Test methods, stores and damage shared by ``tests/core/test_engine*.py``."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np
import zarr

from inpaint_core.io.pyramid import write_pyramid
from inpaint_core.io.store import level_array
from inpaint_core.method import InpaintMethod, MethodInfo

ROOT = Path(__file__).resolve().parents[2]
SHAPE = (256, 320)
CHUNK = 64


class LocalMean(InpaintMethod):
    """Each hole pixel: the mean of the known pixels of its 3x3 neighbourhood (0.5 if none).

    Purely local (radius 1 < margin 4), and the sum runs in a fixed order, so a tile gives
    bit-for-bit what the whole image gives at every pixel with its margin of context."""

    info = MethodInfo(
        name="local-mean", family="other", summary="3x3 masked mean", reference="test",
        preferred_tile=64, context_margin=4,
    )

    def run(self, image: np.ndarray, mask: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        known = np.pad(~mask, 1).astype(np.float64)
        values = np.pad(image.astype(np.float64), ((1, 1), (1, 1), (0, 0)))
        total = np.zeros(image.shape, dtype=np.float64)
        count = np.zeros(mask.shape, dtype=np.float64)
        rows, cols = mask.shape
        for dr in range(3):
            for dc in range(3):
                weight = known[dr : dr + rows, dc : dc + cols]
                total += values[dr : dr + rows, dc : dc + cols] * weight[..., None]
                count += weight
        mean = np.where(count[..., None] > 0, total / np.maximum(count, 1)[..., None], 0.5)
        return mean.astype(np.float32)


def write_store(path: Path, array: np.ndarray, chunks: tuple[int, ...], zarr_format: int = 3):
    store = zarr.create_array(
        str(path), shape=array.shape, chunks=chunks, dtype=array.dtype, zarr_format=zarr_format
    )
    store[...] = array
    return path


def small_holes(shape: tuple[int, int] = SHAPE) -> np.ndarray:
    """Blobs that each fit a 64 px tile with margin 4: at the corners, on the borders and
    across chunk lines (rows/cols 64, 128, ...)."""
    mask = np.zeros(shape, dtype=bool)
    for row, col, height, width in [
        (0, 0, 5, 7), (250, 313, 6, 7), (0, 150, 4, 20), (120, 0, 15, 3), (60, 60, 9, 9),
        (125, 190, 8, 12), (200, 315, 20, 5), (30, 250, 40, 6), (180, 100, 3, 50),
        (62, 126, 4, 5), (66, 132, 3, 4),
    ]:
        mask[row : row + height, col : col + width] = True
    return mask


def restored(path: Path, level: str = "0") -> np.ndarray:
    """Output ``level`` as ``(H, W[, C])`` (stored channel first)."""
    return level_array(zarr.open_group(str(path), mode="r"), level)[...]


def file_hashes(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def stop_after(polls: int) -> Any:
    """A ``should_stop`` that says True from its ``polls + 1``-th call on."""
    calls = iter(range(10_000))
    return lambda: next(calls) >= polls


def smooth_scene(tmp_path: Path) -> tuple[Path, Path, np.ndarray]:
    """A compressible (smooth, lightly noisy) OME-Zarr scan with small holes, and its mask."""
    rng = np.random.default_rng(2)
    ramp = np.add.outer(np.arange(SHAPE[0]), np.arange(SHAPE[1])) // 5
    image = (ramp[..., None] + rng.integers(0, 3, (*SHAPE, 3))).astype(np.uint8)
    mask = small_holes()
    scan = tmp_path / "smooth.zarr"
    group = zarr.open_group(str(scan), mode="w", zarr_format=3)
    group.create_array("0", data=image, chunks=(CHUNK, CHUNK, 3))
    write_pyramid(group, "smooth", side=100)
    return scan, write_store(tmp_path / "smooth-mask.zarr", mask, (CHUNK, CHUNK)), mask
