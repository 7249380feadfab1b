"""GLCIC's global-local context discriminator: shapes, size checks, layer counts, gradients."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from inpaint_core.errors import InvalidInputError
from inpaint_core.nn.discriminators import GlobalLocalDiscriminator, GlobalLocalDiscriminatorConfig
from inpaint_core.nn.discriminators.global_local import branch_sides

pytestmark = pytest.mark.usefixtures("one_torch_thread")

TINY = {"global_size": 32, "local_size": 16, "base_channels": 4, "features": 8}


def tiny(**kwargs: object) -> GlobalLocalDiscriminator:
    torch.manual_seed(0)
    return GlobalLocalDiscriminator(GlobalLocalDiscriminatorConfig(**{**TINY, **kwargs}))


def test_returns_one_logit_per_image() -> None:
    d = tiny()
    logits = d(torch.rand(3, 3, 32, 32), torch.rand(3, 3, 16, 16))
    assert logits.shape == (3, 1) and logits.dtype == torch.float32
    assert torch.isfinite(logits).all()
    # Raw logits, not probabilities: a bias shift moves them outside [0, 1].
    with torch.no_grad():
        d.head.bias.fill_(5.0)
    assert (d(torch.rand(3, 3, 32, 32), torch.rand(3, 3, 16, 16)) > 1.0).all()


@pytest.mark.parametrize(
    ("global_side", "local_side", "global_convs", "local_convs"),
    [(256, 128, 6, 5), (128, 64, 5, 4), (32, 16, 3, 2), (40, 24, 4, 3)],
)
def test_strided_conv_count_follows_the_sizes(
    global_side: int, local_side: int, global_convs: int, local_convs: int
) -> None:
    config = GlobalLocalDiscriminatorConfig(global_side, local_side, base_channels=2, features=4)
    d = GlobalLocalDiscriminator(config)
    for branch, count, side in (("global", global_convs, global_side),
                                ("local", local_convs, local_side)):
        convs = d.strided_convs(branch)
        assert len(convs) == count == len(branch_sides(side))
        assert all(conv.stride == (2, 2) and conv.kernel_size == (5, 5) for conv in convs)
        assert branch_sides(side)[-1] <= 4 < ([side, *branch_sides(side)])[-2]
    # The paper's widths: 64, 128, 256, 512, 512, 512 (capped at 8 x base).
    assert GlobalLocalDiscriminatorConfig(base_channels=64).widths(256) == [
        64, 128, 256, 512, 512, 512
    ]


def test_branches_have_batchnorm_relu_and_a_fully_connected_layer() -> None:
    d = tiny()
    kinds = [type(layer) for layer in d.global_branch.convs]
    assert kinds == [nn.Conv2d, nn.BatchNorm2d, nn.ReLU] * 3
    assert d.global_branch.fc.in_features == 16 * 4 * 4 and d.global_branch.fc.out_features == 8
    assert d.local_branch.fc.in_features == 8 * 4 * 4
    assert d.head.in_features == 16 and d.head.out_features == 1


@pytest.mark.parametrize(
    ("images", "patches", "message"),
    [
        ((2, 3, 64, 64), (2, 3, 16, 16),
         r"images shape \(2, 3, 64, 64\) is not \(B, 3, 32, 32\).*exactly 32 x 32"),
        ((2, 3, 32, 32), (2, 3, 32, 32),
         r"patches shape \(2, 3, 32, 32\) is not \(B, 3, 16, 16\)"),
        ((2, 4, 32, 32), (2, 3, 16, 16), r"images shape \(2, 4, 32, 32\)"),
        ((3, 32, 32), (2, 3, 16, 16), r"images shape \(3, 32, 32\)"),
        ((2, 3, 32, 32), (1, 3, 16, 16), r"2 images but 1 patches"),
    ],
)
def test_wrong_sizes_name_expected_and_received_shapes(
    images: tuple[int, ...], patches: tuple[int, ...], message: str
) -> None:
    with pytest.raises(InvalidInputError, match=message):
        tiny()(torch.rand(images), torch.rand(patches))


def test_gradients_reach_both_branches() -> None:
    d = tiny()
    d(torch.rand(2, 3, 32, 32), torch.rand(2, 3, 16, 16)).sum().backward()
    for branch in (d.global_branch, d.local_branch):
        for name, parameter in branch.named_parameters():
            assert parameter.grad is not None and parameter.grad.abs().sum() > 0, name
    # Each branch sees its own input: changing the patch alone changes the logit.
    d.eval()
    images = torch.rand(2, 3, 32, 32)
    first = d(images, torch.zeros(2, 3, 16, 16))
    second = d(images, torch.ones(2, 3, 16, 16))
    assert not torch.allclose(first, second)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"global_size": 4}, r"global_size=4 must be an integer >= 8"),
        ({"local_size": 7.5}, r"local_size=7.5 must be an integer >= 8"),
        ({"base_channels": 0}, r"base_channels=0 must be an integer >= 1"),
        ({"features": True}, r"features=True must be an integer >= 1"),
        ({"norm": "layer"}, r"unknown norm 'layer'; valid: instance, batch, none"),
    ],
)
def test_config_rejects_bad_values(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidInputError, match=message):
        GlobalLocalDiscriminatorConfig(**kwargs)  # type: ignore[arg-type]


def test_norm_none_gives_biased_convs_without_norm_layers() -> None:
    d = tiny(norm="none")
    convs = d.strided_convs("local")
    assert all(conv.bias is not None for conv in convs)
    assert not any(isinstance(layer, nn.BatchNorm2d) for layer in d.modules())
