"""The tiled restoration engine: restore a scan of any size chunk by chunk, resumably.

The loop is thin; the geometry is :mod:`inpaint_core.tiling`. For each output chunk that some
tile's core touches: compute the tiles it needs (``batch`` at a time, looking ahead to the
next chunks' tiles; results are cached until every chunk using them is written), blend them,
write the chunk, then mark it done in the output's progress array. A killed run resumed with
``resume=True`` redoes only unmarked chunks and gives the same bytes. Chunks without a hole
are copied from the source unchanged, in parallel (local threads, or a dask.distributed
cluster's workers). The pyramid's chunks over restored chunks are written as soon as those are
(:class:`~inpaint_core.io.pyramids.PyramidWriter`, on the I/O threads); the rest at the end.
"""

from __future__ import annotations

import errno
import logging
import os
import shutil
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Generator, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from contextlib import nullcontext
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from inpaint_core.api import NO_HOLE, Prepared, paste_result, prepare, run_prepared
from inpaint_core.errors import (
    ImageIOError,
    InpaintError,
    InvalidInputError,
    MethodFailedError,
    OutputExistsError,
    ParameterError,
)
from inpaint_core.geometry import Box, chunk_boxes
from inpaint_core.io import axes, chunks, inputs, layout, marks
from inpaint_core.io import pyramid as pyramids
from inpaint_core.io import store as output_store
from inpaint_core.io.atomic import flush_to_disk, remove_stale_temporaries, temporary_sibling
from inpaint_core.io.cache import ChunkCache, chunked
from inpaint_core.io.guard import OutputLock, mask_digest, remove_new_output
from inpaint_core.method import InpaintMethod, MethodInfo
from inpaint_core.tiling.blend import blend_holes
from inpaint_core.tiling.execution import (
    check_resumable,
    connect,
    default_overlap,
    describe,
    describe_run,
    make_method,
    oom_errors,
    run_with_backoff,
    usable_cores,
)
from inpaint_core.tiling.plan import Tile, check_geometry, plan_tiles, tiles_by_block
from inpaint_core.tiling.regions import HoleRegions, find_hole_regions, shrink_to_holes

logger = logging.getLogger(__name__)

COPY_GROUP = 32
"""Hole-free chunks copied per step (one dask compute on a cluster), in the background from
the start; after the restoring, ``should_stop`` is polled between steps."""
#: Threads that read the next tiles and write finished chunks while the method computes: the
#: cores this process may use but one (the method's), 2 to 8. Measured on 2 cores (where 1 to 4
#: made no difference); more cores keep a GPU fed, whose tiles outpace one core's encoding.
IO_THREADS = max(2, min(8, usable_cores() - 1))
#: Threads copying hole-free chunks (file I/O more than CPU, so more threads than cores pay).
COPY_THREADS = 4
#: Chunk writes in flight before the loop waits (bounds the results held in memory).
MAX_PENDING_WRITES = 2 * IO_THREADS
#: Steps of tiles read (and prepared) ahead of the one computed: with one, a read queued
#: behind chunk writes on the I/O threads was often late (8k telea: the method waited 0.2 to
#: 0.4 s in all; with two, 0.05 s).
READ_AHEAD = 2


@dataclass(frozen=True)
class RestoreEvent:
    """Progress of a restoration: tiles computed and chunks written (resumed ones included)."""

    tiles_done: int
    tiles_total: int
    chunks_done: int
    chunks_total: int
    phase: str  # "restore", "copy", "pyramid" or "done"


@dataclass(frozen=True)
class RestoreResult:
    """What :func:`restore_scan` did. ``stopped``: ``should_stop`` ended it early (resumable)."""

    output: Path
    tiles: int
    chunks_total: int
    chunks_restored: int
    chunks_copied: int
    hole_fraction: float
    levels: int
    stopped: bool
    seconds: float


def _run_batch(
    method: InpaintMethod, tiles: Sequence[Tile], items: Sequence[Prepared], seed: int
) -> list[Any]:
    """The method's raw results for a batch of prepared windows, from one ``run_batch`` call
    (a learned method runs same-sized tiles as one batch on its device), ``NO_HOLE`` for a
    window without a hole; the hook that the OOM back-off wraps. CUDA out-of-memory propagates as it
    is; another failure is retried tile by tile, so that the error names the tile that fails."""
    try:
        return run_prepared(method, list(items), seed)
    except oom_errors():
        raise
    except Exception as batch_error:
        for tile, item in zip(tiles, items, strict=True):
            try:
                run_prepared(method, [item], seed)
            except oom_errors():
                raise
            except Exception as error:
                raise MethodFailedError(
                    f"{describe(tile)} (core {tuple(tile.core)}) failed with method "
                    f"{method.info.name!r}: {error}"
                ) from error
        raise MethodFailedError(
            f"a batch of {len(tiles)} tiles from {describe(tiles[0])} failed with method "
            f"{method.info.name!r}, though each tile alone succeeds: {batch_error}"
        ) from batch_error


