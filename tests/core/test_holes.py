"""Training-batch hole helpers: local crops, merging and hole PSNR."""

from __future__ import annotations

import math

import torch

from inpaint_core.testing_learned import box_masks as block_mask
from inpaint_core.trainable.holes import crop_batch, hole_crops, hole_psnr, merge


def test_hole_crops_centre_clamp_and_empty() -> None:
    masks = torch.cat([
        block_mask(64, 30, 40, 20, 30),  # centre (34, 24): fits inside
        block_mask(64, 10, 20, 30, 40),  # centre (14, 34): top clamps to 0
        block_mask(64, 60, 63, 60, 63),  # near the corner: clamps to 64 - 32
        torch.zeros(1, 1, 64, 64),  # empty: the centre crop
    ])
    assert hole_crops(masks, 32) == [(18, 8, 32), (0, 18, 32), (32, 32, 32), (16, 16, 32)]


def test_hole_crops_side_is_limited_by_the_image() -> None:
    masks = torch.zeros(1, 1, 48, 80)
    masks[:, :, 20:30, 60:70] = 1
    assert hole_crops(masks, 128) == [(0, 32, 48)]  # side = min(128, 48, 80)
    assert hole_crops(masks, 16) == [(16, 56, 16)]


def test_crop_batch_takes_each_images_own_box() -> None:
    images = torch.arange(2 * 2 * 8 * 8, dtype=torch.float32).reshape(2, 2, 8, 8)
    crops = crop_batch(images, [(0, 1, 4), (3, 4, 4)])
    assert crops.shape == (2, 2, 4, 4)
    assert torch.equal(crops[0], images[0, :, 0:4, 1:5])
    assert torch.equal(crops[1], images[1, :, 3:7, 4:8])
    masks = block_mask(64, 30, 40, 20, 30, batch=2)
    crops = crop_batch(masks, hole_crops(masks, 32))
    assert crops.shape == (2, 1, 32, 32) and crops.sum() == masks.sum()  # the hole is inside




def test_merge_keeps_known_pixels_and_takes_the_hole() -> None:
    images, output = torch.zeros(1, 3, 8, 8), torch.ones(1, 3, 8, 8)
    masks = block_mask(8, 2, 4, 2, 5)
    merged = merge(output, images, masks)
    assert merged.sum() == 3 * 2 * 3 and torch.equal(merged[:, :, 2:4, 2:5], output[:, :, 2:4, 2:5])


def test_hole_psnr_counts_only_hole_pixels() -> None:
    images = torch.zeros(2, 3, 8, 8)
    output = torch.full((2, 3, 8, 8), 0.5)  # wrong everywhere; only the hole counts
    masks = block_mask(8, 0, 4, 0, 4, batch=2)
    output[:, :, :4, :4] = 0.1  # squared error 0.01 in the hole
    assert math.isclose(float(hole_psnr(output, images, masks)), 20.0, rel_tol=1e-5)
    assert float(hole_psnr(output, images, torch.zeros_like(masks))) == 100.0
