"""The dock widget driven as a user would: sample, masks, method, Run, Cancel, compare."""

from __future__ import annotations

import threading
import time

import numpy as np
from magicgui import widgets

from .conftest import SCHEMA_PLUGIN, add_picture_and_mask, slow_fill_widget


def wait_until_idle(qtbot, widget, timeout: float = 60) -> None:
    qtbot.waitUntil(lambda: not widget.busy, timeout=int(timeout * 1000))


def add_sample(viewer) -> tuple:
    """File > Open Sample > napari-inpaint > Photograph with cracks."""
    viewer.open_sample("napari-inpaint", "cracked-photo")
    return viewer.layers["cracked coffee"], viewer.layers["cracks"]


def test_restore_the_sample_from_two_painted_mask_layers(widget_factory, qtbot) -> None:
    viewer, widget = widget_factory()
    image, _ = add_sample(viewer)
    source = np.array(image.data)
    assert widget.image.value is image
    widget.masks.row("cracks").use.value = False  # restore only what we paint below
    widget.masks.new_mask_button.native.click()
    painted = viewer.layers["mask"]
    assert painted.data.shape == (400, 600) and isinstance(painted.data, np.ndarray)
    painted.brush_size = 9
    painted.paint((100, 100), 1)
    painted.paint((300, 450), 2)
    viewer.add_shapes([[[20, 400], [20, 480], [60, 480], [60, 400]]], shape_type="rectangle",
                      name="losses")
    widget.masks.row("mask").values.value = "1"  # only label 1 of the painted layer
    assert [row.layer.name for row in widget.masks.rows] == ["cracks", "mask", "losses"]
    widget.method.value = "telea"
    hole = np.asarray(widget.masks.combined_mask(image))
    assert hole[100, 100] and not hole[300, 450] and hole[40, 440] and not hole[200, 200]

    widget.run_button.native.click()
    assert widget.busy  # the work runs in a napari thread_worker
    wait_until_idle(qtbot, widget)
    assert widget.last_error is None
    result = viewer.layers["telea cracked coffee"]
    assert result.rgb and result.metadata["napari_inpaint"]["method"] == "telea"
    assert np.array_equal(result.data[~hole], source[~hole])
    assert not np.array_equal(result.data[hole], source[hole])
    assert np.array_equal(image.data, source)  # the source is never modified

    widget.compare.value = True  # before/after
    assert not result.visible
    widget.compare.value = False
    assert result.visible


def test_grow_and_preview_the_combined_mask(widget_factory, picture) -> None:
    viewer, widget = widget_factory()
    viewer.add_image(picture, name="picture", rgb=True)
    labels = np.zeros(picture.shape[:2], dtype=np.uint8)
    labels[20, 30] = 3
    viewer.add_labels(labels, name="damage")
    widget.masks.grow.value = 2
    widget.masks.preview_button.native.click()
    preview = viewer.layers["combined mask"]
    assert int(preview.data.sum()) == 13  # a radius-2 disk
    assert [row.layer.name for row in widget.masks.rows] == ["damage"]  # preview not listed
    widget.masks.grow.value = 0
    widget.masks.preview_button.native.click()
    assert int(viewer.layers["combined mask"].data.sum()) == 1
    assert len(viewer.layers) == 3


def test_threshold_makes_a_mask_layer(widget_factory, picture) -> None:
    viewer, widget = widget_factory()
    picture = picture // 2  # nothing bright but the square
    picture[5:9, 5:9] = 255
    viewer.add_image(picture, name="picture", rgb=True)
    widget.masks.range.value = (0.95, 1.0)
    widget.masks.threshold_button.native.click()
    layer = viewer.layers[-1]
    assert layer.data.dtype == np.uint8 and layer.data.sum() == 16
    assert widget.masks.row(layer.name).use.value


