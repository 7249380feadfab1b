"""The evaluation runner: survey cases, user masks, failure isolation, resume, devices."""

from __future__ import annotations

import io
import json
import math
from pathlib import Path

import numpy as np
import pytest

from inpaint_core.devices import resolve_device
from inpaint_core.errors import InvalidInputError, UnknownMethodError
from inpaint_core.evaluation.results import read_rows
from inpaint_core.evaluation.runner import evaluate, survey_mask_specs
from inpaint_core.io import write_image
from inpaint_core.progress import ProgressBar, format_seconds

FAILING_PLUGIN = """
    from inpaint_core import Family, InpaintMethod, MethodInfo, hookimpl

    class AlwaysFails(InpaintMethod):
        info = MethodInfo("always-fails", Family.OTHER, "fails", "none")

        def run(self, image, mask, rng):
            raise RuntimeError("out of cheese")

    @hookimpl
    def register_inpaint_methods(register):
        register(AlwaysFails)
"""


ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def image_folder(tmp_path):
    """Two small photographs-like images (one RGB PNG, one grey 16-bit TIFF in a subfolder)."""
    folder = tmp_path / "images"
    (folder / "sub").mkdir(parents=True)
    rows, columns = np.mgrid[0:48, 0:40].astype(np.float64)
    rgb = np.stack([rows / 47, columns / 39, 0.5 + 0.4 * np.sin(rows / 4)], axis=2)
    write_image(folder / "a.png", np.rint(rgb * 255).astype(np.uint8))
    write_image(folder / "sub" / "b.tif", np.rint(rgb[..., 1] * 65535).astype(np.uint16))
    return folder


def test_survey_protocol_cases() -> None:
    labels = [spec.label for spec in survey_mask_specs()]
    assert labels == [
        "centre-10", "centre-15", "centre-20", "centre-25",
        "free_form-10", "free_form-20", "free_form-30", "free_form-40",
    ]


def test_every_image_mask_method_gets_a_row(image_folder) -> None:
    calls = []
    evaluation = evaluate(image_folder, ["telea", "biharmonic"], size=32,
                          progress=lambda done, total: calls.append((done, total)))
    rows = evaluation.rows
    assert len(rows) == 2 * 8 * 2 and calls[-1] == (32, 32)
    assert {row.image for row in rows} == {"a.png", "sub/b.tif"}
    for row in rows:
        assert row.ok and row.error == ""
        assert abs(row.hole_ratio - row.target_ratio) <= 0.01
        assert 0 < row.psnr_hole < row.psnr  # the known pixels are exact, the hole is not
        assert 0 < row.ssim <= 1 and row.l1_hole > row.l1 > 0
        assert row.seconds > 0 and row.peak_ram_mb >= 0 and math.isnan(row.peak_gpu_mb)
    # the contact sheet keeps the last mask column of the first images, with every method
    assert [example.image for example in evaluation.examples] == [
        "a.png free_form-40", "sub/b.tif free_form-40",
    ]
    example = evaluation.examples[0]
    assert example.truth.shape == (32, 32, 3) and example.mask.dtype == bool
    assert set(example.results) == {"telea", "biharmonic"}


def test_masks_are_seeded(image_folder) -> None:
    first = evaluate(image_folder, ["telea"], size=32, seed=3).rows
    second = evaluate(image_folder, ["telea"], size=32, seed=3).rows
    third = evaluate(image_folder, ["telea"], size=32, seed=4).rows
    assert [r.psnr for r in first] == [r.psnr for r in second]
    assert [r.psnr for r in first] != [r.psnr for r in third]


def test_a_failing_method_is_reported_and_the_others_complete(image_folder, make_plugin):
    make_plugin("failing", FAILING_PLUGIN)
    rows = evaluate(image_folder, ["always-fails", "telea"], size=32).rows
    failed = [row for row in rows if row.method == "always-fails"]
    assert len(failed) == 16 and all(not row.ok for row in failed)
    assert failed[0].error == "RuntimeError: out of cheese" and math.isnan(failed[0].psnr)
    assert all(row.ok for row in rows if row.method == "telea")


