"""Chunks as stored bytes: direct chunk reads and writes, byte copies, progress marks."""

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
import zarr

import inpaint_core
from inpaint_core.io.axes import NgffAxesView
from inpaint_core.io.chunks import copy_chunk_bytes, direct_chunks
from inpaint_core.io.layout import bytes_compatible, kept_encoding, zstd_writer
from inpaint_core.io.marks import MARK_FILE, mark_done
from inpaint_core.io.store import level_array, write_multiscales

from .scan_helpers import SHAPE, image, write_array


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
