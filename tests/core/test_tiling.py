"""Tiling geometry: hole regions read chunk-wise, the tile plan, blend weights and stitching."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import zarr
from scipy import ndimage

from inpaint_core.errors import InvalidInputError, ParameterError
from inpaint_core.io.layout import chunk_key, stored_chunk_keys
from inpaint_core.tiling import (
    Box,
    Tile,
    accumulate,
    blend_holes,
    blend_window,
    check_geometry,
    chunk_boxes,
    find_hole_regions,
    hole_fraction,
    merge_boxes,
    new_accumulators,
    normalise,
    place_tile,
    plan_tiles,
    ramp_profile,
    shrink_to_holes,
    split_box,
    split_span,
    tile_weights,
    tiles_by_block,
    window_start,
)
from inpaint_core.tiling import regions as regions_module


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


# -- regions -----------------------------------------------------------------------------------


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


# -- plan --------------------------------------------------------------------------------------


def test_window_start_centres_and_aligns_at_the_border() -> None:
    assert window_start(45, 55, 200, 32, 4) == 34  # centred
    assert window_start(2, 10, 200, 32, 4) == 0  # at the top border: no margin needed above
    assert window_start(195, 200, 200, 32, 4) == 168  # at the bottom: edge-aligned
    assert window_start(30, 60, 200, 32, 4) is None  # longer than 32 - 2 * 4
    assert window_start(0, 28, 200, 32, 4) == 0  # the border side needs no margin
    assert window_start(0, 29, 200, 32, 4) is None
    assert window_start(0, 20, 20, 20, 4) == 0  # the window is the whole axis


def test_split_span_pieces_are_short_overlap_and_cover() -> None:
    for span in range(1, 120):
        for piece, overlap in ((10, 0), (10, 3), (7, 6), (24, 8)):
            pieces = split_span(5, 5 + span, piece, overlap)
            assert pieces[0][0] == 5 and pieces[-1][1] == 5 + span
            assert all(0 < stop - start <= piece for start, stop in pieces)
            for (_, stop), (start, _) in itertools.pairwise(pieces):
                assert stop - start >= overlap
            minimum = 1 if span <= piece else -(-(span - overlap) // (piece - overlap))
            assert len(pieces) == minimum


def _check_plan(mask: np.ndarray, tiles: list[Tile], tile: int, margin: int) -> None:
    """Every hole pixel is in a core with ``margin`` context; windows are full and inside."""
    height, width = mask.shape
    covered = np.zeros_like(mask)
    for planned in tiles:
        assert planned.shape == (min(tile, height), min(tile, width))
        assert planned.row0 >= 0 and planned.row1 <= height
        assert planned.col0 >= 0 and planned.col1 <= width
        core = planned.core
        assert core.row0 - planned.row0 >= (margin if planned.row0 > 0 else 0)
        assert planned.row1 - core.row1 >= (margin if planned.row1 < height else 0)
        assert core.col0 - planned.col0 >= (margin if planned.col0 > 0 else 0)
        assert planned.col1 - core.col1 >= (margin if planned.col1 < width else 0)
        assert mask[core.slices].any(), f"{planned} has no hole"
        covered[core.slices] = True
    assert covered[mask].all()
    windows = [t.window for t in tiles]
    assert windows == sorted(set(windows))  # row-major, one tile per window


@pytest.mark.parametrize(
    ("shape", "tile", "margin", "overlap", "multiple"),
    [
        ((97, 131), 32, 6, 4, 1),
        ((97, 131), 24, 0, 0, 8),
        ((60, 150), 64, 20, 8, 4),
        ((50, 45), 64, 8, 2, 1),
        ((128, 40), 40, 5, 9, 1),
    ],
)
def test_plan_covers_every_hole_with_context(shape, tile, margin, overlap, multiple) -> None:
    for seed in range(4):
        mask = _random_mask(shape, seed)
        boxes = find_hole_regions(mask, block=(32, 32)).boxes
        refine = partial(shrink_to_holes, mask)
        tiles = plan_tiles(shape, boxes, tile, margin, multiple, overlap=overlap, refine=refine)
        _check_plan(mask, tiles, tile, margin)
        if min(shape) >= tile:
            assert all(t.shape[0] % multiple == 0 == t.shape[1] % multiple for t in tiles)
        again = plan_tiles(shape, boxes, tile, margin, multiple, overlap=overlap, refine=refine)
        assert again == tiles


def test_border_tiles_stay_inside_at_full_size() -> None:
    mask = np.zeros((100, 120), dtype=bool)
    mask[0, 0] = mask[99, 119] = mask[0, 119] = mask[99, 0] = mask[50, 0] = True
    tiles = plan_tiles(mask.shape, _whole_mask_boxes(mask), 32, 8)
    windows = {t.window for t in tiles}
    assert windows == {
        Box(0, 32, 0, 32),
        Box(0, 32, 88, 120),
        Box(68, 100, 0, 32),
        Box(68, 100, 88, 120),
        Box(34, 66, 0, 32),
    }
    _check_plan(mask, tiles, 32, 8)


def test_scan_smaller_than_the_tile_is_one_window() -> None:
    mask = np.zeros((20, 300), dtype=bool)
    mask[:, 10:280] = True
    tiles = plan_tiles(mask.shape, [(0, 20, 10, 280)], 64, 10, 8)
    assert all(t.shape == (20, 64) for t in tiles) and len(tiles) == 7
    _check_plan(mask, tiles, 64, 10)


def test_huge_box_is_split_into_an_overlapping_grid() -> None:
    box = Box(100, 300, 150, 250)
    pieces = split_box(box, (512, 512), 64, 8, overlap=6)
    rows = sorted({(p.row0, p.row1) for p in pieces})
    cols = sorted({(p.col0, p.col1) for p in pieces})
    assert len(pieces) == len(rows) * len(cols) == 5 * 3
    assert all(p.height <= 48 and p.width <= 48 for p in pieces)
    assert rows[0][0] == 100 and rows[-1][1] == 300 and cols[0][0] == 150 and cols[-1][1] == 250
    assert all(b[0] <= a[1] - 6 for a, b in itertools.pairwise(rows))
    mask = np.zeros((512, 512), dtype=bool)
    mask[box.slices] = True
    tiles = plan_tiles(mask.shape, [box], 64, 8, overlap=6)
    assert sorted(t.core for t in tiles) == sorted(pieces)
    _check_plan(mask, tiles, 64, 8)


def test_nearby_small_boxes_share_a_tile_and_far_ones_do_not() -> None:
    near = [Box(50, 53, 50, 60), Box(58, 60, 70, 74), Box(66, 70, 52, 55)]
    far = Box(200, 204, 200, 204)
    assert merge_boxes([*near, far], (300, 300), 48, 8) == [Box(50, 70, 50, 74), far]
    tiles = plan_tiles((300, 300), [far, *near], 48, 8)
    assert [t.core for t in tiles] == [Box(50, 70, 50, 74), far]
    assert len(plan_tiles((300, 300), near, 32, 8)) > 1  # too far apart for a 16 px core


def test_split_pieces_without_holes_are_never_tiled() -> None:
    mask = np.zeros((300, 300), dtype=bool)
    diagonal = np.arange(20, 280)
    mask[diagonal, diagonal] = True  # one component with a huge, mostly empty box
    boxes = find_hole_regions(mask).boxes
    assert boxes == (Box(20, 280, 20, 280),)
    blind = plan_tiles(mask.shape, boxes, 48, 8, overlap=4)
    assert any(not mask[t.core.slices].any() for t in blind)  # why refine exists
    tiles = plan_tiles(mask.shape, boxes, 48, 8, overlap=4, refine=partial(shrink_to_holes, mask))
    _check_plan(mask, tiles, 48, 8)
    assert len(tiles) < len(blind) / 4


def test_place_tile_refuses_a_core_too_big() -> None:
    assert place_tile(Box(10, 20, 10, 20), (100, 100), 32, 4).window == Box(0, 32, 0, 32)
    with pytest.raises(InvalidInputError, match=r"box \(10, 60, 10, 20\) does not fit a 32x32"):
        place_tile(Box(10, 60, 10, 20), (100, 100), 32, 4)


def test_tiles_by_block_lists_the_cores_touching_each_chunk() -> None:
    tiles = [
        Tile(0, 32, 0, 32, Box(5, 20, 5, 20)),
        Tile(0, 32, 10, 42, Box(5, 20, 15, 37)),
    ]
    assert tiles_by_block(tiles, (16, 16)) == {
        (0, 0): [0, 1],
        (0, 1): [0, 1],
        (0, 2): [1],
        (1, 0): [0, 1],
        (1, 1): [0, 1],
        (1, 2): [1],
    }


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ((64, 40, 1, 0), r"tile=64 must be larger than 2\*margin=80"),
        ((60, 4, 8, 0), r"tile=60 must be a multiple of 8 .*; use 56"),
        ((64, 8, 1, 48), r"overlap=48 must be smaller than tile - 2\*margin=48"),
        ((64, -1, 1, 0), r"margin=-1 must be an int >= 0"),
        ((64.0, 8, 1, 0), r"tile=64.0 must be an int >= 1"),
        ((64, 8, 0, 0), r"multiple=0 must be an int >= 1"),
    ],
)
def test_bad_geometry_names_the_value(arguments: tuple, message: str) -> None:
    tile, margin, multiple, overlap = arguments
    with pytest.raises(ParameterError, match=message):
        check_geometry(tile, margin, multiple, overlap)
    with pytest.raises(ParameterError, match=message):
        plan_tiles((100, 100), [], tile, margin, multiple, overlap=overlap)


def test_bad_shape_and_boxes_name_the_value() -> None:
    with pytest.raises(InvalidInputError, match=r"shape=\(0, 10\) must be two positive ints"):
        plan_tiles((0, 10), [], 32, 4)
    with pytest.raises(InvalidInputError, match=r"box \(5, 5, 0, 3\) is empty or not inside"):
        plan_tiles((10, 10), [(5, 5, 0, 3)], 32, 4)
    with pytest.raises(InvalidInputError, match=r"box \(0, 11, 0, 3\) .* shape \(10, 10\)"):
        plan_tiles((10, 10), [(0, 11, 0, 3)], 32, 4)
    with pytest.raises(InvalidInputError, match=r"box \(1, 2, 3\) must be four ints"):
        plan_tiles((10, 10), [(1, 2, 3)], 32, 4)
    with pytest.raises(InvalidInputError, match=r"refine returned \(0, 9, 0, 9\), not inside"):
        plan_tiles((100, 100), [(0, 100, 0, 100)], 32, 4, refine=lambda box: Box(0, 9, 0, 9))


# -- blend -------------------------------------------------------------------------------------


def test_ramp_profile_is_positive_symmetric_and_flat_inside() -> None:
    profile = ramp_profile(20, 5)
    assert np.all(profile > 0) and np.all(profile <= 1)
    assert np.array_equal(profile, profile[::-1])
    assert np.all(profile[5:15] == 1) and np.all(np.diff(profile[:6]) > 0)
    assert np.array_equal(ramp_profile(7, 0), np.ones(7))
    assert np.all(ramp_profile(1, 50) > 0)  # zero-safe however short the core
    assert blend_window((3, 4), 2).shape == (3, 4)
    with pytest.raises(ParameterError, match=r"ramp=-1 must be an int >= 0"):
        ramp_profile(5, -1)


def _stitch(
    image: np.ndarray,
    mask: np.ndarray,
    tiles: list[Tile],
    method: Callable[[np.ndarray, np.ndarray], np.ndarray],
    ramp: int,
    block: tuple[int, int] = (16, 16),
) -> np.ndarray:
    """The engine's loop in miniature: each tile once, blended per output chunk."""
    results = [method(image[t.slices], mask[t.slices]) for t in tiles]
    output = image.copy()
    channels = image.shape[2] if image.ndim == 3 else None
    for (i, j), indices in tiles_by_block(tiles, block).items():
        window = Box(
            i * block[0],
            min((i + 1) * block[0], image.shape[0]),
            j * block[1],
            min((j + 1) * block[1], image.shape[1]),
        )
        total, weight = new_accumulators(window, channels)
        for index in indices:
            accumulate(
                total,
                weight,
                window,
                tiles[index],
                results[index],
                tile_weights(tiles[index], ramp),
            )
        output[window.slices] = normalise(image[window.slices], mask[window.slices], total, weight)
    return output


