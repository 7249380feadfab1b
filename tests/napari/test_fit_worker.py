"""The napari fit worker (no Qt): one Progress per training step of the core fine_tune(), and a
stop between two steps."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest

from inpaint_core.checkpoint import read_checkpoint_info
from napari_inpaint._workers import FitResult, Progress, fine_tune

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def picture() -> tuple[np.ndarray, np.ndarray]:
    rows, cols = np.mgrid[0:48, 0:48].astype(np.float64) / 47
    image = np.stack([rows, cols, 0.5 + 0.4 * np.sin(9 * cols)], axis=2)
    damage = np.zeros((48, 48), dtype=bool)
    damage[2:12, 30:44] = True
    return np.rint(image * 255).astype(np.uint8), damage


def drain(work):  # type: ignore[no-untyped-def]
    seen = []
    while True:
        try:
            seen.append(next(work))
        except StopIteration as finished:
            return seen, finished.value


def test_fit_reports_every_step_and_returns_the_weights(tmp_path: Path) -> None:
    image, damage = picture()
    options = {"device": "cpu", "size": 32, "out": tmp_path / "fit"}
    work = fine_tune("edge-gan", image, damage, {}, threading.Event(), steps=3, **options)
    seen, result = drain(work)
    assert seen == [
        Progress(0, 3, "fit edge-gan"),
        *(Progress(step, 3, f"fit edge-gan: step {step}/3") for step in (1, 2, 3)),
    ]
    assert isinstance(result, FitResult) and result.steps == 3
    assert result.weights == tmp_path / "fit" / "edge-gan.safetensors"
    assert read_checkpoint_info(result.weights).training_data == {"kind": "napari image"}


def test_a_stop_ends_the_fit_after_the_running_step(tmp_path: Path) -> None:
    image, damage = picture()
    stop = threading.Event()
    options = {"device": "cpu", "size": 32, "out": tmp_path / "fit"}
    work = fine_tune("edge-gan", image, damage, {}, stop, steps=50, **options)
    assert next(work) == Progress(0, 50, "fit edge-gan")
    assert next(work) == Progress(1, 50, "fit edge-gan: step 1/50")
    stop.set()
    seen, result = drain(work)
    assert seen == [] and result is None
