"""BatchNorm folding (inpaint_core.fold): the folded networks compute what the unfolded did."""

from __future__ import annotations

import copy

import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402

from inpaint_core import get_method  # noqa: E402
from inpaint_core.fold import fold_batch_norms  # noqa: E402
from inpaint_core.nn.layers.ffc import FfcResNetGenerator, LamaConfig  # noqa: E402
from inpaint_core.nn.layers.partial import PartialConv2d  # noqa: E402


def randomise_norms(module: nn.Module, seed: int = 0) -> nn.Module:
    """Give every BatchNorm non-trivial statistics and affine parameters; eval mode."""
    generator = torch.Generator().manual_seed(seed)
    for norm in module.modules():
        if isinstance(norm, nn.BatchNorm2d):
            size = norm.num_features
            norm.running_mean.copy_(torch.rand(size, generator=generator) - 0.5)
            norm.running_var.copy_(torch.rand(size, generator=generator) + 0.5)
            norm.weight.data.copy_(torch.rand(size, generator=generator) + 0.5)
            norm.bias.data.copy_(torch.rand(size, generator=generator) - 0.5)
    return module.eval()


def batch_norms(module: nn.Module) -> int:
    return sum(isinstance(m, nn.BatchNorm2d) for m in module.modules())


@pytest.mark.parametrize("lfu", [False, True], ids=["ffc", "lfu"])
def test_lama_generator_folds_every_norm_and_keeps_its_output(lfu: bool) -> None:
    torch.manual_seed(0)
    config = LamaConfig(ngf=8, n_blocks=2, resnet_enable_lfu=lfu)
    network = randomise_norms(FfcResNetGenerator(config))
    folded = copy.deepcopy(network)
    total = batch_norms(network)
    assert fold_batch_norms(folded) == total > 0
    assert batch_norms(folded) == 0
    x = torch.rand(1, 4, 64, 64, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected, got = network(x), folded(x)
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-5)


def test_edgeconnect_instance_norms_are_not_folded() -> None:
    method_class = get_method("edge-gan")
    torch.manual_seed(0)
    networks = method_class.build_networks(method_class.config_class(architecture="edgeconnect"))
    networks.eval()
    norms = [m for m in networks.modules() if isinstance(m, nn.InstanceNorm2d)]
    state = {k: v.clone() for k, v in networks.state_dict().items()}
    assert norms and fold_batch_norms(networks) == 0
    assert [m for m in networks.modules() if isinstance(m, nn.InstanceNorm2d)] == norms
    for key, value in networks.state_dict().items():
        assert torch.equal(value, state[key]), key


@pytest.mark.parametrize("groups", [1, 2])
def test_transposed_and_plain_convolutions_in_a_sequential(groups: int) -> None:
    torch.manual_seed(0)
    network = randomise_norms(nn.Sequential(
        nn.Conv2d(4, 6, 3, padding=1, groups=groups), nn.BatchNorm2d(6), nn.ReLU(),
        nn.ConvTranspose2d(6, 4, 3, 2, padding=1, output_padding=1, groups=groups, bias=False),
        nn.BatchNorm2d(4),
    ))
    folded = copy.deepcopy(network)
    assert fold_batch_norms(folded) == 2
    assert isinstance(folded[1], nn.Identity) and isinstance(folded[4], nn.Identity)
    x = torch.rand(2, 4, 16, 16)
    with torch.no_grad():
        torch.testing.assert_close(folded(x), network(x), rtol=1e-4, atol=1e-5)


def test_spectral_norm_and_partial_convolutions_are_left_alone() -> None:
    spectral = nn.utils.parametrizations.spectral_norm(nn.Conv2d(3, 4, 3))
    network = randomise_norms(nn.Sequential(
        spectral, nn.BatchNorm2d(4), PartialConv2d(4, 4, 3), nn.BatchNorm2d(4),
    ))
    assert fold_batch_norms(network) == 0
    assert batch_norms(network) == 2


def test_training_mode_is_refused() -> None:
    network = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4))
    with pytest.raises(ValueError, match="training mode"):
        fold_batch_norms(network)
