"""Grey images and Canny edge maps of image batches: ``edge-gan``'s inputs.

:func:`to_gray` is the luma the lite architecture uses; :func:`reference_gray` is EdgeConnect's
grey image exactly (skimage's ``rgb2gray`` in float64 on the 8-bit levels), so that the
``edgeconnect`` architecture's :func:`canny_edges` match the reference's pixel for pixel.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

__all__ = ["canny_edges", "reference_gray", "to_gray"]

#: Luma weights of ``skimage.color.rgb2gray`` (ITU-R BT.709).
_LUMA = (0.2125, 0.7154, 0.0721)
#: An image is taken as 8-bit when every ``255 * value`` is this close to an integer.
_LEVEL_TOLERANCE = 1e-3


def to_gray(images: Tensor) -> Tensor:
    """``(B, 3, H, W)`` in [0, 1] -> ``(B, 1, H, W)`` luma in [0, 1] (rgb2gray weights)."""
    weights = images.new_tensor(_LUMA).view(1, 3, 1, 1)
    return (images * weights).sum(dim=1, keepdim=True)


def canny_edges(gray: Tensor, sigma: float, known: Tensor | None = None) -> Tensor:
    """Canny edges (scikit-image) of each image of a batch, optionally of its known part only.

    Args:
        gray: ``(B, 1, H, W)`` float in [0, 1]; float64 is kept in float64 (as EdgeConnect,
            whose Canny runs on skimage's float64 grey), any other dtype runs in float32.
        sigma: the Gaussian sigma.
        known: ``(B, 1, H, W)``, 1 where pixels are known; edges are found only there
            (``skimage.feature.canny(..., mask=known)``), so hole values never matter.

    Returns:
        ``(B, 1, H, W)`` of 0 and 1 in ``gray``'s dtype, on ``gray``'s device.
    """
    from skimage.feature import canny

    host_dtype = torch.float64 if gray.dtype == torch.float64 else torch.float32
    host = gray.detach().cpu().to(host_dtype).numpy()[:, 0]
    valid = None if known is None else known.detach().cpu().numpy()[:, 0] > 0.5
    edges = np.stack(
        [
            canny(host[i], sigma=sigma, mask=None if valid is None else valid[i])
            for i in range(host.shape[0])
        ]
    ).astype(np.float32)
    return torch.from_numpy(edges)[:, None].to(gray.device, gray.dtype)


def reference_gray(images: Tensor) -> Tensor:
    """EdgeConnect's grey image: skimage ``rgb2gray`` in float64, as its data loader makes it.

    The reference reads uint8 RGB and calls ``rgb2gray`` on it (float64). So that no Canny edge
    pixel flips against it, images whose values are all 8-bit levels (``k / 255`` in float32,
    as this project reads uint8 files) are turned back into those uint8 levels first and given
    to ``rgb2gray`` as uint8; other images go to it as float64.

    Args:
        images: ``(B, 3, H, W)`` float in [0, 1], any device.

    Returns:
        float64 ``(B, 1, H, W)`` in [0, 1], on ``images``' device.
    """
    from skimage.color import rgb2gray

    host = images.detach().cpu().to(torch.float64).numpy().transpose(0, 2, 3, 1)
    levels = np.rint(host * 255.0)
    if np.abs(host * 255.0 - levels).max(initial=0.0) < _LEVEL_TOLERANCE:
        host = levels.astype(np.uint8)
    gray = np.ascontiguousarray(np.stack([rgb2gray(item) for item in host]), dtype=np.float64)
    return torch.from_numpy(gray)[:, None].to(images.device)
