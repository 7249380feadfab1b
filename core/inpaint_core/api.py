"""The array-level public API: list, look up and run methods."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np

from inpaint_core.arrays import (
    check_image,
    check_mask,
    hole_values,
    native_colour,
    paste_pixels,
    to_float_colour,
)
from inpaint_core.errors import InvalidInputError, MethodFailedError
from inpaint_core.method import InpaintMethod, MethodInfo, MethodResult
from inpaint_core.plugins import get_registry

logger = logging.getLogger(__name__)

DEFAULT_METHOD = "biharmonic"
#: How far outside [0, 1] a method's float result may stray (float rounding) before it is an
#: error rather than clipped: a result of 5.0 or of 0-255 values is a bug, 1.0000001 is not.
RANGE_TOLERANCE = 1e-4


class _NoHole:
    """The type of :data:`NO_HOLE`."""

    _instance: _NoHole | None = None

    def __new__(cls) -> _NoHole:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "NO_HOLE"

    def __reduce__(self) -> str:  # one marker, also after pickling (dask workers)
        return "NO_HOLE"


NO_HOLE = _NoHole()
"""What :func:`run_prepared` gives for an item without a hole, which the method never sees:
an explicit marker, so that a method's ``None`` is never mistaken for "nothing to do"."""


def list_methods() -> list[MethodInfo]:
    """Return the info of every registered method (built-in and third-party), sorted by name."""
    registry = get_registry()
    return [registry.methods[name].info for name in sorted(registry.methods)]


def get_method(name: str) -> type[InpaintMethod]:
    """Return the method class registered as ``name``.

    Raises:
        UnknownMethodError: listing the valid names.
    """
    return get_registry().get(name)


def method_plugin(name: str) -> str:
    """Return the name of the plugin that registered method ``name``."""
    registry = get_registry()
    registry.get(name)
    return registry.plugin_of[name]


def inpaint(
    image: np.ndarray,
    mask: np.ndarray,
    method: str | InpaintMethod = DEFAULT_METHOD,
    *,
    seed: int = 0,
    return_extras: bool = False,
    **params: Any,
) -> np.ndarray | tuple[np.ndarray, dict[str, np.ndarray]]:
    """Fill the masked pixels of ``image`` with ``method``.

    Args:
        image: ``(H, W)`` or ``(H, W, C)``, C in {1, 3, 4}; uint8, uint16, or float32/float64
            in [0, 1]. A fourth channel is alpha and is passed through untouched.
        mask: ``(H, W)`` bool, or integer labels; any non-zero value is a hole.
        method: a registered method name (see :func:`list_methods`) or a method instance.
        seed: seeds the method's random generator; the same seed gives the same result.
        return_extras: also return the method's extra outputs (see ``MethodResult``), e.g.
            ``edge-gan``'s ``{"edges": float32 (H, W) in [0, 1]}`` with ``show_edges=True``.
        **params: the method's parameters (see ``MethodInfo.parameters``); only with a name.

    Returns:
        A new array of the same shape and dtype as ``image``. Pixels outside the mask are
        bit-identical to the input; an empty mask returns an unchanged copy. With
        ``return_extras``, a tuple ``(array, extras)`` (extras empty for most methods).

    Raises:
        UnknownMethodError, ParameterError, InvalidInputError: with the bad value named.
        MethodFailedError: the method returned a wrong shape or non-finite values.
    """
    instance = _instance(method, params)
    item = prepare(image, mask, instance.info.name, type(instance).native_dtypes)
    if item.colour is None:
        return (item.image.copy(), {}) if return_extras else item.image.copy()
    filled = instance.run(item.colour, item.hole.copy(), np.random.default_rng(seed))
    restored, extras = paste_result(instance.info.name, item, filled)
    return (restored, extras) if return_extras else restored


