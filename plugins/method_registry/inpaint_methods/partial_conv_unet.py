"""``partial-conv-unet``: the Partial Convolution U-Net (SPEC family 2, U-Net).

G. Liu, F. A. Reda, K. J. Shih, T.-C. Wang, A. Tao, B. Catanzaro, "Image Inpainting for
Irregular Holes Using Partial Convolutions", ECCV 2018.

- **Network** (:class:`PartialConvUNet`): every conv is a
  :class:`~inpaint_core.nn.layers.partial.PartialConv2d` that sees only valid pixels, renormalises
  by the valid count and passes an updated mask on. Encoder: ``depth`` stride-2 partial convs,
  kernels 7, 5, 5, 3, 3, ..., widths ``b, 2b, 4b, 8b, 8b, ...`` (capped at ``8 b``), BatchNorm
  on all but the first, ReLU. Decoder: nearest-neighbour upsampling of features *and* mask,
  concatenation with the encoder's features *and* masks of the same scale (per-channel masks),
  3x3 partial conv, BatchNorm, LeakyReLU(0.2); the last layer sees the input image and its
  mask and has no norm nor activation. The paper's 512 px network has ``depth=8``.
- **Losses** (the paper's weights): ``L = 1 L_valid + 6 L_hole + 0.05 L_perc
  + 120 (L_style_out + L_style_comp) + 0.1 L_tv``. ``L_valid``/``L_hole``: L1 on known / hole
  pixels, both divided by the element count. ``L_perc``: L1 of VGG features of the output and of
  the composite against the truth; ``L_style``: L1 of their Gram matrices. ``L_tv``: total
  variation of the composite over the 1-pixel dilation of the hole. Adam, lr 2e-4.

Choices the paper leaves open, made here:

- VGG: the paper's VGG-16 pool1, pool2, pool3 become VGG-19's (the project's one VGG); the
  first two blocks are identical in both networks.
- ``texture_loss="none"`` drops the perceptual and style terms: the documented fallback when no
  VGG-19 weights are available (none ship, and none can be downloaded offline). The sidecar
  records which loss trained the weights.
- ``prior="telea"``: the partial convs still treat the hole as missing (the paper's masks, so
  the features come from known pixels only); the output is the Telea fill plus a correction
  whose last layer starts at zero, so untrained weights equal ``telea`` exactly. ``prior="none"``
  is the paper's setting: the output is the last layer's raw value (clamped to [0, 1] at
  inference; the training loss sees it unclamped, as the paper's).
- Zero padding counts as missing (NVIDIA's reference implementation), so border windows are
  renormalised like holes.
- Inputs are padded inside :meth:`PartialConvUnet.predict` to a multiple of ``2**depth`` (the
  loaded config's; :func:`~inpaint_core.learned.pad_to_multiple`), so
  ``MethodInfo.pad_multiple`` is 1.

Two architectures (:class:`Architecture`, the config's ``architecture``):

- ``lite`` (the default): the network above, trained here; every conv has a bias.
- ``mmagic``: OpenMMLab's ``PConvEncoderDecoder`` (the published Places checkpoint, format
  ``mmagic-pconv``): the same layers, widths fixed at 64 ... 512 (``base_channels=64``), a
  conv bias only where no norm follows (mmcv's ``bias='auto'``), ``depth`` = its
  ``num_layers`` (7; 4 to 8), ``prior="none"``. Image in as BGR in [-1, 1], valid mask
  ``1 - hole``, output BGR in [-1, 1] mapped back by ``(y + 1) / 2``. The reference needs
  sides that are multiples of ``2**num_layers`` and fails otherwise; here other sizes are
  padded at the bottom and right with pixels marked *missing* (ignored by the partial convs,
  as the zero padding at the borders is) and cropped.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from inpaint_core.checks import (
    parse_fields,
    require_fixed,
    require_ints,
    require_positive,
    require_weights,
)
from inpaint_core.errors import InvalidInputError, ParameterError
from inpaint_core.learned import LearnedMethod, pad_to_multiple
from inpaint_core.nn.layers.partial import PartialConv2d
from inpaint_core.nn.losses.adversarial import masked_l1
from inpaint_core.nn.losses.perceptual import PerceptualStyleLoss, perceptual_loss, style_loss
from inpaint_core.nn.losses.texture import TextureLoss, checked_texture, texture_loss_module
from inpaint_core.priors import Prior, apply_prior, prior_fill, start_at_prior
from inpaint_core.trainable.holes import hole_psnr, merge
from inpaint_core.trainable.model import OptimizerSpec, Phase, TrainableModel
from inpaint_methods.learned_infos import PARTIAL_CONV_UNET_INFO, SHIPPED_WEIGHTS

#: The deepest U-Net allowed: the paper's 8 levels at 512 x 512.
MAX_DEPTH = 8
#: Channels stop doubling at this multiple of ``base_channels`` (the paper's 512 = 8 * 64).
MAX_WIDTH_MULTIPLIER = 8
#: Encoder kernel sizes of the first levels (the paper's 7, 5, 5); deeper levels use 3.
ENCODER_KERNELS = (7, 5, 5)
DECODER_KERNEL = 3
LEAKY_SLOPE = 0.2
IMAGE_CHANNELS = 3
#: The paper's VGG-16 pool1..pool3, taken from VGG-19 here.
VGG_LAYERS = ("pool1", "pool2", "pool3")
#: Adam's betas: the paper uses Adam's defaults.
ADAM_BETAS = (0.9, 0.999)


class Architecture(str, Enum):
    """Which U-Net ``partial-conv-unet`` builds, and how it feeds it (module docstring)."""

    LITE = "lite"  # this project's: RGB in [0, 1], a bias on every conv, optional prior
    MMAGIC = "mmagic"  # OpenMMLab's PConvEncoderDecoder: BGR in [-1, 1], published weights


#: OpenMMLab's widths are fixed in its code: 64 * (1, 2, 4, 8, 8, ...).
MMAGIC_BASE_CHANNELS = 64
#: OpenMMLab's encoder always builds enc1..enc4 (and the decoder dec4..dec1).
MMAGIC_MIN_DEPTH = 4


#: Texture terms: perceptual + style on VGG-19 pool1..pool3 (the paper, with VGG-16), or none
#: (the fallback without VGG weights).
TEXTURE_LOSSES = (TextureLoss.VGG, TextureLoss.NONE)


@dataclass(frozen=True)
class PartialConvUnetConfig:
    """Architecture and training settings of ``partial-conv-unet`` (defaults: the paper's).

    Attributes:
        base_channels: width of the first partial conv (64); widths double per level up to
            ``8 * base_channels``.
        depth: down (and up) levels, 2 to 8 (the paper: 8 at 512 px; 7 here, a 2 x 2
            bottleneck at 256 px); inputs are padded to a multiple of ``2**depth``.
        prior: what fills the hole before the network (a :class:`~inpaint_core.priors.Prior`);
            with ``telea`` the output is a zero-initialised correction of the Telea fill.
        texture_loss: one of :data:`TEXTURE_LOSSES`; ``vgg`` needs VGG-19 weights.
        lr: Adam learning rate (2e-4); betas (0.9, 0.999).
        valid_weight, hole_weight: weights of the L1 terms on known and hole pixels (1, 6).
        perceptual_weight, style_weight: weights of the VGG terms (0.05, 120).
        tv_weight: weight of the total variation over the dilated hole (0.1).
        architecture: an :class:`Architecture`; ``mmagic`` needs ``base_channels=64``,
            ``depth`` 4 to 8 and ``prior="none"``.
    """

    base_channels: int = 64
    depth: int = 7
    prior: Prior = Prior.NONE
    texture_loss: TextureLoss = TextureLoss.VGG
    lr: float = 2e-4
    valid_weight: float = 1.0
    hole_weight: float = 6.0
    perceptual_weight: float = 0.05
    style_weight: float = 120.0
    tv_weight: float = 0.1
    architecture: Architecture = Architecture.LITE

    def __post_init__(self) -> None:
        parse_fields(self, prior=Prior, texture_loss=TEXTURE_LOSSES, architecture=Architecture)
        require_ints(self, ("base_channels",))
        require_ints(self, ("depth",), minimum=2)
        if self.depth > MAX_DEPTH:
            raise ParameterError(f"depth={self.depth} must be <= {MAX_DEPTH}")
        require_positive(self, ("lr",))
        require_weights(
            self, ("valid_weight", "hole_weight", "perceptual_weight", "style_weight", "tv_weight")
        )
        if self.architecture is Architecture.MMAGIC:
            self._check_mmagic()

    def _check_mmagic(self) -> None:
        """``architecture='mmagic'`` exists only as OpenMMLab builds it: widths 64 ... 512,
        4 to 8 levels, the known pixels only."""
        fixed = {"base_channels": MMAGIC_BASE_CHANNELS, "prior": Prior.NONE}
        require_fixed(self, self.architecture, fixed, "OpenMMLab's PConvEncoderDecoder")
        if self.depth < MMAGIC_MIN_DEPTH:
            raise ParameterError(
                f"depth={self.depth} does not exist in architecture='mmagic' (its num_layers "
                f"is {MMAGIC_MIN_DEPTH} to {MAX_DEPTH}); use architecture='lite'"
            )

    @property
    def multiple(self) -> int:
        """Height and width the network needs a multiple of: ``2**depth``."""
        return 2**self.depth


# --- blocks and network -----------------------------------------------------------------------
class PartialBlock(nn.Module):
    """A partial conv, then an optional BatchNorm and activation; the mask passes through.

    ``forward(x, valid)``: features ``(B, C_in, H, W)`` and a valid mask ``(B, 1 | C_in, H, W)``
    (1 = valid) -> ``(features (B, C_out, H', W'), valid (B, 1, H', W'))``.
    """

    def __init__(self, conv: PartialConv2d, norm: bool, activation: nn.Module | None) -> None:
        super().__init__()
        self.conv = conv
        self.norm = nn.BatchNorm2d(conv.out_channels) if norm else nn.Identity()
        self.activation = activation if activation is not None else nn.Identity()

    def forward(self, x: Tensor, valid: Tensor) -> tuple[Tensor, Tensor]:
        x, valid = self.conv(x, valid)
        return self.activation(self.norm(x)), valid


def level_widths(config: PartialConvUnetConfig) -> list[int]:
    """Encoder widths ``b * 2**level`` capped at ``8 b``, one per level."""
    cap = MAX_WIDTH_MULTIPLIER * config.base_channels
    return [min(config.base_channels * 2**level, cap) for level in range(config.depth)]


class PartialConvUNet(nn.Module):
    """The Partial Convolution U-Net (see the module docstring).

    ``encoder[i]`` halves the side (level ``i``); ``decoder[j]`` doubles it back, deepest
    first, and ``decoder[-1]`` is the output layer (``IMAGE_CHANNELS`` out, no norm nor
    activation).

    ``forward(image, valid)``: ``image`` float ``(B, 3, H, W)`` in [0, 1] (``mmagic``: BGR in
    [-1, 1]; hole values are never read), ``valid`` ``(B, 1, H, W)`` with 1 = known; H and W
    multiples of ``2**depth``. Returns the raw output ``(B, 3, H, W)`` (nominally the input's
    range, unbounded) and the output layer's valid mask ``(B, 1, H, W)`` (0 only where a hole
    was too large for the network to reach).
    """

    def __init__(self, config: PartialConvUnetConfig) -> None:
        super().__init__()
        self.depth = config.depth
        widths = level_widths(config)
        # mmcv's bias='auto' (mmagic): a conv followed by a norm has no bias.
        lite = config.architecture is Architecture.LITE
        encoder: list[nn.Module] = []
        for level, width in enumerate(widths):
            kernel = ENCODER_KERNELS[level] if level < len(ENCODER_KERNELS) else DECODER_KERNEL
            source = IMAGE_CHANNELS if level == 0 else widths[level - 1]
            bias = lite or level == 0
            conv = PartialConv2d(source, width, kernel, stride=2, padding=kernel // 2, bias=bias)
            encoder.append(PartialBlock(conv, norm=level > 0, activation=nn.ReLU()))
        decoder: list[nn.Module] = []
        for level in reversed(range(1, config.depth)):
            source, target = widths[level] + widths[level - 1], widths[level - 1]
            padding = DECODER_KERNEL // 2
            conv = PartialConv2d(source, target, DECODER_KERNEL, padding=padding, bias=lite)
            decoder.append(PartialBlock(conv, norm=True, activation=nn.LeakyReLU(LEAKY_SLOPE)))
        output = PartialConv2d(
            widths[0] + IMAGE_CHANNELS, IMAGE_CHANNELS, DECODER_KERNEL, padding=DECODER_KERNEL // 2
        )
        decoder.append(PartialBlock(output, norm=False, activation=None))
        self.encoder = nn.ModuleList(encoder)
        self.decoder = nn.ModuleList(decoder)

    @property
    def last_layer(self) -> PartialConv2d:
        """The output partial conv (zeroed by ``start_at_prior``)."""
        return self.decoder[-1].conv  # type: ignore[return-value]

    def forward(self, image: Tensor, valid: Tensor) -> tuple[Tensor, Tensor]:
        multiple = 2**self.depth
        if image.ndim != 4 or image.shape[-2] % multiple or image.shape[-1] % multiple:
            raise InvalidInputError(
                f"input shape {tuple(image.shape)} is not (B, 3, H, W) with H and W multiples "
                f"of {multiple} (2**depth)"
            )
        features, masks = [image], [valid]
        x, mask = image, valid
        for block in self.encoder:
            x, mask = block(x, mask)
            features.append(x)
            masks.append(mask)
        features.pop(), masks.pop()
        for block in self.decoder:
            skip, skip_mask = features.pop(), masks.pop()
            x = F.interpolate(x, scale_factor=2.0, mode="nearest")
            mask = F.interpolate(mask, scale_factor=2.0, mode="nearest")
            # Skip links concatenate features and masks: one mask per input channel.
            channel_masks = torch.cat(
                [mask.expand(-1, x.shape[1], -1, -1), skip_mask.expand(-1, skip.shape[1], -1, -1)],
                dim=1,
            )
            x, mask = block(torch.cat([x, skip], dim=1), channel_masks)
        return x, mask


class PartialConvUnetNetworks(nn.Module):
    """The inference networks: one child, ``generator`` (a :class:`PartialConvUNet`)."""

    def __init__(self, config: PartialConvUnetConfig) -> None:
        super().__init__()
        self.config = config
        self.generator = PartialConvUNet(config)
        if config.prior is not Prior.NONE:  # start as the prior exactly: a zero correction
            start_at_prior(self.generator.last_layer)

    def complete(self, images: Tensor, masks: Tensor, valid: Tensor | None = None) -> Tensor:
        """The network's image ``(B, 3, H, W)`` for images in [0, 1] and masks 1 = hole.

        H and W must be multiples of ``2**depth``. With prior ``none`` the raw output
        (unclamped); otherwise ``(telea fill + correction).clamp(0, 1)``. ``valid``
        ``(B, 1, H, W)`` (1 = known to the network) defaults to ``1 - masks``; ``mmagic``'s
        padding passes it with the padded band 0 (missing, yet not a hole to report).
        With ``architecture='mmagic'`` the network runs in OpenMMLab's encoding (BGR in
        [-1, 1]) and its output is mapped back to RGB ``(raw + 1) / 2``, unclamped.
        """
        if valid is None:
            valid = 1.0 - (masks > 0.5).to(images.dtype)
        if self.config.architecture is Architecture.MMAGIC:
            raw, _ = self.generator(images.flip(1) * 2.0 - 1.0, valid)
            return (raw.flip(1) + 1.0) * 0.5
        filled = prior_fill(images, masks, self.config.prior)
        raw, _ = self.generator(filled, valid)
        return apply_prior(filled, raw, self.config.prior)


# --- losses -----------------------------------------------------------------------------------
def total_variation_loss(composite: Tensor, masks: Tensor) -> tuple[Tensor, dict[str, float]]:
    """Total variation of ``composite`` over the 1-pixel dilation of the hole (Liu et al.).

    ``sum |I[i, j+1] - I[i, j]| + sum |I[i+1, j] - I[i, j]|`` over the pixel pairs whose both
    pixels lie in the hole dilated by a 3 x 3 square, divided by ``composite.numel()``.

    Args:
        composite: ``(B, C, H, W)``, the output inside the hole and the truth outside.
        masks: ``(B, 1, H, W)``, 1 = hole.

    Returns:
        ``(loss, {"tv": float})``.
    """
    if composite.ndim != 4 or tuple(masks.shape) != (composite.shape[0], 1, *composite.shape[2:]):
        raise InvalidInputError(
            f"composite {tuple(composite.shape)} and masks {tuple(masks.shape)} are not "
            "(B, C, H, W) and (B, 1, H, W)"
        )
    region = F.max_pool2d((masks > 0.5).to(composite.dtype), 3, stride=1, padding=1)
    across = region[..., :, 1:] * region[..., :, :-1]
    down = region[..., 1:, :] * region[..., :-1, :]
    horizontal = ((composite[..., :, 1:] - composite[..., :, :-1]).abs() * across).sum()
    vertical = ((composite[..., 1:, :] - composite[..., :-1, :]).abs() * down).sum()
    loss = (horizontal + vertical) / composite.numel()
    return loss, {"tv": float(loss.detach())}


class PartialConvUnetTraining(TrainableModel):
    """The generator and the paper's losses, for :func:`inpaint_core.training.train`."""

    method = "partial-conv-unet"
    inference_networks = ("generator",)

    def __init__(
        self, config: PartialConvUnetConfig, texture: PerceptualStyleLoss | None = None
    ) -> None:
        super().__init__()
        self.config = config
        self.adopt(PartialConvUnetNetworks(config))
        self.texture = checked_texture(config.texture_loss, texture)

    def optimizer_specs(self) -> dict[str, OptimizerSpec]:
        return {"generator": OptimizerSpec(("generator",), self.config.lr, ADAM_BETAS)}

    def training_metadata(self) -> dict[str, Any]:
        return {"texture_loss": self.config.texture_loss.value, "prior": self.config.prior.value}

    def training_step(self, batch: dict[str, Tensor]) -> Iterator[Phase]:
        """One phase, ``generator``.

        Batch: image ``(B, 3, S, S)`` in [0, 1], mask ``(B, 1, S, S)`` with 1 = hole; S a
        multiple of ``2**depth``. Logs ``l1_valid``, ``l1_hole`` (unweighted), ``tv``,
        ``perceptual`` and ``style`` (with VGG), ``hole_psnr``.
        """
        c = self.config
        images, masks = batch["image"], batch["mask"]
        networks = self.inference
        assert isinstance(networks, PartialConvUnetNetworks)
        output = networks.complete(images, masks)
        composite = merge(output, images, masks)
        loss, l1_metrics = masked_l1(output, images, masks, c.hole_weight, c.valid_weight)
        tv, _ = total_variation_loss(composite, masks)
        loss = loss + c.tv_weight * tv
        metrics = {
            "l1_valid": l1_metrics["l1_valid"],
            "l1_hole": l1_metrics["l1_hole"],
            "tv": float(tv.detach()),
        }
        if self.texture is not None:
            perceptual, style = self._texture(images, output, composite)
            loss = loss + c.perceptual_weight * perceptual + c.style_weight * style
            metrics.update(perceptual=float(perceptual.detach()), style=float(style.detach()))
        metrics["hole_psnr"] = float(hole_psnr(output.clamp(0.0, 1.0), images, masks))
        yield Phase("generator", loss, metrics)

    def _texture(self, images: Tensor, output: Tensor, composite: Tensor) -> tuple[Tensor, Tensor]:
        """``L_perc`` and ``L_style_out + L_style_comp`` on the frozen VGG features."""
        assert self.texture is not None
        vgg = self.texture.vgg
        with torch.no_grad():
            real = vgg(images)
        fake_out, fake_comp = vgg(output), vgg(composite)
        perceptual = perceptual_loss(real, fake_out)[0] + perceptual_loss(real, fake_comp)[0]
        style = style_loss(real, fake_out)[0] + style_loss(real, fake_comp)[0]
        return perceptual, style


