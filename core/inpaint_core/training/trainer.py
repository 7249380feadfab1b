"""The trainer shared by every learned method: optimisers, precision, checkpoints, resume, logs.

A run writes into its output folder ``OUT``::

    OUT/log.csv                                   running losses every ``log_every`` steps
    OUT/checkpoints/step-00000500.safetensors     every network, float32 (+ .json sidecar)
    OUT/checkpoints/step-00000500.state.pt        optimiser and scaler states, RNG, epoch
    OUT/METHOD.safetensors (+ METHOD.json)        the inference networks only, float16

The inference weights are rewritten at every checkpoint, so a stopped run always leaves usable
weights; pass them to a method as ``--weights OUT/METHOD.safetensors``. A run never overwrites
another: an ``OUT`` that holds checkpoints is refused unless the run resumes from one of them.
"""

from __future__ import annotations

import csv
import logging
import math
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass
from enum import Enum
from pathlib import Path
from typing import Any

import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from inpaint_core.checkpoint import (
    CheckpointInfo,
    checkpoint_paths,
    describe_hardware,
    flatten_state,
    load_checkpoint,
    save_checkpoint,
    unflatten_state,
)
from inpaint_core.checks import parse_choice, require_ints
from inpaint_core.devices import resolve_device
from inpaint_core.errors import (
    InvalidInputError,
    InvalidWeightsError,
    MissingWeightsError,
    OutputExistsError,
    ParameterError,
)
from inpaint_core.io.atomic import atomic_write
from inpaint_core.trainable.model import TrainableModel

__all__ = ["Precision", "TrainConfig", "TrainResult", "find_latest_checkpoint", "train"]

logger = logging.getLogger(__name__)

CHECKPOINT_FOLDER = "checkpoints"
STATE_SUFFIX = ".state.pt"
LOG_NAME = "log.csv"
#: Smoothing of the running losses shown on the progress bar.
_EMA = 0.9


class Precision(str, Enum):
    """Arithmetic of the forward passes. Mixed precision runs on CUDA only."""

    AUTO = "auto"  # bf16 autocast on CUDA, float32 elsewhere
    FP32 = "fp32"
    BF16 = "bf16"
    FP16 = "fp16"  # with a gradient scaler


@dataclass(frozen=True)
class TrainConfig:
    """Settings of one training run.

    Attributes:
        steps: the step to train up to (a resumed run continues to this total).
        batch_size: images per step.
        device: ``auto``, ``cpu``, ``cuda``, ``cuda:N`` or ``mps``.
        precision: a :class:`Precision` name.
        grad_clip: largest gradient norm per optimiser; 0 disables clipping.
        checkpoint_every: steps between checkpoints (one is always taken at the end).
        log_every: steps between rows of ``log.csv``.
        keep_checkpoints: the newest this many full checkpoints are kept.
        num_workers: data-loading processes (0 loads in the training process).
        seed: seeds the networks' initialisation and the data order.
    """

    steps: int
    batch_size: int = 4
    device: str = "auto"
    precision: str = "auto"
    grad_clip: float = 1.0
    checkpoint_every: int = 500
    log_every: int = 10
    keep_checkpoints: int = 3
    num_workers: int = 0
    seed: int = 0

    def __post_init__(self) -> None:
        require_ints(self, ("steps", "batch_size", "checkpoint_every", "log_every",
                            "keep_checkpoints"))  # fmt: skip
        require_ints(self, ("num_workers",), minimum=0)
        if not (math.isfinite(self.grad_clip) and self.grad_clip >= 0):
            raise ParameterError(f"grad_clip={self.grad_clip!r} must be a finite number >= 0")
        parse_choice(Precision, self.precision, "precision")


@dataclass(frozen=True)
class TrainResult:
    """What a run left: the last checkpoint, the inference weights, the step reached."""

    checkpoint: Path
    weights: Path
    step: int
    stopped: bool
    losses: dict[str, float]


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


def _precision(config: TrainConfig, device: torch.device) -> torch.dtype | None:
    """The autocast dtype, or None for float32."""
    kind = Precision(config.precision)
    if kind is Precision.AUTO:
        return torch.bfloat16 if device.type == "cuda" else None
    if kind is Precision.FP32:
        return None
    if device.type != "cuda":
        raise ParameterError(
            f"precision {kind.value!r} needs a CUDA device, not {device}; mixed precision on "
            "the CPU is not offered (bf16 autocast hangs on some CPUs); use --precision fp32"
        )
    return torch.bfloat16 if kind is Precision.BF16 else torch.float16


