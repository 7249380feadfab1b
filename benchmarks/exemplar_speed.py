"""Timing and quality of ``exemplar_fill`` on one core, with cv2.inpaint (Telea) for reference.

Fills a 256x256 RGB astronaut (skimage.data) with a ~20% hole, both a centred square and
thick random strokes, and prints wall time, hole fraction, iterations and the PSNR of the hole
region against the ground truth. Run from the repository root:

    PYTHONPATH=core:plugins/method_registry python benchmarks/exemplar_speed.py
"""

from __future__ import annotations

import os

# One core, as the target is stated for; set before numpy loads its BLAS / threads.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import logging  # noqa: E402
import time  # noqa: E402

import cv2  # noqa: E402
import numpy as np  # noqa: E402
from skimage import data, transform  # noqa: E402

from inpaint_methods.exemplar import exemplar_fill  # noqa: E402


class _IterationCounter(logging.Handler):
    """Picks the iteration count out of exemplar_fill's debug record."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.iterations = -1

    def emit(self, record: logging.LogRecord) -> None:
        self.iterations = getattr(record, "iterations", self.iterations)


def _square_mask(size: int, fraction: float) -> np.ndarray:
    side = round(size * fraction**0.5)
    mask = np.zeros((size, size), bool)
    lo = (size - side) // 2
    mask[lo:lo + side, lo:lo + side] = True
    return mask


def _stroke_mask(size: int, fraction: float, seed: int) -> np.ndarray:
    """Thick random polyline strokes, added until the hole reaches ``fraction``."""
    rng = np.random.default_rng(seed)
    mask = np.zeros((size, size), np.uint8)
    while mask.mean() < fraction:
        pt = rng.integers(0, size, 2)
        width = int(rng.integers(size // 40, size // 16))
        for _ in range(int(rng.integers(3, 7))):
            step = rng.normal(0, size / 8, 2).astype(int)
            nxt = np.clip(pt + step, 0, size - 1)
            cv2.line(mask, (int(pt[0]), int(pt[1])), (int(nxt[0]), int(nxt[1])), 1, width)
            pt = nxt
    return mask.astype(bool)


def _psnr(out: np.ndarray, truth: np.ndarray, mask: np.ndarray) -> float:
    mse = float(np.mean((out[mask].astype(np.float64) - truth[mask]) ** 2))
    return 10.0 * np.log10(1.0 / mse) if mse > 0 else float("inf")


def _telea(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    u8 = np.round(image * 255).astype(np.uint8)
    out = cv2.inpaint(u8, mask.astype(np.uint8), 3, cv2.INPAINT_TELEA)
    return out.astype(np.float32) / 255


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--fraction", type=float, default=0.2)
    parser.add_argument("--repeat", type=int, default=3, help="runs per case; best time shown")
    parser.add_argument("--patch-size", type=int, default=9)
    parser.add_argument("--search-radius", type=int, default=48)
    args = parser.parse_args()

    counter = _IterationCounter()
    log = logging.getLogger("inpaint_methods.exemplar")
    log.setLevel(logging.DEBUG)
    log.addHandler(counter)
    cv2.setNumThreads(1)

    size = args.size
    truth = transform.resize(data.astronaut(), (size, size), anti_aliasing=True)
    truth = np.ascontiguousarray(truth, dtype=np.float32)
    cases = {
        "centred square": _square_mask(size, args.fraction),
        "random strokes": _stroke_mask(size, args.fraction, seed=1),
    }
    print(f"astronaut {size}x{size} RGB, patch_size={args.patch_size}, "
          f"search_radius={args.search_radius}, best of {args.repeat}, "
          f"OMP_NUM_THREADS={os.environ['OMP_NUM_THREADS']}")
    print(f"{'case':<16} {'hole':>6} {'iters':>6} {'exemplar s':>11} {'PSNR dB':>8} "
          f"{'telea s':>8} {'PSNR dB':>8}")
    for name, mask in cases.items():
        damaged = np.where(mask[..., None], 0.0, truth).astype(np.float32)
        times = []
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            out = exemplar_fill(damaged, mask, patch_size=args.patch_size,
                                search_radius=args.search_radius, rng=np.random.default_rng(0))
            times.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        telea = _telea(damaged, mask)
        t_telea = time.perf_counter() - t0
        print(f"{name:<16} {mask.mean():>6.1%} {counter.iterations:>6d} {min(times):>11.3f} "
              f"{_psnr(out, truth, mask):>8.2f} {t_telea:>8.3f} {_psnr(telea, truth, mask):>8.2f}")


if __name__ == "__main__":
    main()
