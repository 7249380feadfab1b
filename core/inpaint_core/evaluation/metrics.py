"""Image-quality metrics of the survey: PSNR, SSIM and L1 error, over an image or its holes.

Every metric takes a reference and a result of the same shape, ``(H, W)`` or ``(H, W, C)``,
float with values in [0, ``data_range``], and an optional mask ``(H, W)`` (bool, or integer
labels where non-zero is a hole) that restricts the score to the hole pixels: scoring only the
filled region keeps the untouched known pixels from inflating the numbers.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.ndimage import gaussian_filter

from inpaint_core.arrays import check_mask
from inpaint_core.errors import InvalidInputError

# SSIM after Wang et al. (2004): Gaussian weights of sigma 1.5 cut at 3.5 sigma (an 11-tap
# window, the same as skimage's gaussian_weights=True) and the stabilising constants K1, K2.
_SIGMA = 1.5
_TRUNCATE = 3.5
_RADIUS = int(_TRUNCATE * _SIGMA + 0.5)  # 5, the half width scipy gives the window
_K1, _K2 = 0.01, 0.03


def _prepare(
    reference: object, result: object, mask: object | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Check the pair and return both as float64 ``(H, W, C)``, the mask as bool or None."""
    arrays = []
    for name, image in (("reference", reference), ("result", result)):
        array = np.asarray(image)
        if array.dtype.kind != "f":
            raise InvalidInputError(
                f"{name} dtype {array.dtype} is not supported; metrics take float images in "
                "[0, data_range] (convert integers first, e.g. uint8 / 255)"
            )
        if array.ndim not in (2, 3) or 0 in array.shape:
            raise InvalidInputError(f"{name} has shape {array.shape}; expected (H, W) or (H, W, C)")
        arrays.append(array)
    if arrays[0].shape != arrays[1].shape:
        raise InvalidInputError(
            f"reference shape {arrays[0].shape} and result shape {arrays[1].shape} differ"
        )
    if mask is not None:
        mask = check_mask(mask, arrays[0].shape)
        if not mask.any():
            raise InvalidInputError("mask has no hole pixel; there is nothing to score")
    # float64 throughout: float32 sums over large images lose the digits PSNR differences need
    colour = [a.astype(np.float64).reshape(*a.shape[:2], -1) for a in arrays]
    return colour[0], colour[1], mask


def _check_range(data_range: object) -> float:
    real = (int, float, np.integer, np.floating)
    if isinstance(data_range, bool) or not isinstance(data_range, real):
        raise InvalidInputError(f"data_range={data_range!r} must be a positive number")
    if not (math.isfinite(data_range) and data_range > 0):
        raise InvalidInputError(f"data_range={data_range} must be a positive number")
    return float(data_range)


def psnr(
    reference: np.ndarray,
    result: np.ndarray,
    mask: np.ndarray | None = None,
    data_range: float = 1.0,
) -> float:
    """Peak signal-to-noise ratio in dB: ``10 log10(data_range**2 / MSE)``, as in the survey.

    Colour images are scored per channel and the per-channel PSNRs averaged (the survey's
    "mean over channels"); this is not the PSNR of the MSE pooled over channels, which it
    exceeds when channels differ. For ``(H, W)`` images the two agree and match
    ``skimage.metrics.peak_signal_noise_ratio``.

    Args:
        reference: float ``(H, W)`` or ``(H, W, C)`` in [0, data_range], the ground truth.
        result: float, the same shape, the inpainted image.
        mask: ``(H, W)`` bool, or None for the whole image; the MSE is then taken over the
            hole (True) pixels only.
        data_range: the largest possible pixel value (1.0 for images in [0, 1]).

    Returns:
        PSNR in dB; ``inf`` where a channel's MSE is 0 (identical pixels).

    Raises:
        InvalidInputError: for integer or mismatched inputs, a mask of the wrong shape or with
            no hole, or a non-positive data_range.
    """
    peak = _check_range(data_range)
    ref, res, mask = _prepare(reference, result, mask)
    squared = (ref - res) ** 2
    mse = squared[mask].mean(axis=0) if mask is not None else squared.mean(axis=(0, 1))
    with np.errstate(divide="ignore"):  # MSE 0 -> inf dB, the defined answer for a perfect fill
        per_channel = 10.0 * np.log10(peak**2 / mse)
    return float(per_channel.mean())


