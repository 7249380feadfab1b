"""Helpers on training batches with holes, shared by the learned methods.

A batch holds images ``(B, 3, H, W)`` in [0, 1] and masks ``(B, 1, H, W)`` with 1 = hole.
Local discriminators judge :func:`crop_batch` of :func:`hole_crops`; :func:`merge` pastes the
generated hole into the known image; :func:`hole_psnr` is the training log's quality figure.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["crop_batch", "hole_crops", "hole_psnr", "merge"]


def hole_crops(masks: Tensor, size: int) -> list[tuple[int, int, int]]:
    """``(top, left, side)`` of a square crop centred on each mask's hole bounding box.

    ``side = min(size, H, W)``; the crop is shifted to lie inside the image. An empty mask
    gives the centre crop. ``masks``: ``(B, 1, H, W)`` with 1 = hole.
    """
    height, width = masks.shape[-2:]
    side = min(size, height, width)
    boxes = []
    for mask in masks[:, 0] > 0.5:
        rows = torch.nonzero(mask.any(dim=1)).flatten()
        cols = torch.nonzero(mask.any(dim=0)).flatten()
        if len(rows):
            centre_y = (int(rows[0]) + int(rows[-1])) // 2
            centre_x = (int(cols[0]) + int(cols[-1])) // 2
        else:
            centre_y, centre_x = height // 2, width // 2
        top = min(max(centre_y - side // 2, 0), height - side)
        left = min(max(centre_x - side // 2, 0), width - side)
        boxes.append((top, left, side))
    return boxes


def crop_batch(images: Tensor, boxes: list[tuple[int, int, int]]) -> Tensor:
    """Stack the crops ``boxes`` (from :func:`hole_crops`) of ``(B, C, H, W)`` images."""
    return torch.stack(
        [images[i, :, top : top + s, left : left + s] for i, (top, left, s) in enumerate(boxes)]
    )


def merge(output: Tensor, images: Tensor, masks: Tensor) -> Tensor:
    """``output`` inside the hole, ``images`` outside (all ``(B, C, H, W)``, masks 1-channel)."""
    return output * masks + images * (1.0 - masks)


def hole_psnr(output: Tensor, images: Tensor, masks: Tensor) -> Tensor:
    """PSNR (dB, peak 1) over the hole pixels of a batch, as a detached scalar tensor.

    Args:
        output: ``(B, C, H, W)`` in [0, 1]; only its hole pixels count.
        images: ``(B, C, H, W)`` ground truth in [0, 1].
        masks: ``(B, 1, H, W)``, 1 = hole. An empty mask gives 100 dB.
    """
    with torch.no_grad():
        squared = ((output - images) ** 2 * masks).sum()
        count = masks.sum() * images.shape[1]
        if float(count) == 0.0:
            return torch.tensor(100.0)
        mse = squared / count
        return 10 * torch.log10(1.0 / mse.clamp_min(1e-10))
