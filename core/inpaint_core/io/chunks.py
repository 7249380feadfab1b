"""Whole chunks moved without zarr's machinery: copied or hard-linked as stored bytes, and
read or written in the calling thread by a small zstd chunk reader and writer.

- :func:`copy_chunk_bytes`: a chunk that needs no restoration reaches the output as the
  source's stored bytes (a file copy or a hard link), never decoded and re-encoded.
- :class:`DirectChunks`: a local zarr v3 level's chunks read and written byte for byte as zarr
  does, in the calling thread (zarr decodes and encodes in its own pool): the engine's I/O
  threads, below the method's CPU priority, do that work themselves.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import zarr
from numcodecs import Zstd
from zarr.codecs import BytesCodec, TransposeCodec, ZstdCodec

from inpaint_core.errors import InvalidInputError
from inpaint_core.geometry import block_box
from inpaint_core.io.atomic import atomic_write
from inpaint_core.io.axes import VIEW_AXES, laid_out, stored, stored_axes, viewed
from inpaint_core.io.guard import check_chunk_bytes, corrupt_chunk
from inpaint_core.io.layout import (
    MAX_CHUNK,
    bytes_compatible,
    local_file,
    output_layout,
    physical_layout,
)

#: How chunks that need no restoration reach the output: ``copy`` their stored bytes, or
#: ``link`` them (a hard link to the source's chunk file; see :func:`check_linkable`).
INTACT_MODES = ("copy", "link")

class DirectChunks:
    """Whole chunks of a local zarr v3 level read and written **in the calling thread**,
    byte for byte as zarr reads and writes them; see :func:`direct_chunks`.

    zarr decodes and encodes in its own thread pool; the engine's I/O threads, which run at a
    lower CPU priority than the method, do it themselves this way, so that all the work
    beside the method yields to it.
    """

    def __init__(self, array: Any, zstd: Any, dtype: np.dtype, chunk_shape: tuple[int, ...],
                 physical: list[str]) -> None:
        self._target = stored(array)
        self._names = stored_axes(array)
        self._zstd, self._dtype, self._shape = zstd, dtype, chunk_shape
        self._physical = physical  # the stored bytes' axes, outermost first
        self._shown = [name for name in VIEW_AXES[: len(array.shape)] if name in physical]
        self._fill = self._target.fill_value
        self.chunks = (int(array.chunks[0]), int(array.chunks[1]))
        self.shape = tuple(int(v) for v in array.shape)

    def _path(self, block: tuple[int, int]) -> Path:
        coords = [0] * len(self._names)
        coords[self._names.index("y")], coords[self._names.index("x")] = block
        path = local_file(self._target, tuple(coords))
        assert path is not None  # direct_chunks checked the store
        return path

    def read(self, block: tuple[int, int]) -> np.ndarray:
        """Chunk ``block`` ``(row, col)`` as a new ``(h, w[, C])`` array (clipped at the array's
        edges; a chunk the store lacks is the fill value)."""
        box = block_box(self, block)  # clipped at the array's far edges
        sizes = {"y": box.row1 - box.row0, "x": box.col1 - box.col0}
        try:
            data = self._path(block).read_bytes()
        except FileNotFoundError:  # zarr stores no chunk that is all fill value
            laid = np.full(self._shape, self._fill, dtype=self._dtype)
        else:
            try:
                raw = self._zstd.decode(data) if self._zstd is not None else data
                laid = np.frombuffer(raw, dtype=self._dtype).reshape(self._shape)
            except (RuntimeError, ValueError) as error:  # zstd's error, or a short chunk

                key = str(self._path(block).relative_to(self._target.store_path.store.root))
                raise corrupt_chunk(self._target, key, error) from error
        laid = laid[tuple(slice(0, sizes[name]) if name in sizes else slice(None)
                          for name in self._physical)]
        kept = [name for name in self._physical if name in self._shown]
        laid = laid.reshape([laid.shape[self._physical.index(name)] for name in kept])
        block = viewed(laid.astype(self._dtype.newbyteorder("="), copy=False), kept)
        return block if block.flags.writeable else block.copy()  # not the decoded bytes

    def write(self, block: tuple[int, int], pixels: np.ndarray) -> None:
        """Store chunk ``block`` ``(row, col)`` from its ``(h, w[, C])`` ``pixels`` (the whole
        chunk, clipped at the array's edges): arranged in the stored axes, padded with the
        fill value, encoded, written to a new file renamed into place (as zarr does: a hard
        link to another store's file is replaced, never written through)."""
        laid = laid_out(pixels, self._physical)
        if laid.shape != self._shape:  # an edge chunk: zarr stores it whole, padded
            whole = np.full(self._shape, self._fill, dtype=laid.dtype)
            whole[tuple(slice(0, length) for length in laid.shape)] = laid
            laid = whole
        data = np.ascontiguousarray(laid, dtype=self._dtype).view(np.uint8).reshape(-1)
        encoded = self._zstd.encode(data) if self._zstd is not None else data
        path = self._path(block)
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_write(path, durable=False) as temporary:  # flushed once at the end
            temporary.write_bytes(encoded)


def direct_chunks(array: Any) -> DirectChunks | None:
    """:class:`DirectChunks` of ``array`` (an ``(H, W[, C])`` zarr v3 array or
    :class:`NgffAxesView`, e.g. from :func:`zstd_writer`, whose level it encodes at), or None
    where they do not apply: a store that is no local folder, sharding, a chunk that does not
    hold every channel, or codecs other than ``transpose``, ``bytes`` and ``zstd`` (read and
    write through zarr then)."""

    target = stored(array)
    if not isinstance(target, zarr.Array) or target.metadata.zarr_format != 3:
        return None
    if target.shards is not None or local_file(target, (0,) * len(target.shape)) is None:
        return None
    names = stored_axes(array)
    if any(int(side) != int(length) for name, side, length in
           zip(names, target.chunks, target.shape, strict=True) if name not in ("y", "x")):
        return None
    order, _, chunk_shape, _ = physical_layout(target)
    serializer, *compressors = [codec for codec in target.metadata.codecs
                                if not isinstance(codec, TransposeCodec)]
    if not isinstance(serializer, BytesCodec) or len(compressors) > 1:
        return None
    if compressors and not isinstance(compressors[0], ZstdCodec):
        return None
    zstd = None
    if compressors:
        zstd = Zstd(level=compressors[0].level, checksum=compressors[0].checksum)
    dtype = np.dtype(target.dtype)
    if dtype.itemsize > 1 and serializer.endian is not None:
        dtype = dtype.newbyteorder("<" if serializer.endian.name == "little" else ">")
    return DirectChunks(array, zstd, dtype, chunk_shape, [names[axis] for axis in order])


def chunk_store(array: Any) -> Callable[[tuple[int, int], np.ndarray], None]:
    """A function ``store(block, pixels)`` writing chunk ``block`` ``(row, col)`` of ``array``
    (an ``(H, W[, C])`` zarr array or :class:`NgffAxesView`) from its ``(h, w[, C])``
    ``pixels`` (the whole chunk, clipped at the edges): :meth:`DirectChunks.write` (encoded in
    the calling thread) where :func:`direct_chunks` apply, else through zarr."""
    direct = direct_chunks(array)
    if direct is not None:
        return direct.write

    def store(block: tuple[int, int], pixels: np.ndarray) -> None:
        array[block_box(array, block).slices] = pixels

    return store


def filesystem_id(path: Path) -> int:
    """The id of the filesystem holding ``path`` (hard links cannot cross filesystems)."""
    return os.stat(path).st_dev


def check_linkable(source: Any, output: Path) -> None:
    """Raise unless the chunks of ``source`` can be hard-linked into a new store at ``output``.

    Linking (``intact="link"``) needs an unsharded zarr v3 source in a local folder whose
    chunking the output keeps (chunk sides up to :data:`MAX_CHUNK`), on the filesystem of
    ``output``'s folder. A linked chunk file is shared, not copied: zarr replaces a chunk file
    when it writes one (a new file, renamed into place), so writing either store through zarr
    never changes the other; a tool that rewrote chunk files in place would change both.

    Raises:
        InvalidInputError: naming what rules linking out, and ``--intact copy`` as the way out.
    """

    advice = "use --intact copy (intact='copy')"
    kept = output_layout(source).kept
    source = stored(source)
    if not kept:
        if isinstance(source, zarr.Array):
            sharded = "sharded" if source.shards is not None else "unsharded"
            found = f"a {sharded} zarr v{source.metadata.zarr_format} array, chunks {source.chunks}"
        else:
            found = f"a {type(source).__name__}"
        raise InvalidInputError(
            f"--intact link needs an unsharded zarr v3 scan chunked at most {MAX_CHUNK} px; "
            f"this scan is {found}: {advice}"
        )
    first = local_file(source, (0,) * len(source.shape))
    if first is None:
        raise InvalidInputError(f"--intact link needs a scan in a local folder: {advice}")
    root = Path(source.store_path.store.root)
    if filesystem_id(root) != filesystem_id(output.parent):
        raise InvalidInputError(
            f"--intact link needs the output on the scan's filesystem; {str(root)!r} and "
            f"{str(output.parent)!r} are on different ones: {advice}"
        )


def copy_chunk_bytes(
    source: Any, target: Any, coords: tuple[int, ...], *, link: bool = False
) -> None:
    """Copy into chunk ``coords`` (full chunk-grid coordinates) of ``target`` the stored bytes
    of the same chunk of ``source`` (its coordinates permuted where the arrays' axes are, see
    :func:`bytes_compatible`, which they must be), without decoding. A chunk
    missing in ``source`` (all fill value) is left missing in ``target``. With ``link`` both
    arrays must be in local folders on one filesystem (:func:`check_linkable`): the target's
    chunk file becomes a hard link to the source's, replacing whatever file was there.

    The source chunk is first decoded (:func:`~inpaint_core.io.guard.check_chunk_bytes`): a
    corrupt one raises CorruptChunkError naming it, and nothing is copied.

    Raises:
        InvalidInputError: either array is not in a local folder (:func:`copyable_as_bytes`
            tells beforehand; such chunks go through zarr, decoded and encoded).
    """
    theirs = _source_coords(source, target, coords)
    check_chunk_bytes(source, theirs)
    origin, destination = local_file(source, theirs), local_file(target, coords)
    if origin is None or destination is None:
        what = "hard-linking" if link else "copying stored bytes of"
        raise InvalidInputError(f"{what} chunks needs both arrays in local folders")
    destination.unlink(missing_ok=True)  # file to file, no bytes in Python
    if origin.is_file():
        destination.parent.mkdir(parents=True, exist_ok=True)
        if link:
            os.link(origin, destination)
        else:
            shutil.copyfile(origin, destination)


def copyable_as_bytes(source: Any, target: Any) -> bool:
    """Whether :func:`copy_chunk_bytes` can copy ``source``'s chunks (an array or
    :class:`~inpaint_core.io.axes.NgffAxesView`) into ``target``'s: the same stored bytes
    (:func:`~inpaint_core.io.layout.bytes_compatible`), both in local folders."""
    origin, destination = stored(source), stored(target)
    if not bytes_compatible(origin, destination):
        return False
    first = (0,) * len(origin.shape)
    return local_file(origin, first) is not None and local_file(destination, first) is not None


def _source_coords(source: Any, target: Any, coords: tuple[int, ...]) -> tuple[int, ...]:
    """The chunk of ``source`` whose stored bytes are chunk ``coords`` of ``target``."""
    theirs, ours = physical_layout(source)[0], physical_layout(target)[0]
    if theirs == ours:
        return coords
    found = [0] * len(coords)
    for stored_axis, axis in enumerate(theirs):
        found[axis] = coords[ours[stored_axis]]
    return tuple(found)
