"""Classical fills shared by the classical methods and by learned methods as a prior.

A learned method with ``prior="telea"`` receives the hole pre-filled by Telea's fast marching
method and predicts a correction on top of it whose last layer starts at zero, so the untrained
network already equals ``telea`` and training starts from there (issue 8, "a classical prior").
``prior="blend"`` pre-fills with the mean of Telea's fill and a push-pull membrane fill
(:func:`pushpull_fill`): Telea continues isophotes from the hole's border but smears streaks
into large holes, push-pull interpolates smoothly from every scale of the known part, and their
errors partly cancel. Measured on training and held-out images: the blend is +0.4 to +0.6 dB
hole PSNR over Telea alone on centre 25 % and free-form 40 % holes, for about 5 ms more per
256 px image (``docs/training.md``).
"""

from __future__ import annotations

from enum import Enum

import numpy as np
import torch
from torch import Tensor

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


def prior_fill(images: Tensor, masks: Tensor, prior: Prior | str) -> Tensor:
    """Fill the holes of a batch with ``prior``; known pixels are returned unchanged.

    Args:
        images: float ``(B, C, H, W)`` in [0, 1] on any device.
        masks: ``(B, 1, H, W)``, 1 = hole.
        prior: ``none`` sets hole pixels to 1; ``telea`` runs Telea on the CPU per image;
            ``blend`` averages Telea's fill and :func:`pushpull_fill`'s.

    Returns:
        float ``(B, C, H, W)`` in [0, 1], same device and dtype as ``images``, no gradient.
    """

    try:
        kind = Prior(prior)
    except ValueError:
        valid = ", ".join(member.value for member in Prior)
        raise InvalidInputError(f"unknown prior {prior!r}; valid: {valid}") from None
    if images.ndim != 4 or masks.shape != (images.shape[0], 1, *images.shape[2:]):
        raise InvalidInputError(
            f"images {tuple(images.shape)} and masks {tuple(masks.shape)} are not "
            "(B, C, H, W) and (B, 1, H, W)"
        )
    holes = masks > 0.5
    if kind is Prior.NONE:
        return torch.where(holes, torch.ones_like(images), images).detach()
    host = images.detach().float().cpu().permute(0, 2, 3, 1).numpy()
    host_holes = holes[:, 0].cpu().numpy()
    filled = np.empty_like(host)
    for index in range(host.shape[0]):
        if host_holes[index].any():
            filled[index] = classical_fill(host[index], host_holes[index], kind)
        else:
            filled[index] = host[index]
    result = torch.from_numpy(filled).permute(0, 3, 1, 2).to(images.device, images.dtype)
    # Known pixels exactly as given (the uint16 round trip only touches the hole).
    return torch.where(holes, result, images).detach()


def start_at_prior(last_layer: torch.nn.Module) -> None:
    """Zero the weight and bias of a network's last layer, so its correction starts at 0.

    With a prior other than ``none``, a method's generator adds its output to the prior fill
    (:func:`apply_prior`); a zero last layer makes the untrained method equal the prior.
    """
    for name in ("weight", "bias"):
        parameter = getattr(last_layer, name, None)
        if parameter is not None:
            torch.nn.init.zeros_(parameter)


def apply_prior(filled: Tensor, raw: Tensor, prior: Prior | str) -> Tensor:
    """A generator's image from its raw output ``raw`` and the prior-filled input ``filled``.

    Args:
        filled: ``(B, 3, H, W)`` in [0, 1] from :func:`prior_fill`.
        raw: ``(B, 3, H, W)``: the image in [0, 1] with prior ``none``, else a correction.
        prior: the method's prior.

    Returns:
        ``raw`` with prior ``none``; ``(filled + raw).clamp(0, 1)`` otherwise.
    """
    if Prior(prior) is Prior.NONE:
        return raw
    return (filled + raw).clamp(0.0, 1.0)
