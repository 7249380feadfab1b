"""Compare views (difference, split), presets saved and loaded, and a result's provenance."""

from __future__ import annotations

import json

import numpy as np
import pytest

from inpaint_core.errors import InvalidInputError

from .conftest import add_picture_and_mask


@pytest.fixture
def restored(widget_factory, picture):
    """A viewer with a picture, two mask layers and a telea result (synchronous)."""
    viewer, widget = widget_factory()
    viewer.add_image(picture, name="picture", rgb=True)
    cracks = np.zeros(picture.shape[:2], dtype=np.uint8)
    cracks[10:14, 20:30] = 1
    cracks[30:34, 5:9] = 2
    viewer.add_labels(cracks, name="cracks")
    viewer.add_labels(np.zeros(picture.shape[:2], dtype=np.uint8), name="spare")
    widget.masks.row("cracks").values.value = "1"
    widget.masks.row("spare").use.value = False
    widget.masks.grow.value = 1
    widget.method.value = "telea"
    widget.synchronous = True
    widget.run_button.native.click()
    assert widget.last_error is None
    return viewer, widget


def test_difference_layer_between_result_and_source(restored, picture) -> None:
    viewer, widget = restored
    layer = widget.session.show_difference()
    assert layer.name == "difference: telea picture vs picture"
    hole = np.asarray(widget.masks.combined_mask(viewer.layers["picture"]))
    assert layer.data.shape == (48, 64) and (layer.data[~hole] == 0).all()
    assert layer.data[hole].max() > 0


def test_split_view_of_two_results_moves_with_the_slider(restored) -> None:
    viewer, widget = restored
    widget.method.value = "navier-stokes"
    widget.run_button.native.click()
    first = viewer.layers["telea picture"]
    widget.session.compare_with.value = first
    layer = widget.session.show_split()
    assert layer.name == "split: telea picture | navier-stokes picture"
    second = viewer.layers["navier-stokes picture"].data
    assert np.array_equal(layer.data[:, :20], first.data[:, :20])
    assert np.array_equal(layer.data[:, 40:], second[:, 40:])
    widget.session.split_at.value = 0.9
    assert np.array_equal(layer.data[:, :50], first.data[:, :50])
    widget.session.compare_with.value = viewer.layers["navier-stokes picture"]
    with pytest.raises(InvalidInputError, match="compared with itself"):
        widget.session.show_split()


def test_preset_round_trip_and_the_same_record_in_the_provenance(restored, tmp_path) -> None:
    viewer, widget = restored
    {w.name: w for w in widget.params}["radius"].value = 7
    path = widget.session.save_preset(tmp_path / "cracks.json")
    record = json.loads(path.read_text())
    assert record["method"] == "telea" and record["params"] == {"radius": 7}
    assert record["masks"] == [{"layer": "cracks", "values": "1"}] and record["grow"] == 1
    assert record["weights"] is None and "napari-inpaint" in record["versions"]

    widget.method.value = "exemplar"  # change everything, then load
    widget.masks.row("spare").use.value = True
    widget.masks.row("cracks").values.value = ""
    widget.masks.grow.value = 0
    widget.session.load_preset(path)
    assert widget.method.value == "telea"
    assert {w.name: w for w in widget.params}["radius"].value == 7
    assert widget.masks.row("cracks").use.value and widget.masks.row("cracks").values.value == "1"
    assert not widget.masks.row("spare").use.value and widget.masks.grow.value == 1
    assert widget.status.value == "preset loaded: cracks.json"

    settings = viewer.layers["telea picture"].metadata["napari_inpaint"]["settings"]
    assert settings["masks"] == [{"layer": "cracks", "values": "1"}] and settings["grow"] == 1
    assert settings["method"] == "telea" and "versions" in settings


def test_learned_result_provenance_names_the_weights_sha256(widget_factory, picture,
                                                            one_torch_thread) -> None:
    viewer, widget = widget_factory()
    add_picture_and_mask(viewer, picture, slice(20, 30), slice(25, 40))
    widget.method.value = "context-encoder"
    widget.device.value = "cpu"
    widget.synchronous = True
    widget.run_button.native.click()
    assert widget.last_error is None
    metadata = viewer.layers["context-encoder (lite) picture"].metadata["napari_inpaint"]
    assert metadata["settings"]["weights_sha256"] == metadata["weights"]["sha256"]
    assert len(metadata["weights"]["sha256"]) == 64


def test_a_preset_of_another_version_is_refused(restored, tmp_path) -> None:
    _, widget = restored
    path = tmp_path / "old.json"
    path.write_text(json.dumps({"method": "telea", "preset_version": 99}))
    with pytest.raises(InvalidInputError, match="has version 99"):
        widget.session.load_preset(path)
