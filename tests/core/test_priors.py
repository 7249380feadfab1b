"""The classical fills behind the learned methods' priors: push-pull and the Telea blend."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from inpaint_core.errors import InvalidInputError
from inpaint_core.priors import Prior, opencv_fill, prior_fill, pushpull_fill
from inpaint_methods.glcic import GlcicConfig, GlcicNetworks
from inpaint_methods.partial_conv_unet import PartialConvUnetConfig, PartialConvUnetNetworks


def centre_hole(shape: tuple[int, int], margin: int) -> np.ndarray:
    mask = np.zeros(shape, dtype=bool)
    mask[margin:-margin, margin:-margin] = True
    return mask


@pytest.mark.parametrize("shape", [(64, 64), (37, 50), (1, 9)])
def test_pushpull_keeps_known_pixels_and_fills_a_constant_exactly(shape) -> None:
    image = np.full((*shape, 3), 0.3, dtype=np.float32)
    mask = np.zeros(shape, dtype=bool)
    mask[:, shape[1] // 3 : 2 * shape[1] // 3] = True
    image[mask] = 0.9  # damaged values are ignored
    filled = pushpull_fill(image, mask)
    assert filled.dtype == np.float32 and filled.shape == image.shape
    np.testing.assert_array_equal(filled[~mask], image[~mask])
    np.testing.assert_allclose(filled[mask], 0.3, atol=1e-6)


def test_pushpull_interpolates_a_ramp_smoothly_across_a_large_hole() -> None:
    ramp = np.tile(np.linspace(0.0, 1.0, 96, dtype=np.float32), (96, 1))[:, :, np.newaxis]
    mask = centre_hole((96, 96), 24)
    filled = pushpull_fill(ramp, mask)
    error = np.abs(filled - ramp)[mask]
    assert error.mean() < 0.04  # the hole follows the ramp (0.02), not a flat mean (0.126)
    assert np.abs(ramp[mask] - ramp[~mask].mean()).mean() > 0.12
    assert filled.min() >= 0.0 and filled.max() <= 1.0


def test_pushpull_refuses_an_all_hole_mask() -> None:
    with pytest.raises(InvalidInputError, match="all hole"):
        pushpull_fill(np.zeros((8, 8, 3), np.float32), np.ones((8, 8), bool))


def test_blend_prior_is_the_mean_of_telea_and_pushpull_in_the_hole_only() -> None:
    rng = np.random.default_rng(0)
    image = rng.random((2, 3, 48, 40), dtype=np.float32)
    masks = torch.zeros(2, 1, 48, 40)
    masks[0, :, 10:30, 8:20] = 1
    masks[1, :, 30:44, 20:36] = 1
    images = torch.from_numpy(image)
    filled = prior_fill(images, masks, Prior.BLEND)
    holes = masks[:, 0] > 0.5
    assert torch.equal(filled.permute(0, 2, 3, 1)[~holes], images.permute(0, 2, 3, 1)[~holes])
    for index in range(2):
        host = image[index].transpose(1, 2, 0)
        hole = holes[index].numpy()
        telea = opencv_fill(host, hole, 5, 1)  # cv2.INPAINT_TELEA == 1
        expected = (telea + pushpull_fill(host, hole)) / 2
        got = filled[index].permute(1, 2, 0).numpy()
        np.testing.assert_allclose(got[hole], expected[hole], atol=1e-6)
    telea_only = prior_fill(images, masks, "telea")
    assert not torch.allclose(filled, telea_only)


def test_an_untrained_method_with_the_blend_prior_equals_the_blend() -> None:
    torch.manual_seed(0)
    images = torch.rand(2, 3, 32, 32)
    masks = torch.zeros(2, 1, 32, 32)
    masks[:, :, 8:24, 10:22] = 1
    expected = prior_fill(images, masks, "blend")
    glcic = GlcicNetworks(GlcicConfig(
        base_channels=4, image_size=32, discriminator_channels=4, discriminator_features=8,
        prior="blend",  # type: ignore[arg-type]
    ))
    assert torch.equal(glcic.completion(images, masks), expected)
    unet = PartialConvUnetNetworks(PartialConvUnetConfig(
        base_channels=4, depth=3, prior="blend", texture_loss="none",  # type: ignore[arg-type]
    ))
    assert torch.equal(unet.complete(images, masks), expected)
