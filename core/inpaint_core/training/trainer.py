"""The trainer shared by every learned method: optimisers, precision, checkpoints, resume, logs.

:class:`Trainer` runs one training run into a run folder (:mod:`inpaint_core.training.runs`).
The inference weights are rewritten at every checkpoint, so a stopped run always leaves usable
weights; pass them to a method as ``--weights OUT/METHOD.safetensors``. A run never overwrites
another: an ``OUT`` that holds checkpoints is refused unless the run resumes from one of them.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Generator, Iterator, Mapping
from dataclasses import asdict, dataclass
from enum import Enum
from pathlib import Path
from typing import Any

import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from inpaint_core.checkpoint import (
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
from inpaint_core.learned import autocast_dtype
from inpaint_core.trainable.model import TrainableModel
from inpaint_core.training.runs import (
    CHECKPOINT_FOLDER,
    LOG_NAME,
    STATE_SUFFIX,
    RunLog,
    find_latest_checkpoint,
    read_run_info,
)

__all__ = [
    "Precision",
    "TrainConfig",
    "TrainProgress",
    "TrainResult",
    "Trainer",
    "find_latest_checkpoint",
    "follow",
    "read_run_info",
    "train",
]

logger = logging.getLogger(__name__)

#: Smoothing of the running losses shown on the progress bar.
_EMA = 0.9


class Precision(str, Enum):
    """Arithmetic of the forward passes, as inference's ``precision`` parameter decides it
    (:func:`inpaint_core.learned.autocast_dtype`). Mixed precision runs on CUDA only."""

    AUTO = "auto"  # bf16 autocast on CUDA where supported, else fp16; float32 elsewhere
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
        positive = ("steps", "batch_size", "checkpoint_every", "log_every", "keep_checkpoints")
        require_ints(self, positive)
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


def _autocast(config: TrainConfig, device: torch.device) -> torch.dtype | None:
    """The autocast dtype of the forward passes (None: float32), by inference's one rule
    (:func:`inpaint_core.learned.autocast_dtype`), its refusal put in ``inpaint train``'s
    terms."""
    try:
        return autocast_dtype(config.precision, str(device))
    except ParameterError as error:  # TrainConfig has checked the name: only the CUDA rule
        raise ParameterError(
            f"precision {config.precision!r} needs a CUDA device, not {device}; mixed "
            "precision on the CPU is not offered (bf16 autocast hangs on some CPUs); use "
            "--precision fp32"
        ) from error


@dataclass(frozen=True)
class TrainProgress:
    """What :meth:`Trainer.steps` yields after every step.

    Attributes:
        step: the steps done so far (a resumed run counts its earlier ones).
        steps: the step the run trains up to (``TrainConfig.steps``).
        epoch: the data epoch of the step.
        losses: the running (exponentially smoothed) value of every logged loss.
        wall_seconds: training wall-clock time so far, earlier segments of a resumed run too.
    """

    step: int
    steps: int
    epoch: int
    losses: dict[str, float]
    wall_seconds: float


class Trainer:
    """One training run of ``model`` on ``dataset`` into the folder ``out``; see the module
    docstring for what it writes. Building it prepares everything (folders, device, optimisers,
    ``init`` or ``resume`` weights) and fails early on bad settings; :meth:`steps` trains.

    Args:
        model: the method's :class:`~inpaint_core.trainable.model.TrainableModel`.
        dataset: yields ``{"image": (3, S, S), "mask": (1, S, S)}`` float32 items, 1 = hole.
        out: the run folder (created if missing).
        config: the run's settings.
        training_data: a JSON-ready description of the data, kept in every sidecar.
        resume: a checkpoint (or run folder) of the same method and config to continue from;
            networks, optimisers, scaler, RNG, step and epoch are restored.
        init: inference weights to start the networks they hold from (fine-tuning); the
            others start fresh.

    Raises:
        OutputExistsError: ``out`` holds checkpoints and ``resume`` is not given.
        InvalidWeightsError: ``resume``/``init`` of another method, config or network layout.
        ParameterError: a resume checkpoint already at or past ``config.steps``; mixed
            precision off CUDA.
    """

    def __init__(
        self,
        model: TrainableModel,
        dataset: Dataset[dict[str, Tensor]],
        out: str | Path,
        config: TrainConfig,
        *,
        training_data: Mapping[str, Any] | None = None,
        resume: str | Path | None = None,
        init: str | Path | None = None,
    ) -> None:
        self.model, self.dataset, self.config = model, dataset, config
        self.out = Path(out)
        self.folder = self.out / CHECKPOINT_FOLDER
        if resume is None and self.folder.is_dir() and any(self.folder.glob("step-*.safetensors")):
            raise OutputExistsError(
                f"{self.out} already holds a training run ({self.folder}); pass --resume "
                f"{self.out} to continue it or choose another --out"
            )
        self.folder.mkdir(parents=True, exist_ok=True)
        self.device = torch.device(resolve_device(config.device))
        self.autocast = _autocast(config, self.device)
        torch.manual_seed(config.seed)
        model.to(self.device)
        specs = model.optimizer_specs()
        self.optimizers = {
            name: torch.optim.Adam(
                [p for network in spec.networks for p in getattr(model, network).parameters()],
                lr=spec.lr,
                betas=spec.betas,
            )
            for name, spec in specs.items()
        }
        # Only the trained networks are checkpointed (never a frozen VGG, say).
        self.trained = [name for spec in specs.values() for name in spec.networks]
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.autocast is torch.float16)
        self.step, self.epoch, self.wall_before = 0, 0, 0.0
        if init is not None:
            self._start_from(init)
        if resume is not None:
            self._resume(resume)
        self.log = RunLog(self.out / LOG_NAME, self.step if resume is not None else None)
        self.training_data = dict(training_data or {})
        self.running: dict[str, float] = {}
        self.window: dict[str, list[float]] = {}
        self.last_checkpoint: Path | None = None
        self.started = time.monotonic()

    def _start_from(self, init: str | Path) -> None:
        tensors, info = load_checkpoint(
            init, expected_method=self.model.method, map_location=self.device
        )
        _load_networks(self.model, tensors, f"initial weights {init}")
        logger.info("started from %s (step %d of its run)", init, info.step)

    def _resume(self, resume: str | Path) -> None:
        checkpoint = find_latest_checkpoint(resume)
        tensors, info = load_checkpoint(checkpoint, expected_method=self.model.method)
        if info.config != self.model.config_dict():
            raise InvalidWeightsError(
                f"checkpoint {checkpoint} was trained with config {info.config}, not "
                f"{self.model.config_dict()}; resume with the checkpoint's own settings"
            )
        _load_networks(self.model, tensors, f"checkpoint {checkpoint}")
        state_path = checkpoint.with_name(checkpoint.name.replace(".safetensors", STATE_SUFFIX))
        if not state_path.is_file():
            raise MissingWeightsError(
                f"checkpoint {checkpoint} has no optimiser state {state_path.name}; it cannot "
                "be resumed (use it as --init to fine-tune from its weights instead)"
            )
        state = torch.load(state_path, map_location=self.device, weights_only=True)
        for name, optimizer in self.optimizers.items():
            optimizer.load_state_dict(state["optimizers"][name])
        self.scaler.load_state_dict(state["scaler"])
        torch.set_rng_state(state["rng"])
        self.step, self.epoch = info.step, int(state["epoch"]) + 1
        self.wall_before = info.wall_seconds
        if self.step >= self.config.steps:
            raise ParameterError(
                f"checkpoint {checkpoint} is at step {self.step} already; ask for "
                f"--steps > {self.step}"
            )
        logger.info("resuming %s from step %d", checkpoint, self.step)

    def wall(self) -> float:
        """Training wall-clock seconds so far, earlier segments of a resumed run included."""
        return self.wall_before + time.monotonic() - self.started

    def steps(
        self, should_stop: Callable[[], bool] | None = None
    ) -> Generator[TrainProgress, None, TrainResult]:
        """Train up to ``config.steps``, yielding a :class:`TrainProgress` after every step.

        ``should_stop`` is polled after every step (once its progress has been taken): True
        saves a checkpoint and returns. A ``KeyboardInterrupt`` during a step, or thrown in at
        a yield (:func:`follow` does so for one raised by its ``progress``), also saves a
        checkpoint before it is re-raised. Returns the :class:`TrainResult`.

        Raises:
            FloatingPointError: a loss became NaN or infinite (nothing of that step is saved).
        """
        config = self.config
        self.started = time.monotonic()
        last_log_time, last_log_step = self.started, self.step
        self.model.train()
        batches = _batches(self.dataset, config, self.epoch)
        stopped = False
        try:
            while self.step < config.steps:
                self.epoch, batch = next(batches)
                self._record(self._train_step(batch))
                if self.step % config.log_every == 0 or self.step == config.steps:
                    now = time.monotonic()
                    rate = (self.step - last_log_step) / max(now - last_log_time, 1e-9)
                    self._write_log_row(rate)
                    last_log_time, last_log_step = now, self.step
                if self.step % config.checkpoint_every == 0 and self.step < config.steps:
                    self.checkpoint()
                yield TrainProgress(
                    self.step, config.steps, self.epoch, dict(self.running), self.wall()
                )
                if should_stop is not None and should_stop():
                    stopped = True
                    logger.info("training stopped at step %d on request", self.step)
                    break
        except KeyboardInterrupt:
            if self.step > 0:
                logger.warning(
                    "interrupted at step %d; saving a checkpoint to resume from", self.step
                )
                self.checkpoint()
            raise
        final = self.checkpoint()
        return TrainResult(
            checkpoint=final,
            weights=self.out / f"{self.model.method}.safetensors",
            step=self.step,
            stopped=stopped,
            losses=dict(self.running),
        )

    def _train_step(self, batch: Mapping[str, Tensor]) -> dict[str, float]:
        """One step: every phase of ``training_step`` and its optimiser update; its metrics."""
        batch = {key: value.to(self.device, non_blocking=True) for key, value in batch.items()}
        metrics: dict[str, float] = {}
        phases = self.model.training_step(batch)
        dtype = self.autocast
        while True:
            with torch.autocast(
                self.device.type, dtype or torch.float32, enabled=dtype is not None
            ):
                phase = next(phases, None)
            if phase is None:
                break
            optimizer = self.optimizers[phase.optimizer]
            optimizer.zero_grad(set_to_none=True)
            self.scaler.scale(phase.loss).backward()
            if self.config.grad_clip > 0:
                self.scaler.unscale_(optimizer)
                parameters = [p for group in optimizer.param_groups for p in group["params"]]
                torch.nn.utils.clip_grad_norm_(parameters, self.config.grad_clip)
            self.scaler.step(optimizer)
            metrics.update(phase.metrics)
        self.scaler.update()
        self.step += 1
        return metrics

    def _record(self, metrics: Mapping[str, float]) -> None:
        """Add a step's metrics to the running losses and to the log window."""
        for key, value in metrics.items():
            if not math.isfinite(value):
                raise FloatingPointError(
                    f"loss {key} became {value} at step {self.step}; lower the learning rate "
                    f"or --grad-clip, or resume from {self.last_checkpoint or 'an earlier run'}"
                )
            before = self.running.get(key)
            self.running[key] = value if before is None else _EMA * before + (1 - _EMA) * value
            self.window.setdefault(key, []).append(value)

    def _write_log_row(self, rate: float) -> None:
        row = {key: sum(values) / len(values) for key, values in self.window.items()}
        wall = self.wall()
        fixed = {"step": self.step, "epoch": self.epoch, "wall_seconds": wall}
        self.log.write({**fixed, "steps_per_second": rate, **row})
        self.window.clear()

    def checkpoint(self) -> Path:
        """Save the full checkpoint of the current step, its optimiser state and the fp16
        inference weights; prune the oldest checkpoints. Returns the checkpoint's path."""
        model = self.model
        networks = {name: getattr(model, name).state_dict() for name in self.trained}
        path = self.folder / f"step-{self.step:08d}.safetensors"
        common: dict[str, Any] = {
            "method": model.method,
            "config": model.config_dict(),
            "step": self.step,
            "training_data": self.training_data,
            "losses": self.running,
            "hardware": describe_hardware(self.device),
            "wall_seconds": self.wall(),
            "extra": {"train_config": asdict(self.config), **model.training_metadata()},
        }
        save_checkpoint(path, flatten_state(networks), overwrite=True, **common)
        state = {
            "optimizers": {name: opt.state_dict() for name, opt in self.optimizers.items()},
            "scaler": self.scaler.state_dict(),
            "rng": torch.get_rng_state(),
            "epoch": self.epoch,
        }
        with atomic_write(path.with_name(path.name.replace(".safetensors", STATE_SUFFIX))) as tmp:
            torch.save(state, tmp)
        inference = {name: networks[name] for name in model.inference_networks}
        weights = self.out / f"{model.method}.safetensors"
        save_checkpoint(weights, flatten_state(inference), overwrite=True, half=True, **common)
        self._prune()
        self.last_checkpoint = path
        return path

    def _prune(self) -> None:
        """Delete all but the newest ``keep_checkpoints`` full checkpoints."""
        for old in sorted(self.folder.glob("step-*.safetensors"))[: -self.config.keep_checkpoints]:
            for suffix in (".safetensors", ".json", STATE_SUFFIX):
                old.with_name(old.name.replace(".safetensors", suffix)).unlink(missing_ok=True)


