"""The public array API: dtypes, shapes, alpha, untouched pixels, and every bad input."""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import pytest

import inpaint_core
from inpaint_core import Family, InpaintMethod, MethodInfo, inpaint
from inpaint_core.errors import (
    InvalidInputError,
    MethodFailedError,
    ParameterError,
    UnknownMethodError,
)


class ReturnsNaN(InpaintMethod):
    info = MethodInfo("returns-nan", Family.OTHER, "broken", "none")

    def run(self, image, mask, rng):
        return np.full_like(image, np.nan)


class ReturnsWrongShape(InpaintMethod):
    info = MethodInfo("wrong-shape", Family.OTHER, "broken", "none")

    def run(self, image, mask, rng):
        return image[:-1]


class RecordsInput(InpaintMethod):
    """Fills with 0.5 and remembers what it was given."""

    info = MethodInfo("records", Family.OTHER, "test", "none")
    seen: ClassVar[list] = []

    def run(self, image, mask, rng):
        RecordsInput.seen.append((image.copy(), mask.copy()))
        return np.full_like(image, 0.5)


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32, np.float64])
@pytest.mark.parametrize("trailing", [(), (1,), (3,), (4,)])
def test_shape_dtype_kept_and_known_pixels_bit_identical(dtype, trailing, hole_mask) -> None:
    rng = np.random.default_rng(3)
    shape = (40, 56, *trailing)
    if np.dtype(dtype).kind == "u":
        image = rng.integers(0, np.iinfo(dtype).max, size=shape, endpoint=True).astype(dtype)
    else:
        image = rng.random(shape).astype(dtype)
    result = inpaint(image, hole_mask, "telea")
    assert result.shape == image.shape and result.dtype == image.dtype
    assert np.array_equal(result[~hole_mask], image[~hole_mask])
    if trailing == (4,):
        assert np.array_equal(result[..., 3], image[..., 3])  # alpha untouched, even in holes
    assert not np.array_equal(result[hole_mask], image[hole_mask])


class Gradient(InpaintMethod):
    """Fills every pixel with a value that depends on its row, column and channel."""

    info = MethodInfo("gradient", Family.OTHER, "test", "none")

    def run(self, image, mask, rng):
        rows, cols, channels = np.indices(image.shape, dtype=np.float32)
        return (rows * 7 + cols * 3 + channels * 50) % 97 / 96


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32])
@pytest.mark.parametrize("trailing", [(), (1,), (3,), (4,)])
def test_hole_pixels_are_the_methods_values_in_the_images_dtype(dtype, trailing, hole_mask) -> None:
    image = np.zeros((40, 56, *trailing), dtype=dtype)
    result = inpaint(image, hole_mask, Gradient())
    colours = min(image.shape[2], 3) if image.ndim == 3 else 1
    expected = Gradient().run(np.zeros((40, 56, colours), np.float32), hole_mask, None)
    if np.dtype(dtype).kind == "u":
        expected = np.rint(expected * np.iinfo(dtype).max).astype(dtype)
    got = result.reshape(40, 56, -1)
    assert np.array_equal(got[hole_mask][:, :colours], expected[hole_mask].astype(dtype))
    assert not got[~hole_mask].any() and not got[..., colours:].any()  # known pixels, alpha


def test_method_sees_float32_colour_without_alpha(hole_mask) -> None:
    image = np.zeros((40, 56, 4), dtype=np.uint16)
    image[..., 0] = 65535
    image[..., 3] = 1234
    RecordsInput.seen.clear()
    result = inpaint(image, hole_mask.astype(np.int32) * 7, RecordsInput())
    seen_image, seen_mask = RecordsInput.seen[0]
    assert seen_image.dtype == np.float32 and seen_image.shape == (40, 56, 3)
    assert seen_image[..., 0].max() == 1.0 and seen_image.flags.c_contiguous
    assert seen_mask.dtype == bool and np.array_equal(seen_mask, hole_mask)
    assert (result[hole_mask, :3] == 32768).all()  # 0.5 * 65535 rounded
    assert (result[..., 3] == 1234).all()


def test_integer_labels_are_holes_wherever_non_zero(rgb_image) -> None:
    labels = np.zeros(rgb_image.shape[:2], dtype=np.uint16)
    labels[5:9, 5:9] = 3
    labels[20:24, 30:34] = 9
    result = inpaint(rgb_image, labels, RecordsInput())
    assert (result[labels != 0] == 128).all()
    assert np.array_equal(result[labels == 0], rgb_image[labels == 0])


def test_empty_mask_returns_an_unchanged_copy(rgb_image) -> None:
    RecordsInput.seen.clear()
    result = inpaint(rgb_image, np.zeros(rgb_image.shape[:2], bool), RecordsInput())
    assert np.array_equal(result, rgb_image) and result is not rgb_image
    assert RecordsInput.seen == []  # the method is not even called


def test_default_method_is_biharmonic_and_params_pass_through(rgb_image, hole_mask) -> None:
    default = inpaint(rgb_image, hole_mask)
    explicit = inpaint(rgb_image, hole_mask, "biharmonic", split_into_regions=False)
    assert inpaint_core.DEFAULT_METHOD == "biharmonic"
    assert np.abs(default.astype(int) - explicit.astype(int)).max() <= 1


