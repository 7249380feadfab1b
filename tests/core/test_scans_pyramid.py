"""Pyramid levels: their geometry, the area average and the writer fed level 0 chunks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import zarr

from inpaint_core.io.layout import chunk_key, output_chunks, stored_chunk_keys
from inpaint_core.io.pyramid import PyramidWriter, downsample, pyramid_shapes, write_pyramid
from inpaint_core.io.store import multiscales_metadata


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
