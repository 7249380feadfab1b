"""``lama``: equal to the reference (advimman/lama) on the fixture, the format's checks,
symmetric padding, tiled restore, float32 FFTs.

The fixture (tests/fixtures/lama, made by its make_fixture.py with the reference's own
generator, data functions and predict.py steps, random weights and BatchNorm statistics) holds
two big-lama folders in the published layout (``ffc``: ngf 4, 2 blocks; ``lfu``: with the local
Fourier unit), their inputs and the reference's output PNGs.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
import zarr

import inpaint_core
from inpaint_core.errors import InvalidWeightsError, MissingWeightsError, ParameterError
from inpaint_core.io.store import level_array
from inpaint_core.learned import config_to_dict, pad_bottom_right
from inpaint_core.nn.layers.ffc import FfcResNetGenerator, FourierUnit, LamaConfig
from inpaint_core.weights.lama import FORMAT, lama_config, resolve_interpolations
from inpaint_core.weights.pickles import load_pickled

from ..reference import (
    assert_within_bounds,
    cli,
    hole_difference,
    import_published,
    read_rgb,
    run_method,
)
from ..reference import read_hole as read_mask

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "lama"


@pytest.fixture(scope="module")
def weights(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Both fixture folders imported through ``inpaint weights import lama``."""
    folder = tmp_path_factory.mktemp("lama-weights")
    out = {}
    for case in ("ffc", "lfu"):
        out[case] = folder / f"{case}.safetensors"
        import_published("lama", FIXTURE / case, out[case])
    return out


def test_cli_run_equals_the_reference(weights: dict[str, Path], tmp_path: Path) -> None:
    image_path, mask_path = FIXTURE / "images" / "scene.png", FIXTURE / "images" / "scene_mask.png"
    result = run_method(image_path, mask_path, "lama", weights["ffc"], tmp_path / "out.png")
    image, hole = read_rgb(image_path), read_mask(mask_path)
    assert image.shape == (75, 101, 3)  # not a multiple of 8
    assert_within_bounds(hole_difference(result, read_rgb(FIXTURE / "expected" / "ffc_scene.png"),
                                         image, hole))


def test_the_lfu_variant_equals_the_reference(weights: dict[str, Path]) -> None:
    image = read_rgb(FIXTURE / "images_square" / "square.png")
    hole = read_mask(FIXTURE / "images_square" / "square_mask.png")
    result = inpaint_core.inpaint(image, hole, "lama", weights=weights["lfu"], device="cpu")
    assert_within_bounds(hole_difference(result, read_rgb(FIXTURE / "expected" / "lfu_square.png"),
                                         image, hole))


def test_import_records_the_config_and_the_checkpoint(weights: dict[str, Path]) -> None:
    sidecar = json.loads(weights["ffc"].with_suffix(".json").read_text())
    assert sidecar["method"] == "lama"
    config = LamaConfig(**sidecar["config"])
    assert (config.ngf, config.n_blocks, config.n_downsampling) == (4, 2, 3)
    assert config.resnet_ratio_gin == config.resnet_ratio_gout == 0.75  # interpolated
    assert config.downsample_ratio_gout == 0.0 and config.add_out_act == "sigmoid"
    converted = FORMAT.convert(FIXTURE / "ffc")
    assert converted.source["epoch"] == 7 and converted.source["global_step"] == 4321
    assert not any(k.startswith("discriminator") for k in converted.networks["generator"])


def test_published_defaults_are_big_lama() -> None:
    published = yaml.safe_load((FIXTURE / "ffc" / "config.yaml").read_text())
    published["generator"].update(ngf=64, n_blocks=18)
    assert lama_config(published) == LamaConfig()


def write_checkpoint(tmp_path: Path, edit) -> Path:
    """A copy of the ffc fixture whose (plain-dict) checkpoint's state_dict ``edit`` changes."""
    folder = tmp_path / "big-lama"
    (folder / "models").mkdir(parents=True)
    (folder / "config.yaml").write_text((FIXTURE / "ffc" / "config.yaml").read_text())
    state = dict(load_pickled(FIXTURE / "ffc" / "models" / "best.ckpt")["state_dict"])
    edit(state)
    torch.save({"state_dict": state, "epoch": 1}, folder / "models" / "best.ckpt")
    return folder


