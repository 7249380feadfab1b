"""``mi-gan``: MI-GAN, a small conditional GAN for inpainting on mobile devices (family cgan).

A. Sargsyan, S. Navasardyan, X. Xu, H. Shi, "MI-GAN: A Simple Baseline for Image Inpainting
on Mobile Devices", ICCV 2023 (github.com/Picsart-AI-Research/MI-GAN, MIT).

- **Family** ``cgan``: MI-GAN is a conditional GAN. Its generator is an encoder-decoder whose
  decoder adds the same-resolution encoder features (U-Net-like skips, as pix2pix's U-Net),
  and its StyleGAN2 discriminator judges the image together with the mask (``ic_n: 4``), the
  conditional adversarial set-up of the survey's CGAN family; it is trained with that loss,
  a perceptual loss and distillation from Co-Mod-GAN.
- **Generator**: :class:`~inpaint_core.nn.layers.mi_gan.MiGanGenerator` (the authors' inference
  network: depthwise-separable convs, re-parameterised kernels folded, fixed noise maps),
  configured by :class:`~inpaint_core.nn.layers.mi_gan.MiGanConfig` (model side 256 or 512).
- **Weights**: none are shipped and the method cannot be trained here. ``inpaint weights fetch
  mi-gan-places2-512-iopaint`` installs IOPaint's ``migan_traced.pt``; ``inpaint weights import
  mi-gan migan_256_places2.pt --output W.safetensors`` converts the authors' own files.
- **Test path**: IOPaint's (``iopaint/model/mi_gan.py`` with ``InpaintModel``'s helpers), the
  program that serves ``migan_traced.pt``, generalised from 512 to the model side ``R``:

  1. an image of exactly ``R x R`` runs whole. Otherwise each outer contour of the mask
     (``cv2.findContours``, external, in OpenCV's order) gives a box; the crop is the box
     grown by ``CROP_MARGIN`` (128) px on each side around its centre, shifted inside the
     image where it overhangs, and cut at the image's edges;
  2. a crop whose longer side exceeds ``R`` is resized (bicubic) so that side is ``R``; its
     mask too, bicubic on 0/255 then rounded, and the network's hole is where that exceeds 120;
  3. the crop is padded at the bottom and right to ``R x R`` (numpy's ``'symmetric'``), the
     input is ``cat(0.5 - m, (2x - 1) * (1 - m))``, the output ``(y + 1) / 2`` clamped to
     [0, 1] and cropped back;
  4. the output is blended with the crop by the (resized, soft) mask
     (IOPaint's ``sd_keep_unmasked_area``), resized back to the crop's size (bicubic) where it
     was resized, and its hole pixels are pasted; crops are pasted in contour order, so a
     later crop overwrites the hole pixels an earlier one filled inside their overlap.

  IOPaint rounds the network output to 8 bits; a resized-back crop it truncates (``astype``
  of a float array). Here the hole values are kept in float (the project's writer rounds), and
  resized-back crops are shifted by :func:`~inpaint_core.learned.as_truncated`. The resizes
  run in float32 (``torch`` bicubic, which equals OpenCV's ``INTER_CUBIC``), where IOPaint
  resizes 8-bit arrays: downscaled crops differ from IOPaint's by rounding.

Differences from the reference: images under 16 px are padded to 16 first (the project's
minimum side). MI-GAN's own ``scripts/demo.py`` instead resizes the whole image to ``R x R``
and returns it at most ``R`` px wide, and its ONNX pipeline crops one square around all holes
and blends outside the mask too; neither keeps the known pixels, which this project requires.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from inpaint_core.errors import ParameterError
from inpaint_core.learned import LearnedMethod, as_truncated, pad_bottom_right
from inpaint_core.method import MethodResult
from inpaint_core.nn.layers.mi_gan import MiGanConfig, MiGanGenerator
from inpaint_methods.learned_infos import MI_GAN_CONTEXT_MARGIN, MI_GAN_INFO, SHIPPED_WEIGHTS

__all__ = ["CROP_MARGIN", "Crop", "MiGan", "MiGanConfig", "MiGanNetworks", "plan_crops"]

#: Known pixels kept on each side of a hole's box (IOPaint's ``hd_strategy_crop_margin``).
CROP_MARGIN = MI_GAN_CONTEXT_MARGIN
#: IOPaint's hole threshold on a resized 8-bit mask (``mask > 120``).
_MASK_THRESHOLD = 120


@dataclass(frozen=True)
class Crop:
    """A crop of the image, rows ``top:bottom`` and columns ``left:right``."""

    top: int
    bottom: int
    left: int
    right: int


def _grown(box: tuple[int, int, int, int], height: int, width: int, margin: int) -> Crop:
    """IOPaint's ``_crop_box``: ``box = (x, y, x + w, y + h)`` grown by ``margin`` around its
    centre, shifted back inside the image by what overhangs, then cut at the edges."""
    x0, y0, x1, y1 = box
    cx, cy = (x0 + x1) // 2, (y0 + y1) // 2
    grown_w, grown_h = x1 - x0 + 2 * margin, y1 - y0 + 2 * margin
    left_, right_ = cx - grown_w // 2, cx + grown_w // 2
    top_, bottom_ = cy - grown_h // 2, cy + grown_h // 2
    left, right, top, bottom = max(left_, 0), min(right_, width), max(top_, 0), min(bottom_, height)
    if left_ < 0:
        right += -left_
    if right_ > width:
        left -= right_ - width
    if top_ < 0:
        bottom += -top_
    if bottom_ > height:
        top -= bottom_ - height
    return Crop(max(top, 0), min(bottom, height), max(left, 0), min(right, width))


def plan_crops(hole: np.ndarray, side: int, margin: int = CROP_MARGIN) -> list[Crop]:
    """The crops IOPaint runs MI-GAN on (step 1 of the module docstring).

    Args:
        hole: bool ``(H, W)``, True = hole.
        side: the model side ``R``.
        margin: known pixels added on each side of a hole's box.

    Returns:
        ``[whole image]`` for an ``R x R`` image, else one crop per outer contour of the mask,
        in OpenCV's contour order; empty when there is no hole (and the image is not R x R).
    """
    height, width = hole.shape
    if height == side and width == side:
        return [Crop(0, height, 0, width)]
    contours, _ = cv2.findContours(
        hole.astype(np.uint8) * 255, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE
    )
    crops = []
    for contour in contours:
        x, y, w, h = cv2.boundingRect(contour)
        box = (
            min(max(x, 0), width),
            min(max(y, 0), height),
            min(max(x + w, 0), width),
            min(max(y + h, 0), height),
        )
        crops.append(_grown(box, height, width, margin))
    return crops


def _bicubic(x: Tensor, height: int, width: int) -> Tensor:
    """``(B, C, h, w)`` float -> ``(B, C, height, width)``: bicubic (a = -0.75), half-pixel
    centres, no antialiasing: OpenCV's ``INTER_CUBIC`` on float arrays."""
    return F.interpolate(x, size=(height, width), mode="bicubic", align_corners=False)


