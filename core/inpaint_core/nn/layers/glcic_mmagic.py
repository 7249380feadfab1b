"""OpenMMLab's Global&Local completion network (mmediting 0.x / mmagic ``GLEncoderDecoder``).

The published checkpoint ``gl_256x256_8x12_places_20200619-52a040a8.pth`` is this network
(``configs/global_local/gl_8xb12_places-256x256.py``, ``configs/_base_/models/base_gl.py``);
the module tree and parameter names below are the reference's, so its ``generator.*`` state
dict loads without renaming. Every block is mmcv's ``ConvModule``: a convolution without bias,
BatchNorm (``SyncBN`` in training; plain BatchNorm with running statistics in eval mode, eps
1e-5) and ReLU, kept here as an ``nn.Sequential`` of ``conv``, ``bn``, ``activate``.

- **encoder** (``GLEncoder``): ``enc1`` ... ``enc6``, widths 64, 128, 128, 256, 256, 256,
  kernels 5, 3, 3, 3, 3, 3, strides 1, 2, 1, 2, 1, 1, zero padding ``(k - 1) // 2``.
- **dilation neck** (``GLDilationNeck``): ``dilation_convs.0`` ... ``3``, 3x3, 256 -> 256,
  dilations (= zero padding) 2, 4, 8, 16.
- **decoder** (``GLDecoder``): ``dec1``, ``dec2`` 3x3 256; ``dec3`` transposed 4x4 stride 2
  padding 1 to 128; ``dec4`` 3x3 128; ``dec5`` transposed 4x4 stride 2 to 64; ``dec6`` 3x3 to
  32; ``dec7`` 3x3 to 3 *with* bias, no norm, no activation; then ``clamp(-1, 1)`` (the
  config's ``out_act='clip'``).

The channel counts are hard-coded in the reference (not config arguments), so they are here.

Input encoding (``GetMaskedImage`` + ``DataPreprocessor(mean=127.5, std=127.5)`` +
``OneStageInpaintor.forward_tensor``): the image in **BGR** order (OpenMMLab loads with
OpenCV and never converts: ``channel_order='bgr'``, ``to_rgb=False`` in the 2020 config),
scaled to [-1, 1], the hole set to 127.5 grey (0 after scaling), and the mask (1 = hole) as a
4th channel. The output is scaled back to [0, 1] and returned in RGB order.

Sizes: H and W must be multiples of 4 (two stride-2 convs and two transposed convs; at other
sizes the reference's composite fails on mismatched shapes).
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import Tensor, nn

from inpaint_core.errors import InvalidInputError

__all__ = ["DILATIONS", "MmagicGlcicGenerator"]

#: The dilation neck's rates (``2 ** (i + 1)``).
DILATIONS = (2, 4, 8, 16)
_ENCODER = ((4, 64, 5, 1), (64, 128, 3, 2), (128, 128, 3, 1), (128, 256, 3, 2),
            (256, 256, 3, 1), (256, 256, 3, 1))
#: (in, out, kernel, transposed) of dec1 ... dec6.
_DECODER = ((256, 256, 3, False), (256, 256, 3, False), (256, 128, 4, True),
            (128, 128, 3, False), (128, 64, 4, True), (64, 32, 3, False))
#: RGB <-> BGR (its own inverse).
_SWAP = [2, 1, 0]


def _conv_module(conv: nn.Module, channels: int) -> nn.Sequential:
    """mmcv ``ConvModule``'s order: conv, BatchNorm (``bn``), ReLU (``activate``)."""
    return nn.Sequential(OrderedDict(
        conv=conv, bn=nn.BatchNorm2d(channels), activate=nn.ReLU(inplace=True)
    ))


class _Encoder(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        for index, (cin, cout, kernel, stride) in enumerate(_ENCODER, start=1):
            conv = nn.Conv2d(cin, cout, kernel, stride, (kernel - 1) // 2, bias=False)
            self.add_module(f"enc{index}", _conv_module(conv, cout))

    def forward(self, x: Tensor) -> Tensor:
        for block in self.children():
            x = block(x)
        return x


class _DilationNeck(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.dilation_convs = nn.Sequential(*(
            _conv_module(nn.Conv2d(256, 256, 3, 1, d, d, bias=False), 256) for d in DILATIONS
        ))

    def forward(self, x: Tensor) -> Tensor:
        return self.dilation_convs(x)


class _Decoder(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        for index, (cin, cout, kernel, transposed) in enumerate(_DECODER, start=1):
            conv: nn.Module = (
                nn.ConvTranspose2d(cin, cout, kernel, 2, 1, bias=False)
                if transposed
                else nn.Conv2d(cin, cout, kernel, 1, 1, bias=False)
            )
            self.add_module(f"dec{index}", _conv_module(conv, cout))
        self.dec7 = nn.Sequential(OrderedDict(conv=nn.Conv2d(32, 3, 3, 1, 1)))

    def forward(self, x: Tensor) -> Tensor:
        for block in self.children():
            x = block(x)
        return x.clamp(-1.0, 1.0)


class MmagicGlcicGenerator(nn.Module):
    """OpenMMLab's GL generator: children ``encoder``, ``dilation_neck``, ``decoder``."""

    def __init__(self) -> None:
        super().__init__()
        self.encoder = _Encoder()
        self.dilation_neck = _DilationNeck()
        self.decoder = _Decoder()

    def raw(self, inputs: Tensor) -> Tensor:
        """The reference's ``generator(input_x)``: float ``(B, 4, H, W)`` (BGR masked image in
        [-1, 1], then the mask) -> float ``(B, 3, H, W)`` BGR in [-1, 1]."""
        return self.decoder(self.dilation_neck(self.encoder(inputs)))

    def forward(self, images: Tensor, masks: Tensor) -> Tensor:
        """Complete ``images``.

        Args:
            images: float ``(B, 3, H, W)`` RGB in [0, 1], H and W multiples of 4; hole values
                are ignored (set to grey, as the reference does).
            masks: ``(B, 1, H, W)``, 1 = hole, 0 = known.

        Returns:
            float ``(B, 3, H, W)`` RGB in [0, 1]: the whole generated image (the caller keeps
            the known pixels, as the reference's composite ``fake * m + input * (1 - m)``).

        Raises:
            InvalidInputError: shapes other than ``(B, 3, H, W)`` and ``(B, 1, H, W)``, or H
                or W not a multiple of 4.
        """
        height, width = images.shape[-2:]
        if (images.ndim != 4 or images.shape[1] != 3
                or tuple(masks.shape) != (images.shape[0], 1, height, width)):
            raise InvalidInputError(
                f"images {tuple(images.shape)} and masks {tuple(masks.shape)} are not "
                "(B, 3, H, W) and (B, 1, H, W)"
            )
        if height % 4 or width % 4:
            raise InvalidInputError(
                f"image size {height} x {width}: OpenMMLab's GL network needs multiples of 4"
            )
        masks = masks.to(images.dtype)
        bgr = images[:, _SWAP] * 2.0 - 1.0
        masked = bgr * (1.0 - masks)  # the hole at 127.5 grey: 0 in [-1, 1]
        out = self.raw(torch.cat([masked, masks], dim=1))
        return (out[:, _SWAP] + 1.0) * 0.5
