"""What constrains texture beyond the pixel losses: one :class:`TextureLoss` for every method.

A method offers the members it implements (its config parses ``texture_loss`` with
:func:`~inpaint_core.checks.parse_fields` and a tuple of them): ``vgg`` (perceptual and style
terms on frozen VGG-19, the papers') and a fallback that trains without VGG weights, which
none ship: ``discriminator-features`` (``edge-gan``: the same terms on its discriminator's
features) or ``none`` (``partial-conv-unet``: no texture term).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from enum import Enum
from pathlib import Path

from inpaint_core.errors import MissingWeightsError, ParameterError
from inpaint_core.nn.losses.perceptual import (
    DEFAULT_LAYERS,
    VGG19_WEIGHTS_ENV,
    PerceptualStyleLoss,
    vgg_weights_hint,
)

__all__ = ["TextureLoss", "checked_texture", "texture_loss_module"]


class TextureLoss(str, Enum):
    """What constrains texture in a generator's loss."""

    VGG = "vgg"  # perceptual + style on VGG-19 features (the papers')
    DISCRIMINATOR_FEATURES = "discriminator-features"  # the same terms on D's feature maps
    NONE = "none"  # no perceptual or style term


def texture_loss_module(
    kind: TextureLoss,
    vgg_weights: str | None,
    fallback: TextureLoss,
    layers: Sequence[str] = DEFAULT_LAYERS,
) -> PerceptualStyleLoss | None:
    """The frozen VGG-19 loss ``kind`` needs: a :class:`PerceptualStyleLoss` for ``vgg``, else
    None.

    Args:
        kind: the config's texture loss.
        vgg_weights: a VGG-19 weights file; None or empty reads ``INPAINT_VGG19_WEIGHTS``.
        fallback: the method's member without VGG, named in the error as the way out.
        layers: the VGG activations the loss compares.

    Raises:
        MissingWeightsError: ``vgg`` with no weights file given, or one that does not exist;
            the message says how to provide it or to train with ``fallback``.
    """
    if kind is not TextureLoss.VGG:
        return None
    path = vgg_weights or os.environ.get(VGG19_WEIGHTS_ENV) or None
    hint = vgg_weights_hint(fallback.value)
    if path is None:
        raise MissingWeightsError(f"no VGG-19 weights given: {hint}")
    if not Path(path).expanduser().is_file():
        raise MissingWeightsError(f"VGG-19 weights file {path!r} not found: {hint}")
    return PerceptualStyleLoss(weights_path=path, layers=layers)


def checked_texture(
    kind: TextureLoss, texture: PerceptualStyleLoss | None
) -> PerceptualStyleLoss | None:
    """The texture module a training model keeps: ``texture`` for ``vgg`` (required), None
    for the other members.

    Raises:
        ParameterError: ``vgg`` without a module.
    """
    if kind is not TextureLoss.VGG:
        return None
    if texture is None:
        raise ParameterError("texture_loss='vgg' needs a PerceptualStyleLoss (VGG-19 weights)")
    return texture
