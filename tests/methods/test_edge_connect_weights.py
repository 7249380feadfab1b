"""EdgeConnect's published checkpoints in ``edge-gan``: the ``edge-connect`` format, proven equal
to the reference implementation on the fixture of tests/fixtures/edge_connect.

The fixture keeps no weights: ``make_fixture.py`` draws them from a seed in EdgeConnect's
published layout, and ``reference_output.png`` is what knazeri/edge-connect's own test path
wrote for them (see that script). Here the files are regenerated into a temporary folder with
this project's environment, imported, run, and compared.
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
from inpaint_core.checkpoint import flatten_state, load_checkpoint
from inpaint_core.errors import InvalidWeightsError
from inpaint_core.weights.edge_connect import FORMAT, rename_key
from inpaint_core.weights.formats import get_format
from inpaint_methods.edge_gan import Architecture, EdgeGanConfig, EdgeGanNetworks

from ..reference import (
    assert_within_bounds,
    hole_difference,
    import_published,
    load_maker,
    run_method,
)

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "edge_connect"
RECORD = json.loads((FIXTURE / "fixture.json").read_text())
#: The fraction of hole values (pixels x channels) allowed to differ at all.
MAX_DIFFERING = 0.05


MAKER = load_maker(FIXTURE, "edge_connect_fixture")
#: One torch thread: on two busy cores, more threads only fight each other.
pytestmark = pytest.mark.usefixtures("one_torch_thread")
States = dict[str, "OrderedDict[str, torch.Tensor]"]


@pytest.fixture(scope="module")
def states() -> States:
    """The generated generator state dicts, by published file name."""
    return MAKER.make_states(RECORD["seed"])


@pytest.fixture(scope="module")
def published(states: States, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder laid out as EdgeConnect publishes it: legacy (pre-zip) torch files."""
    folder = tmp_path_factory.mktemp("edge-connect") / "places2"
    MAKER.write_published(folder, states, legacy=True, iteration=RECORD["iteration"])
    return folder


