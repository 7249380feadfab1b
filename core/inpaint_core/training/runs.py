"""A training run's folder: where its checkpoints and log lie, and how to find the newest.

A run writes into its folder ``OUT``::

    OUT/log.csv                                   running losses every ``log_every`` steps
    OUT/checkpoints/step-00000500.safetensors     every network, float32 (+ .json sidecar)
    OUT/checkpoints/step-00000500.state.pt        optimiser and scaler states, RNG, epoch
    OUT/METHOD.safetensors (+ METHOD.json)        the inference networks only, float16
"""

from __future__ import annotations

import csv
from collections.abc import Mapping
from pathlib import Path

from inpaint_core.checkpoint import CheckpointInfo, checkpoint_paths, read_checkpoint_info
from inpaint_core.errors import MissingWeightsError
from inpaint_core.io.atomic import atomic_write

__all__ = [
    "CHECKPOINT_FOLDER",
    "LOG_NAME",
    "STATE_SUFFIX",
    "RunLog",
    "find_latest_checkpoint",
    "read_run_info",
]

CHECKPOINT_FOLDER = "checkpoints"
STATE_SUFFIX = ".state.pt"
LOG_NAME = "log.csv"


def find_latest_checkpoint(path: str | Path) -> Path:
    """The checkpoint ``path`` names, or the newest one in a run folder ``path``.

    Raises:
        MissingWeightsError: no such file, or a folder with no checkpoint.
    """
    path = Path(path)
    if not path.exists() and not checkpoint_paths(path)[0].exists():
        raise MissingWeightsError(
            f"checkpoint or run folder {str(path)!r} does not exist; pass a run folder (its "
            f"newest {CHECKPOINT_FOLDER}/step-*.safetensors is used) or one checkpoint file"
        )
    if path.is_dir():
        candidates = sorted((path / CHECKPOINT_FOLDER).glob("step-*.safetensors"))
        if not candidates:
            raise MissingWeightsError(
                f"run folder {path} holds no checkpoint under {CHECKPOINT_FOLDER}/; "
                "pass the .safetensors file of one"
            )
        return candidates[-1]
    weights, _ = checkpoint_paths(path)
    if not weights.is_file():
        raise MissingWeightsError(f"checkpoint {weights} does not exist")
    return weights


def read_run_info(path: str | Path) -> CheckpointInfo:
    """The sidecar of a checkpoint, or of a run folder's newest one, without loading weights
    or checking their sha256 (:func:`inpaint_core.checkpoint.read_checkpoint_info`)."""
    return read_checkpoint_info(find_latest_checkpoint(path), verify=False)


class RunLog:
    """``log.csv``: one row per ``log_every`` steps; a resumed run drops rows past its step."""

    def __init__(self, path: Path, resume_step: int | None) -> None:
        self.path = path
        self.fields: list[str] | None = None
        if resume_step is not None and path.is_file():
            with path.open(newline="") as handle:
                reader = csv.DictReader(handle)
                self.fields = list(reader.fieldnames or [])
                kept = [row for row in reader if int(row["step"]) <= resume_step]
            with atomic_write(path) as temporary, temporary.open("w", newline="") as handle:
                writer = csv.DictWriter(handle, self.fields)
                writer.writeheader()
                writer.writerows(kept)
        elif path.exists():
            path.unlink()

    def write(self, row: Mapping[str, float]) -> None:
        if self.fields is None:
            fixed = ["step", "epoch", "wall_seconds", "steps_per_second"]
            self.fields = fixed + sorted(key for key in row if key not in fixed)
        new = not self.path.exists()
        with self.path.open("a", newline="") as handle:
            writer = csv.DictWriter(handle, self.fields, extrasaction="ignore")
            if new:
                writer.writeheader()
            writer.writerow({key: _format(value) for key, value in row.items()})


def _format(value: float) -> str:
    return str(value) if isinstance(value, int) else f"{value:.6g}"
