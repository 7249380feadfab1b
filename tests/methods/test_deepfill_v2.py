"""deepfill-v2: config checks, shapes, the telea prior, training, weights and the contract."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from inpaint_core.errors import InvalidInputError, ParameterError
from inpaint_core.learned import config_to_dict
from inpaint_core.method import Family
from inpaint_core.priors import Prior, prior_fill
from inpaint_core.testing import check_method
from inpaint_core.testing_learned import box_masks
from inpaint_methods.deepfill_v2 import (
    PAD_MULTIPLE,
    DeepFillV2,
    DeepFillV2Config,
    DeepFillV2Networks,
    DeepFillV2Training,
)

from .learned_weights import write_untrained

TINY = dict(DeepFillV2.smoke_test_options)

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def ramp_images(batch: int = 1, height: int = 32, width: int = 32) -> torch.Tensor:
    rows, cols = torch.meshgrid(
        torch.linspace(0, 1, height), torch.linspace(0, 1, width), indexing="ij"
    )
    image = torch.stack([rows, cols, 0.5 + 0.4 * torch.sin(6 * cols)])
    return image[None].repeat(batch, 1, 1, 1)


# --- config ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"prior": "lama"}, r"unknown prior 'lama'; valid: none, telea, blend"),
        ({"base_channels": 0}, r"base_channels=0 must be an integer >= 1"),
        ({"base_channels": 10}, r"base_channels=10 must be a multiple of 4"),
        ({"discriminator_channels": 2.5}, r"discriminator_channels=2.5 must be an integer"),
        ({"attention_rate": 4}, r"attention_rate=4 must be 1 or 2"),
        ({"attention_chunk": 0}, r"attention_chunk=0 must be an integer >= 1"),
        ({"attention_scale": 0.0}, r"attention_scale=0.0 must be a finite number > 0"),
        ({"attention_fuse": "yes"}, r"attention_fuse='yes' must be true or false"),
        ({"lr": float("nan")}, r"lr=nan must be a finite number > 0"),
        ({"beta1": 1.0}, r"beta1=1.0 must lie in \[0, 1\)"),
        ({"adv_weight": -1.0}, r"adv_weight=-1.0 must be a finite number >= 0"),
        ({"l1_coarse_weight": float("inf")}, r"l1_coarse_weight=inf must be a finite number"),
    ],
)
def test_config_rejects_bad_values(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ParameterError, match=message):
        DeepFillV2Config(**kwargs)  # type: ignore[arg-type]


def test_config_defaults_are_the_official_code() -> None:
    config = DeepFillV2Config(prior="telea")  # type: ignore[arg-type]
    assert config.prior is Prior.TELEA
    assert (config.base_channels, config.discriminator_channels) == (48, 64)
    assert (config.attention_rate, config.attention_scale, config.attention_fuse) == (2, 10, True)
    assert (config.lr, config.beta1, config.beta2) == (1e-4, 0.5, 0.999)
    assert config_to_dict(config)["prior"] == "telea"


# --- networks -------------------------------------------------------------------------------
def test_networks_shapes_and_ranges() -> None:
    torch.manual_seed(0)
    networks = DeepFillV2Networks(DeepFillV2Config(**TINY))  # type: ignore[arg-type]
    images = torch.rand(2, 3, 32, 48)
    masks = box_masks(48, 8, 20, 10, 30, batch=2)[..., :32, :]
    coarse, refined, filled = networks(images, masks)
    for tensor in (coarse, refined, filled):
        assert tensor.shape == (2, 3, 32, 48) and tensor.dtype == torch.float32
        assert tensor.min() >= 0 and tensor.max() <= 1
    assert torch.equal(filled, prior_fill(images, masks, "none"))
    assert [name for name, _ in networks.named_children()] == ["coarse", "refine"]
    scrambled = torch.where(masks > 0.5, torch.rand_like(images), images)
    assert torch.equal(networks(scrambled, masks)[1], refined)  # hole pixels are never read
    with pytest.raises(
        InvalidInputError,
        match=rf"image 36 x 48 is not a multiple of "
        rf"{PAD_MULTIPLE}",
    ):
        networks(torch.rand(1, 3, 36, 48), torch.zeros(1, 1, 36, 48))
    with pytest.raises(InvalidInputError, match=r"are not \(B, 3, H, W\), \(B, 1, H, W\)"):
        networks(torch.rand(1, 4, 32, 32), torch.zeros(1, 1, 32, 32))


def test_the_official_width_has_four_million_generator_parameters() -> None:
    networks = DeepFillV2Networks(DeepFillV2Config())
    count = sum(p.numel() for p in networks.parameters())
    assert 4.0e6 < count < 4.1e6  # the paper: 4.1 M


def test_untrained_telea_prior_equals_the_telea_fill() -> None:
    torch.manual_seed(0)
    networks = DeepFillV2Networks(DeepFillV2Config(**TINY, prior="telea"))  # type: ignore[arg-type]
    images = ramp_images(2)
    masks = box_masks(32, 8, 20, 10, 22, batch=2)
    coarse, refined, filled = networks(images, masks)
    assert torch.equal(filled, prior_fill(images, masks, "telea"))
    assert torch.equal(coarse, filled) and torch.equal(refined, filled)


def test_training_step_phases_metrics_and_gradients() -> None:
    torch.manual_seed(0)
    model = DeepFillV2.build_training(DeepFillV2Config(**TINY))  # type: ignore[arg-type]
    assert isinstance(model, DeepFillV2Training)
    batch = {"image": ramp_images(2), "mask": box_masks(32, 8, 20, 10, 22, batch=2)}
    phases = list(model.training_step(batch))
    assert [phase.optimizer for phase in phases] == ["discriminator", "generator"]
    assert list(model.optimizer_specs()) == ["discriminator", "generator"]
    assert model.optimizer_specs()["generator"].betas == (0.5, 0.999)
    assert set(phases[0].metrics) == {"d_loss"}
    assert set(phases[1].metrics) == {"l1_coarse", "l1_refine", "adv", "hole_psnr"}
    for phase in phases:
        assert phase.loss.ndim == 0 and phase.loss.requires_grad
        assert all(math.isfinite(value) for value in phase.metrics.values())
    # The discriminator's loss does not reach the generators.
    phases[0].loss.backward()
    assert all(p.grad is None for p in model.coarse.parameters())
    assert any(p.grad is not None for p in model.discriminator.parameters())
    phases[1].loss.backward()
    assert all(p.grad is not None for p in model.coarse.parameters())
    assert all(p.grad is not None for p in model.refine.parameters())


# --- the method -------------------------------------------------------------------------------
def test_method_info() -> None:
    info = DeepFillV2.info
    assert info.name == "deepfill-v2" and info.family is Family.STACKGAN and info.learned
    assert [p.name for p in info.parameters] == ["weights", "device", "precision", "backend"]
    assert info.pad_multiple == PAD_MULTIPLE and info.supports_gpu
    assert DeepFillV2.config_class is DeepFillV2Config


@pytest.mark.parametrize("prior", ["none", "telea"])
def test_deepfill_v2_keeps_the_method_contract(tmp_path: Path, prior: str) -> None:
    config = DeepFillV2Config(**TINY, prior=prior)  # type: ignore[arg-type]
    weights = write_untrained(DeepFillV2Training, config, "deepfill-v2", tmp_path)
    check_method(DeepFillV2, {"weights": weights, "device": "cpu"})
    check_method(DeepFillV2, {"weights": str(weights), "device": "cpu"}, height=37, width=50)
