"""Exemplar-based inpainting after Criminisi, Pérez & Toyama (2004).

A. Criminisi, P. Pérez and K. Toyama, "Region filling and object removal by exemplar-based
image inpainting", IEEE Transactions on Image Processing 13(9):1200-1212, 2004.

The hole is filled from its boundary inwards, one patch at a time. Each step takes the fill-front
pixel of highest priority P = C * D (C: confidence, the share of trusted pixels around it; D: how
strongly an image edge runs into the hole there), finds the source patch with the least SSD over
the target's known pixels among patches lying wholly in the original known region, and copies
that patch's pixels into the target's hole pixels. Sources of equal SSD are told apart by how
far the pixels they would copy stray from the target's known mean.

Each step only touches the neighbourhood of the patch it fills: priorities are refreshed
locally, the best front pixel is found through per-tile maxima, and the SSD of every candidate in
the search window comes from one batch of FFT correlations, using
SSD = sum(M*S^2) - 2*sum(M*T*S) + sum(M*T^2) (M: known mask, T: target, S: source).
"""

from __future__ import annotations

import functools
import logging
import time

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from inpaint_core.arrays import is_integer
from inpaint_core.errors import InvalidInputError, ParameterError

__all__ = ["exemplar_fill"]

logger = logging.getLogger(__name__)

_ALPHA = 1.0  # data-term normalisation; the paper's 255 is for 8-bit images, ours are in [0, 1]
_EPS = 1e-3  # added to D so flat regions (zero isophote) still get a priority ordered by C
_TILE = 16  # side of the tiles whose priority maxima are kept, so picking never scans the image
_TIE_RTOL = 1e-9  # SSDs this close count as ties: FFT rounding is ~1e-13, far below real gaps


def exemplar_fill(
    image: np.ndarray,
    mask: np.ndarray,
    *,
    patch_size: int = 9,
    search_radius: int = 48,
    rng: np.random.Generator,
) -> np.ndarray:
    """Fill the hole of ``image`` by copying patches from its known region.

    Args:
        image: float32 array (H, W, C), C in {1, 3}, values in [0, 1]. Hole pixels are ignored.
        mask: bool array (H, W); True marks the hole. Needs at least one known pixel.
        patch_size: odd side (>= 3) of the square patches, in pixels.
        search_radius: source patch centres are sought within this Chebyshev distance of the
            target centre (the window grows if it holds no valid source); 0 searches everywhere.
        rng: used only to break exact ties (equal priorities; sources equal in SSD and in
            spread of the copied pixels), so the result is deterministic per seed.

    Returns:
        float32 array (H, W, C) in [0, 1]; known pixels are bit-identical to ``image``.

    Raises:
        ParameterError: ``patch_size`` even or < 3, or ``search_radius`` negative.
        InvalidInputError: bad image or mask, no known pixel, or no p x p source patch.
    """
    _validate(image, mask, patch_size, search_radius)
    if not mask.any():
        return image.copy()
    filler = _Filler(image, mask, int(patch_size), int(search_radius), rng)
    return filler.run()


def _validate(image: np.ndarray, mask: np.ndarray, patch_size: int, search_radius: int) -> None:
    """Raise ParameterError / InvalidInputError naming the bad value and the fix."""
    if not is_integer(patch_size) or patch_size < 3 or patch_size % 2 == 0:
        raise ParameterError(f"patch_size={patch_size!r} must be odd and >= 3")
    if not is_integer(search_radius) or search_radius < 0:
        raise ParameterError(
            f"search_radius={search_radius!r} must be an integer >= 0 (0 searches the whole image)"
        )
    if not isinstance(image, np.ndarray):
        raise InvalidInputError(f"image is {type(image).__name__}; expected a numpy array")
    if image.dtype != np.float32 or image.ndim != 3 or image.shape[2] not in (1, 3):
        raise InvalidInputError(
            f"image is {image.dtype} {image.shape}; expected float32 (H, W, C) with C in {{1, 3}}"
        )
    if not isinstance(mask, np.ndarray) or mask.dtype != np.bool_:
        desc = mask.dtype if isinstance(mask, np.ndarray) else type(mask).__name__
        raise InvalidInputError(f"mask is {desc}; expected a bool array (True = hole)")
    if mask.shape != image.shape[:2]:
        raise InvalidInputError(f"mask shape {mask.shape} does not match image {image.shape[:2]}")
    if mask.all():
        raise InvalidInputError("mask has no known pixel; leave some pixels False (known)")


