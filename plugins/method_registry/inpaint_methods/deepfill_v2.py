"""``deepfill-v2``: coarse-to-fine gated-convolution inpainting (family 5, StackGAN).

J. Yu, Z. Lin, J. Yang, X. Shen, X. Lu, T. Huang, "Free-Form Image Inpainting with Gated
Convolution", ICCV 2019, on "Generative Image Inpainting with Contextual Attention", CVPR 2018.

Stage 1 (**coarse**) sees the prior-filled image in [-1, 1], a ones channel (so the zero
padding of the borders is visible) and the mask: gated convs 5x5, two stride-2 downs, convs,
dilated convs (2, 4, 8, 16), convs, two gated upsamplings, a plain 3x3 conv to RGB and tanh.
Stage 2 (**refine**) sees the composite (coarse result in the hole, the input elsewhere), with
the ones and mask channels: a dilated gated-conv branch and a contextual-attention branch (at
1/4 resolution, matching at ``attention_rate``), concatenated and decoded like stage 1.
SN-PatchGAN judges ``(image, mask)``; hinge loss; ``L_G = l1_coarse + l1_refine + adv``.

As in the official code, ``base_channels`` (its ``cnum``, 48) counts the *filters* of each
gated conv, half of which are gates: the feature widths are ``b/2, b, 2b`` (and ``b/4`` before
the output conv), 4.06 M generator parameters at ``b = 48``. Choices, with their reasons, are in
``docs/methods/deepfill-v2.md``.

Two architectures (:class:`Architecture`, the config's ``architecture``):

- ``lite`` (the default, and what a sidecar without the field means): the above.
- ``mmagic``: OpenMMLab's published DeepFill v2 (mmediting / mmagic ``TwoStageInpaintor`` with
  ``DeepFillEncoderDecoder``; :mod:`inpaint_core.nn.layers.deepfill_mmagic`), so its Places
  checkpoint (format ``mmagic-deepfillv2``, :mod:`inpaint_core.weights.mmagic_deepfillv2`)
  reproduces the reference. Its test path: the image in BGR order, ``(v - 127.5) / 127.5``,
  the hole set to 0 (mmagic's ``GetMaskedImage`` fills 127.5), input ``cat(masked, ones,
  mask)``; the result is stage 2's output (tanh) in the hole. Widths come from
  ``channel_factor`` (encoders, necks, stage 1's decoder; 0.75) and ``refine_channel_factor``
  (stage 2's decoder; 1). Sides must be multiples of 8 (padded, as for ``lite``; the
  reference refuses other sizes) and at least 72. Inference only: it has no training here.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from enum import Enum
from functools import partial
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from inpaint_core.checks import (
    parse_fields,
    require_fixed,
    require_fractions,
    require_ints,
    require_positive,
    require_weights,
)
from inpaint_core.errors import InvalidInputError, ParameterError
from inpaint_core.learned import LearnedMethod
from inpaint_core.nn.discriminators.sn_patch import SNPatchDiscriminator, SNPatchDiscriminatorConfig
from inpaint_core.nn.layers.attention import DEFAULT_MAX_ELEMENTS, ContextualAttention
from inpaint_core.nn.layers.deepfill_mmagic import MmagicDeepFillGenerator, check_factor
from inpaint_core.nn.layers.gated import Activation, GatedConv2d, GatedDeconv2d
from inpaint_core.nn.losses.adversarial import GanLoss, discriminator_loss, generator_loss
from inpaint_core.priors import Prior, apply_prior, prior_fill, start_at_prior
from inpaint_core.trainable.holes import hole_psnr, merge
from inpaint_core.trainable.model import OptimizerSpec, Phase, TrainableModel
from inpaint_methods.learned_infos import (
    DEEPFILL_V2_INFO,
    DEEPFILL_V2_PAD_MULTIPLE,
    SHIPPED_WEIGHTS,
)

#: Two stride-2 downsamplings times the attention's rate 2: inputs are padded to this.
PAD_MULTIPLE = DEEPFILL_V2_PAD_MULTIPLE
_DILATIONS = (2, 4, 8, 16)


class Architecture(str, Enum):
    """Which generator ``deepfill-v2`` builds (see the module docstring)."""

    LITE = "lite"  # this project's two stages, priors, trainable
    MMAGIC = "mmagic"  # OpenMMLab's published generator and test path, inference only


@dataclass(frozen=True)
class DeepFillV2Config:
    """Architecture and training settings of ``deepfill-v2`` (defaults: the official code's).

    Attributes:
        base_channels: the official ``cnum`` (48): filters of the first gated conv, half of
            them gates. A multiple of 4 (``cnum // 2`` filters feed the output conv).
        discriminator_channels: width of SN-PatchGAN's first conv (64).
        attention_rate: contextual attention matches at this downscaling, 1 or 2 (2).
        attention_scale: softmax scale of the attention (10).
        attention_fuse: attention propagation over 3x3 neighbourhoods (true).
        attention_chunk: most elements of one attention score block (queries x keys); bounds
            memory (2**24: 64 MiB in float32).
        prior: a :class:`~inpaint_core.priors.Prior`; ``telea`` makes both stages predict a
            correction on the Telea fill whose last conv starts at zero.
        l1_coarse_weight, l1_refine_weight, adv_weight: loss weights (1, 1, 1).
        lr, beta1, beta2: Adam for the generator and the discriminator (1e-4, 0.5, 0.999).
        architecture: an :class:`Architecture`. ``mmagic`` needs ``prior="none"``,
            ``attention_rate=2`` and the default ``base_channels`` and ``attention_chunk``
            (its widths are the two factors below; its attention is the reference's, whole).
        channel_factor: ``mmagic`` only: OpenMMLab's ``channel_factor`` of every encoder, neck
            and stage 1's decoder (0.75 in the published model).
        refine_channel_factor: ``mmagic`` only: the ``channel_factor`` of stage 2's decoder (1).
    """

    base_channels: int = 48
    discriminator_channels: int = 64
    attention_rate: int = 2
    attention_scale: float = 10.0
    attention_fuse: bool = True
    attention_chunk: int = DEFAULT_MAX_ELEMENTS
    prior: Prior = Prior.NONE
    l1_coarse_weight: float = 1.0
    l1_refine_weight: float = 1.0
    adv_weight: float = 1.0
    lr: float = 1e-4
    beta1: float = 0.5
    beta2: float = 0.999
    architecture: Architecture = Architecture.LITE
    channel_factor: float = 0.75
    refine_channel_factor: float = 1.0

    def __post_init__(self) -> None:
        parse_fields(
            self,
            prior=Prior,
            architecture=Architecture,
            channel_factor=partial(check_factor, "channel_factor"),
            refine_channel_factor=partial(check_factor, "refine_channel_factor"),
        )
        require_ints(
            self, ("base_channels", "discriminator_channels", "attention_rate", "attention_chunk")
        )
        if self.base_channels % 4:
            raise ParameterError(f"base_channels={self.base_channels} must be a multiple of 4")
        if self.attention_rate not in (1, 2):
            raise ParameterError(f"attention_rate={self.attention_rate} must be 1 or 2")
        if not isinstance(self.attention_fuse, bool):
            raise ParameterError(f"attention_fuse={self.attention_fuse!r} must be true or false")
        if not (math.isfinite(self.attention_scale) and self.attention_scale > 0):
            raise ParameterError(
                f"attention_scale={self.attention_scale!r} must be a finite number > 0"
            )
        require_positive(self, ("lr",))
        require_fractions(self, ("beta1", "beta2"))
        require_weights(self, ("l1_coarse_weight", "l1_refine_weight", "adv_weight"))
        self._check_architecture()

    def _check_architecture(self) -> None:
        """Refuse settings the chosen architecture does not have (no silent defaults)."""
        if self.architecture is Architecture.LITE:
            for name, default in (("channel_factor", 0.75), ("refine_channel_factor", 1.0)):
                if getattr(self, name) != default:
                    raise ParameterError(
                        f"{name}={getattr(self, name)!r} exists only in "
                        "architecture='mmagic'; use base_channels for 'lite'"
                    )
            return
        # Its widths are channel_factor and refine_channel_factor, its attention matches at
        # 1/2 over the whole image, and it sees the hole as 0.
        fixed = {
            "prior": Prior.NONE,
            "base_channels": 48,
            "attention_rate": 2,
            "attention_chunk": DEFAULT_MAX_ELEMENTS,
        }
        require_fixed(self, self.architecture, fixed, "OpenMMLab's DeepFill v2")


# --- networks -------------------------------------------------------------------------------
def _decoder(in_channels: int, b: int) -> list[nn.Module]:
    """Two convs at 1/4, two gated upsamplings, a conv to ``b/4`` (the RGB conv follows)."""
    return [
        GatedConv2d(in_channels, 2 * b),
        GatedConv2d(2 * b, 2 * b),
        GatedDeconv2d(2 * b, b),
        GatedConv2d(b, b),
        GatedDeconv2d(b, b // 2),
        GatedConv2d(b // 2, b // 4),
    ]


def _encoder(in_channels: int, widths: tuple[int, ...], last: Activation) -> list[nn.Module]:
    """Six gated convs to 1/4: 5x5, then 3x3 with stride 2 at the 2nd and 4th; ``last`` ends."""
    layers: list[nn.Module] = []
    for index, width in enumerate(widths):
        kernel, stride = (5, 1) if index == 0 else (3, 2 if index in (1, 3) else 1)
        activation = last if index == len(widths) - 1 else Activation.ELU
        layers.append(
            GatedConv2d(in_channels, width, kernel, stride=stride, activation=activation)
        )
        in_channels = width
    return layers


class CoarseNetwork(nn.Module):
    """Stage 1: ``(B, 5, H, W)`` (image in [-1, 1], ones, mask) -> raw RGB ``(B, 3, H, W)``.

    Feature widths (``b = base_channels``): ``b/2`` at full size, ``b`` at 1/2, ``2b`` at 1/4
    through the dilated convs, back up to ``b/4``; a plain 3x3 conv to RGB. The raw output is
    pre-tanh (prior ``none``) or the correction (other priors; its conv starts at zero).
    """

    def __init__(self, b: int, residual: bool) -> None:
        super().__init__()
        layers = _encoder(5, (b // 2, b, b, 2 * b, 2 * b, 2 * b), Activation.ELU)
        layers += [GatedConv2d(2 * b, 2 * b, dilation=d) for d in _DILATIONS]
        self.body = nn.Sequential(*layers, *_decoder(2 * b, b))
        self.to_rgb = nn.Conv2d(b // 4, 3, 3, padding=1)
        if residual:
            start_at_prior(self.to_rgb)

    def forward(self, x: Tensor) -> Tensor:
        return self.to_rgb(self.body(x))


class RefineNetwork(nn.Module):
    """Stage 2: ``(B, 5, H, W)`` composite, ones, mask + the mask -> raw RGB ``(B, 3, H, W)``.

    ``hallucinate``: six gated convs to 1/4 (widths ``b/2, b/2, b, b, 2b, 2b``) and the
    dilated convs. ``attend``: six gated convs (``b/2, b/2, b, 2b, 2b, 2b``, the last with
    ReLU), contextual attention at 1/4 with the mask max-pooled to 1/4, two convs. Both ``2b``
    wide, concatenated, decoded as in stage 1.
    """

    def __init__(self, b: int, config: DeepFillV2Config, residual: bool) -> None:
        super().__init__()
        conv_branch = _encoder(5, (b // 2, b // 2, b, b, 2 * b, 2 * b), Activation.ELU)
        conv_branch += [GatedConv2d(2 * b, 2 * b, dilation=d) for d in _DILATIONS]
        self.hallucinate = nn.Sequential(*conv_branch)
        attend = _encoder(5, (b // 2, b // 2, b, 2 * b, 2 * b, 2 * b), Activation.RELU)
        self.attend_encoder = nn.Sequential(*attend)
        self.attention = ContextualAttention(
            config.attention_rate,
            config.attention_scale,
            config.attention_fuse,
            config.attention_chunk,
        )
        self.attend_decoder = nn.Sequential(GatedConv2d(2 * b, 2 * b), GatedConv2d(2 * b, 2 * b))
        self.body = nn.Sequential(*_decoder(4 * b, b))
        self.to_rgb = nn.Conv2d(b // 4, 3, 3, padding=1)
        if residual:
            start_at_prior(self.to_rgb)

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        hallucinated = self.hallucinate(x)
        features = self.attend_encoder(x)
        small_mask = F.max_pool2d(mask, 4)  # a feature position is a hole if any pixel is
        attended = self.attend_decoder(self.attention(features, small_mask))
        return self.to_rgb(self.body(torch.cat([hallucinated, attended], dim=1)))


class DeepFillV2Networks(nn.Module):
    """``coarse`` and ``refine``: the inference networks."""

    def __init__(self, config: DeepFillV2Config) -> None:
        super().__init__()
        self.config = config
        residual = config.prior is not Prior.NONE
        self.coarse = CoarseNetwork(config.base_channels, residual)
        self.refine = RefineNetwork(config.base_channels, config, residual)

    def forward(self, images: Tensor, masks: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Both stages.

        Args:
            images: float ``(B, 3, H, W)`` in [0, 1]; hole pixels are never read.
            masks: ``(B, 1, H, W)``, 1 = hole. H and W multiples of :data:`PAD_MULTIPLE`.

        Returns:
            ``(coarse, refined, filled)``, each ``(B, 3, H, W)`` in [0, 1]: the stage outputs
            (whole images, not merged) and the prior-filled input.
        """
        shape = tuple(images.shape)
        if images.ndim != 4 or shape[1] != 3 or tuple(masks.shape) != (shape[0], 1, *shape[2:]):
            raise InvalidInputError(
                f"images {shape} and masks {tuple(masks.shape)} are not (B, 3, H, W), (B, 1, H, W)"
            )
        if shape[2] % PAD_MULTIPLE or shape[3] % PAD_MULTIPLE:
            raise InvalidInputError(
                f"image {shape[2]} x {shape[3]} is not a multiple of {PAD_MULTIPLE}; pad it"
            )
        masks = (masks > 0.5).to(images.dtype)
        filled = prior_fill(images, masks, self.config.prior)
        ones = torch.ones_like(masks)
        coarse = self._output(filled, self.coarse(torch.cat([filled * 2 - 1, ones, masks], 1)))
        composite = merge(coarse, filled, masks)
        raw = self.refine(torch.cat([composite * 2 - 1, ones, masks], 1), masks)
        return coarse, self._output(filled, raw), filled

    def _output(self, filled: Tensor, raw: Tensor) -> Tensor:
        if self.config.prior is Prior.NONE:
            return (torch.tanh(raw) + 1) / 2
        return apply_prior(filled, raw, self.config.prior)


class MmagicDeepFillNetworks(nn.Module):
    """``generator``: OpenMMLab's two-stage DeepFill v2, fed as its test path feeds it."""

    def __init__(self, config: DeepFillV2Config) -> None:
        super().__init__()
        self.config = config
        self.generator = MmagicDeepFillGenerator(
            config.channel_factor,
            config.refine_channel_factor,
            config.attention_scale,
            config.attention_fuse,
        )

    def forward(self, images: Tensor, masks: Tensor) -> tuple[Tensor, Tensor]:
        """Both stages as ``TwoStageInpaintor.forward_tensor`` runs them.

        Args:
            images: float ``(B, 3, H, W)`` RGB in [0, 1]; hole pixels are never read.
            masks: ``(B, 1, H, W)``, 1 (> 0.5) = hole. H and W multiples of 8, at least 72.

        Returns:
            ``(stage1, stage2)``, each ``(B, 3, H, W)`` RGB in [0, 1]: the stage outputs over
            the whole image (not merged).
        """
        shape = tuple(images.shape)
        if images.ndim != 4 or shape[1] != 3 or tuple(masks.shape) != (shape[0], 1, *shape[2:]):
            raise InvalidInputError(
                f"images {shape} and masks {tuple(masks.shape)} are not (B, 3, H, W), (B, 1, H, W)"
            )
        masks = (masks > 0.5).to(images.dtype)
        # The published model was trained on BGR images (mmediting loads with OpenCV and does
        # not convert); its inputs are (v - 127.5) / 127.5 with the hole at 0.
        bgr = images.flip(1) * 2 - 1
        masked = bgr * (1 - masks)
        stage1, stage2 = self.generator(torch.cat([masked, torch.ones_like(masks), masks], 1))
        return (stage1.flip(1) + 1) / 2, (stage2.flip(1) + 1) / 2


# --- training ---------------------------------------------------------------------------------
class DeepFillV2Training(TrainableModel):
    """Coarse and refine generators, SN-PatchGAN, and DeepFill v2's losses."""

    method = "deepfill-v2"
    inference_networks = ("coarse", "refine")

    def __init__(self, config: DeepFillV2Config) -> None:
        super().__init__()
        self.config = config
        self.adopt(DeepFillV2Networks(config))
        self.discriminator = SNPatchDiscriminator(
            SNPatchDiscriminatorConfig(4, config.discriminator_channels)
        )

    def optimizer_specs(self) -> dict[str, OptimizerSpec]:
        return self.gan_optimizer_specs(self.config.lr, (self.config.beta1, self.config.beta2))

    def training_metadata(self) -> dict[str, Any]:
        return {"prior": self.config.prior.value, "gan_loss": GanLoss.HINGE.value}

    def _judge(self, images: Tensor, masks: Tensor) -> Tensor:
        return self.discriminator(torch.cat([images * 2 - 1, masks], dim=1))

    def training_step(self, batch: dict[str, Tensor]) -> Iterator[Phase]:
        """Two phases: SN-PatchGAN (hinge, halved as in the official code), then both stages.

        Batch: image ``(B, 3, S, S)`` in [0, 1], mask ``(B, 1, S, S)`` with 1 = hole; S a
        multiple of :data:`PAD_MULTIPLE`. L1 terms are on the [-1, 1] scale of the official
        code (twice the [0, 1] mean absolute error), over the whole image.
        """
        c = self.config
        images, masks = batch["image"], (batch["mask"] > 0.5).to(batch["image"].dtype)
        coarse, refined, _ = self.inference(images, masks)
        composite = merge(refined, images, masks)

        d_loss, d_metrics = discriminator_loss(
            GanLoss.HINGE, self._judge(images, masks), self._judge(composite.detach(), masks)
        )
        yield Phase("discriminator", 0.5 * d_loss, {"d_loss": 0.5 * d_metrics["d_loss"]})

        adv, _ = generator_loss(GanLoss.HINGE, self._judge(composite, masks))
        l1_coarse = 2 * (coarse - images).abs().mean()
        l1_refine = 2 * (refined - images).abs().mean()
        loss = c.l1_coarse_weight * l1_coarse + c.l1_refine_weight * l1_refine + c.adv_weight * adv
        terms = {
            "l1_coarse": l1_coarse,
            "l1_refine": l1_refine,
            "adv": adv,
            "hole_psnr": hole_psnr(refined, images, masks),
        }
        yield Phase("generator", loss, {k: float(v.detach()) for k, v in terms.items()})


# --- the registered method ------------------------------------------------------------------
class DeepFillV2(LearnedMethod):
    """DeepFill v2: gated convolutions, contextual attention, SN-PatchGAN (trained weights)."""

    info = DEEPFILL_V2_INFO
    config_class = DeepFillV2Config
    networks_class = DeepFillV2Networks
    training_class = DeepFillV2Training  # no perceptual loss: ``vgg_weights`` is unused
    inference_only_architectures = frozenset({Architecture.MMAGIC.value})
    weights_folder = SHIPPED_WEIGHTS
    batch_predict = True
    #: Feature widths 2, 4, 8: a fraction of a second a training step at 32 x 32.
    smoke_test_options: ClassVar[Mapping[str, object]] = {
        "base_channels": 8,
        "discriminator_channels": 4,
    }
    smoke_test_loss = "l1_refine"

    @classmethod
    def build_networks(cls, config: DeepFillV2Config) -> nn.Module:
        """:class:`DeepFillV2Networks`, or :class:`MmagicDeepFillNetworks` for ``mmagic``."""
        if config.architecture is Architecture.MMAGIC:
            return MmagicDeepFillNetworks(config)
        return DeepFillV2Networks(config)

    def predict(
        self, networks: nn.Module, image: Tensor, mask: Tensor
    ) -> tuple[Tensor, dict[str, Tensor]]:
        """Both stages on a padded batch; the refined image. See :meth:`LearnedMethod.predict`."""
        if isinstance(networks, MmagicDeepFillNetworks):
            return networks(image, mask)[1], {}
        assert isinstance(networks, DeepFillV2Networks)
        _, refined, _ = networks(image, mask)
        return refined, {}
