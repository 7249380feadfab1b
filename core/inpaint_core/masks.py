"""Hole masks for evaluating inpainting: the survey protocol's shapes and mural damage.

Every generator returns bool ``(H, W)`` (True = hole) covering a requested fraction of the
image to within one pixel: strokes, rectangles or cracks are drawn until the target is met and
the last one is cut off at exactly the missing pixel count. Random masks depend on the
``np.random.Generator`` only, so ``make_mask(kind, shape, ratio, seed)`` is reproducible.
Every mask holds at least one hole pixel and at least one known pixel. Every function raises
:class:`~inpaint_core.errors.InvalidInputError` for a shape that is not two positive ints or a
ratio outside (0, 1), naming the value.
"""

from __future__ import annotations

import math
from enum import Enum

import cv2
import numpy as np
from scipy.ndimage import distance_transform_edt
from scipy.signal import lfilter

from inpaint_core.arrays import is_integer
from inpaint_core.errors import InvalidInputError


class MaskKind(str, Enum):
    """The mask shapes :func:`make_mask` draws."""

    CENTRE = "centre"  # centred square (the closest rectangle if the area does not fit one)
    FREE_FORM = "free_form"  # random irregular strokes (the survey's "random region")
    RECTANGLES = "rectangles"  # several random axis-aligned rectangles
    CRACKS = "cracks"  # thin branching random-walk cracks like those on murals (1-3 px wide)


SURVEY_PROTOCOL: tuple[tuple[MaskKind, tuple[float, ...]], ...] = (
    (MaskKind.CENTRE, (0.10, 0.15, 0.20, 0.25)),
    (MaskKind.FREE_FORM, (0.10, 0.20, 0.30, 0.40)),
)
"""The survey's evaluation masks: each kind with the hole ratios it is scored at."""

# Draws that add no pixel in a row before the remaining pixels are grown from the holes'
# borders; only near-total coverage gets there (random strokes rarely hit the last gaps).
_MAX_IDLE_DRAWS = 64
# Stamps for crack widths 1-3 px; a plus, not a 3x3 square, keeps diagonals under 3 px.
_CRACK_STAMPS = {
    1: np.array([[0, 0]]),
    2: np.array([[0, 0], [0, 1], [1, 0], [1, 1]]),
    3: np.array([[0, 0], [-1, 0], [1, 0], [0, -1], [0, 1]]),
}


def _check_shape(shape: object) -> tuple[int, int]:
    values = tuple(shape) if isinstance(shape, (tuple, list)) else ()
    if len(values) != 2 or not all(is_integer(v) and v > 0 for v in values) or max(values) < 2:
        raise InvalidInputError(
            f"shape={shape!r} must be two positive ints (height, width), 2 pixels at least"
        )
    return int(values[0]), int(values[1])


def _check_ratio(ratio: object, name: str) -> float:
    number = isinstance(ratio, (float, np.floating)) or is_integer(ratio)
    if not number or not 0.0 < float(ratio) < 1.0:  # the comparison also refuses NaN
        raise InvalidInputError(f"{name}={ratio if number else repr(ratio)} must be in (0, 1)")
    return float(ratio)


class _Canvas:
    """A mask being drawn, with its hole count and the exact stop at ``target``."""

    def __init__(self, shape: object, coverage: object) -> None:
        self.mask = np.zeros(_check_shape(shape), dtype=bool)
        # Clipped so that every mask has a hole to fill and a known pixel to fill it from.
        size = self.mask.size
        self.target = min(max(round(_check_ratio(coverage, "coverage") * size), 1), size - 1)
        self.count = 0
        self.idle = 0

    @property
    def done(self) -> bool:
        return self.count >= self.target or self.idle >= _MAX_IDLE_DRAWS

    def add(self, pixels: np.ndarray) -> None:
        """Make the unique flat indices ``pixels`` holes in order, stopping at the target."""
        flat = self.mask.reshape(-1)
        new = pixels[~flat[pixels]][: self.target - self.count]
        flat[new] = True
        self.count += len(new)
        self.idle = 0 if len(new) else self.idle + 1

    def finish(self) -> np.ndarray:
        """Return the mask, growing the holes' borders if drawing stalled before the target."""
        missing = self.target - self.count
        if missing > 0:
            # Known pixels nearest a hole go first, so the holes swell instead of new specks.
            distance = distance_transform_edt(~self.mask)
            known = np.flatnonzero(~self.mask)
            order = np.argsort(distance.reshape(-1)[known], kind="stable")
            self.mask.reshape(-1)[known[order[:missing]]] = True
        return self.mask