def test_resume_keeps_done_rows_and_refuses_other_options(image_folder, tmp_path) -> None:
    out = tmp_path / "out"
    evaluate(image_folder, ["telea"], size=32, out=out, sheet_images=0)
    csv_path = out / "results.csv"
    text = csv_path.read_text().splitlines()
    # mark one stored row, so we can tell a kept row from a recomputed one
    header, first = text[0], text[1].split(",")
    first[header.split(",").index("psnr")] = "99.5"
    csv_path.write_text("\n".join([header, ",".join(first), *text[2:]]) + "\n")
    rows = evaluate(image_folder, ["telea", "navier-stokes"], size=32, out=out,
                    sheet_images=0).rows
    assert 99.5 in [row.psnr for row in rows]
    stored = read_rows(csv_path)
    assert len(stored) == 32  # 16 kept + 16 new, none twice
    assert len({row.key for row in stored}) == 32
    with pytest.raises(InvalidInputError, match=r"holds results made with .*'size': 32.*"
                       r"'size': 48"):
        evaluate(image_folder, ["telea"], size=48, out=out)


def test_fingerprint_names_parameters_and_weights(tmp_path) -> None:
    from inpaint_core.api import get_method
    from inpaint_core.checkpoint import checkpoint_paths
    from inpaint_core.evaluation.runner import method_fingerprint

    telea = get_method("telea")
    assert method_fingerprint(telea()) == method_fingerprint(telea(radius=5))
    assert method_fingerprint(telea(radius=3)) != method_fingerprint(telea())
    shipped = get_method("glcic")()
    weights, sidecar = checkpoint_paths(shipped.weights_path())
    other = tmp_path / "glcic.safetensors"
    other.write_bytes(weights.read_bytes())
    info = json.loads(sidecar.read_text())
    info["sha256"] = "0" * 64  # a retrained file: another sha256 in its sidecar
    checkpoint_paths(other)[1].write_text(json.dumps(info))
    assert method_fingerprint(get_method("glcic")(weights=str(other))) != method_fingerprint(
        shipped
    )


def test_rows_of_another_fingerprint_are_recomputed_not_reused(
    image_folder, tmp_path, monkeypatch
) -> None:
    from inpaint_core.evaluation import runner

    out = tmp_path / "out"
    monkeypatch.setattr(runner, "method_fingerprint", lambda method: "old-weights")
    evaluate(image_folder, ["telea"], size=32, out=out, sheet_images=0)
    monkeypatch.setattr(runner, "method_fingerprint", lambda method: "new-weights")
    rows = evaluate(image_folder, ["telea"], size=32, out=out, sheet_images=0).rows
    assert {row.fingerprint for row in rows} == {"new-weights"} and len(rows) == 16
    stored = read_rows(out / "results.csv")  # the old rows stay on record, never reused
    assert [row.fingerprint for row in stored].count("old-weights") == 16
    assert len(stored) == 32


def test_a_results_file_of_another_version_is_refused(image_folder, tmp_path) -> None:
    out = tmp_path / "out"
    evaluate(image_folder, ["telea"], size=32, out=out, sheet_images=0)
    csv_path = out / "results.csv"
    lines = csv_path.read_text().splitlines()
    csv_path.write_text("\n".join(line.rsplit(",", 1)[0] for line in lines) + "\n")
    with pytest.raises(InvalidInputError, match=r"another version of napari-inpaint"):
        evaluate(image_folder, ["telea"], size=32, out=out)


