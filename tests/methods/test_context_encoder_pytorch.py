"""The published Context Encoder in ``context-encoder``: the ``context-encoder-pytorch`` format,
proven equal to the reference (BoyuanJiang/context_encoder_pytorch, the PyTorch port of Pathak
et al.'s centre-region model) on tests/fixtures/context_encoder_pathak, made by its
``make_fixture.py`` with the reference's own ``_netG`` and ``test_one.py`` steps."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from inpaint_core.api import inpaint
from inpaint_core.errors import InvalidWeightsError, ParameterError
from inpaint_core.weights import import_weights
from inpaint_core.weights.pickles import load_pickled
from inpaint_methods.context_encoder import (
    ContextEncoder,
    ContextEncoderConfig,
    ContextEncoderNetworks,
)
from inpaint_methods.context_encoder_pathak import PathakGenerator

from ..reference import (
    assert_payload_runs,
    assert_within_bounds,
    hole_difference,
    import_published,
    run_method,
    touches,
)

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "context_encoder_pathak"

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _png(name: str) -> np.ndarray:
    return np.asarray(Image.open(FIXTURE / name))


@pytest.fixture(scope="module")
def weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    target = tmp_path_factory.mktemp("ce") / "pathak.safetensors"
    import_weights("context-encoder-pytorch", FIXTURE / "netG_tiny.pth", target)
    return target


def test_cli_import_and_run_equal_the_reference(tmp_path: Path) -> None:
    target = import_published("context-encoder-pytorch", FIXTURE / "netG_tiny.pth",
                              tmp_path / "w.safetensors")
    ours = run_method(FIXTURE / "input.png", FIXTURE / "mask.png", "context-encoder", target,
                      tmp_path / "out.png")
    reference, source = _png("reference_output.png"), _png("input.png")
    hole = _png("mask.png") > 0
    difference = hole_difference(ours, reference, source, hole)
    assert_within_bounds(difference)
    # The reference truncates to uint8 where this project rounds: they differ, by at most 1.
    assert difference.max() >= 1


def test_the_config_and_widths_come_from_the_file(weights: Path) -> None:
    networks = ContextEncoder(weights=str(weights)).load_networks("cpu")
    config = networks.config
    assert (config.architecture.value, config.input_size, config.prior.value) == (
        "pathak", 128, "none")
    assert (config.base_channels, config.decoder_channels, config.bottleneck_channels) == (8, 8, 32)
    state = load_pickled(FIXTURE / "netG_tiny.pth")["state_dict"]
    assert isinstance(networks.generator, PathakGenerator)
    for key, value in networks.generator.state_dict().items():
        assert torch.equal(value, state[key].to(value.dtype)), key


@pytest.mark.parametrize("shape", [(96, 150), (300, 260)])
def test_any_size_and_a_hole_at_the_edge_fill_only_the_hole(weights: Path, shape) -> None:
    rng = np.random.default_rng(5)
    image = rng.random((*shape, 3)).astype(np.float32)
    mask = np.zeros(shape, bool)
    mask[2:30, 0:20] = True  # at the edge: the window is reflected outside the image
    mask[shape[0] // 2 : shape[0] // 2 + 70, 60:75] = True  # a tall one: a resized window
    out = inpaint(image, mask, "context-encoder", weights=str(weights))
    assert out.shape == image.shape and np.isfinite(out).all()
    assert np.array_equal(out[~mask], image[~mask])
    assert not np.allclose(out[mask], image[mask])
    assert out.min() >= 0.0 and out.max() <= 1.0


def test_the_hole_content_never_reaches_the_generator(weights: Path) -> None:
    image = _png("input.png").astype(np.float32) / 255
    mask = _png("mask.png") > 0
    damaged = image.copy()
    damaged[mask] = np.random.default_rng(1).random((int(mask.sum()), 3))
    first = inpaint(image, mask, "context-encoder", weights=str(weights))
    second = inpaint(damaged, mask, "context-encoder", weights=str(weights))
    assert np.array_equal(first[mask], second[mask])


def test_mismatched_keys_are_named(tmp_path: Path) -> None:
    checkpoint = load_pickled(FIXTURE / "netG_tiny.pth")
    del checkpoint["state_dict"]["main.18.running_mean"]
    path = tmp_path / "cut.pth"
    torch.save(checkpoint, path)
    with pytest.raises(InvalidWeightsError, match=r"missing keys: main\.18\.running_mean"):
        import_weights("context-encoder-pytorch", path, tmp_path / "w.safetensors")
    torch.save({"epoch": 1, "state_dict": {"other.weight": torch.zeros(2)}}, path)
    with pytest.raises(InvalidWeightsError, match=r"no 4-d 'main\.0\.weight'"):
        import_weights("context-encoder-pytorch", path, tmp_path / "w.safetensors")


def test_a_payload_that_runs_a_command_is_never_executed(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    checkpoint = load_pickled(FIXTURE / "netG_tiny.pth")
    checkpoint["optimizer"] = touches(marker)
    path = tmp_path / "evil.pth"
    torch.save(checkpoint, path)
    assert_payload_runs(path, marker)
    import_weights("context-encoder-pytorch", path, tmp_path / "w.safetensors")
    assert not marker.exists()


def test_the_pathak_architecture_is_checked_and_not_trained() -> None:
    with pytest.raises(ParameterError, match=r"input_size=128 and prior='none'.*input_size=64"):
        ContextEncoderConfig(architecture="pathak", input_size=64)
    config = ContextEncoderConfig(architecture="pathak", base_channels=4, decoder_channels=4,
                                  bottleneck_channels=8)
    assert isinstance(ContextEncoderNetworks(config).generator, PathakGenerator)
    with pytest.raises(ParameterError, match="cannot be trained here"):
        ContextEncoder.build_training(config)
