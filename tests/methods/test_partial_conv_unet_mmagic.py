"""OpenMMLab's Partial-Conv checkpoint in ``partial-conv-unet``: the ``mmagic-pconv`` format,
proven equal to the reference implementation on the fixture of tests/fixtures/pconv_mmagic.

The fixture keeps no weights (the published network is about 200 MB): ``make_fixture.py``
draws them from a seed in the published layout, and ``reference_*.png`` are what mmagic's own
inferencer steps wrote for them (see that script). Here the checkpoint is regenerated into a
temporary folder with this project's environment, imported and run through the CLI, and
compared.
"""

from __future__ import annotations

import json
import zipfile
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from inpaint_core.api import inpaint
from inpaint_core.checkpoint import load_checkpoint
from inpaint_core.errors import InvalidWeightsError, ParameterError
from inpaint_core.weights.formats import get_format
from inpaint_core.weights.mmagic_pconv import FORMAT, rename_key
from inpaint_methods.partial_conv_unet import (
    Architecture,
    PartialConvUNet,
    PartialConvUnetConfig,
)

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

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "pconv_mmagic"
RECORD = json.loads((FIXTURE / "fixture.json").read_text())
#: The fraction of hole values (pixels x channels) allowed to differ at all: float noise moves
#: a value across a rounding boundary now and then (measured: 0.02 % one level off).
MAX_DIFFERING = 0.005
State = OrderedDict[str, torch.Tensor]


MAKER = load_maker(FIXTURE, "pconv_mmagic_fixture")
pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def state() -> State:
    """The published state_dict the reference ran on (``num_layers=7``)."""
    return MAKER.make_state(RECORD["seed"])


