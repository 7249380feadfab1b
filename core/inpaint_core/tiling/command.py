"""``inpaint restore``: restore a large scan tile by tile into a new zarr store.

    inpaint restore SCAN --mask MASK --method NAME --output OUT.zarr [--tile N] [--overlap N]
        [--batch N] [--device D] [--scheduler ADDR] [--resume] [--param k=v ...]
        [--weights NAME|FILE] [--seed N] [--workers N] [--intact copy|link] [--zstd-level N]
        [--pyramid auto|always|never]

Stopped with Ctrl-C, the same command with ``--resume`` continues where it stopped.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from inpaint_core.learned_params import BACKEND_PARAMETER


def add_parser(commands: Any, parse_texts: Any) -> None:
    """Add the ``restore`` subcommand to ``commands`` (an argparse subparsers object)."""
    from inpaint_core.api import DEFAULT_METHOD

    restore = commands.add_parser(
        "restore", help="restore a large zarr, OME-Zarr or TIFF scan tile by tile (resumable)"
    )
    restore.add_argument("scan", help="zarr array, OME-Zarr group (level 0 is used) or TIFF")
    restore.add_argument(
        "--mask", required=True, help="damage mask: zarr, PNG or TIFF of the scan's (H, W)"
    )
    restore.add_argument("--method", "-m", default=DEFAULT_METHOD, help="a name from `methods`")
    restore.add_argument("--output", "-o", required=True, help="new zarr store, e.g. OUT.zarr")
    restore.add_argument("--tile", type=int, help="tile side in px (default: the method's)")
    restore.add_argument(
        "--overlap",
        type=int,
        help="px by which pieces of a large hole cross-fade (default margin/2)",
    )
    restore.add_argument("--batch", type=int, default=1, help="tiles per step (default 1)")
    restore.add_argument(
        "--device", default="auto", help="learned methods: auto, cpu, cuda[:N], mps"
    )
    restore.add_argument("--scheduler", help="dask.distributed scheduler, e.g. tcp://HOST:8786")
    restore.add_argument(
        "--resume", action="store_true", help="continue an interrupted run into --output"
    )
    restore.add_argument(
        "--param", "-p", action="append", default=[], metavar="KEY=VALUE",
        help="a method parameter; repeat for several (see `inpaint methods NAME`)",
    )
    restore.add_argument(
        "--weights", help="learned methods: an installed catalogue name or a .safetensors file"
    )
    restore.add_argument(
        "--backend", choices=BACKEND_PARAMETER.choices,
        help="learned methods: how the network runs (default: auto; see `inpaint methods NAME`)",
    )
    restore.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    restore.add_argument(
        "--workers", type=int, default=1,
        help="local threads restoring tiles at once, for CPU methods (default 1)",
    )
    restore.add_argument(
        "--intact", choices=("copy", "link"), default="copy",
        help="chunks without holes: copy their bytes (default), or hard-link the scan's chunk "
        "files (unsharded zarr v3 scan on the output's filesystem; no time, no disk)",
    )
    restore.add_argument(
        "--zstd-level", type=int, metavar="N",
        help="zstd level of the chunks this run writes (default: the scan's); 1 encodes about "
        "twice as fast as zstd's default, for restored chunks about 12%% larger",
    )
    restore.add_argument(
        "--pyramid", choices=("auto", "always", "never"), default="auto",
        help="the output's 2x levels: auto (default): when the scan has them (an OME-Zarr "
        "pyramid), else the output is level 0 alone, like the scan; always; never",
    )
    restore.set_defaults(handler=lambda args: run(args, parse_texts))


def run(args: argparse.Namespace, parse_texts: Any) -> int:
    """Handle ``inpaint restore``."""
    from inpaint_core.api import get_method
    from inpaint_core.cli import put_flag_params  # loaded: it runs this command
    from inpaint_core.progress import ProgressBar
    from inpaint_core.tiling.engine import restore_scan

    method_class = get_method(args.method)
    names = {parameter.name for parameter in method_class.info.parameters}
    texts = parse_texts(args.param)
    put_flag_params(args.method, method_class.info.parameters, texts,
                    {"--weights": args.weights, "--backend": args.backend})
    if "device" in names and "device" not in texts:  # --device has a default: learned only
        texts["device"] = args.device
    params = method_class.info.parse_params(texts)
    bar = ProgressBar(f"restore {args.method}", "tile")
    try:
        result = restore_scan(
            args.scan, args.mask, args.method, args.output, tile=args.tile,
            overlap=args.overlap, batch=args.batch, device=args.device, params=params,
            resume=args.resume, progress=bar, scheduler=args.scheduler, seed=args.seed,
            intact=args.intact, workers=args.workers, zstd_level=args.zstd_level,
            pyramid=args.pyramid,
        )
    except KeyboardInterrupt:
        if Path(args.output).exists():
            print("inpaint: stopped; rerun the same command with --resume", file=sys.stderr)  # noqa: T201
        else:
            print("inpaint: stopped before writing anything; run the same command again",  # noqa: T201
                  file=sys.stderr)
        raise
    print(  # noqa: T201
        f"wrote {result.output} ({args.method}: {result.tiles} tiles, "
        f"{result.chunks_restored} chunks restored, {result.chunks_copied} copied, "
        f"{result.levels} resolution levels, {100 * result.hole_fraction:.2f}% hole, "
        f"{result.seconds:.1f} s)"
    )
    return 0
