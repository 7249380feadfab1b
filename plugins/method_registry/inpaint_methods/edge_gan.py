"""``edge-gan``: the edge-guided, dual-discriminator GAN for cultural-relic images (SPEC, seed 003).

Stage 1: the edge generator G1 sees the grayscale damaged image, the Canny edges of its known
part and the mask, and predicts the edges in the hole; D1 judges edge maps conditioned on the
grayscale image (hinge loss, weight 1, plus feature matching, weight 10). Stage 2: the image
generator G2 sees the damaged image, the composite edges (known edges outside the hole,
predicted inside) and the mask; D2 judges the whole image with its edges (global), D3 a
128 x 128 crop centred on the hole (local). ``L_G2 = 0.1 (0.8 L_adv2 + 0.2 L_adv3) + 0.1 L_perc
+ 250 L_style + 1 L_1``. G1 and G2 are :class:`~inpaint_core.nn.layers.blocks.EncoderDecoder`
(2 downsamplings, 8 dilated residual blocks, 2 transposed-conv upsamplings); Adam, lr 1e-4.

Choices the SPEC leaves open, made here:

- G2 also receives the mask as a fifth channel (with a classical prior the hole is not visibly
  marked otherwise). G2's edges come from G1 detached: each stage trains on its own loss.
- ``L_1`` is EdgeConnect's: the mean absolute error over the image divided by the hole fraction.
- ``texture_loss="vgg"`` (the paper) needs VGG-19 weights (``--vgg-weights`` or
  ``INPAINT_VGG19_WEIGHTS``). Without them, ``texture_loss="discriminator-features"`` is the
  documented fallback: the perceptual term becomes an L1 match of D2's first four feature maps
  and the style term a Gram-matrix match of its first three, with the same weights. The
  sidecar records which one trained the weights.
- ``prior="telea"`` (issue 8): the hole is pre-filled by Telea and G2's zero-initialised last
  layer predicts a correction, so untrained weights equal ``telea``. ``prior="none"`` is the
  paper's setting (hole set to white, ``tanh`` output).

Two architectures (:class:`Architecture`, the config's ``architecture``):

- ``lite`` (the default, and what a sidecar without the field means): the above; G2 sees the
  mask, the hole is pre-filled by the prior, G2 sees the composite edges.
- ``edgeconnect``: EdgeConnect's published generators and test path exactly (K. Nazeri et al.,
  knazeri/edge-connect, ``test()`` with model 3), so its checkpoints (format ``edge-connect``,
  :mod:`inpaint_core.weights.edge_connect`) reproduce the reference. G1 gets the grey image
  (skimage ``rgb2gray`` in float64, cast to float32) with the hole set to 1, the Canny edges
  (float64, ``mask=`` known pixels) and the mask; G2 gets the RGB image with the hole set to 1
  and G1's raw edge probabilities over the whole image (not composited, not thresholded), and
  no mask channel. The output is shifted by :func:`~inpaint_core.learned.as_truncated`, so the
  round-to-nearest writers reproduce the reference's ``int(x * 255)``.
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
from inpaint_core.errors import ParameterError
from inpaint_core.learned import LearnedMethod, as_truncated
from inpaint_core.nn.discriminators.patch import PatchDiscriminator, PatchDiscriminatorConfig
from inpaint_core.nn.layers.blocks import EncoderDecoder, EncoderDecoderConfig, Output
from inpaint_core.nn.losses.adversarial import (
    GanLoss,
    discriminator_loss,
    feature_matching_loss,
    generator_loss,
)
from inpaint_core.nn.losses.perceptual import PerceptualStyleLoss, perceptual_loss, style_loss
from inpaint_core.nn.losses.texture import TextureLoss, checked_texture, texture_loss_module
from inpaint_core.priors import Prior, apply_prior, prior_fill, start_at_prior
from inpaint_core.trainable.holes import crop_batch, hole_crops, hole_psnr, merge
from inpaint_core.trainable.model import OptimizerSpec, Phase, TrainableModel
from inpaint_methods.edge_maps import canny_edges, reference_gray, to_gray
from inpaint_methods.learned_infos import EDGE_GAN_INFO, SHIPPED_WEIGHTS

#: D2 feature maps used by the discriminator-features texture fallback.
_FALLBACK_PERCEPTUAL_LAYERS = 4
_FALLBACK_STYLE_LAYERS = 3


class Architecture(str, Enum):
    """Which generators ``edge-gan`` builds, and how it feeds them (see the module docstring)."""

    LITE = "lite"  # this project's: G2 also sees the mask; prior fill; composite edges
    EDGECONNECT = "edgeconnect"  # EdgeConnect's published generators and test path


#: G2's texture terms: on VGG-19 relu1_1..relu3_1 (the paper), or the documented fallback
#: without VGG weights, on D2's features.
TEXTURE_LOSSES = (TextureLoss.VGG, TextureLoss.DISCRIMINATOR_FEATURES)


@dataclass(frozen=True)
class EdgeGanConfig:
    """Architecture and training settings of ``edge-gan`` (defaults: the paper's).

    Attributes:
        base_channels: width of G1 and G2 (64 in the paper; 16 is the shipped "lite" width).
        residual_blocks: residual blocks of G1 and G2 (8).
        discriminator_channels: width of D1, D2 and D3 (64).
        prior: what fills the hole before G1/G2 (a :class:`~inpaint_core.priors.Prior`).
        texture_loss: one of :data:`TEXTURE_LOSSES`.
        canny_sigma: Gaussian sigma of the Canny detector (2, as EdgeConnect).
        local_size: side of D3's crop centred on the hole (128).
        gan_loss: adversarial objective of all three discriminators (hinge).
        lr: Adam learning rate of every network (1e-4); betas (0, 0.9).
        adv1_weight, fm_weight: stage-1 weights ``a_adv1 = 1``, ``a_FM = 10``.
        adv_weight, global_weight, local_weight: ``a = 0.1``, ``a_adv2 = 0.8``, ``a_adv3 = 0.2``.
        perceptual_weight, style_weight, l1_weight: ``a_p = 0.1``, ``a_s = 250``, L1 = 1.
        architecture: an :class:`Architecture`; ``edgeconnect`` needs ``prior="none"``.
    """

    base_channels: int = 64
    residual_blocks: int = 8
    discriminator_channels: int = 64
    prior: Prior = Prior.NONE
    texture_loss: TextureLoss = TextureLoss.VGG
    canny_sigma: float = 2.0
    local_size: int = 128
    gan_loss: GanLoss = GanLoss.HINGE
    lr: float = 1e-4
    adv1_weight: float = 1.0
    fm_weight: float = 10.0
    adv_weight: float = 0.1
    global_weight: float = 0.8
    local_weight: float = 0.2
    perceptual_weight: float = 0.1
    style_weight: float = 250.0
    l1_weight: float = 1.0
    architecture: Architecture = Architecture.LITE

    def __post_init__(self) -> None:
        parse_fields(
            self,
            prior=Prior,
            texture_loss=TEXTURE_LOSSES,
            architecture=Architecture,
            gan_loss=GanLoss.parse,
        )
        require_ints(
            self, ("base_channels", "residual_blocks", "discriminator_channels", "local_size")
        )
        if self.architecture is Architecture.EDGECONNECT:
            require_fixed(
                self, self.architecture, {"prior": Prior.NONE}, "EdgeConnect (hole set to white)"
            )
        if self.local_size < 32:
            raise ParameterError(f"local_size={self.local_size} must be >= 32 for D3's 5 convs")
        require_positive(self, ("canny_sigma", "lr"))
        require_weights(
            self,
            (
                "adv1_weight",
                "fm_weight",
                "adv_weight",
                "global_weight",
                "local_weight",
                "perceptual_weight",
                "style_weight",
                "l1_weight",
            ),
        )


# --- networks -------------------------------------------------------------------------------
class EdgeGanNetworks(nn.Module):
    """G1 (``edge_generator``) and G2 (``image_generator``): the inference networks.

    Both are :class:`~inpaint_core.nn.layers.blocks.EncoderDecoder`, whose layer indices are
    EdgeConnect's ``EdgeGenerator`` / ``InpaintGenerator`` ones. G1 has spectral norm (torch's
    parametrisation; the residual blocks' convs without bias, as EdgeConnect), G2 none. G1 maps
    3 channels to 1 (sigmoid); G2 maps 5 (``lite``: RGB, edges, mask) or 4 (``edgeconnect``:
    RGB, edges) channels to 3 (``(tanh + 1) / 2``, or a correction of the prior's fill).
    """

    def __init__(self, config: EdgeGanConfig) -> None:
        super().__init__()
        self.config = config
        self.edgeconnect = config.architecture is Architecture.EDGECONNECT
        residual = config.prior is not Prior.NONE
        width, blocks = config.base_channels, config.residual_blocks
        edges = EncoderDecoderConfig(3, 1, width, blocks, use_spectral_norm=True)
        image = EncoderDecoderConfig(
            4 if self.edgeconnect else 5,
            3,
            width,
            blocks,
            output=Output.NONE if residual else Output.TANH01,
        )
        self.edge_generator = EncoderDecoder(edges)
        self.image_generator = EncoderDecoder(image)
        if residual:  # start as the prior exactly: the correction's last conv is zero
            start_at_prior(self.image_generator.decoder[-1])

    def gray(self, images: Tensor) -> Tensor:
        """The grey image ``(B, 1, H, W)`` in ``images``' dtype: :func:`to_gray`, or for
        ``edgeconnect`` the float32 cast of the reference's float64 :func:`reference_gray`."""
        if self.edgeconnect:
            return reference_gray(images).to(images.dtype)
        return to_gray(images)

    def prepare(self, images: Tensor, masks: Tensor, sigma: float) -> tuple[Tensor, Tensor]:
        """The prior-filled image ``(B, 3, H, W)`` and the known edges ``(B, 1, H, W)``.

        For ``edgeconnect`` the edges are Canny's on the float64 grey of the known pixels
        (``mask=`` known), as EdgeConnect's test data loader makes them.
        """
        filled = prior_fill(images, masks, self.config.prior)
        gray = reference_gray(filled) if self.edgeconnect else to_gray(filled)
        known_edges = canny_edges(gray, sigma, 1.0 - masks).to(images.dtype)
        return filled, known_edges

    def predict_edges(self, filled: Tensor, known_edges: Tensor, masks: Tensor) -> Tensor:
        """G1: edge probabilities ``(B, 1, H, W)`` in [0, 1] for the whole image.

        ``filled`` has its hole at 1 (prior ``none``) or the prior's fill; ``edgeconnect`` also
        sets the grey hole to 1 and zeroes the edges there, as EdgeConnect's ``EdgeModel``.
        """
        gray = self.gray(filled)
        if self.edgeconnect:
            gray = gray * (1 - masks) + masks
            known_edges = known_edges * (1 - masks)
        return self.edge_generator(torch.cat([gray, known_edges, masks], dim=1))

    def complete(self, filled: Tensor, edges: Tensor, masks: Tensor) -> Tensor:
        """G2: the completed image ``(B, 3, H, W)`` in [0, 1] from ``edges`` ``(B, 1, H, W)``
        (composite edges for ``lite``, G1's raw output for ``edgeconnect``)."""
        if self.edgeconnect:
            return self.image_generator(torch.cat([filled, edges], dim=1))
        raw = self.image_generator(torch.cat([filled, edges, masks], dim=1))
        return apply_prior(filled, raw, self.config.prior)


def composite_edges(known_edges: Tensor, predicted: Tensor, masks: Tensor) -> Tensor:
    """Known edges outside the hole, predicted ones inside (all ``(B, 1, H, W)``)."""
    return known_edges * (1.0 - masks) + predicted * masks


class EdgeGanTraining(TrainableModel):
    """G1, G2, D1, D2, D3 and the SPEC's losses, for :func:`inpaint_core.training.train`."""

    method = "edge-gan"
    inference_networks = ("edge_generator", "image_generator")

    def __init__(self, config: EdgeGanConfig, texture: PerceptualStyleLoss | None = None) -> None:
        super().__init__()
        self.config = config
        self.adopt(EdgeGanNetworks(config))
        width = config.discriminator_channels
        self.edge_discriminator = PatchDiscriminator(PatchDiscriminatorConfig(2, width))
        self.global_discriminator = PatchDiscriminator(PatchDiscriminatorConfig(4, width))
        self.local_discriminator = PatchDiscriminator(PatchDiscriminatorConfig(4, width))
        self.texture = checked_texture(config.texture_loss, texture)

    def optimizer_specs(self) -> dict[str, OptimizerSpec]:
        lr = self.config.lr
        return {
            "edge_discriminator": OptimizerSpec(("edge_discriminator",), lr),
            "edge_generator": OptimizerSpec(("edge_generator",), lr),
            "image_discriminators": OptimizerSpec(
                ("global_discriminator", "local_discriminator"), lr
            ),
            "image_generator": OptimizerSpec(("image_generator",), lr),
        }

    def training_metadata(self) -> dict[str, Any]:
        return {"texture_loss": self.config.texture_loss.value, "prior": self.config.prior.value}

    def training_step(self, batch: dict[str, Tensor]) -> Iterator[Phase]:
        """Four phases: D1, G1, (D2 + D3), G2.

        Batch: image ``(B, 3, S, S)`` in [0, 1], mask ``(B, 1, S, S)`` with 1 = hole.
        """
        c = self.config
        images, masks = batch["image"], batch["mask"]
        networks = self.inference
        assert isinstance(networks, EdgeGanNetworks)
        gray = to_gray(images)
        edges_true = canny_edges(gray, c.canny_sigma)
        filled, known_edges = networks.prepare(images, masks, c.canny_sigma)

        # Stage 1: edges.
        predicted = networks.predict_edges(filled, known_edges, masks)
        real_edges = torch.cat([edges_true, gray], dim=1)
        real_logits, _ = self.edge_discriminator(real_edges)
        fake_logits, _ = self.edge_discriminator(torch.cat([predicted.detach(), gray], dim=1))
        d1, d1_metrics = discriminator_loss(c.gan_loss, real_logits, fake_logits)
        yield Phase("edge_discriminator", d1, {"d1_loss": d1_metrics["d_loss"]})

        fake_logits, fake_features = self.edge_discriminator(torch.cat([predicted, gray], dim=1))
        with torch.no_grad():
            _, real_features = self.edge_discriminator(real_edges)
        adv1, _ = generator_loss(c.gan_loss, fake_logits)
        fm, _ = feature_matching_loss(real_features, fake_features)
        g1 = c.adv1_weight * adv1 + c.fm_weight * fm
        metrics = {"g1_adv": float(adv1.detach()), "g1_fm": float(fm.detach())}
        yield Phase("edge_generator", g1, metrics)

        # Stage 2: image, from the composite edges (G1 detached).
        edges = composite_edges(known_edges, predicted.detach(), masks)
        output = networks.complete(filled, edges, masks)
        boxes = hole_crops(masks, c.local_size)
        real_global = torch.cat([images, edges], dim=1)
        fake_global = torch.cat([output, edges], dim=1)
        real_local, fake_local = crop_batch(real_global, boxes), crop_batch(fake_global, boxes)
        d2, d2_metrics = discriminator_loss(
            c.gan_loss,
            self.global_discriminator(real_global)[0],
            self.global_discriminator(fake_global.detach())[0],
        )
        d3, d3_metrics = discriminator_loss(
            c.gan_loss,
            self.local_discriminator(real_local)[0],
            self.local_discriminator(fake_local.detach())[0],
        )
        yield Phase(
            "image_discriminators",
            d2 + d3,
            {"d2_loss": d2_metrics["d_loss"], "d3_loss": d3_metrics["d_loss"]},
        )

        global_logits, global_features = self.global_discriminator(fake_global)
        adv2, _ = generator_loss(c.gan_loss, global_logits)
        adv3, _ = generator_loss(c.gan_loss, self.local_discriminator(fake_local)[0])
        merged = merge(output, images, masks)
        perceptual, style = self._texture(images, output, merged, real_global, global_features)
        hole_fraction = masks.mean().clamp_min(1e-6)
        l1 = (output - images).abs().mean() / hole_fraction
        g2 = (
            c.adv_weight * (c.global_weight * adv2 + c.local_weight * adv3)
            + c.perceptual_weight * perceptual
            + c.style_weight * style
            + c.l1_weight * l1
        )
        psnr = hole_psnr(output, images, masks)
        terms = {
            "g2_adv2": adv2,
            "g2_adv3": adv3,
            "g2_perceptual": perceptual,
            "g2_style": style,
            "g2_l1": l1,
            "hole_psnr": psnr,
        }
        yield Phase("image_generator", g2, {k: float(v.detach()) for k, v in terms.items()})

    def _texture(
        self,
        images: Tensor,
        output: Tensor,
        merged: Tensor,
        real_global: Tensor,
        fake_features: list[Tensor],
    ) -> tuple[Tensor, Tensor]:
        """Perceptual (on the output) and style (on the merged image) terms."""
        if self.texture is not None:
            perceptual, _, _ = self.texture(images, output)
            _, style, _ = self.texture(images, merged)
            return perceptual, style
        with torch.no_grad():
            _, real_features = self.global_discriminator(real_global)
        real = {str(i): f for i, f in enumerate(real_features[:_FALLBACK_PERCEPTUAL_LAYERS])}
        fake = {str(i): f for i, f in enumerate(fake_features[:_FALLBACK_PERCEPTUAL_LAYERS])}
        perceptual, _ = perceptual_loss(real, fake)
        keep = [str(i) for i in range(_FALLBACK_STYLE_LAYERS)]
        style, _ = style_loss({k: real[k] for k in keep}, {k: fake[k] for k in keep})
        return perceptual, style


# --- the registered method ------------------------------------------------------------------
class EdgeGan(LearnedMethod):
    """Edge-guided, dual-discriminator GAN (SPEC's flagship), with trained weights."""

    info = EDGE_GAN_INFO
    config_class = EdgeGanConfig
    networks_class = EdgeGanNetworks
    training_class = EdgeGanTraining
    weights_folder = SHIPPED_WEIGHTS
    batch_predict = True
    #: backend=auto compiles a window size from this many pixels of it on: 100 windows of
    #: 256², the larger break-even of the two architectures (shipped lite: 102 windows;
    #: EdgeConnect's: 45; benchmarks/compile_break_even.py, benchmarks/RESULTS.md).
    compile_after_pixels = 100 * 256 * 256
    smoke_test_options: ClassVar[Mapping[str, object]] = {
        "base_channels": 4,
        "residual_blocks": 1,
        "discriminator_channels": 4,
        "local_size": 32,
        "texture_loss": "discriminator-features",
    }
    smoke_test_loss = "g2_l1"

    @classmethod
    def build_training(
        cls, config: EdgeGanConfig, *, vgg_weights: str | None = None
    ) -> EdgeGanTraining:
        """The training module; ``texture_loss='vgg'`` loads VGG-19 from ``vgg_weights``."""
        cls.check_trainable(config)
        fallback = TextureLoss.DISCRIMINATOR_FEATURES
        texture = texture_loss_module(config.texture_loss, vgg_weights, fallback)
        return EdgeGanTraining(config, texture)

    def predict(
        self, networks: nn.Module, image: Tensor, mask: Tensor
    ) -> tuple[Tensor, dict[str, Tensor]]:
        """G1 then G2 on a padded batch; see :meth:`LearnedMethod.predict`."""
        assert isinstance(networks, EdgeGanNetworks)
        filled, known_edges = networks.prepare(image, mask, self.params["canny_sigma"])
        predicted = networks.predict_edges(filled, known_edges, mask)
        threshold = self.params["edge_threshold"]
        if threshold > 0:
            predicted = (predicted >= threshold).to(predicted.dtype)
        if networks.edgeconnect:  # EdgeConnect's test(): G1's raw edges, truncated output
            edges = predicted
            output = as_truncated(networks.complete(filled, edges, mask))
        else:
            edges = composite_edges(known_edges, predicted, mask)
            output = networks.complete(filled, edges, mask)
        return output, ({"edges": edges} if self.params["show_edges"] else {})
