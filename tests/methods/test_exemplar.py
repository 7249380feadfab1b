"""Tests of the exemplar-based (Criminisi et al. 2004) inpainting in inpaint_methods.exemplar."""

from __future__ import annotations

import numpy as np
import pytest

from inpaint_core.errors import InvalidInputError, ParameterError
from inpaint_methods.exemplar import _Filler, exemplar_fill


def _tiled(shape: tuple[int, int], channels: int = 3, period: int = 8, seed: int = 0) -> np.ndarray:
    """A random period x period tile repeated over the image: every value pins the phase."""
    tile = np.random.default_rng(seed).uniform(0.05, 0.95, (period, period, channels))
    reps = (-(-shape[0] // period), -(-shape[1] // period), 1)
    return np.ascontiguousarray(np.tile(tile, reps)[: shape[0], : shape[1]], dtype=np.float32)


def _noise(shape: tuple[int, int], channels: int = 3, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.uniform(0, 1, (*shape, channels)).astype(np.float32)


def _hole(shape: tuple[int, int], rows: slice, cols: slice) -> np.ndarray:
    mask = np.zeros(shape, bool)
    mask[rows, cols] = True
    return mask


def _fill(image: np.ndarray, mask: np.ndarray, seed: int = 0, **kwargs: int) -> np.ndarray:
    return exemplar_fill(image, mask, rng=np.random.default_rng(seed), **kwargs)


def test_known_pixels_bit_identical_and_output_contract() -> None:
    image = _noise((64, 64))
    mask = _hole((64, 64), slice(20, 40), slice(24, 44))
    before = image.copy()
    out = _fill(image, mask)
    assert out.dtype == np.float32
    assert out.shape == image.shape
    assert out.flags.c_contiguous
    assert np.array_equal(out[~mask].view(np.uint32), image[~mask].view(np.uint32))
    assert np.isfinite(out).all()
    assert out.min() >= 0.0 and out.max() <= 1.0
    assert np.array_equal(image, before), "the input must not be modified"


def test_filled_pixels_are_copies_of_known_pixels() -> None:
    # Exemplar methods copy, never blend: each filled RGB triple exists in the known region.
    image = _noise((48, 48), seed=3)
    mask = _hole((48, 48), slice(14, 30), slice(16, 34))
    out = _fill(image, mask, patch_size=5)
    known = {tuple(v) for v in image[~mask].tolist()}
    assert all(tuple(v) in known for v in out[mask].tolist())


def test_hole_values_are_never_read() -> None:
    image = _tiled((64, 64))
    mask = _hole((64, 64), slice(24, 40), slice(24, 40))
    image[mask] = np.nan
    out = _fill(image, mask)
    assert np.isfinite(out).all()


@pytest.mark.parametrize("patch_size", [3, 5, 9])
def test_periodic_texture_square_hole_reconstructed(patch_size: int) -> None:
    truth = _tiled((64, 64))
    mask = _hole((64, 64), slice(24, 40), slice(22, 38))
    damaged = np.where(mask[..., None], 0.0, truth).astype(np.float32)
    out = _fill(damaged, mask, patch_size=patch_size)
    assert np.abs(out - truth).max() < 1e-6


def test_vertical_stripes_reconstructed() -> None:
    row = np.array([0.1, 0.9, 0.3, 0.7, 0.5, 0.2, 0.8, 0.4], np.float32)
    truth = np.ascontiguousarray(np.broadcast_to(np.tile(row, 8)[None, :, None], (64, 64, 3)))
    mask = _hole((64, 64), slice(20, 44), slice(20, 44))
    out = _fill(np.where(mask[..., None], 0.0, truth).astype(np.float32), mask)
    assert np.abs(out - truth).max() < 1e-6


@pytest.mark.parametrize("offset", [3, -5])
def test_straight_diagonal_edge_continued(offset: int) -> None:
    # A two-tone 45 degree edge through a square hole: the fill must continue the edge, not drop
    # a block of the other tone where flat context makes many sources tie.
    yy, xx = np.mgrid[0:64, 0:64]
    truth = np.repeat(np.where(yy > xx + offset, 0.8, 0.2).astype(np.float32)[..., None], 3, 2)
    mask = _hole((64, 64), slice(20, 44), slice(20, 44))
    out = _fill(np.where(mask[..., None], 0.0, truth).astype(np.float32), mask)
    assert np.array_equal(out, truth)


def test_priority_favours_corners_on_flat_image() -> None:
    # White-box check of the confidence term: on a flat image the data term is constant, and the
    # front pixels whose patches hold the most known pixels (the hole's corners) rank first.
    mask = _hole((32, 32), slice(10, 22), slice(12, 24))
    filler = _Filler(np.full((32, 32, 3), 0.5, np.float32), mask, 5, 0, np.random.default_rng(0))
    m = filler.m
    filler._refresh(*filler._clip(0, 10**6, 0, 10**6))
    prio = filler.prio[m:m + 32, m:m + 32]
    assert np.isfinite(prio[mask]).sum() == 2 * (12 + 12) - 4  # the front is the hole's rim
    best = {tuple(map(int, yx)) for yx in np.argwhere(prio == prio.max())}
    assert best == {(10, 12), (10, 23), (21, 12), (21, 23)}
    assert np.isneginf(prio[~mask]).all()


@pytest.mark.parametrize("patch_size", [3, 7])
def test_incremental_front_matches_full_recompute(patch_size: int) -> None:
    # After each local update, gradients, priorities and tile maxima must equal a recomputation
    # over the whole image, i.e. the update regions are wide enough.
    image = _noise((48, 56), seed=5)
    mask = _hole((48, 56), slice(8, 40), slice(10, 30))
    mask[30:48, 40:56] = True  # a second hole, at a corner
    mask |= np.random.default_rng(5).random((48, 56)) < 0.03  # ragged edges, lone hole pixels
    filler = _Filler(image, mask, patch_size, 10, np.random.default_rng(0))
    full = filler._clip(0, 10**6, 0, 10**6)
    filler._gradients(*full)
    filler._refresh(*full)
    for _ in range(40):
        filler._fill_at(*filler._pick())
        state = [a.copy() for a in (filler.gx, filler.gy, filler.prio, filler.tmax)]
        filler._gradients(*full)
        filler._refresh(*full)
        fresh = (filler.gx, filler.gy, filler.prio, filler.tmax)
        assert all(np.array_equal(a, b) for a, b in zip(state, fresh, strict=True))
    assert filler.hole.any() and np.isfinite(filler.prio).any()


@pytest.mark.parametrize(("slope", "width", "patch_size"), [(1.0, 1.0, 5), (0.5, 1.5, 7)])
def test_thin_line_continued_through_hole(slope: float, width: float, patch_size: int) -> None:
    # The data term fills along the line first; confidence alone (onion peel) breaks it.
    yy, xx = np.mgrid[0:64, 0:64]
    line = np.abs(yy - slope * xx - 2) <= width
    truth = np.repeat(np.where(line, 0.9, 0.3).astype(np.float32)[..., None], 3, 2)
    mask = _hole((64, 64), slice(18, 46), slice(18, 46))
    out = _fill(np.where(mask[..., None], 0.0, truth).astype(np.float32), mask,
                patch_size=patch_size)
    assert np.array_equal(out, truth)


@pytest.mark.parametrize(
    ("rows", "cols"),
    [
        (slice(0, 12), slice(20, 36)),  # touches the top border
        (slice(20, 36), slice(52, 64)),  # touches the right border
        (slice(0, 12), slice(0, 12)),  # top-left corner
        (slice(50, 64), slice(50, 64)),  # bottom-right corner
    ],
)
def test_border_and_corner_holes_filled(rows: slice, cols: slice) -> None:
    truth = _tiled((64, 64), seed=1)
    mask = _hole((64, 64), rows, cols)
    out = _fill(np.where(mask[..., None], 0.0, truth).astype(np.float32), mask)
    assert np.isfinite(out).all()
    assert np.abs(out - truth).max() < 1e-6


def test_single_channel() -> None:
    truth = _tiled((40, 56), channels=1)
    mask = _hole((40, 56), slice(12, 26), slice(20, 34))
    out = _fill(np.where(mask[..., None], 0.0, truth).astype(np.float32), mask, patch_size=7)
    assert out.shape == (40, 56, 1) and out.dtype == np.float32
    assert np.abs(out - truth).max() < 1e-6


def test_small_radius_window_grows() -> None:
    # Radius 2 holds no valid source for targets deep in the 30x30 hole: the window must grow
    # (else no candidate is left); the fill stays a copy of known pixels.
    image = _noise((64, 64), seed=2)
    mask = _hole((64, 64), slice(17, 47), slice(17, 47))
    mask[5:9, 5:60] = True
    out = _fill(image, mask, patch_size=5, search_radius=2)
    assert np.array_equal(out[~mask], image[~mask])
    known = {tuple(v) for v in image[~mask].tolist()}
    assert all(tuple(v) in known for v in out[mask].tolist())


def test_whole_image_search() -> None:
    truth = _tiled((48, 48), seed=4)
    mask = _hole((48, 48), slice(16, 30), slice(10, 26))
    out = _fill(np.where(mask[..., None], 0.0, truth).astype(np.float32), mask, search_radius=0)
    assert np.abs(out - truth).max() < 1e-6


def test_search_radius_bounds_the_source() -> None:
    # Channels 0 and 1 ramp in x and y, so only one far-away region (a copy of the hole's
    # surroundings 38 columns to the right) matches exactly. Channel 2 is the true column, scaled
    # too small to sway the SSD, so it tells where each filled pixel was copied from.
    yy, xx = np.mgrid[0:32, 0:64].astype(np.float32)
    image = np.stack([xx / 64, yy / 32, xx * 1e-5], axis=2).astype(np.float32)
    image[:, 48:, :2] = image[:, 10:26, :2]
    mask = _hole((32, 64), slice(12, 20), slice(14, 22))
    ys, xs = np.nonzero(mask)
    near = _fill(image, mask, patch_size=5, search_radius=6)
    assert np.abs(np.rint(near[ys, xs, 2] * 1e5) - xs).max() <= 6
    anywhere = _fill(image, mask, patch_size=5, search_radius=0)
    assert (np.rint(anywhere[ys, xs, 2] * 1e5) - xs).min() >= 30  # the far copy wins


def test_deterministic_per_seed_and_seed_breaks_ties() -> None:
    # Sparse dots on flat grey: many source patches tie on the target's known pixels but differ
    # in the pixels they copy, so the seed decides the fill.
    rng = np.random.default_rng(7)
    image = np.full((64, 64, 3), 0.5, np.float32)
    dots = rng.random((64, 64)) < 0.03
    image[dots] = rng.random((int(dots.sum()), 3)).astype(np.float32)
    mask = _hole((64, 64), slice(22, 42), slice(22, 42))
    first, again = _fill(image, mask, seed=11), _fill(image, mask, seed=11)
    assert np.array_equal(first, again)
    others = [_fill(image, mask, seed=s) for s in (12, 13, 14)]
    assert any(not np.array_equal(first, o) for o in others)


def test_no_hole_returns_copy() -> None:
    image = _noise((16, 16))
    out = _fill(image, np.zeros((16, 16), bool))
    assert np.array_equal(out, image) and out is not image


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"patch_size": 8}, r"patch_size=8 must be odd and >= 3"),
        ({"patch_size": 1}, r"patch_size=1 must be odd and >= 3"),
        ({"patch_size": 2}, r"patch_size=2 must be odd and >= 3"),
        ({"patch_size": 5.0}, r"patch_size=5\.0 must be odd"),
        ({"search_radius": -1}, r"search_radius=-1 must be an integer >= 0"),
    ],
)
def test_bad_parameters(kwargs: dict, match: str) -> None:
    mask = _hole((32, 32), slice(10, 20), slice(10, 20))
    with pytest.raises(ParameterError, match=match):
        _fill(_noise((32, 32)), mask, **kwargs)


