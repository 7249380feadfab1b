"""pix2pix: config checks, the U-Net, the conditional PatchGAN, training, the method contract."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from inpaint_core import Family
from inpaint_core.api import inpaint
from inpaint_core.errors import InvalidInputError, ParameterError
from inpaint_core.nn.losses.adversarial import GanLoss
from inpaint_core.priors import Prior, prior_fill
from inpaint_core.testing import check_method, contract_image, contract_mask
from inpaint_methods.pix2pix import (
    Pix2Pix,
    Pix2PixConfig,
    Pix2PixNetworks,
    Pix2PixTraining,
    UNetGenerator,
)

from .learned_weights import write_untrained

TINY = dict(Pix2Pix.smoke_test_options)

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def gradient_batch(size: int = 32, batch: int = 1) -> torch.Tensor:
    """``(batch, 3, size, size)``: smooth ramps in [0, 1]."""
    rows, cols = torch.meshgrid(
        torch.linspace(0, 1, size), torch.linspace(0, 1, size), indexing="ij"
    )
    return torch.stack([rows, cols, 0.5 * (rows + cols)])[None].repeat(batch, 1, 1, 1)


def block_mask(size: int = 32, batch: int = 1) -> torch.Tensor:
    mask = torch.zeros(batch, 1, size, size)
    mask[:, :, 8:20, 10:22] = 1.0
    return mask


def untrained_weights(folder: Path, **options: object) -> Path:
    """fp16 inference weights of a freshly initialised tiny pix2pix."""
    config = Pix2PixConfig(**{**TINY, **options})  # type: ignore[arg-type]
    return write_untrained(Pix2PixTraining, config, "pix2pix", folder)


# --- config -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"prior": "lama"}, r"unknown prior 'lama'; valid: none, telea, blend"),
        ({"gan_loss": "wasserstein"}, r"unknown GAN loss 'wasserstein'.*'nsgan'"),
        ({"base_channels": 0}, r"base_channels=0 must be an integer >= 1"),
        ({"depth": 1}, r"depth=1 must be an integer >= 2"),
        ({"depth": 9}, r"depth=9 must be <= 8"),
        ({"depth": 4.0}, r"depth=4.0 must be an integer >= 2"),
        ({"discriminator_layers": 2}, r"discriminator_layers=2 must be an integer >= 3"),
        ({"dropout_levels": -1}, r"dropout_levels=-1 must be an integer >= 0"),
        ({"dropout": 1.0}, r"dropout=1.0 must lie in \[0, 1\)"),
        ({"beta1": -0.5}, r"beta1=-0.5 must lie in \[0, 1\)"),
        ({"lr": 0.0}, r"lr=0.0 must be > 0"),
        ({"l1_weight": float("nan")}, r"l1_weight=nan must be a finite number >= 0"),
        ({"gan_weight": -1.0}, r"gan_weight=-1.0 must be a finite number >= 0"),
    ],
)
def test_config_rejects_bad_values_naming_the_field(
    kwargs: dict[str, object], message: str
) -> None:
    with pytest.raises(ParameterError, match=message):
        Pix2PixConfig(**kwargs)  # type: ignore[arg-type]


def test_config_defaults_are_the_papers_and_strings_become_enums() -> None:
    config = Pix2PixConfig()
    assert (config.base_channels, config.depth, config.multiple) == (64, 8, 256)
    assert (config.dropout, config.dropout_levels) == (0.5, 3)
    assert (config.discriminator_channels, config.discriminator_layers) == (64, 5)
    assert config.gan_loss is GanLoss.NON_SATURATING and config.prior is Prior.NONE
    assert (config.gan_weight, config.l1_weight) == (1.0, 100.0)
    assert (config.lr, config.beta1, config.beta2) == (2e-4, 0.5, 0.999)
    parsed = Pix2PixConfig(prior="telea", gan_loss="lsgan")  # type: ignore[arg-type]
    assert parsed.prior is Prior.TELEA and parsed.gan_loss is GanLoss.LSGAN


# --- networks ---------------------------------------------------------------------------------
def test_unet_has_the_papers_layout_at_full_size() -> None:
    generator = UNetGenerator(Pix2PixConfig())
    downs = [layer[-1] if i in (0, 7) else layer[1] for i, layer in enumerate(generator.down)]
    assert [conv.out_channels for conv in downs] == [64, 128, 256, 512, 512, 512, 512, 512]
    norms = [any(isinstance(m, nn.BatchNorm2d) for m in layer) for layer in generator.down]
    assert norms == [False] + [True] * 6 + [False]  # none on the input nor the bottleneck
    dropout = [any(isinstance(m, nn.Dropout) for m in layer) for layer in generator.up]
    assert dropout == [False] * 5 + [True] * 3  # the three levels below the bottleneck
    assert not any(isinstance(m, nn.BatchNorm2d) for m in generator.up[0])
    assert 54e6 < sum(p.numel() for p in generator.parameters()) < 54.5e6  # paper: 54.4 M


@pytest.mark.parametrize(("depth", "height", "width"), [(5, 32, 64), (3, 40, 24)])
def test_generator_output_shape_and_range(depth: int, height: int, width: int) -> None:
    torch.manual_seed(0)
    config = Pix2PixConfig(**{**TINY, "depth": depth})  # type: ignore[arg-type]
    generator = UNetGenerator(config)
    out = generator(torch.rand(2, 4, height, width))
    assert out.shape == (2, 3, height, width) and out.dtype == torch.float32
    assert out.min() >= 0 and out.max() <= 1
    with pytest.raises(InvalidInputError, match=r"multiples of 32 \(2\*\*depth\)"):
        UNetGenerator(Pix2PixConfig(**TINY))(torch.rand(1, 4, 48, 32))  # type: ignore[arg-type]


def test_bottleneck_of_one_pixel_trains_with_batch_one() -> None:
    """No BatchNorm on the 1 x 1 innermost level: batch 1 at 32 px (depth 5) trains."""
    model = Pix2PixTraining(Pix2PixConfig(**TINY))  # type: ignore[arg-type]
    batch = {"image": gradient_batch(), "mask": block_mask()}
    for phase in model.training_step(batch):
        phase.loss.backward()
        assert math.isfinite(float(phase.loss))


def test_discriminator_is_a_conditional_patchgan_on_seven_channels() -> None:
    model = Pix2PixTraining(Pix2PixConfig(**TINY))  # type: ignore[arg-type]
    config = model.discriminator.config
    assert (config.in_channels, config.norm.value, config.use_spectral_norm) == (7, "batch", False)
    seen: list[tuple[int, ...]] = []
    model.discriminator.register_forward_pre_hook(lambda _, args: seen.append(args[0].shape))
    batch = {"image": gradient_batch(batch=2), "mask": block_mask(batch=2)}
    phases = list(model.training_step(batch))
    assert seen == [(2, 7, 32, 32)] * 3  # real, fake (detached), fake for the generator
    assert [phase.optimizer for phase in phases] == ["discriminator", "generator"]
    assert list(model.optimizer_specs()) == ["discriminator", "generator"]
    assert model.optimizer_specs()["generator"].betas == (0.5, 0.999)
    assert {"l1", "hole_psnr", "g_adv"} <= set(phases[1].metrics)
    assert {"d_loss", "d_real", "d_fake"} <= set(phases[0].metrics)
    # D's loss reaches D only; G's loss reaches G.
    phases[0].loss.backward()
    assert all(p.grad is None for p in model.generator.parameters())
    assert all(p.grad is not None for p in model.discriminator.parameters())


def test_generator_loss_is_gan_plus_100_l1() -> None:
    torch.manual_seed(0)
    model = Pix2PixTraining(Pix2PixConfig(**TINY))  # type: ignore[arg-type]
    phases = list(model.training_step({"image": gradient_batch(), "mask": block_mask()}))
    metrics = phases[1].metrics
    expected = metrics["g_adv"] + 100.0 * metrics["l1"]
    assert float(phases[1].loss) == pytest.approx(expected, rel=1e-5)


def test_dropout_is_active_in_training_and_off_in_eval() -> None:
    torch.manual_seed(0)
    networks = Pix2PixNetworks(Pix2PixConfig(**TINY))  # type: ignore[arg-type]
    networks.generator.up.apply(lambda m: m.eval() if isinstance(m, nn.BatchNorm2d) else None)
    x = torch.rand(1, 4, 32, 32)
    assert not torch.equal(networks.generator(x), networks.generator(x))  # dropout noise
    networks.eval()
    assert torch.equal(networks.generator(x), networks.generator(x))


def test_predictions_are_deterministic(tmp_path: Path) -> None:
    weights = untrained_weights(tmp_path)
    image = contract_image(40, 56)[:, :, :3]
    mask = contract_mask(40, 56)
    first = inpaint(image, mask, Pix2Pix(weights=str(weights)), seed=1)
    second = inpaint(image, mask, Pix2Pix(weights=str(weights)), seed=2)
    assert np.array_equal(first, second) and not np.array_equal(first[mask], image[mask])


def test_telea_prior_untrained_equals_the_telea_fill(tmp_path: Path) -> None:
    config = Pix2PixConfig(**TINY, prior="telea")  # type: ignore[arg-type]
    networks = Pix2PixNetworks(config).eval()
    images, masks = gradient_batch(), block_mask()
    filled, condition = networks.condition(images, masks)
    assert torch.equal(networks.complete(filled, condition), prior_fill(images, masks, "telea"))
    # Through the method too (64 x 64: no padding), against the classical ``telea``.
    weights = untrained_weights(tmp_path, prior="telea")
    image = contract_image(64, 64)[:, :, :3].astype(np.float32)
    mask = contract_mask(64, 64)
    ours = inpaint(image, mask, Pix2Pix(weights=str(weights)))
    assert np.array_equal(ours, inpaint(image, mask, "telea"))


# --- the method -------------------------------------------------------------------------------
def test_method_info() -> None:
    info = Pix2Pix.info
    assert (info.name, info.family, info.learned, info.supports_gpu) == (
        "pix2pix",
        Family.CGAN,
        True,
        True,
    )
    assert [p.name for p in info.parameters] == ["weights", "device", "precision", "backend"]
    assert Pix2Pix.config_class is Pix2PixConfig
    assert Pix2Pix.weights_folder is not None and Pix2Pix.weights_folder.name == "weights"


@pytest.mark.parametrize("prior", ["none", "telea"])
def test_pix2pix_keeps_the_method_contract(tmp_path: Path, prior: str) -> None:
    weights = untrained_weights(tmp_path, prior=prior)
    check_method(Pix2Pix, {"weights": weights, "device": "cpu"})
    check_method(Pix2Pix, {"weights": str(weights), "device": "cpu"}, height=37, width=50)
