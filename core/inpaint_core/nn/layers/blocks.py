"""Shared convolutional building blocks: normalisation, residual blocks, the G1/G2 generator.

The encoder-decoder here is the one architecture that the edge-guided GAN's edge generator
(G1) and image generator (G2) share (SPEC, "The edge-guided, dual-discriminator GAN"): an
encoder that downsamples twice, residual blocks of equal size with dilated convolutions, and a
decoder that upsamples twice with transposed convolutions (EdgeConnect's generator).

Tensors are ``(B, C, H, W)`` float32 (or any floating dtype torch accepts) throughout.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

import torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm as _torch_spectral_norm

from inpaint_core.errors import InvalidInputError

#: The encoder halves H and W twice, so inputs must be multiples of this.
SIZE_MULTIPLE = 4


def spectral_norm(module: nn.Module, enabled: bool = True) -> nn.Module:
    """Wrap ``module`` (a conv or linear layer) in spectral normalisation when ``enabled``.

    Uses ``torch.nn.utils.parametrizations.spectral_norm``, so the weight becomes a
    parametrisation (``torch.nn.utils.parametrize.is_parametrized(module, "weight")`` is true).
    Returns ``module`` unchanged when ``enabled`` is false.
    """
    return _torch_spectral_norm(module) if enabled else module


class Norm(str, Enum):
    """The normalisation layer placed after a convolution."""

    INSTANCE = "instance"
    BATCH = "batch"
    NONE = "none"


def parse_enum(enum_type: type[Enum], value: object, what: str) -> Enum:
    """Return the member of ``enum_type`` named by ``value``, or raise listing valid names."""
    if isinstance(value, enum_type):
        return value
    try:
        return enum_type(value)
    except ValueError as e:
        valid = ", ".join(str(member.value) for member in enum_type)
        raise InvalidInputError(f"unknown {what} {value!r}; valid: {valid}") from e


def make_norm(norm: Norm | str, channels: int) -> nn.Module:
    """Build the normalisation layer ``norm`` for ``channels`` feature maps.

    ``instance`` is ``InstanceNorm2d`` without affine parameters or running statistics (as
    EdgeConnect), ``batch`` is ``BatchNorm2d``, ``none`` is ``nn.Identity``. The layer maps
    ``(B, channels, H, W)`` to the same shape.

    Raises:
        InvalidInputError: ``norm`` names no :class:`Norm`, e.g.
            ``unknown norm 'layer'; valid: instance, batch, none``.
    """
    kind = parse_enum(Norm, norm, "norm")
    if kind is Norm.INSTANCE:
        return nn.InstanceNorm2d(channels, affine=False, track_running_stats=False)
    if kind is Norm.BATCH:
        return nn.BatchNorm2d(channels)
    return nn.Identity()


class ResidualBlock(nn.Module):
    """EdgeConnect's residual block: ``x + conv(ReLU(norm(dilated_conv(x))))``, then norm.

    Layers: reflection pad ``dilation`` -> 3x3 conv with ``dilation`` -> norm -> ReLU ->
    reflection pad 1 -> 3x3 conv -> norm. No activation after the sum. Maps
    ``(B, channels, H, W)`` to the same shape; H and W must exceed ``dilation`` (reflection
    padding needs it).
    """

    def __init__(
        self,
        channels: int,
        dilation: int = 1,
        use_spectral_norm: bool = False,
        norm: Norm | str = Norm.INSTANCE,
    ) -> None:
        super().__init__()
        _check_positive("channels", channels)
        _check_positive("dilation", dilation)
        # EdgeConnect drops these two conv biases under spectral norm; kept otherwise.
        dilated_conv = spectral_norm(
            nn.Conv2d(channels, channels, 3, dilation=dilation, bias=not use_spectral_norm),
            use_spectral_norm,
        )
        conv = spectral_norm(
            nn.Conv2d(channels, channels, 3, bias=not use_spectral_norm), use_spectral_norm
        )
        # The convs are reachable only through ``block``: a second attribute would register
        # them twice and store every weight twice in checkpoints.
        self.block = nn.Sequential(
            nn.ReflectionPad2d(dilation),
            dilated_conv,
            make_norm(norm, channels),
            nn.ReLU(inplace=True),
            nn.ReflectionPad2d(1),
            conv,
            make_norm(norm, channels),
        )

    @property
    def dilated_conv(self) -> nn.Module:
        """The first, dilated 3x3 convolution."""
        return self.block[1]

    @property
    def conv(self) -> nn.Module:
        """The second 3x3 convolution."""
        return self.block[5]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, C, H, W)`` -> ``(B, C, H, W)``: the input plus the block's residual."""
        return x + self.block(x)


class Output(str, Enum):
    """The activation applied to the generator's last convolution."""

    SIGMOID = "sigmoid"  # [0, 1]
    TANH01 = "tanh01"  # (tanh(x) + 1) / 2, in [0, 1] (EdgeConnect's image generator)
    NONE = "none"  # raw logits, any range


