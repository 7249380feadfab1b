"""Measuring one call: wall time, peak extra resident memory, peak CUDA memory."""

from __future__ import annotations

import math
import os
import sys
import threading
import time
from types import TracebackType

_MIB = 1024.0 * 1024.0
_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def resident_bytes() -> float:
    """The process's resident set size in bytes (Linux ``/proc``; NaN where unavailable)."""
    try:
        with open("/proc/self/statm") as handle:
            return float(handle.read().split()[1]) * _PAGE
    except OSError:
        return math.nan


class ResourceMeter:
    """Context manager: ``seconds``, ``peak_ram_mb`` (extra RSS over the start) and
    ``peak_gpu_mb`` (CUDA ``max_memory_allocated``; NaN unless ``device`` is CUDA).

    RSS is sampled by a thread every ``interval`` seconds, so a peak shorter than that can be
    missed; NumPy, OpenCV and torch release the GIL in their heavy loops, so sampling runs.
    """

    def __init__(self, device: str = "cpu", interval: float = 0.002) -> None:
        self.device = device
        self.interval = interval
        self.seconds = math.nan
        self.peak_ram_mb = math.nan
        self.peak_gpu_mb = math.nan
        self._stop = threading.Event()
        self._baseline = math.nan
        self._peak = math.nan
        self._thread: threading.Thread | None = None

    def _sample(self) -> None:
        while not self._stop.wait(self.interval):
            self._peak = max(self._peak, resident_bytes())

    def __enter__(self) -> ResourceMeter:
        if self.device.startswith("cuda"):
            import torch

            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
        self._baseline = self._peak = resident_bytes()
        if not math.isnan(self._baseline):
            self._thread = threading.Thread(target=self._sample, daemon=True)
            self._thread.start()
        self._started = time.perf_counter()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        if self.device.startswith("cuda") and "torch" in sys.modules:
            import torch

            torch.cuda.synchronize(self.device)
            self.peak_gpu_mb = torch.cuda.max_memory_allocated(self.device) / _MIB
        self.seconds = time.perf_counter() - self._started
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._peak = max(self._peak, resident_bytes())
            self.peak_ram_mb = max(self._peak - self._baseline, 0.0) / _MIB
