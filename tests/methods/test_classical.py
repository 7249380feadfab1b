"""Classical methods: fill quality on known images, 16-bit precision, parameter checks."""

from __future__ import annotations

import numpy as np
import pytest

from inpaint_core import inpaint
from inpaint_core.errors import ParameterError


def ramp_image(height: int = 48, width: int = 64) -> np.ndarray:
    """float32 ``(H, W, 3)``: three linear ramps (the easiest thing to fill well)."""
    rows, columns = np.mgrid[0:height, 0:width].astype(np.float32)
    return np.stack(
        [rows / (height - 1), columns / (width - 1), (rows + columns) / (height + width - 2)],
        axis=2,
    )


def square_mask(height: int = 48, width: int = 64, size: int = 12) -> np.ndarray:
    mask = np.zeros((height, width), bool)
    top, left = (height - size) // 2, (width - size) // 2
    mask[top : top + size, left : left + size] = True
    return mask


@pytest.mark.parametrize(
    ("method", "tolerance"),
    [
        ("telea", 0.05), ("navier-stokes", 0.05), ("biharmonic", 0.002), ("exemplar", 0.08),
        ("push-pull", 0.05), ("telea-pushpull", 0.05),
    ],
)
def test_ramp_hole_is_filled_close_to_the_truth(method: str, tolerance: float) -> None:
    image, mask = ramp_image(), square_mask()
    damaged = image.copy()
    damaged[mask] = 1.0
    result = inpaint(damaged, mask, method)
    error = np.abs(result[mask] - image[mask]).mean()
    assert error < tolerance, f"{method}: mean hole error {error:.4f}"
    assert np.array_equal(result[~mask], image[~mask])


@pytest.mark.parametrize(
    "method", ["telea", "navier-stokes", "biharmonic", "push-pull", "telea-pushpull"]
)
def test_16_bit_precision_is_kept(method: str) -> None:
    """A 16-bit fill is not quantised to 8 bit: fills fall between multiples of 257."""
    image = np.rint(ramp_image()[:, :, 0] * 65535).astype(np.uint16)
    mask = square_mask()
    result = inpaint(image, mask, method)
    assert result.dtype == np.uint16
    assert np.count_nonzero(result[mask] % 257) > mask.sum() // 2


@pytest.mark.parametrize(
    ("method", "params", "message"),
    [
        ("telea", {"radius": 0}, r"radius=0 is out of range \[1, 100\]"),
        ("navier-stokes", {"radius": 101}, r"radius=101 is out of range"),
        ("biharmonic", {"split_into_regions": "yes"}, r"must be true or false"),
        ("exemplar", {"patch_size": 1}, r"patch_size=1 is out of range \[3, 63\]"),
        ("exemplar", {"patch_size": 8}, r"patch_size=8 must be odd"),
        ("exemplar", {"search_radius": -1}, r"search_radius=-1 is out of range"),
    ],
)
def test_bad_parameters_name_the_value(method: str, params: dict, message: str) -> None:
    with pytest.raises(ParameterError, match=message):
        inpaint(ramp_image(), square_mask(), method, **params)


def test_exemplar_copies_texture_that_smooth_methods_blur() -> None:
    """On stripes, patch copying restores the pattern; diffusion (telea) smears it."""
    columns = np.arange(64)
    stripes = np.where((columns // 4) % 2 == 0, 0.9, 0.1).astype(np.float32)
    image = np.repeat(np.repeat(stripes[np.newaxis, :, np.newaxis], 48, axis=0), 3, axis=2)
    mask = square_mask()
    exemplar = np.abs(inpaint(image, mask, "exemplar")[mask] - image[mask]).mean()
    telea = np.abs(inpaint(image, mask, "telea")[mask] - image[mask]).mean()
    assert exemplar < 0.02 < telea


def test_telea_pushpull_is_the_mean_of_its_two_fills() -> None:
    rng = np.random.default_rng(0)
    image = rng.random((40, 52, 3), dtype=np.float32)
    mask = square_mask(40, 52, 16)
    telea = inpaint(image, mask, "telea", radius=3)
    pushpull = inpaint(image, mask, "push-pull")
    blend = inpaint(image, mask, "telea-pushpull", radius=3)
    np.testing.assert_allclose(blend[mask], (telea[mask] + pushpull[mask]) / 2, atol=1e-6)
    assert np.array_equal(blend[~mask], image[~mask])
    assert np.abs(blend - telea)[mask].mean() > 0.01  # not just telea
