"""Hole PSNR a learned method gains by fine-tuning on the intact part of the image it restores.

    python benchmarks/fit_to_scan.py [--images mural,astronaut,coffee]
        [--methods glcic,partial-conv-unet] [--minutes 0,2,5] [--mural-size 768]
        [--batch 8] [--size SIDE] [--seed 0] [--threads 1] [--device cpu] [--keep DIR]
        [--report benchmarks/fit_to_scan.md]

"Fit to this scan" (the napari plugin's fit, issue 8): each image gets a known synthetic damage,
one off-centre rectangular loss (about 6 % of the image) plus free-form strokes (about 10 %),
both seeded, so the ground truth under it is known. Each learned method starts from its shipped
weights and is fine-tuned with :func:`inpaint_core.training.fine_tune.fine_tune` on a
:class:`~inpaint_core.training.datasets.ScanPatchDataset` of the same image, which draws patches
only where the damage is absent. After each cumulative ``--minutes`` budget of training (0 = the
shipped weights), the image's whole damage is filled with the fine-tuned weights and scored by
hole PSNR against the truth, beside ``telea`` on the same holes. Training runs in segments: each
stops by wall time (the trainer's ``should_stop``), is scored, and the next resumes from its
checkpoint, so budget ``m`` has had exactly ``m`` minutes of training whatever the scoring took.

The patch side (``--size``) and batch default to the shipped weights' own training settings
(their sidecar). Images: ``mural`` is the synthetic mural painting of ``inpaint_core.samples``
(undamaged, ``--mural-size`` square, seed 2026); any other name is a ``skimage.data`` image at
its own size. Prints a markdown table and writes it to ``--report`` with the command and the
machine. Wall-clock figures: stop other work on the machine first.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import shlex
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from checkpoint_curve import score
from skimage import data
from skimage.util import img_as_float32

from inpaint_core.checkpoint import read_checkpoint_info
from inpaint_core.masks import make_mask
from inpaint_core.samples import colour_field, grain_tile, painting
from inpaint_core.training.datasets import ScanPatchDataset
from inpaint_core.training.fine_tune import current_weights, fine_tune
from inpaint_core.training.trainer import TrainConfig, follow, read_run_info

MURAL_SEED = 2026
LOSS_RATIO = 0.06
STROKES_RATIO = 0.10
HEADER = ("| image | method | minutes | steps | hole PSNR | telea hole PSNR | "
          "gain over shipped (dB) | gain over telea (dB) |")


@dataclass(frozen=True)
class Row:
    """One scored budget: the image, method, training budget and steps, and the scores."""

    image: str
    method: str
    minutes: float
    steps: int
    seconds: float
    psnr: float
    telea: float
    shipped: float

    def markdown(self) -> str:
        """The row of the markdown table."""
        return (f"| {self.image} | {self.method} | {self.minutes:g} | {self.steps} | "
                f"{self.psnr:.2f} | {self.telea:.2f} | {self.psnr - self.shipped:+.2f} | "
                f"{self.psnr - self.telea:+.2f} |")


def load_image(name: str, mural_size: int) -> np.ndarray:
    """float32 ``(H, W, 3)`` in [0, 1]: the undamaged mural, or a ``skimage.data`` image."""
    if name == "mural":
        rng = np.random.default_rng(MURAL_SEED)
        grain, field = grain_tile(rng), colour_field(mural_size, rng)
        window = slice(0, mural_size)
        return img_as_float32(painting(field, grain, window, window))
    loader = getattr(data, name, None)
    if loader is None or not callable(loader):
        raise SystemExit(f"unknown image {name!r}: use mural or a skimage.data image name")
    image = img_as_float32(loader())
    if image.ndim == 2:
        image = np.repeat(image[:, :, None], 3, axis=2)
    return np.ascontiguousarray(image[:, :, :3])


def known_damage(shape: tuple[int, int], seed: int) -> np.ndarray:
    """bool ``(H, W)``, True = damaged: one off-centre rectangular loss plus free-form strokes.

    The rectangle covers :data:`LOSS_RATIO` of the image with a random aspect ratio, inside a
    random quadrant (so it never covers the centre); the strokes are ``make_mask("free_form")``
    covering :data:`STROKES_RATIO`. Both depend on ``seed`` only.
    """
    rng = np.random.default_rng(seed)
    height, width = shape
    area = LOSS_RATIO * height * width
    aspect = rng.uniform(0.6, 1.6)  # width / height
    rect_h = min(round(math.sqrt(area / aspect)), height // 2 - height // 20)
    rect_w = min(round(area / rect_h), width // 2 - width // 20)
    rows, cols = [], []
    for side, extent, pick in ((height, rect_h, rows), (width, rect_w, cols)):
        margin = side // 20
        low, high = (margin, side // 2 - extent) if rng.integers(2) == 0 else (
            side // 2, side - margin - extent)
        pick.append(int(rng.integers(low, max(low, high) + 1)))
    damage = make_mask("free_form", shape, STROKES_RATIO, seed)
    damage[rows[0] : rows[0] + rect_h, cols[0] : cols[0] + rect_w] = True
    return damage


def hole_psnr(truth: np.ndarray, hole: np.ndarray, method: str, **params: object) -> float:
    """Hole PSNR of ``method`` filling ``hole`` of ``truth`` (zeroed under the hole)."""
    return score([(truth, hole, 0)], method, **params)[0]


def fit_curve(
    method: str, truth: np.ndarray, damage: np.ndarray, budgets: list[float], folder: Path,
    *, size: int | None, batch: int | None, device: str, seed: int,
) -> list[tuple[float, int, float, float]]:
    """Fine-tune ``method`` from its shipped weights on ``truth`` away from ``damage``.

    Training runs in segments up to each cumulative budget in ``budgets`` (minutes, ascending);
    after each, the run's inference weights fill ``damage``. Returns ``(minutes, steps,
    training seconds, hole PSNR)`` per budget; budget 0 scores the shipped weights.
    """
    start = current_weights(method)
    shipped = read_checkpoint_info(start, verify=False)
    recipe = shipped.extra.get("train_config", {})
    side = size or int(shipped.training_data.get("size", 128))
    batch = batch or int(recipe.get("batch_size", 8))
    dataset = ScanPatchDataset(truth, damage, size=min(side, *truth.shape[:2]),
                               samples=100 * batch, seed=seed)
    settings = TrainConfig(steps=10**9, batch_size=batch, device=device,
                           checkpoint_every=10**9, log_every=25,
                           keep_checkpoints=len(budgets) + 1, seed=seed)
    description = {"kind": "fit to this scan (benchmarks/fit_to_scan.py)", "size": side,
                   "free_patches": len(dataset.free_cells),
                   "damaged_fraction": dataset.damaged_fraction}
    out: list[tuple[float, int, float, float]] = []
    steps, seconds, trained = 0, 0.0, 0.0
    weights = start
    for minutes in budgets:
        if minutes > trained:
            deadline = time.monotonic() + 60.0 * (minutes - trained)
            result = follow(fine_tune(
                method, dataset, folder, settings, training_data=description,
                init=start if steps == 0 else None, resume=folder if steps else None,
                should_stop=lambda deadline=deadline: time.monotonic() >= deadline,
            ))
            steps, weights, trained = result.step, result.weights, minutes
            seconds = read_run_info(result.checkpoint).wall_seconds
        got = hole_psnr(truth, damage, method, weights=str(weights), device="cpu")
        out.append((minutes, steps, seconds, got))
        print(f"  {method} {minutes:g} min: {steps} steps ({seconds:.0f} s), "
              f"hole PSNR {got:.2f}", flush=True)
    return out


def report(rows: list[Row], command: str, elapsed: float, notes: list[str]) -> str:
    """The markdown report: command, machine, the table and the notes."""
    machine = (f"{platform.machine()} CPU, {os.cpu_count()} cores, "
               f"torch {torch.__version__} with {torch.get_num_threads()} thread(s)")
    lines = [
        "# Fit to this scan: hole PSNR against minutes of fine-tuning",
        "",
        "```",
        command,
        "```",
        "",
        f"Machine: {machine}. Total wall time {elapsed / 60:.1f} min.",
        "",
        *notes,
        "",
        HEADER,
        "|" + "---|" * 8,
        *(row.markdown() for row in rows),
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", default="mural,astronaut,coffee")
    parser.add_argument("--methods", default="glcic,partial-conv-unet")
    parser.add_argument("--minutes", default="0,2,5", help="cumulative training budgets")
    parser.add_argument("--mural-size", type=int, default=768)
    parser.add_argument("--size", type=int, help="patch side (default: the weights' own)")
    parser.add_argument("--batch", type=int, help="batch (default: the weights' own)")
    parser.add_argument("--seed", type=int, default=0, help="damage and training seed")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--keep", type=Path, help="keep the training runs in this folder")
    parser.add_argument("--report", type=Path,
                        default=Path(__file__).with_name("fit_to_scan.md"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    budgets = sorted({float(value) for value in args.minutes.split(",")})
    root = args.keep or Path(tempfile.mkdtemp(prefix="fit-to-scan-"))
    began = time.monotonic()
    rows: list[Row] = []
    notes: list[str] = []
    try:
        for index, name in enumerate(args.images.split(",")):
            truth = load_image(name, args.mural_size)
            damage = known_damage(truth.shape[:2], args.seed + index)
            label = f"{name} {truth.shape[0]}x{truth.shape[1]}"
            telea = hole_psnr(truth, damage, "telea")
            notes.append(f"- {label}: {100 * damage.mean():.1f} % damaged; "
                         f"telea hole PSNR {telea:.2f} dB.")
            print(f"{label}: {100 * damage.mean():.1f} % damaged, telea {telea:.2f} dB",
                  flush=True)
            for method in args.methods.split(","):
                curve = fit_curve(method, truth, damage, budgets, root / f"{name}-{method}",
                                  size=args.size, batch=args.batch, device=args.device,
                                  seed=args.seed)
                shipped = curve[0][3] if budgets[0] == 0 else math.nan
                rows.extend(Row(label, method, minutes, steps, seconds, got, telea, shipped)
                            for minutes, steps, seconds, got in curve)
    finally:
        if args.keep is None:
            shutil.rmtree(root, ignore_errors=True)
    command = "OMP_NUM_THREADS=1 python " + shlex.join(["benchmarks/fit_to_scan.py", *sys.argv[1:]])
    text = report(rows, command, time.monotonic() - began, notes)
    print(text)
    args.report.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