def inpaint_batch(
    images: list[np.ndarray],
    masks: list[np.ndarray],
    method: str | InpaintMethod = DEFAULT_METHOD,
    *,
    seed: int = 0,
    **params: Any,
) -> list[np.ndarray]:
    """:func:`inpaint` on several images at once, through the method's ``run_batch``.

    Each item is checked, converted and pasted back exactly as :func:`inpaint` does it, with
    the same ``seed``, so the results equal one :func:`inpaint` call per item; a learned
    method runs same-sized items as one batch on its device. Arguments and errors as for
    :func:`inpaint` (per item); returns the restored arrays in order.
    """
    instance = _instance(method, params)
    name = instance.info.name
    if len(images) != len(masks):
        raise InvalidInputError(f"{len(images)} images but {len(masks)} masks")
    native = type(instance).native_dtypes
    items = [prepare(image, mask, name, native) for image, mask in zip(images, masks, strict=True)]
    filled = run_prepared(instance, items, seed)
    return [
        item.image.copy() if output is NO_HOLE else paste_result(name, item, output)[0]
        for item, output in zip(items, filled, strict=True)
    ]


@dataclass(frozen=True)
class Prepared:
    """An image and its mask, checked and converted for a method (:func:`prepare`)."""

    image: np.ndarray  # the checked original: (H, W[, C]), uint8, uint16, float32 or float64
    hole: np.ndarray  # bool (H, W)
    colour: np.ndarray | None  # (H, W, C), C in {1, 3}: float32 in [0, 1] or a native dtype


def prepare(
    image: np.ndarray, mask: np.ndarray, name: str, native: frozenset[str] | None = None
) -> Prepared:
    """Check ``image`` and ``mask`` as :func:`inpaint` does and convert the image's colour for
    method ``name`` (named in errors): float32, or kept in its dtype if that is one of the
    method's ``native`` dtypes (default: the registered method's ``native_dtypes``). The first
    step of :func:`inpaint`, split out so that the tiled engine can prepare the next tiles on
    its I/O threads while the method runs.

    Raises:
        InvalidInputError: a bad image or mask, or a mask that covers every pixel.
    """
    array, hole = _checked(image, mask, name)
    if not hole.any():
        return Prepared(array, hole, None)
    if native is None:
        registered = get_registry().methods.get(name)  # a stand-in: no module is loaded
        native = registered.native_dtypes if registered is not None else frozenset()
    keep = array.dtype.name in native
    return Prepared(array, hole, native_colour(array) if keep else to_float_colour(array))


def run_prepared(
    method: InpaintMethod, items: list[Prepared], seed: int = 0
) -> list[Any]:
    """The method's raw results for ``items``, from one ``run_batch`` call on those with a
    hole: whatever the method returned per item (float ``(H, W, C)`` in [0, 1], or
    :class:`MethodResult`), not yet checked nor pasted (:func:`paste_result` checks it);
    :data:`NO_HOLE` for an item without a hole (the method never sees it). Each method gets a
    copy of each hole.

    Raises:
        MethodFailedError: the method returned a different number of results.
    """
    work = [(item.colour, item.hole.copy()) for item in items if item.colour is not None]
    filled = method.run_batch([colour for colour, _ in work], [hole for _, hole in work], seed)
    if len(filled) != len(work):
        raise MethodFailedError(
            f"method {method.info.name!r} returned {len(filled)} results for {len(work)} images"
        )
    results = iter(filled)
    return [NO_HOLE if item.colour is None else next(results) for item in items]


