"""Classical fills on NumPy arrays: OpenCV's Telea and Navier-Stokes, push-pull and their blend.

Torch-free, so that the classical methods and everything that lists or runs them never import
torch; :mod:`inpaint_core.priors` builds the learned methods' priors on these fills.
"""

from __future__ import annotations

from enum import Enum

import numpy as np

from inpaint_core.errors import InvalidInputError

#: Neighbourhood radius of the Telea prior, the ``telea`` method's default.
PRIOR_RADIUS = 5


class Prior(str, Enum):
    """What a learned method receives in the hole before its network runs."""

    NONE = "none"  # the hole is set to 1 (white), as EdgeConnect does
    TELEA = "telea"  # the hole is pre-filled by Telea's method; the network learns a residual
    BLEND = "blend"  # the mean of the Telea and push-pull fills; the network learns a residual


def opencv_fill(image: np.ndarray, mask: np.ndarray, radius: int, flag: int) -> np.ndarray:
    """Run ``cv2.inpaint`` channel by channel on uint16 planes; returns float32 in [0, 1].

    Args:
        image: float ``(H, W, C)`` in [0, 1], any C.
        mask: bool ``(H, W)``, True = hole.
        radius: the neighbourhood radius in pixels.
        flag: ``cv2.INPAINT_TELEA`` or ``cv2.INPAINT_NS``.

    OpenCV fills colour only at 8 bit; single planes also at 16 bit, which keeps the precision
    of 16-bit scans (every channel is filled with the same weights anyway). Its float32 path
    is not used: OpenCV 5.0's Telea returns values far outside [0, 1] for float32 planes
    (tests/methods/test_classical.py guards the fill quality).
    """
    import cv2

    hole = mask.astype(np.uint8)
    planes = np.rint(np.clip(image, 0.0, 1.0) * 65535.0).astype(np.uint16)
    filled = [
        cv2.inpaint(np.ascontiguousarray(planes[:, :, channel]), hole, radius, flag)
        for channel in range(image.shape[2])
    ]
    return np.stack(filled, axis=2).astype(np.float32) / np.float32(65535.0)


def pushpull_fill(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Fill the hole by push-pull: a smooth membrane-like interpolation from every scale.

    Push: known pixels are averaged 2x2 by 2x2 into a pyramid of weighted means (a block with
    no known pixel has weight 0) down to one pixel. Pull: from the coarsest level up, each
    level keeps its own mean where it has known pixels and takes the bilinearly upsampled
    coarser estimate elsewhere. O(H W), a few milliseconds for 256 px.

    Args:
        image: float ``(H, W, C)`` in [0, 1]; hole values are ignored.
        mask: bool ``(H, W)``, True = hole; at least one pixel must be known.

    Returns:
        float32 ``(H, W, C)`` in [0, 1]: ``image`` with the hole filled.
    """
    import cv2

    known = ~mask
    if not known.any():
        raise InvalidInputError("push-pull needs at least one known pixel; the mask is all hole")
    weight = known.astype(np.float32)[:, :, np.newaxis]
    values = np.where(known[:, :, np.newaxis], image, 0.0).astype(np.float32)
    levels: list[tuple[np.ndarray, np.ndarray]] = []
    while max(values.shape[:2]) > 1:
        levels.append((values, weight))
        pad = ((0, values.shape[0] % 2), (0, values.shape[1] % 2), (0, 0))
        values, weight = np.pad(values, pad), np.pad(weight, pad)
        rows, cols = values.shape[0] // 2, values.shape[1] // 2
        values = values.reshape(rows, 2, cols, 2, -1).sum(axis=(1, 3))
        weight = weight.reshape(rows, 2, cols, 2, 1).sum(axis=(1, 3))
    estimate = values / np.maximum(weight, 1e-12)
    for values, weight in reversed(levels):
        size = (values.shape[1], values.shape[0])
        coarse = cv2.resize(estimate, size, interpolation=cv2.INTER_LINEAR)
        coarse = coarse.reshape(values.shape)  # cv2 drops a single channel axis
        own = weight > 0
        estimate = np.where(own, values / np.maximum(weight, 1e-12), coarse)
    filled = np.where(mask[:, :, np.newaxis], estimate, image)
    return np.clip(filled, 0.0, 1.0).astype(np.float32)


def classical_fill(
    image: np.ndarray, mask: np.ndarray, prior: Prior | str, radius: int = PRIOR_RADIUS
) -> np.ndarray:
    """One image's classical prior fill.

    Args:
        image: float ``(H, W, C)`` in [0, 1].
        mask: bool ``(H, W)``, True = hole (with at least one known pixel).
        prior: ``telea`` or ``blend`` (the mean of Telea's and :func:`pushpull_fill`'s fills).
        radius: Telea's neighbourhood radius in pixels.

    Returns:
        float32 ``(H, W, C)`` in [0, 1]; known pixels as in ``image`` up to the uint16
        rounding of Telea's fill (:func:`prior_fill` restores them exactly).
    """
    import cv2

    kind = Prior(prior)
    if kind is Prior.NONE:
        raise InvalidInputError("prior 'none' has no classical fill; use telea or blend")
    telea = opencv_fill(image, mask, radius, cv2.INPAINT_TELEA)
    if kind is Prior.TELEA:
        return telea
    return (telea + pushpull_fill(image, mask)) / np.float32(2.0)
