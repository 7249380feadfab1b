"""``context-encoder``: Pathak et al.'s Context Encoder (SPEC family 1).

D. Pathak, P. Krähenbühl, J. Donahue, T. Darrell, A. A. Efros, "Context Encoders: Feature
Learning by Inpainting", CVPR 2016. The generator is an encoder of 4x4 stride-2 convs
(BatchNorm + LeakyReLU(0.2)) down to a 4 x 4 grid, a **channel-wise fully connected**
bottleneck (:class:`ChannelWiseFC`, each channel its own dense map over the 16 positions,
followed by a 1x1 conv that mixes channels), and a decoder of 4x4 stride-2 transposed convs
(BatchNorm + ReLU) back to ``input_size``. ``L = rec_weight * L_rec + adv_weight * L_adv``
with ``L_rec = ||M * (x - G)||^2`` (mean over hole pixels) and the weights 0.999 / 0.001; the
adversarial term is the vanilla GAN loss (BCE, ``nsgan``) of a DCGAN discriminator. Adam,
lr 2e-4, betas (0.5, 0.999).

Choices the paper leaves open, made here:

- The generator sees the damaged image (hole filled by the prior, mapped to [-1, 1]) and the
  mask (1 = hole): 4 channels. The paper's channel-wise FC has dropout; this one has none.
- The discriminator judges the whole ``input_size`` composite (generated pixels in the hole,
  real ones outside), against the real image: it judges the fill in its context.
- The network works at one size. Training batches of another ``--size`` are resized to
  ``input_size`` (images by area or bilinear, masks so that a pixel touching a hole is a hole).
  Inference **resizes a window around each hole**: see
  :func:`~inpaint_methods.context_encoder_windows.plan_windows`.
- ``prior="telea"``: the hole is pre-filled by Telea and the last transposed conv starts at
  zero and predicts a correction, so untrained weights equal ``telea``. At inference the
  correction is resized back and added to the full-resolution Telea fill, so the method equals
  ``telea`` exactly at any image size until trained. ``prior="none"`` (the paper's) fills the
  hole with white and ends in ``(tanh + 1) / 2``.

``architecture="pathak"`` is instead the authors' released centre-region generator (no
channel-wise FC), which loads the published checkpoint: see
:mod:`inpaint_methods.context_encoder_pathak`.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from inpaint_core.checks import (
    parse_fields,
    require_fixed,
    require_ints,
    require_positive,
    require_weights,
)
from inpaint_core.errors import InvalidInputError, ParameterError
from inpaint_core.learned import LearnedMethod
from inpaint_core.nn.losses.adversarial import GanLoss, discriminator_loss, generator_loss
from inpaint_core.priors import Prior, apply_prior, prior_fill, start_at_prior
from inpaint_core.trainable.holes import hole_psnr, merge
from inpaint_core.trainable.model import OptimizerSpec, Phase, TrainableModel
from inpaint_methods.context_encoder_pathak import (
    PATHAK_SIZE,
    PathakGenerator,
    fill_centre_windows,
)
from inpaint_methods.context_encoder_windows import fill_windows, resize_image, resize_mask
from inpaint_methods.learned_infos import CONTEXT_ENCODER_INFO, SHIPPED_WEIGHTS

#: The encoder stops at this spatial side (the channel-wise FC maps 4 x 4 = 16 positions).
BOTTLENECK_SIDE = 4
#: Channels stop doubling at this multiple of the base width (DCGAN).
MAX_WIDTH_MULTIPLIER = 8
LEAKY_SLOPE = 0.2
#: Adam betas of DCGAN and the Context Encoder.
ADAM_BETAS = (0.5, 0.999)


class Architecture(str, Enum):
    """Which generator ``context-encoder`` builds."""

    LITE = "lite"  # this project's: channel-wise FC bottleneck, any power-of-two size, priors
    PATHAK = "pathak"  # the authors' released centre-region generator (published weights)


@dataclass(frozen=True)
class ContextEncoderConfig:
    """Architecture and training settings of ``context-encoder`` (defaults: the paper's).

    Attributes:
        input_size: the side the networks work at, a power of two >= 16 (128 as the paper's
            DCGAN-style variant).
        base_channels: width of the first encoder conv (64); widths double per level up to
            ``8 * base_channels``.
        bottleneck_channels: channels at the 4 x 4 bottleneck, where the channel-wise FC acts.
        discriminator_channels: width of the discriminator's first conv (64).
        rec_weight, adv_weight: ``l_rec = 0.999`` and ``l_adv = 0.001``.
        gan_loss: the adversarial objective (``nsgan``: the paper's BCE).
        prior: what fills the hole before the generator (a :class:`Prior`).
        lr: Adam learning rate of both networks (2e-4); betas (0.5, 0.999).
        architecture: an :class:`Architecture`. ``pathak`` takes ``base_channels`` as its
            encoder width (``nef``), ``decoder_channels`` (``ngf``) and ``bottleneck_channels``
            (``nBottleneck``), and needs ``input_size=128`` and ``prior="none"``; it is for
            inference with published weights (it cannot be trained here).
        decoder_channels: ``ngf`` of ``architecture="pathak"`` (unused by ``lite``).
    """

    input_size: int = 128
    base_channels: int = 64
    bottleneck_channels: int = 512
    discriminator_channels: int = 64
    rec_weight: float = 0.999
    adv_weight: float = 0.001
    gan_loss: GanLoss = GanLoss.NON_SATURATING
    prior: Prior = Prior.NONE
    lr: float = 2e-4
    architecture: Architecture = Architecture.LITE
    decoder_channels: int = 64

    def __post_init__(self) -> None:
        parse_fields(self, prior=Prior, architecture=Architecture, gan_loss=GanLoss.parse)
        require_ints(
            self,
            (
                "input_size",
                "base_channels",
                "bottleneck_channels",
                "discriminator_channels",
                "decoder_channels",
            ),
        )
        if self.architecture is Architecture.PATHAK:
            fixed = {"input_size": PATHAK_SIZE, "prior": Prior.NONE}
            require_fixed(self, self.architecture, fixed, "the published generator")
        size = self.input_size
        if size < 4 * BOTTLENECK_SIDE or size & (size - 1):
            raise ParameterError(f"input_size={size} must be a power of two >= 16")
        require_weights(self, ("rec_weight", "adv_weight"))
        require_positive(self, ("lr",))

    @property
    def levels(self) -> int:
        """Stride-2 convs from ``input_size`` down to the 4 x 4 bottleneck (5 at 128)."""
        return int(math.log2(self.input_size // BOTTLENECK_SIDE))


# --- blocks ---------------------------------------------------------------------------------
class ChannelWiseFC(nn.Module):
    """Channel-wise fully connected layer: each channel its own dense map over positions.

    ``y[b, c, q] = sum_p W[c, q, p] x[b, c, p] + bias[c, q]`` over the ``P = H * W`` spatial
    positions: channel ``c`` is ``nn.Linear(P, P)`` with weight ``W[c]``; channels never mix
    (``C * P^2`` weights instead of a full layer's ``(C * P)^2``). Maps ``(B, C, H, W)`` float
    to the same shape; H and W must be the ``side`` it was built for.
    """

    def __init__(self, channels: int, side: int) -> None:
        super().__init__()
        self.channels, self.side = channels, side
        positions = side * side
        bound = 1.0 / math.sqrt(positions)  # nn.Linear's default initialisation range
        self.weight = nn.Parameter(
            torch.empty(channels, positions, positions).uniform_(-bound, bound)
        )
        self.bias = nn.Parameter(torch.empty(channels, positions).uniform_(-bound, bound))

    def forward(self, x: Tensor) -> Tensor:
        """``(B, C, side, side)`` -> ``(B, C, side, side)``, each channel mapped on its own."""
        expected = (self.channels, self.side, self.side)
        if x.ndim != 4 or tuple(x.shape[1:]) != expected:
            raise InvalidInputError(
                f"input shape {tuple(x.shape)} is not (B, {', '.join(map(str, expected))})"
            )
        flat = x.flatten(2)  # (B, C, P)
        out = torch.einsum("bcp,cqp->bcq", flat, self.weight) + self.bias
        return out.view_as(x)


def _widths(base: int, last: int, levels: int) -> list[int]:
    """Output channels of the encoder's ``levels`` convs; the last is the bottleneck's."""
    cap = MAX_WIDTH_MULTIPLIER * base
    return [min(base * 2**i, cap) for i in range(levels - 1)] + [last]


# --- networks -------------------------------------------------------------------------------
class ContextEncoderGenerator(nn.Module):
    """Encoder, channel-wise FC bottleneck, decoder (``b = base_channels``, ``k = levels``).

    Encoder: 4x4 stride-2 convs from 4 channels (image, mask) through widths ``b, 2b, ...``
    (capped at ``8b``) to ``bottleneck_channels`` at 4 x 4; BatchNorm on all but the first;
    LeakyReLU(0.2). Bottleneck: :class:`ChannelWiseFC`, a 1x1 conv mixing channels, BatchNorm,
    ReLU. Decoder: ``k`` 4x4 stride-2 transposed convs mirroring the encoder's widths to 3
    channels, BatchNorm + ReLU on all but the last; then ``(tanh + 1) / 2`` (prior ``none``)
    or nothing (a correction on the prior, starting at zero).
    """

    def __init__(self, config: ContextEncoderConfig) -> None:
        super().__init__()
        self.config = config
        widths = _widths(config.base_channels, config.bottleneck_channels, config.levels)
        encoder: list[nn.Module] = []
        in_channels = 4
        for index, width in enumerate(widths):
            encoder.append(nn.Conv2d(in_channels, width, 4, 2, 1, bias=index == 0))
            if index > 0:
                encoder.append(nn.BatchNorm2d(width))
            encoder.append(nn.LeakyReLU(LEAKY_SLOPE, inplace=True))
            in_channels = width
        self.encoder = nn.Sequential(*encoder)
        bottleneck = config.bottleneck_channels
        self.bottleneck = nn.Sequential(
            ChannelWiseFC(bottleneck, BOTTLENECK_SIDE),
            nn.Conv2d(bottleneck, bottleneck, 1, bias=False),
            nn.BatchNorm2d(bottleneck),
            nn.ReLU(inplace=True),
        )
        decoder: list[nn.Module] = []
        for width in reversed(widths[:-1]):
            decoder += [
                nn.ConvTranspose2d(in_channels, width, 4, 2, 1, bias=False),
                nn.BatchNorm2d(width),
                nn.ReLU(inplace=True),
            ]
            in_channels = width
        self.last = nn.ConvTranspose2d(in_channels, 3, 4, 2, 1)
        self.decoder = nn.Sequential(*decoder)
        self.residual = config.prior is not Prior.NONE
        if self.residual:  # start as the prior exactly: the correction's last layer is zero
            start_at_prior(self.last)

    def forward(self, filled: Tensor, masks: Tensor) -> Tensor:
        """The raw output for prior-filled images.

        Args:
            filled: float ``(B, 3, S, S)`` in [0, 1], the hole filled by the prior;
                ``S = input_size``.
            masks: float ``(B, 1, S, S)``, 1 = hole.

        Returns:
            float ``(B, 3, S, S)``: the image in [0, 1] with prior ``none``, else a correction
            to add to ``filled`` (:func:`~inpaint_core.priors.apply_prior`).
        """
        size = self.config.input_size
        if filled.ndim != 4 or tuple(filled.shape[1:]) != (3, size, size):
            raise InvalidInputError(
                f"input shape {tuple(filled.shape)} is not (B, 3, {size}, {size}); resize to "
                "input_size first"
            )
        x = torch.cat([2.0 * filled - 1.0, masks], dim=1)
        raw = self.last(self.decoder(self.bottleneck(self.encoder(x))))
        return raw if self.residual else (torch.tanh(raw) + 1.0) / 2.0


class ContextEncoderNetworks(nn.Module):
    """The inference networks: one child, ``generator`` (a :class:`ContextEncoderGenerator`,
    or with ``architecture="pathak"`` a :class:`PathakGenerator`)."""

    def __init__(self, config: ContextEncoderConfig) -> None:
        super().__init__()
        self.config = config
        self.generator: nn.Module
        if config.architecture is Architecture.PATHAK:
            self.generator = PathakGenerator(
                config.base_channels, config.decoder_channels, config.bottleneck_channels
            )
        else:
            self.generator = ContextEncoderGenerator(config)

    def complete(self, filled: Tensor, masks: Tensor) -> Tensor:
        """The completed image ``(B, 3, S, S)`` in [0, 1] from ``input_size`` inputs."""
        return apply_prior(filled, self.generator(filled, masks), self.config.prior)


class DcganDiscriminator(nn.Module):
    """DCGAN discriminator: 4x4 stride-2 convs (BatchNorm but on the first, LeakyReLU(0.2))
    from ``input_size`` to 4 x 4, then a 4x4 conv to one logit. No fully connected layer.

    ``forward``: float ``(B, 3, S, S)`` in [0, 1] -> raw logits ``(B, 1, 1, 1)``.
    """

    def __init__(self, config: ContextEncoderConfig) -> None:
        super().__init__()
        base = config.discriminator_channels
        widths = _widths(base, min(base * 2 ** (config.levels - 1), 8 * base), config.levels)
        layers: list[nn.Module] = []
        in_channels = 3
        for index, width in enumerate(widths):
            layers.append(nn.Conv2d(in_channels, width, 4, 2, 1, bias=index == 0))
            if index > 0:
                layers.append(nn.BatchNorm2d(width))
            layers.append(nn.LeakyReLU(LEAKY_SLOPE, inplace=True))
            in_channels = width
        layers.append(nn.Conv2d(in_channels, 1, BOTTLENECK_SIDE))
        self.layers = nn.Sequential(*layers)

    def forward(self, images: Tensor) -> Tensor:
        """Judge ``(B, 3, S, S)`` images in [0, 1]; returns logits ``(B, 1, 1, 1)``."""
        return self.layers(2.0 * images - 1.0)


# --- training -------------------------------------------------------------------------------
class ContextEncoderTraining(TrainableModel):
    """Generator, DCGAN discriminator and the paper's losses, for the trainer."""

    method = "context-encoder"
    inference_networks = ("generator",)

    def __init__(self, config: ContextEncoderConfig) -> None:
        super().__init__()
        self.config = config
        self.adopt(ContextEncoderNetworks(config))
        self.discriminator = DcganDiscriminator(config)

    def optimizer_specs(self) -> dict[str, OptimizerSpec]:
        return self.gan_optimizer_specs(self.config.lr, ADAM_BETAS)

    def training_metadata(self) -> dict[str, Any]:
        return {"prior": self.config.prior.value}

    def training_step(self, batch: dict[str, Tensor]) -> Iterator[Phase]:
        """Two phases: the discriminator, then the generator.

        Batch: image ``(B, 3, S, S)`` in [0, 1], mask ``(B, 1, S, S)`` with 1 = hole; both are
        resized to ``input_size`` first when ``S`` differs.
        """
        c = self.config
        size = c.input_size
        images = resize_image(batch["image"], size, size)
        masks = resize_mask(batch["mask"], size, size)
        filled = prior_fill(images, masks, c.prior)
        networks = self.inference
        assert isinstance(networks, ContextEncoderNetworks)
        output = networks.complete(filled, masks)
        composite = merge(output, images, masks)

        d_loss, d_metrics = discriminator_loss(
            c.gan_loss, self.discriminator(images), self.discriminator(composite.detach())
        )
        yield Phase("discriminator", d_loss, d_metrics)

        adv, _ = generator_loss(c.gan_loss, self.discriminator(composite))
        count = (masks.sum() * images.shape[1]).clamp_min(1.0)
        l2 = ((output - images) ** 2 * masks).sum() / count
        loss = c.rec_weight * l2 + c.adv_weight * adv
        metrics = {
            "l2_hole": float(l2.detach()),
            "g_adv": float(adv.detach()),
            "g_loss": float(loss.detach()),
            "hole_psnr": float(hole_psnr(output, images, masks)),
        }
        yield Phase("generator", loss, metrics)


# --- the registered method ------------------------------------------------------------------
class ContextEncoder(LearnedMethod):
    """Pathak et al.'s Context Encoder with a channel-wise FC bottleneck, trained weights."""

    info = CONTEXT_ENCODER_INFO
    config_class = ContextEncoderConfig
    networks_class = ContextEncoderNetworks
    training_class = ContextEncoderTraining
    inference_only_architectures = frozenset({Architecture.PATHAK.value})
    weights_folder = SHIPPED_WEIGHTS
    #: 32 px, widths 4 / 8 / 4: well under a second a training step.
    smoke_test_options: ClassVar[Mapping[str, object]] = {
        "input_size": 32,
        "base_channels": 4,
        "bottleneck_channels": 8,
        "discriminator_channels": 4,
    }
    smoke_test_loss = "l2_hole"
    smoke_test_inference_options: ClassVar[tuple[Mapping[str, object], ...]] = (
        {
            "architecture": "pathak",
            "base_channels": 4,
            "decoder_channels": 4,
            "bottleneck_channels": 8,
        },
    )

    def predict(
        self, networks: nn.Module, image: Tensor, mask: Tensor
    ) -> tuple[Tensor, dict[str, Tensor]]:
        """Fill through resized windows (:func:`~inpaint_methods.context_encoder_windows.
        fill_windows`); see ``LearnedMethod.predict``."""
        assert isinstance(networks, ContextEncoderNetworks)
        if isinstance(networks.generator, PathakGenerator):  # its own window rule
            return fill_centre_windows(networks.generator, image, mask), {}
        return fill_windows(networks, image, mask, self.params["context_scale"]), {}