# --- the registered method ------------------------------------------------------------------
class PartialConvUnet(LearnedMethod):
    """The Partial Convolution U-Net (Liu et al. 2018), with trained weights."""

    info = PARTIAL_CONV_UNET_INFO
    config_class = PartialConvUnetConfig
    networks_class = PartialConvUnetNetworks
    training_class = PartialConvUnetTraining
    weights_folder = SHIPPED_WEIGHTS
    batch_predict = True
    #: 32 x 32 training crops go down to 4 x 4, 4-channel widths, no VGG.
    smoke_test_options: ClassVar[Mapping[str, object]] = {
        "base_channels": 4,
        "depth": 3,
        "texture_loss": "none",
    }
    smoke_test_loss = "l1_hole"

    @classmethod
    def build_training(
        cls, config: PartialConvUnetConfig, *, vgg_weights: str | None = None
    ) -> PartialConvUnetTraining:
        """The training module; ``texture_loss='vgg'`` loads VGG-19 from ``vgg_weights``.

        Raises:
            MissingWeightsError: ``texture_loss='vgg'`` without a weights file (the message
                names ``--option texture_loss=none``, the fallback).
        """
        cls.check_trainable(config)
        texture = texture_loss_module(
            config.texture_loss, vgg_weights, TextureLoss.NONE, layers=VGG_LAYERS
        )
        return PartialConvUnetTraining(config, texture)

    def predict(
        self, networks: nn.Module, image: Tensor, mask: Tensor
    ) -> tuple[Tensor, dict[str, Tensor]]:
        """The network in eval mode on ``image`` padded to a multiple of ``2**depth``.

        ``lite`` pads by reflection; ``mmagic`` pads with pixels the partial convs treat as
        missing (the reference refuses such sizes; see the module docstring).

        Args:
            networks: a loaded :class:`PartialConvUnetNetworks` in eval mode.
            image: float32 ``(1, 3, H, W)`` in [0, 1].
            mask: float32 ``(1, 1, H, W)``, 1 = hole.

        Returns:
            The network's image ``(1, 3, H, W)`` clamped to [0, 1] and no extra outputs.
        """
        assert isinstance(networks, PartialConvUnetNetworks)
        height, width = image.shape[-2:]
        multiple = networks.config.multiple
        valid = None
        mode = self.pad_mode
        if networks.config.architecture is Architecture.MMAGIC:  # padded pixels are missing
            mode = "zeros"
            valid = pad_to_multiple(1.0 - (mask > 0.5).to(image.dtype), multiple, mode)
        image = pad_to_multiple(image, multiple, mode)
        mask = pad_to_multiple(mask, multiple, mode)
        output = networks.complete(image, mask, valid).clamp(0.0, 1.0)
        return output[:, :, :height, :width], {}