def paste_result(
    name: str, item: Prepared, filled: Any
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Check method ``name``'s result for ``item`` (:func:`check_result`) and paste its hole
    pixels into a copy of the image: the last step of :func:`inpaint`, and of every caller that
    writes a method's output (run, restore, evaluate, napari). Returns that copy (the image's
    shape and dtype; pixels outside the hole bit-identical) and the method's extras.

    Raises:
        MethodFailedError: the result breaks the output contract (see :func:`check_result`).
    """
    if item.colour is None:
        raise InvalidInputError("the item has no hole: there is no result to paste")
    return _finish(name, item.image, item.colour, item.hole, filled)


def _instance(method: str | InpaintMethod, params: dict[str, Any]) -> InpaintMethod:
    if isinstance(method, InpaintMethod):
        if params:
            raise InvalidInputError(
                f"parameters {sorted(params)} were given with a method instance; "
                "pass them to its constructor instead"
            )
        return method
    return get_method(method)(**params)


def _checked(image: np.ndarray, mask: np.ndarray, name: str) -> tuple[np.ndarray, np.ndarray]:
    """The checked image and bool hole; an all-hole mask is an error, an empty one logged."""
    array = check_image(image)
    hole = check_mask(mask, array.shape)
    holes = int(hole.sum())
    if holes == 0:
        logger.info("mask is empty: %s returns the image unchanged", name)
    elif holes == hole.size:
        raise InvalidInputError(
            f"mask covers every pixel of the {hole.shape} image; "
            "at least one known pixel is needed as context"
        )
    return array, hole


def check_result(
    name: str, filled: Any, shape: tuple[int, ...], at: np.ndarray, native: Any = None
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Check method ``name``'s result against the output contract; the one check every
    method's output passes before anything is written.

    Args:
        name: the method, named in errors.
        filled: what the method returned for one image: a float ``(H, W, C)`` array in [0, 1]
            or a :class:`MethodResult` holding one.
        shape: the expected ``(H, W, C)`` (the float colour the method was given).
        at: the flat pixel indices of the hole (``np.flatnonzero`` of the ``(H, W)`` hole).
        native: the integer dtype the method was given (one of its ``native_dtypes``), which
            it returns instead of float; None: float was given.

    Returns:
        The hole's values ``(N, C)`` (float, in [0, 1] up to :data:`RANGE_TOLERANCE`) and the
        method's extras.

    Raises:
        MethodFailedError: naming the method and what was wrong: ``None`` or no array, a wrong
            shape, a dtype that is not floating point, NaN or infinite values in the hole, or
            hole values outside [0, 1].
    """
    extras: dict[str, np.ndarray] = {}
    if isinstance(filled, MethodResult):
        filled, extras = filled.image, dict(filled.extras)
    if filled is None or filled is NO_HOLE or not hasattr(filled, "shape"):
        raise MethodFailedError(
            f"method {name!r} returned {type(filled).__name__ if filled is not None else None}"
            f" instead of a float array of shape {shape} in [0, 1]; fix the method (a "
            "method must return a result for every image it is given)"
        )
    filled = np.asarray(filled)
    if filled.shape != tuple(shape):
        raise MethodFailedError(
            f"method {name!r} returned shape {filled.shape}; expected {tuple(shape)}"
        )
    if native is not None and filled.dtype == native:
        return hole_values(filled, at), extras  # integers: always finite and in range
    if filled.dtype.kind != "f":
        raise MethodFailedError(
            f"method {name!r} returned dtype {filled.dtype}; methods return float32 values in "
            "[0, 1] (divide integer pixels by their maximum)"
        )
    values = hole_values(filled, at)
    finite = np.isfinite(values)
    if not finite.all():
        raise MethodFailedError(
            f"method {name!r} returned NaN or infinite values in the hole "
            f"({int((~finite).any(axis=1).sum())} pixels)"
        )
    if values.size:
        low, high = float(values.min()), float(values.max())
        if low < -RANGE_TOLERANCE or high > 1.0 + RANGE_TOLERANCE:
            raise MethodFailedError(
                f"method {name!r} returned values in [{low:g}, {high:g}] in the hole; "
                "results must lie in [0, 1]"
            )
    return values, extras


def _finish(
    name: str, array: np.ndarray, colour: np.ndarray, hole: np.ndarray, filled: Any
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Check a method's output (:func:`check_result`) and paste its hole pixels into
    ``array``."""
    at = np.flatnonzero(hole)
    native = colour.dtype if colour.dtype.kind == "u" else None
    values, extras = check_result(name, filled, colour.shape, at, native)
    return paste_pixels(array, at, values), extras
