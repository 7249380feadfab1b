"""The tiled restoration engine: restore a scan of any size chunk by chunk, resumably.

The parts, each usable alone: :class:`~inpaint_core.tiling.options.RestoreOptions` (the
settings, checked once), the planner (:mod:`~inpaint_core.tiling.planner`: which tiles, in
which order, with which context), an executor (:mod:`~inpaint_core.tiling.executor`: this
thread, local threads or a dask.distributed cluster) and the output sink
(:mod:`~inpaint_core.tiling.sink`: chunks, progress marks, pyramid). :func:`iter_restore`
joins them: for each output chunk that some tile's core touches, compute the tiles it lacks
(``batch`` at a time, looking ahead to the next chunks' tiles), blend them, write the chunk,
mark it done. Hole-free chunks are copied in the background meanwhile. A killed run resumed
with ``resume=True`` redoes only unmarked chunks and gives the same bytes.
"""

from __future__ import annotations

import os
import time
from collections import Counter, deque
from collections.abc import Callable, Generator, Iterator, Mapping, Sequence
from concurrent.futures import Future, wait
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from inpaint_core.api import Prepared
from inpaint_core.geometry import Box
from inpaint_core.io.chunks import check_linkable
from inpaint_core.io.guard import mask_digest
from inpaint_core.io.inputs import Inputs, open_inputs
from inpaint_core.io.layout import check_zstd_level, output_chunks, output_layout
from inpaint_core.io.store import check_output_store
from inpaint_core.method import InpaintMethod
from inpaint_core.tiling.blend import blend_holes
from inpaint_core.tiling.execution import connect, describe_run, make_method
from inpaint_core.tiling.executor import (
    IO_NICE,
    IO_THREADS,
    BackgroundCopies,
    TileExecutor,
    io_pool,
    make_executor,
)
from inpaint_core.tiling.options import RestoreOptions
from inpaint_core.tiling.plan import Tile
from inpaint_core.tiling.planner import (
    RestorePlan,
    TileSchedule,
    check_known_pixels,
    plan_restore,
    prepare_window,
    tile_geometry,
)
from inpaint_core.tiling.sink import OutputSession, OutputSink, output_session

__all__ = [
    "IO_NICE",
    "IO_THREADS",
    "MAX_PENDING_WRITES",
    "RestoreEvent",
    "RestoreOptions",
    "RestoreResult",
    "iter_restore",
    "iter_tile_inputs",
    "restore_scan",
]

#: Chunk writes in flight before the loop waits (bounds the results held in memory).
MAX_PENDING_WRITES = 2 * IO_THREADS
#: Steps of tiles read (and prepared) ahead of the one computed: with one, a read queued
#: behind chunk writes on the I/O threads was often late.
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


def iter_restore(
    scan: Any, mask: Any, method: str | InpaintMethod, output: str | os.PathLike[str],
    options: RestoreOptions | None = None, *, should_stop: Callable[[], bool] | None = None,
    executor: TileExecutor | None = None, sink: type[OutputSink] = OutputSink, **settings: Any,
) -> Generator[RestoreEvent, None, RestoreResult]:
    """Restore ``scan`` into a new store, yielding a :class:`RestoreEvent` as work is done;
    the generator's return value is the :class:`RestoreResult`. Arguments as for
    :func:`restore_scan`; they are checked on the first ``next()``. Closing the generator
    early (e.g. a napari worker's quit) leaves the store resumable, like ``should_stop``."""
    started = time.perf_counter()
    options = RestoreOptions.of(options, settings)
    instance = make_method(method, options.params, options.device)
    opened = open_inputs(scan, mask)
    side, overlap = tile_geometry(instance.info, options.tile, options.overlap)
    path = check_output_store(output, opened.paths, resume=options.resume)
    if options.link:
        check_linkable(opened.scan, path)
    check_zstd_level(options.zstd_level, output_layout(opened.scan).encoding["compressors"])
    block = output_chunks(opened.scan)[:2]
    plan = plan_restore(opened.scan, opened.mask, instance.info, side, overlap, block)
    provenance = _provenance(instance, opened, plan, options, side, overlap)
    stop = should_stop or (lambda: False)
    with (
        connect(options.scheduler) as client,
        executor or make_executor(options.batch, options.workers, client) as runner,
        output_session(path, opened.scan, provenance, opened.omero, resume=options.resume,
                       check_inputs=partial(check_known_pixels, plan.regions)) as session,
    ):
        out = sink(session.group, opened.scan, link=options.link,
                   zstd_level=options.zstd_level, restored=session.restored)
        run = _Run(instance, plan, runner, out, session, options, overlap, stop, started, path)
        return (yield from run.events(opened.levels))


