"""The evaluation report: survey tables, resources, failures, the ratio plot, the contact sheet."""

from __future__ import annotations

import logging
import math
import sys

import numpy as np
import pytest

from inpaint_core.errors import InvalidInputError
from inpaint_core.evaluation.report import (
    CAPTION_HEIGHT,
    FAILED_GREY,
    HOLE_COLOUR,
    SheetExample,
    contact_sheet,
    failures_table,
    mask_columns,
    plot_psnr_vs_ratio,
    render_markdown,
    resources_table,
    survey_table,
)
from inpaint_core.evaluation.results import EvalRow
from inpaint_core.io import read_image

NAN = math.nan
KINDS = {
    "centre-10": ("centre", 0.10),
    "centre-25": ("centre", 0.25),
    "free_form-10": ("free_form", 0.10),
    "scratch.png": ("custom", NAN),
}


def _row(method, mask, image, psnr=NAN, *, l1=NAN, seconds=1.0, ram=100.0, gpu=NAN, error=""):
    kind, ratio = KINDS[mask]
    failed = bool(error)
    return EvalRow(
        image=image, mask=mask, mask_kind=kind, target_ratio=ratio,
        hole_ratio=0.07 if math.isnan(ratio) else ratio, method=method,
        status="failed" if failed else "ok", psnr=psnr, ssim=NAN if failed else psnr / 40,
        psnr_hole=psnr - 10, ssim_hole=NAN if failed else psnr / 50, l1=l1,
        l1_hole=l1 * 2, seconds=seconds, peak_ram_mb=ram, peak_gpu_mb=gpu, error=error,
    )


# Deliberately out of protocol order. alpha fails every free-form image (a "failed" cell) and
# one of its two custom-mask images (a partial mean); beta never ran the custom mask ("–").
ROWS = [
    _row("beta", "free_form-10", "a.png", 33.0, l1=0.05, seconds=0.5, ram=50, gpu=10),
    _row("alpha", "scratch.png", "a.png", 20.0, l1=0.2, seconds=3.0, ram=400),
    _row(
        "alpha",
        "scratch.png",
        "b.png",
        error="RuntimeError: out of memory\n  at line 3",
        seconds=50.0,
        ram=900,
    ),
    _row("alpha", "free_form-10", "a.png", error="ValueError: bad mask", seconds=50.0),
    _row("alpha", "free_form-10", "b.png", error="ValueError: bad mask", seconds=50.0),
    _row("alpha", "centre-25", "b.png", 26.0, l1=0.1, seconds=2.0, ram=300),
    _row("beta", "centre-25", "a.png", 24.0, l1=0.1, seconds=0.5, ram=60, gpu=30),
    _row("alpha", "centre-25", "a.png", 25.0, l1=0.1, seconds=2.0, ram=300),
    _row("beta", "centre-10", "a.png", 28.0, l1=0.01, seconds=0.5, ram=70, gpu=20),
    _row("alpha", "centre-10", "a.png", 30.0, l1=0.02, seconds=1.0, ram=200),
    _row("beta", "centre-25", "b.png", 27.0, l1=0.1, seconds=0.5, ram=80, gpu=20),
    _row("alpha", "centre-10", "b.png", 32.0, l1=0.04, seconds=1.0, ram=250),
    _row("beta", "free_form-10", "b.png", 34.0, l1=0.05, seconds=0.5, ram=50, gpu=10),
    _row("beta", "centre-10", "b.png", 29.0, l1=0.03, seconds=0.5, ram=50, gpu=10),
]


def _parse(table: str) -> tuple[list[str], dict[str, list[str]]]:
    """A Markdown table -> (header cells, first cell -> the other cells of its row)."""
    lines = [line for line in table.splitlines() if line.startswith("|")]
    cells = [[cell.strip() for cell in line.strip("|").split(" | ")] for line in lines]
    return cells[0], {row[0]: row[1:] for row in cells[2:]}


