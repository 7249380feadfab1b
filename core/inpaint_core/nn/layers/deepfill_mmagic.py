"""OpenMMLab's DeepFill v2 generator (mmediting 0.x / mmagic ``DeepFillEncoderDecoder``).

The published checkpoint ``deepfillv2_256x256_8x2_places_20200619-10d15793.pth`` is this
network (``configs/_base_/models/base_deepfillv2.py``); the module tree and parameter names
below are the reference's, so its ``generator.*`` state dict loads without renaming:

- **gated conv** (``SimpleGatedConvModule``): one conv with ``2 * out`` filters after explicit
  *reflect* padding (mmcv ``ConvModule(padding_mode='reflect')``: ``conv.conv.weight``),
  split into features and gates: ``ELU(features) * sigmoid(gates)``; the decoders' last conv
  has no feature activation (the gate stays).
- **encoders** (``DeepFillEncoder``): six gated convs, kernels 5, 3, 3, 3, 3, 3, strides 1, 2,
  1, 2, 1, 1; widths ``int(c * channel_factor)`` of ``stage1: 32 64 64 128 128 128``,
  ``stage2_conv: 32 32 64 64 128 128``, ``stage2_attention: 32 32 64 128 128 128``.
- **dilation neck** (``GLDilationNeck``): four gated 3x3 convs, dilations 2, 4, 8, 16.
- **decoder** (``DeepFillDecoder``): seven gated 3x3 convs, widths ``int(c * factor)`` of
  ``128 128 64 64 32 16`` then 3, nearest 2x upsampling after the 2nd and 4th, ``tanh``.
- **contextual attention** (``ContextualAttentionModule``, see :class:`MmagicContextualAttention`)
  between two gated convs (``ContextualAttentionNeck``), on the 1/4 features of stage 2's
  attention branch, with the full-size mask resized to 1/4 by *nearest* sampling.

Stage 1 maps ``cat(masked image, ones, mask)`` to an image; stage 2 sees the same with stage
1's output pasted into the hole. The published config uses ``channel_factor=0.75`` for every
encoder, neck and stage 1's decoder (widths 24 ... 96) and 1 for stage 2's decoder (its default;
in 192 = 96 + 96 channels).

Sizes: H and W must be multiples of 8 (two stride-2 convs and the attention's 0.5 scale; the
reference fails on others) and at least 72 (the reflect padding of the dilation-16 conv at
1/4 needs more than 16 rows and columns).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from inpaint_core.errors import InvalidInputError

__all__ = [
    "MIN_SIDE",
    "SIDE_MULTIPLE",
    "MmagicContextualAttention",
    "MmagicDeepFillGenerator",
    "ReflectGatedConv",
    "check_factor",
]

#: H and W must be multiples of this (2 stride-2 convs, then the attention's 0.5 scale).
SIDE_MULTIPLE = 8
#: Smallest H and W: reflect padding by 16 at 1/4 scale needs 17 rows; a multiple of 8 above.
MIN_SIDE = 72
_ENCODER_WIDTHS = {
    "stage1": (32, 64, 64, 128, 128, 128),
    "stage2_conv": (32, 32, 64, 64, 128, 128),
    "stage2_attention": (32, 32, 64, 128, 128, 128),
}
_ENCODER_KERNELS = (5, 3, 3, 3, 3, 3)
_ENCODER_STRIDES = (1, 2, 1, 2, 1, 1)
_DECODER_WIDTHS = (128, 128, 64, 64, 32, 16)
_NECK_DILATIONS = (2, 4, 8, 16)
#: ContextualAttentionModule's defaults: raw (copied) patches 4x4 at stride 2, padding 1;
#: matched patches 3x3 at 1/2 scale, zero padding 1; norm floor 1e-4.
_RAW_KERNEL, _RAW_STRIDE, _RAW_PADDING = 4, 2, 1
_MATCH_KERNEL = 3
_SCALE = 0.5
_NORM_EPS = 1e-4


def check_factor(name: str, value: float) -> float:
    """``value`` as a float channel factor; it must keep every width (``int(16 * f)``) >= 1.

    Raises:
        InvalidInputError: not a finite number, or too small for the narrowest layer.
    """
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InvalidInputError(f"{name}={value!r} must be a finite number")
    if int(16 * value) < 1:
        raise InvalidInputError(f"{name}={value!r} must be >= 1/16 (the narrowest layer has "
                                "int(16 * factor) channels)")
    return float(value)


class _PaddedConv(nn.Module):
    """mmcv's ``ConvModule`` with ``padding_mode='reflect'``: reflect pad, then an unpadded conv
    (its ``conv`` child holds the weights, as in the reference's state dict)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int,
                 padding: int, dilation: int) -> None:
        super().__init__()
        self.padding = padding
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, stride=stride,
                              dilation=dilation)

    def forward(self, x: Tensor) -> Tensor:
        if self.padding:
            x = F.pad(x, (self.padding,) * 4, mode="reflect")
        return self.conv(x)


