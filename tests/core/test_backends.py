"""Inference backends (inpaint_core.backends): eager on folded networks, torch.compile, ONNX
Runtime (skipped without onnxruntime), and the ``backend`` parameter and ``--backend`` flags."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import inpaint_core  # noqa: E402
from inpaint_core.backends import (  # noqa: E402
    ONNX_CACHE_ENV,
    ONNX_INSTALL_HINT,
    OnnxMissingError,
    parse_backend,
    prepared_networks,
    run_predict,
)
from inpaint_core.cli import main  # noqa: E402
from inpaint_core.errors import ParameterError  # noqa: E402
from inpaint_core.masks import make_mask  # noqa: E402

HAS_ONNX = all(importlib.util.find_spec(name) for name in ("onnx", "onnxruntime", "onnxscript"))
needs_onnx = pytest.mark.skipif(
    not HAS_ONNX, reason=f"onnx / onnxruntime / onnxscript not installed ({ONNX_INSTALL_HINT})"
)



def photo(side: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    image = rng.integers(0, 256, (side, side, 3), dtype=np.uint8)
    image = np.cumsum(image, axis=1, dtype=np.int64) // np.arange(1, side + 1)[None, :, None]
    return image.astype(np.uint8), make_mask("free_form", (side, side), 0.2, seed=seed)


def unfolded_result(
    method_name: str, image: np.ndarray, hole: np.ndarray, **params: str
) -> np.ndarray:
    """The method's predict on its loaded (unfolded) networks, composited as ``inpaint``."""
    method = inpaint_core.get_method(method_name)(device="cpu", **params)
    networks = method.load_networks("cpu")
    tensor, mask = method._tensors(image.astype(np.float32) / 255, hole, "cpu")
    with torch.inference_mode():
        filled, _ = method.predict(networks, tensor, mask)
    out = np.rint(filled[0, :, : image.shape[0], : image.shape[1]].clamp(0, 1).numpy() * 255)
    return np.where(hole[..., None], out.transpose(1, 2, 0), image).astype(np.uint8)


def test_unknown_backend_names_the_valid_ones() -> None:
    with pytest.raises(ParameterError, match="eager, compile, onnx"):
        parse_backend("tensorrt")
    image, hole = photo(32, 0)
    with pytest.raises(ParameterError, match="backend"):
        inpaint_core.inpaint(image, hole, "edge-gan", backend="tensorrt")


def test_every_learned_method_lists_the_backend_parameter() -> None:
    for info in inpaint_core.list_methods():
        names = [parameter.name for parameter in info.parameters]
        assert ("backend" in names) == info.learned, info.name


def test_eager_runs_folded_networks_and_leaves_the_loaded_ones_unchanged(lama_weights: str) -> None:
    image, hole = photo(48, 1)
    expected = unfolded_result("lama", image, hole, weights=lama_weights)
    method = inpaint_core.get_method("lama")(device="cpu", weights=lama_weights)
    networks = method.load_networks("cpu")
    state = {key: value.clone() for key, value in networks.state_dict().items()}
    result = inpaint_core.inpaint(image, hole, "lama", weights=lama_weights, device="cpu")
    assert np.abs(result.astype(int) - expected).max() <= 1
    folded = prepared_networks(networks)
    assert folded is not networks
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in folded.modules())
    for key, value in networks.state_dict().items():  # the cached networks keep their weights
        assert torch.equal(value, state[key]), key


def test_compile_equals_eager(lama_weights: str) -> None:
    image, hole = photo(32, 2)
    eager = inpaint_core.inpaint(image, hole, "lama", weights=lama_weights, device="cpu")
    compiled = inpaint_core.inpaint(
        image, hole, "lama", weights=lama_weights, device="cpu", backend="compile"
    )
    assert np.abs(compiled.astype(int) - eager.astype(int)).max() <= 1


