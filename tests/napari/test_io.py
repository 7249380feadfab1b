"""Reader, writer, sample data, tiled restoration of big layers, and "Fit to this image"."""

from __future__ import annotations

import time

import dask.array as da
import numpy as np
import pytest
import zarr

from inpaint_core import restore_scan
from inpaint_core.io import read_mask
from napari_inpaint import _sample_data
from napari_inpaint._reader import get_reader
from napari_inpaint._writer import write_labels

from .conftest import SLOW_PLUGIN
from .test_widget import wait_until_idle


@pytest.fixture
def scan_store(tmp_path, picture):
    """A (96, 128, 3) zarr scan chunked 32, and a bool mask with two holes."""
    scan = np.concatenate([np.concatenate([picture] * 2, axis=1)] * 2, axis=0)
    stored = zarr.create_array(store=str(tmp_path / "scan.zarr"), shape=scan.shape,
                               chunks=(32, 32, 3), dtype="uint8")
    stored[...] = scan
    mask = np.zeros(scan.shape[:2], dtype=bool)
    mask[10:16, 40:60] = True
    mask[70:74, 5:90] = True
    return tmp_path / "scan.zarr", scan, mask


def test_reader_opens_the_engines_multiscale_store(scan_store, tmp_path, make_napari_viewer):
    path, scan, mask = scan_store
    restore_scan(str(path), mask, "telea", tmp_path / "restored.zarr", tile=64, pyramid_side=32,
                 pyramid="always")
    assert get_reader(str(tmp_path / "scan.png")) is None
    reader = get_reader(str(tmp_path / "restored.zarr"))
    ((levels, kwargs, kind),) = reader(str(tmp_path / "restored.zarr"))
    assert kind == "image" and kwargs["multiscale"] and kwargs["rgb"]
    assert [level.shape for level in levels] == [(96, 128, 3), (48, 64, 3), (24, 32, 3)]
    assert isinstance(levels[0], da.Array)  # lazy
    provenance = kwargs["metadata"]["inpaint"]
    assert provenance["method"] == "telea" and provenance["scan"] == str(path)
    assert provenance["complete"] is True and provenance["settings"]["tile"] == 64
    viewer = make_napari_viewer()
    (layer,) = viewer.open(str(tmp_path / "restored.zarr"), plugin="napari-inpaint")
    assert layer.multiscale and len(layer.data) == 3
    assert np.array_equal(np.asarray(layer.data[0])[~mask], scan[~mask])


def test_reader_shows_an_ome_zarr_stored_with_other_axes_as_rgb(tmp_path, scan_store) -> None:
    from inpaint_core.io.store import write_multiscales

    _, scan, _ = scan_store
    group = zarr.open_group(str(tmp_path / "tczyx.zarr"), mode="w", zarr_format=3)
    for name, level in (("0", scan), ("1", scan[::2, ::2])):  # stored (t, c, z, y, x)
        stored = np.moveaxis(level, -1, 0)[None, :, None]
        group.create_array(name, data=stored, chunks=(1, 3, 1, 32, 32))
    write_multiscales(group, 2, "tczyx", ("t", "c", "z", "y", "x"))
    ((levels, kwargs, kind),) = get_reader(str(tmp_path / "tczyx.zarr"))(
        str(tmp_path / "tczyx.zarr"))
    assert kind == "image" and kwargs["rgb"] and kwargs["multiscale"]
    assert [level.shape for level in levels] == [(96, 128, 3), (48, 64, 3)]
    assert np.array_equal(np.asarray(levels[0]), scan)
    assert np.array_equal(np.asarray(levels[1]), scan[::2, ::2])


def test_writer_round_trips_masks(tmp_path, scan_store) -> None:
    labels = np.zeros((40, 50), dtype=np.uint8)
    labels[3:9, 4:20] = 2
    (png,) = write_labels(str(tmp_path / "mask.png"), labels, {"name": "m"})
    assert np.array_equal(read_mask(png), labels)
    lazy = da.from_array(labels, chunks=16)
    (stored,) = write_labels(str(tmp_path / "mask.zarr"), [lazy, lazy[::2, ::2]], {"name": "m"})
    ((data, _, kind),) = get_reader(stored)(stored)
    assert kind == "labels" and np.array_equal(np.asarray(data), labels)
    with pytest.raises(FileExistsError, match="already exists"):
        write_labels(stored, labels, {})
    with pytest.raises(OSError, match=r"use a \.zarr or \.png"):
        write_labels(str(tmp_path / "mask.jpg"), labels, {})
    _, _, mask = scan_store  # a bool mask written by the scan generator reads as Labels too
    bool_store = zarr.create_array(store=str(tmp_path / "b.zarr"), shape=mask.shape,
                                   dtype="bool")
    bool_store[...] = mask
    ((_, _, kind),) = get_reader(str(tmp_path / "b.zarr"))(str(tmp_path / "b.zarr"))
    assert kind == "labels"


