"""What a learned method gives the trainer: its networks, its optimisers' settings, its step.

A method's training module subclasses :class:`TrainableModel`. It owns the networks as child
modules and the losses, and its :meth:`~TrainableModel.training_step` is a generator that
yields one :class:`Phase` per optimiser update (for a GAN: the discriminator's loss, then the
generator's). The trainer (``inpaint_core.training.trainer``) owns everything else: optimisers
(CONVENTIONS rule 8), mixed precision, gradient clipping, checkpoints, logs and progress. Between
two phases the trainer runs ``backward`` and the optimiser step, so a loss computed after a
``yield`` sees the networks updated by the phase before it.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, ClassVar, NamedTuple

from torch import Tensor, nn

from inpaint_core.errors import ParameterError

__all__ = ["OptimizerSpec", "Phase", "TrainableModel"]


@dataclass(frozen=True)
class OptimizerSpec:
    """Adam settings for one group of networks.

    Attributes:
        networks: names of child modules of the model this optimiser updates.
        lr: learning rate (the edge GAN uses 1e-4).
        betas: Adam's ``(beta1, beta2)``.
    """

    networks: tuple[str, ...]
    lr: float = 1e-4
    betas: tuple[float, float] = (0.0, 0.9)

    def __post_init__(self) -> None:
        if not self.networks:
            raise ParameterError("an optimiser needs at least one network name")
        if not self.lr > 0:
            raise ParameterError(f"learning rate lr={self.lr!r} must be > 0")
        if not all(0.0 <= beta < 1.0 for beta in self.betas):
            raise ParameterError(f"Adam betas={self.betas!r} must lie in [0, 1)")


class Phase(NamedTuple):
    """One optimiser update of a training step.

    Attributes:
        optimizer: the key of :meth:`TrainableModel.optimizer_specs` whose networks the loss
            trains.
        loss: a scalar tensor with a graph back to those networks.
        metrics: floats to log, e.g. ``{"d_loss": 0.7}``; keys are unique within a step.
    """

    optimizer: str
    loss: Tensor
    metrics: dict[str, float]


class TrainableModel(nn.Module, ABC):
    """The networks and losses of one learned method, as the trainer drives them.

    Batches are dicts ``{"image": (B, 3, S, S) float in [0, 1], "mask": (B, 1, S, S)}`` with
    1 = hole (CONVENTIONS rule 9), already on the model's device.
    """

    #: The registered method name the weights belong to.
    method: ClassVar[str]
    #: Child modules needed at inference; only these are written to the shipped weights.
    inference_networks: ClassVar[tuple[str, ...]]

    @abstractmethod
    def config_dict(self) -> dict[str, Any]:
        """The JSON-ready architecture config that rebuilds this model (stored in sidecars)."""

    @abstractmethod
    def optimizer_specs(self) -> dict[str, OptimizerSpec]:
        """One :class:`OptimizerSpec` per optimiser, by name, in update order."""

    @abstractmethod
    def training_step(self, batch: dict[str, Tensor]) -> Iterator[Phase]:
        """Yield the step's phases in order; see the module docstring."""

    def training_metadata(self) -> dict[str, Any]:
        """Facts about how training ran (e.g. the texture loss used), for the sidecar."""
        return {}
