"""The output store: valid OME-Zarr stored channel first, channel names, resume, refusals."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tifffile
import zarr
from ome_zarr_models.v05 import Image as NgffImage

from inpaint_core.errors import ImageIOError, OutputExistsError
from inpaint_core.io.inputs import open_scan
from inpaint_core.io.store import check_output_store
from inpaint_core.tiling.engine import restore_scan

from .scan_helpers import SHAPE, image, write_array, write_ngff, write_ome


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
        restore_scan(scan, mask, "telea", out, tile=64, pyramid_side=40, pyramid="always")
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


def test_a_channel_first_output_resumes_to_the_same_bytes(tmp_path: Path) -> None:
    mask = np.zeros(SHAPE, dtype=bool)
    mask[10:20, 10:120] = mask[60:70, 5:60] = True
    scan = write_ngff(tmp_path / "cyx.zarr", np.moveaxis(image(), -1, 0), ["c", "y", "x"])
    settings = {"tile": 48, "pyramid_side": 40, "pyramid": "always"}
    whole = restore_scan(scan, mask, "telea", tmp_path / "whole.zarr", **settings)
    calls = iter(range(100))
    stopped = restore_scan(scan, mask, "telea", tmp_path / "out.zarr", **settings,
                           should_stop=lambda: next(calls) >= 2)
    assert stopped.stopped and not whole.stopped
    restore_scan(scan, mask, "telea", tmp_path / "out.zarr", **settings, resume=True)
    for level in ("0", "1", "2"):
        first = zarr.open_array(str(tmp_path / "whole.zarr" / level), mode="r")[...]
        second = zarr.open_array(str(tmp_path / "out.zarr" / level), mode="r")[...]
        assert first.shape[0] == 3 and np.array_equal(first, second), level


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
