"""Make a large synthetic damaged "mural" scan as zarr, chunk by chunk, with its damage mask.

    python sample_data/make_scan.py [--size 8192] [--out sample_data/mural] [--chunk 1024]
        [--seed 2026] [--damage 0.02] [--damage-extent N] [--pyramid] [--overwrite]

Writes two zarr v3 arrays: ``OUT/scan.zarr`` (uint8 ``(size, size, 3)``) and ``OUT/mask.zarr``
(bool ``(size, size)``, True = damaged), both chunked ``(chunk, chunk)``. With ``--pyramid``,
``OUT/scan.zarr`` is an OME-Zarr (NGFF 0.5) group instead, stored channel first as NGFF orders
axes (``c, y, x``, chunks ``(3, chunk, chunk)``): level ``0`` plus a 2x mean pyramid, as
scanning pipelines deliver them (``inpaint restore`` then reuses the pyramid's intact chunks).

The painting is a smooth field of pigment regions (a small random colour field, upsampled) with
brush-stroke grain from a seamless periodic texture; the damage is long thin cracks (random
walks that keep a drifting heading, 1-3 px wide) and flaking losses (irregular blobs), painted
in a plaster colour exactly where the mask is True. ``--damage`` is the target damaged fraction
(cracks and losses together, approximately), spread over the whole scan; with
``--damage-extent N`` the damage lies in (and is cut to) the top-left ``N x N`` square and is
drawn from the seed alone, so scans of different sizes made with the same seed, extent and
damaged area (``--damage`` times ``size**2``) carry identical damage. Every chunk is computed
from global coordinates, so chunks agree at their borders and memory stays at a few chunks
whatever ``--size`` is (32768 for benchmarks).
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import numpy as np

from inpaint_core.io.pyramid import write_pyramid
from inpaint_core.io.store import (
    channel_rendering,
    level_array,
    write_multiscales,
    write_rendering,
)
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
    parser.add_argument(
        "--damage-extent", type=int, help="put the damage in the top-left N x N square"
    )
    parser.add_argument("--pyramid", action="store_true", help="write an OME-Zarr pyramid")
    parser.add_argument("--overwrite", action="store_true")
    args = parser.parse_args()
    if args.out.exists():
        if not args.overwrite:
            raise SystemExit(f"{args.out} exists; pass --overwrite to replace it")
        shutil.rmtree(args.out)
    rng = np.random.default_rng(args.seed)
    grain, field = grain_tile(rng), colour_field(args.size, rng)
    extent = args.damage_extent
    if extent is None:
        cracks, losses = damage_shapes(args.size, args.damage, rng)
    elif not 0 < extent <= args.size:
        raise SystemExit(f"--damage-extent {extent} must be in 1..--size ({args.size})")
    else:  # the same shapes whatever --size is: their own generator, their own square
        fraction = args.damage * args.size**2 / extent**2
        cracks, losses = damage_shapes(extent, fraction, np.random.default_rng([args.seed, 1]))
    shape = (args.size, args.size)
    if args.pyramid:  # OME-Zarr: NGFF orders the channel axis first
        group = zarr.open_group(str(args.out / "scan.zarr"), mode="w-", zarr_format=3)
        group.create_array("0", shape=(3, *shape), chunks=(3, args.chunk, args.chunk),
                           dtype="uint8", dimension_names=("c", "y", "x"))
        write_multiscales(group, 1, "mural", ("c", "y", "x"))
        write_rendering(group, channel_rendering(3, np.uint8))  # red, green, blue
        scan = level_array(group, "0")  # written (rows, cols, 3), stored (3, rows, cols)
    else:
        scan = zarr.create_array(store=str(args.out / "scan.zarr"), shape=(*shape, 3),
                                 chunks=(args.chunk, args.chunk, 3), dtype="uint8")
    mask = zarr.create_array(store=str(args.out / "mask.zarr"), shape=shape,
                             chunks=(args.chunk, args.chunk), dtype="bool")
    damaged = 0
    for row in range(0, args.size, args.chunk):
        for col in range(0, args.size, args.chunk):
            rows = slice(row, min(row + args.chunk, args.size))
            cols = slice(col, min(col + args.chunk, args.size))
            picture = painting(field, grain, rows, cols)
            hole = damage_window(cracks, losses, rows, cols)
            if extent is not None:  # cracks that wander out of the square are cut at its edge
                hole[max(extent - row, 0) :] = False
                hole[:, max(extent - col, 0) :] = False
            picture[hole] = PLASTER
            scan[rows, cols] = picture
            mask[rows, cols] = hole
            damaged += int(hole.sum())
    if args.pyramid:
        write_pyramid(group, "mural")
    print(f"wrote {args.out}/scan.zarr and mask.zarr ({args.size}x{args.size}, "
          f"{100 * damaged / args.size**2:.2f}% damaged, {len(cracks)} cracks, "
          f"{len(losses)} losses)")


if __name__ == "__main__":
    main()
