"""Run methods over an image set with the survey's masks (or the user's), one row per case.

Each image is centre-cropped to a square and resized to ``size`` x ``size`` (the survey
evaluates 256x256 images). Every method runs in its own ``try``: a failure becomes a ``failed``
row with its message and the other methods go on. With an output folder, every row is appended
to ``results.csv`` as soon as it is measured, and a rerun skips the rows already there.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from inpaint_core.api import get_method, inpaint, list_methods
from inpaint_core.devices import resolve_device
from inpaint_core.errors import InvalidInputError
from inpaint_core.evaluation.metrics import l1_error, psnr, ssim
from inpaint_core.evaluation.report import SheetExample
from inpaint_core.evaluation.resources import ResourceMeter
from inpaint_core.evaluation.results import (
    STATUS_FAILED,
    STATUS_OK,
    EvalRow,
    append_rows,
    read_rows,
)
from inpaint_core.io import find_images, read_colour, read_mask
from inpaint_core.masks import SURVEY_PROTOCOL, make_mask
from inpaint_core.method import InpaintMethod

if TYPE_CHECKING:
    from inpaint_core.checkpoint import CheckpointInfo

logger = logging.getLogger(__name__)

RESULTS_CSV = "results.csv"
RUN_JSON = "run.json"
DAMAGE_VALUE = 1.0  # what hole pixels hold in the damaged input; methods must not use it


@dataclass(frozen=True)
class MaskSpec:
    """One mask column: generated (``kind`` + ``target_ratio``) or a user file (``path``)."""

    label: str
    kind: str
    target_ratio: float = math.nan
    path: Path | None = None


def survey_mask_specs() -> list[MaskSpec]:
    """The survey protocol: centre 10/15/20/25 % and free-form 10/20/30/40 %."""
    return [
        MaskSpec(f"{kind.value}-{round(ratio * 100)}", kind.value, ratio)
        for kind, ratios in SURVEY_PROTOCOL
        for ratio in ratios
    ]


def user_mask_specs(masks: Path, images: Sequence[Path], data: Path) -> dict[Path, MaskSpec]:
    """Pair user masks with images: one file for all, or a folder of files named by image stem."""
    if masks.is_file():
        return {image: MaskSpec(masks.name, "custom", path=masks) for image in images}
    if not masks.is_dir():
        raise InvalidInputError(f"--masks {str(masks)!r} is neither 'survey', a file nor a folder")
    by_stem = {path.stem: path for path in find_images(masks, "--masks")}
    missing = [str(image.relative_to(data)) for image in images if image.stem not in by_stem]
    if missing:
        raise InvalidInputError(
            f"no mask in {str(masks)!r} named like {len(missing)} image(s), e.g. "
            f"{missing[0]!r}; name each mask after its image (same stem, any image suffix)"
        )
    return {image: MaskSpec(by_stem[image.stem].name, "custom", path=by_stem[image.stem])
            for image in images}


def load_square(path: Path, size: int) -> np.ndarray:
    """float32 ``(size, size, C)`` in [0, 1], C in {1, 3}: centre-cropped, area-resized."""
    from skimage.transform import resize

    colour = read_colour(path)
    height, width = colour.shape[:2]
    side = min(height, width)
    top, left = (height - side) // 2, (width - side) // 2
    square = colour[top : top + side, left : left + side]
    if side != size:
        square = resize(square, (size, size), anti_aliasing=side > size, preserve_range=True)
    return np.clip(square, 0.0, 1.0).astype(np.float32)


def load_mask(spec: MaskSpec, size: int, seed: int) -> np.ndarray:
    """bool ``(size, size)``: generated from the spec and ``seed``, or the user's file resized."""
    if spec.path is None:
        return make_mask(spec.kind, (size, size), spec.target_ratio, seed)
    from skimage.transform import resize

    mask = read_mask(spec.path) != 0
    if mask.shape != (size, size):
        mask = resize(mask, (size, size), order=0, anti_aliasing=False, preserve_range=True)
    return mask.astype(bool)


def case_seed(seed: int, image: str, mask_label: str) -> int:
    """A stable per-case seed: the same image and mask always get the same random mask."""
    return (seed * 1_000_003 + zlib.crc32(f"{image}|{mask_label}".encode())) % 2**32


def measure(truth: np.ndarray, result: np.ndarray, hole: np.ndarray) -> dict[str, float]:
    """Metrics of ``result`` against ``truth`` (float32 ``(H, W, C)`` in [0, 1])."""
    return {
        "psnr": psnr(truth, result),
        "ssim": ssim(truth, result),
        "psnr_hole": psnr(truth, result, hole),
        "ssim_hole": ssim(truth, result, hole),
        "l1": l1_error(truth, result),
        "l1_hole": l1_error(truth, result, hole),
    }


