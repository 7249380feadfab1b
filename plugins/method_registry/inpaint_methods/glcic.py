"""``glcic``: Globally and Locally Consistent Image Completion (SPEC family 4, DCGAN).

Iizuka, Simo-Serra, Ishikawa, "Globally and Locally Consistent Image Completion", SIGGRAPH
2017.

- **Completion network** (:class:`CompletionNetwork`, the paper's table 1 with
  ``b = base_channels``, 64 in the paper): conv 5x5 to ``b``; conv 3x3 stride 2 to ``2b``;
  conv 3x3 ``2b``; conv 3x3 stride 2 to ``4b``; two conv 3x3 ``4b``; four dilated conv 3x3
  ``4b`` (dilations 2, 4, 8, 16); two conv 3x3 ``4b``; transposed conv 4x4 stride 2 to ``2b``;
  conv 3x3 ``2b``; transposed conv 4x4 stride 2 to ``b``; conv 3x3 ``b / 2``; output conv 3x3
  to 3 channels with a sigmoid. BatchNorm + ReLU after every layer but the output. Input: the
  image with its hole filled, and the mask (4 channels). Fully convolutional: any size that is
  a multiple of 4 works; the receptive field is :data:`RECEPTIVE_FIELD` pixels.
- **Context discriminator**: :class:`~inpaint_core.nn.discriminators.global_local.
  GlobalLocalDiscriminator`, global branch on the composite image (``image_size``), local
  branch on the ``local_size`` patch centred on the hole, one logit.
- **Losses**: ``L_C = MSE_hole + adv_weight * L_adv`` with the paper's ``alpha = 0.0004`` and
  the vanilla (BCE on logits, ``nsgan``) GAN loss; the discriminator's loss is
  ``BCE(real, 1) + BCE(fake, 0)``. "Fake" is the composite: generated hole, known pixels.

Choices the paper leaves open or that are made differently here:

- ``MSE_hole`` is the paper's ``||M * (C(x, M) - x)||^2`` divided by the number of hole values
  (hole pixels x 3), so ``adv_weight`` does not depend on the image or hole size.
- ``prior="none"`` fills the hole with the training set's mean pixel, as the paper: a buffer of
  the completion network (``mean_pixel``, a running mean over every training image's pixels,
  saved with the weights; 0.5 grey before training). ``prior="telea"`` fills it with Telea's
  method and the zero-initialised output conv predicts a correction (no sigmoid), so untrained
  weights equal ``telea``.
- Training is joint from step 0 (the discriminator, then the completion network, every step)
  with ``adv_weight = 0.0004``; the paper's three-stage schedule (completion network alone with
  MSE, then the discriminator alone, then both) is not reproduced: the trainer gives no step
  number, and a self-counted one would have to survive ``--resume``. Warm-starting from
  MSE-only weights (``--option adv_weight=0``, then ``--init``) approximates it.
- Adam (lr 2e-4, betas (0.5, 0.999), DCGAN's) instead of the paper's Adadelta.
- Training images must be ``image_size`` square (the discriminator's fully connected layers).
- Inference runs in eval mode (BatchNorm running statistics). No Poisson blending of the
  result: the output's hole is pasted as is (the tiled engine and the method contract keep
  known pixels bit-identical).
- Random hole shapes come from the trainer's mask generator, not the paper's rectangles.

Two architectures (:class:`Architecture`, the config's ``architecture``):

- ``lite`` (the default, and what a sidecar without the field means): the network above, with
  the prior fill, sigmoid output and ``base_channels`` / ``dilations`` as configured.
- ``mmagic``: OpenMMLab's exact generator (:class:`~inpaint_core.nn.layers.glcic_mmagic.
  MmagicGlcicGenerator`), which runs the published Places365 weights (``inpaint weights import
  mmagic-glcic FILE`` or ``inpaint weights fetch glcic-places``): the same layer list at the
  paper's width (64) with OpenMMLab's parameter names, BGR input in [-1, 1] with the hole at
  grey, the mask as a 4th channel, and the output clipped to [-1, 1] (no sigmoid, no prior).
  Its widths are fixed (the reference hard-codes them): ``base_channels`` must be 64,
  ``dilations`` (2, 4, 8, 16) and ``prior`` ``none``. Sides are padded (reflect, bottom and
  right) to a multiple of 4 and cropped back; at multiples of 4 the network sees the image as
  OpenMMLab's inferencer does, unpadded.
"""

