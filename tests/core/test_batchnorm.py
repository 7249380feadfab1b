"""BatchNorm recalibration: exact averages over the given batches, weights untouched."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import torch
from torch import Tensor, nn

from inpaint_core.errors import ParameterError
from inpaint_core.trainable.model import OptimizerSpec, Phase, TrainableModel
from inpaint_core.training.batchnorm import batch_norm_layers, recalibrate_batch_norm


class NormFill(TrainableModel):
    """A conv + BatchNorm generator and a BatchNorm discriminator (not an inference net)."""

    method = "norm-fill"
    inference_networks = ("generator",)

    def __init__(self) -> None:
        super().__init__()
        self.generator = nn.Sequential(nn.Conv2d(4, 3, 1), nn.BatchNorm2d(3))
        self.discriminator = nn.Sequential(nn.Conv2d(3, 1, 1), nn.BatchNorm2d(1))

    def config_dict(self) -> dict[str, Any]:
        return {}

    def optimizer_specs(self) -> dict[str, OptimizerSpec]:
        return {"generator": OptimizerSpec(("generator",), 1e-3)}

    def training_step(self, batch: dict[str, Tensor]) -> Iterator[Phase]:
        output = self.generator(torch.cat([batch["image"], batch["mask"]], dim=1))
        self.discriminator(output)
        yield Phase("generator", output.abs().mean(), {})


def batches(count: int) -> list[dict[str, Tensor]]:
    generator = torch.Generator().manual_seed(0)
    return [
        {"image": torch.rand(2, 3, 8, 8, generator=generator) * (index + 1),
         "mask": torch.zeros(2, 1, 8, 8)}
        for index in range(count)
    ]


def test_running_statistics_become_the_exact_average() -> None:
    torch.manual_seed(0)
    model = NormFill()
    data = batches(4)
    state = model.generator.state_dict()
    weights = {k: v.clone() for k, v in state.items() if "running" not in k and "batches" not in k}
    discriminator_stats = model.discriminator[1].running_mean.clone()
    assert recalibrate_batch_norm(model, data) == 4
    norm = model.generator[1]
    with torch.no_grad():
        features = [model.generator[0](torch.cat([b["image"], b["mask"]], 1)) for b in data]
    expected_mean = torch.stack([f.mean(dim=(0, 2, 3)) for f in features]).mean(0)
    expected_var = torch.stack([f.var(dim=(0, 2, 3), unbiased=True) for f in features]).mean(0)
    torch.testing.assert_close(norm.running_mean, expected_mean)
    torch.testing.assert_close(norm.running_var, expected_var)
    assert norm.momentum == 0.1 and model.training  # restored
    for key, value in weights.items():
        assert torch.equal(model.generator.state_dict()[key], value)
    assert torch.equal(model.discriminator[1].running_mean, discriminator_stats)  # untouched


def test_no_batch_norm_runs_nothing_and_no_batches_is_an_error() -> None:
    model = NormFill()
    model.generator = nn.Sequential(nn.Conv2d(4, 3, 1))
    assert batch_norm_layers(model.generator) == []
    assert recalibrate_batch_norm(model, iter(())) == 0
    with pytest.raises(ParameterError, match="no batches to recalibrate"):
        recalibrate_batch_norm(NormFill(), [])
