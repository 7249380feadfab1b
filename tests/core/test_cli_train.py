"""``inpaint train`` end to end on tiny data, and ``inpaint run`` with the weights it writes."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
import zarr

from inpaint_core.cli import main
from inpaint_core.io import read_image, write_image
from inpaint_core.nn.losses.perceptual import VGG19_WEIGHTS_ENV
from inpaint_methods.edge_gan import EdgeGan

TINY_OPTIONS = [
    text
    for key, value in EdgeGan.smoke_test_options.items()
    for text in ("--option", f"{key}={value}")
]
FAST = ["--size", "32", "--batch", "2", "--device", "cpu", "--checkpoint-every", "2"]


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def make_images(folder: Path, count: int = 3, size: int = 48) -> Path:
    """``count`` small PNGs: ramps with a dark bar, each a little different."""
    folder.mkdir(parents=True)
    rows, cols = np.mgrid[0:size, 0:size].astype(np.float64) / (size - 1)
    for index in range(count):
        image = np.stack([rows, cols, 0.5 + 0.4 * np.sin(6 * cols + index)], axis=2)
        image[:, 8 + 4 * index : 14 + 4 * index] *= 0.3
        write_image(folder / f"img{index}.png", np.rint(image * 255).astype(np.uint8))
    return folder


def cli(*argv: object) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main([str(arg) for arg in argv])
    return code, out.getvalue(), err.getvalue()


def sidecar(path: Path) -> dict:
    return json.loads(path.read_text())


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, str]:
    """``(data folder, run folder, stdout)`` of a 4-step tiny edge-gan run."""
    root = tmp_path_factory.mktemp("train")
    data = make_images(root / "images")
    out = root / "run"
    code, stdout, stderr = cli("train", "edge-gan", "--data", data, "--steps", 4, *FAST,
                               "--out", out, *TINY_OPTIONS)
    assert code == 0, stderr
    return data, out, stdout


def test_train_writes_a_run(trained: tuple[Path, Path, str]) -> None:
    data, out, stdout = trained
    names = sorted(p.name for p in (out / "checkpoints").iterdir())
    assert names == [f"step-{s:08d}{x}" for s in (2, 4) for x in (".json", ".safetensors",
                                                                   ".state.pt")]
    info = sidecar(out / "edge-gan.json")
    assert info["method"] == "edge-gan" and info["step"] == 4 and info["dtype"] == "float16"
    assert info["config"]["base_channels"] == 4 and info["config"]["local_size"] == 32
    expected = {"kind": "folder", "folder": str(data.resolve()), "images": 3, "size": 32}
    assert info["training_data"].items() >= expected.items()
    with (out / "log.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [row["step"] for row in rows] == ["4"]  # --log-every 10: only the last step
    assert f"step 4: checkpoint {out / 'checkpoints' / 'step-00000004.safetensors'}" in stdout
    assert f"--method edge-gan --weights {out / 'edge-gan.safetensors'}" in stdout


def test_resume_continues_the_run(trained: tuple[Path, Path, str], tmp_path: Path) -> None:
    data, out, _ = trained
    copy = shutil.copytree(out, tmp_path / "run")
    code, stdout, stderr = cli("train", "edge-gan", "--data", data, "--steps", 6, *FAST,
                               "--resume", copy)
    assert code == 0, stderr
    assert sidecar(copy / "edge-gan.json")["step"] == 6  # --out defaults to the resumed run
    assert sidecar(copy / "checkpoints" / "step-00000006.json")["step"] == 6
    assert "step 6: checkpoint" in stdout
    code, _, stderr = cli("train", "edge-gan", "--data", data, "--steps", 6, *FAST,
                          "--resume", copy)
    assert code == 2 and "at step 6 already; ask for --steps > 6" in stderr


def test_resume_keeps_the_runs_batch_size(trained: tuple[Path, Path, str], tmp_path: Path):
    data, out, _ = trained
    copy = shutil.copytree(out, tmp_path / "run")
    at = FAST.index("--batch")
    without_batch = FAST[:at] + FAST[at + 2 :]
    # Three images: the default batch of 4 could not run, the run's own batch of 2 does.
    code, _, stderr = cli("train", "edge-gan", "--data", data, "--steps", 6, *without_batch,
                          "--resume", copy)
    assert code == 0, stderr
    assert sidecar(copy / "edge-gan.json")["extra"]["train_config"]["batch_size"] == 2


def test_train_on_a_zarr_scan_with_a_damage_mask(tmp_path: Path) -> None:
    rows, cols = np.mgrid[0:96, 0:96]
    pixels = np.stack([rows * 2, cols * 2, (rows + cols) % 256], axis=2).astype(np.uint8)
    scan = zarr.create_array(store=str(tmp_path / "scan.zarr"), shape=(96, 96, 3),
                             chunks=(48, 48, 3), dtype="uint8")
    scan[:] = pixels
    damage = zarr.create_array(store=str(tmp_path / "damage.zarr"), shape=(96, 96),
                               chunks=(48, 48), dtype="uint8")
    damaged = np.zeros((96, 96), dtype=np.uint8)
    damaged[:24, :48] = 1
    damage[:] = damaged
    out = tmp_path / "run"
    code, _, stderr = cli("train", "edge-gan", "--data", tmp_path / "scan.zarr", "--scan-mask",
                          tmp_path / "damage.zarr", "--samples", 8, "--steps", 2, *FAST,
                          "--out", out, *TINY_OPTIONS)
    assert code == 0, stderr
    info = sidecar(out / "edge-gan.json")
    assert info["step"] == 2
    description = info["training_data"]
    assert description["kind"] == "scan" and description["size"] == 32
    assert description["damage_mask"] == str(tmp_path / "damage.zarr")
    assert description["damaged_fraction"] == pytest.approx(24 * 48 / 96**2)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--scan-mask", "damage.zarr"], "--scan-mask is for a zarr scan, but --data"),
        (["--option", "depth=3"], "unknown option 'depth' for EdgeGanConfig; valid: base_channels"),
        (["--option", "base_channels"], "--option 'base_channels' must look like key=value"),
        (
            ["--option", "prior=lama"],
            "option prior='lama' is not valid; expected one of none, telea, blend",
        ),
    ],
)
def test_train_option_errors(tmp_path: Path, extra: list[str], message: str) -> None:
    data = make_images(tmp_path / "images", count=2)
    code, _, stderr = cli("train", "edge-gan", "--data", data, "--steps", 1, *FAST,
                          "--out", tmp_path / "run", *TINY_OPTIONS, *extra)
    assert code == 2 and stderr.startswith("inpaint: error: ") and message in stderr
    assert not (tmp_path / "run" / "edge-gan.safetensors").exists()


def test_train_refuses_bad_commands(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = make_images(tmp_path / "images", count=2)
    base = ["train", "edge-gan", "--data", data, "--steps", 1, *FAST]
    code, _, stderr = cli("train", "telea", "--data", data, "--steps", 1, "--out", tmp_path / "t")
    assert code == 2 and "method 'telea' is not learned; learned methods: " in stderr
    assert "edge-gan" in stderr.split("learned methods: ")[1]
    code, _, stderr = cli(*base, *TINY_OPTIONS)
    assert code == 2 and "--out DIR is required" in stderr
    code, _, stderr = cli(*base, "--resume", tmp_path / "run", "--option", "base_channels=8")
    assert code == 2 and "--option cannot change a resumed run's settings" in stderr
    code, _, stderr = cli("train", "edge-gan", "--data", tmp_path / "missing", "--steps", 1,
                          "--out", tmp_path / "run", *TINY_OPTIONS)
    assert code == 2 and f"--data '{tmp_path / 'missing'}' does not exist" in stderr
    code, _, stderr = cli(*base, "--resume", tmp_path / "nothing")
    assert code == 2 and "nothing" in stderr
    code, _, stderr = cli(*base, "--out", tmp_path / "run", "--precision", "bf16", *TINY_OPTIONS)
    assert code == 2 and "precision 'bf16' needs a CUDA device, not cpu" in stderr
    # Without the fallback option, edge-gan wants VGG-19 weights (the paper's texture loss).
    monkeypatch.delenv(VGG19_WEIGHTS_ENV, raising=False)
    code, _, stderr = cli(*base, "--out", tmp_path / "vgg")
    assert code == 2 and "no VGG-19 weights given" in stderr
    assert "texture_loss=discriminator-features" in stderr


def test_train_refuses_to_overwrite_a_run(trained: tuple[Path, Path, str]) -> None:
    data, out, _ = trained
    code, _, stderr = cli("train", "edge-gan", "--data", data, "--steps", 8, *FAST,
                          "--out", out, *TINY_OPTIONS)
    assert code == 2 and f"pass --resume {out} to continue it" in stderr


# --- inpaint run with the trained weights ------------------------------------------------------
@pytest.fixture
def damaged(tmp_path: Path, rgb_image: np.ndarray, hole_mask: np.ndarray) -> dict[str, Path]:
    return {
        "image": write_image(tmp_path / "image.png", rgb_image),
        "mask": write_image(tmp_path / "mask.png", hole_mask.astype(np.uint8) * 255),
    }


def test_run_with_trained_weights_writes_the_edges(
    trained: tuple[Path, Path, str], damaged: dict[str, Path], tmp_path: Path,
    rgb_image: np.ndarray, hole_mask: np.ndarray,
) -> None:
    weights = trained[1] / "edge-gan.safetensors"
    output = tmp_path / "X.png"
    code, stdout, stderr = cli("run", damaged["image"], damaged["mask"], "--method", "edge-gan",
                               "--weights", weights, "--device", "cpu", "--output", output,
                               "--param", "show_edges=true")
    assert code == 0, stderr
    restored = read_image(output)
    assert restored.shape == rgb_image.shape and restored.dtype == np.uint8
    assert np.array_equal(restored[~hole_mask], rgb_image[~hole_mask])
    edges = read_image(tmp_path / "X.edges.png")
    assert edges.shape == hole_mask.shape and edges.dtype == np.uint8
    assert f"wrote {tmp_path / 'X.edges.png'} (edges)" in stdout
    assert f"wrote {output} (edge-gan" in stdout
    # Without show_edges no extra file is written.
    code, _, stderr = cli("run", damaged["image"], damaged["mask"], "--method", "edge-gan",
                          "--weights", weights, "--device", "cpu", "--output",
                          tmp_path / "Y.png")
    assert code == 0, stderr
    assert not (tmp_path / "Y.edges.png").exists()
    assert np.array_equal(read_image(tmp_path / "Y.png"), restored)


def test_run_refuses_weights_for_other_methods(damaged: dict[str, Path], tmp_path: Path) -> None:
    args = ["run", damaged["image"], damaged["mask"], "--output", tmp_path / "out.png"]
    code, _, stderr = cli(*args, "--method", "telea", "--weights", tmp_path / "w.safetensors")
    assert code == 2 and "method 'telea' takes no --weights (it has no 'weights')" in stderr
    code, _, stderr = cli(*args, "--method", "telea", "--device", "cpu")
    assert code == 2 and "method 'telea' takes no --device" in stderr
    code, _, stderr = cli(*args, "--method", "edge-gan", "--weights", tmp_path / "a.safetensors",
                          "--param", "weights=b.safetensors")
    assert code == 2 and "--weights and --param weights=... are both given" in stderr
    missing = tmp_path / "none.safetensors"
    code, _, stderr = cli(*args, "--method", "edge-gan", "--weights", missing, "--device", "cpu")
    assert code == 2 and f"weights file {missing} given for method 'edge-gan'" in stderr
    assert not (tmp_path / "out.png").exists()


def test_same_seed_gives_the_same_weights(tmp_path: Path) -> None:
    from inpaint_core.checkpoint import load_checkpoint

    data = make_images(tmp_path / "images", count=2)
    weights = []
    for global_seed in (1, 2):  # whatever ran before in the process
        torch.manual_seed(global_seed)
        out = tmp_path / f"run{global_seed}"
        code, _, stderr = cli("train", "edge-gan", "--data", data, "--steps", 1, *FAST,
                              "--seed", 3, "--out", out, *TINY_OPTIONS)
        assert code == 0, stderr
        weights.append(load_checkpoint(out / "edge-gan.safetensors")[0])
    assert all(torch.equal(weights[0][key], weights[1][key]) for key in weights[0])


def test_time_limit_stops_early_with_a_checkpoint(tmp_path: Path) -> None:
    data = make_images(tmp_path / "images", count=2)
    out = tmp_path / "run"
    code, stdout, stderr = cli("train", "edge-gan", "--data", data, "--steps", 50, *FAST,
                               "--out", out, *TINY_OPTIONS, "--time-limit", "1e-6")
    assert code == 0, stderr
    assert sidecar(out / "edge-gan.json")["step"] == 1  # polled after each step: one step ran
    assert f"stopped at step 1 of 50 (--time-limit); continue with --resume {out}" in stdout
    bad = tmp_path / "bad"
    code, _, stderr = cli("train", "edge-gan", "--data", data, "--steps", 2, *FAST,
                          "--out", bad, *TINY_OPTIONS, "--time-limit", "0")
    assert code == 2 and "--time-limit 0.0 must be a number of minutes > 0" in stderr


def test_a_failed_train_leaves_no_empty_folders(tmp_path: Path) -> None:
    """The device is checked inside the trainer, after its checkpoints/ folder was made."""
    data = make_images(tmp_path / "images")
    out = tmp_path / "run"
    fast = [arg if arg != "cpu" else "cuda:7" for arg in FAST]
    code, _, stderr = cli("train", "edge-gan", "--data", data, "--steps", 1, *fast,
                          "--out", out, *TINY_OPTIONS)
    assert code == 2, stderr
    assert "cuda" in stderr
    assert not out.exists()
