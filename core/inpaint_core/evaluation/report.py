"""The evaluation report: survey-style Markdown tables, a metric-vs-ratio plot, a contact sheet.

The tables follow the survey's layout: one row per method, one column per mask (centre masks by
hole ratio, then free-form masks by hole ratio, then the other generated kinds, then user masks
by name), each cell the mean over the test images, the best value of each column in bold.
Everything except the contact sheet is computed from :class:`EvalRow` lists alone.
"""

from __future__ import annotations

import logging
import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np

from inpaint_core.errors import InvalidInputError
from inpaint_core.evaluation.results import EvalRow
from inpaint_core.io import check_output_path, write_image

logger = logging.getLogger(__name__)

KIND_ORDER: tuple[str, ...] = ("centre", "free_form", "rectangles", "cracks")
METRICS: tuple[str, ...] = tuple(f.name for f in fields(EvalRow) if f.type in ("float", float))
DASH = "–"
FAILED = "failed"
PARTIAL = "†"
CAPTION_HEIGHT = 30  # px of the caption strip above each contact-sheet row (two text lines)
HOLE_COLOUR = (255, 0, 255)  # magenta: no natural photograph or mural has much of it
FAILED_GREY = 128
_GAP = 4  # px of white between contact-sheet columns, so neighbouring tiles do not blend
_SECTIONS = (  # (heading, metric, higher is better, digits)
    ("PSNR (dB), whole image", "psnr", True, 2),
    ("SSIM, whole image", "ssim", True, 4),
    ("PSNR (dB), hole only", "psnr_hole", True, 2),
    ("SSIM, hole only", "ssim_hole", True, 4),
    ("L1 error, whole image (lower is better)", "l1", False, 4),
    ("L1 error, hole only (lower is better)", "l1_hole", False, 4),
)
_AXIS_LABELS = {"psnr": "PSNR (dB)", "ssim": "SSIM", "l1": "L1 error"}
_RESOURCE_COLUMNS = ("method", "images", "test time per image (s)", "peak RAM (MiB)")


def _check_metric(metric: str) -> None:
    if metric not in METRICS:
        raise InvalidInputError(f"unknown metric {metric!r}; choose one of: {', '.join(METRICS)}")


def _kind_rank(kind: str) -> int:
    # Unknown generated kinds come after the known ones; user masks always last.
    if kind == "custom":
        return len(KIND_ORDER) + 1
    return KIND_ORDER.index(kind) if kind in KIND_ORDER else len(KIND_ORDER)


def _mean(values: Iterable[float]) -> float:
    """Mean ignoring NaN (a metric a method could not be scored on); NaN when nothing is left."""
    kept = [value for value in values if not math.isnan(value)]
    return float(np.mean(kept)) if kept else math.nan


def _fmt(value: float, spec: str) -> str:
    return DASH if math.isnan(value) else format(value, spec)


def _methods(rows: Sequence[EvalRow]) -> list[str]:
    return sorted({row.method for row in rows}, key=lambda name: (name.lower(), name))


def _cell(text: str) -> str:
    return text.replace("|", "\\|")  # a "|" in a file name would split the Markdown cell


def _table(header: Sequence[str], body: Sequence[Sequence[str]], numeric_from: int = 1) -> str:
    align = ["---" if i < numeric_from else "---:" for i in range(len(header))]
    lines = [header, align, *body]
    return "\n".join("| " + " | ".join(line) + " |" for line in lines) + "\n"


def mask_columns(rows: Sequence[EvalRow]) -> list[str]:
    """The distinct mask labels in protocol order.

    Centre masks by target ratio, then free-form by ratio, then rectangles and cracks (and any
    other generated kind), then user (``custom``) masks sorted by label.
    """
    first: dict[str, EvalRow] = {}
    for row in rows:
        first.setdefault(row.mask, row)

    def key(label: str) -> tuple[int, str, float, str]:
        kind, ratio = first[label].mask_kind, first[label].target_ratio
        ratio = ratio if kind != "custom" and math.isfinite(ratio) else 0.0
        return (_kind_rank(kind), kind, ratio, label)

    return sorted(first, key=key)


