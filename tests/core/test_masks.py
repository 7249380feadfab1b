"""Mask generators: exact coverage, determinism, the shape of each kind, and every refusal."""

from __future__ import annotations

import math
import time

import numpy as np
import pytest
from scipy.ndimage import distance_transform_edt, label

from inpaint_core.errors import InvalidInputError
from inpaint_core.masks import (
    SURVEY_PROTOCOL,
    MaskKind,
    centre_mask,
    crack_mask,
    free_form_mask,
    make_mask,
)

RANDOM_KINDS = (MaskKind.FREE_FORM, MaskKind.RECTANGLES, MaskKind.CRACKS)
SHAPES = ((64, 64), (64, 200), (173, 96), (512, 512))
RATIOS = {
    MaskKind.CENTRE: (0.05, 0.15, 0.25, 0.5),
    MaskKind.FREE_FORM: (0.05, 0.1, 0.3, 0.5),
    MaskKind.RECTANGLES: (0.05, 0.25, 0.5),
    MaskKind.CRACKS: (0.01, 0.05, 0.2),
}


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("kind", list(MaskKind))
def test_every_kind_hits_its_coverage(kind: MaskKind, shape: tuple[int, int]) -> None:
    for ratio in RATIOS[kind]:
        for seed in (0, 1):
            mask = make_mask(kind, shape, ratio, seed)
            assert mask.dtype == np.bool_ and mask.shape == shape
            assert abs(mask.mean() - ratio) <= 0.01, (kind, shape, ratio, seed, mask.mean())
            assert mask.any() and not mask.all()
            if kind is not MaskKind.CENTRE:  # random kinds are cut at the exact pixel count
                assert mask.sum() == round(ratio * mask.size)


@pytest.mark.parametrize("kind", list(MaskKind))
def test_near_total_coverage_still_leaves_a_known_pixel(kind: MaskKind) -> None:
    mask = make_mask(kind, (40, 40), 0.9995, 3)
    assert 1 <= (~mask).sum() <= 40  # centre: one row kept; the others: the exact count, 1
    tiny = make_mask(kind, (2, 1), 0.5, 0)
    assert tiny.sum() == 1


@pytest.mark.parametrize("kind", RANDOM_KINDS)
def test_same_seed_same_mask_and_seeds_differ(kind: MaskKind) -> None:
    first = make_mask(kind, (96, 128), 0.2, 7)
    assert np.array_equal(first, make_mask(kind, (96, 128), 0.2, 7))
    assert np.array_equal(first, make_mask(kind.value, (96, 128), 0.2, np.int64(7)))
    others = [make_mask(kind, (96, 128), 0.2, seed) for seed in (8, 9, 10)]
    assert all(not np.array_equal(first, other) for other in others)


@pytest.mark.parametrize("shape", [(64, 64), (100, 173), (173, 100), (31, 64)])
@pytest.mark.parametrize("ratio", [0.1, 0.15, 0.2, 0.25])
def test_centre_mask_is_a_centred_square(shape: tuple[int, int], ratio: float) -> None:
    mask = centre_mask(shape, ratio)
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    side = round(math.sqrt(ratio * shape[0] * shape[1]))
    assert len(rows) == len(cols) == side and mask.sum() == side * side  # a filled square
    assert abs(rows[0] - (shape[0] - 1 - rows[-1])) <= 1  # margins above and below
    assert abs(cols[0] - (shape[1] - 1 - cols[-1])) <= 1
    assert np.array_equal(mask, make_mask("centre", shape, ratio, seed=123))  # seed unused


def test_centre_mask_becomes_a_band_when_the_square_does_not_fit() -> None:
    mask = centre_mask((32, 256), 0.5)  # a 64 px square would not fit 32 rows
    assert mask.sum() == 32 * 128 and mask[:, 64:192].all()
    assert np.array_equal(centre_mask((256, 32), 0.5), mask.T)
    assert (~centre_mask((20, 20), 0.999)).sum() == 20  # would be the whole image: a row less


