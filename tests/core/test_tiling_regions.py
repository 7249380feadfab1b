"""Hole regions read chunk-wise from a mask: boxes equal to whole-mask labelling."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import zarr

from inpaint_core.errors import InvalidInputError
from inpaint_core.io.layout import chunk_key, stored_chunk_keys
from inpaint_core.tiling import Box, chunk_boxes, find_hole_regions, hole_fraction, shrink_to_holes
from inpaint_core.tiling import regions as regions_module

from .tiling_helpers import _random_mask, _whole_mask_boxes


class Recording:
    """A mask that records every slice read from it."""

    def __init__(self, array: Any) -> None:
        self.array = array
        self.shape = array.shape
        self.chunks = getattr(array, "chunks", None)
        self.reads: list[tuple[slice, slice]] = []

    def __getitem__(self, key: tuple[slice, slice]) -> np.ndarray:
        self.reads.append(key)
        return np.asarray(self.array[key])

    def assert_chunk_sized_reads(self, block: tuple[int, int]) -> None:
        assert self.reads
        for key in self.reads:
            for part, side in zip(key, block, strict=True):
                assert part.start // side == (part.stop - 1) // side, (key, block)


def test_component_spanning_four_chunks_gives_one_box() -> None:
    mask = np.zeros((20, 20), dtype=bool)
    mask[5:13, 6:11] = True  # crosses the chunk borders at row 8 and col 8
    mask[17, 1] = True
    regions = find_hole_regions(mask, block=(8, 8))
    assert regions.boxes == (Box(5, 13, 6, 11), Box(17, 18, 1, 2))
    assert regions.hole_pixels == 41
    assert regions.hole_fraction == pytest.approx(41 / 400)


@pytest.mark.parametrize(
    ("pixels", "count"),
    [
        ([(7, 7), (8, 8)], 1),  # diagonal through a four-chunk corner
        ([(7, 8), (8, 7)], 1),  # the other diagonal
        ([(7, 3), (8, 4)], 1),  # diagonal across a horizontal border
        ([(3, 7), (4, 8)], 1),  # diagonal across a vertical border
        ([(7, 7), (9, 9)], 2),  # a gap: not connected
    ],
)
def test_diagonal_neighbours_merge_across_chunks(pixels: list[tuple[int, int]], count) -> None:
    mask = np.zeros((16, 16), dtype=np.uint8)
    for row, col in pixels:
        mask[row, col] = 255
    assert len(find_hole_regions(mask, block=(8, 8)).boxes) == count


@pytest.mark.parametrize("block", [(1, 1), (7, 5), (16, 16), (32, 64), (200, 200)])
def test_regions_equal_whole_mask_labelling(block: tuple[int, int]) -> None:
    for seed in range(3):
        mask = _random_mask((83, 117), seed)
        regions = find_hole_regions(mask, block=block)
        assert list(regions.boxes) == _whole_mask_boxes(mask)
        assert regions.hole_pixels == int(mask.sum())


def test_regions_read_a_zarr_mask_chunk_by_chunk(tmp_path: Path) -> None:
    mask = _random_mask((70, 90), seed=5)
    stored = zarr.create_array(
        store=str(tmp_path / "m.zarr"), shape=mask.shape, chunks=(16, 32), dtype=bool
    )
    stored[:] = mask
    recording = Recording(stored)
    regions = find_hole_regions(recording, read_pixels=16 * 32)
    recording.assert_chunk_sized_reads((16, 32))
    assert len(recording.reads) == len(list(chunk_boxes(mask.shape, (16, 32))))
    assert list(regions.boxes) == _whole_mask_boxes(mask)
    for read_pixels, reads in ((2 * 16 * 32, 10), (10**6, 5)):  # strips of 2 chunks, bands
        recording = Recording(stored)
        assert find_hole_regions(recording, read_pixels=read_pixels).boxes == regions.boxes
        assert len(recording.reads) == reads
        assert all(rows.stop - rows.start <= 16 for rows, _ in recording.reads)
        assert all((rows.stop - rows.start) * (cols.stop - cols.start) <= read_pixels
                   for rows, cols in recording.reads)
    with pytest.raises(InvalidInputError, match=r"read_pixels=0 must be an int >= 1"):
        find_hole_regions(stored, read_pixels=0)
    assert regions.hole_fraction == pytest.approx(mask.mean())
    assert hole_fraction(stored) == pytest.approx(mask.mean())


@pytest.mark.parametrize("zarr_format", [2, 3])
def test_regions_skip_chunks_the_zarr_store_does_not_hold(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, zarr_format: int
) -> None:
    group = zarr.open_group(str(tmp_path / "g.zarr"), mode="w", zarr_format=zarr_format)
    stored = group.create_array("mask", shape=(64, 64), chunks=(16, 16), dtype="uint8",
                                fill_value=0)
    mask = np.zeros((64, 64), dtype=np.uint8)
    mask[20:24, 35:47] = 1
    mask[40, 3] = 2
    stored[:] = mask  # chunks (1, 2) and (2, 0) hold holes; zarr stores no all-zero chunk
    keys = stored_chunk_keys(stored)
    assert keys is not None and all(key.startswith("mask/") for key in keys)
    held = {(i, j) for i in range(4) for j in range(4) if chunk_key(stored, (i, j)) in keys}
    assert held == {(1, 2), (2, 0)}
    reads: list[Box] = []
    read = regions_module._read
    monkeypatch.setattr(regions_module, "_read", lambda m, box: reads.append(box) or read(m, box))
    regions = find_hole_regions(stored, read_pixels=16 * 16)
    assert list(regions.boxes) == _whole_mask_boxes(mask) and regions.hole_pixels == 49
    assert reads == [Box(16, 32, 32, 48), Box(32, 48, 0, 16)]  # the two stored chunks only
    wide = group.create_array("wide", shape=(64, 64), chunks=(16, 16), dtype="uint8",
                              fill_value=0)
    wide[18, 20:40] = 1  # chunks (1, 1) and (1, 2)
    wide[40, 3] = 1  # chunk (2, 0)
    reads.clear()  # strips of up to 4 chunks hold the stored chunks side by side, no others
    assert len(find_hole_regions(wide, read_pixels=4 * 16 * 16).boxes) == 2
    assert reads == [Box(16, 32, 16, 48), Box(32, 48, 0, 16)]
    filled = group.create_array("holes", shape=(64, 64), chunks=(16, 16), dtype=bool,
                                fill_value=True)
    filled[:16, :16] = False  # missing chunks are all hole here: they must be read
    reads.clear()
    assert find_hole_regions(filled, read_pixels=16 * 16).boxes == (Box(0, 64, 0, 64),)
    assert len(reads) == 16
    assert stored_chunk_keys(np.zeros((4, 4))) is None


def test_empty_mask_and_bad_masks() -> None:
    empty = find_hole_regions(np.zeros((5, 6), dtype=bool))
    assert empty.boxes == () and empty.hole_pixels == 0 and empty.hole_fraction == 0
    with pytest.raises(InvalidInputError, match=r"mask has shape \(4, 5, 3\); expected"):
        find_hole_regions(np.zeros((4, 5, 3), dtype=bool))
    with pytest.raises(InvalidInputError, match=r"block=\(0, 4\) must be two positive ints"):
        find_hole_regions(np.zeros((4, 5), dtype=bool), block=(0, 4))


def test_chunk_boxes_within_a_box_are_the_grid_boxes_it_touches() -> None:
    grid = list(chunk_boxes((70, 90), (16, 32)))
    for within in (
        Box(0, 70, 0, 90),
        Box(15, 17, 31, 33),
        Box(20, 30, 40, 50),
        Box(64, 200, 88, 95),
    ):
        touched = [box for box in grid if box.intersection(within) is not None]
        assert list(chunk_boxes((70, 90), (16, 32), within=within)) == touched
    inner, outer = Box(20, 30, 40, 50), Box(16, 32, 32, 64)
    assert inner.slices_in(outer) == (slice(4, 14), slice(8, 18)) and inner.shape == (10, 10)
    assert np.arange(70 * 90).reshape(70, 90)[outer.slices][inner.slices_in(outer)].tolist() == (
        np.arange(70 * 90).reshape(70, 90)[inner.slices].tolist()
    )


def test_shrink_to_holes_is_exact_and_reads_only_chunks() -> None:
    mask = np.zeros((40, 40), dtype=bool)
    mask[3, 30] = mask[25, 12] = mask[12, 5] = True
    recording = Recording(mask)
    recording.chunks = (10, 10)
    assert shrink_to_holes(recording, Box(0, 30, 10, 40)) == Box(3, 26, 12, 31)
    assert shrink_to_holes(recording, Box(13, 25, 0, 40)) is None
    recording.assert_chunk_sized_reads((10, 10))
    with pytest.raises(InvalidInputError, match=r"box \(0, 41, 0, 5\) is not inside"):
        shrink_to_holes(mask, Box(0, 41, 0, 5))