def _box_sum(a: np.ndarray, p: int) -> np.ndarray:
    """Sums of all p x p windows of 2-D ``a``: shape (H - p + 1, W - p + 1), window at top-left."""
    s = np.zeros((a.shape[0] + 1, a.shape[1] + 1))
    s[1:, 1:] = a.cumsum(0).cumsum(1)
    return s[p:, p:] - s[:-p, p:] - s[p:, :-p] + s[:-p, :-p]


@functools.lru_cache(maxsize=512)
def _fft_len(n: int) -> int:
    """Smallest 5-smooth integer >= n: FFT sizes pocketfft handles fastest."""
    while True:
        m = n
        for f in (2, 3, 5):
            while m % f == 0:
                m //= f
        if m == 1:
            return n
        n += 1


def _correlate(fwin: np.ndarray, kern: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """sum_c of the correlations of window channels with kernels (c, p, p), full size ``shape``.

    Convolution with the flipped kernel is correlation; its 'valid' part starts at p - 1 and
    never wraps as ``shape`` >= the window. The kernel's zero rows skip the column FFT."""
    fk = np.fft.fft(np.fft.rfft(kern[:, ::-1, ::-1], shape[1], axis=2), shape[0], axis=1)
    return np.fft.irfft2((fwin * fk).sum(0), shape)


class _Filler:
    """State of one fill. Arrays are padded by ``m`` (>= half + 1) so patch and 3x3 reads near
    the border never need clipping: padding counts as neither known nor hole, which clips the
    target patch to the image."""

    def __init__(self, image: np.ndarray, mask: np.ndarray, p: int, radius: int,
                 rng: np.random.Generator) -> None:
        self.H, self.W, self.C = image.shape
        self.p, self.h, self.radius, self.rng = p, p // 2, radius, rng
        self.image, self.m = image, self.h + 1
        H, W, h, m = self.H, self.W, self.h, self.m
        # A valid source centre has its whole patch in the image and outside the original hole.
        valid = np.zeros((H, W), bool)
        if p <= min(H, W):
            valid[h:H - h, h:W - h] = _box_sum(mask.astype(np.float64), p) < 0.5
        if not valid.any():
            raise InvalidInputError(
                f"no {p}x{p} source patch lies wholly in the known region of the {H}x{W} image; "
                f"use a smaller patch_size (now {p})")
        self.valid = valid
        self.valid_cum = np.pad(valid.cumsum(0).cumsum(1), ((1, 0), (1, 0)))
        # Sources never change (they exclude the hole): channels and squared norm, as float64 so
        # the FFT expansion keeps exact matches at ~1e-13.
        src = np.where(mask[..., None], 0.0, image.astype(np.float64))
        self.src = np.concatenate([src.transpose(2, 0, 1), (src * src).sum(2)[None]])

        T = _TILE
        Hp, Wp = -(-(H + 2 * m) // T) * T, -(-(W + 2 * m) // T) * T
        pads = ((m, Hp - H - m), (m, Wp - W - m))
        # Hole values (maybe NaN) are zeroed, never read.
        self.work = np.pad(np.where(mask[..., None], np.float32(0), image), (*pads, (0, 0)))
        self.hole, self.known = np.pad(mask, pads), np.pad(~mask, pads)
        self.conf = self.known.astype(np.float64)
        self.grey = self.work.mean(2, dtype=np.float64)
        self.gx, self.gy, self.mag = (np.zeros((Hp, Wp)) for _ in range(3))
        self.prio = np.full((Hp, Wp), -np.inf)
        self.tmax = np.full((Hp // T, Wp // T), -np.inf)
        # In-image pixels of each (clipped) patch, indexed by top-left corner.
        self.area = _box_sum(np.pad(np.ones((H, W)), pads), p)
        # Live views: patch windows indexed by top-left corner (centre - h), 3x3 by centre - 1.
        self.conf_win = sliding_window_view(self.conf, (p, p))
        self.mag_win = sliding_window_view(self.mag, (p, p))
        self.known3 = sliding_window_view(self.known, (3, 3))

    def _clip(self, y0: int, y1: int, x0: int, x1: int) -> tuple[int, int, int, int]:
        m = self.m
        return max(y0, m), min(y1, m + self.H), max(x0, m), min(x1, m + self.W)

    def _gradients(self, y0: int, y1: int, x0: int, x1: int) -> None:
        """Central differences of the grey image, kept only where all pixels used are known."""
        g, k, win = self.grey, self.known, (slice(y0, y1), slice(x0, x1))
        okx = k[win] & k[y0:y1, x0 - 1:x1 - 1] & k[y0:y1, x0 + 1:x1 + 1]
        oky = k[win] & k[y0 - 1:y1 - 1, x0:x1] & k[y0 + 1:y1 + 1, x0:x1]
        self.gx[win] = np.where(okx, 0.5 * (g[y0:y1, x0 + 1:x1 + 1] - g[y0:y1, x0 - 1:x1 - 1]), 0)
        self.gy[win] = np.where(oky, 0.5 * (g[y0 + 1:y1 + 1, x0:x1] - g[y0 - 1:y1 - 1, x0:x1]), 0)
        self.mag[win] = self.gx[win] ** 2 + self.gy[win] ** 2

    def _refresh(self, y0: int, y1: int, x0: int, x1: int) -> None:
        """Recompute front membership and priority inside a region, then its tile maxima."""
        h, p, T = self.h, self.p, _TILE
        front = self.hole[y0:y1, x0:x1] & self.known3[y0 - 1:y1 - 1, x0 - 1:x1 - 1].any((2, 3))
        self.prio[y0:y1, x0:x1] = -np.inf
        ys, xs = np.nonzero(front)
        if ys.size:
            ys, xs = ys + y0, xs + x0
            conf = self.conf_win[ys - h, xs - h].sum((1, 2)) / self.area[ys - h, xs - h]
            # Isophote: the strongest known gradient in the patch, rotated by 90 degrees.
            j = self.mag_win[ys - h, xs - h].reshape(ys.size, -1).argmax(1)
            ry, rx = ys - h + j // p, xs - h + j % p
            gy, gx = self.gy[ry, rx], self.gx[ry, rx]
            # Normal: Sobel of the known indicator (its sign is irrelevant under abs()).
            k = self.known3[ys - 1, xs - 1].astype(np.float64)
            nx = (k[:, :, 2] - k[:, :, 0]) @ np.array([1.0, 2.0, 1.0])
            ny = (k[:, 2, :] - k[:, 0, :]) @ np.array([1.0, 2.0, 1.0])
            norm = np.hypot(nx, ny)
            dot = np.abs(-gy * nx + gx * ny) / np.where(norm > 0, norm, np.inf)
            self.prio[ys, xs] = conf * (dot / _ALPHA + _EPS)
        ty0, ty1, tx0, tx1 = y0 // T, -(-y1 // T), x0 // T, -(-x1 // T)
        block = self.prio[ty0 * T:ty1 * T, tx0 * T:tx1 * T]
        self.tmax[ty0:ty1, tx0:tx1] = block.reshape(ty1 - ty0, T, tx1 - tx0, T).max((1, 3))

    def _pick(self) -> tuple[int, int] | None:
        """Highest-priority front pixel (padded coordinates), or None once the hole is filled."""
        best, T = self.tmax.max(), _TILE
        if best == -np.inf:
            return None
        ty, tx = np.nonzero(self.tmax == best)
        tiles = self.prio.reshape(self.tmax.shape[0], T, self.tmax.shape[1], T)[ty, :, tx, :]
        kk, yy, xx = np.nonzero(tiles == best)
        i = int(self.rng.integers(kk.size)) if kk.size > 1 else 0
        return int(ty[kk[i]] * T + yy[i]), int(tx[kk[i]] * T + xx[i])

    def _window(self, iy: int, ix: int) -> tuple[int, int, int, int]:
        """Inclusive bounds of source centres to search around image pixel (iy, ix)."""
        h, H, W = self.h, self.H, self.W
        r = self.radius if self.radius > 0 else max(H, W)
        while True:
            y0, y1 = max(iy - r, h), min(iy + r, H - 1 - h)
            x0, x1 = max(ix - r, h), min(ix + r, W - 1 - h)
            c = self.valid_cum  # integral image: counts valid centres in O(1)
            if y0 <= y1 and x0 <= x1 and (
                c[y1 + 1, x1 + 1] - c[y0, x1 + 1] - c[y1 + 1, x0] + c[y0, x0]
            ) > 0:
                return y0, y1, x0, x1
            r *= 2  # no valid source in reach: widen until it spans the image (always has one)

    def _search(self, py: int, px: int) -> tuple[int, int]:
        """Centre (image coordinates) of the least-SSD valid source patch for target (py, px)."""
        h, p = self.h, self.p
        y0, y1, x0, x1 = self._window(py - self.m, px - self.m)
        tgt = self.work[py - h:py + h + 1, px - h:px + h + 1].astype(np.float64)
        msk = self.known[py - h:py + h + 1, px - h:px + h + 1].astype(np.float64)
        kern = np.concatenate([(-2.0 * msk[..., None] * tgt).transpose(2, 0, 1), msk[None]])
        win = self.src[:, y0 - h:y1 + h + 1, x0 - h:x1 + h + 1]
        shape = (_fft_len(win.shape[1]), _fft_len(win.shape[2]))
        fwin = np.fft.rfft2(win, shape)
        crop = (slice(p - 1, p + y1 - y0), slice(p - 1, p + x1 - x0))
        t2 = float((msk[..., None] * tgt * tgt).sum())
        ssd = _correlate(fwin, kern, shape)[crop] + t2
        ssd = np.where(self.valid[y0:y1 + 1, x0:x1 + 1], ssd, np.inf).ravel()
        ties = np.flatnonzero(ssd <= ssd.min() + _TIE_RTOL * (1.0 + t2))
        if ties.size > 1:
            # Equal SSD (flat or periodic context) says nothing about the pixels to be copied.
            # Prefer sources whose copied pixels stay closest to the target's known mean, so a
            # flat context does not pull phantom edges into the hole; the rng takes the rest.
            hol = self.hole[py - h:py + h + 1, px - h:px + h + 1].astype(np.float64)
            mu = (msk[..., None] * tgt).sum((0, 1)) / msk.sum()
            kern = np.concatenate([-2.0 * hol[None] * mu[:, None, None], hol[None]])
            spread = _correlate(fwin, kern, shape)[crop].ravel()[ties]
            ties = ties[spread <= spread.min() + _TIE_RTOL * (1.0 + t2)]
        i = ties[int(self.rng.integers(ties.size))] if ties.size > 1 else ties[0]
        return y0 + int(i) // (x1 - x0 + 1), x0 + int(i) % (x1 - x0 + 1)

    def _fill_at(self, py: int, px: int) -> None:
        """Fill the hole pixels of the patch centred at (py, px), then update what they touch."""
        h, (qy, qx) = self.h, self._search(py, px)
        conf = self.conf_win[py - h, px - h].sum() / self.area[py - h, px - h]
        tw = (slice(py - h, py + h + 1), slice(px - h, px + h + 1))
        fill = self.hole[tw].copy()  # padding is not hole, so this clips the patch to the image
        src = self.image[qy - h:qy + h + 1, qx - h:qx + h + 1]
        self.work[tw][fill] = src[fill]
        self.grey[tw][fill] = src[fill].mean(1, dtype=np.float64)
        self.conf[tw][fill] = conf
        self.hole[tw][fill] = False
        self.known[tw][fill] = True
        self._gradients(*self._clip(py - h - 1, py + h + 2, px - h - 1, px + h + 2))
        # Confidence and isophote reach a patch away, the front and normals one pixel.
        r = 2 * h + 1
        self._refresh(*self._clip(py - r, py + r + 1, px - r, px + r + 1))

    def run(self) -> np.ndarray:
        """Fill the whole hole; returns the float32 (H, W, C) result."""
        t0, m, iterations = time.perf_counter(), self.m, 0
        n_hole = int(self.hole.sum())
        self._gradients(*self._clip(0, self.hole.shape[0], 0, self.hole.shape[1]))
        self._refresh(*self._clip(0, self.hole.shape[0], 0, self.hole.shape[1]))
        while (pick := self._pick()) is not None:
            self._fill_at(*pick)
            iterations += 1
        logger.debug("exemplar_fill: %d hole pixels, %d iterations, %.3f s", n_hole, iterations,
                     time.perf_counter() - t0, extra={"iterations": iterations})
        return self.work[m:m + self.H, m:m + self.W].copy()