def _paste(name: str, tile: Tile, window: tuple[Prepared, Box], filled: Any) -> np.ndarray:
    """Method ``name``'s result for ``tile`` (its prepared ``window``) checked, pasted into the
    window's pixels (:func:`~inpaint_core.api.paste_result`) and cropped to the tile's window
    (:func:`_crop`); a bad result (``None`` included) raises MethodFailedError naming the tile.
    A window without a hole (``filled`` is ``NO_HOLE``) is its pixels unchanged."""
    item, box = window
    if filled is NO_HOLE and item.colour is None:
        return _crop(item.image, box, tile)
    try:
        restored, _ = paste_result(name, item, filled)
    except MethodFailedError as error:
        raise MethodFailedError(f"{describe(tile)} (core {tuple(tile.core)}): {error}") from error
    return _crop(restored, box, tile)


def _restore_batch(
    method: InpaintMethod, tiles: Sequence[Tile],
    windows: Sequence[tuple[np.ndarray, np.ndarray, Box]], seed: int,
) -> list[np.ndarray]:  # fmt: skip
    """Restore a batch of windows as read (:func:`_read_window`) from preparing to cropping:
    one task on a dask.distributed worker (the raw pixels travel, not their float copy)."""
    name = method.info.name
    prepared = [(prepare(image, hole, name), box) for image, hole, box in windows]
    filled = _run_batch(method, tiles, [item for item, _ in prepared], seed)
    return [_paste(name, *args) for args in zip(tiles, prepared, filled, strict=True)]


#: A window that is all hole is doubled around its centre at most this many times (so at most
#: 4x the tile's side) to take in known pixels.
MAX_GROWTH = 2


