"""``mi-gan``: equal to the reference (MI-GAN's generator, IOPaint's test path) on the fixture,
the ``mi-gan`` format's checks, the crop plan, the contract, and the missing-weights error.

The fixture (tests/fixtures/mi_gan, made by its make_fixture.py with MI-GAN's own inference
generator and IOPaint's own MI-GAN steps, random weights) holds ``migan_256_tiny.pt`` (a
256 generator's state dict, as MI-GAN publishes ``migan_256_places2.pt``), a traced 128
generator (tests in test_mi_gan_torchscript.py), their inputs and IOPaint's output PNGs.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch

import inpaint_core
from inpaint_core.errors import InvalidWeightsError, MissingWeightsError, ParameterError
from inpaint_core.nn.layers.mi_gan import MiGanConfig, MiGanGenerator
from inpaint_core.testing import check_method
from inpaint_core.weights.mi_gan import FORMAT
from inpaint_core.weights.pickles import load_pickled
from inpaint_methods.mi_gan import CROP_MARGIN, Crop, MiGan, plan_crops

from ..reference import (
    assert_payload_runs,
    assert_within_bounds,
    hole_difference,
    import_published,
    read_hole,
    read_rgb,
    refused_import,
    run_method,
    touches,
)

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "mi_gan"
STATE = FIXTURE / "migan_256_tiny.pt"


@pytest.fixture(scope="module")
def weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The fixture's state dict imported through ``inpaint weights import mi-gan``."""
    out = tmp_path_factory.mktemp("mi-gan-weights") / "mi-gan-256.safetensors"
    return import_published("mi-gan", STATE, out)


@pytest.mark.parametrize("name", ["scene", "wide"])
def test_cli_run_equals_the_reference(weights: Path, tmp_path: Path, name: str) -> None:
    image_path = FIXTURE / "images" / f"{name}.png"
    mask_path = FIXTURE / "images" / f"{name}_mask.png"
    result = run_method(image_path, mask_path, "mi-gan", weights, tmp_path / "out.png")
    image, hole = read_rgb(image_path), read_hole(mask_path)
    expected = read_rgb(FIXTURE / "expected" / f"state_{name}.png")
    assert_within_bounds(hole_difference(result, expected, image, hole))


def test_import_infers_the_config_from_the_tensors(weights: Path) -> None:
    sidecar = json.loads(weights.with_suffix(".json").read_text())
    assert sidecar["method"] == "mi-gan"
    assert MiGanConfig(**sidecar["config"]) == MiGanConfig(resolution=256, ch_base=2048, ch_max=24)
    assert FORMAT.convert(STATE).source == {"format": "mi-gan", "files": [STATE.name],
                                            "config": "inferred"}


def test_published_layout_and_size() -> None:
    """The default config is the published 512 generator: the reference's key names, and the
    catalogue's size (float32 bytes of every tensor, the fixed ones included)."""
    from inpaint_core.weights.published import SIZE_MIGAN

    state = MiGanGenerator(MiGanConfig()).state_dict()
    for key in (
        "encoder.b512.fromrgb.weight",
        "encoder.b512.conv2.downsample.filter.weight",
        "encoder.b4.conv1.conv1.bias",
        "synthesis.b4.torgb.weight",
        "synthesis.b512.conv1.upsample.filter_const",
        "synthesis.b512.conv2.noise_const",
        "synthesis.b512.conv1.noise_strength",
        "synthesis.b512.upsample.filter.weight",
    ):
        assert key in state, key
    assert state["encoder.b512.fromrgb.weight"].shape == (64, 4, 1, 1)
    assert state["synthesis.b512.conv2.noise_const"].shape == (512, 512)
    size = sum(t.numel() for t in state.values()) * 4 / 1e6
    assert abs(size - SIZE_MIGAN) < 0.5, size


def write_state(tmp_path: Path, edit) -> Path:
    """A copy of the fixture's state dict that ``edit`` changes, saved as MI-GAN saves it."""
    state = dict(load_pickled(STATE))
    edit(state)
    path = tmp_path / "migan_edited.pt"
    torch.save(state, path)
    return path


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda s: s.pop("synthesis.b128.conv2.noise_const"),
         r"missing keys: synthesis\.b128\.conv2\.noise_const"),
        (lambda s: s.update({"synthesis.b4.extra.weight": torch.zeros(1)}),
         r"unexpected keys: synthesis\.b4\.extra\.weight"),
        (lambda s: s.update({"encoder.b64.conv1.conv1.bias": torch.zeros(5)}),
         r"mis-shaped keys: encoder\.b64\.conv1\.conv1\.bias \(5,\) \(expected \(24,\)\)"),
        (lambda s: [s.pop(k) for k in list(s) if k.startswith("encoder.")],
         r"holds no MI-GAN generator: no 'encoder\.bN\.conv1\.conv1\.weight' tensors "
         r"\(first keys: synthesis\."),
    ],
)
def test_key_mismatches_exit_2_naming_the_keys(tmp_path: Path, capsys, edit, message: str) -> None:
    path = write_state(tmp_path, edit)
    err = refused_import("mi-gan", path, tmp_path / "w.safetensors", capsys)
    assert err.startswith("inpaint: error:") and re.search(message, err), err
    with pytest.raises(InvalidWeightsError, match=message):
        FORMAT.convert(path)