def _run_config(size: int, seed: int, masks: str) -> dict[str, object]:
    return {"size": size, "seed": seed, "masks": masks}


def method_fingerprint(method: InpaintMethod) -> str:
    """A short hash of what ``method`` is: its name, parameters and, for learned methods, the
    sha256 of its weights file. Two instances that restore identically share it."""
    from inpaint_core.tiling.execution import weights_sha256

    params = {key: str(value) for key, value in sorted(method.params.items())
              if key != "device"}
    identity = {"method": method.info.name, "params": params, "weights": weights_sha256(method)}
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:16]


def _check_resume(out: Path, config: dict[str, object]) -> None:
    """Refuse to mix rows of a run made with other options into this folder's CSV."""
    record = out / RUN_JSON
    if record.exists():
        previous = json.loads(record.read_text())
        if previous != config:
            raise InvalidInputError(
                f"{str(out)!r} holds results made with {previous}; this run uses {config}. "
                "Use another --out folder, or the same options to resume"
            )
    else:
        record.write_text(json.dumps(config, indent=2))


@dataclass
class Evaluation:
    """What :func:`evaluate` returns: every row (old and new), the contact-sheet cases, and
    for each learned method the budget of the weights it was scored with
    (:func:`weights_budget`)."""

    rows: list[EvalRow]
    examples: list[SheetExample]
    weights: dict[str, dict[str, object]] = field(default_factory=dict)


def weights_budget(method: InpaintMethod) -> dict[str, object] | None:
    """What trained a learned method's weights, from their sidecar; None if not learned.

    Returns:
        ``sha256`` (first 12 hex digits), ``prior``, ``steps``, ``batch``, ``size`` (training
        crop side), ``hardware``, ``minutes`` (training wall time) and ``command`` (the
        recipe's exact command, "" if the sidecar has none).
    """
    if not method.info.learned or not hasattr(method, "weights_path"):
        return None
    from inpaint_core.checkpoint import CheckpointInfo, checkpoint_paths
    from inpaint_core.tiling.execution import published_source

    sidecar = checkpoint_paths(method.weights_path())[1]
    info = CheckpointInfo.from_json(sidecar.read_text())
    return {**training_budget(info), **published_source(info)}


def training_budget(info: CheckpointInfo) -> dict[str, object]:
    """The budget a checkpoint's sidecar records, as :func:`weights_budget` returns it."""
    train = info.extra.get("train_config", {})
    recipe = info.extra.get("recipe", {})
    return {
        "sha256": info.sha256[:12], "prior": info.config.get("prior", "none"),
        "steps": info.step, "batch": train.get("batch_size"),
        "size": info.training_data.get("size"), "hardware": info.hardware.get("device_name")
        if info.hardware.get("device") != "cpu" else "cpu",
        "minutes": round(info.wall_seconds / 60, 1), "command": recipe.get("command", ""),
    }