def restore_scan(
    scan: Any, mask: Any, method: str | InpaintMethod, output: str | os.PathLike[str],
    options: RestoreOptions | None = None, *, progress: Callable[[int, int], None] | None = None,
    should_stop: Callable[[], bool] | None = None, executor: TileExecutor | None = None,
    sink: type[OutputSink] = OutputSink, **settings: Any,
) -> RestoreResult:
    """Restore every hole of a large scan with ``method``, tile by tile, into a new store.

    Args:
        scan: path of a zarr array, OME-Zarr group (level 0 is restored) or TIFF; or an array
            ``(H, W[, C])`` (C in 1, 3, 4; uint8, uint16, or float32/float64 in [0, 1]) that
            slices lazily, e.g. a zarr array.
        mask: path of a zarr, PNG or TIFF mask, or an array ``(H, W)``; non-zero = hole.
        method: a registered method name or an :class:`InpaintMethod` instance.
        output: the new zarr v3 store (see :mod:`inpaint_core.io.store`); never the source.
        options: the settings (:class:`RestoreOptions`: tile, overlap, batch, device,
            params, resume, seed, scheduler, pyramid_side, intact, workers, zstd_level); or
            give them as keywords (``tile=512, batch=4, ...``), not both.
        progress: called with ``(tiles_done, tiles_total)`` at the start and whenever tiles
            complete (e.g. a :class:`~inpaint_core.progress.ProgressBar`).
        should_stop: polled between chunks; True stops cleanly (resume later).
        executor: where the method runs (:class:`~inpaint_core.tiling.executor.TileExecutor`);
            None: chosen from the options (a dask ``scheduler``, ``workers`` threads, or this
            thread with the CUDA out-of-memory back-off). A given executor runs with its own
            batch and workers.
        sink: the output sink's class (:class:`~inpaint_core.tiling.sink.OutputSink`).

    Returns:
        A :class:`RestoreResult`.

    Raises:
        InpaintError subclasses naming the bad value; :class:`MethodFailedError` (chained from
        the cause) naming the tile when the method fails on it.
    """
    events = iter_restore(scan, mask, method, output, options, should_stop=should_stop,
                          executor=executor, sink=sink, **settings)
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
) -> Iterator[tuple[Tile, Prepared]]:
    """The tiles :func:`restore_scan` computes for ``scan``, ``mask`` and ``method`` (same
    arguments, same plan), each with its window as the method gets it: a
    :class:`~inpaint_core.api.Prepared` (``colour`` float32 ``(h, w, C)`` in [0, 1], ``hole``
    bool ``(h, w)``). One window is read at a time; nothing is written. For timing the method
    alone on a scan's tiles (``benchmarks/tiled_restore.py``), or looking at what it sees."""
    instance = make_method(method, params, device)
    opened = open_inputs(scan, mask)
    side, overlap = tile_geometry(instance.info, tile, overlap)
    block = output_chunks(opened.scan)[:2]
    plan = plan_restore(opened.scan, opened.mask, instance.info, side, overlap, block)
    for each in plan.tiles:
        item, _ = prepare_window(plan.pixels, plan.damage, each, instance.info.name)
        yield each, item


def _provenance(
    method: InpaintMethod, opened: Inputs, plan: RestorePlan, options: RestoreOptions,
    side: int, overlap: int,
) -> dict[str, Any]:
    """What the output records of how it was made; a resumed run must match it."""
    settings = {
        "tile": side,
        "margin": method.info.context_margin,
        "overlap": overlap,
        "seed": options.seed,
        "intact": options.intact,
        "zstd_level": options.zstd_level,
    }
    provenance = describe_run(method, opened.described, plan.regions, settings, len(plan.tiles))
    provenance["mask_digest"] = mask_digest(opened.mask)
    return provenance