def follow(
    run: Generator[TrainProgress, None, TrainResult],
    progress: Callable[[TrainProgress], None] | None = None,
) -> TrainResult:
    """Iterate a training generator (:meth:`Trainer.steps`, :func:`~inpaint_core.training.
    fine_tune.fine_tune`) to its end, calling ``progress`` after every step; returns its result.

    A ``KeyboardInterrupt`` raised by ``progress`` is thrown into ``run``, which saves a
    checkpoint before it propagates, as it does for one during a step.
    """
    try:
        update = next(run)
        while True:
            try:
                if progress is not None:
                    progress(update)
            except KeyboardInterrupt as interrupt:
                update = run.throw(interrupt)
                continue
            update = next(run)
    except StopIteration as finished:
        return finished.value


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
    """Train ``model`` on ``dataset`` up to ``config.steps`` and write the run into ``out``:
    a :class:`Trainer` (see it for the arguments and errors) run to its end.

    ``progress`` is called after every step with ``(step, steps, running_losses)``;
    ``should_stop`` is polled after every step: True saves a checkpoint and returns. Returns a
    :class:`TrainResult`; Ctrl-C also saves a checkpoint before re-raising.
    """
    trainer = Trainer(
        model, dataset, out, config, training_data=training_data, resume=resume, init=init
    )

    def report(update: TrainProgress) -> None:
        if progress is not None:
            progress(update.step, update.steps, update.losses)

    return follow(trainer.steps(should_stop), report)
