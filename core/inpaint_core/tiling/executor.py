"""Executors: where the method runs on the tiles, and where hole-free chunks are copied.

One protocol, :class:`TileExecutor`, three implementations:

- :class:`SerialExecutor`: the method in the calling thread, ``batch`` tiles per call, the
  batch halved on CUDA out-of-memory (:func:`~inpaint_core.tiling.execution.run_with_backoff`).
- :class:`ThreadExecutor`: ``workers`` local threads running ``batch``-tile groups side by side
  (for CPU methods that release the GIL).
- :class:`DaskExecutor`: one task per tile on a dask.distributed cluster's workers, which also
  copy the hole-free chunks.

Locally, results are checked, pasted and cropped on the I/O threads (:func:`io_pool`), which,
like the copy threads, run below the method's CPU priority (:func:`below_me`).
"""

from __future__ import annotations

import logging
import os
import sys
import threading
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from typing import Any, Protocol

import numpy as np

from inpaint_core.api import NO_HOLE, Prepared, paste_result, prepare, run_prepared
from inpaint_core.errors import MethodFailedError
from inpaint_core.geometry import Box
from inpaint_core.method import InpaintMethod
from inpaint_core.tiling.execution import describe, oom_errors, run_with_backoff, usable_cores
from inpaint_core.tiling.plan import Tile
from inpaint_core.tiling.planner import crop, prepare_window, read_window

#: The engine's parts log as the engine: a restoration's messages stay under one logger.
logger = logging.getLogger("inpaint_core.tiling.engine")

#: Threads that read the next tiles and write finished chunks while the method computes: the
#: cores this process may use but one (the method's), 2 to 8. On 2 cores, 1 to 4 made no
#: difference; more cores keep a GPU fed, whose tiles outpace one core's encoding.
IO_THREADS = max(2, min(8, usable_cores() - 1))
#: Threads copying hole-free chunks (file I/O more than CPU, so more threads than cores pay).
COPY_THREADS = 4
#: Hole-free chunks copied per step (one dask compute on a cluster), in the background from
#: the start; after the restoring, ``should_stop`` is polled between steps.
COPY_GROUP = 32
#: How far below the method's thread the I/O and copy threads run, as a Linux nice increment:
#: the method is the run's critical path, and on few cores the threads that read, blend,
#: encode and write would otherwise take turns with it.
IO_NICE = 10


def run_batch(
    method: InpaintMethod, tiles: Sequence[Tile], items: Sequence[Prepared], seed: int
) -> list[Any]:
    """The method's raw results for a batch of prepared windows, from one ``run_batch`` call
    (a learned method runs same-sized tiles as one batch on its device), ``NO_HOLE`` for a
    window without a hole. CUDA out-of-memory propagates as it is; another failure is retried
    tile by tile, so that the error names the tile that fails."""
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


def paste(name: str, tile: Tile, window: tuple[Prepared, Box], filled: Any) -> np.ndarray:
    """Method ``name``'s result for ``tile`` (its prepared ``window``) checked, pasted into the
    window's pixels (:func:`~inpaint_core.api.paste_result`) and cropped to the tile's window;
    a bad result (``None`` included) raises MethodFailedError naming the tile. A window
    without a hole (``filled`` is ``NO_HOLE``) is its pixels unchanged."""
    item, box = window
    if filled is NO_HOLE and item.colour is None:
        return crop(item.image, box, tile)
    try:
        restored, _ = paste_result(name, item, filled)
    except MethodFailedError as error:
        raise MethodFailedError(f"{describe(tile)} (core {tuple(tile.core)}): {error}") from error
    return crop(restored, box, tile)


def restore_batch(
    method: InpaintMethod, tiles: Sequence[Tile],
    windows: Sequence[tuple[np.ndarray, np.ndarray, Box]], seed: int,
) -> list[np.ndarray]:
    """Restore a batch of windows as read (:func:`~inpaint_core.tiling.planner.read_window`)
    from preparing to cropping: one task on a dask.distributed worker (the raw pixels travel,
    not their float copy)."""
    name = method.info.name
    prepared = [(prepare(image, hole, name), box) for image, hole, box in windows]
    filled = run_batch(method, tiles, [item for item, _ in prepared], seed)
    return [paste(name, *args) for args in zip(tiles, prepared, filled, strict=True)]


