"""The method picker's entries, and each method's measured cost (no Qt).

Built-in methods are grouped under a header per family (Classical, Context Encoder, U-Net,
CGAN, DCGAN, StackGAN, Fourier, Other); methods of third-party plugins under "Third-party
plugins". Each entry reads ``NAME · learned|classical[ · WEIGHTS][ · ~TIME]``: the weights
active for a learned method and an estimate for this image on this device.

The estimate is never a guess: the first run of a method on a device measures its cost in
seconds per window pixel (the median over its tiles), kept in
``$INPAINT_HOME/napari-costs.json`` (:class:`CostCache`); the estimate is that cost times the
window pixels of this image's tile plan. Before the first run an entry says so.
``$NAPARI_INPAINT_COSTS`` names another file.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from inpaint_core.method import Family, MethodInfo

logger = logging.getLogger(__name__)

#: The value of a header row (disabled in the picker): ``HEADER + title``.
HEADER = "header:"
THIRD_PARTY = "Third-party plugins"
FAMILY_TITLES = {
    Family.CLASSICAL: "Classical",
    Family.CONTEXT_ENCODER: "Context Encoder",
    Family.UNET: "U-Net",
    Family.CGAN: "CGAN",
    Family.DCGAN: "DCGAN",
    Family.STACKGAN: "StackGAN",
    Family.FOURIER: "Fourier",
    Family.OTHER: "Other",
}
UNMEASURED = "time: after a first run"
#: Environment variable naming another file for the measured costs (the tests use one each).
COSTS_ENV = "NAPARI_INPAINT_COSTS"


def is_header(value: Any) -> bool:
    """Whether a picker value is a header row (not a method)."""
    return isinstance(value, str) and value.startswith(HEADER)


def duration(seconds: float) -> str:
    """``0.4 s``, ``12 s``, ``3 min``."""
    if seconds < 10:
        return f"{seconds:.1f} s"
    return f"{seconds:.0f} s" if seconds < 90 else f"{seconds / 60:.0f} min"


class CostCache:
    """Seconds per window pixel of each method on each device, measured by runs and kept in
    a JSON file (default ``$INPAINT_HOME/napari-costs.json``)."""

    def __init__(self, path: Path | None = None) -> None:
        if path is None and os.environ.get(COSTS_ENV):
            path = Path(os.environ[COSTS_ENV])
        if path is None:
            from inpaint_core.weights.published import inpaint_home

            path = inpaint_home() / "napari-costs.json"
        self.path = path

    @staticmethod
    def key(method: str, device: str) -> str:
        """``METHOD@DEVICE``."""
        return f"{method}@{device}"

    def read(self) -> dict[str, float]:
        """Every measured cost (an unreadable file counts as none)."""
        try:
            data = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return {}
        return {str(k): float(v) for k, v in data.items() if isinstance(v, (int, float))}

    def record(self, method: str, device: str, seconds_per_pixel: float) -> None:
        """Keep a run's measured cost (the newest replaces the older)."""
        costs = self.read()
        costs[self.key(method, device)] = float(seconds_per_pixel)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.path.write_text(json.dumps(costs, indent=1, sort_keys=True))
        except OSError as error:  # an estimate is a convenience: never fail a run for it
            logger.warning("cannot keep the measured cost in %s: %s", self.path, error)

    def estimate(self, method: str, device: str, pixels: int) -> float | None:
        """Seconds for ``pixels`` window pixels, or None before a first run."""
        cost = self.read().get(self.key(method, device))
        return None if cost is None else cost * pixels


def method_entries(
    infos: list[MethodInfo], plugin_of: Callable[[str], str], builtin: frozenset[str] | set[str],
    weights: Mapping[str, str | None], estimates: Mapping[str, float | None],
) -> list[tuple[str, str]]:
    """``(label, value)`` rows of the picker: a header row per group, then its methods.

    Args:
        infos: every registered method.
        plugin_of: the plugin that registered a method name.
        builtin: the built-in plugins' names.
        weights: the active weights' short name of each learned method (None: none).
        estimates: seconds for this image of each method (None or absent: not measured).
    """
    groups: dict[str, list[MethodInfo]] = {}
    order = [*FAMILY_TITLES.values(), THIRD_PARTY]
    for info in infos:
        title = (FAMILY_TITLES.get(info.family, "Other") if plugin_of(info.name) in builtin
                 else THIRD_PARTY)
        groups.setdefault(title, []).append(info)
    rows: list[tuple[str, str]] = []
    for title in order:
        if title not in groups:
            continue
        rows.append((f"── {title} ──", HEADER + title))
        for info in sorted(groups[title], key=lambda i: i.name):
            parts = [info.name, "learned" if info.learned else "classical"]
            if info.learned:
                parts.append(weights.get(info.name) or "no weights")
            seconds = estimates.get(info.name)
            parts.append(UNMEASURED if seconds is None else f"~{duration(seconds)}")
            rows.append(("    " + " · ".join(parts), info.name))
    return rows
