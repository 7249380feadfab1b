"""Tests of the shared blocks (inpaint_core.nn.layers) and the patch discriminator."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.nn.utils import parametrize

from inpaint_core.errors import InvalidInputError
from inpaint_core.nn.discriminators import PatchDiscriminator, PatchDiscriminatorConfig
from inpaint_core.nn.layers import (
    EncoderDecoder,
    EncoderDecoderConfig,
    Norm,
    Output,
    ResidualBlock,
    count_parameters,
    make_norm,
    spectral_norm,
)


def small_config(**overrides: object) -> EncoderDecoderConfig:
    arguments: dict[str, object] = {
        "in_channels": 4,
        "out_channels": 3,
        "base_channels": 8,
        "residual_blocks": 2,
    }
    arguments.update(overrides)
    return EncoderDecoderConfig(**arguments)  # type: ignore[arg-type]


# --- spectral norm and norms ---------------------------------------------------------------


def test_spectral_norm_wraps_only_when_enabled() -> None:
    assert parametrize.is_parametrized(spectral_norm(nn.Conv2d(2, 2, 3)), "weight")
    assert not parametrize.is_parametrized(spectral_norm(nn.Conv2d(2, 2, 3), False), "weight")


def test_make_norm_builds_each_kind() -> None:
    instance = make_norm("instance", 5)
    assert isinstance(instance, nn.InstanceNorm2d)
    assert not instance.affine
    assert not instance.track_running_stats
    assert isinstance(make_norm(Norm.BATCH, 5), nn.BatchNorm2d)
    assert isinstance(make_norm("none", 5), nn.Identity)


def test_make_norm_unknown_name_lists_valid_ones() -> None:
    with pytest.raises(
        InvalidInputError, match=r"unknown norm 'layer'; valid: instance, batch, none"
    ):
        make_norm("layer", 4)


# --- residual block ------------------------------------------------------------------------


@pytest.mark.parametrize("norm", list(Norm))
def test_residual_block_preserves_shape(norm: Norm) -> None:
    block = ResidualBlock(6, dilation=2, norm=norm)
    x = torch.rand(2, 6, 12, 10)
    assert block(x).shape == x.shape


def test_residual_block_is_identity_when_last_conv_is_zero() -> None:
    torch.manual_seed(0)
    block = ResidualBlock(4, dilation=2, norm=Norm.NONE)
    with torch.no_grad():
        block.conv.weight.zero_()
        block.conv.bias.zero_()
    x = torch.randn(1, 4, 8, 8)
    torch.testing.assert_close(block(x), x, rtol=0, atol=0)
    # Sanity: with its random initial weights the block is not the identity.
    assert not torch.equal(ResidualBlock(4, norm=Norm.NONE)(x), x)


def test_residual_block_dilation_reaches_the_conv() -> None:
    block = ResidualBlock(4, dilation=3)
    assert block.dilated_conv.dilation == (3, 3)
    assert block.conv.dilation == (1, 1)
    assert isinstance(block.block[0], nn.ReflectionPad2d)
    assert block.block[0].padding == (3, 3, 3, 3)


def test_residual_block_spectral_norm() -> None:
    block = ResidualBlock(4, use_spectral_norm=True)
    assert parametrize.is_parametrized(block.dilated_conv, "weight")
    assert parametrize.is_parametrized(block.conv, "weight")


@pytest.mark.parametrize("bad", [{"channels": 0}, {"channels": 4, "dilation": 0}])
def test_residual_block_rejects_bad_arguments(bad: dict[str, int]) -> None:
    with pytest.raises(InvalidInputError, match="must be a positive integer"):
        ResidualBlock(**bad)


# --- encoder-decoder -----------------------------------------------------------------------


def test_encoder_decoder_output_shape_and_sigmoid_range() -> None:
    torch.manual_seed(0)
    model = EncoderDecoder(small_config())
    x = torch.randn(2, 4, 32, 28) * 10  # large inputs push the sigmoid towards its ends
    with torch.no_grad():
        y = model(x)
    assert y.shape == (2, 3, 32, 28)
    assert y.dtype == torch.float32
    assert float(y.min()) >= 0.0
    assert float(y.max()) <= 1.0


def test_encoder_decoder_tanh01_in_unit_range_and_none_is_raw() -> None:
    torch.manual_seed(0)
    x = torch.randn(1, 4, 16, 16)
    torch.manual_seed(1)
    with torch.no_grad():
        tanh01 = EncoderDecoder(small_config(output="tanh01"))(x)
    assert float(tanh01.min()) >= 0.0 and float(tanh01.max()) <= 1.0
    torch.manual_seed(1)
    with torch.no_grad():
        raw = EncoderDecoder(small_config(output=Output.NONE))(x)
    # Same seed, same weights: tanh01 is (tanh(raw) + 1) / 2.
    torch.testing.assert_close(tanh01, (torch.tanh(raw) + 1) / 2)
    assert float(raw.min()) < 0.0 or float(raw.max()) > 1.0


def test_encoder_decoder_parameter_counts() -> None:
    full = count_parameters(EncoderDecoder(EncoderDecoderConfig(in_channels=4, out_channels=3)))
    lite = count_parameters(
        EncoderDecoder(EncoderDecoderConfig(in_channels=4, out_channels=3, base_channels=16))
    )
    assert 10e6 <= full <= 11.5e6  # EdgeConnect's generator: about 10.8 M
    assert 14 <= full / lite <= 17  # conv weights scale with width squared: about 16x


def test_encoder_decoder_rejects_size_not_multiple_of_four() -> None:
    model = EncoderDecoder(small_config())
    with pytest.raises(InvalidInputError, match=r"\(1, 4, 30, 32\).*pad to a multiple of 4"):
        model(torch.rand(1, 4, 30, 32))


def test_encoder_decoder_rejects_wrong_channels() -> None:
    with pytest.raises(InvalidInputError, match=r"\(1, 3, 32, 32\) is not \(B, 4, H, W\)"):
        EncoderDecoder(small_config())(torch.rand(1, 3, 32, 32))


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"in_channels": 0}, "in_channels must be a positive integer, got 0"),
        ({"base_channels": -8}, "base_channels must be a positive integer, got -8"),
        ({"dilation": 0}, "dilation must be a positive integer, got 0"),
        ({"out_channels": 2.5}, "out_channels must be a positive integer, got 2.5"),
        ({"residual_blocks": -1}, "residual_blocks must be an integer >= 0, got -1"),
        ({"norm": "group"}, "unknown norm 'group'; valid: instance, batch, none"),
        ({"output": "relu"}, "unknown output 'relu'; valid: sigmoid, tanh01, none"),
    ],
)
def test_encoder_decoder_config_rejects_bad_values(
    overrides: dict[str, object], message: str
) -> None:
    with pytest.raises(InvalidInputError, match=message):
        small_config(**overrides)


def test_encoder_decoder_config_accepts_enum_names() -> None:
    config = small_config(norm="batch", output="none")
    assert config.norm is Norm.BATCH
    assert config.output is Output.NONE


def test_gradient_reaches_the_first_conv() -> None:
    torch.manual_seed(0)
    model = EncoderDecoder(small_config(use_spectral_norm=True))
    model(torch.rand(1, 4, 16, 16)).mean().backward()
    first_conv = model.encoder[1]
    grad = first_conv.parametrizations.weight.original.grad
    assert grad is not None
    assert float(grad.abs().sum()) > 0.0


# --- patch discriminator -------------------------------------------------------------------


def test_patch_discriminator_output_and_features_at_256() -> None:
    torch.manual_seed(0)
    disc = PatchDiscriminator(PatchDiscriminatorConfig(in_channels=4, base_channels=8))
    logits, features = disc(torch.rand(2, 4, 256, 256))
    # 4x4 convs, padding 1: stride 2 halves, stride 1 loses one pixel.
    assert logits.shape == (2, 1, 30, 30)
    assert [tuple(f.shape[1:]) for f in features] == [
        (8, 128, 128),
        (16, 64, 64),
        (32, 32, 32),
        (64, 31, 31),
        (1, 30, 30),
    ]
    assert torch.equal(features[-1], logits)  # no sigmoid by default


def test_patch_discriminator_sigmoid_option() -> None:
    torch.manual_seed(0)
    disc = PatchDiscriminator(PatchDiscriminatorConfig(1, base_channels=4, use_sigmoid=True))
    probabilities, features = disc(torch.rand(1, 1, 32, 32))
    torch.testing.assert_close(probabilities, torch.sigmoid(features[-1]))


@pytest.mark.parametrize("enabled", [True, False])
def test_patch_discriminator_spectral_norm_switch(enabled: bool) -> None:
    disc = PatchDiscriminator(
        PatchDiscriminatorConfig(in_channels=2, base_channels=4, use_spectral_norm=enabled)
    )
    assert len(disc.convs) == 5
    assert all(parametrize.is_parametrized(c, "weight") is enabled for c in disc.convs)


def test_patch_discriminator_general_layer_count_caps_width() -> None:
    config = PatchDiscriminatorConfig(in_channels=3, base_channels=2, layers=7)
    assert config.widths() == [2, 4, 8, 16, 16, 16, 1]
    disc = PatchDiscriminator(config)
    strides = [c.stride for c in disc.convs]
    assert strides == [(2, 2)] * 5 + [(1, 1)] * 2
    logits, features = disc(torch.rand(1, 3, 128, 128))
    assert len(features) == 7
    assert logits.shape == (1, 1, 2, 2)  # 128 / 32 = 4, then 3, then 2


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"layers": 2}, "layers must be an integer >= 3, got 2"),
        ({"in_channels": 0}, "in_channels must be a positive integer, got 0"),
        ({"base_channels": True}, "base_channels must be a positive integer, got True"),
    ],
)
def test_patch_discriminator_config_rejects_bad_values(
    overrides: dict[str, object], message: str
) -> None:
    arguments: dict[str, object] = {"in_channels": 3, **overrides}
    with pytest.raises(InvalidInputError, match=message):
        PatchDiscriminatorConfig(**arguments)  # type: ignore[arg-type]


def test_patch_discriminator_rejects_wrong_channels() -> None:
    disc = PatchDiscriminator(PatchDiscriminatorConfig(in_channels=4, base_channels=4))
    with pytest.raises(InvalidInputError, match=r"\(1, 3, 64, 64\) is not \(B, 4, H, W\)"):
        disc(torch.rand(1, 3, 64, 64))


def test_seeded_construction_is_deterministic() -> None:
    x = torch.rand(1, 4, 32, 32)
    outputs = []
    for _ in range(2):
        torch.manual_seed(123)
        generator = EncoderDecoder(small_config())
        disc = PatchDiscriminator(PatchDiscriminatorConfig(in_channels=3, base_channels=4))
        with torch.no_grad():
            image = generator(x)
            outputs.append((image, disc(image)[0]))
    torch.testing.assert_close(outputs[0][0], outputs[1][0], rtol=0, atol=0)
    torch.testing.assert_close(outputs[0][1], outputs[1][1], rtol=0, atol=0)


def test_residual_block_stores_each_weight_once() -> None:
    """Each conv is a child of ``block`` only: no weight appears twice in a state dict."""
    from inpaint_core.nn.layers.blocks import ResidualBlock

    block = ResidualBlock(8, dilation=2, use_spectral_norm=True)
    state = block.state_dict()
    pointers = [tensor.data_ptr() for tensor in state.values()]
    assert len(pointers) == len(set(pointers))
    assert block.dilated_conv is block.block[1] and block.conv is block.block[5]
    assert block.dilated_conv.dilation == (2, 2)
