"""Gated convolution, contextual attention and SN-PatchGAN (DeepFill v1/v2's shared layers)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch.nn.utils import parametrize

from inpaint_core.errors import InvalidInputError, ParameterError
from inpaint_core.nn.discriminators import SNPatchDiscriminator, SNPatchDiscriminatorConfig
from inpaint_core.nn.layers import Activation, ContextualAttention, GatedConv2d, GatedDeconv2d

pytestmark = pytest.mark.usefixtures("one_torch_thread")


# --- gated convolution ----------------------------------------------------------------------
def test_a_closed_gate_zeros_the_output() -> None:
    torch.manual_seed(0)
    layer = GatedConv2d(3, 4, 3)
    with torch.no_grad():
        layer.conv.weight[4:] = 0.0  # the gate half of the filters
        layer.conv.bias[4:] = -1e4  # sigmoid(-1e4) == 0 in float32
    x = torch.randn(2, 3, 8, 8)
    assert torch.equal(layer(x), torch.zeros(2, 4, 8, 8))
    with torch.no_grad():
        layer.conv.bias[4:] = 1e4  # an open gate passes act(features) through
    features = F.conv2d(x, layer.conv.weight[:4], layer.conv.bias[:4], padding=1)
    torch.testing.assert_close(layer(x), F.elu(features))


@pytest.mark.parametrize(
    ("kernel", "stride", "dilation", "size", "expected"),
    [(5, 1, 1, 16, 16), (3, 2, 1, 16, 8), (3, 2, 1, 15, 8), (3, 1, 4, 12, 12),
     (3, 1, 16, 8, 8), (5, 2, 2, 9, 5)],
)
def test_gated_conv_shapes(kernel: int, stride: int, dilation: int, size: int, expected: int
                           ) -> None:
    layer = GatedConv2d(5, 6, kernel, stride=stride, dilation=dilation)
    assert layer.conv.out_channels == 12 and layer.conv.dilation == (dilation, dilation)
    out = layer(torch.rand(1, 5, size, size + 2))
    assert out.shape[:3] == (1, 6, expected) and torch.isfinite(out).all()


def test_gated_activations_and_deconv() -> None:
    x = torch.randn(1, 2, 6, 6)
    for name, low in (("elu", -1.0), ("relu", 0.0), ("leaky-relu", None), ("none", None)):
        out = GatedConv2d(2, 3, activation=name)(x)
        if low is not None:
            assert out.min() >= low
    assert GatedConv2d(2, 3, activation=Activation.RELU).activation is Activation.RELU
    up = GatedDeconv2d(2, 3)
    assert up(x).shape == (1, 3, 12, 12)
    with pytest.raises(InvalidInputError, match=r"unknown activation 'gelu'; valid: elu"):
        GatedConv2d(2, 3, activation="gelu")
    with pytest.raises(InvalidInputError, match=r"kernel_size=4 must be an odd integer"):
        GatedConv2d(2, 3, 4)
    with pytest.raises(InvalidInputError, match=r"input shape \(1, 2, 6, 6\) is not \(B, 4"):
        GatedConv2d(4, 3)(x)


# --- contextual attention: a plain reference -------------------------------------------------
def reference_attention(f: torch.Tensor, mask: torch.Tensor, rate: int, scale: float,
                        fuse: bool) -> torch.Tensor:
    """The whole (HW)^2 score volume at once, written as directly as possible (one image)."""
    height, width = f.shape[2:]
    h, w = height // rate, width // rate
    kernel, pad = (3, 1) if rate == 1 else (2 * rate, rate // 2)
    small = F.avg_pool2d(f, rate) if rate > 1 else f
    hole = (mask > 0.5).float()
    small_hole = F.max_pool2d(hole, rate) if rate > 1 else hole
    valid = F.max_pool2d(small_hole, 3, 1, 1).flatten() == 0
    patches = F.unfold(small, 3, padding=1)[0].T
    patches = patches / patches.norm(dim=1, keepdim=True).clamp_min(1e-4)
    scores = patches @ patches.T  # (L queries, L keys)
    if fuse:
        grid = F.pad(scores.view(h, w, h, w), (1, 1, 1, 1, 1, 1, 1, 1))
        fused = torch.zeros(h, w, h, w)
        for dy in (-1, 0, 1):
            for dx in (-1, 0, 1):
                fused += grid[1 + dy : 1 + dy + h, 1 + dx : 1 + dx + w,
                              1 + dy : 1 + dy + h, 1 + dx : 1 + dx + w]
        scores = fused.view(h * w, h * w)
    scores = scores.masked_fill(~valid[None], float("-inf"))
    attention = torch.softmax(scores * scale, dim=1)
    raw = F.unfold(f, kernel, stride=rate, padding=pad)[0].T
    rebuilt = F.fold((attention @ raw).T[None], (height, width), kernel, stride=rate, padding=pad)
    overlap = F.fold(torch.ones(1, kernel * kernel, h * w), (height, width), kernel,
                     stride=rate, padding=pad)
    return torch.where(hole > 0.5, rebuilt / overlap, f)


def hole_mask(height: int, width: int, top: int, bottom: int, left: int, right: int
              ) -> torch.Tensor:
    mask = torch.zeros(1, 1, height, width)
    mask[..., top:bottom, left:right] = 1.0
    return mask


@pytest.mark.parametrize("rate", [1, 2])
@pytest.mark.parametrize("fuse", [False, True])
def test_attention_matches_the_reference(rate: int, fuse: bool) -> None:
    f = torch.rand(1, 4, 16, 20, generator=torch.Generator().manual_seed(rate))
    mask = hole_mask(16, 20, 4, 10, 6, 13)
    layer = ContextualAttention(rate=rate, softmax_scale=10.0, fuse=fuse)
    expected = reference_attention(f, mask, rate, 10.0, fuse)
    torch.testing.assert_close(layer(f, mask), expected, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("rate", [1, 2])
def test_attention_copies_the_one_matching_known_patch(rate: int) -> None:
    """The hole holds a half-bright copy of a known region: attention restores it at full."""
    c, size = 8, 32
    f = torch.rand(1, c, size, size, generator=torch.Generator().manual_seed(3)) - 0.5
    top, left, side, margin, shift = 18, 18, 6, 4, 14  # source region: 14 rows/cols up-left
    outer = slice(top - margin, top + side + margin), slice(left - margin, left + side + margin)
    source = (
        slice(outer[0].start - shift, outer[0].stop - shift),
        slice(outer[1].start - shift, outer[1].stop - shift),
    )
    f[..., outer[0], outer[1]] = f[..., source[0], source[1]]  # the ring around the hole too
    hole = slice(top, top + side), slice(left, left + side)
    expected = f[..., hole[0].start - shift : hole[0].stop - shift,
                 hole[1].start - shift : hole[1].stop - shift].clone()
    f[..., hole[0], hole[1]] *= 0.5  # same direction, so cosine similarity 1 with the source
    mask = hole_mask(size, size, top, top + side, left, left + side)
    for fuse in (False, True):
        out = ContextualAttention(rate=rate, softmax_scale=1000.0, fuse=fuse)(f, mask)
        torch.testing.assert_close(out[..., hole[0], hole[1]], expected, atol=1e-4, rtol=0)
        assert torch.equal(out * (1 - mask), f * (1 - mask))  # known features untouched
        assert not torch.allclose(f[..., hole[0], hole[1]], expected, atol=0.1)


@pytest.mark.parametrize("fuse", [False, True])
def test_chunked_attention_equals_unchunked(fuse: bool) -> None:
    f = torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(5))
    mask = torch.cat([hole_mask(16, 16, 3, 9, 2, 12), hole_mask(16, 16, 8, 15, 5, 9)])
    expected = ContextualAttention(rate=2, fuse=fuse, max_elements=2**30)(f, mask)
    queries = torch.nonzero(F.max_pool2d(mask[:1], 4, 2, 1).flatten() > 0).flatten()
    keys = 12
    columns = 64 if fuse else keys  # a fused block spans the whole 8 x 8 small grid
    for chunk in (1, 7, len(queries)):
        layer = ContextualAttention(rate=2, fuse=fuse, max_elements=chunk * columns)
        sizes = [stop - start for start, stop in layer._plan(queries, keys, 8, 8)]
        assert sum(sizes) == len(queries) and max(sizes) <= chunk
        if not fuse:  # fused chunks shrink until their neighbour rows fit too
            assert sizes[0] == chunk
        torch.testing.assert_close(layer(f, mask), expected, atol=1e-6, rtol=1e-6)


def test_chunked_attention_has_the_same_gradients() -> None:
    f = torch.rand(1, 3, 16, 16, generator=torch.Generator().manual_seed(6))
    mask = hole_mask(16, 16, 4, 12, 4, 12)
    grads = []
    for max_elements in (2**30, 64):  # one chunk; many checkpointed chunks
        x = f.clone().requires_grad_(True)
        out = ContextualAttention(rate=2, max_elements=max_elements)(x, mask)
        (out * torch.linspace(0, 1, 16)).sum().backward()
        grads.append(x.grad)
    torch.testing.assert_close(grads[0], grads[1], atol=1e-6, rtol=1e-5)


def test_attention_passes_through_without_hole_or_known_patches() -> None:
    f = torch.rand(2, 3, 8, 8)
    layer = ContextualAttention(rate=2)
    assert torch.equal(layer(f, torch.zeros(2, 1, 8, 8)), f)
    assert torch.equal(layer(f, torch.ones(2, 1, 8, 8)), f)  # nothing known: nothing to copy
    one_known = torch.ones(1, 1, 8, 8)
    one_known[..., :2, :2] = 0  # known pixels, but no fully known 3x3 small patch
    assert torch.equal(layer(f[:1], one_known), f[:1])


def test_attention_rejects_bad_input() -> None:
    layer = ContextualAttention(rate=2)
    with pytest.raises(InvalidInputError, match=r"features 8 x 9 are not multiples of rate=2"):
        layer(torch.rand(1, 3, 8, 9), torch.zeros(1, 1, 8, 9))
    with pytest.raises(InvalidInputError, match=r"mask shape \(1, 1, 8, 6\) does not match"):
        layer(torch.rand(1, 3, 8, 8), torch.zeros(1, 1, 8, 6))
    with pytest.raises(InvalidInputError, match=r"rate=3 must be 1 or an even integer"):
        ContextualAttention(rate=3)
    with pytest.raises(InvalidInputError, match=r"max_elements=0 must be an integer >= 1"):
        ContextualAttention(max_elements=0)


# --- SN-PatchGAN --------------------------------------------------------------------------------
def test_sn_patch_discriminator_layers_and_logits() -> None:
    config = SNPatchDiscriminatorConfig(in_channels=4, base_channels=4)
    assert config.widths() == [4, 8, 16, 16, 16, 16]
    assert SNPatchDiscriminatorConfig().widths() == [64, 128, 256, 256, 256, 256]
    disc = SNPatchDiscriminator(config)
    convs = [m for m in disc.modules() if isinstance(m, torch.nn.Conv2d)]
    assert [c.kernel_size + c.stride for c in convs] == [(5, 5, 2, 2)] * 6
    assert all(parametrize.is_parametrized(c, "weight") for c in convs)
    logits = disc(torch.rand(3, 4, 128, 96))
    assert logits.shape == (3, 16 * 2 * 2)  # 128 -> 2 rows, 96 -> 2 columns (ceil)
    assert disc(torch.rand(1, 4, 37, 50)).shape == (1, 16)
    with pytest.raises(InvalidInputError, match=r"input shape \(1, 3, 32, 32\) is not \(B, 4"):
        disc(torch.rand(1, 3, 32, 32))
    with pytest.raises(ParameterError, match=r"base_channels=0 must be an integer >= 1"):
        SNPatchDiscriminatorConfig(base_channels=0)
