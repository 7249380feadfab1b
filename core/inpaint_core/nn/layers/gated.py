"""Gated convolution (Yu et al., "Free-Form Image Inpainting with Gated Convolution", ICCV 2019).

A gated convolution learns a soft mask per channel and pixel instead of the hard, rule-based
mask update of a partial convolution::

    features = act(conv_f(x)) * sigmoid(conv_g(x))

As in the official DeepFill v2 code (``gen_conv``), ``conv_f`` and ``conv_g`` are one
convolution with ``2 * out_channels`` filters whose first half gives the features and second
half the gates, so one kernel launch serves both. Padding is zero, "same"-style:
``dilation * (kernel_size - 1) // 2`` on each side, so a stride-1 conv keeps ``(H, W)`` and a
stride-2 conv gives ``(ceil(H / 2), ceil(W / 2))`` for odd kernels. Initialisation differs
from PyTorch's default, see :meth:`GatedConv2d.reset_parameters`.

Tensors are ``(B, C, H, W)`` float throughout.
"""

from __future__ import annotations

from enum import Enum

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from inpaint_core.errors import InvalidInputError

__all__ = ["Activation", "GatedConv2d", "GatedDeconv2d"]

#: Slope of the LeakyReLU activation.
LEAKY_SLOPE = 0.2
#: Initial bias of the gates: sigmoid(2) = 0.88, so a new layer starts mostly open.
GATE_BIAS = 2.0


class Activation(str, Enum):
    """The activation applied to a gated convolution's features before the gate."""

    ELU = "elu"  # DeepFill v2's default
    LEAKY_RELU = "leaky-relu"  # slope 0.2
    RELU = "relu"  # DeepFill's last conv before contextual attention
    NONE = "none"  # identity: gated linear features


def _activate(kind: Activation, x: Tensor) -> Tensor:
    if kind is Activation.ELU:
        return F.elu(x)
    if kind is Activation.LEAKY_RELU:
        return F.leaky_relu(x, LEAKY_SLOPE)
    if kind is Activation.RELU:
        return F.relu(x)
    return x


def _parse_activation(value: Activation | str) -> Activation:
    try:
        return Activation(value)
    except ValueError:
        valid = ", ".join(member.value for member in Activation)
        raise InvalidInputError(f"unknown activation {value!r}; valid: {valid}") from None


class GatedConv2d(nn.Module):
    """``act(conv_f(x)) * sigmoid(conv_g(x))`` with "same" zero padding.

    Args:
        in_channels: channels of the input.
        out_channels: channels of the output (the conv has twice as many filters).
        kernel_size: odd kernel side (3 or 5 in DeepFill v2).
        stride: 1, or 2 to halve H and W (rounding up).
        dilation: dilation of the kernel (DeepFill's 2, 4, 8, 16 widen the receptive field).
        activation: an :class:`Activation` (or its name) for the features.

    ``forward``: ``(B, in_channels, H, W)`` -> ``(B, out_channels, ceil(H/stride),
    ceil(W/stride))``, same dtype. With ELU the output lies in ``(-1, inf)``; the gate is in
    ``(0, 1)``.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 3,
        stride: int = 1,
        dilation: int = 1,
        activation: Activation | str = Activation.ELU,
    ) -> None:
        super().__init__()
        for name, value in (("in_channels", in_channels), ("out_channels", out_channels),
                            ("stride", stride), ("dilation", dilation)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise InvalidInputError(f"{name}={value!r} must be an integer >= 1")
        if not isinstance(kernel_size, int) or kernel_size < 1 or kernel_size % 2 == 0:
            raise InvalidInputError(f"kernel_size={kernel_size!r} must be an odd integer >= 1")
        self.out_channels = out_channels
        self.activation = _parse_activation(activation)
        padding = dilation * (kernel_size - 1) // 2
        self.conv = nn.Conv2d(in_channels, 2 * out_channels, kernel_size, stride=stride,
                              padding=padding, dilation=dilation)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """He-normal weights (fan-in, ReLU gain), zero feature biases, gate biases ``GATE_BIAS``.

        Why: with PyTorch's default init each gated conv shrinks its input's scale about 3.5
        times (weights of variance ``1 / (3 fan_in)``, times half-closed gates), so a 17-conv
        DeepFill stage starts blind to its input and training stalls on a constant output. Gates
        that start mostly open (as an LSTM's forget gate) let the signal through; they learn to
        close where the input is invalid.
        """
        nn.init.kaiming_normal_(self.conv.weight, nonlinearity="relu")
        with torch.no_grad():
            self.conv.bias.zero_()
            self.conv.bias[self.out_channels :] = GATE_BIAS

    def forward(self, x: Tensor) -> Tensor:
        """Gated features ``(B, out_channels, H', W')``; see the class docstring."""
        if x.ndim != 4 or x.shape[1] != self.conv.in_channels:
            raise InvalidInputError(
                f"input shape {tuple(x.shape)} is not (B, {self.conv.in_channels}, H, W)"
            )
        features, gates = torch.split(self.conv(x), self.out_channels, dim=1)
        return _activate(self.activation, features) * torch.sigmoid(gates)


class GatedDeconv2d(nn.Module):
    """DeepFill v2's ``gen_deconv``: nearest-neighbour upsampling by 2, then a gated 3x3 conv.

    ``forward``: ``(B, in_channels, H, W)`` -> ``(B, out_channels, 2H, 2W)``.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 3,
        activation: Activation | str = Activation.ELU,
    ) -> None:
        super().__init__()
        self.conv = GatedConv2d(in_channels, out_channels, kernel_size, activation=activation)

    def forward(self, x: Tensor) -> Tensor:
        """Upsampled gated features ``(B, out_channels, 2H, 2W)``."""
        return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))
