"""Training datasets: random crops of an image folder, and damage-free patches of one scan.

Every dataset yields dicts ``{"image": float32 (3, S, S) in [0, 1], "mask": float32 (1, S, S)}``
with 1 = hole in the mask (the tensor contract of CONVENTIONS rule 9, without the batch axis).
Grey sources are replicated to three channels, alpha is dropped, and uint8/uint16 are divided by
their dtype's maximum. An item depends only on ``(seed, epoch, index)``: the generator is
``np.random.default_rng((seed, epoch, index))``, so worker processes agree with each other and
:meth:`set_epoch` gives fresh crops and masks every epoch.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from skimage.transform import resize
from torch.utils.data import Dataset

from inpaint_core.arrays import (
    SUPPORTED_CHANNELS,
    SUPPORTED_DTYPES,
    check_image,
    is_integer,
    to_float_colour,
)
from inpaint_core.errors import InvalidInputError
from inpaint_core.io.images import find_images, read_colour
from inpaint_core.masks import MaskKind, make_mask
from inpaint_core.tiling.regions import damage_grid

Sample = dict[str, torch.Tensor]

# Cracks are thin: a large crack ratio paints the whole image, so their ratio is capped.
CRACKS_MAX_RATIO = 0.15
# Damage cells per patch side: the coarse grid's cell is ``size // CELLS_PER_PATCH`` pixels.
CELLS_PER_PATCH = 4


def _check_size(size: object) -> int:
    if not is_integer(size) or int(size) < 4:
        raise InvalidInputError(f"size={size!r} must be an int >= 4 (the patch side in pixels)")
    return int(size)


def _check_seed(seed: object) -> int:
    if not is_integer(seed) or int(seed) < 0:
        raise InvalidInputError(f"seed={seed!r} must be a non-negative int")
    return int(seed)


def _check_epoch(epoch: object) -> int:
    if not is_integer(epoch) or int(epoch) < 0:
        raise InvalidInputError(f"epoch={epoch!r} must be a non-negative int")
    return int(epoch)


def _check_index(index: object, length: int) -> int:
    if not is_integer(index):
        raise TypeError(f"dataset index must be an int, not {type(index).__name__}")
    value = int(index)
    if value < 0:
        value += length
    if not 0 <= value < length:
        raise IndexError(f"index {index} is out of range for a dataset of {length} items")
    return value


def _to_sample(colour: np.ndarray, hole: np.ndarray) -> Sample:
    """Turn float ``(S, S, C)`` (C in {1, 3}) and bool ``(S, S)`` into the sample dict."""
    if colour.shape[2] == 1:
        colour = np.repeat(colour, 3, axis=2)
    chw = np.ascontiguousarray(np.clip(colour, 0.0, 1.0).transpose(2, 0, 1), dtype=np.float32)
    return {
        "image": torch.from_numpy(chw),
        "mask": torch.from_numpy(hole.astype(np.float32)[np.newaxis]),
    }


@dataclass(frozen=True)
class MaskMix:
    """Which hole masks training draws: kinds with their probabilities, and the hole ratio.

    Attributes:
        kinds: ``(kind, probability)`` pairs; kinds are :class:`~inpaint_core.masks.MaskKind`
            values, probabilities positive weights (normalised to sum to 1 on construction).
        ratio_range: ``(low, high)`` with ``0 < low <= high < 1``: the hole ratio is uniform in
            it (cracks use ``min(ratio, 0.15)``).
    """

    kinds: tuple[tuple[str, float], ...] = (
        ("free_form", 0.5),
        ("centre", 0.1),
        ("rectangles", 0.15),
        ("cracks", 0.25),
    )
    ratio_range: tuple[float, float] = (0.05, 0.4)

    def __post_init__(self) -> None:
        entries = tuple(self.kinds) if isinstance(self.kinds, (tuple, list)) else None
        if not entries:
            raise InvalidInputError(
                f"kinds={self.kinds!r} must be a non-empty sequence of (kind, probability) pairs"
            )
        valid = ", ".join(member.value for member in MaskKind)
        names: list[str] = []
        weights: list[float] = []
        for entry in entries:
            if not isinstance(entry, (tuple, list)) or len(entry) != 2:
                raise InvalidInputError(
                    f"mask kind entry {entry!r} must be a (kind, probability) pair"
                )
            kind, weight = entry
            try:
                name = MaskKind(kind).value
            except ValueError:
                raise InvalidInputError(
                    f"unknown mask kind {kind!r}; valid kinds: {valid}"
                ) from None
            if name in names:
                raise InvalidInputError(f"mask kind {name!r} is listed twice in kinds; list once")
            number = isinstance(weight, (float, np.floating)) or is_integer(weight)
            if not number or not math.isfinite(float(weight)) or float(weight) <= 0.0:
                raise InvalidInputError(
                    f"probability {weight!r} of mask kind {name!r} must be a finite number > 0"
                )
            names.append(name)
            weights.append(float(weight))
        total = sum(weights)
        normalised = tuple(
            (name, weight / total) for name, weight in zip(names, weights, strict=True)
        )
        object.__setattr__(self, "kinds", normalised)

        bounds = self.ratio_range
        pair = isinstance(bounds, (tuple, list)) and len(bounds) == 2
        numbers = pair and all(isinstance(v, (float, np.floating)) or is_integer(v) for v in bounds)
        if not numbers or not 0.0 < float(bounds[0]) <= float(bounds[1]) < 1.0:
            raise InvalidInputError(
                f"ratio_range={bounds!r} must be (low, high) with 0 < low <= high < 1"
            )
        object.__setattr__(self, "ratio_range", (float(bounds[0]), float(bounds[1])))

    @property
    def probabilities(self) -> np.ndarray:
        """The normalised probabilities, in the order of :attr:`kinds`."""
        return np.array([weight for _, weight in self.kinds])

    def sample(self, shape: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
        """Draw a kind, a ratio and a seed from ``rng`` and return the bool ``(H, W)`` hole mask."""
        choice = int(rng.choice(len(self.kinds), p=self.probabilities))
        kind = MaskKind(self.kinds[choice][0])
        ratio = float(rng.uniform(*self.ratio_range))
        if kind is MaskKind.CRACKS:
            ratio = min(ratio, CRACKS_MAX_RATIO)
        seed = int(rng.integers(0, 2**32))
        return make_mask(kind, shape, ratio, seed)


class FolderDataset(Dataset[Sample]):
    """Random multi-scale square crops of every image under a folder, each with a hole mask.

    Args:
        root: the folder; every file below it (recursively) with a suffix in
            :data:`~inpaint_core.io.images.READ_SUFFIXES` is used, in sorted order.
        size: the side ``S`` of the samples in pixels.
        masks: the hole masks to draw.
        seed: the base seed; an item depends on ``(seed, epoch, index)`` only.
        scale_range: ``(low, high)`` in (0, 1]: the crop side is ``scale * min(H, W)`` for a
            uniform scale in it, but at least ``size`` (smaller images are upscaled).
        flip: flip half the crops left-right.

    Images are read when an item is asked for; none is kept in memory.

    Raises:
        InvalidInputError: for a missing folder, one with no images (naming the suffixes) or a
            bad parameter. Reading an item raises ``read_image``'s error with the file's path.
    """

    def __init__(
        self,
        root: str | os.PathLike[str],
        size: int = 256,
        masks: MaskMix | None = None,
        seed: int = 0,
        scale_range: tuple[float, float] = (0.5, 1.0),
        flip: bool = True,
    ) -> None:
        self.root = Path(root)
        self.paths = find_images(self.root, "training folder")
        self.size = _check_size(size)
        self.masks = MaskMix() if masks is None else masks
        if not isinstance(self.masks, MaskMix):
            raise InvalidInputError(f"masks={masks!r} must be a MaskMix")
        self.seed = _check_seed(seed)
        pair = isinstance(scale_range, (tuple, list)) and len(scale_range) == 2
        if (
            not pair
            or not all(isinstance(v, (float, np.floating)) or is_integer(v) for v in scale_range)
            or not 0.0 < float(scale_range[0]) <= float(scale_range[1]) <= 1.0
        ):
            raise InvalidInputError(
                f"scale_range={scale_range!r} must be (low, high) with 0 < low <= high <= 1"
            )
        self.scale_range = (float(scale_range[0]), float(scale_range[1]))
        self.flip = bool(flip)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Use ``epoch``'s crops and masks from now on (call it before each epoch)."""
        self.epoch = _check_epoch(epoch)

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> Sample:
        index = _check_index(index, len(self))
        path = self.paths[index]
        colour = read_colour(path)
        rng = np.random.default_rng((self.seed, self.epoch, index))

        height, width = colour.shape[:2]
        short = min(height, width)
        scale = float(rng.uniform(*self.scale_range))
        side = min(max(round(scale * short), self.size), short)
        top = int(rng.integers(0, height - side + 1))
        left = int(rng.integers(0, width - side + 1))
        crop = colour[top : top + side, left : left + side]
        if side != self.size:
            crop = resize(
                crop,
                (self.size, self.size, crop.shape[2]),
                order=1,
                anti_aliasing=side > self.size,
                preserve_range=True,
            ).astype(np.float32)
        if self.flip and rng.random() < 0.5:
            crop = crop[:, ::-1]
        hole = self.masks.sample((self.size, self.size), rng)
        return _to_sample(crop, hole)


