"""Ship a training run's weights: inference weights with their held-out score and recipe.

    python benchmarks/ship_weights.py --run runs/pix2pix-lite --method pix2pix \
        --command "inpaint train pix2pix ..." [--checkpoint STEP_FILE] [--recalibrate-bn 100]
        [--data benchmarks/heldout] [--limit 30]

Rebuilds the method's training model from a full checkpoint of the run (the newest, or
``--checkpoint``), optionally re-estimates the BatchNorm running statistics of its inference
networks over ``--recalibrate-bn`` batches of the run's own training data
(:func:`inpaint_core.training.batchnorm.recalibrate_batch_norm`; the weights are unchanged),
and exports the inference networks in float16 as ``RUN/shipped/METHOD.safetensors``. That file
and ``telea`` are scored on the held-out set (centre 25 % and free-form 40 %, as
``benchmarks/checkpoint_curve.py``); then it is copied to
``plugins/method_registry/inpaint_methods/weights/METHOD.{safetensors,json}`` with
``extra.recipe`` (training command and budget), ``extra.heldout`` (the scores) and
``extra.batch_norm`` (the recalibration) in the sidecar. Prints the scores.
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
import shutil
from pathlib import Path

from checkpoint_curve import cases, score

from inpaint_core import get_method
from inpaint_core.checkpoint import (
    CheckpointInfo,
    checkpoint_paths,
    flatten_state,
    load_checkpoint,
    save_checkpoint,
    unflatten_state,
)
from inpaint_core.io.atomic import atomic_write
from inpaint_core.learned import config_from_dict
from inpaint_core.training.batchnorm import recalibrate_batch_norm
from inpaint_core.training.command import summarise_sources
from inpaint_core.training.datasets import FolderDataset
from inpaint_core.training.trainer import find_latest_checkpoint

SHIPPED = Path(__file__).resolve().parents[1] / "plugins/method_registry/inpaint_methods/weights"


def export(args: argparse.Namespace) -> tuple[Path, CheckpointInfo]:
    """Write ``RUN/shipped/METHOD.safetensors`` from a full checkpoint; returns it and its info."""
    import torch

    method = get_method(args.method)
    source = args.checkpoint or find_latest_checkpoint(args.run)
    tensors, info = load_checkpoint(source, expected_method=args.method)
    model = method.build_training(config_from_dict(method.config_class, info.config))
    for name, state in unflatten_state(tensors).items():
        getattr(model, name).load_state_dict(state)
    if args.recalibrate_bn:
        data = info.training_data
        dataset = FolderDataset(data["folder"], size=data["size"], seed=1,
                                scale_range=tuple(data["scale_range"]))
        batch = info.extra.get("train_config", {}).get("batch_size", 8)
        loader = torch.utils.data.DataLoader(dataset, batch_size=batch, shuffle=True)
        batches = itertools.islice(itertools.cycle(loader), args.recalibrate_bn)
        recalibrate_batch_norm(model, batches)
    states = {name: getattr(model, name).state_dict() for name in model.inference_networks}
    target = args.run / "shipped" / f"{args.method}.safetensors"
    target.parent.mkdir(exist_ok=True)
    written = save_checkpoint(
        target, flatten_state(states), method=args.method, config=info.config, step=info.step,
        training_data=info.training_data, losses=info.losses, hardware=info.hardware,
        wall_seconds=info.wall_seconds, extra=info.extra, overwrite=True, half=True,
    )
    return target, written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--run", type=Path, required=True)
    parser.add_argument("--method", default="edge-gan")
    parser.add_argument("--command", required=True, help="the exact training command(s)")
    parser.add_argument("--data", type=Path, default=Path(__file__).parent / "heldout")
    parser.add_argument("--limit", type=int, default=30)
    parser.add_argument("--checkpoint", type=Path, help="a full step-N checkpoint of the run")
    parser.add_argument("--recalibrate-bn", type=int, default=0, metavar="BATCHES",
                        help="re-estimate BatchNorm statistics over this many batches")
    parser.add_argument("--dry-run", action="store_true", help="score only; ship nothing")
    args = parser.parse_args()
    weights, info = export(args)
    items = cases(args.data, 256, args.limit)
    telea = score(items, "telea")
    learned = score(items, args.method, weights=str(weights), device="cpu")
    heldout = {
        "images": len(items) // 2,
        "source": "benchmarks/make_heldout.py (never used in training)",
        "hole_psnr_centre_25": round(learned[0], 3),
        "hole_psnr_free_form_40": round(learned[1], 3),
        "telea_hole_psnr_centre_25": round(telea[0], 3),
        "telea_hole_psnr_free_form_40": round(telea[1], 3),
    }
    print(json.dumps(heldout, indent=1))
    if args.dry_run:
        return
    recipe = {
        "command": args.command,
        "steps": info.step,
        "wall_seconds": round(info.wall_seconds),
        "hardware": info.hardware,
        "train_config": info.extra.get("train_config"),
    }
    data = dict(info.training_data)
    manifest = Path(data.get("folder", "")) / "manifest.json"
    if manifest.is_file():
        data["sources"] = summarise_sources(json.loads(manifest.read_text()))
    extra = {**info.extra, "recipe": recipe, "heldout": heldout}
    if args.recalibrate_bn:
        extra["batch_norm"] = {"recalibrated_batches": args.recalibrate_bn,
                               "data": "the run's training data, seed 1"}
    shipped = dataclasses.replace(info, training_data=data, extra=extra)
    SHIPPED.mkdir(parents=True, exist_ok=True)
    target_weights, target_sidecar = checkpoint_paths(SHIPPED / weights.name)
    shutil.copyfile(weights, target_weights)
    with atomic_write(target_sidecar) as temporary:
        temporary.write_text(shipped.to_json() + "\n")
    print(f"wrote {target_weights} and {target_sidecar}")


if __name__ == "__main__":
    main()