@pytest.fixture(scope="module")
def weights(published: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The published folder imported as this project's checkpoint, by the CLI."""
    output = tmp_path_factory.mktemp("imported") / "edgeconnect.safetensors"
    return import_published("edge-connect", published, output)


def _inputs() -> tuple[np.ndarray, np.ndarray]:
    image = np.array(Image.open(FIXTURE / "input.png"))
    hole = np.array(Image.open(FIXTURE / "mask.png"))[:, :, 0] > 0
    return image, hole


def _copy_folder(source: Path, target: Path) -> Path:
    target.mkdir()
    for name in MAKER.FILES:
        (target / name).symlink_to(source / name)
    return target


# --- the fixture itself ------------------------------------------------------------------------
def test_generated_weights_are_the_fixtures(states: States) -> None:
    """The seeded generator still draws the weights the reference ran on."""
    assert MAKER.states_sha256(states) == RECORD["weights_sha256"], (
        "make_fixture.py no longer draws the weights that reference_output.png was made with; "
        "rerun it against the reference (see its docstring)"
    )
    image, hole = _inputs()
    made_image, made_hole = MAKER.make_inputs(RECORD["seed"])
    assert image.shape == (RECORD["height"], RECORD["width"], 3) == (60, 84, 3)
    assert np.array_equal(image, made_image) and np.array_equal(hole, made_hole)


# --- equality with the reference -----------------------------------------------------------------
def test_imported_weights_reproduce_the_reference(weights: Path, tmp_path: Path) -> None:
    """``inpaint run`` with the imported weights writes EdgeConnect's test() output."""
    ours = run_method(FIXTURE / "input.png", FIXTURE / "mask.png", "edge-gan", weights,
                      tmp_path / "out.png")
    reference = np.array(Image.open(FIXTURE / "reference_output.png")).astype(np.int64)
    image, hole = _inputs()
    difference = hole_difference(ours, reference, image, hole)
    assert_within_bounds(difference)
    # Tighter than the bounds, which rounding instead of truncating meets (mean 0.49, half the
    # values one level up): float noise moves a few values only. Measured here: none.
    assert (difference > 0).mean() <= MAX_DIFFERING, f"{(difference > 0).mean():.3f} differ"
    # The fixture is not trivial: the hole is far from the input, and its levels vary.
    assert np.abs(reference - image.astype(np.int64))[hole].mean() > 20
    assert reference[hole].std() > 20


def test_the_sidecar_records_the_import(weights: Path) -> None:
    _, info = load_checkpoint(weights, expected_method="edge-gan")
    assert info.config["architecture"] == "edgeconnect" and info.config["prior"] == "none"
    assert (info.config["base_channels"], info.config["residual_blocks"]) == (64, 8)
    assert info.step == RECORD["iteration"]
    published = info.extra["published"]
    assert published["format"] == "edge-connect"
    assert published["iterations"] == {"edge_generator": RECORD["iteration"],
                                       "image_generator": RECORD["iteration"]}
    assert published["files"] == ["EdgeModel_gen.pth", "InpaintingModel_gen.pth"]


def test_odd_sizes_are_padded_and_cropped(weights: Path) -> None:
    """Sizes that are not multiples of 4 run; pixels outside the hole stay as they are."""
    image, hole = _inputs()
    for height, width in ((57, 81),):
        crop, crop_hole = image[:height, :width], hole[:height, :width]
        out = inpaint(crop, crop_hole, "edge-gan", weights=str(weights), device="cpu")
        assert out.shape == crop.shape and out.dtype == np.uint8
        assert np.array_equal(out[~crop_hole], crop[~crop_hole])
        assert not np.array_equal(out[crop_hole], crop[crop_hole])


# --- the format ----------------------------------------------------------------------------------
def test_the_format_is_registered() -> None:
    assert get_format("edge-connect") is FORMAT
    assert FORMAT.method == "edge-gan" and FORMAT.reference == "knazeri/edge-connect"
    assert "EdgeModel_gen.pth and InpaintingModel_gen.pth" in FORMAT.expects


def test_legacy_and_zip_files_load_alike(published: Path, states: States, weights: Path,
                                         tmp_path: Path) -> None:
    """The published 2019 files are legacy torch pickles; new torch saves zip archives."""
    for name in MAKER.FILES:
        with open(published / name, "rb") as handle:
            assert handle.read(2) != b"PK"  # legacy: not a zip archive
    zipped = tmp_path / "zip"
    MAKER.write_published(zipped, states, legacy=False)
    with open(zipped / MAKER.FILES[0], "rb") as handle:
        assert handle.read(2) == b"PK"
    modern = FORMAT.convert(zipped)
    legacy, info = load_checkpoint(weights)  # imported from the legacy files
    assert modern.config == info.config
    flat = flatten_state(modern.networks)
    assert flat.keys() == legacy.keys()
    for key, tensor in flat.items():
        assert torch.equal(tensor, legacy[key]), key


def test_spectral_norm_keys_map_onto_the_parametrisation(states: States) -> None:
    """G1's old-style ``weight_orig/u/v`` give torch's parametrised conv the reference's
    eval-mode weight ``weight_orig / (u . W v)``, bit for bit."""
    assert rename_key("middle.3.conv_block.1.weight_orig") == (
        "middle.3.block.1.parametrizations.weight.original"
    )
    assert rename_key("module.decoder.0.weight_v") == "decoder.0.parametrizations.weight.0._v"
    assert rename_key("decoder.7.weight") == "decoder.7.weight"
    g1 = states["EdgeModel_gen.pth"]
    networks = EdgeGanNetworks(EdgeGanConfig(architecture="edgeconnect"))
    networks.edge_generator.load_state_dict({rename_key(k): v for k, v in g1.items()})
    networks.eval()
    for name, dim in (("encoder.4", 0), ("decoder.0", 1), ("middle.2.conv_block.5", 0)):
        orig, u, v = (g1[f"{name}.weight_{s}"] for s in ("orig", "u", "v"))
        matrix = orig.movedim(dim, 0).reshape(orig.shape[dim], -1)
        expected = orig / torch.dot(u, torch.mv(matrix, v))
        module = networks.edge_generator.get_submodule(name.replace("conv_block", "block"))
        assert torch.equal(module.weight, expected), name
    assert networks.image_generator.encoder[1].in_channels == 4


def _write_generator(folder: Path, name: str, generator: dict[str, torch.Tensor]) -> None:
    (folder / name).unlink()
    torch.save({"iteration": 1, "generator": generator}, folder / name)


def test_missing_folder_and_files_are_named(published: Path, tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"
    with pytest.raises(InvalidWeightsError, match=r"nowhere is not a folder; the format "
                       r"expects a folder holding EdgeModel_gen\.pth and Inpainting"):
        FORMAT.convert(missing)
    folder = _copy_folder(published, tmp_path / "partial")
    (folder / "InpaintingModel_gen.pth").unlink()
    with pytest.raises(InvalidWeightsError, match=r"InpaintingModel_gen\.pth does not exist; "
                       r"the format expects a folder holding"):
        FORMAT.convert(folder)


def test_a_file_without_generator_is_refused(published: Path, tmp_path: Path) -> None:
    folder = _copy_folder(published, tmp_path / "dis")
    (folder / "EdgeModel_gen.pth").unlink()
    torch.save({"discriminator": {"conv1.0.weight_orig": torch.zeros(1)}},
               folder / "EdgeModel_gen.pth")
    with pytest.raises(InvalidWeightsError, match=r"EdgeModel_gen\.pth holds no 'generator' "
                       r"state dict \(found: \['discriminator'\]\)"):
        FORMAT.convert(folder)


def test_mismatching_keys_are_named(published: Path, states: States, tmp_path: Path) -> None:
    """A missing, an extra and a mis-shaped key in one file: the error names each."""
    folder = _copy_folder(published, tmp_path / "mismatch")
    generator = OrderedDict(states["EdgeModel_gen.pth"])
    del generator["middle.5.conv_block.1.weight_u"]
    generator["middle.8.conv_block.1.weight"] = torch.zeros(3)
    generator["encoder.1.bias"] = torch.zeros(32)
    _write_generator(folder, "EdgeModel_gen.pth", generator)
    with pytest.raises(InvalidWeightsError) as error:
        FORMAT.convert(folder)
    message = str(error.value)
    assert message.startswith(f"edge-connect G1 ({folder / 'EdgeModel_gen.pth'}) does not fit")
    assert "missing keys: middle.5.block.1.parametrizations.weight.0._u;" in message
    assert "unexpected keys: middle.8.block.1.weight;" in message
    assert "mis-shaped keys: encoder.1.bias (32,) (expected (64,))" in message


# --- the config ----------------------------------------------------------------------------------
def test_edgeconnect_architecture_needs_prior_none() -> None:
    from inpaint_core.errors import ParameterError

    assert EdgeGanConfig().architecture is Architecture.LITE
    with pytest.raises(ParameterError, match=r"prior='telea' does not exist in "
                       r"architecture='edgeconnect'"):
        EdgeGanConfig(architecture="edgeconnect", prior="telea")  # type: ignore[arg-type]
    with pytest.raises(ParameterError, match=r"unknown architecture 'edge'; valid: lite, "
                       r"edgeconnect"):
        EdgeGanConfig(architecture="edge")  # type: ignore[arg-type]
