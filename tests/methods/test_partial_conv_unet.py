"""partial-conv-unet: config checks, layout and shapes, TV loss, Telea prior, training, contract."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from inpaint_core.api import inpaint
from inpaint_core.errors import InvalidInputError, MissingWeightsError, ParameterError
from inpaint_core.learned import config_to_dict, parse_options
from inpaint_core.method import Family
from inpaint_core.nn.layers import PartialConv2d, count_parameters
from inpaint_core.nn.losses.perceptual import VGG19_WEIGHTS_ENV
from inpaint_core.priors import Prior, prior_fill
from inpaint_core.testing import check_method, contract_image, contract_mask
from inpaint_methods.classical import Telea
from inpaint_methods.partial_conv_unet import (
    PartialConvUNet,
    PartialConvUnet,
    PartialConvUnetConfig,
    PartialConvUnetNetworks,
    PartialConvUnetTraining,
    TextureLoss,
    total_variation_loss,
)

from .learned_weights import write_untrained

TINY = dict(PartialConvUnet.smoke_test_options)

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
        ({"texture_loss": "lpips"}, r"unknown texture_loss 'lpips'; valid: vgg, none"),
        ({"base_channels": 0}, r"base_channels=0 must be an integer >= 1"),
        ({"depth": 1}, r"depth=1 must be an integer >= 2"),
        ({"depth": 9}, r"depth=9 must be <= 8"),
        ({"depth": 3.0}, r"depth=3.0 must be an integer >= 2"),
        ({"lr": 0.0}, r"lr=0.0 must be > 0"),
        ({"hole_weight": -6.0}, r"hole_weight=-6.0 must be a finite number >= 0"),
        ({"style_weight": float("nan")}, r"style_weight=nan must be a finite number >= 0"),
        ({"tv_weight": float("inf")}, r"tv_weight=inf must be a finite number >= 0"),
    ],
)
def test_config_rejects_bad_values(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ParameterError, match=message):
        PartialConvUnetConfig(**kwargs)  # type: ignore[arg-type]


def test_config_defaults_are_the_papers_and_strings_become_enums() -> None:
    config = PartialConvUnetConfig()
    assert (config.base_channels, config.depth, config.lr) == (64, 7, 2e-4)
    assert config.prior is Prior.NONE and config.texture_loss is TextureLoss.VGG
    weights = (
        config.valid_weight,
        config.hole_weight,
        config.perceptual_weight,
        config.style_weight,
        config.tv_weight,
    )
    assert weights == (1.0, 6.0, 0.05, 120.0, 0.1)
    parsed = PartialConvUnetConfig(prior="telea", texture_loss="none")  # type: ignore[arg-type]
    assert parsed.prior is Prior.TELEA and parsed.texture_loss is TextureLoss.NONE
    assert config_to_dict(parsed)["texture_loss"] == "none"
    lite = {"prior": "telea", "texture_loss": "none", "base_channels": "16", "depth": "5"}
    assert parse_options(PartialConvUnetConfig, lite) == PartialConvUnetConfig(
        base_channels=16, depth=5, prior=Prior.TELEA, texture_loss=TextureLoss.NONE
    )  # the docs' lite recipe, as `inpaint train --option` gives it


# --- network --------------------------------------------------------------------------------
def test_network_layout_follows_the_paper() -> None:
    network = PartialConvUNet(PartialConvUnetConfig(base_channels=8, depth=6))
    convs = [block.conv for block in network.encoder]
    assert [conv.kernel_size[0] for conv in convs] == [7, 5, 5, 3, 3, 3]
    assert [conv.stride[0] for conv in convs] == [2] * 6
    assert [conv.out_channels for conv in convs] == [8, 16, 32, 64, 64, 64]  # capped at 8b
    assert isinstance(network.encoder[0].norm, torch.nn.Identity)
    assert all(isinstance(b.norm, torch.nn.BatchNorm2d) for b in network.encoder[1:])
    assert all(isinstance(b.activation, torch.nn.ReLU) for b in network.encoder)
    decoder = [block.conv for block in network.decoder]
    assert [conv.in_channels for conv in decoder] == [128, 128, 96, 48, 24, 8 + 3]
    assert [conv.out_channels for conv in decoder] == [64, 64, 32, 16, 8, 3]
    assert all(isinstance(b.activation, torch.nn.LeakyReLU) for b in network.decoder[:-1])
    assert isinstance(network.decoder[-1].norm, torch.nn.Identity)
    assert isinstance(network.decoder[-1].activation, torch.nn.Identity)
    assert network.last_layer is decoder[-1] and isinstance(network.last_layer, PartialConv2d)
    # The paper's 512 px network: 8 levels at width 64.
    paper = count_parameters(PartialConvUNet(PartialConvUnetConfig(depth=8)))
    assert 32_000_000 < paper < 33_500_000


def test_network_shapes_and_checks() -> None:
    torch.manual_seed(0)
    network = PartialConvUNet(PartialConvUnetConfig(**TINY)).eval()  # type: ignore[arg-type]
    valid = 1.0 - block_mask(32, 8, 20, 6, 18, batch=2)
    output, mask = network(torch.rand(2, 3, 32, 48), torch.ones(2, 1, 32, 48))
    assert output.shape == (2, 3, 32, 48) and mask.shape == (2, 1, 32, 48)
    output, mask = network(gradient_batch(batch=2), valid)
    assert output.shape == (2, 3, 32, 32) and torch.all(mask == 1)
    with pytest.raises(InvalidInputError, match=r"input shape \(1, 3, 36, 32\).*multiples of 8"):
        network(torch.rand(1, 3, 36, 32), torch.ones(1, 1, 36, 32))


def test_hole_pixels_are_never_read() -> None:
    torch.manual_seed(0)
    networks = PartialConvUnetNetworks(PartialConvUnetConfig(**TINY)).eval()  # type: ignore[arg-type]
    images, masks = gradient_batch(), block_mask(32, 8, 20, 6, 18)
    scrambled = images.clone()
    scrambled[..., 8:20, 6:18] = torch.rand(1, 3, 12, 12)
    with torch.no_grad():
        assert torch.equal(networks.complete(images, masks), networks.complete(scrambled, masks))


def test_telea_prior_untrained_equals_the_telea_fill_exactly() -> None:
    torch.manual_seed(0)
    config = PartialConvUnetConfig(**TINY, prior="telea")  # type: ignore[arg-type]
    networks = PartialConvUnetNetworks(config).eval()
    images = torch.cat([gradient_batch(), gradient_batch().flip(-1)])
    masks = block_mask(32, 8, 20, 6, 18, batch=2)
    with torch.no_grad():
        output = networks.complete(images, masks)
    assert torch.equal(output, prior_fill(images, masks, "telea").clamp(0, 1))
    assert torch.count_nonzero(networks.generator.last_layer.weight) == 0


# --- losses and training -------------------------------------------------------------------
def test_total_variation_covers_the_dilated_hole_only() -> None:
    composite = torch.zeros(1, 1, 5, 5)
    composite[0, 0, 1, 1] = 1.0  # the hole pixel
    composite[0, 0, 4, 4] = 5.0  # outside the dilated hole: never counted
    composite[0, 0, 0, 3] = 2.0  # next to the dilated hole, pairs with (0, 2) outside it
    masks = block_mask(5, 1, 2, 1, 2)
    loss, metrics = total_variation_loss(composite, masks)
    # Region rows/cols 0..2: |1 - 0| twice across row 1 and twice down column 1 -> 4 / 25.
    assert loss.item() == pytest.approx(4 / 25)
    assert metrics == {"tv": pytest.approx(4 / 25)}
    composite[0, 0, 2, 2] = 1.0  # the region's corner: one more pair across, one down
    assert total_variation_loss(composite, masks)[0].item() == pytest.approx(6 / 25)
    flat, _ = total_variation_loss(torch.full((2, 3, 8, 8), 0.3), block_mask(8, 2, 5, 2, 5, 2))
    assert flat.item() == 0.0
    with pytest.raises(InvalidInputError, match=r"masks \(1, 3, 5, 5\)"):
        total_variation_loss(composite, masks.expand(1, 3, 5, 5))


def test_training_step_logs_the_papers_terms() -> None:
    torch.manual_seed(0)
    model = PartialConvUnet.build_training(PartialConvUnetConfig(**TINY))  # type: ignore[arg-type]
    batch = {"image": gradient_batch(batch=2), "mask": block_mask(32, 8, 20, 6, 18, batch=2)}
    phases = list(model.training_step(batch))
    assert [phase.optimizer for phase in phases] == ["generator"] == list(model.optimizer_specs())
    assert model.optimizer_specs()["generator"].betas == (0.9, 0.999)
    (phase,) = phases
    assert set(phase.metrics) == {"l1_valid", "l1_hole", "tv", "hole_psnr"}
    assert all(math.isfinite(value) for value in phase.metrics.values())
    expected = 6 * phase.metrics["l1_hole"] + phase.metrics["l1_valid"] + 0.1 * phase.metrics["tv"]
    assert phase.loss.item() == pytest.approx(expected, rel=1e-5)
    phase.loss.backward()
    assert all(p.grad is not None for p in model.generator.parameters())
    assert model.training_metadata() == {"texture_loss": "none", "prior": "none"}


def test_vgg_texture_loss_needs_vgg_weights(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(VGG19_WEIGHTS_ENV, raising=False)
    config = PartialConvUnetConfig(**{**TINY, "texture_loss": "vgg"})  # type: ignore[arg-type]
    with pytest.raises(
        MissingWeightsError,
        match=r"no VGG-19 weights given.*--vgg-weights.*"
        r"'--option texture_loss=none'",
    ):
        PartialConvUnet.build_training(config)
    missing = tmp_path / "vgg19.pth"
    with pytest.raises(MissingWeightsError, match=r"VGG-19 weights file '.*vgg19.pth' not found"):
        PartialConvUnet.build_training(config, vgg_weights=str(missing))
    monkeypatch.setenv(VGG19_WEIGHTS_ENV, str(missing))
    with pytest.raises(MissingWeightsError, match=r"texture_loss=none"):
        PartialConvUnet.build_training(config)
    with pytest.raises(ParameterError, match=r"texture_loss='vgg' needs a PerceptualStyleLoss"):
        PartialConvUnetTraining(config)


# --- the method -------------------------------------------------------------------------------
def test_method_info() -> None:
    info = PartialConvUnet.info
    assert info.name == "partial-conv-unet" and info.family is Family.UNET and info.learned
    names = [parameter.name for parameter in info.parameters]
    assert names == ["weights", "device", "precision", "backend"]
    assert info.pad_multiple == 1 and info.supports_gpu
    assert PartialConvUnet.config_class is PartialConvUnetConfig


@pytest.mark.parametrize("prior", ["none", "telea"])
def test_partial_conv_unet_keeps_the_method_contract(tmp_path: Path, prior: str) -> None:
    config = PartialConvUnetConfig(**TINY, prior=prior)  # type: ignore[arg-type]
    weights = write_untrained(PartialConvUnetTraining, config, "partial-conv-unet", tmp_path)
    check_method(PartialConvUnet, {"weights": weights, "device": "cpu"})
    check_method(PartialConvUnet, {"weights": str(weights), "device": "cpu"}, height=37, width=50)
    if prior == "telea":  # untrained weights give the telea method's result, bit for bit
        image = contract_image(48, 64)[:, :, :3].astype(np.float32)
        mask = contract_mask(48, 64)
        method = PartialConvUnet(weights=str(weights), device="cpu")
        assert np.array_equal(inpaint(image, mask, method), inpaint(image, mask, Telea()))
