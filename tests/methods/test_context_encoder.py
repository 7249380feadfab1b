"""context-encoder's pieces: channel-wise FC, config checks, networks, training, windows."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from inpaint_core.api import inpaint
from inpaint_core.errors import InpaintError, InvalidInputError, ParameterError
from inpaint_core.priors import Prior, prior_fill
from inpaint_core.testing import check_method, contract_image
from inpaint_core.testing_learned import box_masks
from inpaint_methods.classical import Telea
from inpaint_methods.context_encoder import (
    ChannelWiseFC,
    ContextEncoder,
    ContextEncoderConfig,
    ContextEncoderNetworks,
    ContextEncoderTraining,
)
from inpaint_methods.context_encoder_windows import fill_windows, plan_windows, resize_mask

from .learned_weights import write_untrained

TINY = dict(ContextEncoder.smoke_test_options)

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def gradient_batch(size: int = 32, batch: int = 1) -> torch.Tensor:
    """``(batch, 3, size, size)``: smooth ramps."""
    rows, cols = torch.meshgrid(
        torch.linspace(0, 1, size), torch.linspace(0, 1, size), indexing="ij"
    )
    return torch.stack([rows, cols, 0.5 * (rows + cols)])[None].expand(batch, -1, -1, -1)


def save_untrained(folder: Path, **options: object) -> Path:
    """Untrained ``context-encoder`` weights (fp16, as the trainer writes them)."""
    config = ContextEncoderConfig(**{**TINY, **options})  # type: ignore[arg-type]
    return write_untrained(ContextEncoderTraining, config, "context-encoder", folder)


# --- the channel-wise fully connected layer --------------------------------------------------
def test_channel_wise_fc_is_a_per_channel_linear_that_never_mixes_channels() -> None:
    torch.manual_seed(0)
    layer = ChannelWiseFC(3, 4)
    assert layer.weight.shape == (3, 16, 16) and layer.bias.shape == (3, 16)
    x = torch.randn(2, 3, 4, 4)
    y = layer(x)
    assert y.shape == (2, 3, 4, 4)
    for channel in range(3):
        linear = F.linear(x[:, channel].flatten(1), layer.weight[channel], layer.bias[channel])
        torch.testing.assert_close(y[:, channel].flatten(1), linear)
    changed = x.clone()
    changed[:, 1] += torch.randn(2, 4, 4)  # only channel 1 changes ...
    difference = (layer(changed) - y).abs().amax(dim=(0, 2, 3))
    assert difference[1] > 0.01 and difference[0] == 0 and difference[2] == 0  # ... only it
    with pytest.raises(InvalidInputError, match=r"input shape \(2, 3, 8, 8\) is not"):
        layer(torch.zeros(2, 3, 8, 8))


def test_resize_mask_keeps_every_hole() -> None:
    masks = torch.zeros(1, 1, 64, 64)
    masks[..., 10, 21] = 1.0  # a single pixel survives a 4x shrink ...
    small = resize_mask(masks, 16, 16)
    assert small.sum() == 1 and small[0, 0, 2, 5] == 1
    big = resize_mask(small, 40, 40)  # ... and a non-integer growth
    assert set(big.unique().tolist()) == {0.0, 1.0} and big[0, 0, 6, 13] == 1


# --- config -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"prior": "lama"}, r"unknown prior 'lama'; valid: none, telea, blend"),
        ({"input_size": 48}, r"input_size=48 must be a power of two >= 16"),
        ({"input_size": 8}, r"input_size=8 must be a power of two >= 16"),
        ({"input_size": 64.0}, r"input_size=64.0 must be an integer >= 1"),
        ({"base_channels": 0}, r"base_channels=0 must be an integer >= 1"),
        ({"bottleneck_channels": -2}, r"bottleneck_channels=-2 must be an integer >= 1"),
        ({"discriminator_channels": True}, r"discriminator_channels=True must be an integer"),
        ({"rec_weight": -1.0}, r"rec_weight=-1.0 must be a finite number >= 0"),
        ({"adv_weight": float("nan")}, r"adv_weight=nan must be a finite number >= 0"),
        ({"lr": 0.0}, r"lr=0.0 must be > 0"),
    ],
)
def test_config_rejects_bad_values(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ParameterError, match=message):
        ContextEncoderConfig(**kwargs)  # type: ignore[arg-type]


def test_config_rejects_an_unknown_gan_loss() -> None:
    with pytest.raises(InpaintError, match=r"'wasserstein'.*'nsgan'"):
        ContextEncoderConfig(gan_loss="wasserstein")  # type: ignore[arg-type]


def test_config_defaults_are_the_papers_and_strings_are_parsed() -> None:
    config = ContextEncoderConfig()
    assert (config.input_size, config.base_channels, config.levels) == (128, 64, 5)
    assert (config.rec_weight, config.adv_weight, config.lr) == (0.999, 0.001, 2e-4)
    assert config.gan_loss.value == "nsgan" and config.prior is Prior.NONE
    parsed = ContextEncoderConfig(prior="telea", gan_loss="lsgan")  # type: ignore[arg-type]
    assert parsed.prior is Prior.TELEA and parsed.gan_loss.value == "lsgan"


# --- networks and training -------------------------------------------------------------------
@pytest.mark.parametrize("size", [16, 32, 64])
def test_networks_map_input_size_to_input_size(size: int) -> None:
    config = ContextEncoderConfig(**{**TINY, "input_size": size})  # type: ignore[arg-type]
    training = ContextEncoderTraining(config)
    images, masks = gradient_batch(size, 2), box_masks(size, 4, 10, 5, 12, batch=2)
    output = ContextEncoderNetworks(config).complete(prior_fill(images, masks, "none"), masks)
    assert output.shape == (2, 3, size, size) and output.min() >= 0 and output.max() <= 1
    bottleneck = training.generator.encoder(torch.zeros(2, 4, size, size))
    assert bottleneck.shape == (2, config.bottleneck_channels, 4, 4)
    assert training.discriminator(images).shape == (2, 1, 1, 1)
    with pytest.raises(InvalidInputError, match=rf"is not \(B, 3, {size}, {size}\)"):
        training.generator(torch.zeros(1, 3, size * 2, size * 2), torch.zeros(1, 1, 1, 1))


def test_telea_prior_starts_with_a_zero_correction() -> None:
    networks = ContextEncoderNetworks(ContextEncoderConfig(**TINY, prior="telea"))  # type: ignore[arg-type]
    images, masks = gradient_batch(), box_masks(32, 8, 20, 10, 22)
    filled = prior_fill(images, masks, "telea")
    assert torch.equal(networks.complete(filled, masks), filled.clamp(0, 1))


def test_training_step_yields_the_two_phases_and_resizes_the_batch() -> None:
    torch.manual_seed(0)
    model = ContextEncoder.build_training(ContextEncoderConfig(**TINY))  # type: ignore[arg-type]
    batch = {"image": gradient_batch(64, 2), "mask": box_masks(64, 16, 40, 20, 44, batch=2)}
    phases = list(model.training_step(batch))  # trained at 64, the network works at 32
    assert [phase.optimizer for phase in phases] == list(model.optimizer_specs())
    assert [phase.optimizer for phase in phases] == ["discriminator", "generator"]
    for phase in phases:
        assert phase.loss.ndim == 0 and phase.loss.requires_grad
        assert all(math.isfinite(value) for value in phase.metrics.values())
    assert set(phases[1].metrics) == {"l2_hole", "g_adv", "g_loss", "hole_psnr"}
    assert model.optimizer_specs()["generator"].betas == (0.5, 0.999)
    assert model.training_metadata() == {"prior": "none"}
    phases[0].loss.backward()  # the discriminator's loss does not reach the generator
    assert all(p.grad is None for p in model.generator.parameters())


# --- windows --------------------------------------------------------------------------------
def test_plan_windows_groups_nearby_holes_and_covers_every_hole() -> None:
    hole = np.zeros((200, 300), dtype=bool)
    hole[10:14, 10:14] = True  # two small holes in one cell: one window
    hole[10:12, 15:16] = True
    hole[150:156, 250:256] = True  # far away: its own window, shifted inside the image
    hole[60:120, 100:190] = True  # large: 2 x 90 = 180 > 32
    hole[199, 0] = True  # a corner pixel
    labels, windows = plan_windows(hole, 32, 2.0)
    assert labels.max() == 5 and [w.labels for w in windows] == [(1, 2), (3,), (4,), (5,)]
    assert labels[60, 100] == 3 and labels[150, 250] == 4  # raster order of first pixels
    assert sorted(i for w in windows for i in w.labels) == [1, 2, 3, 4, 5]
    for window in windows:
        assert window.top >= 0 and window.top + window.height <= 200
        assert window.left >= 0 and window.left + window.width <= 300
        inside = np.zeros_like(hole)
        inside[
            window.top : window.top + window.height, window.left : window.left + window.width
        ] = True
        assert inside[np.isin(labels, window.labels)].all()  # the window holds its holes
    assert (windows[0].side, windows[2].side) == (32, 32)
    assert (windows[1].top, windows[1].height, windows[1].width, windows[1].side) == (
        0,
        180,
        180,
        180,
    )
    assert (windows[3].top, windows[3].left) == (168, 0)  # shifted into the corner
    _, [whole] = plan_windows(np.ones((5, 9), dtype=bool), 32, 2.0)
    assert (whole.top, whole.left, whole.height, whole.width, whole.side) == (0, 0, 5, 9, 9)


class ConstantGenerator(torch.nn.Module):
    """Stands in for the generator: window ``i`` of a call comes out as ``values[i]``."""

    def __init__(self, values: list[float]) -> None:
        super().__init__()
        self.values, self.holes = values, []

    def forward(self, filled: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
        self.holes.append(masks)
        return torch.stack([torch.full(filled.shape[1:], v) for v in self.values])


def test_each_window_pastes_only_its_own_holes() -> None:
    networks = ContextEncoderNetworks(ContextEncoderConfig(**TINY))  # type: ignore[arg-type]
    networks.generator = ConstantGenerator([0.25, 0.75])
    image = gradient_batch(64)
    mask = torch.zeros(1, 1, 64, 64)
    mask[..., 10:50, 10:50] = 1.0  # window 0: the whole image (it covers the small hole)
    mask[..., 60:62, 60:62] = 1.0  # window 1: the corner 32 x 32 (it covers part of hole 0)
    output = fill_windows(networks, image, mask, 2.0)
    torch.testing.assert_close(output[..., 10:50, 10:50], torch.full((1, 3, 40, 40), 0.25))
    torch.testing.assert_close(output[..., 60:62, 60:62], torch.full((1, 3, 2, 2), 0.75))
    known = mask.expand_as(image) < 0.5
    assert torch.equal(output[known], image[known])
    [holes] = networks.generator.holes  # both windows in one batch, every hole marked
    assert holes.shape == (2, 1, 32, 32) and holes[1].sum() > 4 * 4


def test_far_apart_holes_are_filled_each_by_its_own_window(tmp_path: Path) -> None:
    weights = save_untrained(tmp_path)
    image = contract_image(40, 120)[:, :, :3].astype(np.float32)
    left, right = np.zeros((40, 120), dtype=bool), np.zeros((40, 120), dtype=bool)
    left[12:20, 8:18] = True
    right[20:30, 100:108] = True
    method = ContextEncoder(weights=weights, device="cpu")
    both = inpaint(image, left | right, method)
    assert np.array_equal(both[~(left | right)], image[~(left | right)])
    assert np.isfinite(both).all() and (both[left | right] != 1.0).any()  # not the white prior
    for alone in (left, right):  # the other hole is outside the window: same fill
        single = inpaint(image, alone, method)
        np.testing.assert_allclose(both[alone], single[alone], atol=1e-5)


def test_a_hole_larger_than_the_input_size_and_one_at_the_border(tmp_path: Path) -> None:
    weights = save_untrained(tmp_path)
    image = contract_image(80, 90)[:, :, :3].astype(np.float32)
    mask = np.zeros((80, 90), dtype=bool)
    mask[10:60, 20:75] = True  # 55 px > input_size 32: a downsampled window
    mask[:, 0:3] = True  # the left border
    mask[77:, 85:] = True  # the corner
    result = inpaint(image, mask, ContextEncoder(weights=weights, device="cpu"))
    assert np.array_equal(result[~mask], image[~mask])
    assert np.isfinite(result).all() and result.min() >= 0 and result.max() <= 1
    assert np.abs(result[mask] - image[mask]).max() > 0  # every hole was written
    assert not np.any(np.all(result[mask] == 1.0, axis=-1))  # no pixel left at the white prior


# --- the method contract ---------------------------------------------------------------------
def test_context_encoder_info() -> None:
    info = ContextEncoder.info
    assert info.name == "context-encoder" and info.family.value == "context_encoder"
    assert info.learned and info.supports_gpu and "window" in info.summary
    names = [p.name for p in info.parameters]
    assert names == ["weights", "device", "precision", "backend", "context_scale"]


@pytest.mark.parametrize("prior", ["none", "telea"])
def test_context_encoder_keeps_the_method_contract(tmp_path: Path, prior: str) -> None:
    weights = save_untrained(tmp_path, prior=prior)
    check_method(ContextEncoder, {"weights": weights, "device": "cpu"})
    check_method(
        ContextEncoder,
        {"weights": str(weights), "device": "cpu", "context_scale": 3.0},
        height=37,
        width=50,
    )


def test_untrained_telea_prior_equals_telea_at_any_size(tmp_path: Path) -> None:
    weights = save_untrained(tmp_path, prior="telea")
    image = contract_image(37, 150)[:, :, :3].astype(np.float32)
    mask = np.zeros((37, 150), dtype=bool)
    mask[5:30, 10:70] = True  # a window wider than input_size and than the image is tall
    mask[30:, 140:] = True
    method = ContextEncoder(weights=weights, device="cpu")
    np.testing.assert_array_equal(inpaint(image, mask, method), inpaint(image, mask, Telea()))
