"""A dependency-free progress bar for long CLI work: done/total, rate, ETA, on stderr.

Library code reports progress through a ``Callable[[int, int], None]`` (done, total); the CLI
passes a :class:`ProgressBar`, the napari widget its own callback.
"""

from __future__ import annotations

import math
import sys
import time
from typing import TextIO


def format_seconds(seconds: float) -> str:
    """``3725.2`` -> ``'1:02:05'``; ``float('inf')`` -> ``'?'``."""
    if not math.isfinite(seconds):
        return "?"
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}"


class ProgressBar:
    """Draws ``label [#####-----] 12/96 3.1 it/s ETA 0:00:27``.

    On a terminal the line is redrawn in place; elsewhere (CI logs, files) a line is printed
    at most every ``interval`` seconds and at the end, so logs stay short.
    """

    def __init__(
        self, label: str, unit: str = "it", stream: TextIO | None = None, interval: float = 5.0
    ) -> None:
        self.label = label
        self.unit = unit
        self.stream = stream if stream is not None else sys.stderr
        self.interval = interval
        self.started = time.monotonic()
        self.first_done: int | None = None
        self.last_printed = -float("inf")
        self.interactive = bool(getattr(self.stream, "isatty", lambda: False)())

    def line(self, done: int, total: int, now: float | None = None, postfix: str = "") -> str:
        """The text for ``done`` of ``total`` at time ``now`` (monotonic seconds), then
        ``postfix`` (e.g. running losses)."""
        now = time.monotonic() if now is None else now
        if self.first_done is None:
            self.first_done = done  # resumed work does not count towards the rate
        elapsed = max(now - self.started, 1e-9)
        rate = (done - self.first_done) / elapsed
        remaining = (total - done) / rate if rate > 0 else float("inf")
        width = 24
        filled = int(width * done / total) if total else width
        bar = "#" * filled + "-" * (width - filled)
        return (
            f"{self.label} [{bar}] {done}/{total} {rate:.2f} {self.unit}/s "
            f"ETA {format_seconds(remaining)}" + (f" {postfix}" if postfix else "")
        )

    def __call__(self, done: int, total: int, postfix: str = "") -> None:
        now = time.monotonic()
        finished = done >= total
        if self.interactive:
            end = "\n" if finished else ""
            self.stream.write("\r" + self.line(done, total, now, postfix) + end)
        elif finished or now - self.last_printed >= self.interval:
            self.stream.write(self.line(done, total, now, postfix) + "\n")
            self.last_printed = now
        self.stream.flush()
