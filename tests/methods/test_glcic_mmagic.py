"""OpenMMLab's Global&Local checkpoint in ``glcic``: the ``mmagic-glcic`` format, proven equal to
the reference implementation (open-mmlab/mmagic) on the fixture of tests/fixtures/glcic_mmagic.

The fixture keeps no weights: ``make_fixture.py`` draws them from a seed in the published
layout, and ``expected_*.png`` are what mmagic's inferencer steps wrote for them (see that
script). Here the checkpoint is written into a temporary folder with this project's
environment, imported and run through the real CLI, and compared.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from inpaint_core.api import inpaint
from inpaint_core.checkpoint import load_checkpoint, unflatten_state
from inpaint_core.errors import InvalidWeightsError, ParameterError
from inpaint_core.weights.formats import get_format
from inpaint_core.weights.mmagic_glcic import DISCRIMINATOR_KEYS, FORMAT
from inpaint_methods.glcic import Architecture, GlcicConfig, GlcicNetworks, GlcicTraining

from ..reference import (
    assert_payload_runs,
    assert_within_bounds,
    hole_difference,
    import_published,
    load_maker,
    refused_import,
    run_method,
    touches,
)

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "glcic_mmagic"
RECORD = json.loads((FIXTURE / "fixture.json").read_text())
#: The fraction of hole values (pixels x channels) allowed to differ at all.
MAX_DIFFERING = 0.02


MAKER = load_maker(FIXTURE, "glcic_mmagic_fixture")
#: One torch thread: on two busy cores, more threads only fight each other.
pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def state() -> OrderedDict[str, torch.Tensor]:
    return MAKER.make_state(RECORD["seed"])


@pytest.fixture(scope="module")
def published(state: OrderedDict[str, torch.Tensor], tmp_path_factory: pytest.TempPathFactory
              ) -> Path:
    """The checkpoint as OpenMMLab publishes it: ``{'meta', 'state_dict'}``, torch.save."""
    folder = tmp_path_factory.mktemp("openmmlab")
    return MAKER.write_checkpoint(folder / "gl_256x256_8x12_places_20200619-52a040a8.pth", state)


@pytest.fixture(scope="module")
def weights(published: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The published file imported as this project's checkpoint, by the CLI."""
    output = tmp_path_factory.mktemp("imported") / "glcic-places.safetensors"
    return import_published("mmagic-glcic", published, output)


