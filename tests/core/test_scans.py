"""Opening scans and masks (zarr v2/v3, OME-Zarr 0.4/0.5, TIFF) and the output store."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path

import numpy as np
import pytest
import tifffile
import zarr
from ome_zarr_models.v05 import Image as NgffImage

import inpaint_core
from inpaint_core.errors import ImageIOError, InvalidInputError, OutputExistsError
from inpaint_core.io import write_image
from inpaint_core.io.axes import NgffAxesView
from inpaint_core.io.chunks import copy_chunk_bytes, direct_chunks
from inpaint_core.io.inputs import open_mask, open_scan
from inpaint_core.io.layout import (
    bytes_compatible,
    chunk_key,
    kept_encoding,
    output_chunks,
    stored_chunk_keys,
    zstd_writer,
)
from inpaint_core.io.marks import MARK_FILE, mark_done
from inpaint_core.io.pyramid import PyramidWriter, downsample, pyramid_shapes, write_pyramid
from inpaint_core.io.store import (
    check_output_store,
    level_array,
    multiscales_metadata,
    write_multiscales,
)
from inpaint_core.tiling import Box, find_hole_regions
from inpaint_core.tiling.engine import restore_scan

SHAPE = (96, 128)


def image() -> np.ndarray:
    return np.random.default_rng(3).integers(0, 256, (*SHAPE, 3), dtype=np.uint8)


def write_array(path: Path, array: np.ndarray, zarr_format: int = 3) -> Path:
    chunks = (32, 32, *array.shape[2:])
    store = zarr.create_array(
        str(path), shape=array.shape, chunks=chunks, dtype=array.dtype, zarr_format=zarr_format
    )
    store[...] = array
    return path


def write_ome(path: Path, array: np.ndarray, ngff: str) -> Path:
    """An OME-Zarr group with level "s0" (and a half-size "s1") and its multiscales attrs."""
    zarr_format = 3 if ngff == "0.5" else 2
    group = zarr.open_group(str(path), mode="w", zarr_format=zarr_format)
    for name, level in (("s0", array), ("s1", array[::2, ::2])):
        chunks = (32, 32, *level.shape[2:])
        group.create_array(name, shape=level.shape, chunks=chunks, dtype=level.dtype)[...] = level
    entry = multiscales_metadata(2, "scan", ("y", "x", "c")[: array.ndim])
    for number, dataset in enumerate(entry["datasets"]):
        dataset["path"] = f"s{number}"
    if ngff == "0.5":
        group.attrs["ome"] = {"version": "0.5", "multiscales": [entry]}
    else:
        group.attrs["multiscales"] = [dict(entry, version="0.4")]
    return path


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


def write_ngff(path: Path, array: np.ndarray, axes: list[str], ngff: str = "0.5") -> Path:
    """An OME-Zarr of ``array`` stored with ``axes`` (names among t, c, z, y, x), one level."""
    group = zarr.open_group(str(path), mode="w", zarr_format=3 if ngff == "0.5" else 2)
    chunks = tuple(32 if name in "yx" else 1 for name in axes)
    group.create_array("0", shape=array.shape, chunks=chunks, dtype=array.dtype)[...] = array
    kinds = {"t": "time", "c": "channel", "z": "space", "y": "space", "x": "space"}
    entry = {"name": "scan", "axes": [{"name": n, "type": kinds[n]} for n in axes],
             "datasets": [{"path": "0", "coordinateTransformations": [
                 {"type": "scale", "scale": [1.0] * len(axes)}]}]}
    if ngff == "0.5":
        group.attrs["ome"] = {"version": "0.5", "multiscales": [entry]}
    else:
        group.attrs["multiscales"] = [dict(entry, version="0.4")]
    return path


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
                 pyramid_side=40, intact=intact)
    restore_scan(write_array(tmp_path / "scan.zarr", image()), mask, "telea",
                 tmp_path / "hwc.out.zarr", tile=64, pyramid_side=40)
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


def scan_kinds(tmp_path: Path) -> dict[str, Path]:
    """The same picture as every kind of scan the engine reads, channel last or first."""
    rgb = image()
    tiff = tmp_path / "scan.tif"
    tifffile.imwrite(tiff, rgb, tile=(32, 32))
    planar = np.moveaxis(rgb, -1, 0)
    return {
        "zarr v3 (H, W, 3)": write_array(tmp_path / "v3.zarr", rgb),
        "zarr v2 (H, W, 3)": write_array(tmp_path / "v2.zarr", rgb, zarr_format=2),
        "zarr v3 (H, W, 1)": write_array(tmp_path / "one.zarr", rgb[..., :1]),
        "zarr v3 (H, W)": write_array(tmp_path / "grey.zarr", rgb[..., 0]),
        "OME-Zarr y, x, c": write_ome(tmp_path / "yxc.ome.zarr", rgb, "0.5"),
        "OME-Zarr c, y, x": write_ngff(tmp_path / "cyx.zarr", planar, ["c", "y", "x"]),
        "TIFF": tiff,
    }


def test_every_output_is_valid_ome_zarr_stored_channel_first(tmp_path: Path) -> None:
    mask = np.zeros(SHAPE, dtype=bool)
    mask[40:50, 30:70] = True
    for kind, scan in scan_kinds(tmp_path).items():
        out = tmp_path / f"{scan.stem}.out.zarr"
        restore_scan(scan, mask, "telea", out, tile=64, pyramid_side=40)
        group = zarr.open_group(str(out), mode="r")
        NgffImage.from_zarr(group)  # raises on any breach of NGFF 0.5 (axes order, names, ...)
        axes = [axis["name"] for axis in group.attrs["ome"]["multiscales"][0]["axes"]]
        assert axes == (["y", "x"] if kind == "zarr v3 (H, W)" else ["c", "y", "x"]), kind
        for level in ("0", "1", "2"):
            assert list(group[level].metadata.dimension_names) == axes, (kind, level)
        codecs = group["0"].metadata.codecs
        transposed = isinstance(codecs[0], zarr.codecs.TransposeCodec)
        # A zarr v3 scan stored channel last keeps its chunk bytes (transposed on reading);
        # the others are encoded anew, channel first.
        kept = kind in ("zarr v3 (H, W, 3)", "zarr v3 (H, W, 1)", "OME-Zarr y, x, c")
        assert transposed == kept, kind
        viewed = open_scan(out).array[...]
        source = open_scan(scan).array[...]
        assert viewed.shape == source.shape, kind
        np.testing.assert_array_equal(viewed[~mask], source[~mask], err_msg=kind)


def test_outputs_name_their_channels_colours_and_keep_a_scans_own(tmp_path: Path) -> None:
    mask = np.zeros(SHAPE, dtype=bool)
    mask[40:50, 30:70] = True
    rgb = image()
    scans = {
        "rgb": (rgb, ["red", "green", "blue"], 255.0),
        "rgba": (np.dstack([rgb, rgb[..., :1]]), ["red", "green", "blue", "alpha"], 255.0),
        "deep": (rgb.astype(np.uint16) * 257, ["red", "green", "blue"], 65535.0),
        "float": (rgb.astype(np.float32) / 255, ["red", "green", "blue"], 1.0),
        "one": (rgb[..., :1], ["grey"], 255.0),
    }
    for name, (pixels, labels, top) in scans.items():
        out = tmp_path / f"{name}.out.zarr"
        restore_scan(write_array(tmp_path / f"{name}.zarr", pixels), mask, "telea", out)
        group = zarr.open_group(str(out), mode="r")
        NgffImage.from_zarr(group)
        omero = group.attrs["ome"]["omero"]
        assert group.attrs["omero"] == omero  # for NGFF 0.4 readers too
        assert [channel["label"] for channel in omero["channels"]] == labels, name
        assert [channel["active"] for channel in omero["channels"]] == [
            label != "alpha" for label in labels]
        assert all(channel["window"]["end"] == top for channel in omero["channels"]), name
    assert [c["color"] for c in zarr.open_group(str(tmp_path / "rgb.out.zarr")).attrs["ome"][
        "omero"]["channels"]] == ["FF0000", "00FF00", "0000FF"]
    restore_scan(write_array(tmp_path / "grey.zarr", rgb[..., 0]), mask, "telea",
                 tmp_path / "grey.out.zarr")
    assert "omero" not in zarr.open_group(str(tmp_path / "grey.out.zarr")).attrs["ome"]
    # A scan's own rendering metadata (its channels' names, colours, windows) is kept.
    own = {"channels": [{"label": f"band {k}", "color": "FFFF00", "active": True, "window": {
        "start": 10.0, "end": 200.0, "min": 0.0, "max": 255.0}} for k in range(3)]}
    scan = write_ngff(tmp_path / "cyx.zarr", np.moveaxis(rgb, -1, 0), ["c", "y", "x"])
    group = zarr.open_group(str(scan), mode="r+")
    group.attrs["ome"] = dict(group.attrs["ome"], omero=own)
    assert open_scan(scan).omero == own
    restore_scan(scan, mask, "telea", tmp_path / "own.out.zarr")
    kept = zarr.open_group(str(tmp_path / "own.out.zarr")).attrs["ome"]
    assert kept["omero"] == own and kept["multiscales"]
    two = {"channels": own["channels"][:2]}  # describes other channels: not the scan's
    group.attrs["ome"] = dict(group.attrs["ome"], omero=two)
    assert open_scan(scan).omero is None


@pytest.mark.parametrize(
    "layout",
    ["y, x", "y, x, c", "transposed", "c, y, x", "t, c, z, y, x", "uint16 big-endian",
     "uncompressed", "zstd 19 with checksum"],
)
def test_direct_chunks_read_and_write_the_bytes_zarr_does(tmp_path: Path, layout: str) -> None:
    """Every chunk, the edge ones (padded) included, byte for byte as zarr writes it."""
    from zarr.codecs import BytesCodec, TransposeCodec, ZstdCodec

    pixels = image()[:90, :100]  # chunks of 32: the last row and column are partial
    axes, keywords = ("c", "y", "x"), {}
    if layout == "y, x":
        pixels, axes = pixels[..., 0], ("y", "x")
    elif layout == "y, x, c":
        axes = ("y", "x", "c")
    elif layout == "transposed":
        keywords["filters"] = (TransposeCodec(order=(1, 2, 0)),)
    elif layout == "t, c, z, y, x":
        axes = ("t", "c", "z", "y", "x")
    elif layout == "uint16 big-endian":
        pixels = pixels.astype(np.uint16) * 257
        keywords["serializer"] = BytesCodec(endian="big")
    elif layout == "uncompressed":
        keywords["compressors"] = None
    elif layout == "zstd 19 with checksum":
        keywords["compressors"] = (ZstdCodec(level=19, checksum=True),)
    shape = {"y": 90, "x": 100, "c": 3, "t": 1, "z": 1}
    chunks = {"y": 32, "x": 32, "c": 3, "t": 1, "z": 1}
    arrays = {}
    for name in ("zarr", "ours"):
        group = zarr.open_group(str(tmp_path / f"{name}.zarr"), mode="w", zarr_format=3)
        group.create_array("0", shape=tuple(shape[a] for a in axes), dtype=pixels.dtype,
                           chunks=tuple(chunks[a] for a in axes), fill_value=7,
                           config={"write_empty_chunks": True}, **keywords)
        write_multiscales(group, 1, name, axes)
        arrays[name] = level_array(group, "0")
    direct = direct_chunks(arrays["ours"])
    assert direct is not None
    assert (direct.read((0, 0)) == 7).all()  # no chunk stored yet: the fill value
    for row in range(3):
        for col in range(4):
            rows, cols = slice(32 * row, 32 * row + 32), slice(32 * col, 32 * col + 32)
            arrays["zarr"][rows, cols] = pixels[rows, cols]
            direct.write((row, col), pixels[rows, cols])
            read = direct.read((row, col))  # what zarr reads, native byte order, writable
            np.testing.assert_array_equal(read, arrays["zarr"][rows, cols])
            assert read.dtype == pixels.dtype and read.flags.writeable
    assert file_bytes(tmp_path / "ours.zarr/0/c") == file_bytes(tmp_path / "zarr.zarr/0/c")
    np.testing.assert_array_equal(arrays["ours"][...], pixels)


def file_bytes(folder: Path) -> dict[str, bytes]:
    return {str(f.relative_to(folder)): f.read_bytes() for f in folder.rglob("*") if f.is_file()}


def test_direct_chunks_take_the_zstd_writers_level_and_refuse_what_they_cannot_do(
    tmp_path: Path,
) -> None:
    stored = zarr.create_array(str(tmp_path / "a.zarr"), shape=(64, 64, 3), chunks=(32, 32, 3),
                               dtype="uint8")
    smooth = np.repeat((np.add.outer(np.arange(32), np.arange(32)) // 3)[..., None], 3, axis=2)
    smooth = (smooth + image()[:32, :32] % 4).astype(np.uint8)  # compressible, not trivially
    direct = direct_chunks(zstd_writer(stored, 19))
    assert direct is not None
    direct.write((0, 0), smooth)
    level19 = (tmp_path / "a.zarr/c/0/0/0").read_bytes()
    direct_chunks(stored).write((0, 0), smooth)
    assert len(level19) < len((tmp_path / "a.zarr/c/0/0/0").read_bytes())  # default level 3
    gzip = zarr.create_array(str(tmp_path / "g.zarr"), shape=(64, 64), chunks=(32, 32),
                             dtype="uint8", compressors=zarr.codecs.GzipCodec())
    sharded = zarr.create_array(str(tmp_path / "s.zarr"), shape=(64, 64), chunks=(16, 16),
                                shards=(32, 32), dtype="uint8")
    planes = zarr.create_array(str(tmp_path / "p.zarr"), shape=(3, 64, 64), chunks=(1, 32, 32),
                               dtype="uint8")
    in_memory = zarr.create_array(zarr.storage.MemoryStore(), shape=(64, 64), chunks=(32, 32),
                                  dtype="uint8")
    for array in (gzip, sharded, in_memory, np.zeros((64, 64), np.uint8)):
        assert direct_chunks(array) is None
    assert direct_chunks(NgffAxesView(planes, ("c", "y", "x"), tmp_path)) is None  # per plane


def test_a_transposed_level_holds_the_scans_chunk_bytes(tmp_path: Path) -> None:
    rgb = image()
    source = zarr.open_array(str(write_array(tmp_path / "scan.zarr", rgb)), mode="r")
    encoding = kept_encoding(source, ("c", "y", "x"), (3, 32, 32))
    assert encoding is not None
    target = zarr.create_array(str(tmp_path / "cyx.zarr"), shape=(3, *SHAPE), chunks=(3, 32, 32),
                               dtype="uint8", **encoding)
    assert bytes_compatible(source, target) and bytes_compatible(target, source)
    copy_chunk_bytes(source, target, (0, 1, 2))  # the scan's chunk (1, 2, 0)
    assert (tmp_path / "cyx.zarr/c/0/1/2").read_bytes() == (
        tmp_path / "scan.zarr/c/1/2/0").read_bytes()
    np.testing.assert_array_equal(target[:, 32:64, 64:96], np.moveaxis(rgb[32:64, 64:96], -1, 0))
    assert (target[:, :32] == 0).all()  # nothing else copied
    planar = zarr.create_array(str(tmp_path / "planar.zarr"), shape=(3, *SHAPE),
                               chunks=(3, 32, 32), dtype="uint8")
    assert not bytes_compatible(source, planar)  # same pixels, other bytes: no copies
    assert kept_encoding(source, ("c", "y", "x"), (3, 32, 64)) is None  # other chunks
    assert kept_encoding(source, ("y", "x"), (32, 32)) is None  # other axes
    assert kept_encoding(source, ("y", "x", "c"), (32, 32, 3)) == {
        "serializer": source.serializer, "compressors": source.compressors, "filters": (),
        "fill_value": source.fill_value}


def test_a_channel_first_output_resumes_to_the_same_bytes(tmp_path: Path) -> None:
    mask = np.zeros(SHAPE, dtype=bool)
    mask[10:20, 10:120] = mask[60:70, 5:60] = True
    scan = write_ngff(tmp_path / "cyx.zarr", np.moveaxis(image(), -1, 0), ["c", "y", "x"])
    whole = restore_scan(scan, mask, "telea", tmp_path / "whole.zarr", tile=48, pyramid_side=40)
    calls = iter(range(100))
    stopped = restore_scan(scan, mask, "telea", tmp_path / "out.zarr", tile=48, pyramid_side=40,
                           should_stop=lambda: next(calls) >= 2)
    assert stopped.stopped and not whole.stopped
    restore_scan(scan, mask, "telea", tmp_path / "out.zarr", tile=48, pyramid_side=40,
                 resume=True)
    for level in ("0", "1", "2"):
        first = zarr.open_array(str(tmp_path / "whole.zarr" / level), mode="r")[...]
        second = zarr.open_array(str(tmp_path / "out.zarr" / level), mode="r")[...]
        assert first.shape[0] == 3 and np.array_equal(first, second), level


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


def test_output_store_refusals(tmp_path: Path) -> None:
    scan = write_array(tmp_path / "scan.zarr", image())
    for bad in (scan, scan / "0", tmp_path):
        with pytest.raises(OutputExistsError, match="never written"):
            check_output_store(bad, (scan,), resume=True)
    existing = tmp_path / "old.zarr"
    existing.mkdir()
    with pytest.raises(OutputExistsError, match="--resume"):
        check_output_store(existing, (scan,))
    assert check_output_store(existing, (scan,), resume=True) == existing
    with pytest.raises(ImageIOError, match="missing"):
        check_output_store(tmp_path / "missing" / "out.zarr", (scan,))
    with pytest.raises(ImageIOError, match="not an output"):
        restore_scan(scan, np.ones(SHAPE, bool), "telea", existing, resume=True)


def _mean_of_four(pixels: np.ndarray) -> np.ndarray:
    """The rounded-half-up mean of each 2 x 2 cell (edge-padded), in int64 then ``pixels``'s
    dtype: the reference for :func:`downsample` on integers."""
    pad = [(0, pixels.shape[0] % 2), (0, pixels.shape[1] % 2)] + [(0, 0)] * (pixels.ndim - 2)
    wide = np.pad(pixels, pad, mode="edge").astype(np.int64)
    total = wide[0::2, 0::2] + wide[1::2, 0::2] + wide[0::2, 1::2] + wide[1::2, 1::2]
    return ((total + 2) // 4).astype(pixels.dtype)


def test_pyramid_geometry_and_area_average() -> None:
    assert pyramid_shapes((5000, 3000, 3), 1024) == [(2500, 1500, 3), (1250, 750, 3), (625, 375, 3)]
    assert pyramid_shapes((1024, 10), 1024) == []
    block = np.array([[0, 2, 9], [4, 6, 9], [1, 1, 1]], dtype=np.uint8)
    np.testing.assert_array_equal(downsample(block), [[3, 9], [1, 1]])
    halves = np.array([[0, 1, 1, 2], [0, 1, 2, 2]], dtype=np.uint8)  # means 0.5 and 1.75
    np.testing.assert_array_equal(downsample(halves), [[1, 2]])  # half up, to nearest
    full = np.full((2, 2, 3), 65535, dtype=np.uint16)  # the sum needs a wider type
    assert downsample(full).dtype == np.uint16 and (downsample(full) == 65535).all()
    rng = np.random.default_rng(7)
    for dtype, top in ((np.uint8, 255), (np.uint16, 65535)):
        for shape in ((6, 10), (7, 9, 1), (6, 8, 2), (9, 7, 3), (8, 8, 4), (5, 6, 5)):
            pixels = rng.integers(0, top + 1, shape, dtype=dtype)
            pixels[0] = top  # sums that overflow the dtype
            # OpenCV's path (1, 3, 4 channels) and NumPy's give the same bytes
            np.testing.assert_array_equal(downsample(pixels), _mean_of_four(pixels), str(shape))
    floats = np.arange(16, dtype=np.float32).reshape(4, 4)
    assert downsample(floats).dtype == np.float32 and downsample(floats)[0, 0] == 2.5
    big = zarr.create_array(
        {}, shape=(9000, 100, 3), chunks=(8192, 64, 3), dtype="uint8", zarr_format=3
    )
    assert output_chunks(big) == (4096, 64, 3)


@pytest.mark.parametrize(("shape", "chunks"), [((100, 75, 3), (16, 16, 3)), ((64, 64), (10, 14))])
def test_pyramid_from_kept_parts_equals_the_pyramid_read_back(
    tmp_path: Path, shape: tuple[int, ...], chunks: tuple[int, ...]
) -> None:
    data = np.random.default_rng(3).integers(0, 65535, shape, dtype=np.uint16)
    groups = []
    for name in ("read", "parts"):
        group = zarr.open_group(str(tmp_path / f"{name}.zarr"), mode="w")
        level0 = group.create_array("0", shape=shape, chunks=chunks, dtype="uint16")
        level0[...] = data
        parts = None
        if name == "parts":  # every other chunk kept, as the engine keeps the ones it writes
            parts = {(r, c): downsample(data[r : r + chunks[0], c : c + chunks[1]])
                     for r in range(0, shape[0], chunks[0]) for c in range(0, shape[1], chunks[1])
                     if (r // chunks[0] + c // chunks[1]) % 2 == 0}
        levels = write_pyramid(group, name, side=8, parts=parts)
        assert levels == len(pyramid_shapes(shape, 8)) + 1
        groups.append(group)
    for level in range(1, levels):
        assert np.array_equal(groups[0][str(level)][...], groups[1][str(level)][...])
    wrong = zarr.open_group(str(tmp_path / "wrong.zarr"), mode="w")
    wrong.create_array("0", shape=shape, chunks=chunks, dtype="uint16")[...] = data
    half = (chunks[0] // 2, chunks[1] // 2, *shape[2:])
    write_pyramid(wrong, "wrong", side=8, parts={(0, 0): np.zeros(half, np.uint16)})
    assert not wrong["1"][: half[0], : half[1]].any()  # the part is taken, not recomputed
    assert np.array_equal(wrong["1"][half[0] :], groups[0]["1"][half[0] :])
    odd = zarr.open_group(str(tmp_path / "odd.zarr"), mode="w")
    odd.create_array("0", shape=shape, chunks=(9, 9, *shape[2:]), dtype="uint16")[...] = data
    write_pyramid(odd, "odd", side=8, parts={(0, 0): np.zeros((5, 5, *shape[2:]), np.uint16)})
    assert np.array_equal(odd["1"][...], groups[0]["1"][...])  # odd chunks: parts ignored


def test_pyramid_keeps_the_source_levels_pixels_where_nothing_was_restored(tmp_path: Path) -> None:
    data = np.random.default_rng(4).integers(0, 256, (128, 128, 3), dtype=np.uint8)
    source = zarr.open_group(str(tmp_path / "source.zarr"), mode="w")
    source.create_array("0", shape=data.shape, chunks=(32, 32, 3), dtype="uint8")[...] = data
    nearest = data[::2, ::2]  # a scanner's own pyramid: not our 2x mean
    source.create_array("1", shape=nearest.shape, chunks=(32, 32, 3), dtype="uint8")[...] = nearest
    output = zarr.open_group(str(tmp_path / "out.zarr"), mode="w")
    level0 = output.create_array("0", shape=data.shape, chunks=(32, 32, 3), dtype="uint8")
    restored = data.copy()
    restored[40:50, 70:90] = 7  # one restored box, inside level-0 chunks (1, 2)
    level0[...] = restored
    write_pyramid(output, "out", side=32, source_levels=[source["1"]],
                  changed=[(40, 70, 50, 90)])
    level1 = output["1"][...]
    expected = nearest.copy()  # the source's pixels everywhere ...
    expected[16:32, 32:48] = downsample(restored[32:64, 64:96])  # ... but the restored chunk's
    np.testing.assert_array_equal(level1, expected)


@pytest.mark.parametrize("with_source_levels", [True, False])
def test_pyramid_writer_writes_levels_as_level0_chunks_arrive(
    tmp_path: Path, with_source_levels: bool
) -> None:
    rng = np.random.default_rng(5)
    data = rng.integers(0, 256, (128, 192, 3), dtype=np.uint8)
    source = zarr.open_group(str(tmp_path / "source.zarr"), mode="w")
    levels = [data, data[::2, ::2], data[::4, ::4]]  # a scanner's pyramid, not our 2x mean
    for number, pixels in enumerate(levels):
        source.create_array(str(number), shape=pixels.shape, chunks=(32, 32, 3),
                            dtype="uint8")[...] = pixels
    restored = data.copy()
    boxes = [(5, 20, 40, 90), (70, 130, 100, 180)]  # (row0, col0, row1, col1)
    for row0, col0, row1, col1 in boxes:  # level-0 chunks rows 0-1 cols 0-2, rows 2-3 cols 4-5
        restored[row0:row1, col0:col1] = rng.integers(0, 256, (row1 - row0, col1 - col0, 3))
    reuse = [source["1"], source["2"]] if with_source_levels else []
    sides = (32, 32)
    blocks = {(r // 32, c // 32) for r0, c0, r1, c1 in boxes
              for r in range(r0, r1) for c in range(c0, c1)}
    whole = zarr.open_group(str(tmp_path / "whole.zarr"), mode="w")
    whole.create_array("0", shape=data.shape, chunks=(32, 32, 3), dtype="uint8")[...] = restored
    write_pyramid(whole, "whole", side=50, source_levels=reuse, changed=boxes)
    first = min(blocks)  # written by an earlier run: final from the start, never reported
    out = zarr.open_group(str(tmp_path / "out.zarr"), mode="w")
    level0 = out.create_array("0", shape=data.shape, chunks=(32, 32, 3), dtype="uint8")
    level0[first[0] * 32 : first[0] * 32 + 32, first[1] * 32 : first[1] * 32 + 32] = restored[
        first[0] * 32 : first[0] * 32 + 32, first[1] * 32 : first[1] * 32 + 32]
    writer = PyramidWriter(out, side=50, source_levels=reuse, changed=boxes, final={first})
    for block in sorted(blocks - {first}, reverse=True):  # any order
        rows = slice(block[0] * sides[0], (block[0] + 1) * sides[0])
        cols = slice(block[1] * sides[1], (block[1] + 1) * sides[1])
        level0[rows, cols] = restored[rows, cols]
        writer.written(block, restored[rows, cols])
    stored = stored_chunk_keys(out["1"])
    assert stored is not None
    early = {key for key in ((r, c) for r in range(2) for c in range(3))
             if chunk_key(out["1"], (*key, 0)) in stored}
    if with_source_levels:  # over restored chunks only, and before finish()
        assert early == {(0, 0), (0, 1), (1, 2)}
    else:  # every lower chunk counts: (0, 1) is also over untouched chunks, so it waits
        assert early == {(0, 0), (1, 2)}
    if with_source_levels:  # the chunks over untouched ones: copied as stored, any time
        assert writer.copy_clean() == 3
        stored = stored_chunk_keys(out["1"])
        assert stored is not None and chunk_key(out["1"], (1, 0, 0)) in stored
    level0[...] = restored  # the untouched chunks (the engine copies them)
    assert writer.finish("out") == 3
    for number in (1, 2):  # the same pixels as the pyramid written at the end
        np.testing.assert_array_equal(out[str(number)][...], whole[str(number)][...])
    assert out.attrs["multiscales"] == [dict(multiscales_metadata(3, "out", "yxc"), version="0.4")]


def test_mark_done_writes_the_bytes_zarr_writes(tmp_path: Path) -> None:
    group = zarr.open_group(str(tmp_path / "out.zarr"), mode="w")
    progress = group.create_array(
        ".progress", shape=(3, 4), chunks=(1, 1), dtype="uint8", fill_value=0, compressors=None
    )
    progress[0, 1] = 1  # through zarr
    with pytest.MonkeyPatch.context() as patch:  # the file, directly: zarr is not used
        patch.setattr(zarr.Array, "__setitem__", lambda *args: pytest.fail("zarr write"))
        mark_done(progress, (2, 3))
    folder = tmp_path / "out.zarr" / ".progress"
    files = {path.relative_to(folder): path.read_bytes()
             for path in folder.rglob("*") if path.is_file()}
    assert files[Path("c/2/3")] == files[Path("c/0/1")] == b"\x01"
    assert [name for name in files if name.name.startswith(".")] == [Path(MARK_FILE)]
    # The mark is a hard link to the folder's template (no new file), zarr's own a file.
    assert (folder / "c/2/3").samefile(folder / MARK_FILE)
    assert not (folder / "c/0/1").samefile(folder / MARK_FILE)
    expected = np.zeros((3, 4), np.uint8)
    expected[0, 1] = expected[2, 3] = 1
    np.testing.assert_array_equal(progress[...], expected)
    for other in (  # not one raw byte per chunk, or not in a folder: written through zarr
        group.create_array("zipped", shape=(2, 2), chunks=(1, 1), dtype="uint8"),
        group.create_array("wide", shape=(2, 2), chunks=(2, 2), dtype="uint8", compressors=None),
        zarr.create_array({}, shape=(2, 2), chunks=(1, 1), dtype="uint8", compressors=None),
    ):
        mark_done(other, (1, 0))
        assert other[1, 0] == 1 and other[...].sum() == 1


def _progress(path: Path) -> zarr.Array:
    return zarr.create_array(str(path), shape=(2, 3), chunks=(1, 1), dtype="uint8",
                             fill_value=0, compressors=None)


def test_mark_done_replaces_a_mark_and_survives_the_link_limit(tmp_path: Path) -> None:
    progress = _progress(tmp_path / "p.zarr")
    mark_done(progress, (0, 0))
    mark_done(progress, (0, 0))  # again: replaced in place, nothing left beside it
    template = tmp_path / "p.zarr" / MARK_FILE
    first = template.stat().st_ino
    real_link = os.link

    def at_limit(origin: object, target: object) -> None:
        if Path(origin).stat().st_ino == first:  # the first template is full
            raise OSError(errno.EMLINK, "Too many links")
        real_link(origin, target)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(os, "link", at_limit)
        mark_done(progress, (1, 2))
    assert template.stat().st_ino != first  # a fresh template: earlier marks keep the old one
    assert (tmp_path / "p.zarr/c/1/2").samefile(template)
    assert (tmp_path / "p.zarr/c/0/0").stat().st_ino == first
    assert sorted(path.name for path in (tmp_path / "p.zarr").rglob(".*")) == [MARK_FILE]
    np.testing.assert_array_equal(progress[...], [[1, 0, 0], [0, 0, 1]])


def test_mark_done_writes_the_byte_where_hard_links_are_refused(tmp_path: Path) -> None:
    progress = _progress(tmp_path / "p.zarr")

    def refused(origin: object, target: object) -> None:
        raise OSError(errno.EPERM, "Operation not permitted")

    calls = []
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(os, "link", lambda *args: calls.append(args) or refused(*args))
        mark_done(progress, (1, 1))
        tried = len(calls)
        mark_done(progress, (0, 2))
        assert len(calls) == tried  # refused once: not tried again for this store
    for mark in (tmp_path / "p.zarr/c/1/1", tmp_path / "p.zarr/c/0/2"):
        assert mark.read_bytes() == b"\x01" and mark.stat().st_nlink == 1
    assert not list((tmp_path / "p.zarr").rglob(".*"))  # no template, no temporary
    np.testing.assert_array_equal(progress[...], [[0, 0, 1], [0, 1, 0]])


def test_mark_done_from_many_threads_into_a_new_store(tmp_path: Path) -> None:
    # The threads race to make the template and the row folders (a template replaced under
    # a link being made to it failed such marks with FileNotFoundError).
    keys = [(row, col) for row in range(8) for col in range(8)]
    for trial in range(10):
        progress = zarr.create_array(str(tmp_path / f"{trial}.zarr"), shape=(8, 8),
                                     chunks=(1, 1), dtype="uint8", fill_value=0,
                                     compressors=None)
        with ThreadPoolExecutor(4) as pool:
            list(pool.map(partial(mark_done, progress), keys))
        assert int(progress[...].sum()) == 64
        template = tmp_path / f"{trial}.zarr" / MARK_FILE
        assert template.stat().st_nlink == 65  # every mark links the one template


def test_chunks_copy_as_bytes_between_arrays_differing_only_in_zstd_level(tmp_path: Path) -> None:
    def made(name: str, **encoding: object) -> zarr.Array:
        return zarr.create_array(str(tmp_path / name), shape=(8, 8), chunks=(4, 4),
                                 dtype="uint8", fill_value=0, **encoding)

    base = made("a", compressors=zarr.codecs.ZstdCodec(level=3))
    assert bytes_compatible(base, made("b", compressors=zarr.codecs.ZstdCodec(level=19)))
    assert bytes_compatible(base, zstd_writer(base, -5))
    for name, other in [("c", zarr.codecs.ZstdCodec(level=3, checksum=True)),
                        ("d", zarr.codecs.GzipCodec()), ("e", None)]:
        assert not bytes_compatible(base, made(name, compressors=other))
    assert zstd_writer(base, None) is base


@pytest.mark.parametrize("link", [False, True])
def test_chunk_bytes_replace_what_was_there_and_a_missing_chunk_stays_missing(
    tmp_path: Path, link: bool
) -> None:
    def made(name: str) -> zarr.Array:
        return zarr.create_array(str(tmp_path / name), shape=(8, 8), chunks=(4, 4),
                                 dtype="uint8", fill_value=0)

    source, target = made("source.zarr"), made("target.zarr")
    source[:4, :4] = 7  # chunk (0, 0) stored; (1, 1) is not
    target[...] = 9  # every target chunk stored, to be replaced or removed
    for coords in [(0, 0), (1, 1)]:
        copy_chunk_bytes(source, target, coords, link=link)
    copied = tmp_path / "target.zarr" / "c" / "0" / "0"
    assert copied.read_bytes() == (tmp_path / "source.zarr" / "c" / "0" / "0").read_bytes()
    assert (copied.stat().st_nlink == 2) is link
    assert not (tmp_path / "target.zarr" / "c" / "1" / "1").exists()
    np.testing.assert_array_equal(target[:4, :4], 7)
    np.testing.assert_array_equal(target[4:, 4:], 0)  # missing: the fill value
    fresh = made("fresh.zarr")  # no chunk folder yet: made on the way
    copy_chunk_bytes(source, fresh, (0, 0), link=link)
    np.testing.assert_array_equal(fresh[:4, :4], 7)


def test_io_imports_no_tiling_and_its_modules_stay_small() -> None:
    """io/ is below tiling/: both import the pure geometry, never each other the other way."""
    modules = ", ".join(f"inpaint_core.io.{name}" for name in (
        "inputs", "axes", "layout", "store", "chunks", "marks", "pyramid", "cache", "guard"))
    code = (f"import sys, {modules}; "
            "print(sorted(m for m in sys.modules if m.startswith('inpaint_core.tiling')))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
    package = Path(inpaint_core.__file__).parent
    for module in [*package.glob("io/*.py"), *package.glob("tiling/*.py"),
                   package / "geometry.py"]:
        assert len(module.read_text().splitlines()) <= 500, module