def _header(row: EvalRow) -> str:
    if row.mask_kind == "custom" or not math.isfinite(row.target_ratio):
        return _cell(row.mask)
    return f"{row.mask_kind.replace('_', '-')} {round(row.target_ratio * 100, 1):g}%"


def survey_table(
    rows: Sequence[EvalRow],
    metric: str = "psnr",
    *,
    higher_is_better: bool = True,
    digits: int = 2,
) -> str:
    """One Markdown table of ``metric``: a row per method, a column per mask label.

    Each cell is the mean of ``metric`` over the method's ``ok`` rows of that mask; the best
    value (as displayed, rounded to ``digits``) of each column is bold, ties all bold. A cell
    whose rows all failed reads ``failed``, one with no rows ``–``; a mean over only some of the
    images (the others failed) is marked ``†`` and a footnote says so.

    Raises:
        InvalidInputError: ``metric`` is not a float field of :class:`EvalRow`.
    """
    _check_metric(metric)
    columns = mask_columns(rows)
    if not columns:
        return "_No results._\n"
    first = {row.mask: row for row in reversed(rows)}
    groups: dict[tuple[str, str], list[EvalRow]] = defaultdict(list)
    for row in rows:
        groups[row.method, row.mask].append(row)
    methods = _methods(rows)
    cells: dict[tuple[str, str], str] = {}
    partial = False
    for column in columns:
        values: dict[str, float] = {}
        for method in methods:
            group = groups.get((method, column), [])
            mean = _mean(getattr(row, metric) for row in group if row.ok)
            if not group:
                cells[method, column] = DASH
            elif not any(row.ok for row in group):
                cells[method, column] = FAILED
            elif math.isnan(mean):
                cells[method, column] = DASH
            else:
                values[method] = round(mean, digits)
                cells[method, column] = f"{mean:.{digits}f}"
        if values:
            best = max(values.values()) if higher_is_better else min(values.values())
            for method, value in values.items():
                if value == best:
                    cells[method, column] = f"**{cells[method, column]}**"
        for method in values:
            if not all(row.ok for row in groups[method, column]):
                cells[method, column] += PARTIAL
                partial = True
    header = ["method", *(_header(first[column]) for column in columns)]
    body = [[_cell(m), *(cells[m, c] for c in columns)] for m in methods]
    note = f"\n{PARTIAL} mean over the images the method did not fail on.\n" if partial else ""
    return _table(header, body) + note


def resources_table(rows: Sequence[EvalRow]) -> str:
    """Markdown: per method the runs, mean time per image, peak RAM and GPU memory, failures.

    Time is the mean over ``ok`` rows (a failure's time says little about the method); peak
    memory is the maximum over all rows, failures included (running out of memory is a failure).
    """
    body = []
    for method in _methods(rows):
        own = [row for row in rows if row.method == method]
        seconds = _mean(row.seconds for row in own if row.ok)
        ram = max((r.peak_ram_mb for r in own if not math.isnan(r.peak_ram_mb)), default=math.nan)
        gpu = max((r.peak_gpu_mb for r in own if not math.isnan(r.peak_gpu_mb)), default=math.nan)
        numbers = (_fmt(seconds, ".3f"), _fmt(ram, ".1f"), _fmt(gpu, ".1f"))
        body.append([_cell(method), str(len(own)), *numbers, str(sum(not r.ok for r in own))])
    header = [*_RESOURCE_COLUMNS, "peak GPU memory (MiB)", "failures"]
    return _table(header, body) if body else "_No results._\n"


