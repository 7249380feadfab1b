"""Image-quality metrics: agreement with scikit-image, known values, masking, refusals."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.ndimage import gaussian_filter
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from inpaint_core.errors import InvalidInputError
from inpaint_core.evaluation.metrics import l1_error, psnr, ssim


def _pair(shape: tuple[int, ...], smooth: bool, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A reference in [0, 1] and a noisy, clipped copy of it."""
    rng = np.random.default_rng(seed)
    reference = rng.random(shape)
    if smooth:  # blurred noise, stretched back to [0, 1]: structure SSIM has to see
        reference = gaussian_filter(reference, (4, 4, 0)[: len(shape)])
        reference = (reference - reference.min()) / np.ptp(reference)
    result = np.clip(reference + rng.normal(0.0, 0.08, shape), 0.0, 1.0)
    return reference, result


def _hole(shape: tuple[int, int]) -> np.ndarray:
    mask = np.zeros(shape, dtype=bool)
    mask[10:30, 15:40] = True
    return mask


def _skimage_ssim(reference: np.ndarray, result: np.ndarray, data_range: float) -> float:
    return structural_similarity(
        reference,
        result,
        gaussian_weights=True,
        sigma=1.5,
        use_sample_covariance=False,
        data_range=data_range,
        channel_axis=-1 if reference.ndim == 3 else None,
    )


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_grey_psnr_matches_skimage(seed: int) -> None:
    reference, result = _pair((48, 64), smooth=False, seed=seed)
    expected = peak_signal_noise_ratio(reference, result, data_range=1.0)
    assert psnr(reference, result) == pytest.approx(expected, rel=1e-12)
    scaled = psnr(reference * 255, result * 255, data_range=255.0)
    assert scaled == pytest.approx(expected, rel=1e-12)


def test_rgb_psnr_is_the_mean_of_channel_psnrs() -> None:
    reference, result = _pair((48, 64, 3), smooth=False)
    result[..., 2] = np.clip(reference[..., 2] + 0.3, 0, 1)  # one channel much worse
    per_channel = [
        peak_signal_noise_ratio(reference[..., c], result[..., c], data_range=1.0) for c in range(3)
    ]
    assert psnr(reference, result) == pytest.approx(np.mean(per_channel), rel=1e-12)
    pooled = peak_signal_noise_ratio(reference, result, data_range=1.0)
    assert psnr(reference, result) > pooled + 1.0  # not the PSNR of the pooled MSE


def test_psnr_known_values() -> None:
    reference = np.full((16, 16, 3), 0.5)
    assert psnr(reference, reference + 0.1) == pytest.approx(20.0, abs=1e-9)
    assert psnr(reference[..., 0], reference[..., 0] - 0.01) == pytest.approx(40.0, abs=1e-9)
    assert psnr(reference, reference.copy()) == float("inf")
    assert psnr(reference.astype(np.float32), reference.astype(np.float32)) == float("inf")


def test_masked_psnr_sees_only_the_hole() -> None:
    reference, result = _pair((48, 64, 3), smooth=False)
    hole = _hole((48, 64))
    value = psnr(reference, result, hole)
    expected = peak_signal_noise_ratio(reference[hole], result[hole], data_range=1.0)
    assert value != pytest.approx(psnr(reference, result))
    changed = result.copy()
    changed[~hole] = 1.0 - changed[~hole]
    assert psnr(reference, changed, hole) == value
    changed[hole] = reference[hole]
    assert psnr(reference, changed, hole) == float("inf")
    grey_value = psnr(reference[..., 0], result[..., 0], hole)
    grey_expected = peak_signal_noise_ratio(reference[hole, 0], result[hole, 0], data_range=1.0)
    assert grey_value == pytest.approx(grey_expected, rel=1e-12)
    assert abs(value - expected) < 1.0  # per-channel mean vs pooled: close for uniform noise


