"""The grouped method picker: family headers, learned marker, active weights, and estimates
from a cost measured on the first run and kept."""

from __future__ import annotations

import json

import numpy as np
import pytest

from napari_inpaint._methods import CostCache


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("INPAINT_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def rows(combo) -> list[tuple[str, str, bool]]:
    model = combo.native.model()
    return [(combo.native.itemText(i), combo.native.itemData(i), model.item(i).isEnabled())
            for i in range(len(combo))]


def test_methods_are_grouped_under_family_headers(widget_factory, home) -> None:
    _, widget = widget_factory()
    entries = rows(widget.method)
    headers = [text.strip("─ ") for text, value, _ in entries if value.startswith("header:")]
    assert headers == ["Classical", "Context Encoder", "U-Net", "CGAN", "DCGAN", "StackGAN",
                       "Fourier"]
    assert all(not enabled for _, value, enabled in entries if value.startswith("header:"))
    labels = {value: text for text, value, _ in entries}
    assert labels["telea"] == "    telea · classical · time: after a first run"
    assert labels["edge-gan"] == "    edge-gan · learned · lite · time: after a first run"
    assert labels["lama"] == "    lama · learned · no weights · time: after a first run"
    order = [value for _, value, _ in entries]
    assert order.index("header:DCGAN") < order.index("edge-gan") < order.index("header:StackGAN")
    widget.run_button.native.click()  # an error, but the rows stay in order after a reset
    widget.method.reset_choices()
    assert [value for _, value, _ in rows(widget.method)] == order
    widget.method.value = "header:U-Net"  # a header is never the value: its first method
    assert widget.method.value == "partial-conv-unet"


def test_estimate_comes_from_the_cost_measured_on_the_first_run(widget_factory, picture,
                                                                home) -> None:
    viewer, widget = widget_factory()
    viewer.add_image(picture, name="picture", rgb=True)
    mask = np.zeros(picture.shape[:2], dtype=np.uint8)
    mask[10:14, 20:30] = 1
    viewer.add_labels(mask, name="damage")
    widget.synchronous = True
    widget.method.value = "telea"
    assert "time: after a first run" in widget.method.native.currentText()
    widget.run_button.native.click()
    assert widget.last_error is None
    costs = json.loads(CostCache().path.read_text())
    assert set(costs) == {"telea@cpu"} and costs["telea@cpu"] > 0
    assert "~" in widget.method.native.currentText()  # an estimate, from the measured cost
    values = [value for _, value, _ in rows(widget.method)]
    assert values.index("telea") < values.index("header:Context Encoder")  # still in its group
    assert CostCache().estimate("telea", "cpu", 48 * 64) == pytest.approx(
        costs["telea@cpu"] * 48 * 64
    )


def test_the_entry_shows_the_weights_chosen_for_the_method(widget_factory, home, tmp_path):
    _, widget = widget_factory()
    widget.method.value = "edge-gan"
    picker = widget.weights_picker()
    picker.value = str(tmp_path / "mine.safetensors")
    labels = {value: text for text, value, _ in rows(widget.method)}
    assert labels["edge-gan"].startswith("    edge-gan · learned · mine · ")
    widget.method.value = "telea"
    widget.method.value = "edge-gan"  # the choice is kept for the method
    assert str(widget.weights_picker().value).endswith("mine.safetensors")


def test_spin_boxes_take_range_and_step_from_the_schema(widget_factory) -> None:
    _, widget = widget_factory()
    widget.method.value = "edge-gan"
    inputs = {w.name: w for w in widget.params}
    threshold = inputs["edge_threshold"]
    assert (threshold.min, threshold.max) == (0.0, 0.99) and threshold.step == 0.01
    sigma = inputs["canny_sigma"]
    assert sigma.max < 1e6  # an unbounded side is not a float's range
    assert all(getattr(w, "max", 0) < 1e6 for w in inputs.values())


def shown(widget) -> bool:
    return not widget.native.isHidden()  # the viewer itself is not shown in these tests


def test_advanced_settings_are_shown_when_they_apply(widget_factory, picture) -> None:
    viewer, widget = widget_factory()
    viewer.add_image(picture, name="picture", rgb=True)
    widget.method.value = "telea"
    assert not widget.advanced.value and not shown(widget.tile) and not shown(widget.device)
    widget.advanced.value = True
    assert shown(widget.tile) and not shown(widget.device)  # telea has no device
    assert not shown(widget.output) and not shown(widget.fit_row)  # small, classical
    widget.method.value = "edge-gan"
    assert shown(widget.device) and shown(widget.fit_row)
    widget.tiled_pixels = 100  # the picture now counts as big: the output store applies
    widget.method.value = "telea"
    assert shown(widget.output)
