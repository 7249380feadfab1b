"""Opening scans and masks: zarr v2/v3, OME-Zarr 0.4/0.5 in any axis order, TIFF."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tifffile
import zarr

from inpaint_core.errors import ImageIOError, InvalidInputError
from inpaint_core.io import write_image
from inpaint_core.io.inputs import open_mask, open_scan
from inpaint_core.tiling import Box, find_hole_regions
from inpaint_core.tiling.engine import restore_scan

from .scan_helpers import SHAPE, image, write_array, write_ngff, write_ome


@pytest.mark.parametrize("zarr_format", [2, 3])
def test_open_a_zarr_array(tmp_path: Path, zarr_format: int) -> None:
    source = open_scan(write_array(tmp_path / "scan.zarr", image(), zarr_format))
    assert source.kind == "zarr" and source.shape == SHAPE
    np.testing.assert_array_equal(source.array[...], image())


@pytest.mark.parametrize("ngff", ["0.4", "0.5"])
def test_open_ome_zarr_level0(tmp_path: Path, ngff: str) -> None:
    source = open_scan(write_ome(tmp_path / "scan.ome.zarr", image(), ngff))
    assert source.kind == "ome-zarr"
    np.testing.assert_array_equal(source.array[...], image())


@pytest.mark.parametrize("ngff", ["0.4", "0.5"])
def test_channel_first_ome_zarr_is_read_as_height_width_channels(tmp_path: Path, ngff: str) -> None:
    rgb = image()
    cyx = open_scan(
        write_ngff(tmp_path / "cyx.zarr", np.moveaxis(rgb, -1, 0), ["c", "y", "x"], ngff)
    )
    tczyx = open_scan(write_ngff(tmp_path / "tczyx.zarr", np.moveaxis(rgb, -1, 0)[None, :, None],
                                 ["t", "c", "z", "y", "x"], ngff))
    grey = open_scan(write_ngff(tmp_path / "zyx.zarr", rgb[None, ..., 0], ["z", "y", "x"], ngff))
    for source in (cyx, tczyx):
        assert source.kind == "ome-zarr" and source.array.shape == (*SHAPE, 3)
        assert source.array.chunks == (32, 32, 3) and source.levels == ()
        np.testing.assert_array_equal(source.array[10:50, 20:90], rgb[10:50, 20:90])
        np.testing.assert_array_equal(source.array[...], rgb)
    assert grey.array.shape == SHAPE and grey.array[...].dtype == np.uint8
    np.testing.assert_array_equal(grey.array[5:9, 7:100], rgb[5:9, 7:100, 0])
    stack = np.zeros((4, *SHAPE), np.uint8)
    with pytest.raises(InvalidInputError, match=r"axis 'z' has length 4 .*only one plane"):
        open_scan(write_ngff(tmp_path / "stack.zarr", stack, ["z", "y", "x"], ngff))
    with pytest.raises(InvalidInputError, match=r"axes \['c', 'y'\] do not describe"):
        open_scan(write_ngff(tmp_path / "bad.zarr", stack[:, :, 0], ["c", "y"], ngff))


@pytest.mark.parametrize("axes", [["c", "y", "x"], list("tczyx")])
@pytest.mark.parametrize("intact", ["copy", "link"])
def test_a_channel_first_ome_zarr_is_restored_into_its_own_axes(
    tmp_path: Path, axes: list[str], intact: str
) -> None:
    mask = np.zeros(SHAPE, dtype=np.uint8)
    mask[40:50, 30:70] = 1
    mask_path = write_ngff(tmp_path / "mask.zarr", mask[None, None, None], list("tczyx"))
    assert np.array_equal(open_mask(mask_path, SHAPE)[...], mask)
    planar = np.moveaxis(image(), -1, 0)
    stored = planar if axes == ["c", "y", "x"] else planar[None, :, None]
    scan = write_ngff(tmp_path / "planar.zarr", stored, axes)
    restore_scan(scan, mask_path, "telea", tmp_path / "planar.out.zarr", tile=64,
                 pyramid_side=40, intact=intact, pyramid="always")
    restore_scan(write_array(tmp_path / "scan.zarr", image()), mask, "telea",
                 tmp_path / "hwc.out.zarr", tile=64, pyramid_side=40, pyramid="always")
    out = zarr.open_group(str(tmp_path / "planar.out.zarr"), mode="r")
    hwc = zarr.open_group(str(tmp_path / "hwc.out.zarr"), mode="r")
    entry = out.attrs["ome"]["multiscales"][0]
    assert [axis["name"] for axis in entry["axes"]] == axes  # NGFF order: channel first
    assert entry["datasets"][1]["coordinateTransformations"][0]["scale"] == [
        2.0 if axis in "yx" else 1.0 for axis in axes]
    for level in ("0", "1", "2"):  # every level stored as the source is, same pixels
        sides = zip(axes, out[level].shape, strict=True)
        assert out[level].chunks == tuple(min(32, size) if n in "yx" else 1 for n, size in sides)
        expected = hwc[level][...].reshape(out[level].shape)  # (H, W, C) scans: c, y, x too
        np.testing.assert_array_equal(out[level][...], expected, err_msg=level)
    np.testing.assert_array_equal(open_scan(tmp_path / "planar.out.zarr").array[...],
                                  np.moveaxis(hwc["0"][...], 0, -1))
    intact_chunk = "/".join(["c", *("2" if n == "c" else "0" for n in axes)])  # no hole there
    source_file = scan / "0" / intact_chunk
    output_file = tmp_path / "planar.out.zarr" / "0" / intact_chunk
    assert output_file.read_bytes() == source_file.read_bytes()  # copied as stored
    linked = output_file.stat().st_ino == source_file.stat().st_ino
    assert linked == (intact == "link")
    assert zarr.open_array(str(scan / "0"), mode="r")[...].tobytes() == stored.tobytes()
    with pytest.raises(InvalidInputError, match=r"axis 'c' has length 2 .*plane and channel"):
        open_mask(write_ngff(tmp_path / "two.zarr", np.zeros((2, *SHAPE), np.uint8),
                             ["c", "y", "x"]), SHAPE)


def test_open_a_tiled_tiff_lazily(tmp_path: Path) -> None:
    path = tmp_path / "scan.tif"
    tifffile.imwrite(path, image(), tile=(32, 32), photometric="rgb")
    source = open_scan(path)
    assert source.kind == "tiff" and tuple(source.array.chunks[:2]) == (32, 32)
    np.testing.assert_array_equal(source.array[10:50, 20:90], image()[10:50, 20:90])


def test_restore_from_tiff_and_ome_equals_from_zarr(tmp_path: Path) -> None:
    mask = np.zeros(SHAPE, dtype=bool)
    mask[40:50, 30:70] = True
    tifffile.imwrite(tmp_path / "scan.tif", image(), tile=(32, 32), photometric="rgb")
    inputs = {
        "zarr": write_array(tmp_path / "scan.zarr", image()),
        "tiff": tmp_path / "scan.tif",
        "ome": write_ome(tmp_path / "scan.ome.zarr", image(), "0.5"),
    }
    results = {}
    for name, path in inputs.items():
        out = tmp_path / f"{name}.out.zarr"
        restore_scan(path, mask, "telea", out, tile=64)
        results[name] = zarr.open_group(str(out), mode="r")["0"][...]
    np.testing.assert_array_equal(results["tiff"], results["zarr"])
    np.testing.assert_array_equal(results["ome"], results["zarr"])


def test_scan_errors_name_the_path_and_the_problem(tmp_path: Path) -> None:
    with pytest.raises(ImageIOError, match=r"missing\.zarr"):
        open_scan(tmp_path / "missing.zarr")
    two = write_array(tmp_path / "two.zarr", np.zeros((8, 8, 2), np.uint8))
    with pytest.raises(InvalidInputError, match=r"two.zarr.*\(8, 8, 2\)"):
        open_scan(two)
    wide = write_array(tmp_path / "int32.zarr", np.zeros((8, 8), np.int32))
    with pytest.raises(InvalidInputError, match="int32"):
        open_scan(wide)
    zarr.open_group(str(tmp_path / "plain.zarr"), mode="w")
    with pytest.raises(InvalidInputError, match="multiscales"):
        open_scan(tmp_path / "plain.zarr")
    (tmp_path / "junk").mkdir()
    with pytest.raises(ImageIOError, match="junk"):
        open_scan(tmp_path / "junk")


def test_open_masks_from_zarr_and_png(tmp_path: Path) -> None:
    mask = np.zeros(SHAPE, dtype=bool)
    mask[5:9, 7:30] = True
    from_zarr = open_mask(write_array(tmp_path / "mask.zarr", mask), SHAPE)
    np.testing.assert_array_equal(from_zarr[...], mask)
    png = write_image(tmp_path / "mask.png", mask.astype(np.uint8) * 255)
    np.testing.assert_array_equal(np.asarray(open_mask(png, SHAPE)) != 0, mask)
    with pytest.raises(InvalidInputError, match=r"mask.png.*\(96, 128\).*\(90, 128\)"):
        open_mask(png, (90, 128))
    with pytest.raises(ImageIOError, match=r"nothing\.png"):
        open_mask(tmp_path / "nothing.png", SHAPE)


def test_tiff_masks_are_read_lazily_chunk_by_chunk(tmp_path: Path) -> None:
    mask = np.zeros(SHAPE, dtype=np.uint8)
    mask[5:9, 7:30] = 255
    tifffile.imwrite(tmp_path / "grey.tif", mask, tile=(32, 32))
    grey = open_mask(tmp_path / "grey.tif", SHAPE)
    assert not isinstance(grey, np.ndarray) and tuple(grey.chunks) == (32, 32)
    np.testing.assert_array_equal(grey[0:40, 0:64], mask[0:40, 0:64])
    colour = np.zeros((*SHAPE, 4), dtype=np.uint8)
    colour[5:9, 7:30, 1] = 9  # green strokes
    colour[50:60, 50:60, 3] = 255  # alpha alone is not a hole
    tifffile.imwrite(tmp_path / "rgba.tif", colour, tile=(32, 32), photometric="rgb",
                     extrasamples=["unassalpha"])
    rgba = open_mask(tmp_path / "rgba.tif", SHAPE)
    assert rgba.shape == SHAPE and rgba.chunks == (32, 32)
    np.testing.assert_array_equal(rgba[...], mask != 0)
    np.testing.assert_array_equal(rgba[4:10, 0:40], mask[4:10, 0:40] != 0)
    regions = find_hole_regions(rgba)
    assert regions.boxes == (Box(5, 9, 7, 30),)
    with pytest.raises(InvalidInputError, match=r"grey\.tif.*\(96, 128\).*\(90, 128\)"):
        open_mask(tmp_path / "grey.tif", (90, 128))
    (tmp_path / "broken.tif").write_bytes(b"not a tiff")
    with pytest.raises(ImageIOError, match=r"cannot open TIFF mask .*broken\.tif"):
        open_mask(tmp_path / "broken.tif", SHAPE)
