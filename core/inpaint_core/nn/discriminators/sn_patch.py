"""SN-PatchGAN (Yu et al., "Free-Form Image Inpainting with Gated Convolution", ICCV 2019).

DeepFill v2's discriminator: six 5x5 stride-2 convolutions with spectral normalisation and
LeakyReLU(0.2) (widths ``b, 2b, 4b, 4b, 4b, 4b``, ``b = 64``), "same" zero padding. Its last
feature map, flattened, is the logits of the hinge loss: every element judges a patch, and
with free-form holes anywhere, every patch is judged. As in the official code the LeakyReLU
also follows the last conv, and no fully connected layer follows.

Input: the image (in [-1, 1] in DeepFill) and the mask (and, in the paper's guided version, a
sketch channel), concatenated: ``in_channels = 4`` by default.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor, nn

from inpaint_core.checks import require_ints
from inpaint_core.errors import InvalidInputError
from inpaint_core.nn.layers.blocks import spectral_norm

__all__ = ["SNPatchDiscriminator", "SNPatchDiscriminatorConfig"]

KERNEL_SIZE = 5
LEAKY_SLOPE = 0.2
#: Widths stop doubling at this multiple of ``base_channels``.
MAX_WIDTH_MULTIPLIER = 4


@dataclass(frozen=True)
class SNPatchDiscriminatorConfig:
    """Architecture of :class:`SNPatchDiscriminator`.

    Attributes:
        in_channels: channels of the judged input (4: RGB + mask).
        base_channels: width of the first conv (64 in DeepFill v2).
        layers: number of stride-2 convs (6); widths double from ``base_channels`` up to
            ``4 * base_channels``.
    """

    in_channels: int = 4
    base_channels: int = 64
    layers: int = 6

    def __post_init__(self) -> None:
        require_ints(self, ("in_channels", "base_channels", "layers"))

    def widths(self) -> list[int]:
        """Output channels of each conv, first to last."""
        cap = MAX_WIDTH_MULTIPLIER * self.base_channels
        return [min(self.base_channels * 2**i, cap) for i in range(self.layers)]


class SNPatchDiscriminator(nn.Module):
    """SN-PatchGAN; see the module docstring.

    ``forward``: ``(B, in_channels, H, W)`` float -> logits ``(B, N)`` with
    ``N = widths[-1] * ceil(H / 2**layers) * ceil(W / 2**layers)`` (a 256 x 256 input gives
    ``256 * 4 * 4``). Raw values (after the last LeakyReLU), for the hinge loss.
    """

    def __init__(self, config: SNPatchDiscriminatorConfig | None = None) -> None:
        super().__init__()
        self.config = config = config or SNPatchDiscriminatorConfig()
        layers: list[nn.Module] = []
        in_channels = config.in_channels
        for width in config.widths():
            conv = nn.Conv2d(in_channels, width, KERNEL_SIZE, stride=2,
                             padding=KERNEL_SIZE // 2)
            layers += [spectral_norm(conv), nn.LeakyReLU(LEAKY_SLOPE)]
            in_channels = width
        self.body = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        """Flattened patch logits ``(B, N)``; see the class docstring.

        Raises:
            InvalidInputError: ``x`` is not 4-D with ``in_channels`` channels.
        """
        if x.ndim != 4 or x.shape[1] != self.config.in_channels:
            raise InvalidInputError(
                f"input shape {tuple(x.shape)} is not (B, {self.config.in_channels}, H, W)"
            )
        return self.body(x).flatten(start_dim=1)
