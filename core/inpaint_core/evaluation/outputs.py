"""Writing an evaluation's files: the Markdown report, the PSNR plot and the contact sheet."""

from __future__ import annotations

import logging
import os
from pathlib import Path

from inpaint_core.evaluation.report import contact_sheet, plot_psnr_vs_ratio, render_markdown
from inpaint_core.evaluation.runner import Evaluation
from inpaint_core.io.atomic import atomic_write

logger = logging.getLogger(__name__)

REPORT_MD = "report.md"
PLOT_PNG = "psnr_vs_ratio.png"
SHEET_PNG = "contact_sheet.png"


def write_reports(
    evaluation: Evaluation,
    out: str | os.PathLike[str],
    *,
    report: str | os.PathLike[str] | None = None,
    title: str = "Inpainting evaluation",
    command: str | None = None,
    notes: str = "",
) -> dict[str, Path]:
    """Write the report files of ``evaluation`` into ``out`` (made from all its rows).

    Files: ``report.md`` (or ``report``), ``psnr_vs_ratio.png`` (skipped, with a warning, if
    matplotlib is missing) and ``contact_sheet.png`` (if the evaluation kept examples). They
    are derived from ``results.csv`` and rewritten on every run.

    Returns:
        The paths written, by kind: ``report``, ``plot``, ``sheet``.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    written: dict[str, Path] = {}
    report_path = Path(report) if report is not None else out / REPORT_MD
    text = render_markdown(evaluation.rows, title=title, command=command, notes=notes,
                           weights=evaluation.weights)
    with atomic_write(report_path) as temporary:
        temporary.write_text(text)
    written["report"] = report_path
    plot = plot_psnr_vs_ratio(evaluation.rows, out / PLOT_PNG)
    if plot is not None:
        written["plot"] = plot
    if evaluation.examples:
        written["sheet"] = contact_sheet(evaluation.examples, out / SHEET_PNG)
    return written
