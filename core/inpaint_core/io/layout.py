"""How an output level is laid out and encoded, and how stored chunks are found.

An output keeps the scan's chunking (sides capped at :data:`MAX_CHUNK`) and, where it can,
the scan's codecs (:func:`kept_encoding`), so that chunks needing no restoration copy or link
as the stored bytes they are (:mod:`inpaint_core.io.chunks`). Everything here goes through
zarr's public API (array metadata, ``Array.from_dict``); a local store's chunk files are
found from ``LocalStore.root`` and the metadata's chunk key encoding.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import zarr
from zarr.codecs import TransposeCodec, ZstdCodec
from zarr.storage import LocalStore

from inpaint_core.errors import ParameterError
from inpaint_core.io.axes import OUTPUT_AXES, NgffAxesView, arranged, stored, stored_axes

MAX_CHUNK = 4096
"""Output chunk sides are the source's, capped here (a strip TIFF may be one huge chunk)."""

def output_chunks(source: Any) -> tuple[int, ...]:
    """The output chunk shape: the source's (whole channels), sides capped at MAX_CHUNK."""
    shape = tuple(int(v) for v in source.shape)
    chunks = getattr(source, "chunks", None)
    if not isinstance(chunks, tuple) or len(chunks) != len(shape):
        chunks = shape
    pairs = zip(chunks[:2], shape[:2], strict=True)
    sides = tuple(max(1, min(int(c), MAX_CHUNK, s)) for c, s in pairs)
    return sides + shape[2:]


@dataclass(frozen=True)
class Layout:
    """How an output level is stored.

    Attributes:
        axes: the stored axis names (NGFF order, written as the array's ``dimension_names``).
        shape, chunks: the stored shape and chunk shape, in ``axes`` order.
        encoding: ``create_array`` keywords (codecs, fill value).
        kept: whether ``encoding`` keeps the source's stored chunk bytes (:func:`kept_encoding`),
            so that its chunks copy or link as they are stored.
    """

    axes: tuple[str, ...]
    shape: tuple[int, ...]
    chunks: tuple[int, ...]
    encoding: dict[str, Any]
    kept: bool


def output_layout(source: Any) -> Layout:
    """The :class:`Layout` of the output's level 0 for ``source`` (an ``(H, W[, C])`` array or
    :class:`NgffAxesView`): a channel-first OME-Zarr's own axes, else ``y, x`` or ``c, y, x``
    (:data:`OUTPUT_AXES`); :func:`output_chunks` (whole channels); the source's stored chunk
    bytes where they can be kept (:func:`kept_encoding`: a ``(H, W, C)`` zarr v3 scan's chunks
    are then declared with a ``transpose`` codec, which stores them channel last, as the scan
    does), else :func:`new_encoding`."""
    chunks = output_chunks(source)
    if isinstance(source, NgffAxesView):
        axes = source.axes
        shape, sides = source.stored_level(tuple(source.shape), chunks)
    else:
        axes = OUTPUT_AXES[len(source.shape)]
        shape = arranged(tuple(int(v) for v in source.shape), axes)
        sides = arranged(chunks, axes)
    kept = kept_encoding(source, axes, sides)
    return Layout(axes, shape, sides, kept or new_encoding(), kept is not None)


def kept_encoding(
    source: Any, axes: Sequence[str], chunks: tuple[int, ...]
) -> dict[str, Any] | None:
    """``create_array`` keywords for a level stored in ``axes`` and chunked ``chunks`` whose
    every chunk is, byte for byte, the same chunk of ``source`` (an array or
    :class:`NgffAxesView`): the stored array's encoding (:func:`same_encoding`), after a
    ``transpose`` codec when its stored axes are in another order. None when ``source`` is no
    unsharded zarr v3 array, or its chunks permuted are not ``chunks``."""

    array, own = stored(source), stored_axes(source)
    if sorted(own) != sorted(axes):
        return None
    order = tuple(axes.index(name) for name in own)  # the stored axes, from the level's
    permuted = tuple(int(chunks[number]) for number in order)
    encoding = same_encoding(array, permuted)
    if encoding is None or order == tuple(range(len(order))):
        return encoding
    return dict(encoding, filters=(TransposeCodec(order=order), *encoding["filters"]))


def new_encoding() -> dict[str, Any]:
    """The ``create_array`` keywords of an output array that takes no source's encoding:
    fill value 0 and zstd at its default level (zarr's default, made explicit so that a run's
    ``zstd_level`` always finds it)."""

    return {"fill_value": 0, "compressors": (ZstdCodec(),)}


#: The zstd levels: negative ones trade compression for speed; 0 is zstd's default (3).
ZSTD_LEVELS = range(-131072, 23)


def check_zstd_level(level: int | None, codecs: Sequence[Any]) -> None:
    """Raise :class:`~inpaint_core.errors.ParameterError` unless ``level`` is None, or a
    zstd level (:data:`ZSTD_LEVELS`) and ``codecs`` (an output's codecs or compressors)
    hold zstd, naming them."""


    if level is None:
        return
    if not isinstance(level, int) or isinstance(level, bool) or level not in ZSTD_LEVELS:
        raise ParameterError(
            f"zstd_level={level!r} must be an int from {ZSTD_LEVELS[0]} to {ZSTD_LEVELS[-1]}"
        )
    if not any(isinstance(codec, ZstdCodec) for codec in codecs):
        names = ", ".join(type(codec).__name__ for codec in codecs) or "none"
        raise ParameterError(
            f"zstd_level={level} needs an output compressed with zstd; this one's codecs, "
            f"taken from the scan so that its intact chunks copy as stored bytes, are: {names}"
        )


