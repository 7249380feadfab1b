"""Shared network building blocks: normalisation, residual blocks, the G1/G2 encoder-decoder.

Example::

    from inpaint_core.layers import EncoderDecoder, EncoderDecoderConfig
    generator = EncoderDecoder(EncoderDecoderConfig(in_channels=4, out_channels=3))
"""

from inpaint_core.layers.blocks import (
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

__all__ = [
    "SIZE_MULTIPLE",
    "EncoderDecoder",
    "EncoderDecoderConfig",
    "Norm",
    "Output",
    "ResidualBlock",
    "count_parameters",
    "make_norm",
    "spectral_norm",
]