def _batches(
    dataset: Dataset[dict[str, Tensor]], config: TrainConfig, epoch: int
) -> Iterator[tuple[int, dict[str, Tensor]]]:
    """Yield ``(epoch, batch)`` forever, a fresh shuffle and ``set_epoch`` every epoch."""
    if len(dataset) < config.batch_size:  # type: ignore[arg-type]
        raise InvalidInputError(
            f"the training data has {len(dataset)} items, fewer than one batch of "  # type: ignore[arg-type]
            f"{config.batch_size}; add images or lower --batch"
        )
    while True:
        if hasattr(dataset, "set_epoch"):
            dataset.set_epoch(epoch)
        order = torch.Generator().manual_seed(config.seed * 1_000_003 + epoch)
        loader = DataLoader(
            dataset,
            batch_size=config.batch_size,
            shuffle=True,
            drop_last=True,
            generator=order,
            num_workers=config.num_workers,
        )
        for batch in loader:
            yield epoch, batch
        epoch += 1


class _CsvLog:
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


def _load_networks(model: TrainableModel, tensors: Mapping[str, Tensor], what: str) -> None:
    states = unflatten_state(tensors)
    for name, state in states.items():
        network = getattr(model, name, None)
        if not isinstance(network, torch.nn.Module):
            raise InvalidWeightsError(f"{what} holds network {name!r}, which the model lacks")
        try:
            network.load_state_dict(state)
        except RuntimeError as e:
            raise InvalidWeightsError(f"{what}: network {name!r} does not fit: {e}") from e


