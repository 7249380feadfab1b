"""``inpaint train``: fit a learned method on a folder of images or on one scan's intact part.

    inpaint train METHOD --data PATH [--scan-mask MASK.zarr] --steps N --batch B --size 256
        --device auto --out DIR [--resume CKPT|DIR] [--init WEIGHTS] [--option key=value ...]
        [--vgg-weights FILE] [--precision auto|fp32|bf16|fp16] [--workers N] [--time-limit MIN]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import time
from pathlib import Path
from typing import Any

from inpaint_core.errors import InvalidInputError, ParameterError

_SHOWN_LOSSES = 4
#: Images per step when neither --batch nor a --resume run says.
DEFAULT_BATCH = 4


def add_parser(commands: Any, parse_texts: Any) -> None:
    """Add the ``train`` subcommand to ``commands`` (an argparse subparsers object)."""
    train = commands.add_parser("train", help="train a learned method's networks")
    train.add_argument("method", help="a learned method from `inpaint methods`, e.g. edge-gan")
    train.add_argument(
        "--data", required=True, help="folder of images (recursive), or a zarr scan array"
    )
    train.add_argument(
        "--scan-mask", help="zarr damage mask of the scan (non-zero = damaged; never sampled)"
    )
    train.add_argument("--steps", type=int, required=True, help="train up to this step")
    train.add_argument(
        "--batch", type=int, default=None,
        help=f"images per step (default {DEFAULT_BATCH}, or the --resume run's)",
    )
    train.add_argument("--size", type=int, default=256, help="training crop side (default 256)")
    train.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps")
    train.add_argument("--out", help="run folder (default: the --resume run's folder)")
    train.add_argument("--resume", help="checkpoint or run folder to continue from")
    train.add_argument("--init", help="inference weights to fine-tune from (e.g. shipped ones)")
    train.add_argument(
        "--option", action="append", default=[], metavar="KEY=VALUE",
        help="architecture/loss setting of the method's config, e.g. base_channels=16",
    )
    train.add_argument("--vgg-weights", help="VGG-19 weights for perceptual and style losses")
    train.add_argument("--precision", default="auto", help="auto, fp32, bf16, fp16 (CUDA only)")
    train.add_argument("--grad-clip", type=float, default=1.0, help="max gradient norm; 0 = off")
    train.add_argument("--checkpoint-every", type=int, default=500, help="steps per checkpoint")
    train.add_argument("--log-every", type=int, default=10, help="steps per log.csv row")
    train.add_argument("--workers", type=int, default=0, help="data-loading processes")
    train.add_argument("--samples", type=int, default=1000, help="scan patches per epoch")
    train.add_argument(
        "--scale-range", type=float, nargs=2, default=(0.5, 1.0), metavar=("LOW", "HIGH"),
        help="folder data: crop side as a fraction of the image's short side (default 0.5 1)",
    )
    train.add_argument("--seed", type=int, default=0, help="seeds weights, data and masks")
    train.add_argument(
        "--time-limit", type=float, metavar="MINUTES",
        help="stop (with a checkpoint) after this many minutes, even before --steps",
    )
    train.set_defaults(handler=lambda args: run(args, parse_texts))


def _is_zarr(path: Path) -> bool:
    markers = ("zarr.json", ".zarray", ".zgroup")
    return path.suffix == ".zarr" or any((path / marker).exists() for marker in markers)


def _dataset(args: argparse.Namespace) -> tuple[Any, dict[str, Any]]:
    from inpaint_core.training.datasets import FolderDataset, ScanPatchDataset

    data = Path(args.data)
    if not data.exists():
        raise InvalidInputError(f"--data {args.data!r} does not exist")
    if _is_zarr(data):
        dataset = ScanPatchDataset(
            str(data), args.scan_mask, size=args.size, samples=args.samples, seed=args.seed
        )
        description = {
            "kind": "scan", "scan": str(data), "damage_mask": args.scan_mask,
            "damaged_fraction": dataset.damaged_fraction, "size": args.size,
        }
        return dataset, description
    if args.scan_mask:
        raise InvalidInputError(
            f"--scan-mask is for a zarr scan, but --data {args.data!r} is a folder of images"
        )
    scale_range = tuple(args.scale_range)
    dataset = FolderDataset(data, size=args.size, seed=args.seed, scale_range=scale_range)
    description = {"kind": "folder", "folder": str(data), "images": len(dataset),
                   "size": args.size, "scale_range": list(scale_range)}
    manifest = data / "manifest.json"
    if manifest.is_file():  # the corpus builder's list of sources
        description["sources"] = summarise_sources(json.loads(manifest.read_text()))
    return dataset, description


def summarise_sources(entries: list[dict[str, Any]]) -> dict[str, int]:
    """Images per source of a corpus manifest: per Debian package, else per folder."""
    counts: dict[str, int] = {}
    for entry in entries:
        key = entry.get("package") or str(Path(entry["source"]).parent)
        counts[key] = counts.get(key, 0) + 1
    return dict(sorted(counts.items()))


def _run_batch(resume: str) -> int:
    """The batch size the run (or checkpoint) ``resume`` was trained with; the default when
    its sidecar does not say."""
    from inpaint_core.training.runs import read_run_info

    recorded = read_run_info(resume).extra.get("train_config", {}).get("batch_size")
    return recorded if isinstance(recorded, int) and recorded > 0 else DEFAULT_BATCH


def run(args: argparse.Namespace, parse_texts: Any) -> int:
    """Handle ``inpaint train``: :func:`~inpaint_core.training.fine_tune.fine_tune` with a
    progress bar, from scratch or from ``--init`` weights, or continuing ``--resume``."""
    from inpaint_core.progress import ProgressBar
    from inpaint_core.training.fine_tune import fine_tune, learned_method  # torch: on training
    from inpaint_core.training.trainer import CHECKPOINT_FOLDER, TrainConfig, follow

    if args.time_limit is not None and not (math.isfinite(args.time_limit) and args.time_limit > 0):
        raise ParameterError(f"--time-limit {args.time_limit} must be a number of minutes > 0")
    learned_method(args.method)  # before reading any data
    options = parse_texts(args.option, "--option")
    if not args.out and not args.resume:
        raise ParameterError("--out DIR is required (unless --resume names the run)")
    dataset, description = _dataset(args)
    batch = args.batch
    if batch is None:  # a resumed run keeps its batch size unless told otherwise
        batch = _run_batch(args.resume) if args.resume else DEFAULT_BATCH
    settings = TrainConfig(
        steps=args.steps, batch_size=batch, device=args.device, precision=args.precision,
        grad_clip=args.grad_clip, checkpoint_every=args.checkpoint_every,
        log_every=args.log_every, num_workers=args.workers, seed=args.seed,
    )
    should_stop = None
    if args.time_limit is not None:
        deadline = time.monotonic() + 60.0 * args.time_limit

        def should_stop() -> bool:
            return time.monotonic() >= deadline

    bar = ProgressBar(f"train {args.method}", "step")

    def progress(update: Any) -> None:
        shown = list(update.losses.items())[-_SHOWN_LOSSES:]
        bar(update.step, update.steps, " ".join(f"{key}={value:.4g}" for key, value in shown))

    out = Path(args.out) if args.out else None
    made = [] if out is None else [f for f in (out, out / CHECKPOINT_FOLDER) if not f.exists()]
    run_steps = fine_tune(
        args.method, dataset, out, settings, init=args.init, resume=args.resume,
        options=options, vgg_weights=args.vgg_weights, training_data=description,
        should_stop=should_stop,
    )
    try:
        result = follow(run_steps, progress)
    except BaseException:
        for folder in reversed(made):  # a failed run leaves no empty folders behind
            with contextlib.suppress(OSError):
                folder.rmdir()  # only when empty
        raise
    out = result.checkpoint.parent.parent
    if result.stopped and result.step < args.steps:
        print(f"stopped at step {result.step} of {args.steps} (--time-limit); continue with "
              f"--resume {out}")
    print(f"step {result.step}: checkpoint {result.checkpoint}")
    print(f"wrote {result.weights}; use it with: inpaint run IMAGE MASK --method {args.method} "
          f"--weights {result.weights} --output OUT.png")
    return 0
