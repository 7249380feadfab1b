"""The array-level public API: list, look up and run methods."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from inpaint_core.arrays import check_image, check_mask, composite, to_float_colour
from inpaint_core.errors import InvalidInputError, MethodFailedError
from inpaint_core.method import InpaintMethod, MethodInfo, MethodResult
from inpaint_core.plugins import get_registry

logger = logging.getLogger(__name__)

DEFAULT_METHOD = "biharmonic"


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
    array, hole = _checked(image, mask, instance.info.name)
    if not hole.any():
        return (array.copy(), {}) if return_extras else array.copy()
    colour = to_float_colour(array)
    filled = instance.run(colour, hole.copy(), np.random.default_rng(seed))
    restored, extras = _finish(instance.info.name, array, colour, hole, filled)
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
    checked = [_checked(image, mask, name) for image, mask in zip(images, masks, strict=True)]
    work = [index for index, (_, hole) in enumerate(checked) if hole.any()]
    colours = {index: to_float_colour(checked[index][0]) for index in work}
    filled = instance.run_batch(
        [colours[index] for index in work], [checked[index][1].copy() for index in work], seed
    )
    if len(filled) != len(work):
        raise MethodFailedError(
            f"method {name!r} returned {len(filled)} results for {len(work)} images"
        )
    results = [array.copy() for array, _ in checked]
    for index, output in zip(work, filled, strict=True):
        array, hole = checked[index]
        results[index], _ = _finish(name, array, colours[index], hole, output)
    return results


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


def _finish(
    name: str, array: np.ndarray, colour: np.ndarray, hole: np.ndarray,
    filled: np.ndarray | MethodResult,
) -> tuple[np.ndarray, dict[str, np.ndarray]]:  # fmt: skip
    """Check a method's output and paste its hole pixels into ``array``."""
    extras: dict[str, np.ndarray] = {}
    if isinstance(filled, MethodResult):
        filled, extras = filled.image, dict(filled.extras)
    filled = np.asarray(filled)
    if filled.shape != colour.shape:
        raise MethodFailedError(
            f"method {name!r} returned shape {filled.shape}; expected {colour.shape}"
        )
    if not np.isfinite(filled[hole]).all():
        raise MethodFailedError(f"method {name!r} returned NaN or infinite values in the hole")
    return composite(array, filled, hole), extras
