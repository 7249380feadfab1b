"""The array contract: checking images and masks, and converting to and from the working form.

Public arrays are ``(H, W)`` or ``(H, W, C)`` images with C in {1, 3, 4} and dtype uint8,
uint16, float32 or float64 (floats in [0, 1]); masks are ``(H, W)`` bool or integer labels
(any non-zero label is a hole). Methods work on float32 ``(H, W, C)`` with C in {1, 3}: alpha
is split off before and passed through untouched after.
"""

from __future__ import annotations

import numpy as np

from inpaint_core.errors import InvalidInputError

SUPPORTED_DTYPES = (np.uint8, np.uint16, np.float32, np.float64)
SUPPORTED_CHANNELS = (1, 3, 4)
_DTYPE_NAMES = ", ".join(np.dtype(kind).name for kind in SUPPORTED_DTYPES)


def is_integer(value: object) -> bool:
    """True for Python and NumPy integers, False for bools (which are ints to Python)."""
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def check_image(image: object, name: str = "image") -> np.ndarray:
    """Check ``image`` against the public array contract and return it as an ndarray.

    Args:
        image: array-like ``(H, W)`` or ``(H, W, C)``, C in {1, 3, 4}; uint8, uint16, or
            float32/float64 with finite values in [0, 1].
        name: what to call the array in error messages.

    Raises:
        InvalidInputError: naming the bad shape, dtype, channel count, NaN position or range.
    """
    array = np.asarray(image)
    if array.ndim not in (2, 3):
        raise InvalidInputError(
            f"{name} has shape {array.shape}; expected (H, W) or (H, W, C) with C in 1, 3, 4"
        )
    if array.ndim == 3 and array.shape[2] not in SUPPORTED_CHANNELS:
        raise InvalidInputError(
            f"{name} has {array.shape[2]} channels (shape {array.shape}); "
            "supported: 1, 3 (RGB) or 4 (RGBA)"
        )
    if array.shape[0] < 1 or array.shape[1] < 1:
        raise InvalidInputError(f"{name} has shape {array.shape}; it holds no pixels")
    if array.dtype not in SUPPORTED_DTYPES:
        raise InvalidInputError(
            f"{name} dtype {array.dtype} is not supported; use one of {_DTYPE_NAMES}"
        )
    if array.dtype.kind == "f":
        finite = np.isfinite(array)
        if not finite.all():
            bad = np.argwhere(~finite)
            row, column = bad[0][:2]
            raise InvalidInputError(
                f"{name} contains {len(bad)} NaN or infinite values "
                f"(first at row {row}, column {column}); fill or drop them first"
            )
        low, high = float(array.min()), float(array.max())
        if low < 0.0 or high > 1.0:
            raise InvalidInputError(
                f"{name} is floating point with values in [{low:g}, {high:g}]; "
                "float images must lie in [0, 1] (divide by the maximum, or pass uint8/uint16)"
            )
    return array


def check_mask(mask: object, shape: tuple[int, ...], name: str = "mask") -> np.ndarray:
    """Check ``mask`` and return it as bool ``(H, W)``, True = hole.

    Args:
        mask: array-like ``(H, W)``: bool, or integer labels where any non-zero value is a hole.
        shape: the image shape; the mask must match its first two entries.
        name: what to call the array in error messages.

    Raises:
        InvalidInputError: naming the bad dtype or the mismatched shapes.
    """
    array = np.asarray(mask)
    if array.dtype != np.bool_ and array.dtype.kind not in "iu":
        raise InvalidInputError(
            f"{name} dtype {array.dtype} is not supported; pass bool or integer labels "
            "(non-zero = hole)"
        )
    if array.shape != tuple(shape[:2]):
        raise InvalidInputError(
            f"{name} shape {array.shape} does not match image {tuple(shape[:2])}"
        )
    return array != 0


def to_float_colour(image: np.ndarray) -> np.ndarray:
    """Return the colour channels of a checked image as float32 ``(H, W, C)`` in [0, 1].

    C is 1 for ``(H, W)`` and ``(H, W, 1)`` images and 3 for RGB and RGBA (alpha is dropped:
    :func:`paste_pixels` keeps the original's). Integers are divided by their dtype's
    maximum. The result is C-contiguous.
    """
    colour = image if image.ndim == 3 else image[:, :, np.newaxis]
    colour = colour[:, :, :3]
    if image.dtype.kind == "u":
        scaled = colour.astype(np.float32) / np.float32(np.iinfo(image.dtype).max)
    else:
        scaled = colour.astype(np.float32)
    return np.ascontiguousarray(scaled)


def native_colour(image: np.ndarray) -> np.ndarray:
    """The colour channels of a checked integer image in its own dtype: ``(H, W, C)``, C in
    {1, 3}, C-contiguous and read-only (a view of ``image`` when it already is that)."""
    colour = image if image.ndim == 3 else image[:, :, np.newaxis]
    view = np.ascontiguousarray(colour[:, :, :3]).view()
    view.flags.writeable = False
    return view


def from_float(values: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """Convert float values in [0, 1] to ``dtype`` (rounding for integers; clipping first)."""
    clipped = np.clip(values, 0.0, 1.0)
    if np.dtype(dtype).kind == "u":
        top = np.iinfo(dtype).max
        return np.rint(clipped * top).astype(dtype)
    return clipped.astype(dtype)


def hole_values(filled: np.ndarray, at: np.ndarray) -> np.ndarray:
    """The ``(N, C)`` pixels of ``filled`` (``(H, W, C)``) at the flat pixel indices ``at``
    (``np.flatnonzero`` of an ``(H, W)`` hole): a gather of the hole's few pixels, without
    scanning a boolean mask of the whole image."""
    return filled.reshape(-1, filled.shape[2])[at]


def paste_pixels(image: np.ndarray, at: np.ndarray, values: np.ndarray) -> np.ndarray:
    """A copy of the checked ``image`` whose colour pixels at the flat pixel indices ``at``
    are the float ``values`` ``(N, C)`` in [0, 1], converted to its dtype (:func:`from_float`),
    or integer values already in its dtype (a method's native result), taken as they are;
    C is its colour channels (1 or 3), so an alpha channel stays as it is."""
    result = image.copy()
    native = values.dtype == image.dtype and image.dtype.kind == "u"
    converted = values if native else from_float(values, image.dtype)
    if image.ndim == 2:
        result.reshape(-1)[at] = converted[:, 0]
    else:
        result.reshape(-1, image.shape[2])[at, : values.shape[1]] = converted
    return result