class ReflectGatedConv(nn.Module):
    """``SimpleGatedConvModule``: ``ELU(f) * sigmoid(g)`` of one reflect-padded conv.

    Args:
        in_channels, out_channels: channels in and out (the conv has ``2 * out_channels``).
        kernel_size, stride, dilation: of the conv; padding ``dilation * (kernel_size - 1) // 2``.
        feature_activation: ELU on the features (True) or none (the decoders' last conv).

    ``forward``: ``(B, in, H, W)`` -> ``(B, out, H', W')`` float, ``H' = ceil(H / stride)``.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3,
                 stride: int = 1, dilation: int = 1, feature_activation: bool = True
                 ) -> None:
        super().__init__()
        padding = dilation * (kernel_size - 1) // 2
        self.conv = _PaddedConv(in_channels, 2 * out_channels, kernel_size, stride, padding,
                                dilation)
        self.feature_activation = feature_activation

    def forward(self, x: Tensor) -> Tensor:
        features, gates = torch.chunk(self.conv(x), 2, dim=1)
        if self.feature_activation:
            features = F.elu(features)
        return features * torch.sigmoid(gates)


class _Encoder(nn.Module):
    """``DeepFillEncoder``: ``enc1`` ... ``enc6``; ``(B, in, H, W)`` -> ``(B, w6, H/4, W/4)``."""

    def __init__(self, kind: str, factor: float, in_channels: int = 5) -> None:
        super().__init__()
        widths = [int(c * factor) for c in _ENCODER_WIDTHS[kind]]
        for index, (width, kernel, stride) in enumerate(
            zip(widths, _ENCODER_KERNELS, _ENCODER_STRIDES, strict=True), start=1
        ):
            self.add_module(f"enc{index}", ReflectGatedConv(in_channels, width, kernel, stride))
            in_channels = width
        self.out_channels = in_channels

    def forward(self, x: Tensor) -> Tensor:
        for index in range(1, 7):
            x = getattr(self, f"enc{index}")(x)
        return x


class _DilationNeck(nn.Module):
    """``GLDilationNeck``: ``dilation_convs.0`` ... ``.3``, dilations 2, 4, 8, 16."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.dilation_convs = nn.Sequential(
            *(ReflectGatedConv(channels, channels, dilation=d) for d in _NECK_DILATIONS)
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.dilation_convs(x)


class _Decoder(nn.Module):
    """``DeepFillDecoder``: ``dec1`` ... ``dec7``; ``(B, in, H/4, W/4)`` -> ``(B, 3, H, W)``
    in [-1, 1] (tanh), nearest 2x upsampling after ``dec2`` and ``dec4``."""

    def __init__(self, in_channels: int, factor: float) -> None:
        super().__init__()
        widths = [int(c * factor) for c in _DECODER_WIDTHS] + [3]
        for index, width in enumerate(widths, start=1):
            self.add_module(f"dec{index}", ReflectGatedConv(
                in_channels, width, feature_activation=index < len(widths)))
            in_channels = width

    def forward(self, x: Tensor) -> Tensor:
        for index in range(1, 8):
            x = getattr(self, f"dec{index}")(x)
            if index in (2, 4):
                x = F.interpolate(x, scale_factor=2.0, mode="nearest")
        return torch.tanh(x)