@pytest.mark.parametrize(
    ("image", "message"),
    [
        (np.zeros((4, 4, 4, 3), np.uint8), r"image has shape \(4, 4, 4, 3\); expected \(H, W\)"),
        (np.zeros((4, 4, 2), np.uint8), r"image has 2 channels \(shape \(4, 4, 2\)\)"),
        (np.zeros((4, 4, 3), np.int32), r"image dtype int32 is not supported; use one of uint8"),
        (np.zeros((4, 4), bool), r"image dtype bool is not supported"),
        (np.zeros((0, 4), np.uint8), r"image has shape \(0, 4\); it holds no pixels"),
        (np.full((4, 4), 2.0, np.float32), r"values in \[2, 2\]; float images must lie in"),
    ],
)
def test_bad_images_are_refused_with_the_value_named(image, message) -> None:
    with pytest.raises(InvalidInputError, match=message):
        inpaint(image, np.ones(image.shape[:2], bool), "telea")


def test_nan_image_is_refused_with_its_position() -> None:
    image = np.zeros((6, 8, 3), np.float32)
    image[2, 5, 1] = np.nan
    image[4, 1, 0] = np.inf
    mask = np.zeros((6, 8), bool)
    mask[0, 0] = True
    with pytest.raises(InvalidInputError, match=r"2 NaN or infinite values \(first at row 2, "
                       r"column 5\)"):
        inpaint(image, mask, "telea")


def test_mask_shape_mismatch_is_refused(rgb_image) -> None:
    with pytest.raises(InvalidInputError, match=r"mask shape \(40, 55\) does not match image "
                       r"\(40, 56\)"):
        inpaint(rgb_image, np.ones((40, 55), bool), "telea")


def test_float_mask_is_refused(rgb_image) -> None:
    with pytest.raises(InvalidInputError, match="mask dtype float64 is not supported"):
        inpaint(rgb_image, np.ones((40, 56)), "telea")


def test_all_hole_mask_is_refused(rgb_image) -> None:
    with pytest.raises(InvalidInputError, match=r"mask covers every pixel of the \(40, 56\)"):
        inpaint(rgb_image, np.ones((40, 56), bool), "telea")


def test_unknown_method_lists_the_valid_ones(rgb_image, hole_mask) -> None:
    names = ", ".join(info.name for info in inpaint_core.list_methods())  # sorted
    assert names.startswith("biharmonic, ") and "telea" in names
    expected = f"unknown method 'teela'; valid methods: {names}$"
    with pytest.raises(UnknownMethodError, match=expected):
        inpaint(rgb_image, hole_mask, "teela")


def test_bad_parameters_are_refused(rgb_image, hole_mask) -> None:
    with pytest.raises(ParameterError, match=r"method 'telea' has no parameter 'radious'"):
        inpaint(rgb_image, hole_mask, "telea", radious=3)
    with pytest.raises(ParameterError, match=r"radius=0 is out of range \[1, 100\]"):
        inpaint(rgb_image, hole_mask, "telea", radius=0)
    with pytest.raises(InvalidInputError, match=r"parameters \['radius'\] were given with a "
                       "method instance"):
        inpaint(rgb_image, hole_mask, RecordsInput(), radius=3)


@pytest.mark.parametrize(
    ("method", "message"),
    [
        (ReturnsNaN, "method 'returns-nan' returned NaN or infinite values in the hole"),
        (ReturnsWrongShape, r"method 'wrong-shape' returned shape \(39, 56, 3\); expected"),
    ],
)
def test_a_broken_method_is_reported_not_passed_on(rgb_image, hole_mask, method, message):
    with pytest.raises(MethodFailedError, match=message):
        inpaint(rgb_image, hole_mask, method())


def test_list_and_get_method() -> None:
    names = [info.name for info in inpaint_core.list_methods()]
    assert names == sorted(names)
    assert {"telea", "navier-stokes", "biharmonic", "exemplar"} <= set(names)
    telea = inpaint_core.get_method("telea")
    assert telea.info.family is Family.CLASSICAL and not telea.info.learned
    assert telea(radius=9).params == {"radius": 9}


def test_inpaint_batch_equals_one_call_per_image(rgb_image, hole_mask) -> None:
    from inpaint_core.api import inpaint_batch

    other = np.ascontiguousarray(rgb_image[::-1])
    masks = [hole_mask, np.zeros_like(hole_mask), np.roll(hole_mask, 7, axis=1)]
    results = inpaint_batch([rgb_image, other, other], masks, "telea", radius=3, seed=2)
    for image, mask, result in zip([rgb_image, other, other], masks, results, strict=True):
        assert np.array_equal(result, inpaint(image, mask, "telea", radius=3, seed=2))
    assert np.array_equal(results[1], other) and results[1] is not other  # empty mask: a copy
    with pytest.raises(InvalidInputError, match="2 images but 1 masks"):
        inpaint_batch([rgb_image, other], [hole_mask], "telea")
    with pytest.raises(InvalidInputError, match="mask covers every pixel"):
        inpaint_batch([rgb_image], [np.ones_like(hole_mask)], "telea")
