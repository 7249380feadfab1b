"""Adversarial, feature-matching and masked L1 losses shared by the GAN inpainting methods.

Every loss returns ``(loss, metrics)``: a scalar tensor to back-propagate and a dict of plain
floats for logging. Logits may have any shape (a PatchGAN map ``(B, 1, h, w)`` or ``(B, 1)``);
every mean is taken over all of their elements.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import Enum

import torch
import torch.nn.functional as F
from torch import Tensor

from inpaint_core.errors import InvalidInputError, ParameterError

__all__ = [
    "GanLoss",
    "discriminator_loss",
    "feature_matching_loss",
    "generator_loss",
    "masked_l1",
]


class GanLoss(str, Enum):
    """The adversarial objective: hinge (the edge GAN's D2/D3), non-saturating, least squares."""

    HINGE = "hinge"
    NON_SATURATING = "nsgan"
    LSGAN = "lsgan"

    @classmethod
    def parse(cls, text: str | GanLoss) -> GanLoss:
        """Return the member named by ``text`` (its value, case-insensitive, or the member).

        Raises:
            InvalidInputError: ``text`` names no member; the message lists the valid names.
        """
        if isinstance(text, cls):
            return text
        key = str(text).strip().lower()
        for member in cls:
            if key in (member.value, member.name.lower()):
                return member
        valid = ", ".join(repr(member.value) for member in cls)
        raise InvalidInputError(f"unknown GAN loss {text!r}; valid names: {valid}")


def _scalar(value: Tensor) -> float:
    return float(value.detach().item())


def discriminator_loss(
    kind: GanLoss | str, real_logits: Tensor, fake_logits: Tensor
) -> tuple[Tensor, dict[str, float]]:
    """The discriminator's loss on real and generated logits (pass ``fake.detach()`` logits).

    - hinge: ``mean(relu(1 - real)) + mean(relu(1 + fake))``
    - nsgan: ``BCE(real, 1) + BCE(fake, 0)`` on logits
    - lsgan: ``mean((real - 1)^2) + mean(fake^2)``

    Args:
        kind: a :class:`GanLoss` or its name.
        real_logits: the discriminator's raw outputs on real images, any shape.
        fake_logits: its raw outputs on generated images, any shape.

    Returns:
        ``(loss, {"d_real", "d_fake", "d_loss"})``; ``d_real``/``d_fake`` are the mean logits.
    """
    kind = GanLoss.parse(kind)
    if kind is GanLoss.HINGE:
        loss = F.relu(1.0 - real_logits).mean() + F.relu(1.0 + fake_logits).mean()
    elif kind is GanLoss.NON_SATURATING:
        loss = F.binary_cross_entropy_with_logits(
            real_logits, torch.ones_like(real_logits)
        ) + F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits))
    else:
        loss = (real_logits - 1.0).pow(2).mean() + fake_logits.pow(2).mean()
    metrics = {
        "d_real": _scalar(real_logits.mean()),
        "d_fake": _scalar(fake_logits.mean()),
        "d_loss": _scalar(loss),
    }
    return loss, metrics


def generator_loss(kind: GanLoss | str, fake_logits: Tensor) -> tuple[Tensor, dict[str, float]]:
    """The generator's adversarial loss on the discriminator's logits for generated images.

    - hinge: ``-mean(fake)``
    - nsgan: ``BCE(fake, 1)`` on logits
    - lsgan: ``mean((fake - 1)^2)``

    Returns:
        ``(loss, {"g_adv"})``.
    """
    kind = GanLoss.parse(kind)
    if kind is GanLoss.HINGE:
        loss = -fake_logits.mean()
    elif kind is GanLoss.NON_SATURATING:
        loss = F.binary_cross_entropy_with_logits(fake_logits, torch.ones_like(fake_logits))
    else:
        loss = (fake_logits - 1.0).pow(2).mean()
    return loss, {"g_adv": _scalar(loss)}


