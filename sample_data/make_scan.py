"""Make a large synthetic damaged "mural" scan as zarr, chunk by chunk, with its damage mask.

    python sample_data/make_scan.py [--size 8192] [--out sample_data/mural] [--chunk 1024]
        [--seed 2026] [--damage 0.02] [--pyramid] [--overwrite]

Writes two zarr v3 arrays: ``OUT/scan.zarr`` (uint8 ``(size, size, 3)``) and ``OUT/mask.zarr``
(bool ``(size, size)``, True = damaged), both chunked ``(chunk, chunk)``. With ``--pyramid``,
``OUT/scan.zarr`` is an OME-Zarr group instead: level ``0`` plus a 2x mean pyramid, as scanning
pipelines deliver them (``inpaint restore`` then reuses the pyramid's intact chunks).

The painting is a smooth field of pigment regions (a small random colour field, upsampled) with
brush-stroke grain from a seamless periodic texture; the damage is long thin cracks (random
walks that keep a drifting heading, 1-3 px wide) and flaking losses (irregular blobs), painted
in a plaster colour exactly where the mask is True. ``--damage`` is the target damaged fraction
(cracks and losses together, approximately). Every chunk is computed from global coordinates, so
chunks agree at their borders and memory stays at a few chunks whatever ``--size`` is (32768 for
benchmarks).
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import numpy as np

from inpaint_core.samples import (
    PLASTER,
    colour_field,
    damage_shapes,
    damage_window,
    grain_tile,
    painting,
)


def main() -> None:
    import zarr

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", type=int, default=8192)
    parser.add_argument("--chunk", type=int, default=1024)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "mural")
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--damage", type=float, default=0.02)
    parser.add_argument("--pyramid", action="store_true", help="write an OME-Zarr pyramid")
    parser.add_argument("--overwrite", action="store_true")
    args = parser.parse_args()
    if args.out.exists():
        if not args.overwrite:
            raise SystemExit(f"{args.out} exists; pass --overwrite to replace it")
        shutil.rmtree(args.out)
    rng = np.random.default_rng(args.seed)
    grain, field = grain_tile(rng), colour_field(args.size, rng)
    cracks, losses = damage_shapes(args.size, args.damage, rng)
    shape = (args.size, args.size)
    if args.pyramid:
        group = zarr.open_group(str(args.out / "scan.zarr"), mode="w-")
        scan = group.create_array("0", shape=(*shape, 3), chunks=(args.chunk, args.chunk, 3),
                                  dtype="uint8")  # fmt: skip
    else:
        scan = zarr.create_array(store=str(args.out / "scan.zarr"), shape=(*shape, 3),
                                 chunks=(args.chunk, args.chunk, 3), dtype="uint8")  # fmt: skip
    mask = zarr.create_array(store=str(args.out / "mask.zarr"), shape=shape,
                             chunks=(args.chunk, args.chunk), dtype="bool")  # fmt: skip
    damaged = 0
    for row in range(0, args.size, args.chunk):
        for col in range(0, args.size, args.chunk):
            rows = slice(row, min(row + args.chunk, args.size))
            cols = slice(col, min(col + args.chunk, args.size))
            picture = painting(field, grain, rows, cols)
            hole = damage_window(cracks, losses, rows, cols)
            picture[hole] = PLASTER
            scan[rows, cols] = picture
            mask[rows, cols] = hole
            damaged += int(hole.sum())
    if args.pyramid:
        from inpaint_core.io.scans import write_pyramid

        write_pyramid(group, "mural")
    print(f"wrote {args.out}/scan.zarr and mask.zarr ({args.size}x{args.size}, "
          f"{100 * damaged / args.size**2:.2f}% damaged, {len(cracks)} cracks, "
          f"{len(losses)} losses)")  # fmt: skip


if __name__ == "__main__":
    main()