@pytest.fixture(scope="module")
def published(state: State, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("mmagic") / "pconv_256x256_stage2_4x2_places.pth"
    return MAKER.write_published(path, state)


@pytest.fixture(scope="module")
def weights(published: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The published file imported as this project's checkpoint, by the CLI."""
    output = tmp_path_factory.mktemp("imported") / "pconv.safetensors"
    return import_published("mmagic-pconv", published, output)


@pytest.fixture(scope="module")
def small_state() -> State:
    """A ``num_layers=4`` state (mmagic's smallest): cheap to write for the error cases."""
    return MAKER.make_state(RECORD["seed"], num_layers=4)


def _inputs(name: str) -> tuple[np.ndarray, np.ndarray]:
    image = np.array(Image.open(FIXTURE / f"input_{name}.png"))
    hole = np.array(Image.open(FIXTURE / f"mask_{name}.png")) > 0
    return image, hole


def _write(tmp_path: Path, state: State, edit: Callable[[State], object]) -> Path:
    edited = OrderedDict(state)
    edit(edited)
    return MAKER.write_published(tmp_path / "edited.pth", edited)


# --- the fixture itself ------------------------------------------------------------------------
def test_generated_weights_are_the_fixtures(state: State) -> None:
    """The seeded generator still draws the weights the reference outputs were made with."""
    assert MAKER.states_sha256(state) == RECORD["weights_sha256"], (
        "make_fixture.py no longer draws the weights that reference_*.png were made with; "
        "rerun it against the reference (see its docstring)"
    )
    made = MAKER.make_inputs(RECORD["seed"])
    for name, (height, width) in RECORD["cases"].items():
        image, hole = _inputs(name)
        assert image.shape == (height, width, 3) and hole.shape == (height, width)
        assert np.array_equal(image, made[name][0]) and np.array_equal(hole, made[name][1])


# --- equality with the reference -----------------------------------------------------------------
@pytest.mark.parametrize("name", ["square", "wide"])
def test_cli_run_equals_the_reference(weights: Path, tmp_path: Path, name: str) -> None:
    """``inpaint run`` with the imported weights writes mmagic's inferencer output."""
    ours = run_method(FIXTURE / f"input_{name}.png", FIXTURE / f"mask_{name}.png",
                      "partial-conv-unet", weights, tmp_path / "out.png")
    reference = np.array(Image.open(FIXTURE / f"reference_{name}.png")).astype(np.int64)
    image, hole = _inputs(name)
    difference = hole_difference(ours, reference, image, hole)
    assert np.array_equal(reference[~hole], image[~hole])
    assert_within_bounds(difference)
    assert (difference > 0).mean() <= MAX_DIFFERING, f"{(difference > 0).mean():.4f} differ"
    # The fixture is not trivial: the hole is far from the input, and its levels vary.
    assert np.abs(reference - image.astype(np.int64))[hole].mean() > 20
    assert reference[hole].std() > 20


def test_the_sidecar_records_the_import(weights: Path) -> None:
    _, info = load_checkpoint(weights, expected_method="partial-conv-unet")
    assert info.config["architecture"] == "mmagic" and info.config["prior"] == "none"
    assert (info.config["base_channels"], info.config["depth"]) == (64, RECORD["num_layers"])
    assert info.step == RECORD["iteration"]
    published = info.extra["published"]
    assert published["format"] == "mmagic-pconv" and published["num_layers"] == 7
    assert published["ignored"] == ["loss_percep."]
    assert published["files"] == ["pconv_256x256_stage2_4x2_places.pth"]


@pytest.mark.parametrize("shape", [(250, 200), (60, 84)])
def test_other_sizes_are_padded_with_missing_pixels(weights: Path, shape: tuple[int, int]) -> None:
    """Sides that are not multiples of 128 (the reference refuses them) run, padded with pixels
    the network treats as missing: exactly as if the image were the top-left of one whose
    sides are the next multiples of 128 (a size the reference accepts) and whose rest is a
    hole."""
    image, hole = _inputs("square")
    height, width = shape
    crop, crop_hole = image[:height, :width], hole[:height, :width]
    out = inpaint(crop, crop_hole, "partial-conv-unet", weights=str(weights), device="cpu")
    assert out.shape == crop.shape and out.dtype == np.uint8
    assert np.array_equal(out[~crop_hole], crop[~crop_hole])
    assert not np.array_equal(out[crop_hole], crop[crop_hole])
    side_h, side_w = -(-height // 128) * 128, -(-width // 128) * 128
    canvas, canvas_hole = image[:side_h, :side_w], np.ones((side_h, side_w), dtype=bool)
    canvas_hole[:height, :width] = crop_hole
    whole = inpaint(canvas, canvas_hole, "partial-conv-unet", weights=str(weights), device="cpu")
    assert np.array_equal(out, whole[:height, :width])


# --- the format ----------------------------------------------------------------------------------
def test_the_format_is_registered() -> None:
    assert get_format("mmagic-pconv") is FORMAT
    assert FORMAT.method == "partial-conv-unet" and "mmagic" in FORMAT.reference
    assert "pconv_256x256_stage2_4x2_places" in FORMAT.expects


def test_keys_map_onto_the_unet() -> None:
    assert rename_key("encoder.enc1.conv.weight", 7) == "encoder.0.conv.weight"
    assert rename_key("encoder.enc5.bn.running_var", 7) == "encoder.4.norm.running_var"
    assert rename_key("decoder.dec7.conv.weight", 7) == "decoder.0.conv.weight"
    assert rename_key("module.decoder.dec1.conv.bias", 7) == "decoder.6.conv.bias"
    assert rename_key("decoder.dec4.bn.weight", 4) == "decoder.0.norm.weight"
    assert rename_key("other.thing", 7) == "other.thing"


def test_a_mismatch_exits_2_naming_the_keys(
    small_state: State, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A missing, an extra and a mis-shaped key: ``inpaint weights import`` names each."""

    def edit(state: State) -> None:
        del state["generator.decoder.dec3.bn.running_var"]
        state["generator.encoder.enc2.conv.bias"] = torch.zeros(128)  # the lite layout's
        state["generator.decoder.dec1.conv.bias"] = torch.zeros(4)

    path = _write(tmp_path, small_state, edit)
    message = refused_import("mmagic-pconv", path, tmp_path / "w.safetensors", capsys)
    assert "missing keys: decoder.1.norm.running_var" in message
    assert "unexpected keys: encoder.1.conv.bias" in message
    assert "mis-shaped keys: decoder.3.conv.bias (4,) (expected (3,))" in message


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda s: s.update({"generator.encoder.enc1.conv.weight_mask_updater":
                             torch.full((64, 3, 7, 7), 2.0)}),
         r"enc1\.conv\.weight_mask_updater is not all ones \(min 2\.0"),
        (lambda s: s.update({"generator.encoder.enc2.conv.weight_mask_updater":
                             torch.ones(1, 1, 5, 5)}),
         r"enc2\.conv\.weight_mask_updater \(1, 1, 5, 5\) is not a multi-channel mask kernel"),
        (lambda s: [s.pop(k) for k in list(s) if k.startswith("generator.decoder.dec4.")],
         r"4 encoder and 3 decoder layers"),
        (lambda s: [s.pop(k) for k in list(s) if k.startswith("generator.")],
         r"has no 'generator\.' tensors; its state_dict holds loss_percep\."),
    ],
)
def test_what_is_not_the_reference_is_refused(small_state: State, tmp_path: Path, edit,
                                              message: str) -> None:
    with pytest.raises(InvalidWeightsError, match=message):
        FORMAT.convert(_write(tmp_path, small_state, edit))


def test_a_payload_in_the_checkpoint_never_runs(small_state: State, tmp_path: Path) -> None:
    """A ``meta`` that would run a command when unpickled freely: converted, never run."""
    marker = tmp_path / "ran"
    meta = {**MAKER.make_meta(), "hook": touches(marker)}
    path = MAKER.write_published(tmp_path / "evil.pth", small_state, meta)
    with zipfile.ZipFile(path) as archive:  # the payload is real: the pickle calls system()
        pickled = next(archive.read(n) for n in archive.namelist() if n.endswith("data.pkl"))
    assert b"system" in pickled and f"touch {marker}".encode() in pickled
    assert_payload_runs(path, marker)
    output = import_published("mmagic-pconv", path, tmp_path / "w.safetensors")
    assert not marker.exists()
    tensors, info = load_checkpoint(output, expected_method="partial-conv-unet")
    assert info.config["depth"] == 4
    assert torch.equal(tensors["generator.encoder.0.conv.weight"],
                       small_state["generator.encoder.enc1.conv.weight"])


# --- the config ----------------------------------------------------------------------------------
def test_mmagic_biases_follow_mmcv_and_lite_keeps_its_own() -> None:
    """mmagic: a bias only on the convs without a norm (the first and the last); lite: all."""
    mmagic = PartialConvUNet(PartialConvUnetConfig(architecture="mmagic", depth=4))
    with_bias = [name for name, module in mmagic.named_modules()
                 if name.endswith(".conv") and module.bias is not None]
    assert with_bias == ["encoder.0.conv", "decoder.3.conv"]
    lite = PartialConvUNet(PartialConvUnetConfig(base_channels=4, depth=3))
    assert all(module.bias is not None for name, module in lite.named_modules()
               if name.endswith(".conv"))
    assert PartialConvUnetConfig().architecture is Architecture.LITE


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"base_channels": 32}, r"base_channels=32 does not exist in architecture='mmagic'"),
        ({"depth": 3}, r"depth=3 does not exist in architecture='mmagic'"),
        ({"prior": "telea"}, r"prior='telea' does not exist in architecture='mmagic'"),
    ],
)
def test_mmagic_exists_only_as_openmmlab_builds_it(options: dict, message: str) -> None:
    with pytest.raises(ParameterError, match=message):
        PartialConvUnetConfig(architecture="mmagic", **options)  # type: ignore[arg-type]


def test_an_unknown_architecture_lists_the_valid_ones() -> None:
    with pytest.raises(ParameterError, match=r"'openmmlab'.*lite, mmagic"):
        PartialConvUnetConfig(architecture="openmmlab")  # type: ignore[arg-type]
