"""Partial convolution (Liu et al., "Image Inpainting for Irregular Holes Using Partial
Convolutions", ECCV 2018).

A partial convolution sees only the valid pixels of its window and renormalises for the ones
it misses::

    x' = W^T (X * M) * sum(1) / sum(M) + b   where the window holds any valid pixel
    x' = 0                                    otherwise
    m' = 1 if sum(M) > 0 else 0               (the updated mask)

**Mask convention inside this module: 1 = valid** (the paper's), the opposite of the
project's ``1 = hole`` (CONVENTIONS rule 9); callers convert with ``valid = 1 - hole``. Masks
are binary, float, either ``(B, 1, H, W)`` (one mask shared by every input channel) or
``(B, C_in, H, W)`` (one per channel, e.g. a U-Net skip link that concatenates features and
their masks). The updated mask is always ``(B, 1, H', W')``. Zero padding counts as invalid,
so border windows are renormalised too (as NVIDIA's reference implementation does).

Example::

    from inpaint_core.nn.layers import PartialConv2d
    conv = PartialConv2d(3, 16, kernel_size=7, stride=2, padding=3)
    features, valid = conv(image, 1.0 - hole)   # (B, 16, H/2, W/2), (B, 1, H/2, W/2)
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from inpaint_core.errors import InvalidInputError

__all__ = ["PartialConv2d"]

#: A window counts as valid when its (binary) mask sum exceeds this; robust to the rounding of
#: convolution algorithms that do not sum exactly (Winograd, FFT).
_VALID_THRESHOLD = 0.5


class PartialConv2d(nn.Conv2d):
    """A 2-D partial convolution; see the module docstring.

    Args:
        in_channels, out_channels, kernel_size, stride, padding, dilation, bias: as
            :class:`torch.nn.Conv2d` (zero padding, one group). The weight and bias are the
            layer's only parameters; the mask convolution uses a fixed ones kernel.

    ``forward(x, mask)`` maps features ``(B, in_channels, H, W)`` (any float dtype) and a valid
    mask ``(B, 1 or in_channels, H, W)`` with values in {0, 1} (1 = valid) to
    ``(features (B, out_channels, H', W'), new_mask (B, 1, H', W'))``, ``H', W'`` as a
    :class:`~torch.nn.Conv2d` with the same settings. ``new_mask`` is 1 where the window held
    any valid pixel; ``features`` are 0 elsewhere. The mask gets no gradient.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | tuple[int, int],
        stride: int | tuple[int, int] = 1,
        padding: int | tuple[int, int] = 0,
        dilation: int | tuple[int, int] = 1,
        bias: bool = True,
    ) -> None:
        super().__init__(
            in_channels, out_channels, kernel_size, stride, padding, dilation, bias=bias
        )

    def forward(self, x: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:  # type: ignore[override]
        """``(B, C_in, H, W)``, ``(B, 1 | C_in, H, W)`` 1 = valid -> features, new mask.

        Raises:
            InvalidInputError: ``x`` is not ``(B, in_channels, H, W)``, or ``mask`` is not
                ``(B, 1, H, W)`` or ``(B, in_channels, H, W)`` for ``x``'s B, H and W.
        """
        self._check(x, mask)
        mask = mask.to(x.dtype)
        kernel_h, kernel_w = self.kernel_size
        with torch.no_grad():
            summed = mask if mask.shape[1] == 1 else mask.sum(dim=1, keepdim=True)
            ones = torch.ones(1, 1, kernel_h, kernel_w, device=x.device, dtype=x.dtype)
            counts = F.conv2d(summed, ones, None, self.stride, self.padding, self.dilation)
            new_mask = (counts > _VALID_THRESHOLD).to(x.dtype)
            window = float(kernel_h * kernel_w * mask.shape[1])  # sum(1) over the window
            # Binary masks have counts >= 1 wherever new_mask is 1; the clamp only guards the
            # windows that new_mask zeroes anyway.
            ratio = window / counts.clamp_min(1.0) * new_mask
        raw = F.conv2d(x * mask, self.weight, None, self.stride, self.padding, self.dilation)
        out = raw * ratio
        if self.bias is not None:
            out = out + self.bias.view(1, -1, 1, 1) * new_mask
        return out, new_mask

    def _check(self, x: Tensor, mask: Tensor) -> None:
        shape, mask_shape = tuple(x.shape), tuple(mask.shape)
        if x.ndim != 4 or shape[1] != self.in_channels:
            raise InvalidInputError(
                f"partial conv input shape {shape} is not (B, {self.in_channels}, H, W)"
            )
        allowed = ((shape[0], 1, *shape[2:]), (shape[0], self.in_channels, *shape[2:]))
        if mask_shape not in allowed:
            raise InvalidInputError(
                f"partial conv mask shape {mask_shape} does not fit input {shape}: expected "
                f"{allowed[0]} or {allowed[1]} (1 = valid)"
            )