@pytest.mark.parametrize("shape", [(48, 64), (48, 64, 3), (11, 11), (40, 40, 1)])
@pytest.mark.parametrize("smooth", [False, True])
@pytest.mark.parametrize("data_range", [1.0, 255.0])
def test_ssim_matches_skimage(shape: tuple[int, ...], smooth: bool, data_range: float) -> None:
    reference, result = _pair(shape, smooth)
    reference, result = reference * data_range, result * data_range
    expected = _skimage_ssim(reference, result, data_range)
    assert abs(ssim(reference, result, data_range=data_range) - expected) <= 1e-6
    assert 0.0 < expected < 1.0


def test_ssim_of_float32_matches_skimage() -> None:
    reference, result = (array.astype(np.float32) for array in _pair((40, 56, 3), smooth=True))
    assert abs(ssim(reference, result) - _skimage_ssim(reference, result, 1.0)) <= 1e-6


def test_masked_ssim_averages_the_map_over_the_hole() -> None:
    reference, _ = _pair((48, 64, 3), smooth=True)
    result = np.clip(reference + np.random.default_rng(5).normal(0.0, 0.01, reference.shape), 0, 1)
    hole = _hole((48, 64))
    result[hole] = 0.5  # a flat fill: no structure in the hole, light noise around it
    masked, full = ssim(reference, result, hole), ssim(reference, result)
    assert masked < 0.5 < 0.7 < full
    assert ssim(reference, reference.copy(), hole) == pytest.approx(1.0, abs=1e-12)
    far = np.ones((48, 64), dtype=bool)
    far[5:35, 10:45] = False  # more than the 5 px window radius from the hole
    changed = result.copy()
    changed[far] = 1.0 - changed[far]
    assert ssim(reference, changed, hole) == pytest.approx(masked, abs=1e-12)


def test_l1_error() -> None:
    reference = np.full((16, 16, 3), 0.5)
    result = reference + 0.1
    hole = np.zeros((16, 16), dtype=bool)
    hole[4:8, 4:8] = True
    result[hole] = 0.0
    assert l1_error(reference, result, hole) == pytest.approx(0.5)
    assert l1_error(reference, result) == pytest.approx((16 * 0.5 + 240 * 0.1) / 256)
    assert l1_error(reference[..., 0], reference[..., 0]) == 0.0
    assert l1_error(reference, result, hole.astype(np.uint8)) == pytest.approx(0.5)  # labels


@pytest.mark.parametrize("metric", [psnr, ssim, l1_error])
def test_bad_inputs_are_named(metric) -> None:
    image = np.zeros((16, 16, 3))
    with pytest.raises(InvalidInputError, match=r"reference shape \(16, 16, 3\) and result "):
        metric(image, np.zeros((16, 17, 3)))
    with pytest.raises(InvalidInputError, match=r"result dtype uint8 is not supported"):
        metric(image, np.zeros((16, 16, 3), np.uint8))
    with pytest.raises(InvalidInputError, match=r"reference dtype int64 is not supported"):
        metric(np.zeros((16, 16), np.int64), np.zeros((16, 16)))
    with pytest.raises(InvalidInputError, match=r"mask shape \(16, 15\) does not match .*16, 16"):
        metric(image, image, np.ones((16, 15), dtype=bool))
    with pytest.raises(InvalidInputError, match=r"mask dtype float64 is not supported"):
        metric(image, image, np.ones((16, 16)))
    with pytest.raises(InvalidInputError, match=r"mask has no hole pixel"):
        metric(image, image, np.zeros((16, 16), dtype=bool))
    with pytest.raises(InvalidInputError, match=r"has shape \(16,\)"):
        metric(np.zeros(16), np.zeros(16))


def test_bad_data_range_and_small_ssim_images() -> None:
    image = np.zeros((16, 16))
    for bad in (0, -1.0, float("inf"), "1"):
        with pytest.raises(InvalidInputError, match=r"data_range=.* must be a positive number"):
            psnr(image, image, data_range=bad)
        with pytest.raises(InvalidInputError, match=r"data_range=.* must be a positive number"):
            ssim(image, image, data_range=bad)
    with pytest.raises(InvalidInputError, match=r"11x11 pixels at least .* shape \(10, 40, 3\)"):
        ssim(np.zeros((10, 40, 3)), np.zeros((10, 40, 3)))
