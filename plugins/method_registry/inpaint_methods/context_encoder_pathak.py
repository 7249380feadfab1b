"""The published Context Encoder: Pathak et al.'s centre-region generator and its test rule.

``context-encoder`` with ``architecture="pathak"`` runs the generator of the authors'
``train.lua`` (pathak22/context-encoder), in the layout of its PyTorch port
(BoyuanJiang/context_encoder_pytorch, MIT), whose ``netG_streetview.pth`` (Paris StreetView) is
the published checkpoint this project can load (``inpaint weights import
context-encoder-pytorch``). One ``nn.Sequential`` called ``main``, for a 128 x 128 RGB input in
[-1, 1]:

- encoder: five 4x4 stride-2 convs without bias, ``nef, nef, 2nef, 4nef, 8nef`` channels,
  BatchNorm on all but the first, LeakyReLU(0.2); then a 4x4 valid conv to ``nBottleneck``
  channels at 1 x 1, BatchNorm, LeakyReLU(0.2);
- decoder: a 4x4 transposed conv to ``8ngf`` at 4 x 4, then four 4x4 stride-2 transposed convs
  (``4ngf, 2ngf, ngf, 3``), BatchNorm + ReLU on all but the last, then tanh: the 64 x 64 centre.

The model was trained on one hole only: the centre 64 x 64 of a 128 x 128 image, less a
4-pixel overlap ring (the centre 56 x 56), filled with the data set's mean colour (117, 104,
123). Its test rule (``test_one.py``) is that one case. :func:`fill_centre_windows` applies it to
any hole: each connected hole component gets a square window centred on its bounding box, of
side ``max(128, ceil(128 * box side / 56))``, so the box lies in the window's centre 56/128;
the window (padded by reflection where it leaves the image) is resized to 128, its centre
56 x 56 and its hole pixels are set to the mean colour, and the 64 x 64 prediction is resized
back onto the window's centre half and pasted into that component's hole pixels. A 128 x 128
image whose hole is the centre 56 x 56 runs exactly the reference's path, without resizing.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import torch
from torch import Tensor, nn

from inpaint_methods.context_encoder_windows import WINDOW_BATCH, pad_reflect, resize_image

#: The side the published generator takes; it predicts the centre half of it.
PATHAK_SIZE = 128
#: Pixels of the centre square the hole leaves known on each side (``overlapPred``).
OVERLAP = 4
#: The training hole's fill: Paris StreetView's mean colour, RGB in [0, 255].
MEAN_COLOUR = (117.0, 104.0, 123.0)
LEAKY_SLOPE = 0.2


class PathakGenerator(nn.Module):
    """The centre-region generator: ``(B, 3, 128, 128)`` in [-1, 1] -> ``(B, 3, 64, 64)``.

    Args:
        encoder_channels: ``nef``, the first conv's width (64 published).
        decoder_channels: ``ngf``, the last transposed conv's input width (64 published).
        bottleneck_channels: ``nBottleneck`` (4000 published).
    """

    def __init__(
        self, encoder_channels: int, decoder_channels: int, bottleneck_channels: int
    ) -> None:
        super().__init__()
        nef, ngf = encoder_channels, decoder_channels
        layers: list[nn.Module] = [
            nn.Conv2d(3, nef, 4, 2, 1, bias=False),
            nn.LeakyReLU(LEAKY_SLOPE, inplace=True),
        ]
        widths = (nef, nef, 2 * nef, 4 * nef, 8 * nef)
        for width_in, width_out in itertools.pairwise(widths):
            layers += [
                nn.Conv2d(width_in, width_out, 4, 2, 1, bias=False),
                nn.BatchNorm2d(width_out),
                nn.LeakyReLU(LEAKY_SLOPE, inplace=True),
            ]
        layers += [
            nn.Conv2d(8 * nef, bottleneck_channels, 4, bias=False),
            nn.BatchNorm2d(bottleneck_channels),
            nn.LeakyReLU(LEAKY_SLOPE, inplace=True),
            nn.ConvTranspose2d(bottleneck_channels, 8 * ngf, 4, 1, 0, bias=False),
            nn.BatchNorm2d(8 * ngf),
            nn.ReLU(inplace=True),
        ]
        for width_in, width_out in ((8 * ngf, 4 * ngf), (4 * ngf, 2 * ngf), (2 * ngf, ngf)):
            layers += [
                nn.ConvTranspose2d(width_in, width_out, 4, 2, 1, bias=False),
                nn.BatchNorm2d(width_out),
                nn.ReLU(inplace=True),
            ]
        layers += [nn.ConvTranspose2d(ngf, 3, 4, 2, 1, bias=False), nn.Tanh()]
        self.main = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        """``(B, 3, 128, 128)`` float in [-1, 1], the centre hole filled -> the centre
        ``(B, 3, 64, 64)`` in [-1, 1]."""
        if x.ndim != 4 or tuple(x.shape[1:]) != (3, PATHAK_SIZE, PATHAK_SIZE):
            raise ValueError(f"input shape {tuple(x.shape)} is not (B, 3, 128, 128)")
        return self.main(x)


def _centre_windows(hole: np.ndarray) -> tuple[np.ndarray, list[tuple[int, int, int, int]]]:
    """Label ``hole`` (bool ``(H, W)``) 8-connected; one ``(label, top, left, side)`` window per
    component, centred on its bounding box, the box inside the window's centre 56/128."""
    from scipy import ndimage

    labels, _ = ndimage.label(hole, structure=np.ones((3, 3), dtype=bool))
    inner = PATHAK_SIZE // 2 - 2 * OVERLAP
    windows = []
    for index, box in enumerate(ndimage.find_objects(labels), start=1):
        if box is None:
            continue
        r0, r1, c0, c1 = box[0].start, box[0].stop, box[1].start, box[1].stop
        side = max(PATHAK_SIZE, math.ceil(PATHAK_SIZE * max(r1 - r0, c1 - c0) / inner))
        side += side % 2  # an even side keeps the centre half on whole pixels
        windows.append((index, (r0 + r1 - side) // 2, (c0 + c1 - side) // 2, side))
    return labels.astype(np.int32, copy=False), windows


def _crop(x: Tensor, top: int, left: int, side: int) -> Tensor:
    """The ``side x side`` window of ``(B, C, H, W)`` at ``(top, left)``, reflected (or, where
    the image is too small to reflect, replicated) where it leaves the image."""
    height, width = x.shape[-2:]
    pads = (max(0, -left), max(0, left + side - width), max(0, -top), max(0, top + side - height))
    inside = x[..., max(top, 0) : min(top + side, height), max(left, 0) : min(left + side, width)]
    return pad_reflect(inside, pads)


def fill_centre_windows(generator: PathakGenerator, image: Tensor, mask: Tensor) -> Tensor:
    """Fill every hole of one image by the published centre-region rule (module docstring).

    Args:
        generator: the loaded generator, in eval mode.
        image: float32 ``(1, 3, H, W)`` in [0, 1].
        mask: float32 ``(1, 1, H, W)``, 1 = hole.

    Returns:
        float32 ``(1, 3, H, W)`` in [0, 1]: ``image`` with every hole pixel predicted.
    """
    hole = mask[0, 0].detach().cpu().numpy() > 0.5
    labels, windows = _centre_windows(hole)
    output = image.clone()
    mean = torch.tensor(MEAN_COLOUR, dtype=image.dtype, device=image.device).view(1, 3, 1, 1)
    mean = 2.0 * mean / 255.0 - 1.0
    low, high = PATHAK_SIZE // 4 + OVERLAP, 3 * PATHAK_SIZE // 4 - OVERLAP
    centre = torch.zeros(1, 1, PATHAK_SIZE, PATHAK_SIZE, dtype=torch.bool, device=image.device)
    centre[..., low:high, low:high] = True
    height, width = hole.shape
    scaled = 2.0 * image - 1.0  # the generator's [-1, 1], once for every window
    for start in range(0, len(windows), WINDOW_BATCH):
        chunk = windows[start : start + WINDOW_BATCH]
        inputs = []
        for _, top, left, side in chunk:
            window = resize_image(_crop(scaled, top, left, side), PATHAK_SIZE, PATHAK_SIZE)
            holes = resize_image(_crop(mask, top, left, side), PATHAK_SIZE, PATHAK_SIZE) > 0
            inputs.append(torch.where(centre | holes, mean, window))
        predicted = generator(torch.cat(inputs))
        for row, (label, top, left, side) in enumerate(chunk):
            half = side // 2
            back = (resize_image(predicted[row : row + 1], half, half) + 1.0) / 2.0
            r0, c0 = top + side // 4, left + side // 4
            rows = slice(max(r0, 0), min(r0 + half, height))
            cols = slice(max(c0, 0), min(c0 + half, width))
            back = back[..., rows.start - r0 : rows.stop - r0, cols.start - c0 : cols.stop - c0]
            own = torch.from_numpy(labels[rows, cols] == label).to(image.device)
            target = output[..., rows, cols]
            target.copy_(torch.where(own, back.to(output.dtype), target))
    return output
