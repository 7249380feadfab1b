"""The patch discriminator's ``norm`` option: pix2pix's 70 x 70 PatchGAN, EdgeConnect unchanged."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.nn.utils import parametrize

from inpaint_core.errors import InvalidInputError
from inpaint_core.nn.discriminators import PatchDiscriminator, PatchDiscriminatorConfig
from inpaint_core.nn.layers.blocks import Norm

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def pix2pix_config(in_channels: int = 7, base_channels: int = 4) -> PatchDiscriminatorConfig:
    return PatchDiscriminatorConfig(in_channels, base_channels, use_spectral_norm=False,
                                    norm="batch")  # type: ignore[arg-type]


def norm_layers(disc: PatchDiscriminator) -> list[list[nn.Module]]:
    """The normalisation modules of each stage, first to last."""
    norms = (nn.BatchNorm2d, nn.InstanceNorm2d, nn.Identity)
    return [[m for m in stage.modules() if isinstance(m, norms)] for stage in disc.stages]


def test_norm_defaults_to_none_and_keeps_the_edgeconnect_state_dict() -> None:
    config = PatchDiscriminatorConfig(in_channels=4, base_channels=4)
    assert config.norm is Norm.NONE
    disc = PatchDiscriminator(config)
    assert all(layers == [] for layers in norm_layers(disc))
    # The keys the shipped edge-gan weights hold: one conv (spectral norm, no bias) per stage.
    expected = {f"stages.{i}.0.parametrizations.weight.{name}" for i in range(5)
                for name in ("original", "0._u", "0._v")}
    assert set(disc.state_dict()) == expected


def test_batch_norm_sits_on_every_conv_but_the_first_and_last() -> None:
    disc = PatchDiscriminator(pix2pix_config())
    kinds = [[type(m) for m in layers] for layers in norm_layers(disc)]
    assert kinds == [[], [nn.BatchNorm2d], [nn.BatchNorm2d], [nn.BatchNorm2d], []]
    assert [stage[1].num_features for stage in disc.stages[1:4]] == [8, 16, 32]
    # Biases only where no norm follows; no spectral norm.
    assert [c.bias is not None for c in disc.convs] == [True, False, False, False, True]
    assert not any(parametrize.is_parametrized(c, "weight") for c in disc.convs)
    assert all(isinstance(stage[-1], nn.LeakyReLU) for stage in disc.stages[:-1])
    assert isinstance(disc.stages[-1][-1], nn.Conv2d)  # logits: no activation


def test_instance_norm_is_accepted_by_name() -> None:
    disc = PatchDiscriminator(PatchDiscriminatorConfig(3, 4, norm="instance"))  # type: ignore[arg-type]
    kinds = [[type(m) for m in layers] for layers in norm_layers(disc)]
    assert kinds == [[], [nn.InstanceNorm2d], [nn.InstanceNorm2d], [nn.InstanceNorm2d], []]


def test_unknown_norm_is_rejected_naming_the_valid_ones() -> None:
    message = r"unknown norm 'layer'; valid: instance, batch, none"
    with pytest.raises(InvalidInputError, match=message):
        PatchDiscriminatorConfig(3, norm="layer")  # type: ignore[arg-type]


def test_pix2pix_patchgan_has_the_papers_widths_and_parameter_count() -> None:
    config = pix2pix_config(in_channels=6, base_channels=64)
    assert config.widths() == [64, 128, 256, 512, 1]
    disc = PatchDiscriminator(config)
    # The reference implementation's NLayerDiscriminator(6, 64, n_layers=3, BatchNorm2d).
    assert sum(p.numel() for p in disc.parameters()) == 2_768_705


@pytest.mark.parametrize(("side", "logits"), [(256, 30), (70, 6), (32, 2)])
def test_pix2pix_patchgan_output_size(side: int, logits: int) -> None:
    disc = PatchDiscriminator(pix2pix_config())
    out, features = disc(torch.rand(2, 7, side, side))
    assert out.shape == (2, 1, logits, logits)
    assert len(features) == 5


def test_pix2pix_patchgan_sees_a_70_pixel_patch() -> None:
    """The gradient of one interior logit reaches exactly a 70 x 70 window of the input."""
    torch.manual_seed(0)
    disc = PatchDiscriminator(pix2pix_config(in_channels=1)).eval()  # eval: no batch coupling
    x = torch.rand(1, 1, 128, 128, requires_grad=True)
    logits, _ = disc(x)
    logits[0, 0, 6, 6].backward()
    assert x.grad is not None
    rows, cols = torch.nonzero(x.grad[0, 0].abs() > 0, as_tuple=True)
    assert int(rows.max() - rows.min() + 1) == 70
    assert int(cols.max() - cols.min() + 1) == 70
    # Logit (i, j) starts at row 8 * i - 23 (strides 2, 2, 2, 1, 1; padding 1 on each conv).
    assert int(rows.min()) == 8 * 6 - 23 and int(cols.min()) == 8 * 6 - 23


def test_batch_norm_discriminator_trains_with_batch_one() -> None:
    disc = PatchDiscriminator(pix2pix_config()).train()
    logits, _ = disc(torch.rand(1, 7, 32, 32))
    logits.mean().backward()
    assert all(p.grad is not None for p in disc.parameters())
