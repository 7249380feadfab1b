"""glcic: config checks, the completion network, the mean-pixel and Telea priors, training."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from inpaint_core import Family
from inpaint_core.errors import InpaintError, InvalidInputError, ParameterError
from inpaint_core.learned import config_from_dict, config_to_dict, parse_options
from inpaint_core.priors import Prior, prior_fill
from inpaint_core.testing import check_method
from inpaint_methods.glcic import (
    CONTEXT_MARGIN,
    RECEPTIVE_FIELD,
    CompletionNetwork,
    Glcic,
    GlcicConfig,
    GlcicTraining,
)

from .learned_weights import write_untrained

TINY = dict(Glcic.smoke_test_options)

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def gradient_batch(size: int = 32, batch: int = 1) -> torch.Tensor:
    """``(batch, 3, size, size)``: smooth ramps, easy for Telea to continue."""
    rows, cols = torch.meshgrid(
        torch.linspace(0, 1, size), torch.linspace(0, 1, size), indexing="ij"
    )
    return torch.stack([rows, cols, 0.5 * (rows + cols)])[None].repeat(batch, 1, 1, 1)


def block_mask(
    size: int, top: int, bottom: int, left: int, right: int, batch: int = 1
) -> torch.Tensor:
    mask = torch.zeros(batch, 1, size, size)
    mask[:, :, top:bottom, left:right] = 1.0
    return mask


# --- config ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"prior": "lama"}, r"unknown prior 'lama'; valid: none, telea, blend"),
        ({"base_channels": 0}, r"base_channels=0 must be an integer >= 1"),
        ({"discriminator_channels": 2.5}, r"discriminator_channels=2.5 must be an integer"),
        ({"discriminator_features": 0}, r"discriminator_features=0 must be an integer >= 1"),
        ({"image_size": 4}, r"image_size=4 must be an integer >= 8"),
        ({"image_size": 30}, r"image_size=30 must be a multiple of 4"),
        ({"local_size": -1}, r"local_size=-1 must be an integer >= 0"),
        ({"local_size": 512}, r"local_size=512 must lie in \[8, image_size=256\]"),
        ({"dilations": ()}, r"dilations=\(\) must be integers >= 1"),
        ({"dilations": (2, 0)}, r"dilations=\(2, 0\) must be integers >= 1"),
        ({"adv_weight": -1.0}, r"adv_weight=-1.0 must be a finite number >= 0"),
        ({"adv_weight": float("nan")}, r"adv_weight=nan must be a finite number >= 0"),
        ({"lr": 0.0}, r"lr=0.0 must be > 0"),
    ],
)
def test_config_rejects_bad_values(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ParameterError, match=message):
        GlcicConfig(**kwargs)  # type: ignore[arg-type]


def test_config_rejects_an_unknown_gan_loss() -> None:
    with pytest.raises(InpaintError, match=r"'wasserstein'.*'hinge'"):
        GlcicConfig(gan_loss="wasserstein")  # type: ignore[arg-type]


def test_config_defaults_are_the_papers_and_round_trip() -> None:
    config = GlcicConfig()
    assert (config.base_channels, config.dilations, config.image_size) == (64, (2, 4, 8, 16), 256)
    assert config.local_side == 128 and config.adv_weight == 0.0004
    assert config.gan_loss.value == "nsgan" and config.prior is Prior.NONE
    assert GlcicConfig(image_size=128).local_side == 64
    assert GlcicConfig(image_size=128, local_size=96).local_side == 96
    assert config_from_dict(GlcicConfig, config_to_dict(config)) == config
    # Command-line options: strings for enums, local_size follows a new image_size.
    parsed = parse_options(
        GlcicConfig, {"image_size": "128", "prior": "telea", "gan_loss": "lsgan"}
    )
    assert parsed.local_side == 64 and parsed.prior is Prior.TELEA


# --- the completion network -----------------------------------------------------------------
@pytest.mark.parametrize(("height", "width"), [(16, 16), (32, 32), (40, 56), (64, 36)])
def test_completion_network_is_fully_convolutional(height: int, width: int) -> None:
    torch.manual_seed(0)
    net = CompletionNetwork(GlcicConfig(**TINY)).eval()  # type: ignore[arg-type]
    images = torch.rand(2, 3, height, width)
    masks = torch.zeros(2, 1, height, width)
    masks[..., 4:12, 4:12] = 1.0
    with torch.no_grad():
        out = net(images, masks)
    assert out.shape == (2, 3, height, width) and out.dtype == torch.float32
    assert out.min() >= 0 and out.max() <= 1


def test_completion_network_rejects_bad_shapes() -> None:
    net = CompletionNetwork(GlcicConfig(**TINY)).eval()  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match=r"image size 30 x 32: pad to a multiple of 4"):
        net(torch.rand(1, 3, 30, 32), torch.zeros(1, 1, 30, 32))
    with pytest.raises(InvalidInputError, match=r"masks \(1, 3, 32, 32\) are not"):
        net(torch.rand(1, 3, 32, 32), torch.zeros(1, 3, 32, 32))


def test_receptive_field_and_context_margin() -> None:
    torch.manual_seed(0)
    net = CompletionNetwork(GlcicConfig(base_channels=2)).eval()  # paper dilations
    side = 320
    x = torch.rand(1, 4, side, side, requires_grad=True)
    net.output(net.layers(x))[0, :, side // 2, side // 2].sum().backward()
    assert x.grad is not None
    reached = torch.nonzero(x.grad[0].abs().sum(dim=(0, 2))).flatten()
    assert int(reached[-1] - reached[0]) + 1 == RECEPTIVE_FIELD
    assert max(side // 2 - int(reached[0]), int(reached[-1]) - side // 2) <= CONTEXT_MARGIN


# --- priors ---------------------------------------------------------------------------------
def test_prior_none_fills_the_hole_with_the_training_mean_pixel() -> None:
    net = CompletionNetwork(GlcicConfig(**TINY))  # type: ignore[arg-type]
    images, masks = gradient_batch(), block_mask(32, 8, 20, 10, 22)
    hole = masks.expand_as(images) > 0.5
    assert torch.all(net.fill(images, masks)[hole] == 0.5)  # grey before training
    first = torch.rand(2, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    second = torch.rand(1, 3, 8, 8, generator=torch.Generator().manual_seed(1)) * 0.2
    net.update_mean_pixel(first)
    net.update_mean_pixel(second)
    expected = torch.cat([first, second]).mean(dim=(0, 2, 3))  # every pixel seen so far
    torch.testing.assert_close(net.mean_pixel, expected)
    assert int(net.pixels_seen) == 3 * 64
    filled = net.fill(images, masks)
    for channel in range(3):
        assert torch.allclose(filled[0, channel][hole[0, channel]], expected[channel])
    assert torch.equal(filled[~hole], images[~hole])


def test_training_step_learns_the_mean_pixel_and_it_is_saved() -> None:
    model = GlcicTraining(GlcicConfig(**TINY))  # type: ignore[arg-type]
    images = torch.zeros(2, 3, 32, 32)
    images[:, 0] = 1.0  # pure red
    batch = {"image": images, "mask": block_mask(32, 8, 20, 10, 22, batch=2)}
    list(model.training_step(batch))
    torch.testing.assert_close(model.completion.mean_pixel, torch.tensor([1.0, 0.0, 0.0]))
    assert "mean_pixel" in model.completion.state_dict()
    model.eval()
    list(model.training_step({"image": 1 - images, "mask": batch["mask"]}))
    torch.testing.assert_close(model.completion.mean_pixel, torch.tensor([1.0, 0.0, 0.0]))


def test_telea_prior_untrained_equals_the_telea_fill() -> None:
    torch.manual_seed(0)
    net = CompletionNetwork(GlcicConfig(**TINY, prior="telea"))  # type: ignore[arg-type]
    images = torch.cat([gradient_batch(), gradient_batch().flip(-1)])
    masks = block_mask(32, 8, 20, 10, 22, batch=2)
    expected = prior_fill(images, masks, Prior.TELEA)
    for mode in (net.train, net.eval):
        mode()
        with torch.no_grad():
            assert torch.equal(net(images, masks), expected.clamp(0, 1))


# --- training ---------------------------------------------------------------------------------
def test_training_step_yields_discriminator_then_generator() -> None:
    torch.manual_seed(0)
    model = Glcic.build_training(GlcicConfig(**TINY))  # type: ignore[arg-type]
    batch = {"image": gradient_batch(batch=2), "mask": block_mask(32, 8, 20, 10, 22, batch=2)}
    phases = list(model.training_step(batch))
    assert [phase.optimizer for phase in phases] == ["discriminator", "generator"]
    assert list(model.optimizer_specs()) == ["discriminator", "generator"]
    assert set(phases[0].metrics) == {"d_loss"}
    assert set(phases[1].metrics) == {"mse_hole", "adv", "hole_psnr"}
    for phase in phases:
        assert phase.loss.ndim == 0 and phase.loss.requires_grad
        assert all(math.isfinite(value) for value in phase.metrics.values())
    # The generator's loss reaches the completion network and both discriminator branches.
    phases[1].loss.backward()
    assert all(p.grad is not None for p in model.completion.parameters())
    assert model.discriminator.local_branch.fc.weight.grad is not None


def test_wrong_training_size_says_how_to_fix_it() -> None:
    model = GlcicTraining(GlcicConfig(**TINY))  # type: ignore[arg-type]
    batch = {"image": gradient_batch(48, batch=2), "mask": block_mask(48, 8, 20, 10, 22, 2)}
    with pytest.raises(
        InvalidInputError,
        match=r"trains on 32 x 32 images .* batch is "
        r"48 x 48; train with `inpaint train --size 32`, or pass "
        r"`--option image_size=48`",
    ):
        list(model.training_step(batch))
    oblong = {"image": torch.rand(2, 3, 32, 48), "mask": torch.zeros(2, 1, 32, 48)}
    with pytest.raises(InvalidInputError, match=r"32 x 48; train with `inpaint train --size 32`$"):
        list(model.training_step(oblong))


# --- the method -------------------------------------------------------------------------------
def test_method_info() -> None:
    info = Glcic.info
    assert info.name == "glcic" and info.family is Family.DCGAN and info.learned
    names = [parameter.name for parameter in info.parameters]
    assert names == ["weights", "device", "precision", "backend"]
    assert info.pad_multiple == 4 and info.supports_gpu and info.context_margin == CONTEXT_MARGIN
    assert Glcic.config_class is GlcicConfig


@pytest.mark.parametrize("prior", ["none", "telea"])
def test_glcic_keeps_the_method_contract(tmp_path: Path, prior: str) -> None:
    config = GlcicConfig(**TINY, prior=prior)  # type: ignore[arg-type]
    weights = write_untrained(GlcicTraining, config, "glcic", tmp_path)
    check_method(Glcic, {"weights": weights, "device": "cpu"})
    check_method(Glcic, {"weights": str(weights), "device": "cpu"}, height=37, width=50)
