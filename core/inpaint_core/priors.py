"""Classical fills shared by the classical methods and by learned methods as a prior.

A learned method with ``prior="telea"`` receives the hole pre-filled by Telea's fast marching
method and predicts a correction on top of it whose last layer starts at zero, so the untrained
network already equals ``telea`` and training starts from there (issue 8, "a classical prior").
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


def prior_fill(images: Tensor, masks: Tensor, prior: Prior | str) -> Tensor:
    """Fill the holes of a batch with ``prior``; known pixels are returned unchanged.

    Args:
        images: float ``(B, C, H, W)`` in [0, 1] on any device.
        masks: ``(B, 1, H, W)``, 1 = hole.
        prior: ``none`` sets hole pixels to 1; ``telea`` runs Telea on the CPU per image.

    Returns:
        float ``(B, C, H, W)`` in [0, 1], same device and dtype as ``images``, no gradient.
    """
    import cv2

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
            filled[index] = opencv_fill(
                host[index], host_holes[index], PRIOR_RADIUS, cv2.INPAINT_TELEA
            )
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
