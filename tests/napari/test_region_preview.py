"""Region preview: a drawn rectangle or the view restored first, then Accept or Discard."""

from __future__ import annotations

import numpy as np
import pytest

from inpaint_core.errors import InvalidInputError
from napari_inpaint._preview import pixel_box, view_box, with_margin

from .conftest import FAILING_PLUGIN, slow_fill_widget

SHAPE = (120, 160)
#: Small holes far apart: two inside the rectangle below, one crossing its edge, one outside.
HOLES = ((40, 50, 60, 66), (60, 64, 75, 95), (28, 34, 98, 106), (100, 106, 130, 140))
RECTANGLE = [[30, 50], [30, 100], [70, 100], [70, 50]]  # rows [30, 70), cols [50, 100)


@pytest.fixture
def scene(widget_factory):
    """A viewer with a textured grey-and-colour image, its holes as Labels, and a Shapes
    layer holding a rectangle chosen as the preview region; telea, synchronous."""
    viewer, widget = widget_factory()
    rows, cols = np.mgrid[0 : SHAPE[0], 0 : SHAPE[1]].astype(np.float64)
    picture = np.stack([rows / SHAPE[0], cols / SHAPE[1],
                        0.5 + 0.4 * np.sin(cols / 5 + rows / 7)], axis=2)
    image = viewer.add_image(np.rint(picture * 255).astype(np.uint8), name="picture", rgb=True,
                             scale=(2.0, 2.0), translate=(10.0, -4.0))
    mask = np.zeros(SHAPE, dtype=np.uint8)
    for row0, row1, col0, col1 in HOLES:
        mask[row0:row1, col0:col1] = 1
    viewer.add_labels(mask, name="damage", scale=(2.0, 2.0), translate=(10.0, -4.0))
    viewer.add_shapes([RECTANGLE], shape_type="rectangle", name="region", scale=(2.0, 2.0),
                      translate=(10.0, -4.0))
    widget.method.value = "telea"
    widget.synchronous = True
    widget.region_preview.region.value = viewer.layers["region"]
    return viewer, widget, image, mask.astype(bool)


def full_result(viewer, widget) -> np.ndarray:
    """The whole image restored by Run with the current settings."""
    widget.run_button.native.click()
    assert widget.last_error is None
    layer = viewer.layers["telea picture"]
    data = np.array(layer.data)
    viewer.layers.remove(layer)
    return data


def test_preview_of_a_drawn_rectangle_equals_the_full_run_inside_it(scene) -> None:
    viewer, widget, image, hole = scene
    panel = widget.region_preview
    assert not widget.masks.row("region").use.value  # the region is not a hole
    assert not panel.accept_button.enabled and not panel.discard_button.enabled
    panel.preview_button.native.click()
    assert widget.last_error is None
    layer = viewer.layers["preview: telea picture"]
    assert layer.data.shape == (40, 50, 3)
    assert tuple(layer.translate) == (10.0 + 2 * 30, -4.0 + 2 * 50)
    assert tuple(layer.scale) == (2.0, 2.0)
    meta = layer.metadata["napari_inpaint"]
    assert meta["role"] == "region-preview" and meta["preview"] and not meta["stale"]
    assert meta["region"] == {"rows": [30, 70], "cols": [50, 100]}
    assert meta["window"] == {"rows": [14, 86], "cols": [34, 116]}  # telea's margin: 16 px
    assert [layer.name for layer in viewer.layers] == ["picture", "damage", "region",
                                                       "preview: telea picture"]
    assert panel.accept_button.enabled and panel.discard_button.enabled
    assert "preview of rows 30-70, columns 50-100" in widget.status.value

    source = np.asarray(image.data)[30:70, 50:100]
    inside = hole[30:70, 50:100]
    assert np.array_equal(layer.data[~inside], source[~inside])  # only the holes change
    assert not np.array_equal(layer.data[inside], source[inside])
    full = full_result(viewer, widget)[30:70, 50:100]
    assert np.array_equal(layer.data, full)  # what the full run gives inside the region


