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

import dataclasses
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, ClassVar, NamedTuple

from torch import Tensor, nn

from inpaint_core.configs import config_to_dict
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

    A method's model usually sets ``self.config`` (its config dataclass) and calls
    :meth:`adopt` on the inference module its method builds, then adds its discriminators.
    """

    #: The registered method name the weights belong to.
    method: ClassVar[str]
    #: Child modules needed at inference; only these are written to the shipped weights.
    inference_networks: ClassVar[tuple[str, ...]]
    #: The method's inference module, set by :meth:`adopt`.
    inference: nn.Module

    def config_dict(self) -> dict[str, Any]:
        """The JSON-ready architecture config that rebuilds this model (stored in sidecars):
        by default :func:`~inpaint_core.configs.config_to_dict` of ``self.config``."""
        config = self.__dict__.get("config")
        if config is None or not dataclasses.is_dataclass(config):
            raise NotImplementedError(
                f"{type(self).__name__} has no config dataclass in self.config; set it or "
                "override config_dict()"
            )
        return config_to_dict(config)

    def adopt(self, networks: nn.Module) -> None:
        """Take the inference networks from ``networks``, the module the method's
        ``build_networks`` makes, as children named by :attr:`inference_networks`.

        ``networks`` itself stays reachable as :attr:`inference` (its helpers, such as
        ``complete``, run the shared children) without being a child: each network is
        trained, moved and checkpointed once.
        """
        for name in self.inference_networks:
            setattr(self, name, getattr(networks, name))
        self.__dict__["inference"] = networks

    @abstractmethod
    def optimizer_specs(self) -> dict[str, OptimizerSpec]:
        """One :class:`OptimizerSpec` per optimiser, by name, in update order."""

    @abstractmethod
    def training_step(self, batch: dict[str, Tensor]) -> Iterator[Phase]:
        """Yield the step's phases in order; see the module docstring."""

    def gan_optimizer_specs(
        self, lr: float, betas: tuple[float, float]
    ) -> dict[str, OptimizerSpec]:
        """The usual GAN pair for :meth:`optimizer_specs`, in update order: ``discriminator``
        (the child of that name), then ``generator`` (the :attr:`inference_networks`), both
        Adam with ``lr`` and ``betas``."""
        return {
            "discriminator": OptimizerSpec(("discriminator",), lr, betas),
            "generator": OptimizerSpec(self.inference_networks, lr, betas),
        }

    def training_metadata(self) -> dict[str, Any]:
        """Facts about how training ran (e.g. the texture loss used), for the sidecar."""
        return {}
