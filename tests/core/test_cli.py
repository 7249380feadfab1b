"""The ``inpaint`` command: listing, running, and exit status 2 with a message for every error."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import inpaint_core
from inpaint_core.cli import main
from inpaint_core.io import read_image, read_mask, write_image


@pytest.fixture
def files(tmp_path: Path, rgb_image: np.ndarray, hole_mask: np.ndarray) -> dict[str, Path]:
    """A small damaged image and its mask as PNG files."""
    return {
        "image": write_image(tmp_path / "image.png", rgb_image),
        "mask": write_image(tmp_path / "mask.png", hole_mask.astype(np.uint8) * 255),
        "out": tmp_path / "restored.png",
    }


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = main([str(arg) for arg in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_version(capsys) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--version"])
    assert exited.value.code == 0
    assert capsys.readouterr().out.strip() == f"inpaint {inpaint_core.__version__}"


def test_methods_table_and_json(capsys) -> None:
    code, out, _ = run_cli(capsys, "methods")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split() == ["name", "family", "learned", "summary"]
    assert any(line.split()[:3] == ["exemplar", "classical", "no"] for line in lines[1:])
    code, out, _ = run_cli(capsys, "methods", "--json")
    rows = {row["name"]: row for row in json.loads(out)}
    assert {"telea", "navier-stokes", "biharmonic", "exemplar"} <= set(rows)
    assert rows["telea"]["plugin"] == "inpaint_methods.classical"
    assert rows["telea"]["parameters"][0]["name"] == "radius"


def test_methods_name_shows_parameters(capsys) -> None:
    code, out, _ = run_cli(capsys, "methods", "telea")
    assert code == 0
    assert "radius (int, default 5 in [1, 100])" in out and "Telea" in out


def test_run_writes_the_restored_image(capsys, files, rgb_image, hole_mask) -> None:
    code, out, err = run_cli(
        capsys, "run", files["image"], files["mask"], "--method", "telea",
        "--param", "radius=3", "--output", files["out"],
    )
    assert (code, err) == (0, "")
    assert "120 hole pixels" in out
    restored = read_image(files["out"])
    assert restored.dtype == np.uint8 and restored.shape == rgb_image.shape
    assert np.array_equal(restored[~hole_mask], rgb_image[~hole_mask])
    # a smooth gradient is filled closely (Telea's averaging costs ~8 levels here; a broken
    # fill, like OpenCV 5's float32 Telea, is off by over 100)
    assert np.abs(restored[hole_mask].astype(int) - rgb_image[hole_mask]).mean() < 12


def test_run_keeps_16_bit(capsys, tmp_path, hole_mask) -> None:
    ramp = np.linspace(0, 65535, 56, dtype=np.float64)[np.newaxis, :].repeat(40, axis=0)
    image = write_image(tmp_path / "deep.tif", np.rint(ramp).astype(np.uint16))
    mask = write_image(tmp_path / "mask.tif", hole_mask)
    code, _, err = run_cli(capsys, "run", image, mask, "-m", "biharmonic", "-o", tmp_path / "o.png")
    assert code == 0, err
    restored = read_image(tmp_path / "o.png")
    assert restored.dtype == np.uint16
    assert np.abs(restored[hole_mask].astype(float) - ramp[hole_mask]).max() < 200  # < 1 in 8 bit


def test_overwrite_is_refused_then_allowed(capsys, files) -> None:
    files["out"].write_bytes(b"precious")
    argv = ["run", files["image"], files["mask"], "--method", "telea", "--output", files["out"]]
    code, _, err = run_cli(capsys, *argv)
    assert code == 2 and "already exists; choose another path or pass --overwrite" in err
    assert files["out"].read_bytes() == b"precious"
    code, _, err = run_cli(capsys, *argv, "--overwrite")
    assert code == 0 and read_image(files["out"]).shape == (40, 56, 3)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"method": "teela"}, "unknown method 'teela'; valid methods: biharmonic, "),
        ({"param": "radious=3"}, "method 'telea' has no parameter 'radious'; its parameters"),
        ({"param": "radius=0"}, r"method 'telea': radius=0 is out of range [1, 100]"),
        ({"param": "radius=big"}, "radius='big' must be int"),
        ({"param": "radius"}, "--param 'radius' must look like key=value"),
        ({"output": "image"}, "is the input file"),
        ({"output": "mask"}, "is the input file"),
        ({"image": "missing.png"}, "missing.png': no such file"),
        ({"image": "notes.txt"}, "unsupported file type '.txt'"),
        ({"output": "out.jpg"}, "cannot write '"),
    ],
)
def test_errors_exit_2_with_a_message(capsys, files, change, message) -> None:
    (files["image"].parent / "notes.txt").write_text("not an image")
    paths = {key: files[key] for key in ("image", "mask")}
    paths["output"] = files["out"]
    for key in ("image", "output"):
        if key in change:
            value = change[key]
            paths[key] = files[value] if value in files else files["image"].parent / value
    code, out, err = run_cli(
        capsys, "run", paths["image"], paths["mask"], "--method", change.get("method", "telea"),
        "--param", change.get("param", "radius=3"), "--output", paths["output"],
    )
    assert code == 2
    assert err.startswith("inpaint: error: ") and message in err
    assert "Traceback" not in err and out == ""


@pytest.mark.parametrize(
    ("image", "mask", "message"),
    [
        (np.zeros((20, 30, 3), np.uint8), np.ones((20, 31), np.uint8),
         "mask shape (20, 31) does not match image (20, 30)"),
        (np.zeros((20, 30, 3), np.uint8), np.ones((20, 30), np.uint8),
         "mask covers every pixel"),
        (np.full((20, 30), np.nan, np.float32), np.ones((20, 30), np.uint8),
         "image contains 600 NaN or infinite values (first at row 0, column 0)"),
        (np.zeros((20, 30, 3), np.int32), np.ones((20, 30), np.uint8),
         "image dtype int32 is not supported"),
        (np.zeros((20, 30, 2), np.uint8), np.ones((20, 30), np.uint8),
         "image has 2 channels"),
    ],
)
def test_bad_arrays_in_files_exit_2(capsys, tmp_path, image, mask, message) -> None:
    import tifffile

    tifffile.imwrite(tmp_path / "image.tif", image, photometric="minisblack")
    tifffile.imwrite(tmp_path / "mask.tif", mask)
    code, _, err = run_cli(capsys, "run", tmp_path / "image.tif", tmp_path / "mask.tif",
                           "-o", tmp_path / "out.tif")
    assert code == 2 and message in err, err
    assert not (tmp_path / "out.tif").exists()


def test_console_script_runs_exemplar_on_the_sample(samples, tmp_path) -> None:
    script = shutil.which("inpaint", path=str(Path(sys.executable).parent))
    assert script, "the inpaint console script is not installed beside this Python"
    output = tmp_path / "restored.png"
    result = subprocess.run(
        [script, "run", samples / "astronaut_damaged.png", samples / "astronaut_mask.png",
         "--method", "exemplar", "--output", output],
        capture_output=True, text=True,
    )
    assert result.returncode == 0, result.stderr
    damaged = read_image(samples / "astronaut_damaged.png")
    mask = read_mask(samples / "astronaut_mask.png") != 0
    restored = read_image(output)
    assert np.array_equal(restored[~mask], damaged[~mask])
    original = read_image(samples / "eval" / "astronaut.png")
    error = np.abs(restored[mask].astype(int) - original[mask]).mean()
    damage = np.abs(damaged[mask].astype(int) - original[mask]).mean()
    assert error < damage / 2  # the fill is much closer to the truth than the damage was


def test_console_script_error_has_no_traceback(tmp_path) -> None:
    script = shutil.which("inpaint", path=str(Path(sys.executable).parent))
    result = subprocess.run(
        [script, "run", tmp_path / "a.png", tmp_path / "b.png", "-o", tmp_path / "c.png"],
        capture_output=True, text=True,
    )
    assert result.returncode == 2
    assert result.stderr.startswith("inpaint: error: cannot read")
    assert "Traceback" not in result.stderr


def test_evaluate_writes_csv_report_plot_and_sheet(capsys, tmp_path, samples) -> None:
    out = tmp_path / "eval"
    code, stdout, err = run_cli(
        capsys, "evaluate", "--data", samples / "eval", "--methods", "telea", "--size", "48",
        "--out", out, "--sheet-images", "1",
    )
    assert code == 0, err
    assert "24 results (0 failed)" in stdout
    assert {path.name for path in out.iterdir()} == {
        "results.csv", "run.json", "report.md", "psnr_vs_ratio.png", "contact_sheet.png",
    }
    report = (out / "report.md").read_text()
    assert "| telea |" in report and "centre 25%" in report and "free-form 40%" in report
    assert f"inpaint evaluate --data {samples / 'eval'}" in report
    assert read_image(out / "psnr_vs_ratio.png").shape[2] == 3
    assert "evaluate [########################] 24/24" in err  # the progress bar
    # a rerun resumes: nothing is added to the CSV
    lines = (out / "results.csv").read_text().count("\n")
    assert run_cli(capsys, "evaluate", "--data", samples / "eval", "--methods", "telea",
                   "--size", "48", "--out", out)[0] == 0
    assert (out / "results.csv").read_text().count("\n") == lines


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--methods", "teela"], "unknown method 'teela'"),
        (["--device", "gpu"], "unknown device 'gpu'"),
        (["--size", "4"], "size=4 is too small"),
        (["--masks", "nowhere.png"], "neither 'survey', a file nor a folder"),
    ],
)
def test_evaluate_errors_exit_2(capsys, tmp_path, samples, extra, message) -> None:
    code, _, err = run_cli(capsys, "evaluate", "--data", samples / "eval", "--out",
                           tmp_path / "eval", *extra)
    assert code == 2 and message in err and "Traceback" not in err
