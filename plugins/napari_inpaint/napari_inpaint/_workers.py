"""The widget's computations as generators that yield :class:`Progress` (no Qt, no napari).

The dock widget runs each in a napari ``thread_worker`` (or, with ``synchronous``, in the
calling thread, for tests). Each takes a ``threading.Event``: setting it stops the work (an
in-memory restoration within one tile, the tiled engine within one chunk, a fit within one
step, a download within one chunk), and the generator then returns ``None``, so nothing is
half-applied.

- :func:`restore_in_memory`: a NumPy image, tile by tile with the tiled engine's plan
  (:mod:`napari_inpaint._tiles`): determinate progress, a stop within one tile.
- :func:`restore_tiled`: the tiled engine (:func:`inpaint_core.tiling.engine.iter_restore`)
  writing a multiscale zarr store, for big or lazy images.
- :func:`fine_tune`: :func:`inpaint_core.training.fine_tune.fine_tune` on the intact part of
  the image, one progress step per training step.
- :func:`fetch_weights`: :func:`inpaint_core.weights.fetch`, downloading and installing
  published weights (progress in bytes; a stop keeps the ``.part`` file for a resume).
"""

from __future__ import annotations

import logging
import queue
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Generator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

logger = logging.getLogger(__name__)

#: Seconds between progress ticks while a blocking call runs in its helper thread.
TICK = 0.1


class Progress(NamedTuple):
    """``done`` of ``total`` units (``total`` 0: unknown), and what is being done."""

    done: int
    total: int
    label: str
    blocks: tuple[Any, ...] = ()  # output boxes just written (in-memory tiled runs)


@dataclass(frozen=True)
class Restored:
    """An in-memory restoration: the new image and the method's extra outputs."""

    image: np.ndarray
    extras: dict[str, np.ndarray]
    method: str
    params: dict[str, Any]
    weights: dict[str, Any] | None = None
    seconds_per_pixel: float | None = None  # the method's measured cost (median over tiles)
    seconds: float = 0.0  # the whole restoration


@dataclass(frozen=True)
class FitResult:
    """A finished fine-tuning run: the weights to use from now on."""

    weights: Path
    steps: int
    losses: dict[str, float]


def _in_thread(
    call: Callable[[], Any], stop: threading.Event, label: str, wait_on_stop: bool = False
) -> Generator[Progress, None, Any]:
    """Run ``call`` in a helper thread, yielding a tick every :data:`TICK` seconds.

    Returns its result, or None once ``stop`` is set (at once, unless ``wait_on_stop``: then
    after ``call`` has noticed the stop itself and returned). Its exception is re-raised here.
    """
    outcome: dict[str, Any] = {}

    def target() -> None:
        try:
            outcome["value"] = call()
        except BaseException as error:  # handed to the generator's thread
            outcome["error"] = error

    thread = threading.Thread(target=target, name=f"napari-inpaint {label}", daemon=True)
    thread.start()
    while thread.is_alive():
        if stop.is_set() and not wait_on_stop:
            return None  # the call finishes in the background; its result is dropped
        thread.join(TICK)
        yield Progress(0, 0, label)
    if "error" in outcome:
        raise outcome["error"]
    return None if stop.is_set() else outcome["value"]