def train(
    model: TrainableModel,
    dataset: Dataset[dict[str, Tensor]],
    out: str | Path,
    config: TrainConfig,
    *,
    training_data: Mapping[str, Any] | None = None,
    resume: str | Path | None = None,
    init: str | Path | None = None,
    progress: Callable[[int, int, dict[str, float]], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> TrainResult:
    """Train ``model`` on ``dataset`` up to ``config.steps`` and write the run into ``out``.

    Args:
        model: the method's :class:`TrainableModel`.
        dataset: yields ``{"image": (3, S, S), "mask": (1, S, S)}`` float32 items.
        out: the run folder (created if missing).
        config: the run's settings.
        training_data: a JSON-ready description of the data, kept in every sidecar.
        resume: a checkpoint (or run folder) of the same method and config to continue from;
            networks, optimisers, scaler, step and epoch are restored.
        init: inference weights to start the networks they hold from (fine-tuning); the
            others start fresh.
        progress: called after every step with ``(step, steps, running_losses)``.
        should_stop: polled after every step; True saves a checkpoint and returns.

    Returns:
        A :class:`TrainResult`. Ctrl-C also saves a checkpoint before re-raising.

    Raises:
        OutputExistsError: ``out`` holds checkpoints and ``resume`` is not given.
        InvalidWeightsError: ``resume``/``init`` of another method, config or network layout.
        ParameterError: a resume checkpoint already at or past ``config.steps``.
    """
    out = Path(out)
    folder = out / CHECKPOINT_FOLDER
    if resume is None and folder.is_dir() and any(folder.glob("step-*.safetensors")):
        raise OutputExistsError(
            f"{out} already holds a training run ({folder}); pass --resume {out} to continue "
            "it or choose another --out"
        )
    folder.mkdir(parents=True, exist_ok=True)
    device = torch.device(resolve_device(config.device))
    autocast_dtype = _precision(config, device)
    torch.manual_seed(config.seed)
    model.to(device)

    optimizers = {
        name: torch.optim.Adam(
            [p for network in spec.networks for p in getattr(model, network).parameters()],
            lr=spec.lr,
            betas=spec.betas,
        )
        for name, spec in model.optimizer_specs().items()
    }
    # Only the trained networks are checkpointed (never a frozen VGG, say).
    trained = [name for spec in model.optimizer_specs().values() for name in spec.networks]
    scaler = torch.amp.GradScaler("cuda", enabled=autocast_dtype is torch.float16)
    step, epoch, wall_before = 0, 0, 0.0
    if init is not None:
        tensors, info = load_checkpoint(init, expected_method=model.method, map_location=device)
        _load_networks(model, tensors, f"initial weights {init}")
        logger.info("started from %s (step %d of its run)", init, info.step)
    if resume is not None:
        checkpoint = find_latest_checkpoint(resume)
        tensors, info = load_checkpoint(checkpoint, expected_method=model.method)
        if info.config != model.config_dict():
            raise InvalidWeightsError(
                f"checkpoint {checkpoint} was trained with config {info.config}, not "
                f"{model.config_dict()}; resume with the checkpoint's own settings"
            )
        _load_networks(model, tensors, f"checkpoint {checkpoint}")
        state_path = checkpoint.with_name(checkpoint.name.replace(".safetensors", STATE_SUFFIX))
        if not state_path.is_file():
            raise MissingWeightsError(
                f"checkpoint {checkpoint} has no optimiser state {state_path.name}; it cannot "
                "be resumed (use it as --init to fine-tune from its weights instead)"
            )
        state = torch.load(state_path, map_location=device, weights_only=True)
        for name, optimizer in optimizers.items():
            optimizer.load_state_dict(state["optimizers"][name])
        scaler.load_state_dict(state["scaler"])
        torch.set_rng_state(state["rng"])
        step, epoch, wall_before = info.step, int(state["epoch"]) + 1, info.wall_seconds
        if step >= config.steps:
            raise ParameterError(
                f"checkpoint {checkpoint} is at step {step} already; ask for --steps > {step}"
            )
        logger.info("resuming %s from step %d", checkpoint, step)

    log = _CsvLog(out / LOG_NAME, step if resume is not None else None)
    data_description = dict(training_data or {})
    running: dict[str, float] = {}
    window: dict[str, list[float]] = {}
    started = time.monotonic()
    last_log_time, last_log_step = started, step
    last_checkpoint: Path | None = None

    def wall() -> float:
        return wall_before + time.monotonic() - started

    def checkpoint_now() -> Path:
        nonlocal last_checkpoint
        networks = {name: getattr(model, name).state_dict() for name in trained}
        path = folder / f"step-{step:08d}.safetensors"
        common: dict[str, Any] = {
            "method": model.method,
            "config": model.config_dict(),
            "step": step,
            "training_data": data_description,
            "losses": running,
            "hardware": describe_hardware(device),
            "wall_seconds": wall(),
            "extra": {"train_config": asdict(config), **model.training_metadata()},
        }
        save_checkpoint(path, flatten_state(networks), overwrite=True, **common)
        state = {
            "optimizers": {name: opt.state_dict() for name, opt in optimizers.items()},
            "scaler": scaler.state_dict(),
            "rng": torch.get_rng_state(),
            "epoch": current_epoch,
        }
        with atomic_write(path.with_name(path.name.replace(".safetensors", STATE_SUFFIX))) as tmp:
            torch.save(state, tmp)
        inference = {name: networks[name] for name in model.inference_networks}
        save_checkpoint(
            out / f"{model.method}.safetensors",
            flatten_state(inference),
            overwrite=True,
            half=True,
            **common,
        )
        for old in sorted(folder.glob("step-*.safetensors"))[: -config.keep_checkpoints]:
            for suffix in (".safetensors", ".json", STATE_SUFFIX):
                old.with_name(old.name.replace(".safetensors", suffix)).unlink(missing_ok=True)
        last_checkpoint = path
        return path

    model.train()
    current_epoch = epoch
    stopped = False
    batches = _batches(dataset, config, epoch)
    try:
        while step < config.steps:
            current_epoch, batch = next(batches)
            batch = {key: value.to(device, non_blocking=True) for key, value in batch.items()}
            metrics: dict[str, float] = {}
            phases = model.training_step(batch)
            while True:
                with torch.autocast(device.type, autocast_dtype or torch.float32,
                                    enabled=autocast_dtype is not None):  # fmt: skip
                    phase = next(phases, None)
                if phase is None:
                    break
                optimizer = optimizers[phase.optimizer]
                optimizer.zero_grad(set_to_none=True)
                scaler.scale(phase.loss).backward()
                if config.grad_clip > 0:
                    scaler.unscale_(optimizer)
                    parameters = [p for group in optimizer.param_groups for p in group["params"]]
                    torch.nn.utils.clip_grad_norm_(parameters, config.grad_clip)
                scaler.step(optimizer)
                metrics.update(phase.metrics)
            scaler.update()
            step += 1
            for key, value in metrics.items():
                if not math.isfinite(value):
                    raise FloatingPointError(
                        f"loss {key} became {value} at step {step}; lower the learning rate "
                        f"or --grad-clip, or resume from {last_checkpoint or 'an earlier run'}"
                    )
                running[key] = value if key not in running else _EMA * running[key] + (
                    1 - _EMA) * value  # fmt: skip
                window.setdefault(key, []).append(value)
            if step % config.log_every == 0 or step == config.steps:
                now = time.monotonic()
                rate = (step - last_log_step) / max(now - last_log_time, 1e-9)
                row = {key: sum(values) / len(values) for key, values in window.items()}
                log.write({"step": step, "epoch": current_epoch, "wall_seconds": wall(),
                           "steps_per_second": rate, **row})  # fmt: skip
                window.clear()
                last_log_time, last_log_step = now, step
            if step % config.checkpoint_every == 0 and step < config.steps:
                checkpoint_now()
            if progress is not None:
                progress(step, config.steps, dict(running))
            if should_stop is not None and should_stop():
                stopped = True
                logger.info("training stopped at step %d on request", step)
                break
    except KeyboardInterrupt:
        if step > 0:
            logger.warning("interrupted at step %d; saving a checkpoint to resume from", step)
            checkpoint_now()
        raise
    final = checkpoint_now()
    return TrainResult(
        checkpoint=final,
        weights=out / f"{model.method}.safetensors",
        step=step,
        stopped=stopped,
        losses=dict(running),
    )


def read_checkpoint_info(path: str | Path) -> CheckpointInfo:
    """The sidecar of a checkpoint (or of a run folder's newest one), without loading weights."""
    _, sidecar = checkpoint_paths(find_latest_checkpoint(path))
    if not sidecar.is_file():
        raise InvalidWeightsError(f"checkpoint sidecar {sidecar} does not exist")
    return CheckpointInfo.from_json(sidecar.read_text(encoding="utf-8"))