def _plan(mask: np.ndarray, tile: int, margin: int, overlap: int) -> list[Tile]:
    boxes = find_hole_regions(mask, block=(16, 16)).boxes
    refine = partial(shrink_to_holes, mask)
    return plan_tiles(mask.shape, boxes, tile, margin, overlap=overlap, refine=refine)


def test_tiles_of_a_constant_image_blend_to_the_constant() -> None:
    mask = _random_mask((90, 100), seed=1)
    tiles = _plan(mask, 32, 6, 5)
    image = np.full((90, 100, 3), 0.25, dtype=np.float32)
    filled = _stitch(np.zeros_like(image), mask, tiles, lambda w, m: np.full_like(w, 0.25), 5)
    assert np.array_equal(filled[mask], image[mask]) and not filled[~mask].any()


@pytest.mark.parametrize(
    ("dtype", "trailing"), [(np.uint8, (3,)), (np.uint16, ()), (np.float32, (3,))]
)
def test_identity_method_leaves_the_scan_bit_identical(dtype, trailing) -> None:
    rng = np.random.default_rng(2)
    mask = _random_mask((90, 100), seed=2)
    if np.issubdtype(dtype, np.integer):
        image = rng.integers(0, np.iinfo(dtype).max, (90, 100, *trailing), endpoint=True)
    else:
        image = rng.random((90, 100, *trailing))
    image = image.astype(dtype)
    tiles = _plan(mask, 32, 6, 5)
    assert any(a.core.intersection(b.core) for a in tiles for b in tiles if a is not b)
    stitched = _stitch(image, mask, tiles, lambda window, hole: window.copy(), 5)
    assert stitched.dtype == image.dtype and np.array_equal(stitched, image)


