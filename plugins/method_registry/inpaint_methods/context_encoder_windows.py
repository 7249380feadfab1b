"""``context-encoder``'s inference windows: the network works at one size, images have any.

:func:`plan_windows` places a square window around each group of holes; :func:`fill_windows`
resizes each window to the network's input side, completes it and resizes the result back
(:func:`resize_image`, :func:`resize_mask`). The published ``pathak`` architecture has its own
window rule (:mod:`inpaint_methods.context_encoder_pathak`) on the same resizes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from inpaint_core.priors import Prior, apply_prior, prior_fill

__all__ = ["WINDOW_BATCH", "Window", "fill_windows", "plan_windows", "resize_image", "resize_mask"]

#: Windows run through the generator together, this many at a time.
WINDOW_BATCH = 8


class _Config(Protocol):
    input_size: int
    prior: Prior


class WindowNetworks(Protocol):
    """What :func:`fill_windows` needs of the networks: the config's input side and prior,
    and the generator ``(filled (B, 3, S, S), masks (B, 1, S, S)) -> raw (B, 3, S, S)``."""

    config: _Config
    generator: nn.Module


def resize_image(x: Tensor, height: int, width: int) -> Tensor:
    """Resize ``(B, C, h, w)`` float: area when shrinking, bilinear when growing.

    Both are convex combinations of input pixels, so values stay in the input's range.
    """
    if tuple(x.shape[-2:]) == (height, width):
        return x
    if height <= x.shape[-2] and width <= x.shape[-1]:
        return F.interpolate(x, size=(height, width), mode="area")
    return F.interpolate(x, size=(height, width), mode="bilinear", align_corners=False)


def resize_mask(masks: Tensor, height: int, width: int) -> Tensor:
    """Resize ``(B, 1, h, w)`` masks (1 = hole): an output pixel touching a hole is a hole.

    Returns float ``(B, 1, height, width)`` of 0 and 1 (a max-pool when shrinking by an
    integer factor, nearest-like when growing).
    """
    if tuple(masks.shape[-2:]) == (height, width):
        return (masks > 0.5).to(masks.dtype)
    pooled = F.adaptive_avg_pool2d((masks > 0.5).to(masks.dtype), (height, width))
    return (pooled > 0).to(masks.dtype)


@dataclass(frozen=True)
class Window:
    """A square window around one group of holes.

    Attributes:
        top, left, height, width: the part of the image inside the window.
        side: the window's square side; the image part is padded (centred) to it.
        labels: the connected components (of the label image) this window fills.
    """

    top: int
    left: int
    height: int
    width: int
    side: int
    labels: tuple[int, ...]


def plan_windows(
    hole: np.ndarray, input_size: int, context_scale: float
) -> tuple[np.ndarray, list[Window]]:
    """Label the holes and place one square window around each group of them.

    Holes are the 8-connected components of ``hole``. A window's side is
    ``max(input_size, ceil(context_scale * bbox side))`` for its group's bounding box, capped
    at the image's longer side; it is centred on the box and shifted to lie inside the image
    (a side longer than the image's shorter side is padded later). A component small enough
    for an ``input_size`` window (``context_scale * side <= input_size``) shares one with the
    others whose box centre falls in the same grid cell of side
    ``input_size / (2 * context_scale)`` (such a window is at most 1.5 ``input_size``); a
    larger one gets its own. Windows come in the order of their first component (raster
    order), so the plan is deterministic, and there are at most as many as occupied cells
    plus large components.

    Args:
        hole: bool ``(H, W)``, True = hole.
        input_size: the network's input side.
        context_scale: window side over hole box side, >= 1.

    Returns:
        The int32 label image ``(H, W)`` (0 = known) and the windows.
    """
    from scipy import ndimage

    labels, _ = ndimage.label(hole, structure=np.ones((3, 3), dtype=bool))
    labels = labels.astype(np.int32, copy=False)
    height, width = hole.shape
    cell = max(1, int(input_size / (2.0 * context_scale)))
    groups: dict[tuple[int, int, int], list[Any]] = {}
    for index, box in enumerate(ndimage.find_objects(labels), start=1):
        if box is None:
            continue
        r0, r1, c0, c1 = box[0].start, box[0].stop, box[1].start, box[1].stop
        if context_scale * max(r1 - r0, c1 - c0) <= input_size:
            key = (0, (r0 + r1) // 2 // cell, (c0 + c1) // 2 // cell)
        else:
            key = (1, index, 0)
        group = groups.setdefault(key, [r0, r1, c0, c1, []])
        group[0], group[1] = min(group[0], r0), max(group[1], r1)
        group[2], group[3] = min(group[2], c0), max(group[3], c1)
        group[4].append(index)
    windows = []
    for r0, r1, c0, c1, members in groups.values():
        side = max(input_size, math.ceil(context_scale * max(r1 - r0, c1 - c0)))
        side = min(side, max(height, width))
        rows, cols = min(side, height), min(side, width)
        top = min(max((r0 + r1 - rows) // 2, 0), height - rows)
        left = min(max((c0 + c1 - cols) // 2, 0), width - cols)
        windows.append(Window(top, left, rows, cols, side, tuple(members)))
    return labels, windows


def pad_reflect(x: Tensor, pads: tuple[int, int, int, int]) -> Tensor:
    """Pad ``(B, C, h, w)`` by ``(left, right, top, bottom)``: reflected where every pad is
    shorter than the side it mirrors, else replicated (reflection needs that)."""
    if not any(pads):
        return x
    height, width = x.shape[-2:]
    reflect = max(pads[:2]) < width and max(pads[2:]) < height
    return F.pad(x, pads, mode="reflect" if reflect else "replicate")


def _pad_to_square(x: Tensor, side: int) -> Tensor:
    """Pad ``(B, C, h, w)`` centred to ``side x side`` (:func:`pad_reflect`)."""
    height, width = x.shape[-2:]
    top, left = (side - height) // 2, (side - width) // 2
    return pad_reflect(x, (left, side - width - left, top, side - height - top))


def fill_windows(
    networks: WindowNetworks, image: Tensor, mask: Tensor, context_scale: float
) -> Tensor:
    """Fill every hole of one image through windows resized to the network's input size.

    Each window (:func:`plan_windows`) of the prior-filled image and of the whole mask (every
    hole in it is unknown) is padded to a square, resized to ``input_size``, completed, and
    the raw output resized back; only the hole pixels of the window's own components are
    pasted. With a prior, the resized correction is added to the full-resolution prior fill.

    Args:
        networks: the loaded networks (``ContextEncoderNetworks``), in eval mode.
        image: float32 ``(1, 3, H, W)`` in [0, 1].
        mask: float32 ``(1, 1, H, W)``, 1 = hole.
        context_scale: window side over hole box side.

    Returns:
        float32 ``(1, 3, H, W)`` in [0, 1]: the image with every hole filled.
    """
    config = networks.config
    size = config.input_size
    filled = prior_fill(image, mask, config.prior)
    hole = mask[0, 0].detach().cpu().numpy() > 0.5
    labels, windows = plan_windows(hole, size, context_scale)
    output = filled.clone()
    for start in range(0, len(windows), WINDOW_BATCH):
        chunk = windows[start : start + WINDOW_BATCH]
        crops = [
            (
                filled[..., w.top : w.top + w.height, w.left : w.left + w.width],
                mask[..., w.top : w.top + w.height, w.left : w.left + w.width],
            )
            for w in chunk
        ]
        inputs = torch.cat(
            [
                resize_image(_pad_to_square(crop, w.side), size, size)
                for (crop, _), w in zip(crops, chunk, strict=True)
            ]
        )
        holes = torch.cat(
            [
                resize_mask(_pad_to_square(m, w.side), size, size)
                for (_, m), w in zip(crops, chunk, strict=True)
            ]
        )
        raw = networks.generator(inputs, holes)
        for index, ((crop, _), w) in enumerate(zip(crops, chunk, strict=True)):
            back = resize_image(raw[index : index + 1], w.side, w.side)
            top, left = (w.side - w.height) // 2, (w.side - w.width) // 2
            back = back[..., top : top + w.height, left : left + w.width]
            result = apply_prior(crop, back, config.prior).to(output.dtype)
            own = np.isin(labels[w.top : w.top + w.height, w.left : w.left + w.width], w.labels)
            region = torch.from_numpy(own).to(output.device)
            target = output[..., w.top : w.top + w.height, w.left : w.left + w.width]
            target.copy_(torch.where(region, result, target))
    return output
