"""A synthetic damaged "mural", computed window by window from global coordinates.

The painting is a smooth field of pigment regions (a small random colour field, upsampled) with
brush-stroke grain from a seamless periodic texture; the damage is long thin cracks (random
walks that keep a drifting heading, 1-3 px wide) and flaking losses (irregular blobs), painted
in :data:`PLASTER` where the mask is True. Any window of the scan can be computed on its own and
agrees with its neighbours at the borders, so scans of any size are made in bounded memory.
Used by ``sample_data/make_scan.py`` (zarr scans for the demo and benchmarks) and by the napari
plugin's mural sample.

Example::

    rng = np.random.default_rng(2026)
    grain, field = grain_tile(rng), colour_field(2048, rng)
    cracks, losses = damage_shapes(2048, 0.02, rng)
    window = slice(0, 2048)
    picture = painting(field, grain, window, window)  # uint8 (2048, 2048, 3)
    hole = damage_window(cracks, losses, window, window)  # bool (2048, 2048)
    picture[hole] = PLASTER
"""

from __future__ import annotations

import math

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
    )
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
    )
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
                            centre[1] + radii * np.cos(angles)], axis=1)
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
            continue
        xy = np.rint(local[:, ::-1]).astype(np.int32)
        cv2.polylines(canvas, [xy], False, 1, thickness=int(thickness))
    for outline in losses:
        local = outline - offset
        if (local.max(axis=0) < 0).any() or (local.min(axis=0) >= [height, width]).any():
            continue
        cv2.fillPoly(canvas, [local[:, ::-1].astype(np.int32)], 1)
    return canvas.astype(bool)