def _ssim_map(x: np.ndarray, y: np.ndarray, peak: float) -> np.ndarray:
    """Return the SSIM of every pixel of two float64 ``(H, W)`` planes."""

    def blur(plane: np.ndarray) -> np.ndarray:
        return gaussian_filter(plane, _SIGMA, mode="reflect", truncate=_TRUNCATE)

    mean_x, mean_y = blur(x), blur(y)
    # Population (not sample) covariances, as Wang et al.: the Gaussian weights sum to 1.
    var_x = blur(x * x) - mean_x**2
    var_y = blur(y * y) - mean_y**2
    covariance = blur(x * y) - mean_x * mean_y
    c1, c2 = (_K1 * peak) ** 2, (_K2 * peak) ** 2
    numerator = (2 * mean_x * mean_y + c1) * (2 * covariance + c2)
    return numerator / ((mean_x**2 + mean_y**2 + c1) * (var_x + var_y + c2))


def ssim(
    reference: np.ndarray,
    result: np.ndarray,
    mask: np.ndarray | None = None,
    data_range: float = 1.0,
) -> float:
    """Structural similarity (Wang et al. 2004), per channel and averaged over channels.

    Uses Gaussian windows (sigma 1.5, 11 taps), K1 = 0.01, K2 = 0.03 and population
    covariances. Without a mask this is ``skimage.metrics.structural_similarity(reference,
    result, gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
    data_range=data_range, channel_axis=-1)`` (no channel axis for ``(H, W)``): the mean of
    the SSIM map less a 5-pixel border, where the window hangs over the edge.

    With a mask, the SSIM map (windows still see the known pixels around the hole) is averaged
    over the hole pixels only, the border included: holes often touch the image edge, and
    cropping it would drop them. So an all-True mask differs slightly from no mask.

    Args:
        reference: float ``(H, W)`` or ``(H, W, C)`` in [0, data_range], 11x11 at least.
        result: float, the same shape.
        mask: ``(H, W)`` bool, or None for the whole image.
        data_range: the largest possible pixel value (1.0 for images in [0, 1]).

    Returns:
        The mean SSIM, at most 1.0 (identical images).

    Raises:
        InvalidInputError: as :func:`psnr`, and for images smaller than the 11x11 window.
    """
    peak = _check_range(data_range)
    ref, res, mask = _prepare(reference, result, mask)
    if min(ref.shape[:2]) < 2 * _RADIUS + 1:
        raise InvalidInputError(
            f"SSIM needs images of {2 * _RADIUS + 1}x{2 * _RADIUS + 1} pixels at least "
            f"(its Gaussian window); got shape {np.shape(reference)}"
        )
    scores = []
    for channel in range(ref.shape[2]):
        ssim_map = _ssim_map(ref[:, :, channel], res[:, :, channel], peak)
        inner = ssim_map[_RADIUS:-_RADIUS, _RADIUS:-_RADIUS]
        scores.append(ssim_map[mask].mean() if mask is not None else inner.mean())
    return float(np.mean(scores))


def l1_error(reference: np.ndarray, result: np.ndarray, mask: np.ndarray | None = None) -> float:
    """Mean absolute error over all pixels and channels, or over the hole pixels of ``mask``.

    Args:
        reference: float ``(H, W)`` or ``(H, W, C)``, the ground truth.
        result: float, the same shape.
        mask: ``(H, W)`` bool, or None for the whole image.

    Returns:
        The mean of ``|reference - result|``, in the images' units (0 for identical images).

    Raises:
        InvalidInputError: for integer or mismatched inputs, or a bad mask.
    """
    ref, res, mask = _prepare(reference, result, mask)
    absolute = np.abs(ref - res)
    return float(absolute[mask].mean() if mask is not None else absolute.mean())