def _open_zarr(source: Any, name: str) -> Any:
    """Return ``source`` if it is already an array, else open the zarr array at that path."""
    if not isinstance(source, (str, os.PathLike)):
        return source
    import zarr

    try:
        opened = zarr.open(str(source), mode="r")
    except Exception as error:
        raise InvalidInputError(
            f"cannot open {name} {str(source)!r} as a zarr array: {error}"
        ) from error
    if not isinstance(opened, zarr.Array):
        arrays = sorted(key for key, _ in opened.arrays())
        listed = ", ".join(arrays) if arrays else "none"
        raise InvalidInputError(
            f"{name} {str(source)!r} is a zarr group, not an array (its arrays: {listed}); "
            f"pass the path of one array, e.g. {str(Path(source) / (arrays or ['name'])[0])!r}"
        )
    return opened


def free_patch_cells(grid: np.ndarray, shape: tuple[int, int], size: int, cell: int) -> np.ndarray:
    """Return int ``(K, 2)``: the top-left cells (row, col) of the damage-free patches.

    A patch at cell ``(i, j)`` covers pixels ``[i * cell, i * cell + size)`` (and likewise for
    columns); it must lie inside ``shape`` and every grid cell it touches must be free.
    """
    span = math.ceil(size / cell)
    last_row = (shape[0] - size) // cell
    last_col = (shape[1] - size) // cell
    if last_row < 0 or last_col < 0:
        return np.zeros((0, 2), dtype=np.int64)
    table = np.zeros((grid.shape[0] + 1, grid.shape[1] + 1), dtype=np.int64)
    table[1:, 1:] = grid.astype(np.int64).cumsum(axis=0).cumsum(axis=1)
    rows = np.arange(last_row + 1)[:, None]
    cols = np.arange(last_col + 1)[None, :]
    inside = (
        table[rows + span, cols + span]
        - table[rows, cols + span]
        - table[rows + span, cols]
        + table[rows, cols]
    )
    return np.argwhere(inside == 0).astype(np.int64)