@pytest.mark.parametrize(
    ("image", "match"),
    [
        (np.zeros((32, 32, 3), np.float64), r"image is float64 \(32, 32, 3\); expected float32"),
        (np.zeros((32, 32), np.float32), r"image is float32 \(32, 32\); expected float32 \(H, W"),
        (np.zeros((32, 32, 2), np.float32), r"image is float32 \(32, 32, 2\); expected"),
        (np.zeros((32, 32, 4), np.float32), r"C in \{1, 3\}"),
    ],
)
def test_bad_image(image: np.ndarray, match: str) -> None:
    with pytest.raises(InvalidInputError, match=match):
        _fill(image, _hole((32, 32), slice(10, 20), slice(10, 20)))


def test_mask_shape_mismatch() -> None:
    match = r"mask shape \(32, 30\) does not match image \(32, 32\)"
    with pytest.raises(InvalidInputError, match=match):
        _fill(_noise((32, 32)), np.zeros((32, 30), bool))


def test_mask_not_bool() -> None:
    with pytest.raises(InvalidInputError, match=r"mask is uint8; expected a bool array"):
        _fill(_noise((32, 32)), np.zeros((32, 32), np.uint8))


def test_mask_without_known_pixel() -> None:
    with pytest.raises(InvalidInputError, match=r"mask has no known pixel"):
        _fill(_noise((32, 32)), np.ones((32, 32), bool))


def test_image_smaller_than_patch() -> None:
    mask = _hole((8, 8), slice(2, 4), slice(2, 4))
    match = r"no 9x9 source patch .* 8x8 image; use a smaller patch_size"
    with pytest.raises(InvalidInputError, match=match):
        _fill(_noise((8, 8)), mask)


def test_no_hole_free_source_patch() -> None:
    # Hole rows every 6 pixels leave no 9x9 window free of the hole, though 5x5 ones exist.
    mask = np.zeros((40, 40), bool)
    mask[::6] = True
    with pytest.raises(InvalidInputError, match=r"use a smaller patch_size \(now 9\)"):
        _fill(_noise((40, 40)), mask)
    assert np.isfinite(_fill(_noise((40, 40)), mask, patch_size=5)).all()
