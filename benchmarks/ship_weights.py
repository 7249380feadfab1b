"""Copy a run's inference weights into the shipped weights folder with their held-out score.

    python benchmarks/ship_weights.py --run runs/edge-gan-lite --method edge-gan \
        --command "inpaint train edge-gan ..." [--data benchmarks/heldout] [--limit 30]

Scores the run's ``METHOD.safetensors`` and ``telea`` on the held-out set (centre 25 % and
free-form 40 %, as ``benchmarks/checkpoint_curve.py``), then writes
``plugins/method_registry/inpaint_methods/weights/METHOD.{safetensors,json}``: the weights
unchanged (so the sidecar's sha256 still holds) and the sidecar with ``extra.recipe`` (the
training command and budget) and ``extra.heldout`` (the scores) added. Prints the scores.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shutil
from pathlib import Path

from checkpoint_curve import cases, score

from inpaint_core.io.atomic import atomic_write
from inpaint_core.training.checkpoint import CheckpointInfo, checkpoint_paths
from inpaint_core.training.command import summarise_sources

SHIPPED = Path(__file__).resolve().parents[1] / "plugins/method_registry/inpaint_methods/weights"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--run", type=Path, required=True)
    parser.add_argument("--method", default="edge-gan")
    parser.add_argument("--command", required=True, help="the exact training command(s)")
    parser.add_argument("--data", type=Path, default=Path(__file__).parent / "heldout")
    parser.add_argument("--limit", type=int, default=30)
    args = parser.parse_args()
    weights, sidecar = checkpoint_paths(args.run / f"{args.method}.safetensors")
    info = CheckpointInfo.from_json(sidecar.read_text())
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
    shipped = dataclasses.replace(info, training_data=data, extra=extra)
    SHIPPED.mkdir(parents=True, exist_ok=True)
    target_weights, target_sidecar = checkpoint_paths(SHIPPED / weights.name)
    shutil.copyfile(weights, target_weights)
    with atomic_write(target_sidecar) as temporary:
        temporary.write_text(shipped.to_json() + "\n")
    print(json.dumps(heldout, indent=1))
    print(f"wrote {target_weights} and {target_sidecar}")


if __name__ == "__main__":
    main()
