"""Blend weights and stitching: cross-fades without seams, tiled equals untiled."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import numpy as np
import pytest

from inpaint_core.errors import InvalidInputError, ParameterError
from inpaint_core.tiling import (
    Box,
    Tile,
    accumulate,
    blend_holes,
    blend_window,
    find_hole_regions,
    new_accumulators,
    normalise,
    plan_tiles,
    ramp_profile,
    shrink_to_holes,
    tile_weights,
    tiles_by_block,
)

from .tiling_helpers import _random_mask


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
