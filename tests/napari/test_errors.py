"""Every error path shows the CLI's message in napari's notification area."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from napari.utils.notifications import notification_manager


@pytest.fixture
def ready(widget_factory, picture):
    """A viewer with a small picture and the widget running synchronously."""
    viewer, widget = widget_factory()
    viewer.add_image(picture, name="picture", rgb=True)
    widget.synchronous = True
    widget.method.value = "telea"
    return viewer, widget


def add_mask(viewer, shape=(48, 64)):
    mask = np.zeros(shape, dtype=np.uint8)
    mask[10:14, 20:30] = 1
    return viewer.add_labels(mask, name="damage")


def run_and_get_error(widget) -> str:
    before = len(notification_manager.records)
    widget.run_button.native.click()
    assert widget.last_error is not None
    shown = [record.message for record in notification_manager.records[before:]]
    assert widget.last_error in shown  # the message went to the notification area
    return widget.last_error


def test_no_mask_layer(ready) -> None:
    viewer, widget = ready
    assert run_and_get_error(widget).startswith("no mask layer: add a Labels or Shapes layer")
    assert len(viewer.layers) == 1


def test_every_mask_layer_unticked_is_no_mask_layer(ready) -> None:
    viewer, widget = ready
    add_mask(viewer)
    widget.masks.row("damage").use.value = False
    assert "no mask layer" in run_and_get_error(widget)


def test_mask_empty(ready) -> None:
    viewer, widget = ready
    widget.masks.new_mask_button.native.click()
    assert run_and_get_error(widget).startswith("mask is empty")
    assert len(viewer.layers) == 2  # nothing added


def test_mask_covers_everything(ready) -> None:
    viewer, widget = ready
    viewer.add_labels(np.ones((48, 64), dtype=np.uint8), name="all")
    assert "mask covers every pixel of the (48, 64) image" in run_and_get_error(widget)


def test_shape_mismatch(ready) -> None:
    viewer, widget = ready
    add_mask(viewer, shape=(40, 64))
    message = run_and_get_error(widget)
    assert message == "mask layer 'damage': mask shape (40, 64) does not match image (48, 64)"


def test_bad_label_values(ready) -> None:
    viewer, widget = ready
    add_mask(viewer)
    widget.masks.row("damage").values.value = "one"
    assert "'one' is not an integer" in run_and_get_error(widget)


def test_method_without_weights(ready, tmp_path, monkeypatch) -> None:
    viewer, widget = ready
    add_mask(viewer)
    monkeypatch.setenv("INPAINT_WEIGHTS_DIR", str(tmp_path))  # no edge-gan.safetensors there
    widget.method.value = "edge-gan"
    widget.device.value = "cpu"
    message = run_and_get_error(widget)
    assert message.startswith("method 'edge-gan' has no trained weights")
    assert "inpaint train edge-gan" in message
    assert [layer.name for layer in viewer.layers] == ["picture", "damage"]


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_cuda_requested_but_absent(ready) -> None:
    viewer, widget = ready
    add_mask(viewer)
    widget.method.value = "edge-gan"
    assert widget.device.enabled
    widget.device.value = "cuda"
    message = run_and_get_error(widget)
    assert message.startswith("device 'cuda' requested but CUDA is not available")


def test_fit_needs_a_learned_method(ready) -> None:
    _, widget = ready
    widget.fit()
    assert widget.last_error.startswith("method 'telea' is not learned")


def test_tiled_run_needs_an_output_store(ready) -> None:
    viewer, widget = ready
    assert len(viewer.layers) == 1
    add_mask(viewer)
    widget.tiled_pixels = 100  # this small picture now counts as big
    assert "choose the 'output store' path" in run_and_get_error(widget)


@pytest.mark.parametrize("kind", ["RuntimeError", "ValueError"])
def test_a_method_that_raises_does_not_lock_the_dock(widget_factory, make_plugin, picture,
                                                     qtbot, kind) -> None:
    """superqt takes a RuntimeError for a deleted worker (no errored, no finished signal): the
    worker hands every exception back as a value, so the dock reports it and is usable."""
    from .conftest import FAILING_PLUGIN

    make_plugin("failing", FAILING_PLUGIN)
    viewer, widget = widget_factory()
    viewer.add_image(picture, name="picture", rgb=True)
    add_mask(viewer)
    widget.method.value = "failing-fill"
    {w.name: w for w in widget.params}["error"].value = kind
    before = len(notification_manager.records)
    widget.run_button.native.click()  # in a real thread_worker
    qtbot.waitUntil(lambda: not widget.busy, timeout=10_000)
    assert widget.run_button.enabled and not widget.cancel_button.enabled
    assert widget.last_error is not None and "CUDA out of memory (test)" in widget.last_error
    assert widget.last_error in [r.message for r in notification_manager.records[before:]]
    assert widget.status.value.startswith("error:")
    assert [layer.name for layer in viewer.layers] == ["picture", "damage"]
    widget.method.value = "telea"  # the dock still works
    widget.run_button.native.click()
    qtbot.waitUntil(lambda: not widget.busy, timeout=10_000)
    assert "telea picture" in viewer.layers