def test_preview_of_the_region_in_view(scene) -> None:
    viewer, widget, image, _ = scene
    panel = widget.region_preview
    panel.region.value = None  # the view
    camera = viewer.scene.camera if hasattr(viewer, "scene") else viewer.camera
    viewer.canvas.size = (200, 300)
    camera.center = (0.0, 10.0 + 2 * 55, -4.0 + 2 * 100)  # world; pixel (55, 100)
    camera.zoom = 5.0  # 200 x 300 screen px = 40 x 60 world units = 20 x 30 pixels
    box = panel.region_box(image)
    assert tuple(box) == (45, 65, 85, 115)
    panel.preview_button.native.click()
    assert widget.last_error is None
    layer = viewer.layers["preview: telea picture"]
    assert layer.data.shape == (20, 30, 3)
    assert tuple(layer.translate) == (10.0 + 2 * 45, -4.0 + 2 * 85)
    full = full_result(viewer, widget)[45:65, 85:115]
    assert np.array_equal(layer.data, full)

    camera.center = (0.0, 10.0 + 2 * 2, -4.0 + 2 * 2)  # the top-left corner: clipped
    assert tuple(panel.region_box(image)) == (0, 12, 0, 17)


def test_accept_runs_the_whole_image_and_removes_the_preview(scene) -> None:
    viewer, widget, image, hole = scene
    panel = widget.region_preview
    panel.preview_button.native.click()
    preview = np.array(viewer.layers["preview: telea picture"].data)
    panel.accept_button.native.click()
    assert widget.last_error is None
    assert [layer.name for layer in viewer.layers] == ["picture", "damage", "region",
                                                       "telea picture"]
    result = viewer.layers["telea picture"]
    assert result.metadata["napari_inpaint"]["role"] == "result"
    assert np.array_equal(result.data[30:70, 50:100], preview)
    assert (result.data[hole] != np.asarray(image.data)[hole]).any()  # the holes outside too
    assert panel.layer is None and not panel.accept_button.enabled
    assert widget.status.value == "done: added layer 'telea picture'"


def test_discard_removes_the_preview(scene) -> None:
    viewer, widget, _, _ = scene
    panel = widget.region_preview
    panel.preview_button.native.click()
    panel.discard_button.native.click()
    assert "preview: telea picture" not in viewer.layers and panel.layer is None
    assert not panel.accept_button.enabled and not panel.discard_button.enabled
    assert widget.status.value == "preview discarded"


def test_a_new_preview_replaces_the_old_one(scene) -> None:
    viewer, widget, _, _ = scene
    panel = widget.region_preview
    panel.preview_button.native.click()
    viewer.layers["region"].add_rectangles([[90, 120], [115, 150]])  # the last rectangle
    panel.preview_button.native.click()
    previews = [layer for layer in viewer.layers if layer.name.startswith("preview:")]
    assert len(previews) == 1 and previews[0] is panel.layer
    assert previews[0].data.shape == (25, 30, 3)
    assert previews[0].metadata["napari_inpaint"]["region"] == {"rows": [90, 115],
                                                               "cols": [120, 150]}


def test_changed_settings_make_the_preview_stale(scene) -> None:
    viewer, widget, _, _ = scene
    panel = widget.region_preview
    panel.preview_button.native.click()
    radius = {w.name: w for w in widget.params}["radius"]
    radius.value = radius.value + 2
    assert panel.stale and panel.layer.metadata["napari_inpaint"]["stale"]
    assert widget.status.value.startswith("preview stale")
    assert not panel.accept_button.enabled and panel.discard_button.enabled
    assert "preview: telea picture" in viewer.layers  # kept, to compare with
    radius.value = radius.value - 2
    assert not panel.stale and panel.accept_button.enabled
    widget.method.value = "navier-stokes"
    assert panel.stale
    with pytest.raises(InvalidInputError, match="stale"):
        panel.accept()  # called anyway: refused, nothing run
    assert "navier-stokes picture" not in viewer.layers
    panel.preview_button.native.click()  # a fresh preview of the new method
    assert [layer.name for layer in viewer.layers][-1] == "preview: navier-stokes picture"
    assert not panel.stale and panel.accept_button.enabled