def feature_matching_loss(
    real_features: Sequence[Tensor], fake_features: Sequence[Tensor]
) -> tuple[Tensor, dict[str, float]]:
    """Feature matching (edge GAN stage 1): L1 between a discriminator's intermediate maps.

    Each layer's summed absolute difference is divided by its element count (a per-layer
    mean), and the layers are summed. Real features are detached: the loss trains the
    generator only.

    Args:
        real_features: the discriminator's activations for the real input, one per layer.
        fake_features: the same layers for the generated input, same shapes.

    Returns:
        ``(loss, {"feature_matching"})``.

    Raises:
        InvalidInputError: the lists are empty, differ in length, or a layer's shapes differ.
    """
    if len(real_features) != len(fake_features) or not real_features:
        raise InvalidInputError(
            f"feature matching needs the same non-zero number of real and fake layers, "
            f"got {len(real_features)} and {len(fake_features)}"
        )
    total = fake_features[0].new_zeros(())
    for index, (real, fake) in enumerate(zip(real_features, fake_features, strict=True)):
        if real.shape != fake.shape:
            raise InvalidInputError(
                f"feature matching layer {index}: real shape {tuple(real.shape)} does not "
                f"match fake shape {tuple(fake.shape)}"
            )
        total = total + F.l1_loss(fake, real.detach())
    return total, {"feature_matching": _scalar(total)}


def masked_l1(
    prediction: Tensor,
    target: Tensor,
    mask: Tensor | None = None,
    hole_weight: float = 1.0,
    valid_weight: float = 1.0,
) -> tuple[Tensor, dict[str, float]]:
    """Mean absolute error, optionally split into hole and valid terms (partial-conv style).

    With a mask ``M`` (1 = hole) and ``N = prediction.numel()``::

        loss = hole_weight * sum(|d| * M) / N + valid_weight * sum(|d| * (1 - M)) / N

    Both terms share the denominator ``N``, so with unit weights the loss equals the plain
    mean absolute error.

    Args:
        prediction: ``(B, C, H, W)`` generated image.
        target: ``(B, C, H, W)`` ground truth.
        mask: ``(B, 1, H, W)`` with 1 = hole, or None for the plain mean absolute error.
        hole_weight: weight of the hole term.
        valid_weight: weight of the valid (known pixels) term.

    Returns:
        ``(loss, {"l1"})`` without a mask, ``(loss, {"l1", "l1_hole", "l1_valid"})`` with one;
        ``l1_hole``/``l1_valid`` are the unweighted terms.

    Raises:
        InvalidInputError: shapes that do not match.
        ParameterError: a negative weight.
    """
    if prediction.shape != target.shape:
        raise InvalidInputError(
            f"prediction shape {tuple(prediction.shape)} does not match target "
            f"{tuple(target.shape)}"
        )
    difference = (prediction - target).abs()
    if mask is None:
        loss = difference.mean()
        return loss, {"l1": _scalar(loss)}
    if hole_weight < 0 or valid_weight < 0:
        raise ParameterError(
            f"L1 weights must be >= 0, got hole_weight={hole_weight}, valid_weight={valid_weight}"
        )
    expected = (prediction.shape[0], 1, *prediction.shape[2:])
    if prediction.dim() != 4 or tuple(mask.shape) != expected:
        raise InvalidInputError(
            f"mask shape {tuple(mask.shape)} does not match prediction "
            f"{tuple(prediction.shape)}; expected a (B, 1, H, W) mask of shape {expected}"
        )
    mask = mask.to(difference.dtype)
    count = difference.numel()
    hole = (difference * mask).sum() / count
    valid = (difference * (1.0 - mask)).sum() / count
    loss = hole_weight * hole + valid_weight * valid
    return loss, {"l1": _scalar(loss), "l1_hole": _scalar(hole), "l1_valid": _scalar(valid)}