def finished(value: np.ndarray) -> Future[np.ndarray]:
    """A future that already holds ``value``."""
    future: Future[np.ndarray] = Future()
    future.set_result(value)
    return future


def below_me() -> dict[str, Any]:
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


def io_pool() -> ThreadPoolExecutor:
    """The :data:`IO_THREADS` threads that read windows and paste and write results, below
    the calling thread's priority."""
    return ThreadPoolExecutor(IO_THREADS, thread_name_prefix="inpaint-io", **below_me())


class TileExecutor(Protocol):
    """Runs the method on tiles and copies hole-free chunks; a context manager (its threads
    or connections live inside the ``with`` block)."""

    batch: int  # tiles per method call; an executor may lower it (CUDA out-of-memory)
    step: int  # tiles computed per step of the engine's loop

    def read(self, source: Any, mask: Any, tile: Tile, name: str) -> Any:
        """Tile ``tile``'s window of ``source`` and ``mask``, as :meth:`compute` takes it."""
        ...

    def compute(
        self, method: InpaintMethod, tiles: list[Tile], windows: list[Any], seed: int,
        pool: ThreadPoolExecutor,
    ) -> list[Future[np.ndarray]]:
        """The results of ``tiles`` (their ``windows`` from :meth:`read`), cropped to each
        tile's window, as futures; ``pool``: the I/O threads, for work beside the method."""
        ...

    def copy(self, work: Callable[[tuple[int, int]], None], keys: Sequence[tuple[int, int]]
             ) -> None:
        """Run ``work(key)`` for every chunk key in ``keys`` and wait for all."""
        ...

    def __enter__(self) -> TileExecutor: ...

    def __exit__(self, *exc: object) -> None: ...


class SerialExecutor:
    """The method in the calling thread, :attr:`batch` tiles per call, halved on CUDA
    out-of-memory; windows prepared and results pasted on the I/O threads; copies on
    :data:`COPY_THREADS` local threads below the caller's priority."""

    workers = 1

    def __init__(self, batch: int = 1) -> None:
        self.batch = batch
        self._copies: ThreadPoolExecutor | None = None

    @property
    def step(self) -> int:
        return self.batch * self.workers

    def __enter__(self) -> SerialExecutor:
        self._copies = ThreadPoolExecutor(COPY_THREADS, thread_name_prefix="inpaint-copy",
                                          **below_me())
        return self

    def __exit__(self, *exc: object) -> None:
        if self._copies is not None:
            self._copies.shutdown()

    def read(self, source: Any, mask: Any, tile: Tile, name: str) -> Any:
        return prepare_window(source, mask, tile, name)

    def run_batch(
        self, method: InpaintMethod, tiles: Sequence[Tile], items: Sequence[Prepared], seed: int
    ) -> list[Any]:
        """One method call on a batch (:func:`run_batch`): what the back-off retries."""
        return run_batch(method, tiles, items, seed)

    def compute(
        self, method: InpaintMethod, tiles: list[Tile], windows: list[Any], seed: int,
        pool: ThreadPoolExecutor,
    ) -> list[Future[np.ndarray]]:
        items = dict(zip(tiles, windows, strict=True))
        filled = self._run(method, tiles, items, seed)
        name = method.info.name
        return [pool.submit(paste, name, tile, items[tile], output)
                for tile, output in zip(tiles, filled, strict=True)]

    def _run(self, method: InpaintMethod, tiles: list[Tile], items: dict[Tile, Any], seed: int
             ) -> list[Any]:
        def run(part: Sequence[Tile]) -> list[Any]:
            return self.run_batch(method, part, [items[tile][0] for tile in part], seed)

        filled, self.batch = run_with_backoff(run, tiles, self.batch)
        return filled

    def copy(self, work: Callable[[tuple[int, int]], None], keys: Sequence[tuple[int, int]]
             ) -> None:
        if self._copies is None:
            raise RuntimeError("the executor copies only inside its `with` block")
        for _ in self._copies.map(work, keys):
            pass