def test_overlapping_tiles_cross_fade_without_a_seam() -> None:
    mask = np.zeros((40, 120), dtype=bool)
    mask[15:25, 10:110] = True  # split along columns into overlapping cores
    tiles = _plan(mask, 40, 8, 10)
    assert len(tiles) > 2
    level = {t: float(k) for k, t in enumerate(tiles)}  # each tile returns its own constant
    image = np.zeros((40, 120), dtype=np.float64)
    results = {t: np.full(t.shape, level[t]) for t in tiles}
    total, weight = new_accumulators(Box(0, 40, 0, 120), None)
    expected_num = np.zeros((40, 120))
    for t in tiles:
        weights = tile_weights(t, 10)
        accumulate(total, weight, Box(0, 40, 0, 120), t, results[t], weights)
        expected_num[t.slices] += weights * level[t]
    assert np.all(weight[mask] > 0)
    row = normalise(image, mask, total, weight)
    expected = np.zeros_like(image)
    expected[mask] = expected_num[mask] / weight[mask]
    assert np.allclose(row, expected, rtol=0, atol=1e-12)
    line = row[20, 10:110]
    assert np.all(np.diff(line) > -1e-12)  # rises from tile to tile, never jumps back
    assert np.abs(np.diff(line)).max() < 0.25  # a cross-fade, not a step of 1