def failures_table(rows: Sequence[EvalRow]) -> str:
    """A Markdown list of failed method × mask × image with the error's first line; "" if none."""
    order = {label: index for index, label in enumerate(mask_columns(rows))}
    failed = sorted(
        (row for row in rows if not row.ok),
        key=lambda row: (row.method.lower(), row.method, order[row.mask], row.image),
    )
    lines = []
    for row in failed:
        message = (row.error.strip().splitlines() or ["(no message)"])[0]
        if len(message) > 200:  # a whole repr of an array would swamp the report
            message = message[:199] + "…"
        lines.append(f"- `{row.method}` × `{row.mask}` × `{row.image}`: {message}")
    return "\n".join(lines) + "\n" if lines else ""


def weights_table(weights: Mapping[str, Mapping[str, object]]) -> str:
    """A Markdown table of the learned methods' weights and their training budgets (one row
    per method, from :func:`~inpaint_core.evaluation.runner.weights_budget`), then each
    recipe's command; "" when there are none."""
    if not weights:
        return ""
    header = ["method", "weights", "weights sha256", "prior", "steps", "batch", "crop",
              "hardware", "train minutes"]
    body = [
        [f"`{name}`", str(budget.get("source", "trained here")), f"`{budget['sha256']}`",
         str(budget["prior"]), str(budget["steps"]),
         str(budget["batch"]), str(budget["size"]), str(budget["hardware"]),
         f"{budget['minutes']}"]
        for name, budget in sorted(weights.items())
    ]
    commands = "".join(
        f"- `{name}`: `{_cell(str(budget['command']))}`\n"
        for name, budget in sorted(weights.items()) if budget["command"]
    )
    text = _table(header, body, numeric_from=4)
    return text + ("\nTraining commands:\n\n" + commands if commands else "")


def render_markdown(
    rows: Sequence[EvalRow], *, title: str, command: str | None = None, notes: str = "",
    weights: Mapping[str, Mapping[str, object]] | None = None,
) -> str:
    """The whole report as Markdown: title, command, explanation, metric tables, resources,
    the learned methods' weights and training budgets (``weights``, see
    :func:`weights_table`), failures, then ``notes``."""
    images = {row.image for row in rows}
    failures = sum(not row.ok for row in rows)
    parts = [f"# {title}\n"]
    if command:
        parts.append(f"Produced by:\n\n```bash\n{command}\n```\n")
    parts.append(
        f"{len(images)} images × {len(mask_columns(rows))} masks × {len(_methods(rows))} "
        f"methods = {len(rows)} runs, {failures} failed.\n\n"
        "Rows are methods, columns are masks: `centre N%` is a centred rectangular hole "
        "covering N % of the image, `free-form N%` random irregular strokes covering N %; "
        "other generated kinds are named the same way, and user masks by their file name. "
        "Each cell is the mean over the test images the method succeeded on; the best value "
        "of each column is in **bold** (ties all bold); `failed` means the method failed on "
        f"every image of that column, `{DASH}` that it was not run. PSNR (dB) and SSIM are "
        "computed over the whole image and over the hole pixels only (the untouched known "
        "pixels inflate whole-image scores); L1 is the mean absolute error in [0, 1] units. "
        "Under Resources, `images` counts a method's image × mask runs, time is the mean over "
        "its successful runs, and memory the peak over all of them.\n"
    )
    for heading, metric, higher, digits in _SECTIONS:
        table = survey_table(rows, metric, higher_is_better=higher, digits=digits)
        parts.append(f"## {heading}\n\n{table}")
    parts.append(f"## Resources\n\n{resources_table(rows)}")
    if weights:
        parts.append(f"## Learned methods: the weights scored\n\n{weights_table(weights)}")
    failed = failures_table(rows) or "None.\n"
    parts.append(f"## Failures\n\n{failed}")
    if notes:
        parts.append(f"## Notes\n\n{notes.strip()}\n")
    return "\n".join(parts)