class MmagicContextualAttention(nn.Module):
    """``ContextualAttentionModule`` with its defaults, queries and keys from the same map.

    For features ``x`` ``(B, C, H, W)`` (H, W even) and ``mask`` ``(B, 1, H, W)`` (1 = hole):

    1. ``small = x`` sampled at 1/2 by nearest (every second row and column). Keys and queries
       are the 3x3 patches of ``small`` (zero padding), one per position; keys are
       L2-normalised (norm floored at 1e-4), queries are not.
    2. ``score[k, q] = query(q) . key(k)``. Fusion (``fuse_kernel``, the identity 3x3, a
       registered buffer as in the reference) sums ``score[k + d, q + d]`` over ``d = -1, 0, 1``
       along the *flattened* row-major indices, then along the flattened column-major ones
       (so it wraps across rows and columns, and is zero past the ends), as the reference.
    3. A key is masked (score ``-inf``) when any pixel of its 3x3 patch of the mask, sampled at
       1/2 by nearest, is a hole. ``softmax(softmax_scale * score)`` over the keys.
    4. The output is the attention-weighted sum of the keys' raw 4x4 patches of ``x`` (stride 2,
       padding 1), folded back to ``(H, W)`` and divided by the patch overlap count: every
       position is rebuilt, inside the hole and out.

    Memory: the score map holds ``(HW / 4)^2`` floats per image, a few times over (64 MiB each
    for 512 x 512 images, 1 GiB at 1024 x 1024).

    Raises (forward):
        InvalidInputError: odd H or W, a mask of another shape, or no valid key in an image
            (every 3x3 patch touches the hole: the reference's softmax would give NaN).
    """

    def __init__(self, softmax_scale: float = 10.0, fuse: bool = True) -> None:
        super().__init__()
        self.softmax_scale = float(softmax_scale)
        self.fuse = bool(fuse)
        if self.fuse:
            self.register_buffer("fuse_kernel", torch.eye(3).view(1, 1, 3, 3))

    def extra_repr(self) -> str:
        return f"softmax_scale={self.softmax_scale}, fuse={self.fuse}"

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        batch, _, height, width = x.shape
        if height % 2 or width % 2 or tuple(mask.shape) != (batch, 1, height, width):
            raise InvalidInputError(f"contextual attention needs even features and a mask of "
                                    f"(B, 1, H, W); got {tuple(x.shape)} and "
                                    f"{tuple(mask.shape)}")
        return torch.stack([self._attend(x[i : i + 1], mask[i : i + 1]) for i in range(batch)])

    def _fuse(self, scores: Tensor, h: int, w: int) -> Tensor:
        """``scores`` ``(Q, K)`` (queries row-major) summed along both flattened diagonals."""
        size = h * w
        scores = self._correlate(scores)
        # to column-major indices (x before y) for both queries and keys, and back
        scores = scores.view(h, w, h, w).permute(1, 0, 3, 2).reshape(size, size)
        scores = self._correlate(scores)
        return scores.view(w, h, w, h).permute(1, 0, 3, 2).reshape(size, size)

    def _correlate(self, scores: Tensor) -> Tensor:
        """The reference's ``conv2d(scores, fuse_kernel, padding=1)`` on the ``(Q, K)`` map, as a
        sum of shifted copies over the kernel's non-zero entries (three for the identity):
        the same terms, without the 9-fold unfolded copy a convolution of a map this large
        makes (600 MiB at 512 x 512 images)."""
        kernel = self.fuse_kernel[0, 0].tolist()
        rows, cols = scores.shape
        padded = F.pad(scores, (1, 1, 1, 1))
        out = torch.zeros_like(scores)
        for a, row in enumerate(kernel):
            for b, weight in enumerate(row):
                if weight == 1.0:
                    out += padded[a : a + rows, b : b + cols]
                elif weight != 0.0:
                    out += weight * padded[a : a + rows, b : b + cols]
        return out

    def _attend(self, x: Tensor, mask: Tensor) -> Tensor:
        """One image: ``x`` ``(1, C, H, W)``, ``mask`` ``(1, 1, H, W)`` -> ``(C, H, W)``."""
        height, width = x.shape[2:]
        small = F.interpolate(x, scale_factor=_SCALE, mode="nearest")
        h, w = small.shape[2:]
        pad = _MATCH_KERNEL // 2
        patches = F.unfold(small, _MATCH_KERNEL, padding=pad)[0].T  # (h*w, C*9), row-major
        norms = patches.square().sum(dim=1, keepdim=True).sqrt()
        keys = patches / torch.clamp(norms, min=_NORM_EPS)
        scores = patches @ keys.T  # (queries, keys)
        if self.fuse:
            scores = self._fuse(scores, h, w)
        small_mask = F.interpolate(mask, scale_factor=_SCALE, mode="nearest")
        hole_keys = F.unfold(small_mask, _MATCH_KERNEL, padding=pad)[0].sum(dim=0) > 0
        if bool(hole_keys.all()):
            raise InvalidInputError(
                f"contextual attention at {h} x {w}: every 3x3 patch touches the hole, so no "
                "known patch is left to copy (the reference's softmax would be NaN); give the "
                "image more known surroundings"
            )
        scores.masked_fill_(hole_keys[None, :], float("-inf"))
        attention = torch.softmax(scores.mul_(self.softmax_scale), dim=1)
        raw = F.unfold(x, _RAW_KERNEL, stride=_RAW_STRIDE, padding=_RAW_PADDING)[0].T
        columns = (attention @ raw).T[None]  # (1, C*16, queries)
        size = (height, width)
        rebuilt = F.fold(columns, size, _RAW_KERNEL, stride=_RAW_STRIDE, padding=_RAW_PADDING)
        ones = columns.new_ones(1, _RAW_KERNEL**2, h * w)
        overlap = F.fold(ones, size, _RAW_KERNEL, stride=_RAW_STRIDE, padding=_RAW_PADDING)
        return (rebuilt / overlap.clamp(min=1.0))[0]