from __future__ import annotations

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
from inpaint_core.nn.discriminators.global_local import (
    MIN_SIDE,
    GlobalLocalDiscriminator,
    GlobalLocalDiscriminatorConfig,
)
from inpaint_core.nn.layers.glcic_mmagic import DILATIONS as MMAGIC_DILATIONS
from inpaint_core.nn.layers.glcic_mmagic import MmagicGlcicGenerator
from inpaint_core.nn.losses.adversarial import GanLoss, discriminator_loss, generator_loss
from inpaint_core.priors import Prior, apply_prior, prior_fill, start_at_prior
from inpaint_core.trainable.holes import crop_batch, hole_crops, hole_psnr, merge
from inpaint_core.trainable.model import OptimizerSpec, Phase, TrainableModel
from inpaint_methods.learned_infos import GLCIC_CONTEXT_MARGIN, GLCIC_INFO, SHIPPED_WEIGHTS

#: Receptive field of the completion network with the paper's dilations, in pixels, measured
#: by back-propagating from one output pixel (the paper quotes 307 x 307).
RECEPTIVE_FIELD = 299
#: Known context a hole needs on each side: the receptive field's radius (151 px to one side,
#: 147 to the other), rounded up to a multiple of 8.
CONTEXT_MARGIN = GLCIC_CONTEXT_MARGIN
#: Adam betas of both optimisers (DCGAN's), replacing the paper's Adadelta.
ADAM_BETAS = (0.5, 0.999)
#: Mean pixel of the completion network before it has seen a training image.
INITIAL_MEAN_PIXEL = 0.5
#: The width OpenMMLab's generator hard-codes (its first conv's channels).
MMAGIC_BASE_CHANNELS = 64


class Architecture(str, Enum):
    """Which completion network ``glcic`` builds (see the module docstring)."""

    LITE = "lite"  # this project's: prior fill, sigmoid, configurable width
    MMAGIC = "mmagic"  # OpenMMLab's exact generator, for the published weights


