"""Train several learned methods in sequence, each within a fixed wall-time budget.

    python benchmarks/train_suite.py [--methods edge-gan,pix2pix,...] [--minutes 15]
        [--data sample_data/corpus] [--runs runs] [--device auto] [--batch 8] [--size 128]
        [--variant lite|full] [--prior telea|blend]

Each method is trained with ``inpaint train`` (the documented command, run as a subprocess)
into ``RUNS/METHOD-VARIANT`` for ``--minutes`` (``--time-limit``); a run folder that already
exists is resumed, so calling the suite again continues every run for another budget (long
CPU training across sessions, issue 8). ``lite`` uses the narrow widths the CPU can afford,
``full`` the papers' widths (for a GPU). Every method starts from the Telea prior, or with
``--prior blend`` from the Telea + push-pull blend, into ``RUNS/METHOD-VARIANT-blend`` (a
zero-initialised last layer makes the untrained method equal its prior), and uses no VGG-19
weights. At the end a table gives, per method, the step reached, the minutes spent in this
call, the training throughput (steps/s) and the inference weights written; ``RUNS/suite.json``
keeps the latest row of every run. Ship a run with ``benchmarks/ship_weights.py``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

from inpaint_core.checkpoint import CheckpointInfo, checkpoint_paths

#: ``--option`` settings per method and variant; every variant starts from the Telea prior.
RECIPES: dict[str, dict[str, list[str]]] = {
    "edge-gan": {
        "lite": ["base_channels=16", "discriminator_channels=32", "prior=telea",
                 "texture_loss=discriminator-features"],
        "full": ["prior=telea", "texture_loss=discriminator-features"],
    },
    "pix2pix": {
        "lite": ["base_channels=32", "depth=7", "discriminator_channels=32", "prior=telea"],
        "full": ["depth=7", "prior=telea"],
    },
    "glcic": {
        "lite": ["image_size=128", "base_channels=16", "discriminator_channels=16",
                 "discriminator_features=256", "prior=telea"],
        "full": ["image_size=256", "prior=telea"],
    },
    "context-encoder": {
        "lite": ["base_channels=16", "bottleneck_channels=128", "discriminator_channels=16",
                 "prior=telea"],
        "full": ["prior=telea"],
    },
    "partial-conv-unet": {
        "lite": ["base_channels=16", "depth=5", "texture_loss=none", "prior=telea"],
        "full": ["depth=7", "texture_loss=none", "prior=telea"],
    },
    "deepfill-v2": {
        "lite": ["base_channels=24", "discriminator_channels=32", "prior=telea"],
        "full": ["prior=telea"],
    },
}


def options(method: str, variant: str, prior: str = "telea") -> list[str]:
    """The ``--option key=value`` arguments of ``method``'s recipe, starting from ``prior``."""
    try:
        settings = RECIPES[method][variant]
    except KeyError:
        known = ", ".join(sorted(RECIPES))
        message = f"no {variant!r} recipe for {method!r}; recipes exist for {known}"
        raise SystemExit(message) from None
    settings = [f"prior={prior}" if s.startswith("prior=") else s for s in settings]
    return [text for setting in settings for text in ("--option", setting)]


def step_of(run: Path, method: str) -> int:
    """The step of the run's inference weights (0 when there are none yet)."""
    _, sidecar = checkpoint_paths(run / f"{method}.safetensors")
    if not sidecar.is_file():
        return 0
    return CheckpointInfo.from_json(sidecar.read_text()).step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--methods", default=",".join(RECIPES))
    parser.add_argument("--minutes", type=float, default=15.0, help="budget per method")
    parser.add_argument("--data", default="sample_data/corpus")
    parser.add_argument("--runs", type=Path, default=Path("runs"))
    parser.add_argument("--device", default="auto")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--steps", type=int, default=1_000_000, help="step cap per run")
    parser.add_argument("--variant", default="lite", choices=("lite", "full"))
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument(
        "--prior", default="telea", choices=("telea", "blend"), help="runs: METHOD-VARIANT-blend"
    )
    args = parser.parse_args()
    methods = [name.strip() for name in args.methods.split(",") if name.strip()]
    for method in methods:
        options(method, args.variant)  # every recipe exists before anything trains
    rows = []
    for method in methods:
        suffix = "" if args.prior == "telea" else f"-{args.prior}"
        run = args.runs / f"{method}-{args.variant}{suffix}"
        before = step_of(run, method)
        command = [
            sys.executable, "-m", "inpaint_core.cli", "train", method, "--data", args.data,
            "--steps", str(args.steps), "--batch", str(args.batch), "--size", str(args.size),
            "--scale-range", "0.1", "0.6", "--device", args.device, "--checkpoint-every", "250",
            "--log-every", "25", "--workers", str(args.workers), "--time-limit",
            str(args.minutes),
        ]
        command += ["--resume", str(run)] if before else ["--out", str(run)]
        command += [] if before else options(method, args.variant, args.prior)
        print(" ".join(command[2:]), flush=True)
        started = time.perf_counter()
        subprocess.run(command, check=True)
        minutes = (time.perf_counter() - started) / 60
        after = step_of(run, method)
        rows.append({
            "method": method, "run": str(run), "step": after, "minutes": round(minutes, 2),
            "steps_per_second": round((after - before) / max(minutes * 60, 1e-9), 3),
            "weights": str(run / f"{method}.safetensors"),
        })
    print(f"\n{'method':<20} {'step':>7} {'minutes':>8} {'steps/s':>8}  weights")
    for row in rows:
        print(f"{row['method']:<20} {row['step']:>7} {row['minutes']:>8.1f} "
              f"{row['steps_per_second']:>8.3f}  {row['weights']}")
    args.runs.mkdir(parents=True, exist_ok=True)
    summary = args.runs / "suite.json"  # one row per run: earlier calls' other runs are kept
    kept = json.loads(summary.read_text()) if summary.is_file() else []
    ours = {row["run"] for row in rows}
    rows = [row for row in kept if row["run"] not in ours] + rows
    summary.write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