class MiGanNetworks(nn.Module):
    """The inference networks: the child ``generator`` (a :class:`MiGanGenerator`)."""

    def __init__(self, config: MiGanConfig) -> None:
        super().__init__()
        self.config = config
        self.generator = MiGanGenerator(config)


def _fill_crop(generator: MiGanGenerator, image: Tensor, hole: Tensor) -> Tensor:
    """Steps 2-4 of the module docstring on one crop.

    Args:
        generator: the loaded generator, model side ``R``.
        image: float ``(1, 3, h, w)`` in [0, 1].
        hole: float ``(1, 1, h, w)``, 1 = hole (binary).

    Returns:
        float ``(1, 3, h, w)`` in [0, 1]: the crop's fill (only its hole pixels are used).
    """
    side = generator.config.resolution
    height, width = image.shape[-2:]
    resized = max(height, width) > side
    if resized:
        ratio = side / max(height, width)
        small_h, small_w = int(height * ratio + 0.5), int(width * ratio + 0.5)
        small = _bicubic(image, small_h, small_w)
        levels = (_bicubic(hole * 255.0, small_h, small_w).round()).clamp(0, 255)
        soft = levels / 255.0
        net_hole = (levels > _MASK_THRESHOLD).to(image.dtype)
    else:
        small_h, small_w, small, soft, net_hole = height, width, image, hole, hole
    padded = pad_bottom_right(small, side - small_h, side - small_w, "symmetric")
    padded_hole = pad_bottom_right(net_hole, side - small_h, side - small_w, "symmetric")
    x = torch.cat([0.5 - padded_hole, (padded * 2 - 1) * (1 - padded_hole)], dim=1)
    output = generator(x).float()[..., :small_h, :small_w]
    output = (output * 0.5 + 0.5).clamp(0, 1)
    blended = output * soft + small * (1 - soft)
    if not resized:
        return blended
    return as_truncated(_bicubic(blended, height, width).clamp(0, 1))


