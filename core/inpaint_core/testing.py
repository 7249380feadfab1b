"""The contract test kit for method authors: ``check_method`` runs every rule on one method.

Use it in your plugin's own tests::

    from inpaint_core.testing import check_method

    def test_my_method_keeps_the_contract():
        check_method(MyMethod)            # or check_method("my-method"), or an instance

It raises ``AssertionError`` naming the first broken rule.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from inpaint_core.api import get_method, inpaint
from inpaint_core.errors import InpaintError
from inpaint_core.method import InpaintMethod

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


def _fail(method: InpaintMethod, case: str, rule: str) -> None:
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
    and the alpha channel bit-identical; no NaN or infinity; floats in [0, 1]. Also: an empty
    mask returns the input unchanged; the same seed gives the same output twice.

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
    image = _convert(base[:, :, :3], np.uint8)
    empty = _run(method, image, np.zeros_like(mask), 0, "empty mask")
    if not np.array_equal(empty, image) or empty is image:
        _fail(method, "empty mask", "did not return an unchanged copy of the input")
    first = _run(method, image, mask, 7, "seed 7")
    second = _run(method, image, mask, 7, "seed 7 again")
    if not np.array_equal(first, second):
        _fail(method, "seed 7 twice", "is not deterministic for a fixed seed")
