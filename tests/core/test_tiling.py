"""The tile plan: window placement, span splitting, tiles covering every hole with context."""

from __future__ import annotations

import itertools
from functools import partial

import numpy as np
import pytest

from inpaint_core.errors import InvalidInputError, ParameterError
from inpaint_core.tiling import (
    Box,
    Tile,
    check_geometry,
    find_hole_regions,
    merge_boxes,
    place_tile,
    plan_tiles,
    shrink_to_holes,
    split_box,
    split_span,
    tiles_by_block,
    window_start,
)

from .tiling_helpers import _random_mask, _whole_mask_boxes


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