def plot_psnr_vs_ratio(rows: Sequence[EvalRow], path: Path, *, metric: str = "psnr") -> Path | None:
    """Plot the mean ``metric`` against the hole ratio, one subplot per generated mask kind.

    Writes an RGB uint8 PNG (atomically, replacing ``path``) and returns ``path``; returns None
    with a logged warning when matplotlib is missing or no row has a target ratio.
    """
    _check_metric(metric)
    path = check_output_path(path, overwrite=True)
    try:
        # The bare package first: it fails when matplotlib is blocked even if its submodules
        # are already cached in sys.modules.
        import matplotlib
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        logger.warning("matplotlib is missing, %s is not drawn: pip install matplotlib", path)
        return None
    ratio_rows = [r for r in rows if r.mask_kind != "custom" and math.isfinite(r.target_ratio)]
    kinds = sorted({row.mask_kind for row in ratio_rows}, key=lambda kind: (_kind_rank(kind), kind))
    if not kinds:
        logger.warning("no rows with a target hole ratio: %s is not drawn", path)
        return None
    methods = _methods(rows)
    # A fixed colour per method, so a method keeps its colour across subplots even when absent.
    palette = matplotlib.rcParams["axes.prop_cycle"].by_key()["color"]
    # Figure + Agg canvas, not pyplot: no global figure state, no GUI backend.
    figure = Figure(figsize=(4.5 * len(kinds), 3.6), dpi=100, layout="constrained")
    canvas = FigureCanvasAgg(figure)
    for axes, kind in zip(figure.subplots(1, len(kinds), squeeze=False)[0], kinds, strict=True):
        groups: dict[tuple[str, float], list[float]] = defaultdict(list)
        for row in ratio_rows:
            if row.mask_kind == kind and row.ok:
                groups[row.method, round(row.target_ratio, 6)].append(getattr(row, metric))
        ratios = sorted({round(r.target_ratio, 6) for r in ratio_rows if r.mask_kind == kind})
        percents = [100 * ratio for ratio in ratios]
        for index, method in enumerate(methods):
            means = [_mean(groups.get((method, ratio), [])) for ratio in ratios]
            colour = palette[index % len(palette)]
            if not all(math.isnan(mean) for mean in means):  # NaN leaves a gap in the line
                axes.plot(percents, means, marker="o", label=method, color=colour)
        axes.set_title(f"{kind.replace('_', '-')} masks")
        axes.set_xlabel("hole ratio (%)")
        base = metric.removesuffix("_hole")
        hole = " on the hole" if metric.endswith("_hole") else ""
        axes.set_ylabel(_AXIS_LABELS.get(base, base) + hole)
        axes.set_xticks(percents)
        axes.grid(alpha=0.3)
        if axes.get_lines():
            axes.legend(fontsize="small")
    canvas.draw()
    rgba = np.asarray(canvas.buffer_rgba())
    # The figure background is opaque white, so dropping alpha loses nothing.
    return write_image(path, np.ascontiguousarray(rgba[:, :, :3]), overwrite=True)


@dataclass(frozen=True)
class SheetExample:
    """One contact-sheet row.

    Attributes:
        image: the row's label (image name and mask label).
        truth: float32 ``(H, W, 3)`` or ``(H, W, 1)`` in [0, 1].
        mask: bool ``(H, W)``, True = hole.
        results: method name -> float32 ``(H, W, 3)`` or ``(H, W, 1)`` in [0, 1], None when
            the method failed.
    """

    image: str
    truth: np.ndarray
    mask: np.ndarray
    results: dict[str, np.ndarray | None]