def _eta(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 90 else f"{seconds / 60:.0f} min"


def restore_in_memory(
    image: np.ndarray, mask: np.ndarray, method: str, params: Mapping[str, Any],
    stop: threading.Event, seed: int = 0, *, tile: int | None = None,
    output: np.ndarray | None = None,
) -> Generator[Progress, None, Restored | None]:
    """Restore ``image`` ``(H, W[, C])`` where bool ``mask`` ``(H, W)``, tile by tile with the
    tiled engine's plan (:mod:`napari_inpaint._tiles`; ``tile``: the method's preferred tile
    unless given), into ``output`` (default: a copy of ``image``), whose blocks are written as
    their tiles finish. Yields ``Progress(tiles done, tiles, "METHOD: tile i/n, ETA")`` with the
    blocks just written; a stop ends it within one tile (returning None)."""
    from inpaint_core.api import get_method
    from inpaint_core.arrays import check_image, check_mask
    from inpaint_core.errors import InvalidInputError
    from napari_inpaint._tiles import plan_image, restore_tiles

    instance = get_method(method)(**params)  # parameter errors before any work
    image = check_image(image)
    mask = check_mask(mask, image.shape)
    if mask.all():
        raise InvalidInputError(
            f"mask covers every pixel of the {mask.shape} image; "
            "at least one known pixel is needed as context"
        )
    plan = plan_image(image.shape[:2], mask, instance.info, tile)
    total = len(plan.tiles)
    yield Progress(0, total, f"{method}: {total} tile{'s' * (total != 1)} to restore")
    target = np.array(image, copy=True) if output is None else output
    started = time.perf_counter()
    steps = restore_tiles(image, mask, instance, plan, stop, target, seed)
    while True:
        try:
            step = next(steps)
        except StopIteration as finished:
            run = finished.value
            break
        elapsed = time.perf_counter() - started
        left = elapsed / step.done * (step.total - step.done)
        eta = f", about {_eta(left)} left" if step.done < step.total else ""
        label = f"{method}: tile {step.done}/{step.total}{eta}"
        yield Progress(step.done, step.total, label, tuple(step.blocks))
    if run is None:
        return None
    return Restored(run.image, run.extras, method, dict(instance.params),
                    weights_record(instance), run.seconds_per_pixel,
                    time.perf_counter() - started)


def weights_record(instance: Any) -> dict[str, Any] | None:
    """Which weights a learned method instance ran with, for a result's provenance:
    ``{"weights": catalogue name, file or "shipped", "path", "sha256"}`` (the sha256 from the
    checkpoint's sidecar); None for a method that is not learned."""
    if not instance.info.learned or not hasattr(instance, "weights_path"):
        return None
    from inpaint_core.checkpoint import checkpoint_paths
    from inpaint_core.tiling.execution import weights_sha256

    given = instance.params.get("weights")
    weights = checkpoint_paths(instance.weights_path())[0]
    return {"weights": str(given) if given else "shipped", "path": str(weights),
            "sha256": weights_sha256(instance)}


class LazyScan:
    """A dask (or other lazy) array as the tiled engine reads scans: integer ``chunks`` and
    ``__getitem__`` returning NumPy."""

    def __init__(self, array: Any) -> None:
        self.array = array
        self.shape = tuple(int(v) for v in array.shape)
        self.dtype = np.dtype(array.dtype)
        self.ndim = len(self.shape)
        size = getattr(array, "chunksize", None) or getattr(array, "chunks", None)
        self.chunks = tuple(int(v) for v in size) if size else self.shape

    def __getitem__(self, key: Any) -> np.ndarray:
        return np.asarray(self.array[key])


def restore_tiled(
    scan: Any, mask: Any, method: str, params: Mapping[str, Any], output: Path,
    stop: threading.Event, *, tile: int | None = None, device: str = "auto", seed: int = 0,
) -> Generator[Progress, None, Any]:
    """Restore a big scan tile by tile into the new zarr store ``output``.

    ``scan`` is a path (a zarr array or OME-Zarr group) or an array; ``mask`` an array. Returns
    the engine's ``RestoreResult``, or None when stopped: the unfinished store is then removed.
    """
    from inpaint_core.tiling.engine import iter_restore

    if not isinstance(scan, (str, Path)) and not all(
        isinstance(c, int) for c in getattr(scan, "chunks", None) or (None,)
    ):  # dask's chunks are tuples of tuples; the engine wants one chunk shape
        scan = LazyScan(scan)
    params = dict(params)
    params.pop("device", None)  # the engine passes ``device`` to methods that take one
    # The result is displayed: levels let napari pan and zoom a gigapixel one.
    events = iter_restore(scan, mask, method, output, tile=tile, device=device, params=params,
                          seed=seed, should_stop=stop.is_set, pyramid="always")
    try:
        while True:
            try:
                event = next(events)
            except StopIteration as finished:
                result = finished.value
                break
            label = f"{method}: {event.phase} ({event.tiles_done}/{event.tiles_total} tiles)"
            yield Progress(event.chunks_done, event.chunks_total, label)
    except BaseException:
        events.close()
        raise
    if result.stopped or stop.is_set():
        shutil.rmtree(output, ignore_errors=True)
        return None
    return result


def fine_tune(
    method: str, image: Any, damage: Any, params: Mapping[str, Any], stop: threading.Event, *,
    steps: int, device: str = "auto", size: int = 128, batch: int = 1, seed: int = 0,
    out: Path | None = None,
) -> Generator[Progress, None, FitResult | None]:
    """Fine-tune learned ``method`` for ``steps`` on patches of ``image`` away from ``damage``
    (``(H, W)``, non-zero = damaged), starting from its current weights (``params["weights"]``
    or the shipped ones), with :func:`inpaint_core.training.fine_tune.fine_tune`. Yields
    ``Progress(step, steps, "fit METHOD: step i/n")`` after every step; a stop ends it after
    the running step. Returns the new weights, or None when stopped (they are not used).
    """
    from inpaint_core.training import fine_tune as fitting
    from inpaint_core.training.datasets import ScanPatchDataset
    from inpaint_core.training.trainer import TrainConfig

    start = fitting.current_weights(method, params)
    side = min(size, int(image.shape[0]), int(image.shape[1]))
    dataset = ScanPatchDataset(image, damage, size=side, samples=max(steps * batch, batch),
                               seed=seed)
    folder = Path(out) if out else Path(tempfile.mkdtemp(prefix=f"napari-inpaint-fit-{method}-"))
    settings = TrainConfig(steps=steps, batch_size=batch, device=device, checkpoint_every=steps,
                           log_every=max(1, steps // 10), seed=seed)
    yield Progress(0, steps, f"fit {method}")
    data = {"kind": "napari image"}
    run = fitting.fine_tune(
        method, dataset, folder, settings, init=start, training_data=data, should_stop=stop.is_set
    )
    while True:
        try:
            update = next(run)
        except StopIteration as finished:
            result = finished.value
            break
        yield Progress(update.step, update.steps, f"fit {method}: step {update.step}/{steps}")
    if result.stopped:
        return None
    return FitResult(result.weights, result.step, result.losses)


def _relayed(
    call: Callable[[], Any], stop: threading.Event, label: str,
    events: queue.SimpleQueue[Progress], first: Progress,
) -> Generator[Progress, None, Any]:
    """:func:`_in_thread` (waiting for ``call`` to notice a stop), yielding the newest of the
    ``events`` that ``call`` puts (``first`` until there is one) at each tick."""
    latest = first
    yield latest
    runner = _in_thread(call, stop, label, wait_on_stop=True)
    while True:
        try:
            next(runner)
        except StopIteration as finished:
            return finished.value
        while not events.empty():
            latest = events.get()
        yield latest


def _mb(size: int) -> str:
    return f"{size / 1e6:.1f}"


def fetch_weights(
    name: str, stop: threading.Event, fetch: Callable[..., Any] | None = None
) -> Generator[Progress, None, Any]:
    """Download, check and install catalogue entry ``name``
    (:func:`inpaint_core.weights.fetch`, or ``fetch`` with its signature).

    Yields ``Progress(done_bytes, total_bytes, "get NAME: X of Y MB")`` (total 0 while the
    server has not said). Setting ``stop`` ends the download within one chunk: the worker
    thread ends, the ``.part`` file is kept (the next fetch resumes it) and None is returned.
    Returns the ``FetchResult``; download and conversion errors are raised.
    """
    from inpaint_core.weights import DownloadCancelledError

    if fetch is None:
        from inpaint_core.weights import fetch
    events: queue.SimpleQueue[Progress] = queue.SimpleQueue()
    label = f"get {name}"

    def progress(done: int, total: int) -> None:
        if total and done >= total:
            text = f"{label}: {_mb(total)} MB downloaded; checking and installing"
        elif total:
            text = f"{label}: {_mb(done)} of {_mb(total)} MB"
        else:
            text = f"{label}: {_mb(done)} MB"
        events.put(Progress(done, total, text))

    def call() -> Any:
        return fetch(name, progress=progress, cancelled=stop.is_set)

    try:
        return (
            yield from _relayed(call, stop, label, events, Progress(0, 0, f"{label}: connecting"))
        )
    except DownloadCancelledError:
        return None