def test_third_party_method_gets_generated_parameter_widgets(
    widget_factory, make_plugin, picture
) -> None:
    make_plugin("flat", SCHEMA_PLUGIN)
    viewer, widget = widget_factory()
    labels = {value: label for label, value in _choices(widget.method)}
    assert labels["flat-fill"] == "    flat-fill · classical · time: after a first run"
    assert labels["telea"].startswith("    telea · classical · ")
    names = [name for _, name in _choices(widget.method)]
    assert names.index("telea") < names.index("edge-gan") < names.index("flat-fill")  # by family
    assert names.index("header:Third-party plugins") == names.index("flat-fill") - 1
    widget.method.value = "flat-fill"
    assert widget.summary.value.endswith("Test only: fills with a constant.")
    inputs = {w.name: w for w in widget.params}
    expected = {"level": widgets.FloatSpinBox, "passes": widgets.SpinBox,
                "invert": widgets.CheckBox, "style": widgets.ComboBox,
                "note": widgets.LineEdit, "table": widgets.FileEdit}
    assert {name: type(w) for name, w in inputs.items()} == expected
    assert (inputs["level"].min, inputs["level"].max, inputs["level"].value) == (0, 1, 0.25)
    assert inputs["style"].choices == ("flat", "noisy") and inputs["level"].tooltip == "grey level"
    assert not widget.device.enabled and not widget.fit_button.enabled

    add_picture_and_mask(viewer, picture, slice(10, 20), slice(10, 20))
    inputs["level"].value = 0.5
    inputs["invert"].value = True
    widget.synchronous = True
    widget.run_button.native.click()
    assert widget.last_error is None
    result = viewer.layers["flat-fill picture"]
    assert (result.data[10:20, 10:20] == 128).all()
    assert result.metadata["napari_inpaint"]["params"]["invert"] is True


def _choices(combo) -> list[tuple[str, str]]:
    return [(combo.native.itemText(i), combo.native.itemData(i)) for i in range(len(combo))]



def test_progress_is_determinate_per_tile_and_the_preview_fills(widget_factory, make_plugin,
                                                                qtbot) -> None:
    viewer, widget, events = slow_fill_widget(widget_factory, make_plugin, 0.02)
    widget.run_button.native.click()
    assert "slow-fill (running) grey" in viewer.layers  # the live preview
    wait_until_idle(qtbot, widget)
    assert widget.last_error is None
    tiles = [event for event in events if event.total == 16]
    assert [event.done for event in tiles][-16:] == list(range(1, 17))
    assert "tile 3/16, about" in tiles[3].label and "left" in tiles[3].label
    assert widget.first_pixels_seconds is not None
    assert [layer.name for layer in viewer.layers] == ["grey", "mask", "slow-fill grey"]
    assert widget.status.value == "done: added layer 'slow-fill grey'"  # not the last step


def test_cancel_stops_the_computation_within_one_tile(widget_factory, make_plugin, qtbot) -> None:
    viewer, widget, steps = slow_fill_widget(widget_factory, make_plugin, 0.3, lambda e: e.done)
    widget.run_button.native.click()
    qtbot.waitUntil(lambda: max(steps, default=0) >= 1, timeout=10_000)
    assert widget.busy and widget.cancel_button.enabled
    started = time.monotonic()
    widget.cancel_button.native.click()
    wait_until_idle(qtbot, widget, timeout=3)  # the worker itself has ended (finished)
    assert time.monotonic() - started < 1.5  # within one 0.3 s tile (and Qt's overhead)
    assert max(steps) < 16
    assert not [t for t in threading.enumerate() if t.name.startswith("napari-inpaint")]
    assert [layer.name for layer in viewer.layers] == ["grey", "mask"]  # preview removed
    assert "cancelled" in widget.status.value and widget.last_error is None
    assert widget.run_button.enabled and not widget.cancel_button.enabled


def test_edge_gan_edge_map_is_added_as_a_layer(widget_factory, picture, one_torch_thread):
    viewer, widget = widget_factory()
    add_picture_and_mask(viewer, picture, slice(20, 30), slice(25, 40))
    widget.method.value = "edge-gan"
    widget.device.value = "cpu"
    {w.name: w for w in widget.params}["show_edges"].value = True
    widget.synchronous = True
    widget.run_button.native.click()
    assert widget.last_error is None
    edges = viewer.layers["edge-gan (lite) picture edges"]
    assert edges.data.shape == (48, 64) and edges.data.dtype == np.float32
    result = viewer.layers["edge-gan (lite) picture"]
    assert result.metadata["napari_inpaint"]["params"]["show_edges"]