def test_a_payload_that_runs_code_is_never_executed(tmp_path: Path, capsys) -> None:
    marker = tmp_path / "executed"
    state = dict(load_pickled(STATE))
    state["encoder.b256.fromrgb.weight"] = touches(marker)
    path = tmp_path / "migan_256_places2.pt"
    torch.save(state, path)
    assert_payload_runs(path, marker)
    err = refused_import("mi-gan", path, tmp_path / "w.safetensors", capsys)
    assert "not a MI-GAN state dict" in err
    assert not marker.exists()


def test_missing_file_says_what_the_format_expects(tmp_path: Path) -> None:
    with pytest.raises(
        MissingWeightsError,
        match=r"does not exist; format 'mi-gan' expects "
        r"MI-GAN's generator file migan_256_places2\.pt",
    ):
        FORMAT.convert(tmp_path / "absent.pt")


def test_config_is_checked() -> None:
    with pytest.raises(ParameterError, match=r"resolution=300 must be one of 128, 256, 512"):
        MiGanConfig(resolution=300)
    with pytest.raises(ParameterError, match=r"ch_max=0 must be an integer >= 1"):
        MiGanConfig(ch_max=0)
    with pytest.raises(ParameterError, match=r"ch_base=100 gives no channels at resolution 256"):
        MiGanConfig(resolution=256, ch_base=100)
    generator = MiGanGenerator(MiGanConfig(resolution=128, ch_base=256, ch_max=4))
    with pytest.raises(
        ParameterError,
        match=r"input shape \(1, 4, 64, 64\) is not \(B, 4, 128, "
        r"128\): the network runs at its model side only",
    ):
        generator(torch.zeros(1, 4, 64, 64))


def test_crop_plan_follows_iopaint() -> None:
    hole = np.zeros((300, 700), bool)
    assert plan_crops(np.zeros((256, 256), bool), 256) == [Crop(0, 256, 0, 256)]  # whole
    assert plan_crops(hole, 256) == []
    hole[10:20, 5:25] = True  # near the top-left corner: the crop is shifted inside
    hole[200:260, 400:440] = True
    crops = plan_crops(hole, 256)
    assert len(crops) == 2
    # box (5, 10, 25, 20) grown by 128: 276 x 266 around (15, 15), shifted right and down
    assert Crop(0, 266, 0, 276) in crops
    # box (400, 200, 440, 260): centre (420, 230), 296 x 316, cut at the bottom (300)
    assert Crop(0, 300, 272, 568) in crops
    assert CROP_MARGIN == 128 == inpaint_core.get_method("mi-gan").info.context_margin


def test_method_keeps_the_contract(tmp_path: Path) -> None:
    # the fixture's 128 generator: the contract's 40 runs at a quarter of the 256 one's cost
    small = tmp_path / "mi-gan-128.safetensors"
    traced = FIXTURE / "migan_traced_tiny.pt"
    import_published("mi-gan-torchscript", traced, small)
    check_method(MiGan, {"weights": small, "device": "cpu"})
    # wider than the model side: crops are resized down and back
    check_method("mi-gan", {"weights": str(small), "device": "cpu"}, height=37, width=150)


def test_no_weights_names_the_fetch_and_import_commands(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setenv("INPAINT_WEIGHTS_DIR", str(tmp_path))
    image = np.zeros((16, 16, 3), np.uint8)
    hole = np.zeros((16, 16), bool)
    hole[4:8, 4:8] = True
    with pytest.raises(
        MissingWeightsError,
        match=r"inpaint weights fetch mi-gan-places2-512-"
        r"iopaint.*inpaint weights import mi-gan migan_512_places2\.pt",
    ):
        inpaint_core.inpaint(image, hole, "mi-gan")


def test_training_is_refused_and_the_info_says_why_cgan() -> None:
    method = inpaint_core.get_method("mi-gan")
    assert method.info.family.value == "cgan" and method.info.learned
    assert method.info.supports_gpu and method.info.pad_multiple == 1
    with pytest.raises(ParameterError, match=r"method 'mi-gan' is inference-only"):
        method.build_training(MiGanConfig())


def test_onnx_backend_is_refused_naming_why(weights: Path) -> None:
    image = np.zeros((32, 32, 3), np.uint8)
    hole = np.zeros((32, 32), bool)
    hole[8:12, 8:12] = True
    with pytest.raises(ParameterError, match=r"'mi-gan' cannot run with backend=onnx: its crops"):
        inpaint_core.inpaint(image, hole, "mi-gan", weights=weights, backend="onnx")