def _mean3(window: np.ndarray, hole: np.ndarray) -> np.ndarray:
    """A local method: the 3x3 mean (edge pixels repeated), same arithmetic for every pixel."""
    padded = np.pad(window.astype(np.float32), ((1, 1), (1, 1), (0, 0)), mode="edge")
    rows, cols = window.shape[:2]
    total = np.zeros(window.shape, dtype=np.float32)
    for dr in range(3):
        for dc in range(3):
            total += padded[dr : dr + rows, dc : dc + cols]
    return total / np.float32(9)


@pytest.mark.parametrize(("tile", "margin", "overlap"), [(32, 1, 0), (24, 3, 6), (64, 2, 9)])
def test_tiled_equals_untiled_for_a_local_method(tile: int, margin: int, overlap: int) -> None:
    rng = np.random.default_rng(3)
    image = rng.random((90, 100, 3)).astype(np.float32)
    mask = _random_mask((90, 100), seed=3)
    mask[30:70, 20:90] = True  # a hole larger than a tile: split, blended across cores
    whole = _mean3(image, mask)
    tiled = _stitch(image, mask, _plan(mask, tile, margin, overlap), _mean3, overlap)
    assert np.array_equal(tiled[mask], whole[mask])
    assert np.array_equal(tiled[~mask], image[~mask])


def test_normalise_rounds_clips_and_refuses_uncovered_holes() -> None:
    source = np.array([[10, 20], [30, 40]], dtype=np.uint8)
    hole = np.array([[True, False], [True, True]])
    total = np.array([[2.6, 0.0], [600.0, -5.0]])
    weight = np.array([[1.0, 0.0], [2.0, 1.0]])
    out = normalise(source, hole, total, weight)
    assert out.dtype == np.uint8 and out.tolist() == [[3, 20], [255, 0]]
    weight[1, 1] = 0
    with pytest.raises(InvalidInputError, match=r"1 hole pixels .* \(row 1, col 1\)"):
        normalise(source, hole, total, weight)
    with pytest.raises(InvalidInputError, match=r"hole \(2, 3\) and weight"):
        normalise(source, np.zeros((2, 3), bool), total, weight)


def test_accumulate_checks_shapes_and_skips_tiles_outside() -> None:
    planned = Tile(0, 8, 0, 8, Box(2, 6, 2, 6))
    total, weight = new_accumulators(Box(8, 16, 8, 16), 3)
    accumulate(total, weight, Box(8, 16, 8, 16), planned, np.ones((8, 8, 3)), np.ones((8, 8)))
    assert not total.any() and not weight.any()
    with pytest.raises(InvalidInputError, match=r"result \(8, 7, 3\) and weights \(8, 8\)"):
        accumulate(total, weight, Box(0, 8, 0, 8), planned, np.ones((8, 7, 3)), np.ones((8, 8)))
    with pytest.raises(InvalidInputError, match=r"result channels \(\) do not match"):
        accumulate(total, weight, Box(0, 8, 0, 8), planned, np.ones((8, 8)), np.ones((8, 8)))
    with pytest.raises(InvalidInputError, match=r"tile core \(0, 9, 0, 4\) is not inside"):
        Tile(0, 8, 0, 8, Box(0, 9, 0, 4))


