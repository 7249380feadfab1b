"""``deepfill-v2`` with ``architecture="mmagic"``: equal to OpenMMLab's DeepFill v2 on the fixture.

The fixture (tests/fixtures/deepfill_mmagic, made by its make_fixture.py with the reference's
own model code, random weights, reduced widths ``channel_factor=0.25`` and
``refine_channel_factor=0.375``) holds a checkpoint in the published layout (``meta`` +
``state_dict`` with ``generator.*`` and ``disc.*``), two inputs (256 x 256 and 96 x 136, a
box and strokes) and the reference's output PNGs, written as mmagic's inpainting inferencer
writes them.
"""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest
import torch

import inpaint_core
from inpaint_core.errors import InvalidInputError, ParameterError
from inpaint_core.nn.layers.deepfill_mmagic import MmagicContextualAttention
from inpaint_core.weights.formats import get_format
from inpaint_core.weights.pickles import load_pickled
from inpaint_methods.deepfill_v2 import (
    DeepFillV2,
    DeepFillV2Config,
    MmagicDeepFillNetworks,
)

from ..reference import (
    MAX_DIFFERENCE,
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

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "deepfill_mmagic"
CHECKPOINT = FIXTURE / "deepfillv2_tiny.pth"
pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The fixture checkpoint imported through ``inpaint weights import``."""
    out = tmp_path_factory.mktemp("deepfill-mmagic") / "tiny.safetensors"
    return import_published("mmagic-deepfillv2", CHECKPOINT, out)


@pytest.mark.parametrize("case", ["square", "wide"])
def test_cli_run_equals_the_reference(weights: Path, tmp_path: Path, case: str) -> None:
    image_path, mask_path = FIXTURE / f"{case}.png", FIXTURE / f"{case}_mask.png"
    result = run_method(image_path, mask_path, "deepfill-v2", weights, tmp_path / "out.png")
    image, hole = read_rgb(image_path), read_hole(mask_path)
    expected = read_rgb(FIXTURE / f"{case}_expected.png")
    assert_within_bounds(hole_difference(result, expected, image, hole))
    # the reference really changed the hole: the comparison is not of two copies of the input
    assert np.abs(expected.astype(int) - image.astype(int))[hole].mean() > 10


def test_the_fusion_matters_at_the_bound(weights: Path) -> None:
    """Without attention propagation the result leaves the bound: the test sees the attention."""
    config = DeepFillV2Config(architecture="mmagic", channel_factor=0.25,
                              refine_channel_factor=0.375, attention_fuse=False)
    networks = MmagicDeepFillNetworks(config)
    from inpaint_core.checkpoint import load_checkpoint, unflatten_state

    tensors, _ = load_checkpoint(weights, expected_method="deepfill-v2")
    state = unflatten_state(tensors)["generator"]
    state.pop("stage2.contextual_attention_neck.contextual_attention.fuse_kernel")
    networks.generator.load_state_dict(state)
    image, hole = read_rgb(FIXTURE / "square.png"), read_hole(FIXTURE / "square_mask.png")
    tensor = torch.from_numpy(image.transpose(2, 0, 1).copy()).float()[None] / 255
    mask = torch.from_numpy(hole.astype(np.float32))[None, None]
    with torch.no_grad():
        refined = networks(tensor, mask)[1][0].permute(1, 2, 0).numpy()
    result = np.where(hole[..., None], np.rint(refined * 255), image).astype(np.uint8)
    expected = read_rgb(FIXTURE / "square_expected.png")
    assert hole_difference(result, expected, image, hole).max() > MAX_DIFFERENCE


def test_the_sidecar_records_the_widths_and_the_source(weights: Path) -> None:
    converted = get_format("mmagic-deepfillv2").convert(CHECKPOINT)
    assert converted.method == "deepfill-v2" and list(converted.networks) == ["generator"]
    config = DeepFillV2Config(**converted.config)
    assert config.architecture.value == "mmagic"
    assert (config.channel_factor, config.refine_channel_factor) == (0.25, 0.375)
    assert converted.source["format"] == "mmagic-deepfillv2"
    assert (converted.source["iter"], converted.source["epoch"]) == (12345, 2)
    assert not any(key.startswith("disc") for key in converted.networks["generator"])


def test_published_widths_are_the_default() -> None:
    """The default mmagic config is the published model: OpenMMLab's parameter count (4 414 908
    generator parameters, counted on the reference built from base_deepfillv2.py)."""
    networks = DeepFillV2.build_networks(DeepFillV2Config(architecture="mmagic"))
    generator = networks.generator
    assert sum(p.numel() for p in generator.parameters()) == 4_414_908
    state = generator.state_dict()
    assert tuple(state["stage1.encoder.enc1.conv.conv.weight"].shape) == (48, 5, 5, 5)
    assert tuple(state["stage2.decoder.dec1.conv.conv.weight"].shape) == (256, 192, 3, 3)
    assert tuple(state["stage2.decoder.dec7.conv.conv.weight"].shape) == (6, 16, 3, 3)
    assert torch.equal(state["stage2.contextual_attention_neck.contextual_attention.fuse_kernel"],
                       torch.eye(3).view(1, 1, 3, 3))


def rewrite(tmp_path: Path, edit, meta: object = None) -> Path:
    """A copy of the fixture checkpoint whose state dict ``edit`` changes."""
    payload = load_pickled(CHECKPOINT)
    state = OrderedDict(payload["state_dict"])
    edit(state)
    path = tmp_path / "edited.pth"
    torch.save({"meta": meta if meta is not None else payload["meta"], "state_dict": state}, path)
    return path


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda s: s.pop("generator.stage2.encoder_conv.enc3.conv.conv.bias"),
         "missing keys: stage2.encoder_conv.enc3.conv.conv.bias"),
        (lambda s: s.update({"generator.stage2.extra.weight": torch.zeros(1)}),
         "unexpected keys: stage2.extra.weight"),
        (lambda s: s.update({"generator.stage1.dilation_neck.dilation_convs.2.conv.conv.weight":
                             torch.zeros(64, 16, 3, 3)}),
         "mis-shaped keys: stage1.dilation_neck.dilation_convs.2.conv.conv.weight "
         "(64, 16, 3, 3) (expected (64, 32, 3, 3))"),
        (lambda s: [s.pop(k) for k in list(s) if k.startswith("disc.")],
         "has no 'disc.' tensors (found generator.)"),
        (lambda s: [s.pop(k) for k in list(s) if k.startswith("generator.")],
         "has no 'generator.' tensors; its state_dict holds disc."),
    ],
)
def test_key_mismatches_exit_2_naming_the_keys(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                               edit, message: str) -> None:
    path = rewrite(tmp_path, edit)
    assert message in refused_import("mmagic-deepfillv2", path, tmp_path / "w.safetensors",
                                     capsys)


def test_a_pickled_command_is_never_run_and_the_file_converts(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    meta = {"iter": 7, "hook": touches(marker)}
    path = rewrite(tmp_path, lambda state: None, meta=meta)
    assert_payload_runs(path, marker)
    out = import_published("mmagic-deepfillv2", path, tmp_path / "w.safetensors")
    assert not marker.exists()
    assert out.is_file()


# --- config and sizes ------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"architecture": "tf"}, r"unknown architecture 'tf'; valid: lite, mmagic"),
        ({"channel_factor": 0.5}, r"channel_factor=0.5 exists only in architecture='mmagic'"),
        ({"architecture": "mmagic", "prior": "telea"},
         r"prior='telea' does not exist in architecture='mmagic'"),
        ({"architecture": "mmagic", "base_channels": 32},
         r"base_channels=32 does not exist in architecture='mmagic'"),
        ({"architecture": "mmagic", "attention_rate": 1},
         r"attention_rate=1 does not exist in architecture='mmagic'"),
        ({"architecture": "mmagic", "refine_channel_factor": 0.01},
         r"refine_channel_factor=0.01 must be >= 1/16"),
    ],
)
def test_config_refuses_what_the_architecture_lacks(kwargs: dict[str, object],
                                                    message: str) -> None:
    with pytest.raises(ParameterError, match=message):
        DeepFillV2Config(**kwargs)  # type: ignore[arg-type]


def test_mmagic_is_inference_only() -> None:
    with pytest.raises(ParameterError, match="architecture='mmagic' is inference only"):
        DeepFillV2.build_training(DeepFillV2Config(architecture="mmagic"))  # type: ignore[arg-type]


def test_odd_sizes_are_padded_and_small_ones_refused(weights: Path) -> None:
    image = read_rgb(FIXTURE / "square.png")[:93, :101]
    hole = read_hole(FIXTURE / "square_mask.png")[:93, :101]
    result = inpaint_core.inpaint(image, hole, "deepfill-v2", weights=weights, device="cpu")
    assert result.shape == image.shape and np.array_equal(result[~hole], image[~hole])
    with pytest.raises(InvalidInputError, match=r"input 64 x 104: .* at least 72"):
        inpaint_core.inpaint(image[:64], hole[:64], "deepfill-v2", weights=weights, device="cpu")


def test_attention_without_a_known_patch_is_refused() -> None:
    attention = MmagicContextualAttention()
    features = torch.rand(1, 4, 16, 16)
    with pytest.raises(InvalidInputError, match="every 3x3 patch touches the hole"):
        attention(features, torch.ones(1, 1, 16, 16))
    out = attention(features, torch.zeros(1, 1, 16, 16))
    assert out.shape == features.shape and torch.isfinite(out).all()