class _Run:
    """One restoration's loop over the chunks, and the counts its events report."""

    def __init__(
        self, method: InpaintMethod, plan: RestorePlan, executor: TileExecutor, sink: OutputSink,
        session: OutputSession, options: RestoreOptions, overlap: int, stop: Callable[[], bool],
        started: float, path: Path,
    ) -> None:
        self.method, self.plan, self.executor, self.sink = method, plan, executor, sink
        self.session, self.options, self.overlap = session, options, overlap
        self.stop, self.started, self.path = stop, started, path
        done = sink.done(session.resuming)
        self.todo, self.copies = plan.restored(done), plan.copied(done)
        self.final = {(int(row), int(col)) for row, col in np.argwhere(done)}
        self.schedule = TileSchedule(plan, self.todo)
        method.expect_windows(Counter(plan.tiles[i].shape for i in self.schedule.pending()))
        self.tiles_done, self.chunks_done = self.schedule.tiles_done, int(done.sum())

    def event(self, phase: str) -> RestoreEvent:
        return RestoreEvent(self.tiles_done, len(self.plan.tiles), self.chunks_done,
                            len(self.plan.boxes), phase)

    def result(self, levels: int, stopped: bool, restored: int, copied: int) -> RestoreResult:
        return RestoreResult(
            self.path, len(self.plan.tiles), len(self.plan.boxes), restored, copied,
            self.plan.regions.hole_fraction, levels, stopped, time.perf_counter() - self.started,
        )

    def events(self, source_levels: Sequence[Any]) -> Generator[RestoreEvent, None, RestoreResult]:
        """Restore the chunks left, copy the hole-free ones, finish the pyramid."""
        sink, options = self.sink, self.options
        yield self.event("restore")
        complete = self.session.provenance["complete"]  # resuming a finished run: nothing to do
        if not complete and options.builds_pyramid(bool(source_levels)):
            sink.start_pyramid(options.pyramid_side, source_levels=source_levels,
                               changed=self.plan.changed(), final=self.final,
                               zstd_level=options.zstd_level)
        copy = partial(self.executor.copy, partial(_copy_one, sink, self.plan.boxes))
        then = None if sink.pyramid is None else sink.pyramid.copy_clean
        with io_pool() as pool, BackgroundCopies(copy, self.copies, then) as copying:
            stopped_after = yield from self._restore(pool)
            if stopped_after is not None:
                return self.result(0, True, stopped_after, copying.settle())
            while copying.pending:
                if self.stop():
                    return self.result(0, True, len(self.todo), copying.settle())
                self.chunks_done += copying.next_group()
                yield self.event("copy")
        yield self.event("pyramid")
        levels = sink.finish(self.path.stem, self.session.provenance)
        yield self.event("done")
        return self.result(levels, False, len(self.todo), len(self.copies))

    def _restore(self, pool: Any) -> Generator[RestoreEvent, None, int | None]:
        """Restore every chunk of ``todo`` in order, the I/O on ``pool``. Returns None, or
        when ``stop()`` ended it, the number of chunks restored. Every chunk submitted for
        writing is written and marked, on errors and on closing too."""
        plan, schedule, executor = self.plan, self.schedule, self.executor
        ready: dict[int, Future[np.ndarray]] = {}  # a tile's result, pasted on an I/O thread
        prefetched: dict[Tile, Future[Any]] = {}
        writes: deque[Future[None]] = deque()
        name = self.method.info.name
        try:
            for position, key in enumerate(self.todo):
                if self.stop():
                    _drain(writes)
                    return position
                wanted = schedule.wanted(position, ready, executor.step)
                if wanted:
                    # Read the tiles after these while these are computed (and written).
                    upcoming = schedule.lookahead(position, {**ready, **dict.fromkeys(wanted)},
                                                  executor.step * READ_AHEAD)
                    for index in upcoming:
                        if plan.tiles[index] not in prefetched:
                            prefetched[plan.tiles[index]] = pool.submit(
                                executor.read, plan.pixels, plan.damage, plan.tiles[index], name
                            )
                    chosen = [plan.tiles[index] for index in wanted]
                    windows = [
                        prefetched.pop(tile).result() if tile in prefetched
                        else executor.read(plan.pixels, plan.damage, tile, name) for tile in chosen
                    ]
                    outputs = executor.compute(self.method, chosen, windows, self.options.seed,
                                               pool)
                    ready.update(zip(wanted, outputs, strict=True))
                    self.tiles_done += len(wanted)
                    yield self.event("restore")
                while len(writes) >= MAX_PENDING_WRITES:
                    writes.popleft().result()
                users = plan.users[key]
                writes.append(pool.submit(
                    _write_chunk, plan.pixels, plan.damage, self.sink, plan.boxes[key], key,
                    [plan.tiles[i] for i in users], [ready[i] for i in users], self.overlap,
                ))
                self.chunks_done += 1
                for index in schedule.written(key):
                    del ready[index]
                yield self.event("restore")
            _drain(writes)
        finally:  # also on errors and on closing: every submitted chunk is written and marked
            wait(writes)
            for future in prefetched.values():
                future.cancel()
        return None


def _drain(writes: deque[Future[None]]) -> None:
    """Wait for every pending chunk write; the first failure is raised."""
    while writes:
        writes.popleft().result()


def _write_chunk(
    array: Any, hole: Any, sink: OutputSink, box: Box, key: tuple[int, int], tiles: list[Tile],
    results: list[Future[np.ndarray]], ramp: int,
) -> None:
    """Blend the tiles' results (once they are pasted) into chunk ``box`` and hand it to the
    ``sink`` as chunk ``key`` (written, marked done, then passed to the pyramid)."""
    source = np.asarray(array[box.slices])
    pasted = [result.result() for result in results]  # submitted earlier: run or running
    sink.write_chunk(key, blend_holes(source, np.asarray(hole[box.slices]), box, tiles, pasted,
                                      ramp))


def _copy_one(sink: OutputSink, boxes: Mapping[tuple[int, int], Box], key: tuple[int, int]
              ) -> None:
    """Copy hole-free chunk ``key`` into the ``sink`` (a task a dask worker can run)."""
    sink.copy_chunk(boxes[key], key)
