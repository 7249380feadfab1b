"""Losses shared by the learned inpainting methods; each returns ``(loss, metrics)``.

from inpaint_core.nn.losses import GanLoss, discriminator_loss, generator_loss
d_loss, d_metrics = discriminator_loss(GanLoss.HINGE, real_logits, fake_logits.detach())
"""

from inpaint_core.nn.losses.adversarial import (
    GanLoss,
    discriminator_loss,
    feature_matching_loss,
    generator_loss,
    masked_l1,
)
from inpaint_core.nn.losses.perceptual import (
    DEFAULT_LAYERS,
    VGG19_CONV_INDICES,
    VGG19_LAYER_INDICES,
    VGG19_WEIGHTS_ENV,
    InvalidWeightsError,
    MissingWeightsError,
    PerceptualStyleLoss,
    Vgg19Features,
    gram_matrix,
    load_vgg19_weights,
    perceptual_loss,
    style_loss,
)

__all__ = [
    "DEFAULT_LAYERS",
    "VGG19_CONV_INDICES",
    "VGG19_LAYER_INDICES",
    "VGG19_WEIGHTS_ENV",
    "GanLoss",
    "InvalidWeightsError",
    "MissingWeightsError",
    "PerceptualStyleLoss",
    "Vgg19Features",
    "discriminator_loss",
    "feature_matching_loss",
    "generator_loss",
    "gram_matrix",
    "load_vgg19_weights",
    "masked_l1",
    "perceptual_loss",
    "style_loss",
]