@dataclass(frozen=True)
class EncoderDecoderConfig:
    """Architecture of :class:`EncoderDecoder` (G1 and G2 of the edge-guided GAN).

    Attributes:
        in_channels: channels of the input, e.g. 3 for G1 (grayscale, edges, mask) or 4 for G2
            (RGB, edges).
        out_channels: channels of the output, e.g. 1 (edge map) or 3 (RGB).
        base_channels: width of the first conv; the bottleneck has ``4 * base_channels``.
            64 is EdgeConnect's size (~10.8 M parameters for 4 -> 3), 16 the "lite" width.
        residual_blocks: number of residual blocks in the bottleneck (8 in EdgeConnect).
        dilation: dilation of the first conv of every residual block (2 in EdgeConnect).
        use_spectral_norm: spectral normalisation on every conv (EdgeConnect's G1 uses it).
        norm: normalisation after each conv but the last.
        output: activation of the last conv.
    """

    in_channels: int
    out_channels: int
    base_channels: int = 64
    residual_blocks: int = 8
    dilation: int = 2
    use_spectral_norm: bool = False
    norm: Norm = Norm.INSTANCE
    output: Output = Output.SIGMOID

    def __post_init__(self) -> None:
        for name in ("in_channels", "out_channels", "base_channels", "dilation"):
            _check_positive(name, getattr(self, name))
        if not _is_int(self.residual_blocks) or self.residual_blocks < 0:
            raise InvalidInputError(
                f"residual_blocks must be an integer >= 0, got {self.residual_blocks!r}"
            )
        # Frozen dataclass: normalise strings to enum members through object.__setattr__.
        object.__setattr__(self, "norm", parse_enum(Norm, self.norm, "norm"))
        object.__setattr__(self, "output", parse_enum(Output, self.output, "output"))


class EncoderDecoder(nn.Module):
    """The generator shared by G1 and G2: encoder, dilated residual blocks, decoder.

    Layers (``b = base_channels``): reflection pad 3 + 7x7 conv to ``b`` + norm + ReLU; 4x4
    stride-2 convs to ``2b`` and ``4b``, each + norm + ReLU; ``residual_blocks``
    :class:`ResidualBlock` at ``4b`` with ``dilation``; 4x4 stride-2 transposed convs to ``2b``
    and ``b``, each + norm + ReLU; reflection pad 3 + 7x7 conv to ``out_channels``; the
    ``output`` activation.

    ``forward`` maps ``(B, in_channels, H, W)`` float to ``(B, out_channels, H, W)`` float,
    in [0, 1] for ``sigmoid`` and ``tanh01``. H and W must be multiples of 4.
    """

    def __init__(self, config: EncoderDecoderConfig) -> None:
        super().__init__()
        self.config = config
        b, sn, norm = config.base_channels, config.use_spectral_norm, config.norm
        self.encoder = nn.Sequential(
            nn.ReflectionPad2d(3),
            spectral_norm(nn.Conv2d(config.in_channels, b, 7), sn),
            make_norm(norm, b),
            nn.ReLU(inplace=True),
            spectral_norm(nn.Conv2d(b, 2 * b, 4, stride=2, padding=1), sn),
            make_norm(norm, 2 * b),
            nn.ReLU(inplace=True),
            spectral_norm(nn.Conv2d(2 * b, 4 * b, 4, stride=2, padding=1), sn),
            make_norm(norm, 4 * b),
            nn.ReLU(inplace=True),
        )
        self.middle = nn.Sequential(
            *(
                ResidualBlock(4 * b, config.dilation, use_spectral_norm=sn, norm=norm)
                for _ in range(config.residual_blocks)
            )
        )
        self.decoder = nn.Sequential(
            spectral_norm(nn.ConvTranspose2d(4 * b, 2 * b, 4, stride=2, padding=1), sn),
            make_norm(norm, 2 * b),
            nn.ReLU(inplace=True),
            spectral_norm(nn.ConvTranspose2d(2 * b, b, 4, stride=2, padding=1), sn),
            make_norm(norm, b),
            nn.ReLU(inplace=True),
            nn.ReflectionPad2d(3),
            # The output conv keeps its bias and skips spectral norm (EdgeConnect does too).
            nn.Conv2d(b, config.out_channels, 7),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, in_channels, H, W)`` -> ``(B, out_channels, H, W)``; H, W multiples of 4.

        Raises:
            InvalidInputError: ``x`` is not 4-D with ``in_channels`` channels, or H or W is
                not a multiple of 4.
        """
        self._check_input(x)
        y = self.decoder(self.middle(self.encoder(x)))
        if self.config.output is Output.SIGMOID:
            return torch.sigmoid(y)
        if self.config.output is Output.TANH01:
            return (torch.tanh(y) + 1) / 2
        return y

    def _check_input(self, x: torch.Tensor) -> None:
        shape = tuple(x.shape)
        if x.ndim != 4 or shape[1] != self.config.in_channels:
            raise InvalidInputError(
                f"input shape {shape} is not (B, {self.config.in_channels}, H, W)"
            )
        if shape[2] % SIZE_MULTIPLE or shape[3] % SIZE_MULTIPLE:
            raise InvalidInputError(
                f"input shape {shape}: H and W must be multiples of {SIZE_MULTIPLE}; "
                f"pad to a multiple of {SIZE_MULTIPLE}"
            )


def count_parameters(module: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameter elements in ``module`` (only those requiring grad if asked)."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable_only)


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_positive(name: str, value: object) -> None:
    if not _is_int(value) or value < 1:  # type: ignore[operator]
        raise InvalidInputError(f"{name} must be a positive integer, got {value!r}")
