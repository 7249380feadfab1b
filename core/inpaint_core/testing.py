"""The contract test kit for method authors: ``check_method`` runs every rule on one method.

Use it in your plugin's own tests::

    from inpaint_core.testing import check_method

    def test_my_method_keeps_the_contract():
        check_method(MyMethod)            # or check_method("my-method"), or an instance

It raises ``AssertionError`` naming the first broken rule. Each case is checked twice: on the
method's raw :meth:`~inpaint_core.method.InpaintMethod.run` output, as the method returns it
(:func:`check_raw_output`), and through :func:`inpaint_core.inpaint`, which pastes back only the
hole (so it alone would hide a method that returns garbage outside the hole).
"""

from __future__ import annotations

from typing import Any, NoReturn

import numpy as np

from inpaint_core.api import RANGE_TOLERANCE, get_method, inpaint, prepare
from inpaint_core.errors import InpaintError
from inpaint_core.method import InpaintMethod, MethodResult

CONTRACT_DTYPES = (np.uint8, np.uint16, np.float32, np.float64)
CONTRACT_LAYOUTS = ((), (1,), (3,), (4,))  # trailing shape: (H, W), (H, W, 1), RGB, RGBA


def contract_image(height: int = 48, width: int = 64, seed: int = 0) -> np.ndarray:
    """A float64 ``(height, width, 4)`` test image in [0, 1]: smooth gradients, stripes, noise.

    The fourth channel is a distinct alpha pattern, so a method that touches alpha is caught.
    """
    rows, columns = np.mgrid[0:height, 0:width].astype(np.float64)
    noise = np.random.default_rng(seed).random((height, width))
    red = 0.5 + 0.4 * np.sin(columns / 3.0)
    green = rows / max(height - 1, 1)
    blue = 0.3 + 0.2 * noise
    alpha = 0.25 + 0.5 * ((rows + columns) % 7) / 6.0
    return np.clip(np.stack([red, green, blue, alpha], axis=2), 0.0, 1.0)