def test_columns_come_in_protocol_order_with_survey_headers() -> None:
    assert mask_columns(ROWS) == ["centre-10", "centre-25", "free_form-10", "scratch.png"]
    header, body = _parse(survey_table(ROWS))
    assert header == ["method", "centre 10%", "centre 25%", "free-form 10%", "scratch.png"]
    assert list(body) == ["alpha", "beta"]


def test_columns_sort_ratios_numerically_then_other_kinds_then_custom_by_name() -> None:
    kinds = [("free_form-40", "free_form", 0.4), ("custom-b.png", "custom", NAN),
             ("cracks-10", "cracks", 0.1), ("free_form-5", "free_form", 0.05),
             ("a.png", "custom", NAN), ("rectangles-10", "rectangles", 0.1),
             ("centre-100", "centre", 1.0), ("centre-20", "centre", 0.2)]
    rows = [EvalRow("x.png", label, kind, ratio, 0.1, "m", "ok") for label, kind, ratio in kinds]
    expected = ["centre-20", "centre-100", "free_form-5", "free_form-40", "rectangles-10"]
    assert mask_columns(rows) == [*expected, "cracks-10", "a.png", "custom-b.png"]


def test_cells_are_means_with_the_best_bold_ties_failed_and_missing() -> None:
    table = survey_table(ROWS, "psnr")
    _, body = _parse(table)
    # centre-10: alpha (30+32)/2=31 beats beta 28.5; centre-25: (25+26)/2 = (24+27)/2, a tie;
    # free-form: alpha failed everywhere; custom: alpha has one of two images, beta none.
    assert body["alpha"] == ["**31.00**", "**25.50**", "failed", "**20.00**†"]
    assert body["beta"] == ["28.50", "**25.50**", "**33.50**", "–"]
    assert "† mean over the images the method did not fail on" in table
    _, digits = _parse(survey_table(ROWS, "psnr", digits=1))
    assert digits["beta"][0] == "28.5"


def test_lower_is_better_bolds_the_smallest_error() -> None:
    _, body = _parse(survey_table(ROWS, "l1", higher_is_better=False))
    # centre-10: alpha (0.02+0.04)/2 = 0.03, beta (0.01+0.03)/2 = 0.02.
    assert body["alpha"][0] == "0.03" and body["beta"][0] == "**0.02**"
    _, higher = _parse(survey_table(ROWS, "l1"))
    assert higher["alpha"][0] == "**0.03**"


def test_unknown_metric_names_the_valid_ones() -> None:
    with pytest.raises(InvalidInputError, match=r"unknown metric 'psnrr'.*psnr_hole.*l1_hole"):
        survey_table(ROWS, "psnrr")


def test_resources_table_means_time_over_ok_rows_and_takes_peak_memory() -> None:
    header, body = _parse(resources_table(ROWS))
    assert header[0] == "method" and header[-1] == "failures"
    # alpha: 8 runs, ok times 3, 2, 2, 1, 1 -> 1.8 (failures' 50 s ignored); RAM peak 900 from
    # a failure; no GPU figures at all.
    assert body["alpha"] == ["8", "1.800", "900.0", "–", "3"]
    assert body["beta"] == ["6", "0.500", "80.0", "30.0", "0"]


def test_failures_list_first_lines_and_nothing_when_clean() -> None:
    text = failures_table(ROWS)
    lines = text.splitlines()
    assert len(lines) == 3
    assert lines[0] == "- `alpha` × `free_form-10` × `a.png`: ValueError: bad mask"
    assert lines[2] == "- `alpha` × `scratch.png` × `b.png`: RuntimeError: out of memory"
    assert "line 3" not in text
    assert failures_table([row for row in ROWS if row.ok]) == ""


