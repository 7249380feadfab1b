"""edge-gan's pieces: grey, Canny edges, hole crops, priors, config checks, training, contract."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from skimage.color import rgb2gray

from inpaint_core.api import get_method
from inpaint_core.errors import InpaintError, InvalidInputError, MissingWeightsError, ParameterError
from inpaint_core.learned import config_to_dict
from inpaint_core.nn.losses.perceptual import VGG19_WEIGHTS_ENV
from inpaint_core.priors import Prior, prior_fill
from inpaint_core.testing import check_method
from inpaint_methods.edge_gan import (
    EdgeGan,
    EdgeGanConfig,
    EdgeGanNetworks,
    EdgeGanTraining,
    TextureLoss,
)
from inpaint_methods.edge_maps import canny_edges, to_gray

from .learned_weights import save_inference_networks, write_untrained

TINY = dict(EdgeGan.smoke_test_options)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def gradient_batch(size: int = 32) -> torch.Tensor:
    """``(1, 3, size, size)``: smooth ramps, easy for Telea to continue."""
    rows, cols = torch.meshgrid(
        torch.linspace(0, 1, size), torch.linspace(0, 1, size), indexing="ij"
    )
    return torch.stack([rows, cols, 0.5 * (rows + cols)])[None]


def block_mask(
    size: int, top: int, bottom: int, left: int, right: int, batch: int = 1
) -> torch.Tensor:
    mask = torch.zeros(batch, 1, size, size)
    mask[:, :, top:bottom, left:right] = 1.0
    return mask


# --- to_gray, canny_edges ------------------------------------------------------------------------
def test_to_gray_uses_the_rgb2gray_weights() -> None:
    images = torch.rand(2, 3, 8, 12, generator=torch.Generator().manual_seed(0))
    gray = to_gray(images)
    assert gray.shape == (2, 1, 8, 12) and gray.dtype == torch.float32
    expected = rgb2gray(images[1].permute(1, 2, 0).numpy())
    np.testing.assert_allclose(gray[1, 0].numpy(), expected, atol=1e-6)
    red = torch.zeros(1, 3, 2, 2)
    red[:, 0] = 1
    assert torch.allclose(to_gray(red), torch.full((1, 1, 2, 2), 0.2125))
    assert torch.allclose(
        to_gray(torch.ones(1, 3, 2, 2, dtype=torch.float64)),
        torch.ones(1, 1, 2, 2, dtype=torch.float64),
    )


def test_canny_edges_are_binary_and_follow_the_square() -> None:
    gray = torch.zeros(2, 1, 32, 32)
    gray[0, :, 8:24, 8:24] = 1.0  # a square: edges on its outline
    edges = canny_edges(gray, sigma=1.0)
    assert edges.shape == (2, 1, 32, 32) and edges.dtype == torch.float32
    assert set(edges.unique().tolist()) <= {0.0, 1.0}
    assert edges[1].sum() == 0  # a flat image has no edges
    rows, cols = torch.nonzero(edges[0, 0], as_tuple=True)
    assert len(rows) >= 40
    assert rows.min() >= 6 and rows.max() <= 25 and cols.min() >= 6 and cols.max() <= 25
    assert edges[0, 0, 12:20, 12:20].sum() == 0  # none inside the flat square


def test_canny_edges_only_in_the_known_region() -> None:
    gray = torch.zeros(1, 1, 32, 32)
    gray[0, :, 8:24, 8:24] = 1.0
    known = torch.ones(1, 1, 32, 32)
    known[:, :, :, 16:] = 0.0  # the right half is a hole
    edges = canny_edges(gray, 1.0, known)
    assert edges[..., 16:].sum() == 0
    assert edges[..., :14].sum() >= 10
    scrambled = gray.clone()
    scrambled[..., 16:] = torch.rand(1, 1, 32, 16, generator=torch.Generator().manual_seed(1))
    assert torch.equal(canny_edges(scrambled, 1.0, known), edges)  # hole values never matter


# --- prior_fill ---------------------------------------------------------------------------------
def test_prior_none_whitens_the_hole() -> None:
    images = gradient_batch().requires_grad_(True)
    masks = block_mask(32, 8, 20, 10, 22)
    filled = prior_fill(images, masks, "none")
    hole = masks.expand_as(images) > 0.5
    assert not filled.requires_grad
    assert torch.all(filled[hole] == 1.0)
    assert torch.equal(filled[~hole], images.detach()[~hole])


def test_prior_telea_fills_smoothly_and_keeps_known_pixels() -> None:
    images = torch.cat([gradient_batch(), gradient_batch().flip(-1)])
    masks = torch.cat([block_mask(32, 8, 20, 10, 22), torch.zeros(1, 1, 32, 32)])
    filled = prior_fill(images, masks, Prior.TELEA)
    hole = masks.expand_as(images) > 0.5
    assert filled.shape == images.shape and filled.dtype == images.dtype
    assert torch.equal(filled[~hole], images[~hole])  # bit-identical outside the hole
    assert torch.equal(filled[1], images[1])  # an empty mask leaves the image alone
    error = (filled[hole] - images[hole]).abs()
    assert error.max() < 0.15 and error.mean() < 0.05  # ramps continued (white: mean 0.53)
    assert (filled[hole] != 1.0).all()
    double = prior_fill(images.double(), masks, "telea")
    assert double.dtype == torch.float64


def test_prior_fill_rejects_bad_input() -> None:
    images, masks = gradient_batch(), block_mask(32, 8, 20, 10, 22)
    with pytest.raises(InvalidInputError, match=r"unknown prior 'lama'; valid: none, telea, blend"):
        prior_fill(images, masks, "lama")
    with pytest.raises(
        InvalidInputError,
        match=r"images \(1, 3, 32, 32\) and masks "
        r"\(1, 3, 32, 32\) are not",
    ):
        prior_fill(images, masks.expand(1, 3, 32, 32), "none")
    with pytest.raises(InvalidInputError, match=r"images \(3, 32, 32\)"):
        prior_fill(images[0], masks, "none")


# --- config ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"prior": "lama"}, r"unknown prior 'lama'; valid: none, telea, blend"),
        (
            {"texture_loss": "lpips"},
            r"unknown texture_loss 'lpips'; valid: vgg, "
            r"discriminator-features",
        ),
        ({"style_weight": -1.0}, r"style_weight=-1.0 must be a finite number >= 0"),
        ({"l1_weight": float("inf")}, r"l1_weight=inf must be a finite number >= 0"),
        ({"base_channels": 0}, r"base_channels=0 must be an integer >= 1"),
        ({"residual_blocks": 1.5}, r"residual_blocks=1.5 must be an integer >= 1"),
        ({"local_size": 16}, r"local_size=16 must be >= 32"),
        ({"canny_sigma": 0.0}, r"canny_sigma=0.0 must be > 0"),
        ({"lr": -1e-4}, r"lr=-0.0001 must be > 0"),
    ],
)
def test_config_rejects_bad_values(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ParameterError, match=message):
        EdgeGanConfig(**kwargs)  # type: ignore[arg-type]


def test_config_rejects_an_unknown_gan_loss() -> None:
    with pytest.raises(InpaintError, match=r"'wasserstein'.*'hinge'"):
        EdgeGanConfig(gan_loss="wasserstein")


def test_config_defaults_are_the_papers() -> None:
    config = EdgeGanConfig()
    assert (config.base_channels, config.residual_blocks, config.local_size) == (64, 8, 128)
    assert config.prior is Prior.NONE and config.texture_loss is TextureLoss.VGG
    assert (config.adv_weight, config.global_weight, config.local_weight) == (0.1, 0.8, 0.2)
    assert (config.perceptual_weight, config.style_weight, config.l1_weight) == (0.1, 250.0, 1.0)


# --- networks and training -------------------------------------------------------------------
def test_telea_prior_starts_with_a_zero_correction() -> None:
    networks = EdgeGanNetworks(EdgeGanConfig(**TINY, prior="telea"))  # type: ignore[arg-type]
    images, masks = gradient_batch(), block_mask(32, 8, 20, 10, 22)
    filled, known_edges = networks.prepare(images, masks, 2.0)
    edges = networks.predict_edges(filled, known_edges, masks)
    assert edges.shape == (1, 1, 32, 32) and edges.min() >= 0 and edges.max() <= 1
    assert torch.equal(networks.complete(filled, edges, masks), filled.clamp(0, 1))


def test_vgg_texture_loss_needs_vgg_weights(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(VGG19_WEIGHTS_ENV, raising=False)
    config = EdgeGanConfig(**{**TINY, "texture_loss": "vgg"})  # type: ignore[arg-type]
    with pytest.raises(
        MissingWeightsError,
        match=r"no VGG-19 weights given.*"
        r"texture_loss=discriminator-features",
    ):
        EdgeGan.build_training(config)
    missing = tmp_path / "vgg19.pth"
    with pytest.raises(MissingWeightsError, match=rf"VGG-19 weights file '{missing}' not found"):
        EdgeGan.build_training(config, vgg_weights=str(missing))
    with pytest.raises(ParameterError, match=r"texture_loss='vgg' needs a PerceptualStyleLoss"):
        EdgeGanTraining(config)


def test_training_step_yields_the_four_phases_in_order() -> None:
    torch.manual_seed(0)
    model = EdgeGan.build_training(EdgeGanConfig(**TINY))  # type: ignore[arg-type]
    images = torch.cat([gradient_batch(), gradient_batch().flip(-1)])
    batch = {"image": images, "mask": block_mask(32, 8, 20, 10, 22, batch=2)}
    phases = list(model.training_step(batch))
    assert [phase.optimizer for phase in phases] == list(model.optimizer_specs())
    assert [phase.optimizer for phase in phases] == [
        "edge_discriminator",
        "edge_generator",
        "image_discriminators",
        "image_generator",
    ]
    for phase in phases:
        assert phase.loss.ndim == 0 and phase.loss.requires_grad
        assert all(math.isfinite(value) for value in phase.metrics.values())
    assert set(phases[-1].metrics) == {
        "g2_adv2",
        "g2_adv3",
        "g2_perceptual",
        "g2_style",
        "g2_l1",
        "hole_psnr",
    }
    assert model.training_metadata() == {"texture_loss": "discriminator-features", "prior": "none"}
    # G1's loss reaches G1 but not G2 (G2 sees G1's edges detached).
    phases[1].loss.backward()
    assert all(p.grad is not None for p in model.edge_generator.parameters())
    assert all(p.grad is None for p in model.image_generator.parameters())


# --- the method -------------------------------------------------------------------------------
def test_edge_gan_is_registered_as_learned() -> None:
    method = get_method("edge-gan")
    assert method is EdgeGan
    assert method.info.learned and method.info.pad_multiple == 4
    names = [parameter.name for parameter in method.info.parameters]
    assert names[:3] == ["weights", "device", "precision"] and "show_edges" in names


@pytest.mark.parametrize("prior", ["none", "telea"])
def test_edge_gan_keeps_the_method_contract(tmp_path: Path, prior: str) -> None:
    config = EdgeGanConfig(**TINY, prior=prior)  # type: ignore[arg-type]
    weights = write_untrained(EdgeGanTraining, config, "edge-gan", tmp_path)
    check_method(EdgeGan, {"weights": weights, "device": "cpu"})
    check_method(
        "edge-gan",
        {"weights": str(weights), "device": "cpu", "show_edges": True},
        height=37,
        width=50,
    )


# --- architectures -------------------------------------------------------------------------------
LITE_EXPECTED = Path(__file__).resolve().parents[1] / "fixtures/edge_connect/lite_expected.png"


def lite_inputs() -> tuple[np.ndarray, np.ndarray]:
    """The uint8 ``(44, 56, 3)`` image and bool hole that ``lite_expected.png`` was made from."""
    rng = np.random.default_rng(7)
    rows, cols = np.mgrid[0:44, 0:56]
    image = np.stack([(cols * 4) % 256, (rows * 5) % 256, ((cols + rows) * 3) % 256], -1)
    image = np.clip(image + rng.integers(-20, 20, image.shape), 0, 255).astype(np.uint8)
    hole = np.zeros((44, 56), dtype=bool)
    hole[12:30, 18:40] = True
    return image, hole


def test_shipped_lite_weights_give_the_same_output_as_before() -> None:
    """The shipped weights' sidecar has no ``architecture``: it means ``lite``, and the output
    is the one saved before ``edgeconnect`` existed."""
    from PIL import Image

    from inpaint_core.api import inpaint
    from inpaint_core.checkpoint import load_checkpoint

    _, info = load_checkpoint(EdgeGan.default_weights(), expected_method="edge-gan")
    assert "architecture" not in info.config
    image, hole = lite_inputs()
    out = inpaint(image, hole, "edge-gan", device="cpu")
    expected = np.array(Image.open(LITE_EXPECTED))
    difference = np.abs(out.astype(np.int64) - expected)
    assert difference.max() <= 1 and (difference > 0).mean() < 0.01  # float rounding only


def test_architectures_build_the_reference_channel_counts() -> None:
    lite = EdgeGanNetworks(EdgeGanConfig(**TINY))  # type: ignore[arg-type]
    config = EdgeGanConfig(**TINY, architecture="edgeconnect")  # type: ignore[arg-type]
    edgeconnect = EdgeGanNetworks(config)
    assert lite.image_generator.config.in_channels == 5
    assert edgeconnect.image_generator.config.in_channels == 4
    assert edgeconnect.edge_generator.config.in_channels == 3
    assert edgeconnect.edge_generator.config.use_spectral_norm
    assert not edgeconnect.image_generator.config.use_spectral_norm
    assert config_to_dict(EdgeGanConfig())["architecture"] == "lite"


def test_reference_gray_is_skimages_float64_rgb2gray() -> None:
    from inpaint_methods.edge_maps import reference_gray

    rng = np.random.default_rng(3)
    levels = rng.integers(0, 256, (2, 9, 13, 3), dtype=np.uint8)
    images = torch.from_numpy(levels.astype(np.float32) / np.float32(255)).permute(0, 3, 1, 2)
    gray = reference_gray(images)
    assert gray.shape == (2, 1, 9, 13) and gray.dtype == torch.float64
    for index in range(2):  # bit-identical to rgb2gray on the uint8 image
        assert np.array_equal(gray[index, 0].numpy(), rgb2gray(levels[index]))
    smooth = torch.rand(1, 3, 5, 7, generator=torch.Generator().manual_seed(0))  # not 8-bit
    expected = rgb2gray(smooth[0].permute(1, 2, 0).double().numpy())
    assert np.array_equal(reference_gray(smooth)[0, 0].numpy(), expected)


def test_edgeconnect_variant_trains_and_keeps_the_contract(tmp_path: Path) -> None:
    config = EdgeGanConfig(**TINY, architecture="edgeconnect")  # type: ignore[arg-type]
    torch.manual_seed(0)
    training = EdgeGanTraining(config)
    images = torch.cat([gradient_batch(), gradient_batch().flip(-1)])
    batch = {"image": images, "mask": block_mask(32, 8, 20, 10, 22, batch=2)}
    phases = list(training.training_step(batch))
    assert all(math.isfinite(float(phase.loss)) for phase in phases)
    weights = save_inference_networks(training, config, "edge-gan",
                                      tmp_path / "edge-gan.safetensors", half=False)
    check_method(EdgeGan, {"weights": weights, "device": "cpu"}, height=37, width=50)
