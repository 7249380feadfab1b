"""The five-conv-layer patch discriminator (EdgeConnect's, and pix2pix's 70 x 70 PatchGAN).

One class serves every discriminator of the edge-guided, dual-discriminator GAN (SPEC, "The
edge-guided, dual-discriminator GAN"): ``D1`` on edge maps (conditioned on the grayscale
image), ``D2`` the *global* discriminator on the whole image, and ``D3`` the *local*
discriminator on a 128 x 128 crop centred on the filled region. It is EdgeConnect's
discriminator: strided 4x4 convolutions with LeakyReLU(0.2), spectral normalisation, no fully
connected layer, so it judges overlapping patches and accepts any input size large enough for
its convolutions.

With ``use_spectral_norm=False, norm="batch"`` the same five layers are pix2pix's 70 x 70
PatchGAN (Isola et al. 2017, ``C64-C128-C256-C512`` then a 1-channel conv; BatchNorm after
every conv but the first and the last): each output logit sees a 70 x 70 input patch.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from inpaint_core.errors import InvalidInputError
from inpaint_core.nn.layers.blocks import Norm, make_norm, parse_enum, spectral_norm

#: Channels stop doubling at this multiple of ``base_channels``.
MAX_WIDTH_MULTIPLIER = 8
#: Slope of the LeakyReLU after every conv but the last (DCGAN, EdgeConnect).
LEAKY_SLOPE = 0.2
KERNEL_SIZE = 4


@dataclass(frozen=True)
class PatchDiscriminatorConfig:
    """Architecture of :class:`PatchDiscriminator`.

    Attributes:
        in_channels: channels of the judged input, e.g. 2 for D1 (edges + grayscale) or 4
            for D2/D3 (RGB + edges).
        base_channels: width of the first conv (64 in EdgeConnect).
        layers: number of convs, >= 3: ``layers - 2`` stride-2 convs whose width doubles from
            ``base_channels`` up to ``8 * base_channels``, one stride-1 conv at that capped
            width, one stride-1 conv to a single channel. 5 is the SPEC's discriminator.
        use_spectral_norm: spectral normalisation on every conv (true in EdgeConnect).
        use_sigmoid: apply a sigmoid to the output; leave false for the hinge loss and other
            losses that take logits.
        norm: a :class:`~inpaint_core.nn.layers.blocks.Norm` (or its name) after every conv but
            the first and the last. ``none`` (the default, EdgeConnect's) adds no layer, so
            existing state dicts keep their keys; ``batch`` with ``use_spectral_norm=False`` is
            pix2pix's PatchGAN. A conv followed by a norm has no bias (the norm's shift
            replaces it, as in pix2pix).
    """

    in_channels: int
    base_channels: int = 64
    layers: int = 5
    use_spectral_norm: bool = True
    use_sigmoid: bool = False
    norm: Norm = Norm.NONE

    def __post_init__(self) -> None:
        object.__setattr__(self, "norm", parse_enum(Norm, self.norm, "norm"))
        for name in ("in_channels", "base_channels"):
            value = getattr(self, name)
            if not _is_int(value) or value < 1:
                raise InvalidInputError(f"{name} must be a positive integer, got {value!r}")
        if not _is_int(self.layers) or self.layers < 3:
            raise InvalidInputError(f"layers must be an integer >= 3, got {self.layers!r}")

    def widths(self) -> list[int]:
        """Output channels of each conv, first to last; the last is always 1."""
        cap = MAX_WIDTH_MULTIPLIER * self.base_channels
        strided = [min(self.base_channels * 2**i, cap) for i in range(self.layers - 2)]
        return [*strided, min(self.base_channels * 2 ** (self.layers - 2), cap), 1]


class PatchDiscriminator(nn.Module):
    """Patch discriminator: strided 4x4 convs (+ norm) + LeakyReLU(0.2), then a 1-channel conv.

    The SPEC's five-layer version (``layers=5``, ``b = base_channels``): 4x4 conv stride 2 to
    ``b``; stride 2 to ``2b``; stride 2 to ``4b``; stride 1 to ``8b``; stride 1 to 1 channel;
    every conv padded by 1 and spectrally normalised when enabled; LeakyReLU(0.2) after all
    but the last. A 256 x 256 input gives 30 x 30 logits (256 -> 128 -> 64 -> 32 -> 31 -> 30),
    each with a 70 x 70 receptive field. With ``norm`` other than ``none``, a norm layer sits
    between conv and LeakyReLU in every stage but the first and the last (pix2pix).

    Used both as the **global** discriminator (the whole image) and the **local** one (a
    128 x 128 crop around the hole) of the dual-discriminator GAN, and as the edge
    discriminator D1; each is its own instance.
    """

    def __init__(self, config: PatchDiscriminatorConfig) -> None:
        super().__init__()
        self.config = config
        widths = config.widths()
        strides = [2] * (config.layers - 2) + [1, 1]
        sn = config.use_spectral_norm
        stages: list[nn.Module] = []
        in_channels = config.in_channels
        for index, (width, stride) in enumerate(zip(widths, strides, strict=True)):
            is_last = index == len(widths) - 1
            normed = config.norm is not Norm.NONE and index > 0 and not is_last
            # Biases are dropped under spectral norm, as in EdgeConnect's discriminator, and
            # before a norm layer, whose shift makes them redundant (pix2pix).
            bias = not sn and not normed
            conv = nn.Conv2d(in_channels, width, KERNEL_SIZE, stride=stride, padding=1, bias=bias)
            layer: list[nn.Module] = [spectral_norm(conv, sn)]
            if normed:  # no layer at all for ``none``: state-dict keys stay as they were
                layer.append(make_norm(config.norm, width))
            if not is_last:
                layer.append(nn.LeakyReLU(LEAKY_SLOPE, inplace=True))
            stages.append(nn.Sequential(*layer))
            in_channels = width
        self.stages = nn.ModuleList(stages)

    @property
    def convs(self) -> list[nn.Conv2d]:
        """The convolutions, first to last (for inspection and tests)."""
        return [stage[0] for stage in self.stages]  # type: ignore[index]

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Judge ``x`` patch by patch.

        Args:
            x: ``(B, in_channels, H, W)`` float, typically in [0, 1]; H and W >= 2**layers
                or so, so that every conv has an input at least 2 x 2 after padding.

        Returns:
            ``(logits, features)``: logits ``(B, 1, h, w)`` (sigmoid applied only when
            ``use_sigmoid``; raw otherwise), and the output of every stage, ``layers`` tensors
            first to last (the last is the pre-sigmoid logits), for the feature-matching loss.

        Raises:
            InvalidInputError: ``x`` is not 4-D with ``in_channels`` channels.
        """
        shape = tuple(x.shape)
        if x.ndim != 4 or shape[1] != self.config.in_channels:
            raise InvalidInputError(
                f"input shape {shape} is not (B, {self.config.in_channels}, H, W)"
            )
        features: list[torch.Tensor] = []
        for stage in self.stages:
            x = stage(x)
            features.append(x)
        logits = torch.sigmoid(x) if self.config.use_sigmoid else x
        return logits, features


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
