"""Shared network building blocks: normalisation, residual blocks, the G1/G2 encoder-decoder.

Example::

    from inpaint_core.nn.layers import EncoderDecoder, EncoderDecoderConfig
    generator = EncoderDecoder(EncoderDecoderConfig(in_channels=4, out_channels=3))
"""

from inpaint_core.nn.layers.attention import ContextualAttention
from inpaint_core.nn.layers.blocks import (
    SIZE_MULTIPLE,
    EncoderDecoder,
    EncoderDecoderConfig,
    Norm,
    Output,
    ResidualBlock,
    count_parameters,
    make_norm,
    spectral_norm,
)
from inpaint_core.nn.layers.gated import Activation, GatedConv2d, GatedDeconv2d
from inpaint_core.nn.layers.partial import PartialConv2d

__all__ = [
    "SIZE_MULTIPLE",
    "Activation",
    "ContextualAttention",
    "EncoderDecoder",
    "EncoderDecoderConfig",
    "GatedConv2d",
    "GatedDeconv2d",
    "Norm",
    "Output",
    "PartialConv2d",
    "ResidualBlock",
    "count_parameters",
    "make_norm",
    "spectral_norm",
]