@pytest.mark.parametrize(
    ("dtype", "trailing"), [(np.uint8, (3,)), (np.uint16, ()), (np.float32, (3,))]
)
def test_blend_holes_gives_the_dense_blend_bytes(dtype, trailing) -> None:
    rng = np.random.default_rng(4)
    mask = _random_mask((90, 100), seed=4)
    mask[30:70, 20:90] = True  # split into overlapping cores that cross-fade
    image = (rng.random((90, 100, *trailing)) * (255 if dtype == np.uint8 else 1)).astype(dtype)
    tiles = _plan(mask, 32, 6, 5)
    assert any(a.core.intersection(b.core) for a in tiles for b in tiles if a is not b)
    results = [rng.random((*t.shape, *trailing)) * 300 - 20 for t in tiles]  # also out of range
    for window in (Box(0, 90, 0, 100), Box(16, 48, 32, 64), Box(80, 90, 96, 100)):
        total, weight = new_accumulators(window, trailing[0] if trailing else None)
        for tile, result in zip(tiles, results, strict=True):
            accumulate(total, weight, window, tile, result, tile_weights(tile, 5))
        dense = normalise(image[window.slices], mask[window.slices], total, weight)
        sparse = blend_holes(image[window.slices], mask[window.slices], window, tiles, results, 5)
        assert sparse.dtype == image.dtype and np.array_equal(sparse, dense)
    assert np.array_equal(blend_holes(image, np.zeros((90, 100)), Box(0, 90, 0, 100), [], [], 5),
                          image)


def test_blend_holes_refuses_bad_shapes_and_uncovered_holes() -> None:
    planned = Tile(0, 8, 0, 8, Box(2, 6, 2, 6))
    source, hole = np.zeros((8, 8, 3), np.uint8), np.zeros((8, 8), bool)
    hole[3, 3] = True
    assert blend_holes(source, hole, Box(0, 8, 0, 8), [planned], [np.full((8, 8, 3), 7.4)], 2)[
        3, 3
    ].tolist() == [7, 7, 7]
    with pytest.raises(InvalidInputError, match=r"result \(8, 7, 3\) must cover"):
        blend_holes(source, hole, Box(0, 8, 0, 8), [planned], [np.ones((8, 7, 3))], 2)
    with pytest.raises(InvalidInputError, match=r"channels \(3,\)"):
        blend_holes(source, hole, Box(0, 8, 0, 8), [planned], [np.ones((8, 8))], 2)
    with pytest.raises(InvalidInputError, match=r"hole \(8, 8\) must match .* window 8 x 9"):
        blend_holes(source, hole, Box(0, 8, 0, 9), [planned], [np.ones((8, 8, 3))], 2)
    with pytest.raises(InvalidInputError, match=r"1 tiles but 0 results"):
        blend_holes(source, hole, Box(0, 8, 0, 8), [planned], [], 2)
    hole[7, 1] = True
    with pytest.raises(InvalidInputError, match=r"1 hole pixels .* \(row 7, col 1\)"):
        blend_holes(source, hole, Box(0, 8, 0, 8), [planned], [np.ones((8, 8, 3))], 2)


def test_connected_components_partition_like_scipy() -> None:
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components as scipy_components

    from inpaint_core.tiling.regions import connected_components

    rng = np.random.default_rng(0)
    assert connected_components(0, np.zeros((0, 2), np.int64))[0] == 0
    for _ in range(200):
        nodes, edges = int(rng.integers(1, 60)), int(rng.integers(0, 80))
        pairs = rng.integers(0, nodes, (edges, 2))
        count, component = connected_components(nodes, pairs)
        graph = coo_matrix((np.ones(edges), (pairs[:, 0], pairs[:, 1])), shape=(nodes, nodes))
        expected_count, expected = scipy_components(graph, directed=False)
        assert count == expected_count
        assert len(set(zip(component.tolist(), expected.tolist(), strict=True))) == count
        firsts = [int(np.flatnonzero(component == c)[0]) for c in range(count)]
        assert firsts == sorted(firsts)  # numbered in order of their smallest node
