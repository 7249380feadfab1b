"""The pure mask helpers: combination, label restriction, shapes, dilation, thresholds."""

from __future__ import annotations

import dask.array as da
import numpy as np
import pytest
import zarr

from inpaint_core.errors import InvalidInputError
from napari_inpaint.masks import (
    Outline,
    colour_mask,
    combine_masks,
    grow_mask,
    label_mask,
    parse_label_values,
    shapes_mask,
    threshold_mask,
)


def test_parse_label_values() -> None:
    assert parse_label_values("") == ()
    assert parse_label_values(" 1, 3-5;7 ") == (1, 3, 4, 5, 7)
    assert parse_label_values("2,2") == (2,)
    with pytest.raises(InvalidInputError, match="'x' is not an integer"):
        parse_label_values("1, x")
    with pytest.raises(InvalidInputError, match="ascending"):
        parse_label_values("5-3")


def test_label_restriction_numpy_and_zarr(tmp_path) -> None:
    labels = np.array([[0, 1, 2], [3, 2, 0]], dtype=np.uint8)
    assert label_mask(labels).tolist() == [[False, True, True], [True, True, False]]
    assert label_mask(labels, (2,)).tolist() == [[False, False, True], [False, True, False]]
    stored = zarr.create_array(store=str(tmp_path / "l.zarr"), shape=(2, 3), chunks=(1, 2),
                               dtype="uint8")
    stored[...] = labels
    lazy = label_mask(stored, (1, 3))
    assert isinstance(lazy, da.Array)
    assert lazy.compute().tolist() == [[False, True, False], [True, False, False]]


def test_combine_ors_masks_and_checks_shapes() -> None:
    first = np.zeros((4, 5), dtype=bool)
    first[0, 0] = True
    second = np.zeros((4, 5), dtype=np.uint8)
    second[3, 4] = 2
    combined = combine_masks([("a", first), ("b", second)], (4, 5))
    assert combined.dtype == bool and combined.sum() == 2 and combined[3, 4]
    lazy = combine_masks([("a", first), ("b", da.from_array(second, chunks=2))], (4, 5))
    assert isinstance(lazy, da.Array)
    assert np.array_equal(lazy.compute(), combined)
    with pytest.raises(InvalidInputError, match="no mask layer"):
        combine_masks([], (4, 5))
    message = r"mask layer 'b': mask shape \(4, 4\) does not match image \(4, 5\)"
    with pytest.raises(InvalidInputError, match=message):
        combine_masks([("a", first), ("b", np.zeros((4, 4)))], (4, 5))


def test_shapes_fill_and_stroke() -> None:
    rectangle = Outline(np.array([[2.0, 3.0], [2.0, 8.0], [6.0, 8.0], [6.0, 3.0]]), "rectangle")
    mask = shapes_mask([rectangle], (10, 12))
    assert mask[4, 5] and mask[2, 3] and mask[6, 8]
    assert not mask[1, 5] and not mask[4, 10] and not mask[8, 5]
    line = Outline(np.array([[1.0, 0.0], [1.0, 11.0]]), "line", width=3)
    stroked = shapes_mask([line], (10, 12))
    assert stroked[0:3, 0:12].all() and not stroked[4:].any()
    ellipse = Outline(np.array([[10.0, 10.0], [10.0, 30.0], [20.0, 30.0], [20.0, 10.0]]),
                      "ellipse")
    oval = shapes_mask([ellipse], (32, 40))
    assert oval[15, 20] and oval[15, 11] and not oval[10, 10] and not oval[21, 20]
    with pytest.raises(InvalidInputError, match="shape type 'blob'"):
        shapes_mask([Outline(np.zeros((3, 2)), "blob")], (4, 4))


def test_lazy_shapes_match_in_memory_across_chunks(monkeypatch) -> None:
    monkeypatch.setattr("napari_inpaint.masks.MASK_CHUNK", 16)
    path = Outline(np.array([[3.0, 2.0], [20.0, 30.0], [40.0, 5.0]]), "path", width=2)
    polygon = Outline(np.array([[10.0, 10.0], [30.0, 45.0], [45.0, 12.0]]), "polygon")
    dense = shapes_mask([path, polygon], (48, 50))
    lazy = shapes_mask([path, polygon], (48, 50), lazy=True)
    assert isinstance(lazy, da.Array) and lazy.chunksize == (16, 16)
    assert np.array_equal(lazy.compute(), dense)


def test_grow_is_a_disk_and_lazy_agrees_across_chunks() -> None:
    mask = np.zeros((40, 40), dtype=bool)
    mask[20, 20] = True
    grown = grow_mask(mask, 3)
    assert grown.sum() == 29  # the pixels of a radius-3 disk (OpenCV's ellipse kernel)
    assert grown[20, 17] and grown[17, 20] and not grown[17, 17]
    assert grow_mask(mask, 0) is mask
    mask[15, 31] = True  # next to a chunk border of the lazy version
    lazy = grow_mask(da.from_array(mask, chunks=16), 4)
    assert np.array_equal(lazy.compute(), grow_mask(mask, 4))
    with pytest.raises(InvalidInputError, match="grow=-1"):
        grow_mask(mask, -1)


def test_threshold_on_brightness_and_channels() -> None:
    image = np.zeros((2, 3, 3), dtype=np.uint8)
    image[0, 0] = 255  # white
    image[0, 1] = (255, 0, 0)  # red
    image[1, 2] = (128, 128, 128)  # mid grey
    white = threshold_mask(image, 0.9, 1.0)
    assert white.tolist() == [[True, False, False], [False, False, False]]
    assert threshold_mask(image, 0.9, 1.0, "red").tolist() == [
        [True, True, False], [False, False, False]]
    mid = threshold_mask(image, 0.45, 0.55)
    assert mid[1, 2] and mid.sum() == 1
    lazy = threshold_mask(da.from_array(image, chunks=(1, 2, 1)), 0.9, 1.0, "red")
    assert np.array_equal(lazy.compute(), threshold_mask(image, 0.9, 1.0, "red"))
    grey = np.linspace(0, 1, 10, dtype=np.float32).reshape(2, 5)
    assert threshold_mask(grey, 0.5, 1.0).sum() == 5
    with pytest.raises(InvalidInputError, match="needs a colour image"):
        threshold_mask(grey, 0.5, 1.0, "green")
    with pytest.raises(InvalidInputError, match="must satisfy"):
        threshold_mask(image, 0.8, 0.2)


def test_colour_mask_finds_plaster() -> None:
    image = np.full((3, 3, 3), 40, dtype=np.uint8)
    image[1, 1] = (222, 214, 196)
    image[2, 2] = (215, 210, 200)
    near = colour_mask(image, (222 / 255, 214 / 255, 196 / 255), 0.05)
    assert near.tolist() == [[False] * 3, [False, True, False], [False, False, True]]
    with pytest.raises(InvalidInputError, match="has 2 values"):
        colour_mask(image, (1.0, 0.0), 0.1)