class _AttentionNeck(nn.Module):
    """``ContextualAttentionNeck``: attention, then gated convs ``conv1`` and ``conv2``."""

    def __init__(self, channels: int, softmax_scale: float, fuse: bool) -> None:
        super().__init__()
        self.contextual_attention = MmagicContextualAttention(softmax_scale, fuse)
        self.conv1 = ReflectGatedConv(channels, channels)
        self.conv2 = ReflectGatedConv(channels, channels)

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        return self.conv2(self.conv1(self.contextual_attention(x, mask)))


class _Stage1(nn.Module):
    """``GLEncoderDecoder`` with DeepFill's gated encoder, neck and decoder."""

    def __init__(self, factor: float) -> None:
        super().__init__()
        self.encoder = _Encoder("stage1", factor)
        self.dilation_neck = _DilationNeck(self.encoder.out_channels)
        self.decoder = _Decoder(self.encoder.out_channels, factor)

    def forward(self, x: Tensor) -> Tensor:
        return self.decoder(self.dilation_neck(self.encoder(x)))


class _Stage2(nn.Module):
    """``DeepFillRefiner``: a dilated conv branch and an attention branch, one decoder."""

    def __init__(self, factor: float, decoder_factor: float, softmax_scale: float,
                 fuse: bool) -> None:
        super().__init__()
        self.encoder_attention = _Encoder("stage2_attention", factor)
        self.encoder_conv = _Encoder("stage2_conv", factor)
        attention_width = self.encoder_attention.out_channels
        conv_width = self.encoder_conv.out_channels
        self.contextual_attention_neck = _AttentionNeck(attention_width, softmax_scale, fuse)
        self.dilation_neck = _DilationNeck(conv_width)
        self.decoder = _Decoder(conv_width + attention_width, decoder_factor)

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        conv = self.dilation_neck(self.encoder_conv(x))
        attended = self.encoder_attention(x)
        small_mask = F.interpolate(mask, size=attended.shape[2:], mode="nearest")
        attended = self.contextual_attention_neck(attended, small_mask)
        return self.decoder(torch.cat([conv, attended], dim=1))


class MmagicDeepFillGenerator(nn.Module):
    """``DeepFillEncoderDecoder``: ``stage1`` and ``stage2``.

    Args:
        channel_factor: of every encoder, neck and stage 1's decoder (0.75 published).
        refine_channel_factor: of stage 2's decoder (1 published).
        softmax_scale, fuse: of the contextual attention (10, True).

    ``forward(x)``: ``x`` ``(B, 5, H, W)`` = ``cat(masked image, ones, mask)``, the image in
    [-1, 1] with 0 in the hole, mask 1 = hole; H, W multiples of :data:`SIDE_MULTIPLE`, at
    least :data:`MIN_SIDE`. Returns ``(stage1, stage2)``, each ``(B, 3, H, W)`` in [-1, 1].
    """

    def __init__(self, channel_factor: float = 0.75, refine_channel_factor: float = 1.0,
                 softmax_scale: float = 10.0, fuse: bool = True) -> None:
        super().__init__()
        channel_factor = check_factor("channel_factor", channel_factor)
        refine_channel_factor = check_factor("refine_channel_factor", refine_channel_factor)
        self.stage1 = _Stage1(channel_factor)
        self.stage2 = _Stage2(channel_factor, refine_channel_factor, softmax_scale, fuse)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        height, width = x.shape[2:]
        if x.ndim != 4 or x.shape[1] != 5:
            raise InvalidInputError(f"input {tuple(x.shape)} is not (B, 5, H, W)")
        if height % SIDE_MULTIPLE or width % SIDE_MULTIPLE or min(height, width) < MIN_SIDE:
            raise InvalidInputError(
                f"input {height} x {width}: OpenMMLab's DeepFill v2 needs sides that are "
                f"multiples of {SIDE_MULTIPLE} and at least {MIN_SIDE} (the deepfill-v2 method "
                f"pads images to multiples of {SIDE_MULTIPLE}; a smaller side cannot run)"
            )
        masked, mask = x[:, :3], x[:, 4:5]
        stage1 = self.stage1(x)
        pasted = stage1 * mask + masked * (1.0 - mask)
        stage2 = self.stage2(torch.cat([pasted, x[:, 3:]], dim=1), mask)
        return stage1, stage2
