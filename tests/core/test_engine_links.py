"""The tiled engine's zstd level for written chunks and hard links for intact ones."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import zarr

from inpaint_core.errors import InvalidInputError, ParameterError
from inpaint_core.io import chunks
from inpaint_core.tiling.engine import restore_scan

from .engine_helpers import (
    CHUNK,
    SHAPE,
    LocalMean,
    file_hashes,
    restored,
    smooth_scene,
    write_store,
)

#: How an output declares the scan's (H, W, C) chunks that it stores as (C, H, W).
TRANSPOSED = {"name": "transpose", "configuration": {"order": [1, 2, 0]}}


@pytest.mark.parametrize("intact", ["copy", "link"])
def test_zstd_level_changes_only_the_encoding_of_the_written_chunks(
    tmp_path: Path, intact: str
) -> None:
    scan, mask_path, _ = smooth_scene(tmp_path)
    outputs = {}
    for level in (None, 19, -5):
        out = tmp_path / f"out{level}.zarr"
        restore_scan(scan, mask_path, LocalMean(), out, zstd_level=level, intact=intact,
                     pyramid_side=100)
        outputs[level] = out
        assert zarr.open_group(str(out)).attrs["inpaint"]["settings"]["zstd_level"] == level
    for name in ("0", "1", "2"):
        declared = json.loads((scan / name / "zarr.json").read_text())["codecs"]
        for out in outputs.values():  # the same pixels, the scan's codecs declared
            np.testing.assert_array_equal(restored(out, name), restored(outputs[None], name))
            codecs = json.loads((out / name / "zarr.json").read_text())["codecs"]
            assert codecs == [TRANSPOSED, *declared]
    hole_chunk = ("0", "c", "0", "0", "0")  # a hole at (0, 0); chunk (3, 1) has none
    sizes = {level: out.joinpath(*hole_chunk).stat().st_size for level, out in outputs.items()}
    assert sizes[19] < sizes[None] < sizes[-5], sizes
    upper = ("1", "c", "0", "0", "0")  # level 1 over the restored chunk: computed, re-encoded
    assert outputs[19].joinpath(*upper).stat().st_size < outputs[-5].joinpath(*upper).stat().st_size
    for out in outputs.values():  # intact chunks: the scan's bytes, whatever the level
        assert (out / "0/c/0/3/1").read_bytes() == (scan / "0/c/3/1/0").read_bytes()
        if intact == "link":
            assert (out / "0/c/0/3/1").stat().st_ino == (scan / "0/c/3/1/0").stat().st_ino


def linked_scene(tmp_path: Path) -> tuple[Path, np.ndarray, np.ndarray]:
    """An OME-Zarr scan with a 2-level pyramid, and a mask with holes in chunk (2, 2) only."""
    image = np.random.default_rng(3).integers(0, 256, (*SHAPE, 3), dtype=np.uint8)
    scan = tmp_path / "scan.zarr"
    group = zarr.open_group(str(scan), mode="w")
    group.create_array("0", shape=image.shape, chunks=(CHUNK, CHUNK, 3), dtype="uint8")[...] = image
    group.create_array("1", shape=(128, 160, 3), chunks=(32, 32, 3), dtype="uint8")[...] = 7
    datasets = [{"path": str(k), "coordinateTransformations": [
        {"type": "scale", "scale": [2.0**k, 2.0**k, 1.0]}]} for k in range(2)]
    group.attrs["multiscales"] = [{"version": "0.4", "datasets": datasets,
                                   "axes": [{"name": n} for n in "yxc"]}]
    mask = np.zeros(SHAPE, dtype=bool)
    mask[130:140, 140:150] = True
    return scan, image, mask


def test_intact_link_hard_links_unchanged_chunks_and_gives_the_copied_result(
    tmp_path: Path,
) -> None:
    scan, _, mask = linked_scene(tmp_path)
    copied, linked = tmp_path / "copied.zarr", tmp_path / "linked.zarr"
    restore_scan(scan, mask, LocalMean(), copied, tile=64, pyramid_side=100)
    result = restore_scan(scan, mask, LocalMean(), linked, tile=64, pyramid_side=100,
                          intact="link")
    assert result.chunks_copied == 19 and result.chunks_restored == 1
    for level in ("0", "1"):
        assert np.array_equal(restored(linked, level), restored(copied, level))
    source_file = scan / "0" / "c" / "0" / "0" / "0"
    assert (linked / "0" / "c" / "0" / "0" / "0").stat().st_ino == source_file.stat().st_ino
    assert (linked / "1" / "c" / "0" / "0" / "0").stat().st_ino == (
        scan / "1" / "c" / "0" / "0" / "0").stat().st_ino
    restored_file = linked / "0" / "c" / "0" / "2" / "2"  # the chunk with the holes
    assert restored_file.stat().st_nlink == 1
    assert (copied / "0" / "c" / "0" / "0" / "0").stat().st_nlink == 1  # copy: own files
    attrs = zarr.open_group(str(linked), mode="r").attrs["inpaint"]
    assert attrs["settings"]["intact"] == "link"


def test_writing_a_linked_output_through_zarr_leaves_the_source_alone(tmp_path: Path) -> None:
    scan, image, mask = linked_scene(tmp_path)
    out = tmp_path / "out.zarr"
    restore_scan(scan, mask, LocalMean(), out, tile=64, pyramid_side=100, intact="link")
    before = file_hashes(scan)
    zarr.open_group(str(out), mode="r+")["0"][:, :CHUNK, :CHUNK] = 0  # a linked chunk
    assert file_hashes(scan) == before
    assert np.array_equal(zarr.open_array(str(scan / "0"), mode="r")[...], image)
    assert (restored(out)[:CHUNK, :CHUNK] == 0).all()


def test_intact_link_errors_name_the_way_out(
    tmp_path: Path, scene: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    v2 = write_store(tmp_path / "v2.zarr", scene["image"], (CHUNK, CHUNK, 3), zarr_format=2)
    with pytest.raises(InvalidInputError, match=r"zarr v2 array.*--intact copy"):
        restore_scan(v2, scene["mask"], LocalMean(), tmp_path / "a.zarr", intact="link")
    sharded = zarr.create_array(str(tmp_path / "sharded.zarr"), shape=scene["image"].shape,
                                chunks=(32, 32, 3), shards=(CHUNK, CHUNK, 3), dtype="uint8")
    sharded[...] = scene["image"]
    with pytest.raises(InvalidInputError, match=r"a sharded zarr v3 array"):
        restore_scan(sharded, scene["mask"], LocalMean(), tmp_path / "b.zarr", intact="link")
    monkeypatch.setattr(chunks, "filesystem_id", lambda path: hash(path.name))
    with pytest.raises(InvalidInputError, match=r"different ones: use --intact copy"):
        restore_scan(scene["scan"], scene["mask"], LocalMean(), tmp_path / "c.zarr",
                     intact="link")
    with pytest.raises(ParameterError, match=r"intact='move' must be one of copy, link"):
        restore_scan(scene["scan"], scene["mask"], LocalMean(), tmp_path / "d.zarr",
                     intact="move")
    assert not any((tmp_path / name).exists() for name in ("a.zarr", "b.zarr", "c.zarr", "d.zarr"))