def test_a_plain_dict_checkpoint_converts(tmp_path: Path) -> None:
    converted = FORMAT.convert(write_checkpoint(tmp_path, lambda state: None))
    assert converted.source["epoch"] == 1 and "global_step" not in converted.source


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda s: s.pop("generator.model.5.conv1.ffc.convg2g.fu.conv_layer.weight"),
         r"missing keys: model\.5\.conv1\.ffc\.convg2g\.fu\.conv_layer\.weight"),
        (lambda s: s.update({"generator.model.99.weight": torch.zeros(1)}),
         r"unexpected keys: model\.99\.weight"),
        (lambda s: s.update({"generator.model.1.ffc.convl2l.weight": torch.zeros(4, 4, 3, 3)}),
         r"mis-shaped keys: model\.1\.ffc\.convl2l\.weight \(4, 4, 3, 3\) \(expected "
         r"\(4, 4, 7, 7\)\)"),
        (lambda s: [s.pop(k) for k in list(s) if k.startswith("generator.")],
         r"no 'generator\.\*' tensors \(first keys: discriminator\."),
    ],
)
def test_key_mismatches_are_named(tmp_path: Path, edit, message: str) -> None:
    with pytest.raises(InvalidWeightsError, match=message):
        FORMAT.convert(write_checkpoint(tmp_path, edit))


def test_missing_files_say_what_the_format_expects(tmp_path: Path) -> None:
    with pytest.raises(MissingWeightsError, match=r"config\.yaml does not exist; format 'lama' "
                       r"expects the big-lama folder holding config\.yaml and models/best\.ckpt"):
        FORMAT.convert(tmp_path)


@pytest.mark.parametrize(
    ("section", "key", "value", "named"),
    [
        ("generator", "spatial_transform_layers", [1], "generator.spatial_transform_layers"),
        ("generator", "out_ffc", True, "generator.out_ffc"),
        ("generator", "norm_layer", "in", "generator.norm_layer"),
        ("generator", "kind", "pix2pixhd_global", "generator.kind"),
        ("resnet_conv_kwargs", "use_se", True, "generator.resnet_conv_kwargs.use_se"),
        ("resnet_conv_kwargs", "spectral_pos_encoding", True,
         "generator.resnet_conv_kwargs.spectral_pos_encoding"),
        ("init_conv_kwargs", "gated", True, "generator.init_conv_kwargs.gated"),
        ("resnet_conv_kwargs", "fft_norm", "forward", "generator.resnet_conv_kwargs.fft_norm"),
        ("training_model", "concat_mask", False, "training_model.concat_mask"),
        ("training_model", "add_noise_kwargs", {"kind": "x"}, "training_model.add_noise_kwargs"),
    ],
)
def test_unbuilt_options_are_refused_by_name(section: str, key: str, value, named: str) -> None:
    config = yaml.safe_load((FIXTURE / "ffc" / "config.yaml").read_text())
    target = config["generator"][section] if section.endswith("kwargs") else config[section]
    target[key] = value
    with pytest.raises(InvalidWeightsError, match=rf"option {named}=.* is not supported"):
        lama_config(config)


def test_bad_architecture_values_are_refused() -> None:
    config = yaml.safe_load((FIXTURE / "ffc" / "config.yaml").read_text())
    config["generator"]["n_downsampling"] = 4
    with pytest.raises(InvalidWeightsError, match=r"n_downsampling=4 must be an integer in"):
        lama_config(config)
    with pytest.raises(ParameterError, match=r"layer down0 takes 2 global channels \(ratio_gin"
                       r"=0.5\) but receives 0; set its ratio_gin to the previous"):
        LamaConfig(ngf=4, n_blocks=1, downsample_ratio_gin=0.5)
    with pytest.raises(ParameterError, match=r"layer block0.conv2 takes 24 global channels"):
        LamaConfig(ngf=4, n_blocks=1, resnet_ratio_gout=0.5)
    with pytest.raises(ParameterError, match=r"enables the LFU with 12 global"):
        LamaConfig(ngf=2, n_blocks=1, resnet_enable_lfu=True)