def test_render_markdown_has_every_section() -> None:
    command = "inpaint evaluate data/ --methods alpha,beta"
    text = render_markdown(ROWS, title="Survey run", command=command, notes="Seeds fixed.")
    assert text.startswith("# Survey run\n")
    assert f"```bash\n{command}\n```" in text
    headings = ["PSNR (dB), whole image", "SSIM, whole image", "PSNR (dB), hole only"]
    headings += ["SSIM, hole only", "L1 error, whole image", "Resources", "Failures", "Notes"]
    positions = [text.index(f"## {heading}") for heading in headings]
    assert positions == sorted(positions)
    assert "**33.50**" in text and "out of memory" in text and "Seeds fixed." in text
    assert "```bash" not in render_markdown(ROWS, title="t")


def test_plot_writes_an_rgb_png(tmp_path) -> None:
    path = plot_psnr_vs_ratio(ROWS, tmp_path / "psnr.png")
    assert path == tmp_path / "psnr.png"
    image = read_image(path)
    assert image.ndim == 3 and image.shape[2] == 3 and image.size > 0
    assert image.min() < 100  # something is drawn on the white background
    assert sorted(p.name for p in tmp_path.iterdir()) == ["psnr.png"]  # no temporary left


def test_plot_without_matplotlib_warns_and_returns_none(tmp_path, monkeypatch, caplog) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with caplog.at_level(logging.WARNING, logger="inpaint_core.evaluation.report"):
        assert plot_psnr_vs_ratio(ROWS, tmp_path / "psnr.png") is None
    assert "pip install matplotlib" in caplog.text
    assert not (tmp_path / "psnr.png").exists()


def _example(name, height, width, grey, *, beta_fails):
    rng = np.random.default_rng(height)
    truth = rng.uniform(0.2, 0.8, (height, width, 1 if grey else 3)).astype(np.float32)
    mask = np.zeros((height, width), bool)
    mask[height // 4 : 3 * height // 4, width // 4 : 3 * width // 4] = True
    results = {"alpha": np.full_like(truth, 0.9), "beta": None if beta_fails else truth * 0.5}
    return SheetExample(image=name, truth=truth, mask=mask, results=results)


def test_contact_sheet_layout_hole_colour_and_failed_tiles(tmp_path) -> None:
    tile = 40
    examples = [
        _example("a.png centre-25", 20, 30, grey=False, beta_fails=False),
        _example("b.png free_form-10", 20, 30, grey=True, beta_fails=True),
    ]
    path = contact_sheet(examples, tmp_path / "sheet.png", tile=tile)
    sheet = read_image(path)
    width = 60  # 30 px wide at 20 px high, resized to 40 px high
    assert sheet.dtype == np.uint8 and sheet.shape[0] == 2 * (tile + CAPTION_HEIGHT)
    assert sheet.shape[2] == 3 and 4 * width <= sheet.shape[1] <= 4 * width + 4 * 8
    gap = (sheet.shape[1] - 4 * width) // 3

    def cell(row: int, column: int) -> np.ndarray:
        top = row * (tile + CAPTION_HEIGHT) + CAPTION_HEIGHT
        left = column * (width + gap)
        return sheet[top : top + tile, left : left + width]

    for row in (0, 1):  # input: the hole's centre is magenta, its corner is not
        assert tuple(cell(row, 0)[tile // 2, width // 2]) == HOLE_COLOUR
        assert tuple(cell(row, 0)[1, 1]) != HOLE_COLOUR
    assert np.all(cell(0, 1) == round(0.9 * 255))  # alpha's flat result
    assert np.mean(cell(1, 2) == FAILED_GREY) > 0.8  # beta failed on the second example
    assert np.mean(cell(0, 2) == FAILED_GREY) < 0.1
    expected = np.round(examples[0].truth[0, 0] * 255)  # nearest-neighbour enlargement x2
    assert np.array_equal(cell(0, 3)[0, 0], expected)  # RGB order survives the PNG round trip
    grey_truth = cell(1, 3)  # a one-channel truth is shown as three equal channels
    assert np.array_equal(grey_truth[..., 0], grey_truth[..., 2])
    assert sheet[:CAPTION_HEIGHT].min() < 128  # captions are drawn