def test_report_names_the_weights_and_budget_of_each_learned_method(
    image_folder, tmp_path
) -> None:
    from inpaint_core.evaluation.outputs import write_reports

    evaluation = evaluate(image_folder, ["glcic", "telea"], size=32, sheet_images=0)
    sidecar = json.loads((ROOT / "plugins/method_registry/inpaint_methods/weights/glcic.json")
                         .read_text())
    budget = evaluation.weights["glcic"]
    assert set(evaluation.weights) == {"glcic"}  # classical methods have no weights
    assert budget["steps"] == sidecar["step"] and budget["sha256"] == sidecar["sha256"][:12]
    assert budget["command"] == sidecar["extra"]["recipe"]["command"]
    written = write_reports(evaluation, tmp_path / "out", title="t")
    text = written["report"].read_text()
    section = text.split("## Learned methods: the weights scored", 1)[1].split("\n## ", 1)[0]
    assert budget["source"] == "trained here"
    assert (
        f"| `glcic` | trained here | `{budget['sha256']}` | {budget['prior']} | "
        f"{sidecar['step']} |" in section
    )
    assert "telea" not in section.split("Training commands")[0]
    assert sidecar["extra"]["recipe"]["command"] in section


def test_user_masks_single_file_and_paired_folder(image_folder, tmp_path) -> None:
    one = np.zeros((64, 64), np.uint8)
    one[10:30, 20:40] = 255
    mask_file = write_image(tmp_path / "damage.png", one)
    rows = evaluate(image_folder, ["telea"], mask_file, size=32).rows
    assert [row.mask for row in rows] == ["damage.png", "damage.png"]
    assert rows[0].mask_kind == "custom" and math.isnan(rows[0].target_ratio)
    assert rows[0].hole_ratio == pytest.approx(400 / 4096, abs=0.01)
    folder = tmp_path / "masks"
    folder.mkdir()
    with pytest.raises(InvalidInputError, match=r"--masks .*masks' holds no images"):
        evaluate(image_folder, ["telea"], folder, size=32)
    write_image(folder / "a.png", one)
    with pytest.raises(InvalidInputError, match=r"no mask in .* named like 1 image\(s\), e\.g\. "
                       r"'sub/b\.tif'"):
        evaluate(image_folder, ["telea"], folder, size=32)
    write_image(folder / "b.tif", one[::-1])
    rows = evaluate(image_folder, ["telea"], folder, size=32).rows
    assert [row.mask for row in rows] == ["a.png", "b.tif"]


def test_bad_arguments_are_refused(image_folder, tmp_path) -> None:
    with pytest.raises(UnknownMethodError, match="unknown method 'teela'"):
        evaluate(image_folder, ["teela"])
    with pytest.raises(InvalidInputError, match=r"--data .*nowhere' is not a directory"):
        evaluate(tmp_path / "nowhere", ["telea"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(
        InvalidInputError, match=r"--data .*empty' holds no images; expected files ending in \.png"
    ):
        evaluate(tmp_path / "empty", ["telea"])
    with pytest.raises(InvalidInputError, match="size=8 is too small"):
        evaluate(image_folder, ["telea"], size=8)
    with pytest.raises(InvalidInputError, match="neither 'survey', a file nor a folder"):
        evaluate(image_folder, ["telea"], tmp_path / "missing.png", size=32)


def test_devices_are_checked_never_silently_replaced() -> None:
    import torch

    assert resolve_device("cpu") == "cpu"
    assert resolve_device("auto") in ("cpu", "cuda", "mps")
    with pytest.raises(InvalidInputError, match="unknown device 'gpu'; use one of: auto, cpu"):
        resolve_device("gpu")
    if not torch.cuda.is_available():
        with pytest.raises(InvalidInputError, match="'cuda:1' requested but CUDA is not"):
            resolve_device("cuda:1")


def test_progress_bar_lines() -> None:
    stream = io.StringIO()
    bar = ProgressBar("evaluate", "case", stream=stream, interval=0.0)
    bar.started = 100.0
    assert bar.line(0, 10, now=100.0).endswith("0/10 0.00 case/s ETA ?")
    assert bar.line(5, 10, now=110.0) == (
        "evaluate [############------------] 5/10 0.50 case/s ETA 0:00:10"
    )
    bar(10, 10)
    assert stream.getvalue().splitlines()[-1].startswith("evaluate [########################]")
    assert format_seconds(3725.2) == "1:02:05"
