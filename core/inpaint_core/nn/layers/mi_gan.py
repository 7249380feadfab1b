"""MI-GAN's inference generator: depthwise-separable encoder and synthesis network.

Sargsyan, Navasardyan, Xu, Shi, "MI-GAN: A Simple Baseline for Image Inpainting on Mobile
Devices", ICCV 2023 (github.com/Picsart-AI-Research/MI-GAN, MIT). This is the network the
authors publish for inference (``lib/model_zoo/migan_inference.py``): the trained model after
its re-parameterised convolutions were folded into single kernels and its weight demodulation
baked in, so every layer is a plain convolution. Its parameter and buffer names are the
published ``state_dict``'s, so published files load without renaming.

Layers, at model side ``R`` (a power of two) with ``ch(r) = min(ch_base // r, ch_max)``:

- **activation** everywhere: ``clamp(sqrt(2) * leaky_relu(x, 0.2), -256, 256)``;
- **separable conv**: a depthwise 3x3 conv (bias) -> activation -> [downsample] -> a 1x1 conv
  (no bias) -> [upsample] -> [+ fixed noise] -> activation;
- **downsample**: a depthwise 4x4 stride-2 conv (padding 1) with the binomial filter
  ``[1, 3, 3, 1]`` (outer product, sum 1); **upsample**: nearest x2, times a fixed 0/1 grid
  that keeps the top-left pixel of each 2x2 cell (zero insertion), pad 2 before and 1 after,
  a depthwise 4x4 conv with the same filter times 4. The filters and grids are stored tensors;
- **encoder**: blocks at ``R, R/2, ..., 8`` (the first adds ``act(1x1 conv)`` of the 4-channel
  input), each two separable convs, the second downsampling; a last block at 4 without. The
  output of each block's first conv is kept as the skip feature of its resolution;
- **synthesis**: at 4, conv -> + skip -> conv -> 1x1 to RGB; at 8 ... R, an upsampling conv
  -> + skip -> conv, both adding a stored noise map (``R x R``, times a learned strength),
  and the RGB image upsampled and added to the block's own 1x1 RGB output (StyleGAN2 skips).

The input is ``cat(0.5 - m, x * (1 - m))`` with ``x`` in [-1, 1] and ``m`` 1 in the hole; the
output is RGB in about [-1, 1] (no output activation). The fixed ``R x R`` noise and grids tie
the network to inputs of exactly ``R x R``.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from inpaint_core.errors import ParameterError

__all__ = ["RESOLUTIONS", "MiGanConfig", "MiGanGenerator", "resolutions"]

#: Model sides MI-GAN's configs define (``configs/model/migan.yaml``); 256 and 512 are published.
RESOLUTIONS = (128, 256, 512)
#: The input channels (mask term and masked RGB) and output channels.
INPUT_CHANNELS, RGB_CHANNELS = 4, 3
_SLOPE, _GAIN, _CLAMP = 0.2, math.sqrt(2.0), 256.0


@dataclass(frozen=True)
class MiGanConfig:
    """Architecture of MI-GAN's inference generator (defaults: the published 512 model).

    Attributes:
        resolution: the model side ``R``: the network runs on ``R x R`` inputs only.
        ch_base: channels at resolution ``r`` are ``min(ch_base // r, ch_max)`` (32768).
        ch_max: the channel cap (512).
    """

    resolution: int = 512
    ch_base: int = 32768
    ch_max: int = 512

    def __post_init__(self) -> None:
        if self.resolution not in RESOLUTIONS:
            raise ParameterError(
                f"MI-GAN config resolution={self.resolution!r} must be one of "
                f"{', '.join(map(str, RESOLUTIONS))}"
            )
        for name in ("ch_base", "ch_max"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ParameterError(f"MI-GAN config {name}={value!r} must be an integer >= 1")
        if self.ch_base < self.resolution:
            raise ParameterError(
                f"MI-GAN config ch_base={self.ch_base} gives no channels at resolution "
                f"{self.resolution}; it must be >= resolution"
            )

    def channels(self, side: int) -> int:
        """Feature channels at resolution ``side``."""
        return min(self.ch_base // side, self.ch_max)


def resolutions(resolution: int) -> list[int]:
    """``[resolution, resolution / 2, ..., 4]``: the encoder's block sides, largest first."""
    return [2**i for i in range(int(math.log2(resolution)), 1, -1)]


def _activation(x: Tensor) -> Tensor:
    """MI-GAN's ``lrelu_agc``: leaky ReLU 0.2, gain sqrt(2), clamped to [-256, 256]."""
    return (F.leaky_relu(x, _SLOPE) * _GAIN).clamp(-_CLAMP, _CLAMP)


def _binomial_filter(channels: int, gain: float) -> Tensor:
    """float32 ``(channels, 1, 4, 4)``: the outer product of ``[1, 3, 3, 1]``, summing to
    ``gain``, for a depthwise conv."""
    taps = torch.tensor([1.0, 3.0, 3.0, 1.0])
    kernel = torch.outer(taps, taps)
    return (kernel * gain / kernel.sum()).expand(channels, 1, 4, 4).clone()


class Downsample(nn.Module):
    """Binomial low-pass and stride 2: ``(B, C, H, W)`` -> ``(B, C, H/2, W/2)``, H, W even."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.filter = nn.Conv2d(channels, channels, 4, stride=2, padding=1, groups=channels,
                                bias=False)
        with torch.no_grad():
            self.filter.weight.copy_(_binomial_filter(channels, 1.0))

    def forward(self, x: Tensor) -> Tensor:
        """``x`` ``(B, C, H, W)`` -> ``(B, C, H/2, W/2)``."""
        return self.filter(x)


class Upsample(nn.Module):
    """Zero insertion and a binomial filter: ``(B, C, r/2, r/2)`` -> ``(B, C, r, r)``."""

    def __init__(self, channels: int, side: int) -> None:
        super().__init__()
        cell = torch.tensor([[1.0, 0.0], [0.0, 0.0]])
        self.register_buffer("filter_const", cell.repeat(1, 1, side // 2, side // 2))
        self.filter = nn.Conv2d(channels, channels, 4, groups=channels, bias=False)
        with torch.no_grad():
            self.filter.weight.copy_(_binomial_filter(channels, 4.0))

    def forward(self, x: Tensor) -> Tensor:
        """``x`` ``(B, C, r/2, r/2)`` -> ``(B, C, r, r)``; ``r`` is the side built for."""
        spread = F.interpolate(x, scale_factor=2.0, mode="nearest") * self.filter_const
        return self.filter(F.pad(spread, (2, 1, 2, 1)))


class SeparableConv(nn.Module):
    """Depthwise 3x3 (bias) -> act -> [down] -> pointwise 1x1 -> [up] -> [+ noise] -> act."""

    def __init__(self, in_channels: int, out_channels: int, *, side: int = 0, down: bool = False,
                 up: bool = False, noise: bool = False) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, in_channels, 3, padding=1, groups=in_channels)
        self.conv2 = nn.Conv2d(in_channels, out_channels, 1, bias=False)
        self.downsample = Downsample(in_channels) if down else None
        self.upsample = Upsample(out_channels, side) if up else None
        self.use_noise = noise
        if noise:
            self.register_buffer("noise_const", torch.zeros(side, side))
            self.noise_strength = nn.Parameter(torch.zeros([]))

    def forward(self, x: Tensor) -> Tensor:
        """``(B, in, H, W)`` -> ``(B, out, H', W')``; H' = H/2 down, 2H up."""
        x = _activation(self.conv1(x))
        if self.downsample is not None:
            x = self.downsample(x)
        x = self.conv2(x)
        if self.upsample is not None:
            x = self.upsample(x)
        if self.use_noise:
            x = x + self.noise_const * self.noise_strength
        return _activation(x)


class EncoderBlock(nn.Module):
    """[act(1x1 conv of the input) +] conv -> (skip feature) -> conv (downsampling)."""

    def __init__(self, in_channels: int, out_channels: int, *, from_input: bool,
                 down: bool) -> None:
        super().__init__()
        self.fromrgb = nn.Conv2d(INPUT_CHANNELS, in_channels, 1) if from_input else None
        self.conv1 = SeparableConv(in_channels, in_channels)
        self.conv2 = SeparableConv(in_channels, out_channels, down=down)

    def forward(self, x: Tensor | None, image: Tensor) -> tuple[Tensor, Tensor]:
        """Returns ``(output, skip feature)``."""
        if self.fromrgb is not None:
            y = _activation(self.fromrgb(image))
            x = y if x is None else x + y
        if x is None:
            raise ValueError("an encoder block without an input conv needs features")
        feature = self.conv1(x)
        return self.conv2(feature), feature


class Encoder(nn.Module):
    """Blocks ``b{R}`` ... ``b8`` (downsampling) and ``b4``; see the module docstring."""

    def __init__(self, config: MiGanConfig) -> None:
        super().__init__()
        sides = resolutions(config.resolution)
        self.sides = sides
        for index, (side, lower) in enumerate(itertools.pairwise(sides)):
            block = EncoderBlock(config.channels(side), config.channels(lower),
                                 from_input=index == 0, down=True)
            setattr(self, f"b{side}", block)
        self.b4 = EncoderBlock(config.channels(4), config.channels(4), from_input=False,
                               down=False)

    def forward(self, image: Tensor) -> tuple[Tensor, dict[int, Tensor]]:
        """``image`` ``(B, 4, R, R)`` -> ``(B, ch(4), 4, 4)`` and the skip features by side."""
        x: Tensor | None = None
        features: dict[int, Tensor] = {}
        for side in self.sides:
            x, features[side] = getattr(self, f"b{side}")(x, image)
        assert x is not None
        return x, features


class SynthesisFirst(nn.Module):
    """At 4 x 4: conv -> + skip -> conv -> 1x1 to RGB."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = SeparableConv(channels, channels)
        self.conv2 = SeparableConv(channels, channels)
        self.torgb = nn.Conv2d(channels, RGB_CHANNELS, 1)

    def forward(self, x: Tensor, skip: Tensor) -> tuple[Tensor, Tensor]:
        """Returns ``(features, rgb)``."""
        x = self.conv2(self.conv1(x) + skip)
        return x, self.torgb(x)


class SynthesisBlock(nn.Module):
    """At side ``r``: upsampling conv -> + skip -> conv (both with noise); RGB skip sum."""

    def __init__(self, in_channels: int, out_channels: int, side: int) -> None:
        super().__init__()
        self.conv1 = SeparableConv(in_channels, out_channels, side=side, up=True, noise=True)
        self.conv2 = SeparableConv(out_channels, out_channels, side=side, noise=True)
        self.torgb = nn.Conv2d(out_channels, RGB_CHANNELS, 1)
        self.upsample = Upsample(RGB_CHANNELS, side)

    def forward(self, x: Tensor, skip: Tensor, rgb: Tensor) -> tuple[Tensor, Tensor]:
        """Returns ``(features, rgb)`` at side ``r``."""
        x = self.conv2(self.conv1(x) + skip)
        return x, self.upsample(rgb) + self.torgb(x)


class Synthesis(nn.Module):
    """Blocks ``b4`` ... ``b{R}``; see the module docstring."""

    def __init__(self, config: MiGanConfig) -> None:
        super().__init__()
        sides = resolutions(config.resolution)[::-1]
        self.sides = sides
        self.b4 = SynthesisFirst(config.channels(4))
        for lower, side in itertools.pairwise(sides):
            block = SynthesisBlock(config.channels(lower), config.channels(side), side)
            setattr(self, f"b{side}", block)

    def forward(self, x: Tensor, features: dict[int, Tensor]) -> Tensor:
        """Bottleneck ``(B, ch(4), 4, 4)`` and skips -> RGB ``(B, 3, R, R)``."""
        x, rgb = self.b4(x, features[4])
        for side in self.sides[1:]:
            x, rgb = getattr(self, f"b{side}")(x, features[side], rgb)
        return rgb


class MiGanGenerator(nn.Module):
    """MI-GAN's inference generator (children ``synthesis`` and ``encoder``, as published)."""

    def __init__(self, config: MiGanConfig) -> None:
        super().__init__()
        self.config = config
        self.synthesis = Synthesis(config)
        self.encoder = Encoder(config)

    def forward(self, x: Tensor) -> Tensor:
        """Complete one batch at the model side.

        Args:
            x: float ``(B, 4, R, R)``: ``0.5 - m`` and ``image * (1 - m)``, the image in
                [-1, 1], ``m`` 1 in the hole.

        Returns:
            float ``(B, 3, R, R)``, RGB in about [-1, 1] (not clamped).

        Raises:
            ParameterError: ``x`` is not ``(B, 4, R, R)``.
        """
        side = self.config.resolution
        if x.ndim != 4 or tuple(x.shape[1:]) != (INPUT_CHANNELS, side, side):
            raise ParameterError(
                f"MI-GAN input shape {tuple(x.shape)} is not (B, {INPUT_CHANNELS}, {side}, "
                f"{side}): the network runs at its model side only"
            )
        bottleneck, features = self.encoder(x)
        return self.synthesis(bottleneck, features)