class ThreadExecutor(SerialExecutor):
    """``workers`` local threads, each running groups of :attr:`batch` tiles (no back-off:
    out-of-memory propagates)."""

    def __init__(self, batch: int = 1, workers: int = 2) -> None:
        super().__init__(batch)
        self.workers = workers
        self._tiles: ThreadPoolExecutor | None = None

    def __enter__(self) -> ThreadExecutor:
        super().__enter__()
        self._tiles = ThreadPoolExecutor(self.workers, thread_name_prefix="inpaint-tile")
        return self

    def __exit__(self, *exc: object) -> None:
        if self._tiles is not None:
            self._tiles.shutdown()
        super().__exit__(*exc)

    def _run(self, method: InpaintMethod, tiles: list[Tile], items: dict[Tile, Any], seed: int
             ) -> list[Any]:
        if self._tiles is None:
            raise RuntimeError("the executor computes only inside its `with` block")

        def run(part: Sequence[Tile]) -> list[Any]:
            return self.run_batch(method, part, [items[tile][0] for tile in part], seed)

        groups = [tiles[start : start + self.batch] for start in range(0, len(tiles), self.batch)]
        return [output for outputs in self._tiles.map(run, groups) for output in outputs]


class DaskExecutor:
    """A dask.distributed ``client``'s workers: one task per tile (each restores its raw window
    whole, :func:`restore_batch`) and the hole-free chunk copies. The workers must reach the
    scan and the output (a shared filesystem)."""

    def __init__(self, client: Any, batch: int = 1, workers: int = 1) -> None:
        self.client = client
        self.batch = batch
        self.workers = workers  # tiles in flight per step: batch x workers

    @property
    def step(self) -> int:
        return self.batch * self.workers

    def __enter__(self) -> DaskExecutor:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def read(self, source: Any, mask: Any, tile: Tile, name: str) -> Any:
        return read_window(source, mask, tile)  # the worker prepares its own

    def compute(
        self, method: InpaintMethod, tiles: list[Tile], windows: list[Any], seed: int,
        pool: ThreadPoolExecutor,
    ) -> list[Future[np.ndarray]]:
        futures = [  # one task per tile, spread over the cluster's workers
            self.client.submit(restore_batch, method, [tile], [window], seed, pure=False)
            for tile, window in zip(tiles, windows, strict=True)
        ]
        return [finished(outputs[0]) for outputs in self.client.gather(futures)]

    def copy(self, work: Callable[[tuple[int, int]], None], keys: Sequence[tuple[int, int]]
             ) -> None:
        import dask  # installed with distributed, which a client needs

        dask.compute(*[dask.delayed(work)(key) for key in keys], scheduler=self.client)


def make_executor(batch: int, workers: int, client: Any) -> TileExecutor:
    """The executor for a run: a dask ``client``'s (when given), else ``workers`` local
    threads (more than 1), else this thread."""
    if client is not None:
        return DaskExecutor(client, batch, workers)
    if workers > 1:
        return ThreadExecutor(batch, workers)
    return SerialExecutor(batch)


class BackgroundCopies:
    """The hole-free chunks ``keys``, copied :data:`COPY_GROUP` at a time by ``copy(group)``
    on a background thread from the moment this is made, then ``then()`` (the pyramid's
    chunks copied from the source's levels): copying overlaps restoring. Leaving the ``with``
    block waits for the step being copied and drops those not begun (so every copied chunk is
    marked done)."""

    def __init__(
        self, copy: Callable[[Sequence[tuple[int, int]]], None],
        keys: Sequence[tuple[int, int]], then: Callable[[], object] | None = None,
    ) -> None:
        self._runner = ThreadPoolExecutor(1, thread_name_prefix="inpaint-copier", **below_me())
        groups = [keys[start : start + COPY_GROUP] for start in range(0, len(keys), COPY_GROUP)]
        self.pending: deque[tuple[Sequence[tuple[int, int]], Future[Any]]] = deque(
            (group, self._runner.submit(copy, group)) for group in groups
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
        return self.copied

    def __enter__(self) -> BackgroundCopies:
        return self

    def __exit__(self, *exc: object) -> None:
        self.settle(check=False)  # on errors and early returns: nothing left half-copied