def _grow(window: Box, shape: tuple[int, int]) -> Box:
    """``window`` with each side doubled around its centre, clipped to the scan ``shape``."""
    (row0, row1), (col0, col1) = (window.row0, window.row1), (window.col0, window.col1)
    rows, cols = min(2 * (row1 - row0), shape[0]), min(2 * (col1 - col0), shape[1])
    top = min(max((row0 + row1) // 2 - rows // 2, 0), shape[0] - rows)
    left = min(max((col0 + col1) // 2 - cols // 2, 0), shape[1] - cols)
    return Box(top, top + rows, left, left + cols)


def _read_window(source: Any, mask: Any, tile: Tile) -> tuple[np.ndarray, np.ndarray, Box]:
    """The scan pixels and hole of ``tile``'s window, and that window. A window that is all
    hole (inside a loss larger than the tile) is doubled around its centre until it holds known
    pixels, at most :data:`MAX_GROWTH` times; the method then restores the larger window and
    the engine keeps the tile's part (:func:`_crop`)."""
    window = tile.window
    shape = (int(mask.shape[0]), int(mask.shape[1]))
    for _ in range(MAX_GROWTH + 1):
        hole = np.asarray(mask[window.slices]) != 0
        if not hole.all():
            if window != tile.window:
                logger.info("%s is all hole: restored within the window rows %d:%d, cols %d:%d",
                            describe(tile), window.row0, window.row1, window.col0,
                            window.col1)  # fmt: skip
            return np.asarray(source[window.slices]), hole, window
        grown = _grow(window, shape)
        if grown == window:
            break
        window = grown
    raise InvalidInputError(
        f"{describe(tile)} is all hole, and so is the {window.row1 - window.row0} x "
        f"{window.col1 - window.col0} window around it: the method needs known pixels as "
        f"context; use a larger --tile than {max(tile.shape)}"
    )


def _prepare_window(source: Any, mask: Any, tile: Tile, name: str) -> tuple[Prepared, Box]:
    """:func:`_read_window`, checked and converted for method ``name``
    (:func:`~inpaint_core.api.prepare`): the local loop's read-ahead task, so that the
    conversion, too, runs beside the method instead of before it."""
    image, hole, box = _read_window(source, mask, tile)
    return prepare(image, hole, name), box


def _crop(restored: np.ndarray, window: Box, tile: Tile) -> np.ndarray:
    """The part of a window's result that is ``tile``'s window."""
    return restored if window == tile.window else restored[tile.window.slices_in(window)]


def _copy_chunk(
    source: Any, level0: Any, progress: Any, link: bool, box: Box, key: tuple[int, int]
) -> None:
    origin, target = axes.stored(source), axes.stored(level0)
    if chunks.copyable_as_bytes(source, level0):  # stored bytes: no decoding, no encoding
        for coords in axes.stored_chunks(level0, key):  # one per stored chunk of the channels
            chunks.copy_chunk_bytes(origin, target, coords, link=link)
    else:
        level0[box.slices] = np.asarray(source[box.slices])
    _mark_done(progress, key)


def _mark_done(progress: Any, key: tuple[int, int]) -> None:
    marks.mark_done(progress, key)


def iter_restore(
    scan: Any, mask: Any, method: str | InpaintMethod, output: str | os.PathLike[str], *,
    tile: int | None = None, overlap: int | None = None, batch: int = 1, device: str = "auto",
    params: Mapping[str, Any] | None = None, resume: bool = False, seed: int = 0,
    should_stop: Callable[[], bool] | None = None, scheduler: str | None = None,
    pyramid_side: int = pyramids.PYRAMID_SIDE, intact: str = "copy", workers: int = 1,
    zstd_level: int | None = None,
) -> Generator[RestoreEvent, None, RestoreResult]:  # fmt: skip
    """Restore ``scan`` into a new store, yielding a :class:`RestoreEvent` as work is done;
    the generator's return value is the :class:`RestoreResult`. Arguments as for
    :func:`restore_scan`; they are checked on the first ``next()``. Closing the generator
    early (e.g. a napari worker's quit) leaves the store resumable, like ``should_stop``."""
    started = time.perf_counter()
    if not isinstance(batch, int) or batch < 1:
        raise ParameterError(f"batch={batch!r} must be an int >= 1")
    if not isinstance(workers, int) or isinstance(workers, bool) or workers < 1:
        raise ParameterError(f"workers={workers!r} must be an int >= 1")
    instance = make_method(method, params, device)
    opened = inputs.open_inputs(scan, mask)
    array, hole = opened.scan, opened.mask
    side, overlap = _geometry(instance.info, tile, overlap)
    if intact not in chunks.INTACT_MODES:
        raise ParameterError(f"intact={intact!r} must be one of {', '.join(chunks.INTACT_MODES)}")
    path = output_store.check_output_store(output, opened.paths, resume=resume)
    if intact == "link":
        chunks.check_linkable(array, path)
    layout.check_zstd_level(zstd_level, layout.output_layout(array).encoding["compressors"])
    job = _Job(instance, array, hole, opened.described, path, resume, side, overlap, seed,
               pyramid_side, opened.levels, intact == "link", workers, zstd_level,
               opened.omero)  # fmt: skip
    with connect(scheduler) as client:
        stop = should_stop or (lambda: False)
        return (yield from _restore(job, batch, client, stop, started))


def restore_scan(
    scan: Any, mask: Any, method: str | InpaintMethod, output: str | os.PathLike[str], *,
    tile: int | None = None, overlap: int | None = None, batch: int = 1, device: str = "auto",
    params: Mapping[str, Any] | None = None, resume: bool = False,
    progress: Callable[[int, int], None] | None = None,
    should_stop: Callable[[], bool] | None = None, scheduler: str | None = None,
    seed: int = 0, pyramid_side: int = pyramids.PYRAMID_SIDE, intact: str = "copy",
    workers: int = 1, zstd_level: int | None = None,
) -> RestoreResult:  # fmt: skip
    """Restore every hole of a large scan with ``method``, tile by tile, into a new store.

    Args:
        scan: path of a zarr array, OME-Zarr group (level 0 is restored) or TIFF; or an array
            ``(H, W[, C])`` (C in 1, 3, 4; uint8, uint16, or float32/float64 in [0, 1]) that
            slices lazily, e.g. a zarr array.
        mask: path of a zarr, PNG or TIFF mask, or an array ``(H, W)``; non-zero = hole.
        method: a registered method name or an :class:`InpaintMethod` instance.
        output: the new zarr v3 store (see :mod:`inpaint_core.io.store`); never the source.
        tile: window side in px (default ``info.preferred_tile``); the margin is always
            ``info.context_margin``.
        overlap: px by which pieces of a hole too large for one tile overlap and cross-fade
            (default :func:`default_overlap`: ``margin // 2``, at least 1).
        batch: tiles restored per step; halved on CUDA out-of-memory (logged).
        device: ``auto``, ``cpu``, ``cuda``, ``cuda:N`` or ``mps``; given only to methods with
            a ``device`` parameter.
        params: the method's parameters (only with a method name).
        resume: continue an interrupted run into ``output`` (same settings); the result is
            byte-identical to an uninterrupted run.
        progress: called with ``(tiles_done, tiles_total)`` at the start and whenever tiles
            complete (e.g. a :class:`~inpaint_core.progress.ProgressBar`).
        should_stop: polled between chunks; True stops cleanly (resume later).
        scheduler: ``tcp://HOST:PORT`` of a dask.distributed scheduler: tiles (``batch`` in
            flight at once, one task each) and hole-free chunk copies run on its workers, which
            must reach the scan and the output (shared filesystem). None: this process, with
            local threads for the copies.
        seed: seeds the method's random generator (same for every tile).
        pyramid_side: levels are added until the long side is at most this.
        intact: how chunks without holes (and an OME-Zarr source's pyramid chunks over them)
            reach the output: ``copy`` their stored bytes (default), or ``link`` them, a hard
            link per chunk file, which costs no time or disk whatever the scan's size but
            needs an unsharded zarr v3 scan on the output's filesystem
            (:func:`~inpaint_core.io.chunks.check_linkable`). zarr replaces a chunk file
            when it writes one, so writing either store through zarr never changes the other.
        workers: local threads restoring ``batch``-tile groups at once (no ``scheduler``).
            For CPU methods that release the GIL while they compute (OpenCV's ``telea`` and
            ``navier-stokes``, NumPy-heavy ones); the method must be thread-safe (the built-in
            methods are). The CUDA out-of-memory back-off applies with 1 worker only.
        zstd_level: the zstd level of the chunks this run encodes (restored chunks and the
            pyramid's computed ones); None (default): the level the output declares, i.e. the
            scan's. The output keeps the scan's codecs in its metadata (so intact chunks still
            copy or link as stored bytes): zstd decodes a chunk alike whatever level made it.
            Encoding is most of the I/O work beside the method: ``1`` encodes a 1024 px RGB
            chunk about twice as fast as zstd's default 3, for chunks about 12 % larger
            (``benchmarks/tiled_restore.py``). The output must be compressed with zstd (it is
            unless the scan is a zarr v3 array with another compressor). Recorded in the
            provenance's settings.

    Returns:
        A :class:`RestoreResult`.

    Raises:
        InpaintError subclasses naming the bad value; :class:`MethodFailedError` (chained from
        the cause) naming the tile when the method fails on it.
    """
    events = iter_restore(
        scan, mask, method, output, tile=tile, overlap=overlap, batch=batch, device=device,
        params=params, resume=resume, seed=seed, should_stop=should_stop, scheduler=scheduler,
        pyramid_side=pyramid_side, intact=intact, workers=workers, zstd_level=zstd_level,
    )  # fmt: skip
    reported = None
    while True:
        try:
            event = next(events)
        except StopIteration as finished:
            return finished.value
        if progress is not None and event.tiles_done != reported:
            reported = event.tiles_done
            progress(event.tiles_done, event.tiles_total)


def iter_tile_inputs(
    scan: Any, mask: Any, method: str | InpaintMethod, *, tile: int | None = None,
    overlap: int | None = None, params: Mapping[str, Any] | None = None, device: str = "auto",
) -> Iterator[tuple[Tile, Prepared]]:  # fmt: skip
    """The tiles :func:`restore_scan` computes for ``scan``, ``mask`` and ``method`` (same
    arguments, same plan), each with its window as the method gets it: a
    :class:`~inpaint_core.api.Prepared` (``colour`` float32 ``(h, w, C)`` in [0, 1], ``hole``
    bool ``(h, w)``). One window is read at a time; nothing is written. For timing the method
    alone on a scan's tiles (``benchmarks/tiled_restore.py``), or looking at what it sees."""
    instance = make_method(method, params, device)
    opened = inputs.open_inputs(scan, mask)
    side, overlap = _geometry(instance.info, tile, overlap)
    _, tiles, pixels, damage = _plan(opened.scan, opened.mask, instance.info, side, overlap)
    for each in tiles:
        item, _ = _prepare_window(pixels, damage, each, instance.info.name)
        yield each, item


def _geometry(info: MethodInfo, tile: int | None, overlap: int | None) -> tuple[int, int]:
    """The checked tile side and overlap: the method's preferred tile and the default overlap
    unless given."""
    side = info.preferred_tile if tile is None else tile
    overlap = default_overlap(side, info.context_margin) if overlap is None else overlap
    check_geometry(side, info.context_margin, info.pad_multiple, overlap)
    if overlap < 1:
        raise ParameterError(f"overlap={overlap} must be >= 1 so that split holes cross-fade")
    return side, overlap


def _plan(
    array: Any, hole: Any, info: MethodInfo, side: int, overlap: int
) -> tuple[HoleRegions, list[Tile], Any, Any]:
    """The hole regions, the tiles, and the scan and mask behind chunk caches (each chunk
    decoded once for many reads)."""
    regions = find_hole_regions(hole)
    pixels, damage = _cached(array), _cached(hole)
    tiles = plan_tiles(
        (int(array.shape[0]), int(array.shape[1])), regions.boxes, side, info.context_margin,
        info.pad_multiple, overlap=overlap, refine=partial(shrink_to_holes, damage),
    )  # fmt: skip
    return regions, list(tiles), pixels, damage


@dataclass(frozen=True)
class _Job:
    """The checked arguments of :func:`iter_restore`."""

    method: InpaintMethod
    scan: Any
    mask: Any
    inputs: Mapping[str, str]  # how scan and mask are named in the provenance
    output: Path
    resume: bool
    tile: int
    overlap: int
    seed: int
    pyramid_side: int
    levels: tuple[Any, ...]  # the source's own levels 1, 2, ... (OME-Zarr), else empty
    link: bool  # hard-link intact chunks instead of copying them
    workers: int  # local threads restoring tile groups at once
    zstd_level: int | None  # the zstd level of the chunks written; None: the declared one
    omero: dict[str, Any] | None  # the scan's OME-Zarr rendering metadata, kept


def _restore(
    job: _Job, batch: int, client: Any, stop: Callable[[], bool], started: float
) -> Generator[RestoreEvent, None, RestoreResult]:
    """The body of :func:`iter_restore`, once the arguments are checked."""
    instance, array, hole, path = job.method, job.scan, job.mask, job.output
    side, overlap, seed = job.tile, job.overlap, job.seed
    info = instance.info
    margin = info.context_margin
    shape = (int(array.shape[0]), int(array.shape[1]))
    regions, tiles, pixels, damage = _plan(array, hole, info, side, overlap)
    settings = {
        "tile": side,
        "margin": margin,
        "overlap": overlap,
        "seed": seed,
        "intact": "link" if job.link else "copy",
        "zstd_level": job.zstd_level,
    }
    provenance = describe_run(instance, job.inputs, regions, settings, len(tiles))
    provenance["mask_digest"] = mask_digest(hole)
    resuming = job.resume and path.exists()
    lock = OutputLock(path)
    if resuming:
        lock.acquire()
        try:
            group = output_store.open_output(path)
            provenance = check_resumable(path, dict(group.attrs.get("inpaint", {})), provenance)
            _check_known_pixels(regions, shape)
            remove_stale_temporaries(path)  # a killed run's half-written files: never kept
        except BaseException:
            lock.release()
            raise
    else:
        _check_known_pixels(regions, shape)  # every input check before the output exists
        group = _create_locked(path, array, provenance, job.omero, lock)
    restored = threading.Event()  # set once a restored chunk is written and marked done
    try:
        return (yield from _restore_into(job, batch, client, stop, started, group,
                                         provenance, resuming, regions, tiles, pixels, damage,
                                         restored))  # fmt: skip
    except BaseException as error:
        kept = resuming or restored.is_set() or _chunks_written(path)
        if not kept:
            remove_new_output(path)
        explained = _explained(error, path, kept)
        if explained is error:
            raise
        raise explained from error
    finally:
        lock.release()


def _check_known_pixels(regions: HoleRegions, shape: tuple[int, int]) -> None:
    """Raise unless the mask leaves some scan pixel known (a method needs context)."""
    if regions.hole_pixels == shape[0] * shape[1]:
        raise InvalidInputError(
            f"the mask covers every pixel of the {shape[0]} x {shape[1]} scan: nothing is left "
            "to restore from. Check the mask: holes are non-zero, known pixels zero"
        )


def _create_locked(
    path: Path, array: Any, provenance: dict[str, Any], omero: dict[str, Any] | None,
    lock: OutputLock,
) -> Any:  # fmt: skip
    """Create the output in a hidden sibling folder, with ``lock`` in it, and rename it into
    place once whole: ``path`` never holds a half-made output (a run killed meanwhile leaves
    only the hidden folder), and it appears already locked by this run."""
    temporary = temporary_sibling(path)
    try:
        output_store.create_output(temporary, array, provenance, omero, name=path.stem)
        lock.write_into(temporary)
        os.rename(temporary, path)
    except BaseException as error:
        shutil.rmtree(temporary, ignore_errors=True)
        if isinstance(error, OSError) and error.errno in (errno.EEXIST, errno.ENOTEMPTY):
            raise OutputExistsError(
                f"output {str(path)!r} was created by another run meanwhile; choose another "
                "path, or pass --resume once that run has finished"
            ) from error
        explained = _explained(error, path, kept=False)
        if explained is error:
            raise
        raise explained from error
    return output_store.open_output(path)


def _chunks_written(path: Path) -> bool:
    """Whether the output at ``path`` has a chunk marked done (restored or copied) in its
    progress array; True when that cannot be told (it is then kept)."""
    folder = path / output_store.PROGRESS
    try:
        return any(file.is_file() and file.name not in ("zarr.json", marks.MARK_FILE)
                   and not file.name.startswith(".") for file in folder.rglob("*"))  # fmt: skip
    except OSError:
        return True


def _explained(error: BaseException, path: Path, kept: bool) -> BaseException:
    """``error`` as the user sees it: an OSError becomes an ImageIOError naming the path and
    the reason; once chunks are written, an InpaintError's message (changed in place, so its
    cause stays) says that the output is resumable."""
    if isinstance(error, (KeyboardInterrupt, GeneratorExit, SystemExit)):
        return error
    after = (f"; {str(path)!r} is kept: fix that, then rerun the same command with --resume to "
             "continue" if kept else "")  # fmt: skip
    if isinstance(error, OSError) and not isinstance(error, InpaintError):
        reason = error.strerror or str(error)
        where = f" ({error.filename})" if error.filename else ""
        return ImageIOError(f"cannot write the output {str(path)!r}: {reason}{where}{after}")
    if isinstance(error, InpaintError) and after and len(error.args) == 1:
        error.args = (f"{error.args[0]}{after}",)
    return error


def _restore_into(
    job: _Job, batch: int, client: Any, stop: Callable[[], bool], started: float, group: Any,
    provenance: dict[str, Any], resuming: bool, regions: HoleRegions, tiles: list[Tile],
    pixels: Any, damage: Any, restored: threading.Event,
) -> Generator[RestoreEvent, None, RestoreResult]:  # fmt: skip
    """Restore into the created (or resumed) output ``group``: every chunk not yet done;
    ``restored`` is set once a restored chunk is written."""
    instance, array, path = job.method, job.scan, job.output
    overlap, seed = job.overlap, job.seed
    info = instance.info
    shape = (int(array.shape[0]), int(array.shape[1]))
    # A restored chunk is never all fill value in practice: skip zarr's check of each written
    # chunk against it (a full comparison per chunk, as costly as a quarter of the encoding).
    level0 = output_store.level_array(group, output_store.LEVEL0, {"write_empty_chunks": True})
    level0 = layout.zstd_writer(level0, job.zstd_level)
    progress = group[output_store.PROGRESS]
    block = (int(level0.chunks[0]), int(level0.chunks[1]))
    # A new output has no marks: not read (a read per chunk, 0.13 s for a 32k scan's 1024).
    done = np.asarray(progress[...]) != 0 if resuming else np.zeros(progress.shape, bool)
    boxes = {(b.row0 // block[0], b.col0 // block[1]): b for b in chunk_boxes(shape, block)}
    users = tiles_by_block(tiles, block)
    todo = [key for key in users if not done[key]]
    copies = [key for key in boxes if key not in users and not done[key]]
    uses = dict.fromkeys(range(len(tiles)), 0)  # chunks still to write that need each tile
    for key in todo:
        for index in users[key]:
            uses[index] += 1
    tiles_done = sum(1 for count in uses.values() if count == 0)
    chunks_done = int(done.sum())

    def event(phase: str) -> RestoreEvent:
        return RestoreEvent(tiles_done, len(tiles), chunks_done, len(boxes), phase)

    def result(levels: int, stopped: bool, restored: int, copied: int) -> RestoreResult:
        return RestoreResult(
            path, len(tiles), len(boxes), restored, copied, regions.hole_fraction, levels,
            stopped, time.perf_counter() - started,
        )  # fmt: skip

    yield event("restore")
    pyramid = None
    if not provenance["complete"]:  # else resuming a finished run: its pyramid is written
        changed = [(b.row0, b.col0, b.row1, b.col1) for b in (boxes[key] for key in users)]
        # Pyramid chunks over restored chunks are written as those are, beside the method.
        pyramid = pyramids.PyramidWriter(group, job.pyramid_side, source_levels=job.levels,
                                      changed=changed, link=job.link,
                                      final={tuple(key) for key in np.argwhere(done)},
                                      zstd_level=job.zstd_level)  # fmt: skip
    cache: dict[int, Future[np.ndarray]] = {}  # a tile's result, pasted on an I/O thread
    prefetched: dict[Tile, Future[Any]] = {}
    # Locally the read-ahead also prepares each window; a cluster's workers prepare their own.
    read = _read_window if client is not None else partial(_prepare_window, name=info.name)
    writes: deque[Future[None]] = deque()
    tile_pool = (ThreadPoolExecutor(job.workers, thread_name_prefix="inpaint-tile")
                 if job.workers > 1 and client is None else None)  # fmt: skip
    copy = partial(_copy_group, array, level0, progress, job.link, boxes)
    then = None if pyramid is None else pyramid.copy_clean
    # Restored chunks are encoded on the I/O threads themselves (below the method's priority).
    store = chunks.chunk_store(level0)
    with (
        ThreadPoolExecutor(IO_THREADS, thread_name_prefix="inpaint-io",
                           **_below_me()) as pool,
        tile_pool or nullcontext(),
        _Copies(copy, copies, client, then) as copying,  # begun now, beside the restoring
    ):
        try:
            for position, key in enumerate(todo):
                if stop():
                    _drain(writes)
                    return result(0, True, position, copying.settle())
                step = batch * job.workers  # tiles computed per step
                # Only for a chunk that lacks tiles (then up to ``step`` with the next ones'):
                # the method never runs ahead of the writes, which would be left for the end.
                lacking = any(index not in cache for index in users[key])
                wanted = _lookahead(todo[position:], users, cache, step) if lacking else []
                if wanted:
                    # Read the tiles after these while these are computed (and written).
                    upcoming = _lookahead(todo[position:], users, {**cache, **dict.fromkeys(
                        wanted)}, step * READ_AHEAD)  # fmt: skip
                    for index in upcoming:
                        if tiles[index] not in prefetched:
                            prefetched[tiles[index]] = pool.submit(
                                read, pixels, damage, tiles[index]
                            )
                    chosen = [tiles[index] for index in wanted]
                    windows = [
                        prefetched.pop(tile).result() if tile in prefetched
                        else read(pixels, damage, tile) for tile in chosen
                    ]  # fmt: skip
                    outputs, batch = _compute(instance, chosen, windows, batch, seed,
                                              client or tile_pool, pool)  # fmt: skip
                    cache.update(zip(wanted, outputs, strict=True))
                    tiles_done += len(wanted)
                    yield event("restore")
                while len(writes) >= MAX_PENDING_WRITES:
                    writes.popleft().result()
                writes.append(pool.submit(
                    _write_chunk, pixels, damage, store, progress, boxes[key], key,
                    [tiles[i] for i in users[key]], [cache[i] for i in users[key]], overlap,
                    pyramid, restored,
                ))  # fmt: skip
                chunks_done += 1
                for index in users[key]:
                    uses[index] -= 1
                    if uses[index] == 0:
                        del cache[index]
                yield event("restore")
            _drain(writes)
        finally:  # also on errors and on closing: every submitted chunk is written and marked
            wait(writes)
            for future in prefetched.values():
                future.cancel()
        while copying.pending:
            if stop():
                return result(0, True, len(todo), copying.settle())
            chunks_done += copying.next_group()
            yield event("copy")
    yield event("pyramid")
    if pyramid is None:
        levels = len(group.attrs["ome"]["multiscales"][0]["datasets"])
    else:
        levels = pyramid.finish(path.stem)
        flush_to_disk()  # chunks and marks were written without fsync: on disk before "complete"
        group.attrs["inpaint"] = dict(provenance, complete=True)
    yield event("done")
    return result(levels, False, len(todo), len(copies))


def _lookahead(
    todo: Sequence[tuple[int, int]], users: Mapping[tuple[int, int], list[int]],
    cache: Mapping[int, np.ndarray], batch: int,
) -> list[int]:  # fmt: skip
    """The tiles the first chunk of ``todo`` lacks, then the next chunks' (up to ``batch``)."""
    wanted: list[int] = []
    for number, key in enumerate(todo):
        for index in users[key]:
            if index not in cache and index not in wanted:
                if number and len(wanted) >= batch:
                    return wanted
                wanted.append(index)
    return wanted


def _compute(
    method: InpaintMethod, chosen: list[Tile], windows: list[Any], batch: int, seed: int,
    client: Any, pool: ThreadPoolExecutor,
) -> tuple[list[Future[np.ndarray]], int]:  # fmt: skip
    """The results of the ``chosen`` tiles, cropped to each tile's window, as futures, and
    the batch size to go on with. ``client``: a dask.distributed client (``windows`` as read
    by :func:`_read_window`, each restored whole on a worker), or a local thread pool running
    groups of ``batch`` tiles side by side, or None (this thread, with the OOM back-off); in
    the local cases ``windows`` come from :func:`_prepare_window` and each result is pasted
    and cropped on ``pool``, the I/O threads, while the method goes on."""
    if client is not None and not isinstance(client, ThreadPoolExecutor):
        futures = [  # one task per tile, spread over the cluster's workers
            client.submit(_restore_batch, method, [tile], [window], seed, pure=False)
            for tile, window in zip(chosen, windows, strict=True)
        ]
        return [_done(outputs[0]) for outputs in client.gather(futures)], batch
    items = dict(zip(chosen, windows, strict=True))

    def run(part: Sequence[Tile]) -> list[Any]:
        return _run_batch(method, part, [items[tile][0] for tile in part], seed)

    if client is not None:  # groups of ``batch`` tiles, side by side
        groups = [chosen[start : start + batch] for start in range(0, len(chosen), batch)]
        filled = [output for outputs in client.map(run, groups) for output in outputs]
    else:
        filled, batch = run_with_backoff(run, chosen, batch)
    name = method.info.name
    return [pool.submit(_paste, name, tile, items[tile], output)
            for tile, output in zip(chosen, filled, strict=True)], batch  # fmt: skip


def _done(value: np.ndarray) -> Future[np.ndarray]:
    """A future that already holds ``value``."""
    future: Future[np.ndarray] = Future()
    future.set_result(value)
    return future


def _drain(writes: deque[Future[None]]) -> None:
    """Wait for every pending chunk write; the first failure is raised."""
    while writes:
        writes.popleft().result()


def _write_chunk(
    array: Any, hole: Any, store: Callable[[tuple[int, int], np.ndarray], None], progress: Any,
    box: Box, key: tuple[int, int], tiles: list[Tile], results: list[Future[np.ndarray]],
    ramp: int, pyramid: pyramids.PyramidWriter | None, restored: threading.Event | None = None,
) -> None:  # fmt: skip
    """Blend the tiles' results (once they are pasted) into chunk ``box``, ``store`` it (as
    chunk ``key``), mark it done, then hand it to the ``pyramid`` (which may write the pyramid
    chunks above it)."""
    source = np.asarray(array[box.slices])
    pasted = [result.result() for result in results]  # submitted earlier: run or running
    output = blend_holes(source, np.asarray(hole[box.slices]), box, tiles, pasted, ramp)
    store(key, output)
    _mark_done(progress, key)
    if restored is not None:
        restored.set()
    if pyramid is not None:
        pyramid.written(key, output)


#: How far below the method's thread the I/O threads run, as a Linux nice increment: the
#: method is the run's critical path, and on few cores the threads that read, blend, encode
#: and write would otherwise take turns with it (8k, 2 cores: the method ran 25 % slower
#: than alone beside them, 10-15 % when they yield to it).
IO_NICE = 10


def _below_me() -> dict[str, Any]:
    """Thread-pool arguments that start each of the pool's threads :data:`IO_NICE` below the
    calling thread's CPU priority (Linux gives each thread its own nice value; elsewhere
    nothing). Relative to the caller, not to the thread that happens to start a pool thread
    (threads inherit their starter's nice: a pool fed from a lowered thread would otherwise
    go lower still). The threads keep it until they end, with their pool."""
    if not sys.platform.startswith("linux"):
        return {}
    try:
        target = min(19, os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) + IO_NICE)
    except OSError:
        return {}
    return {"initializer": _set_priority, "initargs": (target,)}


def _set_priority(target: int) -> None:
    """Set the calling thread's nice value to ``target`` (a pool thread's initializer)."""
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), target)
    except OSError:  # not permitted here: run at the inherited priority
        logger.debug("could not lower the I/O thread's priority", exc_info=True)


def _cached(array: Any) -> Any:
    """``array`` behind a :class:`~inpaint_core.io.cache.ChunkCache` when it is chunked; a
    local zarr v3 array's chunks are decoded in the reading thread
    (:func:`~inpaint_core.io.chunks.direct_chunks`), an I/O thread at a lower priority."""
    if chunked(array) is None:
        return array
    direct = chunks.direct_chunks(array)
    return ChunkCache(array, reader=None if direct is None else direct.read)


class _Copies:
    """The hole-free chunks ``keys``, copied :data:`COPY_GROUP` at a time by ``copy(group,
    scheduler)`` (:func:`_copy_group`) on a background thread from the moment this is made,
    then ``then()`` (the pyramid's chunks copied from the source's levels): copying overlaps
    restoring. ``scheduler``: a dask.distributed client, else :data:`COPY_THREADS` local
    threads. Leaving the ``with`` block waits for the step being copied and drops those not
    begun (so every copied chunk is marked done)."""

    def __init__(
        self, copy: Callable[[Sequence[tuple[int, int]], Any], None],
        keys: Sequence[tuple[int, int]], client: Any, then: Callable[[], object] | None = None,
    ) -> None:  # fmt: skip
        # Below the method's priority too, like the I/O threads: copies fill the idle cores.
        lowered = _below_me()
        self._runner = ThreadPoolExecutor(1, thread_name_prefix="inpaint-copier", **lowered)
        self._threads = ThreadPoolExecutor(COPY_THREADS, thread_name_prefix="inpaint-copy",
                                           **lowered)  # fmt: skip
        scheduler = client or self._threads
        groups = [keys[start : start + COPY_GROUP] for start in range(0, len(keys), COPY_GROUP)]
        self.pending: deque[tuple[Sequence[tuple[int, int]], Future[Any]]] = deque(
            (group, self._runner.submit(copy, group, scheduler)) for group in groups
        )
        if then is not None:  # no level-0 chunk: counts 0
            self.pending.append(((), self._runner.submit(then)))
        self.copied = 0

    def next_group(self) -> int:
        """Wait for the next group; its chunk count (its copy's error, if any, is raised)."""
        group, future = self.pending.popleft()
        future.result()
        self.copied += len(group)
        return len(group)

    def settle(self, check: bool = True) -> int:
        """Drop the groups not begun, wait for the one being copied; the chunks copied in
        all (a failed group's error is raised when ``check``)."""
        for _, future in self.pending:
            future.cancel()
        wait([future for _, future in self.pending])
        while self.pending:
            group, future = self.pending.popleft()
            if not future.cancelled() and (check or future.exception() is None):
                future.result()
                self.copied += len(group)
        self._runner.shutdown()
        self._threads.shutdown()
        return self.copied

    def __enter__(self) -> _Copies:
        return self

    def __exit__(self, *exc: object) -> None:
        self.settle(check=False)  # on errors and early returns: nothing left half-copied


def _copy_group(
    array: Any, level0: Any, progress: Any, link: bool, boxes: Mapping[tuple[int, int], Box],
    keys: Sequence[tuple[int, int]], scheduler: Any,
) -> None:  # fmt: skip
    """Copy the chunks ``keys`` and mark them done, on a dask.distributed client's workers
    or on a local thread pool (``scheduler``)."""
    copy = partial(_copy_chunk, array, level0, progress, link)
    if isinstance(scheduler, ThreadPoolExecutor):
        for _ in scheduler.map(lambda key: copy(boxes[key], key), keys):
            pass
        return
    import dask

    tasks = [dask.delayed(copy)(boxes[k], k) for k in keys]
    dask.compute(*tasks, scheduler=scheduler)
