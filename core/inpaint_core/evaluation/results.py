"""The rows an evaluation produces, and their CSV form (which is also the resume record)."""

from __future__ import annotations

import csv
import math
import os
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from inpaint_core.errors import InvalidInputError

STATUS_OK = "ok"
STATUS_FAILED = "failed"


@dataclass(frozen=True)
class EvalRow:
    """One image x mask x method result.

    Attributes:
        image: the ground-truth image's path relative to the data folder.
        mask: the mask's label: ``centre-10``, ``free_form-40`` for generated masks, or the
            mask file's name for user masks.
        mask_kind: ``centre``, ``free_form``, ... or ``custom`` for user masks.
        target_ratio: the requested hole fraction in [0, 1] (NaN for user masks).
        hole_ratio: the actual hole fraction in [0, 1].
        method: the method name.
        status: ``ok`` or ``failed``.
        psnr, ssim: over the whole image (RGB: mean over channels); dB and [-1, 1].
        psnr_hole, ssim_hole: over the hole pixels only.
        l1, l1_hole: mean absolute error in [0, 1] units, whole image and hole only.
        seconds: wall time of the method on this image.
        peak_ram_mb: peak extra resident memory during the call, MiB.
        peak_gpu_mb: peak CUDA memory allocated during the call, MiB (NaN off CUDA).
        error: the error message when ``status`` is ``failed``, else empty.
        fingerprint: what the method was exactly (:func:`method_fingerprint`: its parameters
            and, for learned methods, the sha256 of its weights). A rerun reuses a row only if
            the fingerprint is unchanged, so new weights are never scored with old rows.
    """

    image: str
    mask: str
    mask_kind: str
    target_ratio: float
    hole_ratio: float
    method: str
    status: str
    psnr: float = math.nan
    ssim: float = math.nan
    psnr_hole: float = math.nan
    ssim_hole: float = math.nan
    l1: float = math.nan
    l1_hole: float = math.nan
    seconds: float = math.nan
    peak_ram_mb: float = math.nan
    peak_gpu_mb: float = math.nan
    error: str = ""
    fingerprint: str = ""

    @property
    def key(self) -> tuple[str, str, str, str]:
        """What identifies a row for resuming: (image, mask, method, fingerprint)."""
        return (self.image, self.mask, self.method, self.fingerprint)

    @property
    def ok(self) -> bool:
        return self.status == STATUS_OK


FIELDS: tuple[str, ...] = tuple(field.name for field in fields(EvalRow))
_TEXT_FIELDS = frozenset(
    {"image", "mask", "mask_kind", "method", "status", "error", "fingerprint"}
)


def read_rows(path: str | os.PathLike[str]) -> list[EvalRow]:
    """Read rows written by :func:`append_rows`; a missing file gives no rows."""
    path = Path(path)
    if not path.exists():
        return []
    with path.open(newline="") as handle:
        header = next(csv.reader(handle), [])
        if header and tuple(header) != FIELDS:
            raise InvalidInputError(
                f"{str(path)!r} has the columns {header}, not {list(FIELDS)}: it was written "
                "by another version of napari-inpaint; use another --out folder"
            )
        handle.seek(0)
        return [
            EvalRow(**{
                name: value if name in _TEXT_FIELDS else float(value or "nan")
                for name, value in record.items()
            })
            for record in csv.DictReader(handle)
        ]


def append_rows(path: str | os.PathLike[str], rows: list[EvalRow]) -> None:
    """Append rows to the CSV at ``path`` (writing the header first if it is new), flushed."""
    path = Path(path)
    new = not path.exists() or path.stat().st_size == 0
    with path.open("a", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=FIELDS)
        if new:
            writer.writeheader()
        for row in rows:
            writer.writerow(asdict(row))
        handle.flush()
        os.fsync(handle.fileno())