def test_cracks_are_thin_and_free_form_strokes_are_not() -> None:
    for seed in range(3):
        cracks = make_mask(MaskKind.CRACKS, (256, 256), 0.05, seed)
        strokes = make_mask(MaskKind.FREE_FORM, (256, 256), 0.05, seed)
        # Distance from each hole pixel to the nearest known one: at most 2 px in a 1-3 px
        # crack; only crossings and forks reach further.
        assert (distance_transform_edt(cracks)[cracks] <= 2).mean() > 0.95
        assert (distance_transform_edt(strokes)[strokes] <= 2).mean() < 0.5


def test_cracks_branch_into_connected_networks() -> None:
    mask = crack_mask((256, 256), 0.05, np.random.default_rng(0))
    labels, count = label(mask, structure=np.ones((3, 3)))
    sizes = np.bincount(labels.ravel())[1:]
    assert count < 40 and sizes.max() > 300  # long networks, not scattered specks


def test_free_form_is_fast() -> None:
    best = math.inf
    for seed in range(3):
        start = time.perf_counter()
        free_form_mask((512, 512), 0.4, np.random.default_rng(seed))
        best = min(best, time.perf_counter() - start)
    assert best < 0.1


def test_survey_protocol() -> None:
    assert SURVEY_PROTOCOL == (
        (MaskKind.CENTRE, (0.10, 0.15, 0.20, 0.25)),
        (MaskKind.FREE_FORM, (0.10, 0.20, 0.30, 0.40)),
    )
    assert MaskKind("free_form") is MaskKind.FREE_FORM and MaskKind.CRACKS == "cracks"


@pytest.mark.parametrize(
    ("ratio", "message"),
    [
        (1.5, r"ratio=1\.5 must be in \(0, 1\)"),
        (0, r"ratio=0 must be in \(0, 1\)"),
        (1.0, r"ratio=1\.0 must be in \(0, 1\)"),
        (-0.1, r"ratio=-0\.1 must be in \(0, 1\)"),
        (float("nan"), r"ratio=nan must be in \(0, 1\)"),
        ("0.2", r"ratio='0\.2' must be in \(0, 1\)"),
        (True, r"ratio=True must be in \(0, 1\)"),
    ],
)
@pytest.mark.parametrize("kind", list(MaskKind))
def test_bad_ratio_is_named(kind: MaskKind, ratio: object, message: str) -> None:
    with pytest.raises(InvalidInputError, match=message):
        make_mask(kind, (64, 64), ratio, 0)


def test_generators_call_their_ratio_coverage() -> None:
    with pytest.raises(InvalidInputError, match=r"coverage=1\.5 must be in \(0, 1\)"):
        free_form_mask((64, 64), 1.5, np.random.default_rng(0))
    with pytest.raises(InvalidInputError, match=r"ratio=2 must be in \(0, 1\)"):
        centre_mask((64, 64), 2)


def test_unknown_kind_lists_the_valid_ones() -> None:
    message = r"unknown mask kind 'blobs'; valid kinds: centre, free_form, rectangles, cracks"
    with pytest.raises(InvalidInputError, match=message):
        make_mask("blobs", (64, 64), 0.1, 0)
    with pytest.raises(InvalidInputError, match="unknown mask kind 'CENTRE'"):
        make_mask("CENTRE", (64, 64), 0.1, 0)


@pytest.mark.parametrize("shape", [(64,), (0, 64), (64, -1), (64.0, 64), (1, 1), "64x64", 64])
@pytest.mark.parametrize("kind", list(MaskKind))
def test_bad_shape_is_named(kind: MaskKind, shape: object) -> None:
    with pytest.raises(InvalidInputError, match=r"shape=.* must be two positive ints"):
        make_mask(kind, shape, 0.1, 0)


@pytest.mark.parametrize("seed", [-1, 1.5, True, "0", None])
def test_bad_seed_is_named(seed: object) -> None:
    with pytest.raises(InvalidInputError, match=r"seed=.* must be a non-negative int"):
        make_mask(MaskKind.CRACKS, (64, 64), 0.1, seed)