def zstd_writer(array: Any, level: int | None) -> Any:
    """``array`` (a zarr v3 array or an :class:`NgffAxesView`) as one that encodes the chunks
    it writes at zstd ``level``; the store, and the codecs its ``zarr.json`` declares, stay as
    they are: the level is the encoder's effort, and a zstd frame decodes alike whatever level
    made it, so every reader reads these chunks as before. None: ``array`` itself.

    Raises:
        ParameterError: see :func:`check_zstd_level`.
    """
    if level is None:
        return array
    if isinstance(array, NgffAxesView):
        return array.with_array(zstd_writer(array.array, level))

    check_zstd_level(level, array.metadata.codecs)
    described = array.metadata.to_dict()
    described["codecs"] = [
        ZstdCodec(level=level, checksum=codec.checksum) if isinstance(codec, ZstdCodec)
        else codec for codec in array.metadata.codecs
    ]
    return zarr.Array.from_dict(array.store_path, described).with_config(array.config)


def same_encoding(source: Any, chunks: tuple[int, ...]) -> dict[str, Any] | None:
    """``create_array`` keywords giving a new array ``source``'s encoding, so its chunks can be
    copied as stored bytes (:func:`copy_chunk_bytes`); None when ``source`` is not an
    unsharded zarr v3 array chunked as ``chunks``."""

    if not isinstance(source, zarr.Array) or source.metadata.zarr_format != 3:
        return None
    if source.shards is not None or tuple(source.chunks) != tuple(chunks):
        return None
    return {
        "serializer": source.serializer,
        "compressors": source.compressors,
        "filters": source.filters,
        "fill_value": source.fill_value,
    }


def bytes_compatible(source: Any, target: Any) -> bool:
    """Whether every chunk of ``source`` is, byte for byte, a chunk of ``target`` (the same
    chunk, or its transposed one where a ``transpose`` codec stores the arrays' axes in the
    same order: :func:`copy_chunk_bytes` finds it); their codecs may differ only in what the
    encoder alone uses: zstd's level."""

    if not (isinstance(source, zarr.Array) and isinstance(target, zarr.Array)):
        return False
    first, second = source.metadata, target.metadata
    if first.zarr_format != 3 or second.zarr_format != 3:
        return False
    one, other = physical_layout(source), physical_layout(target)
    return (
        one[1:] == other[1:]
        and first.data_type == second.data_type
        and first.chunk_key_encoding == second.chunk_key_encoding
        and np.array_equal(np.asarray(source.fill_value), np.asarray(target.fill_value))
    )


def physical_layout(array: Any) -> tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...], Any]:
    """A zarr v3 ``array`` as its chunks are stored: the axis order that its leading
    ``transpose`` codecs make (stored axis ``k`` is the array's axis ``order[k]``), the shape
    and chunk shape in that order, and its other codecs (:func:`_decoded_alike`)."""

    codecs = list(array.metadata.codecs)
    order = tuple(range(len(array.shape)))
    while codecs and isinstance(codecs[0], TransposeCodec):
        order = tuple(order[number] for number in codecs.pop(0).order)
    shape = tuple(int(array.shape[number]) for number in order)
    chunks = tuple(int(array.chunks[number]) for number in order)
    return order, shape, chunks, _decoded_alike(codecs)


def _decoded_alike(codecs: Sequence[Any]) -> tuple[Any, ...]:
    """``codecs`` without what only the encoder uses (zstd's level: :func:`zstd_writer`)."""

    return tuple(
        ("zstd", codec.checksum) if isinstance(codec, ZstdCodec) else codec for codec in codecs
    )


def chunk_key(array: Any, coords: tuple[int, ...]) -> str:
    """The store key of chunk ``coords`` (chunk-grid coordinates) of a zarr ``array``."""
    key = array.metadata.encode_chunk_key(coords)
    prefix = array.store_path.path
    return f"{prefix}/{key}" if prefix else key


def stored_chunk_keys(array: Any) -> frozenset[str] | None:
    """The keys a zarr ``array``'s local store holds under the array's path (metadata and the
    :func:`chunk_key` of each stored chunk); a chunk whose key is missing is all ``fill_value``
    (zarr does not store those). None when that cannot be told: not a zarr array, a sharded
    one (a shard holds many chunks), or a store that is no local folder (zarr lists other
    stores only through its asynchronous API). One walk of the array's folder."""
    if not isinstance(array, zarr.Array) or array.shards is not None:
        return None
    store, prefix = array.store_path.store, array.store_path.path
    if not isinstance(store, LocalStore):
        return None
    root = Path(store.root)
    folder = root / prefix if prefix else root
    keys = []
    for parent, _, files in os.walk(folder):
        for name in files:
            keys.append((Path(parent) / name).relative_to(root).as_posix())
    return frozenset(keys)


def local_file(array: Any, coords: tuple[int, ...]) -> Path | None:
    """The file that holds chunk ``coords`` of ``array`` when its store is a local folder."""
    store = array.store_path.store
    if not isinstance(store, LocalStore):
        return None
    return Path(store.root) / chunk_key(array, coords)
