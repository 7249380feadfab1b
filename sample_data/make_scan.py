"""Make a large synthetic damaged "mural" scan as zarr, chunk by chunk, with its damage mask.

    python sample_data/make_scan.py [--size 8192] [--out sample_data/mural] [--chunk 1024]
        [--seed 2026] [--damage 0.02] [--pyramid] [--overwrite]

Writes two zarr v3 arrays: ``OUT/scan.zarr`` (uint8 ``(size, size, 3)``) and ``OUT/mask.zarr``
(bool ``(size, size)``, True = damaged), both chunked ``(chunk, chunk)``. With ``--pyramid``,
``OUT/scan.zarr`` is an OME-Zarr group instead: level ``0`` plus a 2x mean pyramid, as scanning
pipelines deliver them (``inpaint restore`` then reuses the pyramid's intact chunks).

The painting is a smooth field of pigment regions (a small random colour field, upsampled) with
brush-stroke grain from a seamless periodic texture; the damage is long thin cracks (random
walks that keep a drifting heading, 1-3 px wide) and flaking losses (irregular blobs), painted
in a plaster colour exactly where the mask is True. ``--damage`` is the target damaged fraction
(cracks and losses together, approximately). Every chunk is computed from global coordinates, so
chunks agree at their borders and memory stays at a few chunks whatever ``--size`` is (32768 for
benchmarks).
"""

from __future__ import annotations

import argparse
import math
import shutil
from pathlib import Path

import numpy as np

PLASTER = np.array([222, 214, 196], dtype=np.uint8)
GRAIN_TILE = 512
#: Pixels of the scan per cell of the low-resolution colour field.
FIELD_CELL = 96
CRACK_STEP = 6


def grain_tile(rng: np.random.Generator) -> np.ndarray:
    """float32 ``(512, 512)`` in about [-1, 1]: periodic band-passed noise (seamless when tiled)."""
    noise = rng.standard_normal((GRAIN_TILE, GRAIN_TILE))
    freq_y = np.fft.fftfreq(GRAIN_TILE)[:, None]
    freq_x = np.fft.fftfreq(GRAIN_TILE)[None, :]
    # Elongated band-pass: strokes run roughly diagonally.
    radius = np.hypot(freq_y * 1.0, (freq_x + 0.6 * freq_y) * 3.0)
    band = np.exp(-(((radius - 0.06) / 0.05) ** 2))
    grain = np.real(np.fft.ifft2(np.fft.fft2(noise) * band))
    return (grain / (3 * grain.std())).astype(np.float32)


