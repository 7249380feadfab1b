"""Fast Fourier Convolution (Chi, Jiang, Mu, NeurIPS 2020) and LaMa's FFC ResNet generator.

LaMa (Suvorov et al., "Resolution-robust Large Mask Inpainting with Fourier Convolutions",
WACV 2022) fills holes with a ResNet whose residual blocks are FFCs: each feature map is split
into a *local* part (ordinary 3x3 convolutions) and a *global* part (a 1x1 convolution in the
Fourier domain of the whole map, :class:`FourierUnit`), with cross terms between them.

This module is written from the paper and the behaviour of advimman/lama's
``saicinpainting/training/modules/ffc.py``; module and parameter *names* follow that layout
(``model.N.ffc.convl2l.weight``, ``...convg2g.fu.conv_layer.weight`` ...) so a published state
dict loads after stripping its ``generator.`` prefix.

Tensors are ``(B, C, H, W)`` float. A feature pair is ``(local, global)``, where ``global`` is
None when a layer has no global channels (``ratio_gout == 0``).

The FFTs always run in float32 with autocast disabled (cuFFT has no bf16 transform and fp16
only for power-of-two sizes), and the result is cast back to the input's dtype.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from inpaint_core.errors import InvalidInputError, ParameterError

__all__ = [
    "FFC",
    "FfcBnAct",
    "FfcResNetGenerator",
    "FfcResnetBlock",
    "FourierUnit",
    "LamaConfig",
    "SpectralTransform",
]

#: A feature pair: local channels, and global channels or None.
Features = tuple[Tensor, Tensor | None]
#: The output activations the generator knows (LaMa's ``add_out_act``).
OUTPUT_ACTIVATIONS = ("sigmoid", "tanh", "none")
#: Device types whose autocast can be switched off around the FFT.
_AUTOCAST_DEVICES = ("cuda", "cpu", "mps", "xpu")


def _no_autocast(device_type: str) -> contextlib.AbstractContextManager[object]:
    """A context with autocast disabled on ``device_type`` (a no-op where it has none)."""
    if device_type in _AUTOCAST_DEVICES:
        return torch.autocast(device_type=device_type, enabled=False)
    return contextlib.nullcontext()


def _split(channels: int, ratio: float) -> tuple[int, int]:
    """``(local, global)`` channel counts of ``channels`` with global share ``ratio``."""
    global_channels = int(channels * ratio)
    return channels - global_channels, global_channels


@dataclass(frozen=True)
class LamaConfig:
    """Architecture of LaMa's FFC ResNet generator (defaults: the published big-lama).

    The three ``*_ratio_gin`` / ``*_ratio_gout`` / ``*_enable_lfu`` groups are the published
    config's ``init_conv_kwargs``, ``downsample_conv_kwargs`` and ``resnet_conv_kwargs``. As in
    the reference, the last downsampling layer's ``ratio_gout`` is ``resnet_ratio_gin`` whatever
    ``downsample_ratio_gout`` says.

    Attributes:
        input_nc: input channels: the masked RGB image and the mask (4).
        output_nc: output channels (3, RGB).
        ngf: width of the first conv; downsampling doubles it up to ``max_features``.
        n_downsampling: stride-2 convs before the residual blocks (0 to 3: inputs are padded
            to a multiple of 8).
        n_blocks: FFC residual blocks (18 in big-lama, 9 in lama-fourier).
        max_features: cap on any layer's channels.
        add_out_act: output activation: ``sigmoid`` (big-lama), ``tanh`` or ``none``.
        init_ratio_gin, init_ratio_gout: global shares of the 7x7 input conv.
        downsample_ratio_gin, downsample_ratio_gout: global shares of the downsampling convs.
        resnet_ratio_gin, resnet_ratio_gout: global shares of the residual blocks' convs.
        init_enable_lfu, downsample_enable_lfu, resnet_enable_lfu: the local Fourier unit
            (a second Fourier unit on the four quadrants of a quarter of the channels).
    """

    input_nc: int = 4
    output_nc: int = 3
    ngf: int = 64
    n_downsampling: int = 3
    n_blocks: int = 18
    max_features: int = 1024
    add_out_act: str = "sigmoid"
    init_ratio_gin: float = 0.0
    init_ratio_gout: float = 0.0
    init_enable_lfu: bool = False
    downsample_ratio_gin: float = 0.0
    downsample_ratio_gout: float = 0.0
    downsample_enable_lfu: bool = False
    resnet_ratio_gin: float = 0.75
    resnet_ratio_gout: float = 0.75
    resnet_enable_lfu: bool = False

    def __post_init__(self) -> None:
        for name in ("input_nc", "output_nc", "ngf", "max_features"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ParameterError(f"LaMa config {name}={value!r} must be an integer >= 1")
        for name, low, high in (("n_downsampling", 0, 3), ("n_blocks", 0, 1000)):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
                why = " (inputs are padded to a multiple of 8)" if name == "n_downsampling" else ""
                raise ParameterError(
                    f"LaMa config {name}={value!r} must be an integer in [{low}, {high}]{why}"
                )
        if self.add_out_act not in OUTPUT_ACTIVATIONS:
            raise ParameterError(
                f"LaMa config add_out_act={self.add_out_act!r} must be one of "
                f"{', '.join(OUTPUT_ACTIVATIONS)}"
            )
        for group in ("init", "downsample", "resnet"):
            for side in ("gin", "gout"):
                name = f"{group}_ratio_{side}"
                value = getattr(self, name)
                if isinstance(value, bool) or not isinstance(value, int | float):
                    raise ParameterError(f"LaMa config {name}={value!r} must be a number")
                if not 0.0 <= value < 1.0:
                    raise ParameterError(
                        f"LaMa config {name}={value!r} must lie in [0, 1) (a layer with only "
                        "global channels is not supported)"
                    )
                object.__setattr__(self, name, float(value))
            lfu = getattr(self, f"{group}_enable_lfu")
            if not isinstance(lfu, bool):
                raise ParameterError(f"LaMa config {group}_enable_lfu={lfu!r} must be a bool")
        self._check_channels()

    def layer_specs(self) -> list[tuple[str, int, int, float, float, bool]]:
        """Every FFC layer as ``(name, in_channels, out_channels, ratio_gin, ratio_gout, lfu)``
        in forward order: ``init``, ``down0``..., then ``block0.conv1``, ``block0.conv2``..."""
        ngf, cap = self.ngf, self.max_features
        specs = [("init", self.input_nc, ngf, self.init_ratio_gin, self.init_ratio_gout,
                  self.init_enable_lfu)]
        for i in range(self.n_downsampling):
            last = i == self.n_downsampling - 1
            gout = self.resnet_ratio_gin if last else self.downsample_ratio_gout
            specs.append((f"down{i}", min(cap, ngf * 2**i), min(cap, ngf * 2 ** (i + 1)),
                          self.downsample_ratio_gin, gout, self.downsample_enable_lfu))
        width = self.bottleneck_channels
        for i in range(self.n_blocks):
            for conv in ("conv1", "conv2"):
                specs.append((f"block{i}.{conv}", width, width, self.resnet_ratio_gin,
                              self.resnet_ratio_gout, self.resnet_enable_lfu))
        return specs

    @property
    def bottleneck_channels(self) -> int:
        """Channels of the residual blocks: ``min(max_features, ngf * 2**n_downsampling)``."""
        return min(self.max_features, self.ngf * 2**self.n_downsampling)

    def _check_channels(self) -> None:
        """Refuse splits the reference cannot run: empty or whole global parts, global parts
        one layer makes and the next does not take, and LFU widths not divisible by 4."""
        specs = self.layer_specs()
        for name, cin, cout, gin, gout, lfu in specs:
            for channels, ratio, side in ((cin, gin, "gin"), (cout, gout, "gout")):
                local, glob = _split(channels, ratio)
                if ratio > 0 and (glob == 0 or local == 0):
                    raise ParameterError(
                        f"LaMa config: layer {name} splits {channels} channels with ratio_{side}="
                        f"{ratio} into {local} local + {glob} global; both must be > 0"
                    )
            if lfu and _split(cin, gin)[1] and _split(cout, gout)[1] % 8:
                raise ParameterError(
                    f"LaMa config: layer {name} enables the LFU with {_split(cout, gout)[1]} "
                    "global output channels; it needs a multiple of 8"
                )
        made = 0  # the input image and mask are all local channels
        for name, cin, cout, gin, gout, _ in specs:
            taken = _split(cin, gin)[1]
            if taken != made:
                raise ParameterError(
                    f"LaMa config: layer {name} takes {taken} global channels (ratio_gin={gin}) "
                    f"but receives {made}; set its ratio_gin to the previous layer's ratio_gout"
                )
            made = _split(cout, gout)[1]


class FourierUnit(nn.Module):
    """A 1x1 convolution + BatchNorm + ReLU on the real 2-D FFT of the input.

    ``rfft2`` (orthonormal) of ``(B, C, H, W)`` gives ``(B, C, H, W // 2 + 1)`` complex, laid
    out as ``(B, 2C, H, W // 2 + 1)`` real with each channel's real part before its imaginary
    part; the conv maps it to ``2 * out_channels`` and ``irfft2`` returns ``(B, out, H, W)``.
    Runs in float32 with autocast off; returns the input's dtype.

    Children: ``conv_layer`` (1x1, no bias), ``bn`` (BatchNorm of ``2 * out_channels``).
    """

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv_layer = nn.Conv2d(in_channels * 2, out_channels * 2, 1, bias=False)
        self.bn = nn.BatchNorm2d(out_channels * 2)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: Tensor) -> Tensor:
        """``(B, C_in, H, W)`` any float dtype -> ``(B, C_out, H, W)`` of the same dtype."""
        dtype = x.dtype
        with _no_autocast(x.device.type):
            x = x.float()
            batch, _, height, width = x.shape
            spectrum = torch.fft.rfft2(x, norm="ortho")
            parts = torch.stack((spectrum.real, spectrum.imag), dim=2)  # (B, C, 2, H, Wf)
            parts = parts.reshape(batch, -1, height, spectrum.shape[-1])
            parts = self.relu(self.bn(self.conv_layer(parts)))
            parts = parts.reshape(batch, -1, 2, height, parts.shape[-1])
            spectrum = torch.complex(parts[:, :, 0], parts[:, :, 1])
            out = torch.fft.irfft2(spectrum, s=(height, width), norm="ortho")
        return out.to(dtype)


class SpectralTransform(nn.Module):
    """The global-to-global path of an FFC: 1x1 conv to half width, Fourier unit(s), 1x1 conv.

    ``stride=2`` average-pools 2x2 first. With ``enable_lfu``, a second Fourier unit sees the
    first quarter of the channels cut into four quadrants stacked as channels, and its output
    is tiled 2x2 back to full size (the reference cuts the width at ``H // 2``, which equals
    ``W // 2`` on the square maps it supports; here both sides are halved, so H and W must be
    even).

    Children: ``conv1`` (Sequential: conv, BatchNorm, ReLU), ``fu``, ``lfu`` (with LFU),
    ``conv2``.
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1,
                 enable_lfu: bool = False) -> None:
        super().__init__()
        half = out_channels // 2
        self.downsample: nn.Module = nn.AvgPool2d(2, 2) if stride == 2 else nn.Identity()
        self.conv1 = nn.Sequential(
            nn.Conv2d(in_channels, half, 1, bias=False), nn.BatchNorm2d(half), nn.ReLU(True)
        )
        self.fu = FourierUnit(half, half)
        self.enable_lfu = enable_lfu
        if enable_lfu:
            self.lfu = FourierUnit(half, half)
        self.conv2 = nn.Conv2d(half, out_channels, 1, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        """``(B, C_in, H, W)`` -> ``(B, C_out, H / stride, W / stride)``."""
        x = self.conv1(self.downsample(x))
        total = x + self.fu(x)
        if self.enable_lfu:
            height, width = x.shape[-2:]
            if height % 2 or width % 2:
                raise InvalidInputError(
                    f"the LaMa LFU needs even feature maps, got {height} x {width}; pad the "
                    "image to a multiple of 2 ** (n_downsampling + 1)"
                )
            quarter = x[:, : x.shape[1] // 4]
            rows = torch.cat(torch.split(quarter, height // 2, dim=-2), dim=1)
            tiles = torch.cat(torch.split(rows, width // 2, dim=-1), dim=1)
            total = total + self.lfu(tiles).repeat(1, 1, 2, 2)
        return self.conv2(total)


class FFC(nn.Module):
    """A Fast Fourier Convolution: local and global channel groups with four paths.

    ``local_out = convl2l(local) + convg2l(global)``, ``global_out = convl2g(local) +
    convg2g(global)``; the first three are ``kernel_size`` convs (no bias, reflect padding),
    ``convg2g`` a :class:`SpectralTransform`. A path whose input or output group is empty is
    absent (None).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, ratio_gin: float,
                 ratio_gout: float, stride: int = 1, padding: int = 0, dilation: int = 1,
                 enable_lfu: bool = False) -> None:
        super().__init__()
        in_l, in_g = _split(in_channels, ratio_gin)
        out_l, out_g = _split(out_channels, ratio_gout)
        self.global_in = in_g

        def conv(cin: int, cout: int) -> nn.Conv2d | None:
            if not cin or not cout:
                return None
            return nn.Conv2d(cin, cout, kernel_size, stride, padding, dilation, bias=False,
                             padding_mode="reflect")

        self.convl2l = conv(in_l, out_l)
        self.convl2g = conv(in_l, out_g)
        self.convg2l = conv(in_g, out_l)
        self.convg2g = (
            SpectralTransform(in_g, out_g, stride, enable_lfu) if in_g and out_g else None
        )

    def forward(self, x: Tensor | Features) -> Features:
        """A tensor ``(B, C_in, H, W)`` (all local) or a feature pair -> a feature pair."""
        local, glob = (x, None) if isinstance(x, Tensor) else x
        out_l: Tensor | None = None
        out_g: Tensor | None = None
        for source, conv_l, conv_g in ((local, self.convl2l, self.convl2g),
                                       (glob, self.convg2l, self.convg2g)):
            if source is None:
                continue
            if conv_l is not None:
                out_l = conv_l(source) if out_l is None else out_l + conv_l(source)
            if conv_g is not None:
                out_g = conv_g(source) if out_g is None else out_g + conv_g(source)
        assert out_l is not None  # LamaConfig refuses layers without local channels
        return out_l, out_g


class FfcBnAct(nn.Module):
    """An :class:`FFC`, then BatchNorm and ReLU on each group (reference: ``FFC_BN_ACT``).

    Children: ``ffc``, ``bn_l``, ``bn_g`` (None without global outputs).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, ratio_gin: float,
                 ratio_gout: float, stride: int = 1, padding: int = 0, dilation: int = 1,
                 enable_lfu: bool = False) -> None:
        super().__init__()
        self.ffc = FFC(in_channels, out_channels, kernel_size, ratio_gin, ratio_gout, stride,
                       padding, dilation, enable_lfu)
        out_l, out_g = _split(out_channels, ratio_gout)
        self.bn_l = nn.BatchNorm2d(out_l)
        self.bn_g = nn.BatchNorm2d(out_g) if ratio_gout else None
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: Tensor | Features) -> Features:
        """A tensor or feature pair -> a feature pair of ``out_channels`` in all."""
        local, glob = self.ffc(x)
        local = self.act(self.bn_l(local))
        if glob is not None and self.bn_g is not None:
            glob = self.act(self.bn_g(glob))
        return local, glob


class FfcResnetBlock(nn.Module):
    """Two 3x3 :class:`FfcBnAct` and a residual sum per group (reference: ``FFCResnetBlock``).

    Children: ``conv1``, ``conv2``.
    """

    def __init__(self, channels: int, ratio_gin: float, ratio_gout: float,
                 enable_lfu: bool = False) -> None:
        super().__init__()
        self.conv1 = FfcBnAct(channels, channels, 3, ratio_gin, ratio_gout, padding=1,
                              enable_lfu=enable_lfu)
        self.conv2 = FfcBnAct(channels, channels, 3, ratio_gin, ratio_gout, padding=1,
                              enable_lfu=enable_lfu)

    def forward(self, x: Features) -> Features:
        """A feature pair -> a feature pair of the same shapes."""
        local, glob = self.conv2(self.conv1(x))
        local = x[0] + local
        if x[1] is not None and glob is not None:
            glob = x[1] + glob
        return local, glob


class _ConcatGroups(nn.Module):
    """A feature pair -> one tensor, global channels after local ones."""

    def forward(self, x: Features) -> Tensor:
        return x[0] if x[1] is None else torch.cat(x, dim=1)


class FfcResNetGenerator(nn.Module):
    """LaMa's generator: 7x7 FFC, stride-2 FFCs, FFC residual blocks, transposed convs.

    ``model`` is a Sequential laid out as the reference's: reflection pad 3, the input
    :class:`FfcBnAct` (7x7), ``n_downsampling`` stride-2 3x3 :class:`FfcBnAct`, ``n_blocks``
    :class:`FfcResnetBlock`, a concatenation, per upsampling a 3x3 stride-2 transposed conv
    (output padding 1), BatchNorm and ReLU, then reflection pad 3, a 7x7 conv (bias) and the
    output activation.

    Input: float ``(B, input_nc, H, W)``, H and W multiples of ``2 ** n_downsampling``.
    Output: float ``(B, output_nc, H, W)`` (in [0, 1] with ``add_out_act="sigmoid"``).
    """

    def __init__(self, config: LamaConfig) -> None:
        super().__init__()
        self.config = config
        specs = config.layer_specs()
        layers: list[nn.Module] = [nn.ReflectionPad2d(3)]
        _, cin, cout, gin, gout, lfu = specs[0]
        layers.append(FfcBnAct(cin, cout, 7, gin, gout, enable_lfu=lfu))
        for _, cin, cout, gin, gout, lfu in specs[1 : 1 + config.n_downsampling]:
            layers.append(FfcBnAct(cin, cout, 3, gin, gout, stride=2, padding=1, enable_lfu=lfu))
        for _ in range(config.n_blocks):
            block = FfcResnetBlock(config.bottleneck_channels, config.resnet_ratio_gin,
                                   config.resnet_ratio_gout, config.resnet_enable_lfu)
            layers.append(block)
        layers.append(_ConcatGroups())
        cap, ngf = config.max_features, config.ngf
        for i in range(config.n_downsampling):
            mult = 2 ** (config.n_downsampling - i)
            cin, cout = min(cap, ngf * mult), min(cap, ngf * mult // 2)
            layers += [nn.ConvTranspose2d(cin, cout, 3, 2, padding=1, output_padding=1),
                       nn.BatchNorm2d(cout), nn.ReLU(True)]
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(min(cap, ngf), config.output_nc, 7)]
        if config.add_out_act == "sigmoid":
            layers.append(nn.Sigmoid())
        elif config.add_out_act == "tanh":
            layers.append(nn.Tanh())
        self.model = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        """``(B, input_nc, H, W)`` -> ``(B, output_nc, H, W)``; see the class docstring."""
        multiple = 2**self.config.n_downsampling
        if x.ndim != 4 or x.shape[1] != self.config.input_nc or x.shape[-1] % multiple \
                or x.shape[-2] % multiple:
            raise InvalidInputError(
                f"LaMa generator input {tuple(x.shape)} must be (B, {self.config.input_nc}, H, W)"
                f" with H and W multiples of {multiple}"
            )
        return self.model(x)