def _to_rgb8(image: np.ndarray, name: str) -> np.ndarray:
    """Float ``(H, W)``, ``(H, W, 1)`` or ``(H, W, 3)`` in [0, 1] -> uint8 ``(H, W, 3)``."""
    array = np.asarray(image, dtype=np.float32)
    if array.ndim == 2:
        array = array[:, :, None]
    if array.ndim != 3 or array.shape[2] not in (1, 3) or 0 in array.shape:
        raise InvalidInputError(f"{name} has shape {array.shape}; expected (H, W, 3) or (H, W, 1)")
    array = np.clip(np.nan_to_num(array), 0.0, 1.0)
    return np.repeat((array * 255 + 0.5).astype(np.uint8), 3 // array.shape[2], axis=2)


def _resize(cv2: object, image: np.ndarray, tile: int) -> np.ndarray:
    height, width = image.shape[:2]
    size = (max(1, round(width * tile / height)), tile)
    # Enlarging with nearest neighbours keeps each pixel visible: blur would hide artefacts.
    interpolation = cv2.INTER_AREA if tile < height else cv2.INTER_NEAREST
    return cv2.resize(image, size, interpolation=interpolation)


def _text(cv2: object, canvas: np.ndarray, text: str, baseline: int, colour: tuple) -> None:
    """Draw ``text`` centred on ``canvas`` (in place), shortened with ".." to fit its width."""
    font, scale = cv2.FONT_HERSHEY_SIMPLEX, 0.4
    text = text.encode("ascii", "replace").decode()  # Hershey fonts have ASCII glyphs only
    width = canvas.shape[1] - 4
    candidates = [text] + [text[:n] + ".." for n in range(len(text) - 1, 0, -1)]
    for candidate in candidates:
        (text_width, _), _ = cv2.getTextSize(candidate, font, scale, 1)
        if text_width <= width:
            x = (canvas.shape[1] - text_width) // 2
            cv2.putText(canvas, candidate, (x, baseline), font, scale, colour, 1, cv2.LINE_AA)
            return


def contact_sheet(examples: Sequence[SheetExample], path: Path, *, tile: int = 160) -> Path:
    """Write a grid of input, each method's result and the truth, one row per example.

    Every cell is ``tile`` px high (aspect kept), below a ``CAPTION_HEIGHT`` px caption strip;
    the input shows holes in magenta, a failed method a grey tile. Methods come in the order of
    the first example's ``results``. Written as uint8 RGB with :func:`write_image`.
    """
    import cv2

    if not examples or tile < 1:
        raise InvalidInputError(f"contact_sheet needs examples and tile >= 1 (got tile={tile})")
    names = list(examples[0].results)
    captions = ["input", *names, "truth"]
    grid = []
    for example in examples:
        truth = _to_rgb8(example.truth, f"{example.image} truth")
        mask = np.asarray(example.mask).astype(bool)
        if mask.shape != truth.shape[:2]:
            raise InvalidInputError(
                f"{example.image}: mask shape {mask.shape} does not match "
                f"the image's {truth.shape[:2]}"
            )
        damaged = truth.copy()
        damaged[mask] = HOLE_COLOUR
        truth_tile = _resize(cv2, truth, tile)
        cells = [_resize(cv2, damaged, tile)]
        for name in names:
            result = example.results.get(name)
            if result is None:
                grey = np.full_like(truth_tile, FAILED_GREY)
                label = FAILED if name in example.results else "not run"
                _text(cv2, grey, label, tile // 2 + 4, (255, 255, 255))
                cells.append(grey)
            else:
                cells.append(_resize(cv2, _to_rgb8(result, f"{example.image} {name}"), tile))
        cells.append(truth_tile)
        grid.append(cells)
    widths = [max(cells[c].shape[1] for cells in grid) for c in range(len(captions))]
    row_height = CAPTION_HEIGHT + tile
    sheet = np.full(
        (len(grid) * row_height, sum(widths) + _GAP * (len(widths) - 1), 3), 255, np.uint8
    )
    for r, (example, cells) in enumerate(zip(examples, grid, strict=True)):
        top, x = r * row_height, 0
        for c, cell in enumerate(cells):
            strip = np.full((CAPTION_HEIGHT, widths[c], 3), 255, np.uint8)
            _text(cv2, strip, captions[c], 12, (0, 0, 0))
            if c == 0:  # the example's own label, under "input", names the whole row
                _text(cv2, strip, example.image, 26, (90, 90, 90))
            sheet[top : top + CAPTION_HEIGHT, x : x + widths[c]] = strip
            left = x + (widths[c] - cell.shape[1]) // 2
            sheet[top + CAPTION_HEIGHT : top + row_height, left : left + cell.shape[1]] = cell
            x += widths[c] + _GAP
    return write_image(path, sheet, overwrite=True)