def evaluate(
    data: str | Path,
    methods: Sequence[str] | str = "all",
    masks: str | Path = "survey",
    *,
    size: int = 256,
    out: str | Path | None = None,
    device: str = "cpu",
    seed: int = 0,
    sheet_images: int = 3,
    progress: Callable[[int, int], None] | None = None,
    weights: Mapping[str, str] | None = None,
) -> Evaluation:
    """Evaluate ``methods`` on every image under ``data``.

    Args:
        data: a folder of ground-truth images (searched recursively).
        methods: ``"all"`` or method names.
        masks: ``"survey"`` (centre 10-25 %, free-form 10-40 %, seeded), a mask file used for
            every image, or a folder of masks named after the images.
        size: images are centre-cropped and resized to ``size`` x ``size``.
        out: a folder for ``results.csv`` (appended per row; rows already there are skipped).
        device: ``auto``, ``cpu``, ``cuda``, ``cuda:N``, ``mps``; passed to methods that take
            a ``device`` parameter.
        seed: seeds the generated masks and the methods.
        weights: the ``weights`` parameter by method name: an installed catalogue name
            (``big-lama``) or a ``.safetensors`` file; methods not named use their default.
        sheet_images: how many images the contact sheet shows (with the last mask column).
        progress: called as ``progress(done, total)`` after each case.

    Returns:
        An :class:`Evaluation`: all rows (including resumed ones) and the contact-sheet cases
        (:class:`SheetExample`: truth, mask and each method's result, None where it failed).
    """
    data = Path(data)
    if size < 16:
        raise InvalidInputError(f"size={size} is too small; use 16 or more (the survey uses 256)")
    device = resolve_device(device)
    names = [info.name for info in list_methods()] if methods == "all" else list(methods)
    for name in names:
        get_method(name)  # an unknown name fails now, listing the valid ones
    weights = dict(weights or {})
    for name in weights:
        if name not in names:
            raise InvalidInputError(
                f"weights are given for {name!r}, which is not evaluated ({', '.join(names)})"
            )
        if not get_method(name).info.learned:
            raise InvalidInputError(f"method {name!r} is not learned: it takes no weights")
    images = find_images(data, "--data")
    survey = str(masks) == "survey"
    specs_for = (
        {image: survey_mask_specs() for image in images}
        if survey
        else {image: [spec] for image, spec in user_mask_specs(Path(masks), images, data).items()}
    )
    done: dict[tuple[str, str, str], EvalRow] = {}
    csv_path = None
    if out is not None:
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        _check_resume(out, _run_config(size, seed, "survey" if survey else str(masks)))
        csv_path = out / RESULTS_CSV
        done = {row.key: row for row in read_rows(csv_path)}
    instances, broken, prints, budgets = {}, {}, {}, {}
    for name in names:
        method_class = get_method(name)
        try:
            takes_device = any(p.name == "device" for p in method_class.info.parameters)
            params: dict[str, object] = {"device": device} if takes_device else {}
            if name in weights:
                params["weights"] = weights[name]
            instances[name] = method_class(**params)
            prints[name] = method_fingerprint(instances[name])
            budget = weights_budget(instances[name])
            if budget is not None:
                budgets[name] = budget
        except Exception as error:  # a method that cannot even be built fails all its rows
            broken[name] = f"{type(error).__name__}: {error}"
    total = sum(len(specs_for[image]) for image in images) * len(names)
    count = 0
    rows: list[EvalRow] = []
    examples = []
    for index, image_path in enumerate(images):
        label = str(image_path.relative_to(data))
        truth = load_square(image_path, size)
        for spec in specs_for[image_path]:
            hole = load_mask(spec, size, case_seed(seed, label, spec.label))
            damaged = truth.copy()
            damaged[hole] = DAMAGE_VALUE
            keep = index < sheet_images and spec is specs_for[image_path][-1]
            results: dict[str, np.ndarray | None] = {}
            for name in names:
                key = (label, spec.label, name, prints.get(name, ""))
                if key in done and not keep:
                    rows.append(done[key])
                else:
                    row, result = _run_case(
                        instances.get(name), broken.get(name), name, truth, damaged, hole,
                        label, spec, seed, device, prints.get(name, ""),
                    )
                    results[name] = result
                    if key in done:
                        row = done[key]  # re-run only for the contact sheet: keep the record
                    elif csv_path is not None:
                        append_rows(csv_path, [row])
                    rows.append(row)
                count += 1
                if progress is not None:
                    progress(count, total)
            if keep:
                examples.append(SheetExample(f"{label} {spec.label}", truth, hole, results))
    return Evaluation(rows, examples, budgets)


def _run_case(
    instance: object,
    broken: str | None,
    name: str,
    truth: np.ndarray,
    damaged: np.ndarray,
    hole: np.ndarray,
    label: str,
    spec: MaskSpec,
    seed: int,
    device: str,
    fingerprint: str,
) -> tuple[EvalRow, np.ndarray | None]:
    base = {
        "image": label, "mask": spec.label, "mask_kind": spec.kind,
        "target_ratio": spec.target_ratio, "hole_ratio": float(hole.mean()), "method": name,
        "fingerprint": fingerprint,
    }
    if broken is not None:
        return EvalRow(**base, status=STATUS_FAILED, error=broken), None
    try:
        with ResourceMeter(device) as meter:
            result = inpaint(damaged, hole, instance, seed=seed)
        metrics = measure(truth, result, hole)
    except Exception as error:  # one failing method must not stop the others
        logger.warning("%s failed on %s %s: %s", name, label, spec.label, error)
        return EvalRow(**base, status=STATUS_FAILED, error=f"{type(error).__name__}: {error}"), None
    row = EvalRow(
        **base, status=STATUS_OK, **metrics, seconds=meter.seconds,
        peak_ram_mb=meter.peak_ram_mb, peak_gpu_mb=meter.peak_gpu_mb,
    )
    return row, result