@dataclass(frozen=True)
class GlcicConfig:
    """Architecture and training settings of ``glcic`` (defaults: the paper's).

    Attributes:
        base_channels: width ``b`` of the completion network's first conv (64 paper; the
            widest layers have ``4b``).
        dilations: dilation rates of the middle 3x3 convs ((2, 4, 8, 16) paper).
        image_size: side of the square training images, and so of the global
            discriminator's input (256 paper; 128 in the lite CPU recipe). ``inpaint train
            --size`` must equal it.
        local_size: side of the local discriminator's patch centred on the hole (128 paper);
            0 means ``image_size // 2``. Read :attr:`local_side` for the resolved value.
        discriminator_channels: width of the discriminator branches' first conv (64 paper).
        discriminator_features: length of each branch's fully connected output (1024 paper).
        adv_weight: weight ``alpha`` of the adversarial term (0.0004 paper).
        gan_loss: a :class:`~inpaint_core.nn.losses.adversarial.GanLoss` (``nsgan``: the paper's
            BCE).
        prior: what fills the hole before the network (``none``: the training set's mean
            pixel, the paper's; ``telea``: Telea's fill plus a learned correction).
        lr: Adam learning rate of both networks (2e-4, betas (0.5, 0.999)).
        architecture: an :class:`Architecture`; ``mmagic`` needs ``base_channels=64``, the
            default ``dilations`` and ``prior="none"``.
    """

    base_channels: int = 64
    dilations: tuple[int, ...] = (2, 4, 8, 16)
    image_size: int = 256
    local_size: int = 0
    discriminator_channels: int = 64
    discriminator_features: int = 1024
    adv_weight: float = 0.0004
    gan_loss: GanLoss = GanLoss.NON_SATURATING
    prior: Prior = Prior.NONE
    lr: float = 2e-4
    architecture: Architecture = Architecture.LITE

    def __post_init__(self) -> None:
        parse_fields(self, prior=Prior, architecture=Architecture, gan_loss=GanLoss.parse)
        require_ints(self, ("base_channels", "discriminator_channels", "discriminator_features"))
        require_ints(self, ("image_size",), minimum=MIN_SIDE)
        require_ints(self, ("local_size",), minimum=0)
        if self.image_size % 4:
            raise ParameterError(f"image_size={self.image_size} must be a multiple of 4")
        if self.local_size and not MIN_SIDE <= self.local_size <= self.image_size:
            raise ParameterError(
                f"local_size={self.local_size} must lie in [{MIN_SIDE}, image_size="
                f"{self.image_size}] (or be 0 for image_size // 2)"
            )
        dilations = tuple(self.dilations)
        bad = not dilations or any(
            not isinstance(d, int) or isinstance(d, bool) or d < 1 for d in dilations
        )
        if bad:
            raise ParameterError(f"dilations={self.dilations!r} must be integers >= 1")
        object.__setattr__(self, "dilations", dilations)
        require_weights(self, ("adv_weight",))
        require_positive(self, ("lr",))
        if self.architecture is Architecture.MMAGIC:
            fixed = {
                "base_channels": MMAGIC_BASE_CHANNELS,
                "dilations": MMAGIC_DILATIONS,
                "prior": Prior.NONE,
            }
            require_fixed(self, self.architecture, fixed, "OpenMMLab's generator")

    @property
    def local_side(self) -> int:
        """The local patch side: ``local_size``, or ``image_size // 2`` when it is 0."""
        return self.local_size or max(self.image_size // 2, MIN_SIDE)


#: The lite CPU recipe of docs/methods/glcic.md (``--size 128``).
LITE_OPTIONS: dict[str, object] = {
    "base_channels": 16,
    "image_size": 128,
    "discriminator_channels": 16,
    "discriminator_features": 256,
}


# --- networks -------------------------------------------------------------------------------
def _conv(
    in_channels: int, out_channels: int, kernel: int, stride: int = 1, dilation: int = 1
) -> nn.Sequential:
    """Conv (no bias: BatchNorm follows) + BatchNorm + ReLU, size kept or divided by stride."""
    padding = dilation * (kernel - 1) // 2
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel, stride, padding, dilation, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    )


