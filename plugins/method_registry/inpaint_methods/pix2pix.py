"""``pix2pix``: a U-Net generator and a conditional PatchGAN (SPEC family 3, CGAN).

Isola et al., "Image-to-Image Translation with Conditional Adversarial Networks", CVPR 2017,
applied to inpainting: the condition ``y`` is the damaged image (its hole pre-filled by the
prior) with the mask, the target is the intact image.

- **Generator** (:class:`UNetGenerator`): ``depth`` 4x4 stride-2 convs, each + BatchNorm (not on
  the first nor the innermost) + LeakyReLU(0.2) before the next; ``depth`` 4x4 stride-2
  transposed convs, each after a ReLU, + BatchNorm (not on the last), dropout 0.5 on the first
  ``dropout_levels`` (3) below the bottleneck, skip concatenation with the encoder feature of
  the same scale. Widths ``b, 2b, 4b, 8b, 8b, ...`` (capped at ``8 b``); the paper's
  ``depth=8`` reaches 1 x 1 at 256 x 256. Output: ``(tanh + 1) / 2`` in [0, 1].
- **Discriminator**: the 70 x 70 PatchGAN (:class:`~inpaint_core.nn.discriminators.patch.
  PatchDiscriminator`, ``norm=batch``, no spectral norm), conditional: it sees
  ``(condition image, mask, candidate)``, 7 channels.
- **Losses**: ``L_G = gan_weight * L_cGAN + l1_weight * L1`` with ``l1_weight = 100`` and the
  vanilla (BCE, ``nsgan``) GAN loss; ``L_D = (BCE(real, 1) + BCE(fake, 0)) / 2``. Adam, lr 2e-4,
  betas (0.5, 0.999).

Choices the paper leaves open for inpainting, made here:

- The generator's input is 4 channels: the prior-filled image mapped to [-1, 1] and the mask
  (1 = hole). The discriminator's condition is the same image and mask.
- The discriminator's "fake" is the generator's raw output, not the composite with the known
  pixels (as pix2pix; the L1 term keeps the known pixels right).
- ``L1`` is the mean absolute error over the whole image (as pix2pix), not the hole only.
- Dropout follows the paper's decoder ``CD512-CD1024-CD1024-C1024...``: the first three
  transposed convs from the bottleneck (the reference code shifts it one level outward).
- Inference runs in eval mode: BatchNorm uses its running statistics and dropout is off, so a
  result is deterministic and does not depend on the tile or batch (the paper keeps dropout
  and batch statistics at test time as noise).
- The bias of a conv followed by BatchNorm is dropped (the norm's shift replaces it).
- ``prior="telea"``: the hole is pre-filled by Telea and the last transposed conv starts at zero
  and predicts a correction, so untrained weights equal ``telea``.
- Inputs are padded inside :meth:`Pix2Pix.predict` to a multiple of ``2**depth`` (the loaded
  config's; :func:`~inpaint_core.learned.pad_to_multiple`), so ``MethodInfo.pad_multiple`` is
  1.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from inpaint_core.checks import (
    parse_fields,
    require_fractions,
    require_ints,
    require_positive,
    require_weights,
)
from inpaint_core.errors import InvalidInputError, ParameterError
from inpaint_core.learned import LearnedMethod, pad_to_multiple
from inpaint_core.nn.discriminators.patch import PatchDiscriminator, PatchDiscriminatorConfig
from inpaint_core.nn.layers.blocks import Norm
from inpaint_core.nn.losses.adversarial import GanLoss, discriminator_loss, generator_loss
from inpaint_core.priors import Prior, apply_prior, prior_fill, start_at_prior
from inpaint_core.trainable.holes import hole_psnr
from inpaint_core.trainable.model import OptimizerSpec, Phase, TrainableModel
from inpaint_methods.learned_infos import PIX2PIX_INFO, SHIPPED_WEIGHTS

#: The deepest U-Net allowed: the paper's 8 levels (256 x 256 -> 1 x 1); inputs pad to 2**depth.
MAX_DEPTH = 8
#: Channels stop doubling at this multiple of ``base_channels`` (pix2pix's 512 = 8 * 64).
MAX_WIDTH_MULTIPLIER = 8
LEAKY_SLOPE = 0.2
KERNEL_SIZE = 4
#: Generator input: the prior-filled RGB image and the mask.
GENERATOR_CHANNELS = 4
#: Discriminator input: the condition (RGB + mask) and the candidate RGB image.
DISCRIMINATOR_CHANNELS = 7


@dataclass(frozen=True)
class Pix2PixConfig:
    """Architecture and training settings of ``pix2pix`` (defaults: the paper's at 256 px).

    Attributes:
        base_channels: width of the generator's first conv (64); widths double per level up
            to ``8 * base_channels``.
        depth: down (and up) levels of the U-Net, 2 to 8; inputs are padded to a multiple of
            ``2**depth`` (8 in the paper: 1 x 1 bottleneck at 256 px; 7 at 128 px).
        dropout: dropout probability in the decoder while training (0.5); off at inference.
        dropout_levels: transposed convs from the bottleneck that get dropout (3).
        discriminator_channels: width of the PatchGAN's first conv (64).
        discriminator_layers: convs of the PatchGAN (5: C64-C128-C256-C512-1, 70 x 70 patches).
        gan_loss: a :class:`~inpaint_core.nn.losses.adversarial.GanLoss`; ``nsgan`` is the
            paper's vanilla BCE, ``lsgan`` the reference code's alternative.
        gan_weight, l1_weight: ``L_G = gan_weight * L_cGAN + l1_weight * L1`` (1 and 100).
        lr, beta1, beta2: Adam of both networks (2e-4, 0.5, 0.999).
        prior: what fills the hole before the generator (a :class:`~inpaint_core.priors.Prior`).
    """

    base_channels: int = 64
    depth: int = 8
    dropout: float = 0.5
    dropout_levels: int = 3
    discriminator_channels: int = 64
    discriminator_layers: int = 5
    gan_loss: GanLoss = GanLoss.NON_SATURATING
    gan_weight: float = 1.0
    l1_weight: float = 100.0
    lr: float = 2e-4
    beta1: float = 0.5
    beta2: float = 0.999
    prior: Prior = Prior.NONE

    def __post_init__(self) -> None:
        parse_fields(self, prior=Prior, gan_loss=GanLoss.parse)
        require_ints(self, ("base_channels", "discriminator_channels"))
        require_ints(self, ("depth",), minimum=2)
        require_ints(self, ("discriminator_layers",), minimum=3)
        require_ints(self, ("dropout_levels",), minimum=0)
        if self.depth > MAX_DEPTH:
            raise ParameterError(f"depth={self.depth} must be <= {MAX_DEPTH}")
        require_fractions(self, ("dropout",))
        require_positive(self, ("lr",))
        require_fractions(self, ("beta1", "beta2"))
        require_weights(self, ("gan_weight", "l1_weight"))

    @property
    def multiple(self) -> int:
        """Height and width the generator needs a multiple of: ``2**depth``."""
        return 2**self.depth


# --- networks -------------------------------------------------------------------------------
def to_signed(images: Tensor) -> Tensor:
    """[0, 1] -> [-1, 1], the range pix2pix's networks see."""
    return images * 2.0 - 1.0


class UNetGenerator(nn.Module):
    """pix2pix's U-Net (see the module docstring), ``(B, in, H, W) -> (B, out, H, W)``.

    ``down[i]`` halves the side (level ``i``), ``up[i]`` doubles it back; ``up[0]`` is the
    output layer. H and W must be multiples of ``2**depth``. The output is ``(tanh + 1) / 2``
    in [0, 1], or the raw last layer (any range) when ``residual``.
    """

    def __init__(
        self,
        config: Pix2PixConfig,
        in_channels: int = GENERATOR_CHANNELS,
        out_channels: int = 3,
        residual: bool = False,
    ) -> None:
        super().__init__()
        self.depth, self.residual = config.depth, residual
        cap = MAX_WIDTH_MULTIPLIER * config.base_channels
        widths = [min(config.base_channels * 2**level, cap) for level in range(config.depth)]
        down: list[nn.Module] = []
        for level, width in enumerate(widths):
            innermost = level == config.depth - 1
            normed = level > 0 and not innermost  # none on the input nor the 1 x 1 bottleneck
            layers: list[nn.Module] = [] if level == 0 else [nn.LeakyReLU(LEAKY_SLOPE)]
            source = in_channels if level == 0 else widths[level - 1]
            layers.append(nn.Conv2d(source, width, KERNEL_SIZE, 2, 1, bias=not normed))
            if normed:
                layers.append(nn.BatchNorm2d(width))
            down.append(nn.Sequential(*layers))
        up: list[nn.Module] = []
        for level, width in enumerate(widths):
            source = width if level == config.depth - 1 else 2 * width  # + the skip
            if level == 0:
                conv = nn.ConvTranspose2d(source, out_channels, KERNEL_SIZE, 2, 1)
                up.append(nn.Sequential(nn.ReLU(), conv))
                continue
            target = widths[level - 1]
            layers = [
                nn.ReLU(),
                nn.ConvTranspose2d(source, target, KERNEL_SIZE, 2, 1, bias=False),
                nn.BatchNorm2d(target),
            ]
            if config.depth - level <= config.dropout_levels and config.dropout > 0:
                layers.append(nn.Dropout(config.dropout))
            up.append(nn.Sequential(*layers))
        self.down = nn.ModuleList(down)
        self.up = nn.ModuleList(up)

    @property
    def last_layer(self) -> nn.ConvTranspose2d:
        """The output transposed conv (zeroed by ``start_at_prior``)."""
        return self.up[0][1]  # type: ignore[index,return-value]

    def forward(self, x: Tensor) -> Tensor:
        """``(B, in_channels, H, W)`` float -> ``(B, out_channels, H, W)``."""
        multiple = 2**self.depth
        if x.ndim != 4 or x.shape[-2] % multiple or x.shape[-1] % multiple:
            raise InvalidInputError(
                f"input shape {tuple(x.shape)} is not (B, C, H, W) with H and W multiples of "
                f"{multiple} (2**depth)"
            )
        skips: list[Tensor] = []
        for layer in self.down:
            x = layer(x)
            skips.append(x)
        x = skips.pop()
        for level in reversed(range(self.depth)):
            x = self.up[level](x)
            if level > 0:
                x = torch.cat([x, skips[level - 1]], dim=1)
        return x if self.residual else (torch.tanh(x) + 1.0) / 2.0


class Pix2PixNetworks(nn.Module):
    """The inference networks: one child, ``generator`` (a :class:`UNetGenerator`)."""

    def __init__(self, config: Pix2PixConfig) -> None:
        super().__init__()
        self.config = config
        residual = config.prior is not Prior.NONE
        self.generator = UNetGenerator(config, residual=residual)
        if residual:  # start as the prior exactly: the correction's last layer is zero
            start_at_prior(self.generator.last_layer)

    def condition(self, images: Tensor, masks: Tensor) -> tuple[Tensor, Tensor]:
        """The prior-filled image ``(B, 3, H, W)`` in [0, 1] and the condition ``(B, 4, H, W)``.

        The condition is the filled image in [-1, 1] and the mask (1 = hole); the generator's
        input and the first four channels of the discriminator's.
        """
        filled = prior_fill(images, masks, self.config.prior)
        return filled, torch.cat([to_signed(filled), masks.to(filled.dtype)], dim=1)

    def complete(self, filled: Tensor, condition: Tensor) -> Tensor:
        """The generator's image ``(B, 3, H, W)`` in [0, 1] (H, W multiples of 2**depth)."""
        return apply_prior(filled, self.generator(condition), self.config.prior)


class Pix2PixTraining(TrainableModel):
    """Generator, conditional PatchGAN and the pix2pix losses, for the trainer."""

    method = "pix2pix"
    inference_networks = ("generator",)

    def __init__(self, config: Pix2PixConfig) -> None:
        super().__init__()
        self.config = config
        self.adopt(Pix2PixNetworks(config))
        discriminator = PatchDiscriminatorConfig(
            DISCRIMINATOR_CHANNELS,
            config.discriminator_channels,
            config.discriminator_layers,
            use_spectral_norm=False,
            norm=Norm.BATCH,
        )
        self.discriminator = PatchDiscriminator(discriminator)

    def optimizer_specs(self) -> dict[str, OptimizerSpec]:
        return self.gan_optimizer_specs(self.config.lr, (self.config.beta1, self.config.beta2))

    def training_metadata(self) -> dict[str, Any]:
        return {
            "prior": self.config.prior.value,
            "gan_loss": self.config.gan_loss.value,
            "discriminator_fake": "generator output",
        }

    def judge(self, condition: Tensor, candidate: Tensor) -> Tensor:
        """PatchGAN logits ``(B, 1, h, w)`` for ``candidate`` ``(B, 3, H, W)`` in [0, 1]."""
        return self.discriminator(torch.cat([condition, to_signed(candidate)], dim=1))[0]

    def training_step(self, batch: dict[str, Tensor]) -> Iterator[Phase]:
        """Two phases: the discriminator, then the generator.

        Batch: image ``(B, 3, S, S)`` in [0, 1], mask ``(B, 1, S, S)`` with 1 = hole; S a
        multiple of ``2**depth``.
        """
        c = self.config
        images, masks = batch["image"], batch["mask"]
        networks = self.inference
        assert isinstance(networks, Pix2PixNetworks)
        filled, condition = networks.condition(images, masks)
        output = networks.complete(filled, condition)

        real_logits = self.judge(condition, images)
        fake_logits = self.judge(condition, output.detach())
        d_loss, d_metrics = discriminator_loss(c.gan_loss, real_logits, fake_logits)
        d_loss = 0.5 * d_loss  # pix2pix halves D's objective, slowing D relative to G
        yield Phase("discriminator", d_loss, {**d_metrics, "d_loss": float(d_loss.detach())})

        adversarial, _ = generator_loss(c.gan_loss, self.judge(condition, output))
        l1 = (output - images).abs().mean()
        g_loss = c.gan_weight * adversarial + c.l1_weight * l1
        metrics = {
            "g_adv": float(adversarial.detach()),
            "l1": float(l1.detach()),
            "hole_psnr": float(hole_psnr(output, images, masks)),
        }
        yield Phase("generator", g_loss, metrics)


# --- the registered method ------------------------------------------------------------------
class Pix2Pix(LearnedMethod):
    """pix2pix (U-Net generator + conditional PatchGAN), with trained weights."""

    info = PIX2PIX_INFO
    config_class = Pix2PixConfig
    networks_class = Pix2PixNetworks
    training_class = Pix2PixTraining  # no perceptual loss: ``vgg_weights`` is unused
    weights_folder = SHIPPED_WEIGHTS
    batch_predict = True
    #: A 1 x 1 bottleneck at 32 x 32, 4-channel widths.
    smoke_test_options: ClassVar[Mapping[str, object]] = {
        "base_channels": 4,
        "depth": 5,
        "discriminator_channels": 4,
    }
    smoke_test_loss = "l1"

    def predict(
        self, networks: nn.Module, image: Tensor, mask: Tensor
    ) -> tuple[Tensor, dict[str, Tensor]]:
        """The generator in eval mode on ``image`` padded to a multiple of ``2**depth``.

        Args:
            networks: a loaded :class:`Pix2PixNetworks` in eval mode.
            image: float32 ``(1, 3, H, W)`` in [0, 1].
            mask: float32 ``(1, 1, H, W)``, 1 = hole.

        Returns:
            The generator's image ``(1, 3, H, W)`` in [0, 1] and no extra outputs.
        """
        assert isinstance(networks, Pix2PixNetworks)
        height, width = image.shape[-2:]
        multiple = networks.config.multiple
        image = pad_to_multiple(image, multiple, self.pad_mode)
        mask = pad_to_multiple(mask, multiple, self.pad_mode)
        filled, condition = networks.condition(image, mask)
        output = networks.complete(filled, condition)
        return output[:, :, :height, :width], {}
