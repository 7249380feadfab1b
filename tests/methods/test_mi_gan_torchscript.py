"""Format mi-gan-torchscript: IOPaint's migan_traced.pt, read without running its code.

The fixture's ``migan_traced_tiny.pt`` is MI-GAN's inference generator (side 128, random
weights) traced and saved by the reference exactly as MI-GAN's export script makes
``migan_traced.pt`` (see tests/fixtures/mi_gan/make_fixture.py); ``expected/traced_*.png`` are
IOPaint's MI-GAN results with it.
"""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path

import numpy as np
import pytest
import torch
import zarr
from torch import nn

from inpaint_core.cli import main
from inpaint_core.errors import InvalidWeightsError
from inpaint_core.io.store import level_array
from inpaint_core.weights import catalogue, get_entry, get_format, weights_info
from inpaint_core.weights import published as catalogue_module

from ..http_server import (
    LoopbackServer,
    loopback_server,  # noqa: F401  (the `server` fixture)
)
from ..reference import (
    MAX_DIFFERENCE,
    assert_within_bounds,
    forbid_torchscript_loading,
    hole_difference,
    import_published,
    read_hole,
    read_rgb,
    refused_import,
    run_method,
)

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "mi_gan"
TRACED = FIXTURE / "migan_traced_tiny.pt"


@pytest.fixture(scope="module")
def weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("mi-gan-ts") / "mi-gan-128.safetensors"
    return import_published("mi-gan-torchscript", TRACED, out)


@pytest.mark.parametrize("name", ["square", "scene"])  # run whole (128 x 128); cropped
def test_cli_run_equals_the_reference(weights: Path, tmp_path: Path, name: str) -> None:
    image_path = FIXTURE / "images" / f"{name}.png"
    mask_path = FIXTURE / "images" / f"{name}_mask.png"
    result = run_method(image_path, mask_path, "mi-gan", weights, tmp_path / "out.png")
    image, hole = read_rgb(image_path), read_hole(mask_path)
    expected = read_rgb(FIXTURE / "expected" / f"traced_{name}.png")
    assert_within_bounds(hole_difference(result, expected, image, hole))


def test_the_archive_is_never_loaded_as_code(tmp_path: Path, monkeypatch) -> None:
    forbid_torchscript_loading(monkeypatch)
    converted = get_format("mi-gan-torchscript").convert(TRACED)
    assert converted.method == "mi-gan"
    assert converted.config == {"resolution": 128, "ch_base": 1024, "ch_max": 24}
    state = converted.networks["generator"]
    assert state["synthesis.b128.conv2.noise_const"].shape == (128, 128)
    assert state["encoder.b128.fromrgb.weight"].shape == (8, 4, 1, 1)


def test_formats_refuse_each_others_files(tmp_path: Path) -> None:
    with pytest.raises(
        InvalidWeightsError,
        match=r"is a TorchScript archive; for IOPaint's "
        r"migan_traced\.pt use format 'mi-gan-torchscript'",
    ):
        get_format("mi-gan").convert(TRACED)
    plain = tmp_path / "migan_512_places2.pt"
    torch.save({"encoder.b512.fromrgb.weight": torch.zeros(1)}, plain)
    with pytest.raises(
        InvalidWeightsError,
        match=r"not a TorchScript module archive; for "
        r"MI-GAN's own state dict files",
    ):
        get_format("mi-gan-torchscript").convert(plain)


def test_a_torchscript_file_of_another_network_names_what_is_missing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    other = tmp_path / "other.pt"
    torch.jit.save(torch.jit.trace(nn.Conv2d(3, 4, 3), torch.zeros(1, 3, 8, 8)), other)
    refused_import("mi-gan-torchscript", other, tmp_path / "w.safetensors", capsys)
    with pytest.raises(InvalidWeightsError, match=r"holds no MI-GAN generator"):
        get_format("mi-gan-torchscript").convert(other)


def test_restore_on_a_scan_keeps_known_bytes(weights: Path, tmp_path: Path) -> None:
    """Tiled: each tile (with its context margin) is cropped around its holes as a whole image."""
    rng = np.random.default_rng(3)
    image = rng.integers(0, 256, (200, 330, 3), dtype=np.uint8)
    hole = np.zeros(image.shape[:2], bool)  # across tile and chunk lines, and on the borders
    hole[10:20, 15:40] = hole[160:200, 250:330] = hole[120:124, 0:330] = True
    for name, array, chunks in (("scan", image, (64, 64, 3)), ("mask", hole, (64, 64))):
        store = zarr.create_array(
            str(tmp_path / f"{name}.zarr"), shape=array.shape, chunks=chunks, dtype=array.dtype
        )
        store[...] = array
    output = tmp_path / "out.zarr"
    argv = ["restore", str(tmp_path / "scan.zarr"), "--mask", str(tmp_path / "mask.zarr"),
            "-m", "mi-gan", "--weights", str(weights), "--device", "cpu", "--tile", "384",
            "-o", str(output)]
    assert main(argv) == 0
    restored = level_array(zarr.open_group(str(output), mode="r"), "0")[...]
    assert restored.shape == image.shape and restored.dtype == np.uint8
    assert np.array_equal(restored[~hole], image[~hole])
    assert not np.array_equal(restored[hole], image[hole])


def test_catalogue_entry_fetches_converts_and_runs(
    server: LoopbackServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``inpaint weights fetch mi-gan-places2-512-iopaint`` with the fixture's traced file
    served in place of IOPaint's (same layout, its own md5), then a run by catalogue name."""
    monkeypatch.setenv("INPAINT_HOME", str(tmp_path / "home"))
    payload = TRACED.read_bytes()
    server.files["/migan_traced.pt"] = payload
    name = "mi-gan-places2-512-iopaint"
    entry = dataclasses.replace(
        get_entry(name),
        url=f"{server.url}/migan_traced.pt",
        digest="md5:" + hashlib.md5(payload).hexdigest(),
    )
    others = tuple(e for e in catalogue() if e.name != name)
    monkeypatch.setattr(catalogue_module, "CATALOGUE", (entry, *others))
    assert main(["weights", "fetch", name]) == 0
    info = weights_info(name)
    assert info["method"] == "mi-gan" and info["licence"] == "MIT"
    result = run_method(FIXTURE / "images" / "square.png", FIXTURE / "images" / "square_mask.png",
                        "mi-gan", name, tmp_path / "out.png")
    expected = read_rgb(FIXTURE / "expected" / "traced_square.png")
    assert np.abs(result.astype(int) - expected.astype(int)).max() <= MAX_DIFFERENCE