@pytest.mark.skipif(HAS_ONNX, reason="onnx is installed: the missing-package error cannot show")
def test_onnx_without_the_extra_says_how_to_install(tmp_path: Path) -> None:
    image, hole = photo(32, 3)
    with pytest.raises(OnnxMissingError, match=r"pip install 'napari-inpaint\[onnx\]'"):
        inpaint_core.inpaint(image, hole, "edge-gan", device="cpu", backend="onnx")
    sample = Path(__file__).resolve().parents[2] / "sample_data"
    code = main(["run", str(sample / "astronaut_damaged.png"),
                 str(sample / "astronaut_mask.png"), "-m", "edge-gan", "--backend", "onnx",
                 "-o", str(tmp_path / "out.png")])
    assert code == 2 and not (tmp_path / "out.png").exists()


def test_onnx_is_refused_off_the_cpu_and_with_autocast() -> None:
    method = inpaint_core.get_method("edge-gan")(device="cpu", backend="onnx")
    networks = method.load_networks("cpu")
    image, mask = torch.zeros(1, 3, 32, 32), torch.zeros(1, 1, 32, 32)
    with pytest.raises(ParameterError, match="CPU only"):
        run_predict(method, networks, image, mask, "cuda:0")
    with pytest.raises(ParameterError, match="fp32"):
        run_predict(method, networks, image, mask, "cpu", torch.bfloat16)


def test_flags_reach_the_parameter_and_classical_methods_refuse_them(tmp_path: Path) -> None:
    sample = Path(__file__).resolve().parents[2] / "sample_data"
    inputs = [str(sample / "astronaut_damaged.png"), str(sample / "astronaut_mask.png")]
    assert main(["run", *inputs, "-m", "telea", "--backend", "eager",
                 "-o", str(tmp_path / "a.png")]) == 2
    assert main(["run", *inputs, "-m", "edge-gan", "--backend", "eager", "--param",
                 "backend=onnx", "-o", str(tmp_path / "b.png")]) == 2
    with pytest.raises(SystemExit):  # argparse: not a choice
        main(["run", *inputs, "-m", "edge-gan", "--backend", "tvm", "-o", str(tmp_path / "c.png")])
    assert not list(tmp_path.iterdir())


def test_restore_flags_are_checked_as_run_checks_them(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sample = Path(__file__).resolve().parents[2] / "sample_data"
    scan, mask = str(sample / "astronaut_damaged.png"), str(sample / "astronaut_mask.png")
    out = str(tmp_path / "out.zarr")
    for argv, said in [
        (["-m", "telea", "--backend", "eager"], "method 'telea' takes no --backend"),
        (["-m", "telea", "--weights", "w.safetensors"], "method 'telea' takes no --weights"),
        (["-m", "edge-gan", "--backend", "eager", "--param", "backend=onnx"],
         "--backend and --param backend=... are both given"),
    ]:
        assert main(["restore", scan, "--mask", mask, *argv, "-o", out]) == 2
        assert said in capsys.readouterr().err
    assert not list(tmp_path.iterdir())


@needs_onnx
def test_onnx_equals_eager_and_reuses_its_export(
    lama_weights: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(ONNX_CACHE_ENV, str(tmp_path / "cache"))
    # edge-gan: Canny edges (NumPy) inside predict; two images prove they are not baked in
    for method, params in (("edge-gan", {}), ("lama", {"weights": lama_weights})):
        for seed in (4, 5):
            image, hole = photo(64, seed)
            eager = inpaint_core.inpaint(image, hole, method, device="cpu", **params)
            onnx = inpaint_core.inpaint(image, hole, method, device="cpu", backend="onnx", **params)
            assert np.abs(onnx.astype(int) - eager.astype(int)).max() <= 1, (method, seed)
    exported = sorted((tmp_path / "cache").glob("*.onnx"))
    # edge-gan's two generators and lama's one, each at the one padded size 64 x 64
    assert [path.name.rsplit("-", 1)[0] for path in exported] == [
        "edge-gan-edge_generator", "edge-gan-image_generator", "lama-generator"
    ]
    stamps = [path.stat().st_mtime_ns for path in exported]
    from inpaint_core import backends

    backends._onnx_views.clear()  # a new process: sessions gone, files kept
    image, hole = photo(64, 6)
    inpaint_core.inpaint(image, hole, "lama", device="cpu", backend="onnx", weights=lama_weights)
    assert [path.stat().st_mtime_ns for path in sorted((tmp_path / "cache").glob("*.onnx"))] \
        == stamps