def test_sample_data(monkeypatch) -> None:
    monkeypatch.setattr(_sample_data, "MURAL_SIZE", 256)
    (picture, image_kwargs, image_kind), (labels, _, labels_kind) = _sample_data.mural()
    assert picture.shape == (256, 256, 3) and image_kind == "image" and image_kwargs["rgb"]
    assert labels_kind == "labels" and set(np.unique(labels)) == {0, 1, 2}  # cracks, losses
    assert (picture[labels != 0] == (222, 214, 196)).all()  # plaster shows through
    (photo, _, _), (cracks, _, _) = _sample_data.photo()
    assert photo.shape == (400, 600, 3) and cracks.shape == (400, 600)
    assert 0 < cracks.mean() < 0.1


def test_big_layer_runs_tiled_into_the_chosen_store(scan_store, tmp_path, widget_factory,
                                                    qtbot) -> None:
    path, scan, mask = scan_store
    viewer, widget = widget_factory()
    (source,) = viewer.open(str(path), plugin="napari-inpaint")
    viewer.add_labels(mask.astype(np.uint8), name="damage")
    widget.method.value = "telea"
    widget.tile.value = 64
    widget.output.value = str(tmp_path / "out.zarr")
    widget.tiled_pixels = 1000  # the 96 x 128 scan counts as big
    widget.run_button.native.click()
    wait_until_idle(qtbot, widget)
    assert widget.last_error is None
    result = viewer.layers["telea scan"]
    assert result.metadata["inpaint"]["complete"] is True
    assert result.metadata["napari_inpaint"]["path"] == str(tmp_path / "out.zarr")
    restored = np.asarray(result.data[0] if result.multiscale else result.data)
    assert np.array_equal(restored[~mask], scan[~mask])
    assert not np.array_equal(restored[mask], scan[mask])
    assert np.array_equal(np.asarray(source.data), scan)


def test_a_missing_output_folder_is_offered_and_created(scan_store, tmp_path,
                                                       widget_factory) -> None:
    path, _, mask = scan_store
    viewer, widget = widget_factory()
    viewer.open(str(path), plugin="napari-inpaint")
    viewer.add_labels(mask.astype(np.uint8), name="damage")
    widget.method.value = "telea"
    widget.tile.value = 64
    widget.tiled_pixels = 1000
    widget.synchronous = True
    target = tmp_path / "new" / "folder" / "out.zarr"
    widget.output.value = str(target)
    questions = []
    widget.ask = lambda question: questions.append(question) or False  # the user says no
    widget.run_button.native.click()
    assert "output folder" in widget.last_error and "does not exist" in widget.last_error
    assert not target.parent.exists() and "Create it" in questions[0]
    widget.last_error = None
    widget.ask = lambda question: True  # the user says yes
    widget.run_button.native.click()
    assert widget.last_error is None and target.is_dir()
    assert widget.status.value == "done: added layer 'telea scan'"


def test_cancel_of_a_tiled_run_removes_its_store(scan_store, tmp_path, widget_factory,
                                                 make_plugin, qtbot) -> None:
    make_plugin("slow", SLOW_PLUGIN)
    path, _, mask = scan_store
    viewer, widget = widget_factory()
    viewer.open(str(path), plugin="napari-inpaint")
    viewer.add_labels(mask.astype(np.uint8), name="damage")
    widget.method.value = "slow-fill"
    {w.name: w for w in widget.params}["seconds"].value = 0.4
    widget.output.value = str(tmp_path / "out.zarr")
    widget.tiled_pixels = 1000
    widget.run_button.native.click()
    qtbot.waitUntil(lambda: (tmp_path / "out.zarr").exists(), timeout=10_000)
    started = time.monotonic()
    widget.cancel_button.native.click()
    wait_until_idle(qtbot, widget, timeout=3)
    assert time.monotonic() - started < 2
    assert not (tmp_path / "out.zarr").exists()
    assert [layer.name for layer in viewer.layers] == ["scan", "damage"]


def test_new_mask_of_a_big_image_is_zarr_backed(scan_store, widget_factory) -> None:
    path, _, _ = scan_store
    viewer, widget = widget_factory()
    viewer.open(str(path), plugin="napari-inpaint")
    widget.tiled_pixels = 1000
    layer = widget.masks.new_mask_layer()
    assert isinstance(layer.data, zarr.Array) and layer.data.shape == (96, 128)
    layer.paint((50, 50), 1)
    assert np.asarray(layer.data[50, 50]) == 1
    assert isinstance(widget.masks.combined_mask(viewer.layers["scan"]), da.Array)


def test_fit_to_this_image_then_uses_the_weights(widget_factory, qtbot, one_torch_thread):
    viewer, widget = widget_factory()
    rows, cols = np.mgrid[0:80, 0:80].astype(np.float64)
    image = np.stack([rows / 79, cols / 79, 0.5 + 0.4 * np.sin(cols / 5)], axis=2)
    viewer.add_image(np.rint(image * 255).astype(np.uint8), name="picture", rgb=True)
    widget.method.value = "edge-gan"
    widget.device.value = "cpu"
    widget.fit_steps.value = 2
    widget.fit_size = 64
    assert widget.fit_button.enabled
    widget.fit_button.native.click()
    wait_until_idle(qtbot, widget, timeout=120)
    assert widget.last_error is None
    weights = {w.name: w for w in widget.params}["weights"].value
    assert weights.name == "edge-gan.safetensors" and weights.is_file()
    assert widget.method_params()["weights"] == weights