def _case(name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    image = np.array(Image.open(FIXTURE / f"image_{name}.png"))
    hole = np.array(Image.open(FIXTURE / f"mask_{name}.png")) > 0
    expected = np.array(Image.open(FIXTURE / f"expected_{name}.png"))
    return image, hole, expected


# --- the fixture itself ------------------------------------------------------------------------
def test_generated_weights_are_the_fixtures(state: OrderedDict[str, torch.Tensor]) -> None:
    """The seeded generator still draws the weights the reference ran on, and the inputs."""
    assert MAKER.state_sha256(state) == RECORD["weights_sha256"], (
        "make_fixture.py no longer draws the weights that expected_*.png were made with; "
        "rerun it against the reference (see its docstring)"
    )
    for index, (name, shape) in enumerate(RECORD["cases"].items()):
        image, hole, _ = _case(name)
        made_image, made_mask = MAKER.make_inputs(*shape, RECORD["seed"] + index)
        assert image.shape == (*shape, 3)
        assert np.array_equal(image, made_image) and np.array_equal(hole, made_mask > 0)


# --- equality with the reference ---------------------------------------------------------------
@pytest.mark.parametrize("name", ["256", "132x200"])
def test_imported_weights_reproduce_the_reference(weights: Path, tmp_path: Path, name: str
                                                  ) -> None:
    """``inpaint run`` with the imported weights writes mmagic's inferencer output."""
    ours = run_method(FIXTURE / f"image_{name}.png", FIXTURE / f"mask_{name}.png", "glcic",
                      weights, tmp_path / "out.png")
    image, hole, expected = _case(name)
    reference = expected.astype(np.int64)
    difference = hole_difference(ours, reference, image, hole)
    assert np.array_equal(reference[~hole], image[~hole])  # the reference's composite
    assert_within_bounds(difference)
    # Tighter than the bounds: float noise (BatchNorm folded into the convs) moves a few
    # values by one level only.
    assert (difference > 0).mean() <= MAX_DIFFERING, f"{(difference > 0).mean():.4f} differ"
    # The fixture is not trivial: the hole is far from the input, and its levels vary.
    assert np.abs(reference - image.astype(np.int64))[hole].mean() > 20
    assert reference[hole].std() > 20


def test_channel_order_matters(weights: Path) -> None:
    """The network sees BGR: fed RGB, it would write another hole (so the test above checks
    the channel order, not only the layers)."""
    image, hole, expected = _case("132x200")
    swapped = inpaint(np.ascontiguousarray(image[..., ::-1]), hole, "glcic",
                      weights=str(weights), device="cpu")[..., ::-1]
    assert np.abs(swapped.astype(np.int64) - expected)[hole].mean() > 5


def test_the_sidecar_records_the_import(weights: Path, published: Path) -> None:
    _, info = load_checkpoint(weights, expected_method="glcic")
    assert info.config["architecture"] == "mmagic" and info.config["prior"] == "none"
    assert info.config["base_channels"] == 64
    published_record = info.extra["published"]
    assert published_record["format"] == "mmagic-glcic"
    assert published_record["files"] == [published.name]
    assert published_record["iter"] == MAKER.META["iter"]


def test_odd_sizes_are_padded_and_cropped(weights: Path) -> None:
    """Sizes that are not multiples of 4 (which the reference refuses) are padded at the
    bottom and right by reflection, run, and cropped; known pixels stay as they are."""
    image, hole, _ = _case("132x200")
    crop, crop_hole = image[:129, :197], hole[:129, :197]
    out = inpaint(crop, crop_hole, "glcic", weights=str(weights), device="cpu")
    assert out.shape == crop.shape and out.dtype == np.uint8
    assert np.array_equal(out[~crop_hole], crop[~crop_hole])
    assert not np.array_equal(out[crop_hole], crop[crop_hole])


# --- the format ---------------------------------------------------------------------------------
def test_the_format_is_registered() -> None:
    assert get_format("mmagic-glcic") is FORMAT
    assert FORMAT.method == "glcic" and "open-mmlab/mmagic" in FORMAT.reference


def test_a_pickled_command_is_never_run(state: OrderedDict[str, torch.Tensor],
                                        tmp_path: Path) -> None:
    """A checkpoint of this layout whose ``meta`` would run a command when loaded freely
    converts without running it."""
    marker = tmp_path / "ran"
    path = tmp_path / "evil.pth"
    meta = {**MAKER.META, "hook": touches(marker)}
    torch.save({"meta": meta, "state_dict": state}, path)
    assert_payload_runs(path, marker)
    converted = FORMAT.convert(path)
    assert not marker.exists()
    weight = converted.networks["completion"]["encoder.enc1.conv.weight"]
    assert torch.equal(weight, state["generator.encoder.enc1.conv.weight"])


def _save(path: Path, state: dict[str, torch.Tensor]) -> Path:
    torch.save({"meta": dict(MAKER.META), "state_dict": OrderedDict(state)}, path)
    return path


def test_mismatching_keys_exit_2_naming_them(
    state: OrderedDict[str, torch.Tensor], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A missing, an extra and a mis-shaped generator key: the CLI exits 2 naming each."""
    bad = dict(state)
    del bad["generator.decoder.dec4.bn.running_var"]
    bad["generator.decoder.dec8.conv.weight"] = torch.zeros(3)
    bad["generator.encoder.enc1.conv.weight"] = torch.zeros(64, 3, 5, 5)
    path = _save(tmp_path / "bad.pth", bad)
    message = refused_import("mmagic-glcic", path, tmp_path / "w.safetensors", capsys)
    assert f"mmagic-glcic generator ({path}) does not fit" in message
    assert "missing keys: decoder.dec4.bn.running_var;" in message
    assert "unexpected keys: decoder.dec8.conv.weight;" in message
    assert "mis-shaped keys: encoder.enc1.conv.weight (64, 3, 5, 5) (expected (64, 4, 5, 5))" in (
        message
    )


def test_another_models_file_is_refused(state: OrderedDict[str, torch.Tensor],
                                        tmp_path: Path) -> None:
    """No discriminator, another discriminator, stray keys: each is refused by name."""
    generator = {k: v for k, v in state.items() if k.startswith("generator.")}
    with pytest.raises(InvalidWeightsError, match=r"missing keys: disc\.fc\.bias, disc\.fc\."
                       r"weight, disc\.global_disc\.conv1\.bn\.bias"):
        FORMAT.convert(_save(tmp_path / "no-disc.pth", generator))
    patch_gan = {**generator, "disc.model.0.weight": torch.zeros(1)}
    with pytest.raises(InvalidWeightsError, match=r"is not Global&Local's GLDiscs: missing keys"
                       r": .*; unexpected keys: disc\.model\.0\.weight"):
        FORMAT.convert(_save(tmp_path / "patch.pth", patch_gan))
    stray = {**state, "ema.generator.encoder.enc1.conv.weight": torch.zeros(1)}
    with pytest.raises(InvalidWeightsError, match=r"keys outside 'generator\.' and 'disc\.': "
                       r"ema\.generator\.encoder\.enc1\.conv\.weight"):
        FORMAT.convert(_save(tmp_path / "stray.pth", stray))
    discriminator = {k: v for k, v in state.items() if k.startswith("disc.")}
    with pytest.raises(InvalidWeightsError, match=r"has no 'generator\.' tensors"):
        FORMAT.convert(_save(tmp_path / "disc-only.pth", discriminator))
    assert {k for k in state if k.startswith("disc.")} == DISCRIMINATOR_KEYS


# --- the config ---------------------------------------------------------------------------------
def test_mmagic_architecture_fixes_its_widths() -> None:
    assert GlcicConfig().architecture is Architecture.LITE
    assert GlcicConfig(architecture="mmagic").architecture is Architecture.MMAGIC  # type: ignore[arg-type]
    for option, text in (({"base_channels": 32}, r"base_channels=32 does not exist"),
                         ({"dilations": (1, 2)}, r"dilations=\(1, 2\) does not exist"),
                         ({"prior": "telea"}, r"prior='telea' does not exist")):
        with pytest.raises(ParameterError, match=text + r" in architecture='mmagic'"):
            GlcicConfig(architecture="mmagic", **option)  # type: ignore[arg-type]
    with pytest.raises(ParameterError, match=r"architecture.*'openmmlab'.*lite, mmagic"):
        GlcicConfig(architecture="openmmlab")  # type: ignore[arg-type]
    lite = GlcicNetworks(GlcicConfig(base_channels=4)).completion.state_dict()
    assert "layers.0.0.weight" in lite and "mean_pixel" in lite  # the lite network is unchanged


def test_published_weights_can_be_fine_tuned(weights: Path) -> None:
    """``GlcicTraining`` builds the ``mmagic`` generator: the imported state loads into it and
    a training step reaches its first and last convs (no mean pixel to update)."""
    tensors, info = load_checkpoint(weights, expected_method="glcic")
    config = GlcicConfig(**{**info.config, "image_size": 32, "local_size": 16,
                            "discriminator_channels": 4, "discriminator_features": 8})
    model = GlcicTraining(config)
    model.completion.load_state_dict(unflatten_state(tensors)["completion"])
    images = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    masks = torch.zeros(2, 1, 32, 32)
    masks[:, :, 8:20, 10:22] = 1.0
    phases = list(model.training_step({"image": images, "mask": masks}))
    assert [phase.optimizer for phase in phases] == ["discriminator", "generator"]
    phases[1].loss.backward()
    for name in ("encoder.enc1.conv.weight", "decoder.dec7.conv.weight"):
        grad = model.completion.get_parameter(name).grad
        assert grad is not None and grad.abs().sum() > 0, name
