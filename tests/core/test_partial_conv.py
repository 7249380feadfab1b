"""PartialConv2d: plain conv on valid input, mask update, renormalisation, empty windows, checks."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from inpaint_core.errors import InvalidInputError
from inpaint_core.nn.layers import PartialConv2d

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def seeded_conv(*args: object, **kwargs: object) -> PartialConv2d:
    torch.manual_seed(0)
    conv = PartialConv2d(*args, **kwargs)  # type: ignore[arg-type]
    with torch.no_grad():
        conv.bias.uniform_(-1, 1)  # a visible bias
    return conv


@pytest.mark.parametrize(("stride", "mask_channels"), [(1, 1), (2, 1), (1, 3)])
def test_fully_valid_input_equals_a_plain_conv(stride: int, mask_channels: int) -> None:
    conv = seeded_conv(3, 5, 3, stride=stride, padding=0)
    x = torch.rand(2, 3, 9, 11, generator=torch.Generator().manual_seed(1))
    out, new_mask = conv(x, torch.ones(2, mask_channels, 9, 11))
    expected = F.conv2d(x, conv.weight, conv.bias, stride)
    assert out.shape == expected.shape and new_mask.shape == (2, 1, *expected.shape[2:])
    torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-6)
    assert torch.all(new_mask == 1)


def test_the_mask_update_shrinks_a_hole_by_the_kernel_radius() -> None:
    conv = PartialConv2d(1, 1, 3, padding=1)
    valid = torch.ones(1, 1, 11, 11)
    valid[:, :, 3:8, 3:8] = 0  # a 5 x 5 hole
    _, new_mask = conv(torch.rand(1, 1, 11, 11), valid)
    expected = torch.ones(1, 1, 11, 11)
    expected[:, :, 4:7, 4:7] = 0  # a 3 x 3 hole
    assert torch.equal(new_mask, expected)
    _, again = conv(torch.rand(1, 1, 11, 11), new_mask)
    centre = torch.ones(1, 1, 11, 11)
    centre[:, :, 5, 5] = 0
    assert torch.equal(again, centre)


def test_renormalisation_scales_by_window_over_valid_count() -> None:
    conv = PartialConv2d(2, 1, 3, padding=0)
    with torch.no_grad():
        conv.weight.fill_(1.0)
        conv.bias.fill_(0.5)
    x = torch.full((1, 2, 3, 3), 2.0)
    valid = torch.zeros(1, 1, 3, 3)
    valid[0, 0, 0, :] = 1  # 3 of 9 pixels valid
    valid[0, 0, 1, 0] = 1  # 4 of 9
    out, new_mask = conv(x, valid)
    # sum over 4 valid pixels x 2 channels x 2.0 = 16, times 9 / 4, plus the bias.
    assert out.shape == (1, 1, 1, 1)
    assert out.item() == pytest.approx(16 * 9 / 4 + 0.5, abs=1e-5)
    assert new_mask.item() == 1.0
    # Hole values never matter.
    x2 = x.clone()
    x2[:, :, 2, :] = 100.0
    assert torch.equal(conv(x2, valid)[0], out)


def test_per_channel_masks_count_every_channel() -> None:
    conv = PartialConv2d(2, 1, 3, padding=0)
    with torch.no_grad():
        conv.weight.fill_(1.0)
        conv.bias.zero_()
    x = torch.ones(1, 2, 3, 3)
    valid = torch.zeros(1, 2, 3, 3)
    valid[0, 0] = 1  # channel 0 fully valid, channel 1 fully missing: 9 of 18
    out, new_mask = conv(x, valid)
    assert out.item() == pytest.approx(9 * 18 / 9, abs=1e-5)
    assert new_mask.shape == (1, 1, 1, 1) and new_mask.item() == 1.0


def test_windows_without_a_valid_pixel_give_zero_and_mask_zero() -> None:
    conv = seeded_conv(2, 4, 3, padding=1)
    valid = torch.zeros(1, 1, 8, 8)
    valid[:, :, :, :2] = 1  # only the two left columns are valid
    out, new_mask = conv(torch.rand(1, 2, 8, 8), valid)
    assert torch.all(new_mask[..., :3] == 1) and torch.all(new_mask[..., 3:] == 0)
    assert torch.all(out[..., 3:] == 0)  # no bias either
    assert torch.all(out[..., :3] != 0)
    all_missing, empty = conv(torch.rand(1, 2, 8, 8), torch.zeros(1, 1, 8, 8))
    assert torch.all(all_missing == 0) and torch.all(empty == 0)


def test_zero_padding_counts_as_missing_at_the_border() -> None:
    conv = PartialConv2d(1, 1, 3, padding=1)
    with torch.no_grad():
        conv.weight.fill_(1.0)
        conv.bias.zero_()
    out, _ = conv(torch.ones(1, 1, 4, 4), torch.ones(1, 1, 4, 4))
    assert torch.allclose(out, torch.full((1, 1, 4, 4), 9.0))  # corners renormalised 4 -> 9


def test_gradients_reach_the_weights_not_the_mask() -> None:
    conv = seeded_conv(3, 2, 3, padding=1)
    valid = torch.ones(1, 1, 6, 6, requires_grad=True)
    out, new_mask = conv(torch.rand(1, 3, 6, 6), valid)
    assert not new_mask.requires_grad
    out.sum().backward()
    assert conv.weight.grad is not None and conv.bias.grad is not None


@pytest.mark.parametrize(
    ("x_shape", "mask_shape", "message"),
    [
        (
            (1, 3, 8, 8),
            (1, 2, 8, 8),
            r"mask shape \(1, 2, 8, 8\) does not fit input \(1, 3, 8, 8\)",
        ),
        ((1, 3, 8, 8), (1, 1, 8, 7), r"mask shape \(1, 1, 8, 7\) does not fit input"),
        ((1, 3, 8, 8), (2, 1, 8, 8), r"expected \(1, 1, 8, 8\) or \(1, 3, 8, 8\)"),
        ((1, 3, 8, 8), (1, 8, 8), r"mask shape \(1, 8, 8\)"),
        ((1, 4, 8, 8), (1, 1, 8, 8), r"input shape \(1, 4, 8, 8\) is not \(B, 3, H, W\)"),
    ],
)
def test_bad_shapes_are_named(
    x_shape: tuple[int, ...], mask_shape: tuple[int, ...], message: str
) -> None:
    conv = PartialConv2d(3, 2, 3, padding=1)
    with pytest.raises(InvalidInputError, match=message):
        conv(torch.rand(x_shape), torch.ones(mask_shape))