def test_interpolations_resolve_and_resolvers_are_refused() -> None:
    root = {"a": {"b": 3, "c": "${a.b}", "d": "x${a.c}y"}, "e": "${env:HOME}"}
    assert resolve_interpolations(root["a"], root) == {"b": 3, "c": 3, "d": "x3y"}
    with pytest.raises(InvalidWeightsError, match=r"resolver interpolation \$\{env:HOME\}"):
        resolve_interpolations(root["e"], root)
    with pytest.raises(InvalidWeightsError, match=r"\$\{a.z\} names no value"):
        resolve_interpolations("${a.z}", root)
    with pytest.raises(InvalidWeightsError, match=r"a cycle"):
        resolve_interpolations("${x}", {"x": "${x}"})


@pytest.mark.parametrize(("size", "pad"), [(5, 3), (5, 11), (4, 0), (1, 7)])
def test_symmetric_padding_is_numpys(size: int, pad: int) -> None:
    grid = torch.arange(size * (size + 2), dtype=torch.float32).reshape(1, 1, size, size + 2)
    padded = pad_bottom_right(grid, pad, pad + 1, "symmetric")
    expected = np.pad(grid.numpy(), ((0, 0), (0, 0), (0, pad), (0, pad + 1)), mode="symmetric")
    assert np.array_equal(padded.numpy(), expected)


def test_lama_pads_symmetrically_and_the_others_keep_reflection() -> None:
    import torch.nn.functional as F

    assert inpaint_core.get_method("lama").pad_mode == "symmetric"
    for info in inpaint_core.list_methods():
        method = inpaint_core.get_method(info.name)
        if info.learned and info.name != "lama":
            assert method.pad_mode == "reflect", info.name
    grid = torch.rand(1, 3, 6, 7)
    assert torch.equal(pad_bottom_right(grid, 2, 3, "reflect"),
                       F.pad(grid, (0, 3, 0, 2), mode="reflect"))
    assert torch.equal(pad_bottom_right(grid, 6, 1, "reflect"),
                       F.pad(grid, (0, 1, 0, 6), mode="replicate"))
    with pytest.raises(ParameterError, match=r"pad mode 'wrap' is not one of reflect, symmetric"):
        pad_bottom_right(grid, 1, 1, "wrap")