def centre_mask(shape: tuple[int, int], ratio: float) -> np.ndarray:
    """Return bool ``(H, W)`` with a centred square hole of about ``ratio * H * W`` pixels.

    The side is ``round(sqrt(ratio * H * W))``. Where that square does not fit the short side,
    the hole spans the short side and its length along the long side is rounded to the area.
    A hole that would cover the image is made one row or column shorter.

    Raises:
        InvalidInputError: for a shape that is not two positive ints, or ``ratio`` outside (0, 1).
    """
    height, width = _check_shape(shape)
    area, ratio = height * width, _check_ratio(ratio, "ratio")
    side = max(round(math.sqrt(ratio * area)), 1)
    if side <= min(height, width):
        rows = cols = side
    elif height <= width:
        rows, cols = height, min(max(round(ratio * area / height), 1), width)
    else:
        rows, cols = min(max(round(ratio * area / width), 1), height), width
    if rows * cols == area:  # keep a known pixel: inpainting needs something to copy from
        rows, cols = (rows - 1, cols) if rows >= cols else (rows, cols - 1)
    mask = np.zeros((height, width), dtype=bool)
    top, left = (height - rows) // 2, (width - cols) // 2
    mask[top : top + rows, left : left + cols] = True
    return mask


def _stroke_pixels(
    scratch: np.ndarray, rng: np.random.Generator, height: int, width: int
) -> np.ndarray:
    """Draw one free-form stroke and return its flat pixel indices in drawing order."""
    side = min(height, width)
    segments = int(rng.integers(3, 12))
    headings = rng.uniform(0.0, 2 * np.pi) + np.cumsum(rng.uniform(-1.2, 1.2, segments))
    lengths = rng.uniform(0.05, 0.2, segments) * side
    steps = lengths[:, None] * np.stack([np.cos(headings), np.sin(headings)], axis=1)
    start = rng.uniform((0.0, 0.0), (width - 1.0, height - 1.0))
    points = start + np.concatenate([np.zeros((1, 2)), np.cumsum(steps, axis=0)])
    points = np.rint(np.clip(points, 0, (width - 1, height - 1))).astype(np.int64)
    brush = rng.uniform(0.03, 0.1) * side
    widths = np.maximum(np.rint(brush * rng.uniform(0.7, 1.3, segments)), 2).astype(int)
    # Drawn last to first, each segment labelled 1 + its index: where segments overlap the
    # earliest label wins, which orders the pixels along the stroke for the exact cut.
    for index in range(segments - 1, -1, -1):
        begin, end = tuple(points[index].tolist()), tuple(points[index + 1].tolist())
        cv2.line(scratch, begin, end, index + 1, int(widths[index]))
        cv2.circle(scratch, end, int(widths[index]) // 2, index + 1, -1)  # round joint
    cv2.circle(scratch, tuple(points[0].tolist()), int(widths[0]) // 2, 1, -1)
    reach = int(widths.max())
    x0, y0 = np.maximum(points.min(axis=0) - reach, 0)
    x1, y1 = points.max(axis=0) + reach + 1
    window = scratch[y0:y1, x0:x1]
    ys, xs = np.nonzero(window)
    segment = window[ys, xs] - 1
    window[...] = 0  # the scratch is shared by all strokes of the mask
    ys, xs = ys + y0, xs + x0
    # Within a segment, order by the projection onto it, so a cut crosses the stroke.
    origin, direction = points[segment], points[segment + 1] - points[segment]
    along = ((xs - origin[:, 0]) * direction[:, 0] + (ys - origin[:, 1]) * direction[:, 1]) / (
        np.maximum((direction**2).sum(axis=1), 1)
    )
    order = np.argsort(segment + 0.999 * np.clip(along, 0.0, 1.0), kind="stable")
    return (ys * width + xs)[order]


def free_form_mask(shape: tuple[int, int], coverage: float, rng: np.random.Generator) -> np.ndarray:
    """Return bool ``(H, W)`` of thick random strokes covering ``coverage`` of the image.

    Strokes follow Yu et al. (DeepFill v2) and Liu et al. (partial convolutions): 3-11 random
    segments joined with round joints, brush widths of 3-10 % of the short side varying per
    segment. The last stroke is cut across at the exact pixel count.
    """
    canvas = _Canvas(shape, coverage)
    height, width = canvas.mask.shape
    scratch = np.zeros((height, width), dtype=np.int32)
    while not canvas.done:
        canvas.add(_stroke_pixels(scratch, rng, height, width))
    return canvas.finish()


def rectangles_mask(
    shape: tuple[int, int], coverage: float, rng: np.random.Generator
) -> np.ndarray:
    """Return bool ``(H, W)`` of random axis-aligned rectangles covering ``coverage``.

    Rectangles are sized for 3-8 of them to meet the target, with aspect ratios in about
    [1/2, 2]; the last one keeps only its top rows (and part of one row) to hit the count.
    """
    canvas = _Canvas(shape, coverage)
    height, width = canvas.mask.shape
    mean_area = canvas.target / int(rng.integers(3, 9))
    while not canvas.done:
        area = mean_area * rng.uniform(0.5, 1.5)
        aspect = math.exp(rng.uniform(-0.7, 0.7))
        rows = min(max(round(math.sqrt(area * aspect)), 1), height)
        cols = min(max(round(area / rows), 1), width)
        top, left = int(rng.integers(0, height - rows + 1)), int(rng.integers(0, width - cols + 1))
        ys, xs = np.mgrid[top : top + rows, left : left + cols]
        canvas.add((ys * width + xs).reshape(-1))  # row-major: a cut leaves whole top rows
    return canvas.finish()


def _crack_paths(rng: np.random.Generator, height: int, width: int) -> list[tuple[np.ndarray, int]]:
    """Return one crack and its branches as ``(points (N, 2) row/col, width px)`` pairs."""
    start = rng.uniform((0.0, 0.0), (height - 1.0, width - 1.0))
    length = rng.uniform(0.25, 0.75) * max(height, width)
    thickness = int(rng.choice([1, 2, 3], p=[0.3, 0.4, 0.3]))
    queue = [(start, rng.uniform(0.0, 2 * np.pi), length, thickness, 0)]
    paths = []
    while queue:
        start, heading, length, thickness, depth = queue.pop(0)
        count = max(int(length / 0.5), 2)  # half-pixel steps leave no gaps once rounded
        # A slow bend with rare kinks, plus mean-reverting jitter: jagged but directional.
        kinks = np.where(rng.random(count) < 0.01, rng.normal(0.0, 0.6, count), 0.0)
        bend = np.cumsum(rng.normal(0.0, 0.02, count) + kinks)
        angles = heading + bend + lfilter([1.0], [1.0, -0.9], rng.normal(0.0, 0.12, count))
        points = start + 0.5 * np.cumsum(np.stack([np.sin(angles), np.cos(angles)], 1), 0)
        outside = (points < 0).any(axis=1) | (points > (height - 1, width - 1)).any(axis=1)
        points = np.concatenate(
            [start[None], points[: np.argmax(outside) if outside.any() else count]]
        )
        paths.append((points, thickness))
        for _ in range(rng.poisson(len(points) / 160) if depth < 2 else 0):
            at = int(rng.integers(len(points)))
            turn = rng.choice([-1.0, 1.0]) * rng.uniform(0.35, 1.0)
            branch = (points[at], angles[max(at - 1, 0)] + turn, length * rng.uniform(0.2, 0.5))
            queue.append((*branch, max(thickness - int(rng.integers(0, 2)), 1), depth + 1))
    return paths


def crack_mask(shape: tuple[int, int], coverage: float, rng: np.random.Generator) -> np.ndarray:
    """Return bool ``(H, W)`` of thin branching cracks covering ``coverage`` of the image.

    Each crack is a jagged random walk 1-3 px wide, a quarter to three quarters of the long
    side, with branches (up to two levels, no wider than their parent) splitting off at 20-57
    degrees, like the craquelure and fissures of damaged murals. The last crack stops at the
    exact pixel count.
    """
    canvas = _Canvas(shape, coverage)
    height, width = canvas.mask.shape
    while not canvas.done:
        for points, thickness in _crack_paths(rng, height, width):
            cells = np.rint(points).astype(np.int64)[:, None] + _CRACK_STAMPS[thickness]
            cells = cells.reshape(-1, 2)  # point-major, so drawing order survives
            inside = (cells >= 0).all(axis=1) & (cells < (height, width)).all(axis=1)
            flat = cells[inside, 0] * width + cells[inside, 1]
            _, first = np.unique(flat, return_index=True)
            canvas.add(flat[np.sort(first)])
            if canvas.done:
                break
    return canvas.finish()


def make_mask(kind: MaskKind | str, shape: tuple[int, int], ratio: float, seed: int) -> np.ndarray:
    """Return the bool ``(H, W)`` mask of ``kind`` covering ``ratio``, reproducible from ``seed``.

    ``seed`` (a non-negative int) seeds ``np.random.default_rng``; the centre mask ignores it.

    Raises:
        InvalidInputError: for an unknown kind (listing the valid ones), a bad shape, a ratio
            outside (0, 1) or a bad seed.
    """
    try:
        kind = MaskKind(kind)
    except ValueError:
        valid = ", ".join(member.value for member in MaskKind)
        raise InvalidInputError(f"unknown mask kind {kind!r}; valid kinds: {valid}") from None
    _check_ratio(ratio, "ratio")  # named as the caller knows it, not as "coverage"
    if not is_integer(seed) or seed < 0:
        raise InvalidInputError(f"seed={seed!r} must be a non-negative int")
    if kind is MaskKind.CENTRE:
        return centre_mask(shape, ratio)
    draw = {
        MaskKind.FREE_FORM: free_form_mask,
        MaskKind.RECTANGLES: rectangles_mask,
        MaskKind.CRACKS: crack_mask,
    }[kind]
    return draw(shape, ratio, np.random.default_rng(int(seed)))