class MiGan(LearnedMethod):
    """MI-GAN's inference generator with imported published weights (inference only)."""

    info = MI_GAN_INFO
    config_class = MiGanConfig
    networks_class = MiGanNetworks
    # No training_class: MI-GAN's training distils Co-Mod-GAN on Places2 for 25 M images on
    # eight GPUs.
    published_weights = (
        "run `inpaint weights fetch mi-gan-places2-512-iopaint` (IOPaint's migan_traced.pt), "
        "or download MI-GAN's migan_512_places2.pt (or migan_256_places2.pt, "
        "migan_256_ffhq.pt) from the Google Drive folder linked in "
        "github.com/Picsart-AI-Research/MI-GAN's README and run `inpaint weights import mi-gan "
        "migan_512_places2.pt --output W.safetensors`"
    )
    weights_folder = SHIPPED_WEIGHTS
    #: The smallest model side, 16 channels: run untrained by the inference checks.
    smoke_test_options: ClassVar[Mapping[str, object]] = {"resolution": 128, "ch_max": 16}

    def _refuse_onnx(self) -> None:
        """``backend=onnx`` exports ``predict`` once per input shape; MI-GAN's crops depend on
        the mask, so the exported graph would keep the first mask's crops for every later one."""
        if self.params.get("backend") == "onnx":
            raise ParameterError(
                "method 'mi-gan' cannot run with backend=onnx: its crops around the holes depend "
                "on the mask, which an exported graph cannot follow; use backend=eager or compile"
            )

    def run(self, image: np.ndarray, mask: np.ndarray, rng: np.random.Generator) -> MethodResult:
        """As :meth:`LearnedMethod.run`; ``backend=onnx`` is refused (:meth:`_refuse_onnx`)."""
        self._refuse_onnx()
        return super().run(image, mask, rng)

    def run_batch(
        self, images: list[np.ndarray], masks: list[np.ndarray], seed: int
    ) -> list[np.ndarray | MethodResult]:
        """As :meth:`LearnedMethod.run_batch`; ``backend=onnx`` is refused."""
        self._refuse_onnx()
        return super().run_batch(images, masks, seed)

    def predict(
        self, networks: nn.Module, image: Tensor, mask: Tensor
    ) -> tuple[Tensor, dict[str, Tensor]]:
        """IOPaint's crops around the holes at the model side; see the module docstring.

        Args:
            networks: a :class:`MiGanNetworks`.
            image: float32 ``(1, 3, H, W)`` in [0, 1].
            mask: float32 ``(1, 1, H, W)``; > 0 is hole.

        Returns:
            float ``(1, 3, H, W)`` in [0, 1]: the fill in the holes, ``image`` elsewhere; no
            extras.
        """
        assert isinstance(networks, MiGanNetworks)
        hole = (mask > 0).to(image.dtype)
        output = image.clone()
        crops = plan_crops(hole[0, 0].cpu().numpy() > 0, networks.config.resolution)
        for crop in crops:
            rows, cols = slice(crop.top, crop.bottom), slice(crop.left, crop.right)
            part, part_hole = image[..., rows, cols], hole[..., rows, cols]
            filled = _fill_crop(networks.generator, part, part_hole).to(image.dtype)
            output[..., rows, cols] = torch.where(part_hole > 0, filled, part)
        return output, {}