def contract_mask(height: int = 48, width: int = 64) -> np.ndarray:
    """A bool ``(height, width)`` mask: a block off-centre plus a thin diagonal crack."""
    mask = np.zeros((height, width), dtype=bool)
    mask[height // 4 : height // 2, width // 3 : width // 2] = True
    diagonal = np.arange(min(height, width) // 2)
    mask[height // 2 + diagonal // 2, width // 8 + diagonal] = True
    return mask


def _convert(image: np.ndarray, dtype: type) -> np.ndarray:
    if np.dtype(dtype).kind == "u":
        return np.rint(image * np.iinfo(dtype).max).astype(dtype)
    return image.astype(dtype)


def _layout(image: np.ndarray, trailing: tuple[int, ...]) -> np.ndarray:
    if not trailing:
        return np.ascontiguousarray(image[:, :, 0])
    return np.ascontiguousarray(image[:, :, : trailing[0]])


def _fail(method: InpaintMethod, case: str, rule: str) -> NoReturn:
    raise AssertionError(f"method {method.info.name!r} breaks the contract ({case}): {rule}")


def _run(
    method: InpaintMethod, image: np.ndarray, mask: np.ndarray, seed: int, case: str
) -> np.ndarray:
    try:
        return inpaint(image, mask, method, seed=seed)
    except InpaintError as error:
        raise AssertionError(
            f"method {method.info.name!r} breaks the contract ({case}): {error}"
        ) from error


def _raw_run(
    method: InpaintMethod, image: np.ndarray, mask: np.ndarray, seed: int, case: str
) -> None:
    """Give ``method.run`` exactly what :func:`~inpaint_core.inpaint` would give it for
    ``image`` and ``mask``, and check what it returns (:func:`check_raw_output`)."""
    try:
        item = prepare(image, mask, method.info.name, type(method).native_dtypes)
    except InpaintError as error:
        raise AssertionError(
            f"method {method.info.name!r} breaks the contract ({case}): {error}"
        ) from error
    if item.colour is None:
        return
    colour, hole = item.colour, item.hole.copy()
    before = (colour.copy(), hole.copy())
    raw = method.run(colour, hole, np.random.default_rng(seed))
    check_raw_output(method, case, before, (colour, hole), raw)


def check_raw_output(
    method: InpaintMethod,
    case: str,
    given: tuple[np.ndarray, np.ndarray],
    after: tuple[np.ndarray, np.ndarray],
    raw: Any,
) -> None:
    """Check what ``method.run`` returned, before :func:`~inpaint_core.inpaint` pastes the hole
    back and clips: the output contract of :meth:`~inpaint_core.method.InpaintMethod.run`.

    Args:
        method: the method that ran, named in the message.
        case: the case, named in the message (e.g. ``"uint8 (48, 64, 3)"``).
        given: copies, taken before the call, of the image ``(H, W, C)`` (float32 in [0, 1], or
            one of the method's ``native_dtypes``) and the bool ``(H, W)`` hole it was given.
        after: the same two arrays (the objects the method got) after the call.
        raw: what ``run`` returned: an array or a :class:`~inpaint_core.method.MethodResult`.

    Rules: an ndarray (alone or in a ``MethodResult``) of the given image's shape and dtype;
    for floats, every value finite and in [0, 1] (up to :data:`~inpaint_core.api.
    RANGE_TOLERANCE`), outside the hole too; the image and the hole it was given unchanged.

    Raises:
        AssertionError: naming the method, the case and the broken rule.
    """
    colour, hole = given
    filled = raw.image if isinstance(raw, MethodResult) else raw
    if not isinstance(filled, np.ndarray):
        _fail(method, case, f"run() returned {type(filled).__name__}, not a NumPy array")
    expected = "the {} of the image it was given"
    if filled.shape != colour.shape:
        shapes = f"shape {filled.shape}; expected {colour.shape}"
        _fail(method, case, f"run() returned {shapes}, {expected.format('shape')}")
    if filled.dtype != colour.dtype:
        dtypes = f"dtype {filled.dtype}; expected {colour.dtype}"
        _fail(method, case, f"run() returned {dtypes}, {expected.format('dtype')}")
    outside = ~hole
    if filled.dtype.kind == "f":
        bad = ~np.isfinite(filled).all(axis=2)
        if bad.any():
            where = f"{int(bad.sum())} pixels ({int(bad[outside].sum())} outside the hole)"
            _fail(method, case, f"run() returned NaN or infinite values at {where}")
        low, high = float(filled.min()), float(filled.max())
        if low < -RANGE_TOLERANCE or high > 1.0 + RANGE_TOLERANCE:
            known = filled[outside]
            where = f"[{low:g}, {high:g}] ([{known.min():g}, {known.max():g}] outside the hole)"
            _fail(method, case, f"run() returned values in {where}; results must lie in [0, 1]")
    changed = (after[0] != colour).any(axis=2)
    if changed.any():
        where = f"{int(changed.sum())} pixels, {int(changed[outside].sum())} outside the hole"
        _fail(method, case, f"run() wrote into the image it was given ({where}); work on a copy")
    if not np.array_equal(after[1], hole):
        _fail(method, case, "run() changed the mask it was given; work on a copy")


def check_method(
    method: str | type[InpaintMethod] | InpaintMethod,
    params: dict[str, Any] | None = None,
    *,
    height: int = 48,
    width: int = 64,
) -> None:
    """Check that ``method`` keeps the inpainting contract on synthetic images.

    Rules, for every dtype in uint8/uint16/float32/float64 and every layout in ``(H, W)``,
    ``(H, W, 1)``, ``(H, W, 3)``, ``(H, W, 4)``: shape and dtype kept; pixels outside the mask
    and the alpha channel bit-identical; no NaN or infinity; floats in [0, 1]. The same
    cases on the raw output of the method's own ``run`` (:func:`check_raw_output`): an array
    of the shape and dtype it was given, finite and in [0, 1] everywhere (outside the hole
    too, which :func:`~inpaint_core.inpaint` discards), and the image and hole it was given
    left unchanged. Also: an empty mask returns the input unchanged; the same seed gives the
    same output twice.

    Args:
        method: a registered name, a method class (built with ``params``), or an instance.
        params: parameters for the method class (default: the schema's defaults).
        height, width: the size of the synthetic test images.

    Raises:
        AssertionError: naming the method, the case and the broken rule.
    """
    if isinstance(method, str):
        method = get_method(method)
    if isinstance(method, type):
        method = method(**(params or {}))
    base = contract_image(height, width)
    mask = contract_mask(height, width)
    for dtype in CONTRACT_DTYPES:
        for trailing in CONTRACT_LAYOUTS:
            image = _layout(_convert(base, dtype), trailing)
            case = f"{np.dtype(dtype).name} {image.shape}"
            result = _run(method, image, mask, 1, case)
            if not isinstance(result, np.ndarray) or result.shape != image.shape:
                _fail(method, case, f"returned shape {getattr(result, 'shape', None)}")
            if result.dtype != image.dtype:
                _fail(method, case, f"returned dtype {result.dtype}")
            if not np.array_equal(result[~mask], image[~mask]):
                _fail(method, case, "changed pixels outside the mask")
            if trailing == (4,) and not np.array_equal(result[..., 3], image[..., 3]):
                _fail(method, case, "changed the alpha channel")
            if result.dtype.kind == "f" and not (
                np.isfinite(result).all() and result.min() >= 0.0 and result.max() <= 1.0
            ):
                _fail(method, case, "returned values outside [0, 1] or non-finite")
            _raw_run(method, image, mask, 1, case)
    image = _convert(base[:, :, :3], np.uint8)
    empty = _run(method, image, np.zeros_like(mask), 0, "empty mask")
    if not np.array_equal(empty, image) or empty is image:
        _fail(method, "empty mask", "did not return an unchanged copy of the input")
    first = _run(method, image, mask, 7, "seed 7")
    second = _run(method, image, mask, 7, "seed 7 again")
    if not np.array_equal(first, second):
        _fail(method, "seed 7 twice", "is not deterministic for a fixed seed")
