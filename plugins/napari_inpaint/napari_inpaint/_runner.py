"""The dock widget's running machinery: a generator of :mod:`napari_inpaint._workers` run in
a napari ``thread_worker`` (or in the calling thread with ``synchronous``), its progress on
napari's bar and the status line, its result, its error or its cancellation (no Qt imports
beyond napari's)."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Generator
from typing import Any

import numpy as np

from inpaint_core.errors import InpaintError, InvalidInputError
from napari_inpaint._layers import OWN_KEY, layer_geometry
from napari_inpaint._workers import Progress

logger = logging.getLogger(__name__)


class Failed:
    """The value a worker returns when its work raised: the exception, to report.

    The worker returns it instead of raising, because superqt's worker takes a
    ``RuntimeError`` (which PyTorch raises for out-of-memory and bad shapes) for a deleted
    worker and then emits neither ``errored`` nor ``finished``: the dock would stay busy.
    """

    def __init__(self, error: BaseException) -> None:
        self.error = error


def _drive(generator: Generator[Progress, None, Any]) -> Generator[Progress, None, Any]:
    """Run ``generator`` to its end in the worker; any exception becomes :class:`Failed`."""
    try:
        return (yield from generator)
    except Exception as error:  # every type, RuntimeError included (see Failed)
        return Failed(error)


class Runner:
    """Mixin of :class:`~napari_inpaint._widget.InpaintWidget`: starting work, following
    it, ending it. Expects the widget's ``viewer``, buttons, ``status`` and state attributes."""

    def _start(self, work: Generator[Progress, None, Any], stop: threading.Event, label: str,
               done: Callable[[Any], None],
               cancelled: str = "cancelled: nothing was changed") -> None:
        from napari.utils import progress

        if self.busy:
            raise InvalidInputError("a restoration is running: wait for it or press Cancel")
        self._stop = stop
        self._cancelled_message = cancelled
        self._ended = False
        self._set_busy(True, label)
        self._final_status = ""
        self._run_started = time.perf_counter()
        self.first_pixels_seconds = None
        self._progress = progress(total=0, desc=label)
        if self.synchronous:
            try:
                while True:
                    self._on_progress(next(work))
            except StopIteration as finished:
                self._returned(done, finished.value)
            except Exception as error:
                self._errored(error)
            finally:
                self._finished()
            return
        from napari.qt.threading import create_worker

        worker = create_worker(_drive, work, _start_thread=False, _ignore_errors=True)
        worker.yielded.connect(self._on_progress)
        worker.returned.connect(lambda value: self._returned(done, value))
        worker.errored.connect(self._errored)
        worker.finished.connect(self._finished)
        self.worker = worker
        worker.start()

    def _show_running(self, source: Any, output: np.ndarray, method: str,
                      geometry: dict[str, Any] | None = None) -> None:
        """Add the live preview layer of an in-memory run: ``output``, whose blocks the worker
        fills as their tiles finish (removed on cancel or error, kept as the result), placed
        over ``source`` (or by ``geometry``'s scale and translate: a region preview's crop)."""
        extra: dict[str, Any] = {"rgb": source.rgb}
        if not source.rgb:
            extra["contrast_limits"] = source.contrast_limits
        if self.busy and self._running_layer is None and not self._ended:
            self._running_layer = self.viewer.add_image(
                output, name=f"{method} (running) {source.name}",
                metadata={OWN_KEY: {"role": "running"}},
                **(geometry or layer_geometry(source)), **extra,
            )

    def _on_progress(self, event: Progress) -> None:
        bar = self._progress
        if bar is None or self._stop is None or self._stop.is_set() or self._ended:
            return  # late, failed or cancelled work: its progress is not shown
        if event.blocks and self._running_layer is not None:
            running = self._running_layer
            running.data = running.data  # re-slice: the worker filled blocks in place
            if self.first_pixels_seconds is None:
                self.first_pixels_seconds = time.perf_counter() - self._run_started
        # The status first: napari's bar processes Qt events while it updates, which may run
        # this work's end (its result or error) before the lines below return.
        self.status.value = event.label
        if bar.total != event.total:
            bar.total = event.total
        if event.done != bar.n:
            bar.update(event.done - bar.n)
        bar.set_description(event.label)

    def _returned(self, done: Callable[[Any], None], value: Any) -> None:
        if isinstance(value, Failed):
            self._errored(value.error)
            return
        self._ended = True
        if value is None:
            self._final_status = self._cancelled_message
            self.status.value = self._cancelled_message
            return
        try:
            done(value)
            self._final_status = self.status.value
        except Exception as error:
            self.report(error)

    def _errored(self, error: BaseException) -> None:
        self._ended = True
        self.report(error)
        self._final_status = self.status.value

    def _finished(self, *_: Any) -> None:
        if self._progress is not None:
            self._progress.close()
            self._progress = None
        self._stop = None
        running, self._running_layer = self._running_layer, None
        if running is not None and running in self.viewer.layers:
            self.viewer.layers.remove(running)  # cancelled or failed: nothing is added
        self._set_busy(False)
        if self._final_status:  # the outcome, not the last step, stays on the status line
            self.status.value = self._final_status

    def _set_busy(self, busy: bool, label: str = "") -> None:
        self.busy = busy
        self.run_button.enabled = not busy
        self.cancel_button.enabled = busy
        self.fit_button.enabled = not busy and self.method_info().learned
        picker = self.weights_picker()
        if picker is not None:
            picker.set_busy(busy)
        region = getattr(self, "region_preview", None)
        if region is not None:
            region.set_busy(busy)
        if busy:
            self.status.value = f"{label}..."

    def report(self, error: BaseException) -> None:
        """Show ``error`` in napari's notifications (an InpaintError's message as the CLI's)."""
        from napari.utils.notifications import show_error

        if isinstance(error, InpaintError):
            message = str(error)
        else:
            logger.error("napari-inpaint failed", exc_info=error)
            message = f"{type(error).__name__}: {error}"
        self.last_error = message
        self.status.value = f"error: {message}"
        show_error(message)
