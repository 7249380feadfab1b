"""Learned methods: option parsing, config round trips, weights lookup and running edge-gan."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import Dataset

from inpaint_core.api import inpaint
from inpaint_core.checkpoint import flatten_state, save_checkpoint
from inpaint_core.errors import InvalidWeightsError, MissingWeightsError, ParameterError
from inpaint_core.learned import (
    WEIGHTS_DIR_ENV,
    config_from_dict,
    config_to_dict,
    parse_options,
)
from inpaint_core.priors import Prior
from inpaint_core.training.trainer import TrainConfig, train
from inpaint_methods.edge_gan import (
    EdgeGan,
    EdgeGanConfig,
    EdgeGanTraining,
    TextureLoss,
    canny_edges,
    to_gray,
)

TINY = dict(EdgeGan.smoke_test_options)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(autouse=True)
def no_weights_dir(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(WEIGHTS_DIR_ENV, raising=False)


def save_tiny(folder: Path, name: str = "edge-gan", method: str = "edge-gan", **overrides: object
              ) -> Path:
    """Untrained tiny edge-gan inference weights, as ``inpaint train`` would ship them."""
    folder.mkdir(parents=True, exist_ok=True)
    config = EdgeGanConfig(**{**TINY, **overrides})  # type: ignore[arg-type]
    torch.manual_seed(0)
    training = EdgeGanTraining(config)
    networks = {name: getattr(training, name).state_dict() for name in training.inference_networks}
    path = folder / f"{name}.safetensors"
    save_checkpoint(path, flatten_state(networks), method=method, config=config_to_dict(config),
                    step=0, half=True)
    return path


@pytest.fixture
def weights(tmp_path: Path) -> Path:
    return save_tiny(tmp_path / "weights")


# --- parse_options, config_to_dict, config_from_dict ---------------------------------------------
@dataclass(frozen=True)
class Settings:
    width: int = 4
    rate: float = 0.5
    flip: bool = False
    label: str = "x"
    prior: Prior = Prior.NONE
    sizes: tuple[int, ...] = (1, 2)


def test_parse_options_converts_by_field_type() -> None:
    parsed = parse_options(
        Settings, {"width": "8", "rate": "1e-3", "flip": "Yes", "label": "mural", "prior": "telea"}
    )
    assert parsed == Settings(8, 1e-3, True, "mural", Prior.TELEA)
    assert isinstance(parsed.width, int) and isinstance(parsed.rate, float)
    for text, value in (("true", True), ("1", True), ("no", False), ("0", False), ("FALSE", False)):
        assert parse_options(Settings, {"flip": text}).flip is value
    assert parse_options(Settings, {}) == Settings()


def test_parse_options_applies_to_a_base_config() -> None:
    base = Settings(width=16, label="base")
    assert parse_options(Settings, {"rate": "2"}, base) == Settings(16, 2.0, label="base")


def test_parse_options_unknown_key_lists_the_valid_ones() -> None:
    with pytest.raises(ParameterError, match=r"unknown option 'depth' for Settings; valid: "
                       r"width, rate, flip, label, prior, sizes"):
        parse_options(Settings, {"depth": "3"})


@pytest.mark.parametrize(
    ("key", "text", "expected"),
    [
        ("width", "2.5", "int"),
        ("rate", "fast", "float"),
        ("flip", "maybe", "bool"),
        ("prior", "lama", "one of none, telea, blend"),
    ],
)
def test_parse_options_bad_value_names_it_and_the_type(key: str, text: str, expected: str) -> None:
    with pytest.raises(ParameterError, match=rf"option {key}='{text}' is not valid; "
                       rf"expected {expected}$"):
        parse_options(Settings, {key: text})


def test_parse_options_refuses_fields_the_command_line_cannot_set() -> None:
    with pytest.raises(ParameterError, match=r"option 'sizes' cannot be set from the command line"):
        parse_options(Settings, {"sizes": "1,2"})


def test_parse_options_runs_the_config_validation() -> None:
    with pytest.raises(ParameterError, match=r"local_size=16 must be >= 32"):
        parse_options(EdgeGanConfig, {"local_size": "16"})
    config = parse_options(EdgeGanConfig, {"texture_loss": "discriminator-features",
                                           "gan_loss": "hinge", "prior": "telea"})
    assert config.texture_loss is TextureLoss.DISCRIMINATOR_FEATURES
    assert config.prior is Prior.TELEA


def test_config_dict_round_trip() -> None:
    config = EdgeGanConfig(**TINY, prior="telea", canny_sigma=1.5)  # type: ignore[arg-type]
    data = config_to_dict(config)
    assert data["prior"] == "telea" and data["texture_loss"] == "discriminator-features"
    assert data["gan_loss"] == "hinge" and data["base_channels"] == 4
    assert config_from_dict(EdgeGanConfig, json.loads(json.dumps(data))) == config
    settings = Settings(sizes=(3, 4, 5))
    data = config_to_dict(settings)
    assert data["sizes"] == [3, 4, 5] and data["prior"] == "none"
    assert config_from_dict(Settings, json.loads(json.dumps(data))) == settings


def test_config_from_dict_refuses_unknown_keys() -> None:
    data = {**config_to_dict(EdgeGanConfig(**TINY)), "attention": True, "blocks": 3}  # type: ignore[arg-type]
    message = r"config keys \['attention', 'blocks'\] are unknown to EdgeGanConfig \(valid: "
    with pytest.raises(InvalidWeightsError, match=message + r"base_channels, residual_blocks"):
        config_from_dict(EdgeGanConfig, data)


# --- where weights come from ----------------------------------------------------------------
def test_missing_weights_say_how_to_train_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, rgb_image: np.ndarray, hole_mask: np.ndarray
) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.setattr(EdgeGan, "weights_folder", empty)
    with pytest.raises(MissingWeightsError) as raised:
        inpaint(rgb_image, hole_mask, "edge-gan", device="cpu")
    message = str(raised.value)
    assert f"no weights file {empty / 'edge-gan.safetensors'}" in message
    assert "`inpaint train edge-gan --data IMAGES --out runs/edge-gan`" in message
    assert f"into {empty}" in message and WEIGHTS_DIR_ENV in message
    # The environment variable takes precedence over the shipped folder, and says so.
    monkeypatch.setenv(WEIGHTS_DIR_ENV, str(tmp_path / "elsewhere"))
    with pytest.raises(MissingWeightsError, match=r"elsewhere/edge-gan.safetensors"):
        inpaint(rgb_image, hole_mask, "edge-gan", device="cpu")
    monkeypatch.delenv(WEIGHTS_DIR_ENV)
    monkeypatch.setattr(EdgeGan, "weights_folder", None)
    with pytest.raises(MissingWeightsError, match=r"no weights folder is configured.*inpaint "
                       rf"train edge-gan.*{WEIGHTS_DIR_ENV}"):
        inpaint(rgb_image, hole_mask, "edge-gan", device="cpu")


def test_weights_dir_env_is_used(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, rgb_image: np.ndarray, hole_mask: np.ndarray
) -> None:
    folder = tmp_path / "dir"
    given = save_tiny(folder)
    monkeypatch.setattr(EdgeGan, "weights_folder", tmp_path / "empty")
    monkeypatch.setenv(WEIGHTS_DIR_ENV, str(folder))
    assert EdgeGan(device="cpu").weights_path() == given
    from_env = inpaint(rgb_image, hole_mask, "edge-gan", device="cpu")
    explicit = inpaint(rgb_image, hole_mask, "edge-gan", device="cpu", weights=given)
    assert np.array_equal(from_env, explicit)


def test_given_weights_that_do_not_exist(
    tmp_path: Path, rgb_image: np.ndarray, hole_mask: np.ndarray
) -> None:
    missing = tmp_path / "nowhere" / "mine.safetensors"
    with pytest.raises(MissingWeightsError, match=rf"weights file {missing} given for method "
                       r"'edge-gan' does not exist"):
        inpaint(rgb_image, hole_mask, "edge-gan", device="cpu", weights=missing)


def test_weights_of_another_method_or_layout_are_refused(
    tmp_path: Path, rgb_image: np.ndarray, hole_mask: np.ndarray
) -> None:
    other = save_tiny(tmp_path / "a", method="glcic")
    with pytest.raises(InvalidWeightsError, match=r"is for method 'glcic', not 'edge-gan'"):
        inpaint(rgb_image, hole_mask, "edge-gan", device="cpu", weights=other)
    torch.manual_seed(0)
    training = EdgeGanTraining(EdgeGanConfig(**TINY))  # type: ignore[arg-type]
    half = tmp_path / "half.safetensors"
    save_checkpoint(half, flatten_state({"edge_generator": training.edge_generator.state_dict()}),
                    method="edge-gan", config=training.config_dict(), step=0)
    with pytest.raises(InvalidWeightsError, match=r"lack network 'image_generator' "
                       r"\(found: edge_generator\)"):
        inpaint(rgb_image, hole_mask, "edge-gan", device="cpu", weights=half)
    wider = tmp_path / "wider.safetensors"
    config = {**training.config_dict(), "base_channels": 8}  # the sidecar lies about the width
    networks = {n: getattr(training, n).state_dict() for n in training.inference_networks}
    save_checkpoint(wider, flatten_state(networks), method="edge-gan", config=config, step=0)
    with pytest.raises(InvalidWeightsError, match=r"'edge_generator' does not fit"):
        inpaint(rgb_image, hole_mask, "edge-gan", device="cpu", weights=wider)


# --- running ------------------------------------------------------------------------------------
def test_trained_checkpoint_runs(tmp_path: Path, rgb_image: np.ndarray, hole_mask: np.ndarray
                                 ) -> None:
    class Crops(Dataset):
        def __len__(self) -> int:
            return 2

        def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
            image = torch.from_numpy(rgb_image[:32, index : index + 32]).permute(2, 0, 1)
            mask = torch.zeros(1, 32, 32)
            mask[:, 10:20, 8:24] = 1
            return {"image": image.float() / 255, "mask": mask}

    torch.manual_seed(0)
    model = EdgeGanTraining(EdgeGanConfig(**TINY))  # type: ignore[arg-type]
    result = train(model, Crops(), tmp_path / "run",
                   TrainConfig(steps=2, batch_size=2, device="cpu"))
    restored = inpaint(rgb_image, hole_mask, "edge-gan", weights=result.weights, device="cpu")
    assert restored.dtype == np.uint8 and restored.shape == rgb_image.shape
    assert np.array_equal(restored[~hole_mask], rgb_image[~hole_mask])
    assert not np.array_equal(restored[hole_mask], rgb_image[hole_mask])
    # Deterministic, and a second call (cached networks) gives the same result.
    again = inpaint(rgb_image, hole_mask, "edge-gan", weights=result.weights, device="cpu")
    assert np.array_equal(restored, again)


@pytest.mark.parametrize(
    ("shape", "dtype"),
    [
        ((37, 50, 3), np.float32),
        ((37, 50), np.uint16),
        ((40, 56), np.uint8),
        ((13, 30, 4), np.uint8),
    ],
)
def test_odd_sizes_grey_and_rgba(weights: Path, shape: tuple[int, ...], dtype: type) -> None:
    rng = np.random.default_rng(0)
    values = rng.random(shape)
    image = (values if dtype is np.float32 else values * np.iinfo(dtype).max).astype(dtype)
    mask = np.zeros(shape[:2], dtype=bool)
    mask[4:9, 10:20] = True
    restored = inpaint(image, mask, "edge-gan", weights=weights, device="cpu")
    assert restored.shape == image.shape and restored.dtype == image.dtype
    assert np.array_equal(restored[~mask], image[~mask])
    if image.ndim == 3 and image.shape[2] == 4:
        assert np.array_equal(restored[..., 3], image[..., 3])
    assert np.isfinite(restored.astype(np.float64)).all()


def test_very_small_image_fills_or_says_why(weights: Path) -> None:
    image = np.random.default_rng(0).random((8, 8)).astype(np.float32)
    mask = np.zeros((8, 8), dtype=bool)
    mask[3:5, 3:5] = True
    restored = inpaint(image, mask, "edge-gan", weights=weights, device="cpu")
    assert restored.shape == (8, 8)


def test_show_edges_returns_the_edge_map(
    weights: Path, rgb_image: np.ndarray, hole_mask: np.ndarray
) -> None:
    rgb_image = rgb_image.copy()
    rgb_image[:, 10:16] //= 3  # a dark bar: sharp edges outside the hole
    restored, extras = inpaint(rgb_image, hole_mask, "edge-gan", weights=weights, device="cpu",
                               show_edges=True, return_extras=True)
    assert set(extras) == {"edges"}
    edges = extras["edges"]
    assert edges.dtype == np.float32 and edges.shape == hole_mask.shape
    assert edges.min() >= 0.0 and edges.max() <= 1.0
    # Outside the hole the map is Canny's binary edges of the known part.
    colour = torch.from_numpy(rgb_image.astype(np.float32) / 255).permute(2, 0, 1)[None]
    known = torch.from_numpy(~hole_mask).float()[None, None]
    expected = canny_edges(to_gray(colour), 2.0, known)[0, 0].numpy()
    assert expected[~hole_mask].sum() >= 20
    assert np.array_equal(edges[~hole_mask], expected[~hole_mask])
    plain, none = inpaint(rgb_image, hole_mask, "edge-gan", weights=weights, device="cpu",
                          return_extras=True)
    assert none == {} and np.array_equal(plain, restored)
    _, binary = inpaint(rgb_image, hole_mask, "edge-gan", weights=weights, device="cpu",
                        show_edges=True, edge_threshold=0.5, return_extras=True)
    assert set(np.unique(binary["edges"])) <= {0.0, 1.0}


def test_untrained_telea_prior_model_equals_telea(
    tmp_path: Path, rgb_image: np.ndarray, hole_mask: np.ndarray
) -> None:
    # The zero-initialised last layer makes G2's correction exactly zero: the fill is Telea's.
    telea_weights = save_tiny(tmp_path / "telea", prior="telea")
    for image in (rgb_image, rgb_image.astype(np.float32) / 255):
        learned = inpaint(image, hole_mask, "edge-gan", weights=telea_weights, device="cpu")
        classical = inpaint(image, hole_mask, "telea")
        if image.dtype == np.uint8:
            # The prior fills at 16 bit, as telea does 16-bit input (uint8 goes to OpenCV as is).
            wide = inpaint(image.astype(np.uint16) * 257, hole_mask, "telea")
            assert np.array_equal(learned, np.rint(wide / 257.0).astype(np.uint8))
        else:
            np.testing.assert_allclose(learned[hole_mask], classical[hole_mask], atol=1e-3)
    # And with the "none" prior the same untrained model does not give Telea's fill.
    none = inpaint(rgb_image, hole_mask, "edge-gan", weights=save_tiny(tmp_path / "none"),
                   device="cpu")
    assert np.abs(none.astype(int) - inpaint(rgb_image, hole_mask, "telea")).max() > 10


# --- inference precision ---------------------------------------------------------------------
@pytest.mark.parametrize(
    ("precision", "device", "bf16", "expected"),
    [
        ("auto", "cpu", None, None), ("fp32", "cuda:0", True, None),
        ("auto", "cuda:0", True, torch.bfloat16), ("auto", "cuda", False, torch.float16),
        ("bf16", "cuda:1", True, torch.bfloat16), ("fp16", "cuda:0", True, torch.float16),
        ("auto", "mps", None, None),
    ],
)
def test_autocast_dtype_per_precision_and_device(precision, device, bf16, expected) -> None:
    from inpaint_core.learned import autocast_dtype

    assert autocast_dtype(precision, device, bf16) == expected


def test_precision_errors_and_fp32_equals_auto_on_the_cpu() -> None:
    from inpaint_core.api import get_method
    from inpaint_core.learned import autocast_dtype

    with pytest.raises(ParameterError, match=r"precision='bf16' needs a CUDA device; .*'cpu'"):
        autocast_dtype("bf16", "cpu")
    with pytest.raises(ParameterError, match=r"precision='int8' must be one of auto, fp32"):
        autocast_dtype("int8", "cpu")
    image = np.random.default_rng(0).random((40, 48, 3), dtype=np.float32)
    hole = np.zeros((40, 48), dtype=bool)
    hole[10:30, 12:30] = True
    glcic = get_method("glcic")
    rng = np.random.default_rng(0)
    auto = glcic(device="cpu").run(image, hole, rng).image
    fp32 = glcic(device="cpu", precision="fp32").run(image, hole, rng).image
    np.testing.assert_array_equal(auto, fp32)
    with pytest.raises(ParameterError, match=r"precision='fp16' needs a CUDA device"):
        glcic(device="cpu", precision="fp16").run(image, hole, rng)