def test_an_error_in_preview_leaves_the_widget_usable(widget_factory, make_plugin, qtbot,
                                                      picture) -> None:
    make_plugin("failing", FAILING_PLUGIN)
    viewer, widget = widget_factory()
    viewer.add_image(picture, name="picture", rgb=True)
    mask = np.zeros(picture.shape[:2], dtype=np.uint8)
    mask[10:20, 10:20] = 1
    viewer.add_labels(mask, name="damage")
    widget.method.value = "failing-fill"
    widget.region_preview.preview_button.native.click()  # the view: the whole picture
    qtbot.waitUntil(lambda: not widget.busy, timeout=30_000)
    assert widget.last_error == "RuntimeError: CUDA out of memory (test)"
    assert widget.status.value.startswith("error: RuntimeError")
    assert [layer.name for layer in viewer.layers] == ["picture", "damage"]  # nothing left
    panel = widget.region_preview
    assert panel.preview_button.enabled and widget.run_button.enabled
    assert not widget.cancel_button.enabled and not panel.accept_button.enabled
    widget.method.value = "telea"
    widget.synchronous = True
    widget.last_error = None
    panel.preview_button.native.click()
    assert widget.last_error is None and panel.layer is not None
    assert panel.layer.data.shape[:2] == (48, 64)


def test_region_arithmetic() -> None:
    assert tuple(pixel_box([[-0.5, -0.5], [47.5, 63.5]], (48, 64))) == (0, 48, 0, 64)
    assert tuple(pixel_box([[10.2, 5], [3, 20.7]], (48, 64))) == (3, 11, 5, 21)
    assert tuple(with_margin(pixel_box([[2, 3], [10, 60]], (48, 64)), 8, (48, 64))) == (
        0, 18, 0, 64)
    assert tuple(view_box(lambda p: p, (0, 24.0, 32.0), 2.0, (20, 40), (48, 64))) == (
        19, 29, 22, 42)
    with pytest.raises(InvalidInputError, match="does not overlap"):
        pixel_box([[60, 70], [80, 90]], (48, 64))


def test_preview_of_a_big_lazy_image_reads_only_the_crop(scene) -> None:
    _, widget, _, _ = scene
    panel = widget.region_preview
    panel.preview_button.native.click()
    dense = np.array(panel.layer.data)
    widget.tiled_pixels = 1000  # the picture now counts as big: its mask is a dask array
    panel.preview_button.native.click()
    assert widget.last_error is None
    assert np.array_equal(panel.layer.data, dense)


def test_cancel_stops_a_preview_and_keeps_nothing(widget_factory, make_plugin, qtbot) -> None:
    viewer, widget, steps = slow_fill_widget(widget_factory, make_plugin, 0.3, lambda e: e.done)
    widget.region_preview.preview_button.native.click()  # the view: the whole image
    assert "slow-fill (running) grey" in viewer.layers and widget.busy
    assert not widget.region_preview.preview_button.enabled
    qtbot.waitUntil(lambda: max(steps, default=0) >= 1, timeout=10_000)
    widget.cancel_button.native.click()
    qtbot.waitUntil(lambda: not widget.busy, timeout=3_000)
    assert max(steps) < 16
    assert [layer.name for layer in viewer.layers] == ["grey", "mask"]
    assert widget.status.value == "cancelled: the preview stopped; nothing was changed"
    assert widget.region_preview.preview_button.enabled and widget.region_preview.layer is None