class ScanPatchDataset(Dataset[Sample]):
    """Patches of one large scan taken only where it is undamaged ("fit to this scan").

    Args:
        scan: zarr array ``(H, W, C)`` or ``(H, W)``, C in {1, 3, 4}; uint8, uint16 or float in
            [0, 1]; or the path of a zarr array on disk. Only the sampled windows are read.
        damage: ``(H, W)`` zarr or NumPy array (non-zero = damaged), a zarr path, or None (the
            whole scan is usable). It is reduced chunk by chunk to a grid of cells of
            ``size // 4`` pixels; a patch is used only if every cell it touches is free.
        size: the patch side ``S`` in pixels.
        samples: the dataset length (patches per epoch).
        masks: the hole masks to draw.
        seed: the base seed; an item depends on ``(seed, epoch, index)`` only.
        flip: flip patches left-right and top-bottom at random.

    Raises:
        InvalidInputError: for mismatched shapes (naming both), an unsupported scan, a scan
            smaller than ``size`` or with no damage-free patch (saying how much is damaged).
    """

    def __init__(
        self,
        scan: Any,
        damage: Any = None,
        size: int = 256,
        samples: int = 1000,
        masks: MaskMix | None = None,
        seed: int = 0,
        flip: bool = True,
    ) -> None:
        self.size = _check_size(size)
        if not is_integer(samples) or int(samples) < 1:
            raise InvalidInputError(f"samples={samples!r} must be a positive int")
        self.samples = int(samples)
        self.masks = MaskMix() if masks is None else masks
        if not isinstance(self.masks, MaskMix):
            raise InvalidInputError(f"masks={masks!r} must be a MaskMix")
        self.seed = _check_seed(seed)
        self.flip = bool(flip)
        self.epoch = 0

        self.scan = _open_zarr(scan, "scan")
        shape = tuple(int(v) for v in self.scan.shape)
        if len(shape) not in (2, 3) or (len(shape) == 3 and shape[2] not in SUPPORTED_CHANNELS):
            raise InvalidInputError(
                f"scan has shape {shape}; expected (H, W) or (H, W, C) with C in 1, 3, 4"
            )
        if np.dtype(self.scan.dtype) not in SUPPORTED_DTYPES:
            names = ", ".join(np.dtype(kind).name for kind in SUPPORTED_DTYPES)
            raise InvalidInputError(
                f"scan dtype {np.dtype(self.scan.dtype)} is not supported; use one of {names}"
            )
        self.shape = (shape[0], shape[1])
        if shape[0] < self.size or shape[1] < self.size:
            raise InvalidInputError(
                f"scan of shape {shape} is smaller than a {self.size}x{self.size} patch; "
                f"use a smaller --size (at most {min(shape[:2])})"
            )

        self.cell = max(self.size // CELLS_PER_PATCH, 1)
        if damage is None:
            grid = np.zeros(
                (math.ceil(shape[0] / self.cell), math.ceil(shape[1] / self.cell)), dtype=bool
            )
            damaged = 0
        else:
            damage = _open_zarr(damage, "damage")
            damage_shape = tuple(int(v) for v in damage.shape)
            if damage_shape != self.shape:
                raise InvalidInputError(
                    f"damage mask shape {damage_shape} does not match scan {shape} "
                    f"(it must be (H, W) = {self.shape})"
                )
            grid, damaged = damage_grid(damage, self.cell)
        self.damaged_fraction = damaged / (shape[0] * shape[1])
        percent = 100 * self.damaged_fraction
        if damaged < shape[0] * shape[1]:  # never round a partly usable scan up to 100%
            percent = min(percent, 99.9)
        self.free_cells = free_patch_cells(grid, self.shape, self.size, self.cell)
        if not len(self.free_cells):
            raise InvalidInputError(
                f"no {self.size}x{self.size} patch of the scan {shape} is free of damage "
                f"({percent:.1f}% of its pixels are damaged); "
                f"use a smaller --size (e.g. {max(self.size // 2, 4)})"
            )

    def set_epoch(self, epoch: int) -> None:
        """Use ``epoch``'s patches and masks from now on (call it before each epoch)."""
        self.epoch = _check_epoch(epoch)

    def __len__(self) -> int:
        return self.samples

    def _draw_position(self, rng: np.random.Generator) -> tuple[int, int]:
        row, col = self.free_cells[int(rng.integers(len(self.free_cells)))]
        return int(row) * self.cell, int(col) * self.cell

    def position(self, index: int) -> tuple[int, int]:
        """Return the top-left pixel ``(row, col)`` of item ``index`` in the current epoch."""
        index = _check_index(index, len(self))
        return self._draw_position(np.random.default_rng((self.seed, self.epoch, index)))

    def positions(self) -> np.ndarray:
        """Return int ``(samples, 2)``: every item's top-left ``(row, col)`` this epoch."""
        return np.array([self.position(index) for index in range(len(self))], dtype=np.int64)

    def __getitem__(self, index: int) -> Sample:
        index = _check_index(index, len(self))
        rng = np.random.default_rng((self.seed, self.epoch, index))
        top, left = self._draw_position(rng)
        window = np.asarray(self.scan[top : top + self.size, left : left + self.size])
        colour = to_float_colour(check_image(window, name=f"scan window at ({top}, {left})"))
        if self.flip:
            if rng.random() < 0.5:
                colour = colour[:, ::-1]
            if rng.random() < 0.5:
                colour = colour[::-1]
        hole = self.masks.sample((self.size, self.size), rng)
        return _to_sample(colour, hole)
