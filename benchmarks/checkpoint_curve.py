"""Hole PSNR of every checkpoint of a training run against ``telea``, on held-out images.

    python benchmarks/checkpoint_curve.py --run runs/edge-gan-lite [--method edge-gan]
        [--data benchmarks/heldout] [--limit 30] [--size 256]

For each ``step-*.safetensors`` under ``RUN/checkpoints`` (and the run's inference weights),
every image is scored with the survey's two hardest masks, centre 25 % and free-form 40 %
(seeded exactly as ``inpaint evaluate`` does), and the mean hole PSNR is printed beside
``telea``'s on the same cases: the curve of quality against training steps. A run trained
with ``prior=blend`` also gets the row of its untrained starting point, ``telea-pushpull``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from inpaint_core import inpaint
from inpaint_core.evaluation.metrics import psnr
from inpaint_core.evaluation.runner import case_seed, load_square
from inpaint_core.io.images import find_images
from inpaint_core.masks import make_mask

CASES = (("centre", 0.25, "centre 25%"), ("free_form", 0.40, "free_form 40%"))


def cases(data: Path, size: int, limit: int) -> list[tuple[np.ndarray, np.ndarray, int]]:
    """``(truth, hole, case)`` for each image and hard mask; case 0 = centre, 1 = free-form."""
    out = []
    for path in find_images(data, "held-out folder")[:limit]:
        truth = load_square(path, size)
        for index, (kind, ratio, label) in enumerate(CASES):
            hole = make_mask(kind, (size, size), ratio, case_seed(0, path.name, label))
            out.append((truth, hole, index))
    return out


def score(items: list, method: str, **params: object) -> tuple[float, float]:
    """Mean hole PSNR on the centre and the free-form cases."""
    sums, counts = [0.0, 0.0], [0, 0]
    for truth, hole, index in items:
        damaged = truth.copy()
        damaged[hole] = 0.0
        result = inpaint(damaged, hole, method, **params)
        sums[index] += psnr(truth, result, hole)
        counts[index] += 1
    return sums[0] / max(counts[0], 1), sums[1] / max(counts[1], 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--run", type=Path, required=True)
    parser.add_argument("--method", default="edge-gan")
    parser.add_argument("--data", type=Path, default=Path(__file__).parent / "heldout")
    parser.add_argument("--limit", type=int, default=30, help="images used")
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--every", type=int, default=1, help="score every Nth checkpoint")
    args = parser.parse_args()
    items = cases(args.data, args.size, args.limit)
    base = score(items, "telea")
    print(f"{len(items) // 2} images; hole PSNR (dB), centre 25% / free-form 40%")
    print(f"{'weights':<28} {'centre':>7} {'free':>7} {'d_centre':>9} {'d_free':>7}")
    print(f"{'telea':<28} {base[0]:7.2f} {base[1]:7.2f}")
    weights = sorted((args.run / "checkpoints").glob("step-*.safetensors"))[:: args.every]
    final = args.run / f"{args.method}.safetensors"
    sidecars = [path.with_suffix(".json") for path in [*weights, final] if path.exists()]
    prior = json.loads(sidecars[0].read_text())["config"].get("prior") if sidecars else None
    if prior == "blend":  # what the untrained network gives: the rows below add training's part
        own = score(items, "telea-pushpull")
        print(f"{'prior (telea-pushpull)':<28} {own[0]:7.2f} {own[1]:7.2f} "
              f"{own[0] - base[0]:+9.2f} {own[1] - base[1]:+7.2f}")
    for path in [*weights, *([final] if final.exists() else [])]:
        step = json.loads(path.with_suffix(".json").read_text())["step"]
        got = score(items, args.method, weights=str(path), device="cpu")
        label = f"{path.name} (step {step})"
        print(f"{label:<28} {got[0]:7.2f} {got[1]:7.2f} {got[0] - base[0]:+9.2f} "
              f"{got[1] - base[1]:+7.2f}")


if __name__ == "__main__":
    main()
