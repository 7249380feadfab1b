"""A tiny trainable model, its data and run readers shared by ``tests/core/test_trainer*.py``."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path

import torch
from torch import Tensor, nn
from torch.utils.data import Dataset

from inpaint_core.checkpoint import load_checkpoint
from inpaint_core.trainable.model import OptimizerSpec, Phase, TrainableModel
from inpaint_core.training.trainer import TrainConfig
from inpaint_methods.edge_gan import EdgeGan

SIZE = 16
TINY_EDGE_GAN = dict(EdgeGan.smoke_test_options)


class TinyFill(TrainableModel):
    """A 1-conv generator with a masked L1 loss, plus a critic with its own optimiser.

    The input gets a little noise from the global torch RNG, so a resumed run matches an
    uninterrupted one only if the RNG state is restored too. ``nan_from`` makes the generator
    loss NaN from that call of ``training_step`` on.
    """

    method = "tiny-fill"
    inference_networks = ("generator",)

    def __init__(self, tag: str = "a", lr: float = 1e-2, nan_from: int | None = None) -> None:
        super().__init__()
        self.tag, self.lr, self.nan_from, self.calls = tag, lr, nan_from, 0
        self.generator = nn.Conv2d(4, 3, 3, padding=1)
        self.critic = nn.Conv2d(3, 1, 4, stride=4)

    def config_dict(self) -> dict[str, object]:
        return {"tag": self.tag, "lr": self.lr}

    def optimizer_specs(self) -> dict[str, OptimizerSpec]:
        return {
            "critic": OptimizerSpec(("critic",), self.lr),
            "generator": OptimizerSpec(("generator",), self.lr),
        }

    def training_metadata(self) -> dict[str, object]:
        return {"flavour": "tiny"}

    def training_step(self, batch: dict[str, Tensor]) -> Iterator[Phase]:
        images, masks = batch["image"], batch["mask"]
        self.calls += 1
        noisy = images + 0.01 * torch.randn_like(images)
        fake = torch.sigmoid(self.generator(torch.cat([noisy * (1 - masks), masks], dim=1)))
        critic = self.critic(fake.detach()).mean() - self.critic(images).mean()
        yield Phase("critic", critic, {"critic": float(critic.detach())})
        l1 = ((fake - images).abs() * masks).mean() / masks.mean()
        loss = l1 - 0.01 * self.critic(fake).mean()
        if self.nan_from is not None and self.calls >= self.nan_from:
            loss = loss * float("nan")
        yield Phase("generator", loss, {"l1": float(l1.detach()), "gen": float(loss.detach())})


class EpochImages(Dataset):
    """Deterministic random images that change with the epoch, and one fixed hole.

    ``fixed=True`` returns the same image for every index and epoch (a fixed batch).
    """

    def __init__(self, items: int = 2, size: int = SIZE, fixed: bool = False) -> None:
        self.items, self.size, self.fixed, self.epoch = items, size, fixed, 0
        self.mask = torch.zeros(1, size, size)
        self.mask[:, size // 4 : size // 2 + 2, size // 5 : size // 2 + 3] = 1.0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.items

    def __getitem__(self, index: int) -> dict[str, Tensor]:
        if self.fixed:
            rows, cols = torch.meshgrid(
                torch.linspace(0, 1, self.size), torch.linspace(0, 1, self.size), indexing="ij"
            )
            image = torch.stack([rows, cols, 0.5 + 0.4 * torch.sin(6 * cols)])
        else:
            generator = torch.Generator().manual_seed(1000 * self.epoch + index)
            image = torch.rand(3, self.size, self.size, generator=generator)
        return {"image": image, "mask": self.mask.clone()}


def tiny(seed: int = 0, **kwargs: object) -> TinyFill:
    torch.manual_seed(seed)
    return TinyFill(**kwargs)  # type: ignore[arg-type]


def settings(steps: int, **kwargs: object) -> TrainConfig:
    values: dict[str, object] = {"batch_size": 2, "device": "cpu", "log_every": 1}
    values.update(kwargs)
    return TrainConfig(steps=steps, **values)  # type: ignore[arg-type]


def read_log(out: Path) -> list[dict[str, str]]:
    with (out / "log.csv").open(newline="") as handle:
        return list(csv.DictReader(handle))


def tensors_of(path: Path) -> dict[str, Tensor]:
    return load_checkpoint(path)[0]