def colour_field(size: int, rng: np.random.Generator) -> np.ndarray:
    """float32 ``(n, n, 3)`` in [0, 1]: pigment colours on a coarse grid, smoothed."""
    from scipy import ndimage

    cells = math.ceil(size / FIELD_CELL) + 2
    palette = np.array(
        [[0.55, 0.23, 0.15], [0.20, 0.35, 0.45], [0.72, 0.58, 0.30], [0.25, 0.40, 0.28],
         [0.80, 0.72, 0.58], [0.35, 0.18, 0.12], [0.60, 0.45, 0.40]], dtype=np.float32,
    )  # fmt: skip
    labels = ndimage.zoom(rng.integers(0, len(palette), (cells // 4 + 2,) * 2), 4, order=0)
    field = palette[labels[:cells, :cells]]
    field = ndimage.gaussian_filter(field, sigma=(1.0, 1.0, 0))
    return np.clip(field + rng.normal(0, 0.03, field.shape), 0, 1).astype(np.float32)


def painting(field: np.ndarray, grain: np.ndarray, rows: slice, cols: slice) -> np.ndarray:
    """uint8 ``(h, w, 3)``: the undamaged painting in the window ``rows`` x ``cols``."""
    y = np.arange(rows.start, rows.stop, dtype=np.float32)
    x = np.arange(cols.start, cols.stop, dtype=np.float32)
    fy, fx = y / FIELD_CELL, x / FIELD_CELL
    y0, x0 = np.floor(fy).astype(int), np.floor(fx).astype(int)
    wy, wx = (fy - y0)[:, None, None], (fx - x0)[None, :, None]
    base = (
        field[y0][:, x0] * (1 - wy) * (1 - wx) + field[y0 + 1][:, x0] * wy * (1 - wx)
        + field[y0][:, x0 + 1] * (1 - wy) * wx + field[y0 + 1][:, x0 + 1] * wy * wx
    )  # fmt: skip
    texture = grain[np.ix_(y.astype(int) % GRAIN_TILE, x.astype(int) % GRAIN_TILE)]
    shade = 1.0 + 0.18 * texture[:, :, None]
    return np.clip(base * shade * 255, 0, 255).astype(np.uint8)


def damage_shapes(size: int, fraction: float, rng: np.random.Generator) -> tuple[list, list]:
    """Cracks ``[(points (K, 2) float, width)]`` and losses ``[(points (K, 2) int32)]``."""
    area = size * size * fraction
    cracks, losses = [], []
    covered = 0.0
    while covered < 0.6 * area:  # ~60 % of the damage is cracks
        length = int(rng.integers(200, 1500))
        width = int(rng.integers(1, 4))
        heading = rng.uniform(0, 2 * math.pi)
        point = rng.uniform(0, size, 2)
        points = [point.copy()]
        for _ in range(length // CRACK_STEP):
            heading += rng.normal(0, 0.35)
            point = point + CRACK_STEP * np.array([math.sin(heading), math.cos(heading)])
            points.append(point.copy())
        cracks.append((np.array(points), width))
        covered += length * (width + 1)
    while covered < area:
        radius = rng.uniform(8, 60)
        centre = rng.uniform(0, size, 2)
        angles = np.linspace(0, 2 * math.pi, 24, endpoint=False)
        radii = radius * np.exp(rng.normal(0, 0.25, angles.size))
        outline = np.stack([centre[0] + radii * np.sin(angles),
                            centre[1] + radii * np.cos(angles)], axis=1)  # fmt: skip
        losses.append(np.rint(outline).astype(np.int32))
        covered += math.pi * radius**2
    return cracks, losses


def damage_window(cracks: list, losses: list, rows: slice, cols: slice) -> np.ndarray:
    """bool ``(h, w)``: the damage shapes rasterised in the window (global coordinates)."""
    import cv2

    height, width = rows.stop - rows.start, cols.stop - cols.start
    canvas = np.zeros((height, width), dtype=np.uint8)
    offset = np.array([rows.start, cols.start])
    margin = 80
    for points, thickness in cracks:
        local = points - offset
        if (local.max(axis=0) < -margin).any() or (local.min(axis=0) > [height + margin,
                                                                      width + margin]).any():
            continue  # fmt: skip
        xy = np.rint(local[:, ::-1]).astype(np.int32)
        cv2.polylines(canvas, [xy], False, 1, thickness=int(thickness))
    for outline in losses:
        local = outline - offset
        if (local.max(axis=0) < 0).any() or (local.min(axis=0) >= [height, width]).any():
            continue
        cv2.fillPoly(canvas, [local[:, ::-1].astype(np.int32)], 1)
    return canvas.astype(bool)


def main() -> None:
    import zarr

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", type=int, default=8192)
    parser.add_argument("--chunk", type=int, default=1024)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "mural")
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--damage", type=float, default=0.02)
    parser.add_argument("--pyramid", action="store_true", help="write an OME-Zarr pyramid")
    parser.add_argument("--overwrite", action="store_true")
    args = parser.parse_args()
    if args.out.exists():
        if not args.overwrite:
            raise SystemExit(f"{args.out} exists; pass --overwrite to replace it")
        shutil.rmtree(args.out)
    rng = np.random.default_rng(args.seed)
    grain, field = grain_tile(rng), colour_field(args.size, rng)
    cracks, losses = damage_shapes(args.size, args.damage, rng)
    shape = (args.size, args.size)
    if args.pyramid:
        group = zarr.open_group(str(args.out / "scan.zarr"), mode="w-")
        scan = group.create_array("0", shape=(*shape, 3), chunks=(args.chunk, args.chunk, 3),
                                  dtype="uint8")  # fmt: skip
    else:
        scan = zarr.create_array(store=str(args.out / "scan.zarr"), shape=(*shape, 3),
                                 chunks=(args.chunk, args.chunk, 3), dtype="uint8")  # fmt: skip
    mask = zarr.create_array(store=str(args.out / "mask.zarr"), shape=shape,
                             chunks=(args.chunk, args.chunk), dtype="bool")  # fmt: skip
    damaged = 0
    for row in range(0, args.size, args.chunk):
        for col in range(0, args.size, args.chunk):
            rows = slice(row, min(row + args.chunk, args.size))
            cols = slice(col, min(col + args.chunk, args.size))
            picture = painting(field, grain, rows, cols)
            hole = damage_window(cracks, losses, rows, cols)
            picture[hole] = PLASTER
            scan[rows, cols] = picture
            mask[rows, cols] = hole
            damaged += int(hole.sum())
    if args.pyramid:
        from inpaint_core.io.scans import write_pyramid

        write_pyramid(group, "mural")
    print(f"wrote {args.out}/scan.zarr and mask.zarr ({args.size}x{args.size}, "
          f"{100 * damaged / args.size**2:.2f}% damaged, {len(cracks)} cracks, "
          f"{len(losses)} losses)")  # fmt: skip


if __name__ == "__main__":
    main()