@pytest.mark.parametrize("shape", [(9, 13), (17, 30), (33, 41)])
def test_sizes_that_are_not_multiples_of_8(weights: dict[str, Path], shape) -> None:
    rng = np.random.default_rng(1)
    image = rng.integers(0, 256, (*shape, 3), dtype=np.uint8)
    hole = np.zeros(shape, bool)
    hole[shape[0] // 3 : shape[0] // 3 + 4, 2:7] = True
    result = inpaint_core.inpaint(image, hole, "lama", weights=weights["ffc"], device="cpu")
    assert result.shape == image.shape and np.array_equal(result[~hole], image[~hole])
    if min(shape) < 16:
        return  # padded to the project's 16 px minimum side, not the reference's 8
    # the hole equals the generator run on numpy-symmetric padded inputs, as the reference
    networks = inpaint_core.get_method("lama")(weights=weights["ffc"]).load_networks("cpu")
    tall, wide = -(-shape[0] // 8) * 8, -(-shape[1] // 8) * 8
    pads = ((0, tall - shape[0]), (0, wide - shape[1]))
    x = np.pad(image.transpose(2, 0, 1).astype(np.float32) / 255, ((0, 0), *pads), "symmetric")
    m = np.pad(hole.astype(np.float32), pads, "symmetric")[None]
    x, m = torch.from_numpy(x)[None], torch.from_numpy(m)[None]
    with torch.no_grad():
        predicted = networks.generator(torch.cat([x * (1 - m), m], 1))[0]
    expected = np.clip(predicted.numpy().transpose(1, 2, 0) * 255, 0, 255).astype(np.uint8)
    difference = np.abs(result.astype(int) - expected[: shape[0], : shape[1]].astype(int))[hole]
    assert difference.max() <= 1


def test_batches_equal_single_runs(weights: dict[str, Path]) -> None:
    method = inpaint_core.get_method("lama")(weights=weights["ffc"], device="cpu")
    rng = np.random.default_rng(2)
    images = [rng.random((24, 40, 3), dtype=np.float32) for _ in range(2)]
    masks = [np.zeros((24, 40), bool) for _ in range(2)]
    masks[0][3:9, 4:20] = True
    masks[1][10:20, 30:38] = True
    batched = method.run_batch(images, masks, 0)
    for image, mask, result in zip(images, masks, batched, strict=True):
        single = method.run(image, mask, np.random.default_rng(0))
        np.testing.assert_allclose(result.image[mask], single.image[mask], atol=1e-5)


def test_restore_on_a_scan_keeps_known_bytes(weights: dict[str, Path], tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    image = rng.integers(0, 256, (200, 330, 3), dtype=np.uint8)
    hole = np.zeros(image.shape[:2], bool)  # across tile and chunk lines, and on the borders
    hole[10:20, 15:40] = hole[160:200, 250:330] = hole[120:124, 0:330] = True
    for name, array, chunks in (("scan", image, (64, 64, 3)), ("mask", hole, (64, 64))):
        store = zarr.create_array(str(tmp_path / f"{name}.zarr"), shape=array.shape,
                                  chunks=chunks, dtype=array.dtype)
        store[...] = array
    output = tmp_path / "out.zarr"
    assert cli("restore", tmp_path / "scan.zarr", "--mask", tmp_path / "mask.zarr", "-m", "lama",
               "--weights", weights["ffc"], "--device", "cpu", "--tile", 384,
               "-o", output) == 0
    restored = level_array(zarr.open_group(str(output), mode="r"), "0")[...]
    assert restored.shape == image.shape and restored.dtype == np.uint8
    assert np.array_equal(restored[~hole], image[~hole])
    assert not np.array_equal(restored[hole], image[hole])


def test_fourier_units_run_in_float32(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[torch.dtype] = []
    original = torch.fft.rfft2

    def recording(x: torch.Tensor, *args, **kwargs) -> torch.Tensor:
        seen.append(x.dtype)
        return original(x, *args, **kwargs)

    monkeypatch.setattr(torch.fft, "rfft2", recording)
    unit = FourierUnit(4, 4).eval()
    x = torch.rand(1, 4, 12, 10)
    reference = unit(x)
    for dtype in (torch.float16, torch.bfloat16, torch.float64):
        out = unit(x.to(dtype))
        assert out.dtype == dtype and out.shape == x.shape
        tolerance = 1e-6 if dtype == torch.float64 else 3e-2
        torch.testing.assert_close(out.float(), reference, atol=tolerance, rtol=tolerance)
    assert seen == [torch.float32] * 4


def test_no_weights_names_the_fetch_and_import_commands(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setenv("INPAINT_WEIGHTS_DIR", str(tmp_path))
    image = np.zeros((16, 16, 3), np.uint8)
    hole = np.zeros((16, 16), bool)
    hole[4:8, 4:8] = True
    with pytest.raises(MissingWeightsError, match=r"inpaint weights fetch big-lama.*inpaint "
                       r"weights import lama big-lama --output W\.safetensors"):
        inpaint_core.inpaint(image, hole, "lama")


def test_training_is_refused() -> None:
    method = inpaint_core.get_method("lama")
    assert method.info.family.value == "fourier" and method.info.learned
    assert method.info.pad_multiple == 8 and method.info.supports_gpu
    with pytest.raises(ParameterError, match=r"method 'lama' is inference-only"):
        method.build_training(LamaConfig())


def test_generator_layout_follows_the_reference() -> None:
    generator = FfcResNetGenerator(LamaConfig(ngf=4, n_blocks=1, resnet_enable_lfu=True))
    keys = set(generator.state_dict())
    assert "model.4.ffc.convl2g.weight" in keys and "model.4.ffc.convg2g.conv1.0.weight" not in keys
    assert "model.5.conv2.ffc.convg2g.lfu.conv_layer.weight" in keys
    assert "model.10.weight" in keys  # the last ConvTranspose2d... after the concatenation
    assert config_to_dict(LamaConfig())["n_blocks"] == 18