def _up(in_channels: int, out_channels: int) -> nn.Sequential:
    """Transposed conv 4x4 stride 2 (doubles H and W) + BatchNorm + ReLU."""
    return nn.Sequential(
        nn.ConvTranspose2d(in_channels, out_channels, 4, 2, 1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    )


class CompletionNetwork(nn.Module):
    """GLCIC's completion network; see the module docstring for the layer list.

    Children: ``layers`` (every conv block but the output), ``output`` (the last conv).
    Buffers: ``mean_pixel`` ``(3,)`` float, the hole fill for prior ``none``, and
    ``pixels_seen`` (int64 scalar), the number of pixels that mean averages.
    """

    def __init__(self, config: GlcicConfig) -> None:
        super().__init__()
        self.config = config
        b = config.base_channels
        wide = 4 * b
        blocks = [
            _conv(4, b, 5),
            _conv(b, 2 * b, 3, 2),
            _conv(2 * b, 2 * b, 3),
            _conv(2 * b, wide, 3, 2),
            _conv(wide, wide, 3),
            _conv(wide, wide, 3),
        ]
        blocks += [_conv(wide, wide, 3, dilation=d) for d in config.dilations]
        blocks += [
            _conv(wide, wide, 3),
            _conv(wide, wide, 3),
            _up(wide, 2 * b),
            _conv(2 * b, 2 * b, 3),
            _up(2 * b, b),
            _conv(b, max(b // 2, 1), 3),
        ]
        self.layers = nn.Sequential(*blocks)
        self.output = nn.Conv2d(max(b // 2, 1), 3, 3, padding=1)
        if config.prior is not Prior.NONE:  # start as the prior exactly: a zero correction
            start_at_prior(self.output)
        self.register_buffer("mean_pixel", torch.full((3,), INITIAL_MEAN_PIXEL))
        self.register_buffer("pixels_seen", torch.zeros((), dtype=torch.int64))

    @torch.no_grad()
    def update_mean_pixel(self, images: Tensor) -> None:
        """Fold a training batch ``(B, 3, H, W)`` in [0, 1] into the running mean pixel."""
        count = images.shape[0] * images.shape[2] * images.shape[3]
        batch_mean = images.detach().float().mean(dim=(0, 2, 3))
        total = int(self.pixels_seen) + count
        self.mean_pixel += (batch_mean - self.mean_pixel) * (count / total)
        self.pixels_seen += count

    def fill(self, images: Tensor, masks: Tensor) -> Tensor:
        """The network's image input: ``images`` with holes filled by the prior.

        Args:
            images: float ``(B, 3, H, W)`` in [0, 1].
            masks: ``(B, 1, H, W)``, 1 = hole.

        Returns:
            float ``(B, 3, H, W)`` in [0, 1], no gradient: the mean pixel (prior ``none``) or
            Telea's fill in the hole, ``images`` elsewhere.
        """
        if self.config.prior is Prior.NONE:
            mean = self.mean_pixel.to(images.dtype).view(1, 3, 1, 1).expand_as(images)
            return torch.where(masks > 0.5, mean, images).detach()
        return prior_fill(images, masks, self.config.prior)

    def forward(self, images: Tensor, masks: Tensor) -> Tensor:
        """Complete ``images`` (float ``(B, 3, H, W)`` in [0, 1], H and W multiples of 4).

        Args:
            images: the damaged images; hole values are ignored (replaced by :meth:`fill`).
            masks: ``(B, 1, H, W)``, 1 = hole.

        Returns:
            float ``(B, 3, H, W)`` in [0, 1]: the whole generated image (only the hole is
            meant to be used; :func:`~inpaint_core.training.holes.merge` pastes it).

        Raises:
            InvalidInputError: shapes that are not ``(B, 3, H, W)`` and ``(B, 1, H, W)`` with
                H and W multiples of 4.
        """
        height, width = images.shape[-2:]
        if (
            images.ndim != 4
            or images.shape[1] != 3
            or tuple(masks.shape) != (images.shape[0], 1, height, width)
        ):
            raise InvalidInputError(
                f"images {tuple(images.shape)} and masks {tuple(masks.shape)} are not "
                "(B, 3, H, W) and (B, 1, H, W)"
            )
        if height % 4 or width % 4:
            raise InvalidInputError(f"image size {height} x {width}: pad to a multiple of 4")
        filled = self.fill(images, masks)
        raw = self.output(self.layers(torch.cat([filled, masks.to(filled.dtype)], dim=1)))
        if self.config.prior is Prior.NONE:
            return torch.sigmoid(raw)
        return apply_prior(filled, raw, self.config.prior)


def build_completion(config: GlcicConfig) -> nn.Module:
    """The completion network of ``config.architecture``: a :class:`CompletionNetwork` or
    OpenMMLab's :class:`~inpaint_core.nn.layers.glcic_mmagic.MmagicGlcicGenerator`. Both map
    ``(images, masks)`` (RGB in [0, 1], 1 = hole) to a ``(B, 3, H, W)`` image in [0, 1]."""
    if config.architecture is Architecture.MMAGIC:
        return MmagicGlcicGenerator()
    return CompletionNetwork(config)


class GlcicNetworks(nn.Module):
    """The inference networks: the child ``completion`` (see :func:`build_completion`)."""

    def __init__(self, config: GlcicConfig) -> None:
        super().__init__()
        self.config = config
        self.completion = build_completion(config)


class GlcicTraining(TrainableModel):
    """The completion network, the global-local discriminator and their losses."""

    method = "glcic"
    inference_networks = ("completion",)

    def __init__(self, config: GlcicConfig) -> None:
        super().__init__()
        self.config = config
        self.adopt(GlcicNetworks(config))
        self.discriminator = GlobalLocalDiscriminator(
            GlobalLocalDiscriminatorConfig(
                global_size=config.image_size,
                local_size=config.local_side,
                base_channels=config.discriminator_channels,
                features=config.discriminator_features,
            )
        )

    def optimizer_specs(self) -> dict[str, OptimizerSpec]:
        return self.gan_optimizer_specs(self.config.lr, ADAM_BETAS)

    def training_metadata(self) -> dict[str, Any]:
        return {"prior": self.config.prior.value, "schedule": "joint from step 0"}

    def check_batch(self, images: Tensor) -> None:
        """Raise :class:`InvalidInputError` unless ``images`` are ``image_size`` squares."""
        side = self.config.image_size
        height, width = images.shape[-2:]
        if (height, width) != (side, side):
            also = f", or pass `--option image_size={height}`" if height == width else ""
            raise InvalidInputError(
                f"glcic trains on {side} x {side} images (image_size={side}: the global "
                f"discriminator's fully connected layer is fixed to it) but the batch is "
                f"{height} x {width}; train with `inpaint train --size {side}`{also}"
            )

    def training_step(self, batch: dict[str, Tensor]) -> Iterator[Phase]:
        """Two phases: the discriminator, then the completion network ("generator").

        Batch: image ``(B, 3, S, S)`` in [0, 1] with ``S = image_size``, mask
        ``(B, 1, S, S)`` with 1 = hole.
        """
        c = self.config
        images, masks = batch["image"], batch["mask"]
        self.check_batch(images)
        if self.training and isinstance(self.completion, CompletionNetwork):
            self.completion.update_mean_pixel(images)
        output = self.completion(images, masks)
        merged = merge(output, images, masks)
        boxes = hole_crops(masks, c.local_side)

        fake = merged.detach()
        d_loss, d_metrics = discriminator_loss(
            c.gan_loss,
            self.discriminator(images, crop_batch(images, boxes)),
            self.discriminator(fake, crop_batch(fake, boxes)),
        )
        yield Phase("discriminator", d_loss, {"d_loss": d_metrics["d_loss"]})

        adv, _ = generator_loss(c.gan_loss, self.discriminator(merged, crop_batch(merged, boxes)))
        hole_values = (masks.sum() * images.shape[1]).clamp_min(1.0)
        mse = ((output - images) ** 2 * masks).sum() / hole_values
        loss = mse + c.adv_weight * adv
        metrics = {
            "mse_hole": float(mse.detach()),
            "adv": float(adv.detach()),
            "hole_psnr": float(hole_psnr(output, images, masks)),
        }
        yield Phase("generator", loss, metrics)


# --- the registered method ------------------------------------------------------------------
class Glcic(LearnedMethod):
    """Globally and Locally Consistent Image Completion, with trained weights."""

    info = GLCIC_INFO
    config_class = GlcicConfig
    networks_class = GlcicNetworks
    training_class = GlcicTraining
    weights_folder = SHIPPED_WEIGHTS
    batch_predict = True
    #: 32 px training images, 4-channel widths: a fraction of a second a step.
    smoke_test_options: ClassVar[Mapping[str, object]] = {
        "base_channels": 4,
        "image_size": 32,
        "local_size": 16,
        "discriminator_channels": 4,
        "discriminator_features": 8,
    }
    smoke_test_loss = "mse_hole"

    def predict(
        self, networks: nn.Module, image: Tensor, mask: Tensor
    ) -> tuple[Tensor, dict[str, Tensor]]:
        """The completion network on a padded batch; see :meth:`LearnedMethod.predict`."""
        assert isinstance(networks, GlcicNetworks)
        return networks.completion(image, mask), {}
