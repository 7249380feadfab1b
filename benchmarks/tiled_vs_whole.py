"""How far tiled restoration is from restoring the whole image at once, in the holes.

    python benchmarks/tiled_vs_whole.py [--size 2048] [--method telea] [--tiles 128,256,512]
        [--damage 0.03] [--work /tmp/tiled-vs-whole]

A synthetic mural (``inpaint_core.samples``, undamaged, so the truth is known) gets the
generator's cracks and losses as holes; it is restored once whole (``inpaint``) and once per
tile size with ``restore_scan``, whose small tiles split the long cracks and large losses
into cross-faded pieces. The table gives, per tile size, the hole PSNR (peak 255) against the
truth of both, their difference (the issue's bound is 0.5 dB), the largest absolute pixel
difference between tiled and whole in the holes, and the tiles used.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import numpy as np
import zarr

from inpaint_core import inpaint
from inpaint_core.io import open_scan
from inpaint_core.samples import colour_field, damage_shapes, damage_window, grain_tile, painting
from inpaint_core.tiling.engine import restore_scan


def hole_psnr(restored: np.ndarray, truth: np.ndarray, hole: np.ndarray) -> float:
    """PSNR in dB (peak 255) over the hole pixels of uint8 images."""
    error = restored[hole].astype(np.float64) - truth[hole].astype(np.float64)
    return float(10 * np.log10(255.0**2 / max(np.mean(error**2), 1e-12)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", type=int, default=2048)
    parser.add_argument("--method", default="telea")
    parser.add_argument("--tiles", default="128,256,512")
    parser.add_argument("--damage", type=float, default=0.03)
    parser.add_argument("--work", type=Path, default=Path("/tmp/tiled-vs-whole"))
    args = parser.parse_args()
    rng = np.random.default_rng(2026)
    grain, field = grain_tile(rng), colour_field(args.size, rng)
    cracks, losses = damage_shapes(args.size, args.damage, rng)
    window = slice(0, args.size)
    truth = painting(field, grain, window, window)
    hole = damage_window(cracks, losses, window, window)
    shutil.rmtree(args.work, ignore_errors=True)
    args.work.mkdir(parents=True)
    scan = zarr.create_array(str(args.work / "scan.zarr"), shape=truth.shape,
                             chunks=(512, 512, 3), dtype="uint8")
    scan[...] = truth
    whole = inpaint(truth, hole, args.method)
    reference = hole_psnr(whole, truth, hole)
    print(f"{args.method}, {args.size} px, {100 * hole.mean():.2f} % hole; whole image: "
          f"{reference:.2f} dB in the holes")
    print(f"{'tile':>6} {'tiles':>6} {'tiled dB':>9} {'diff dB':>8} {'max |px| diff':>14}")
    for side in (int(value) for value in args.tiles.split(",")):
        output = args.work / f"tiled-{side}.zarr"
        result = restore_scan(scan, hole, args.method, output, tile=side)
        tiled = open_scan(output).array[...]  # (H, W, 3); stored channel first
        score = hole_psnr(tiled, truth, hole)
        largest = np.abs(tiled[hole].astype(int) - whole[hole].astype(int)).max()
        print(f"{side:>6} {result.tiles:>6} {score:>9.2f} {score - reference:>+8.2f} "
              f"{largest:>14}")


if __name__ == "__main__":
    main()
