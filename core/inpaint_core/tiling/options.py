"""The settings of a tiled restoration, in one frozen, validated place.

:class:`RestoreOptions` holds every setting :func:`~inpaint_core.tiling.engine.restore_scan`
takes besides its inputs, output and callbacks; each is checked once, when the options are
made, and an error names the bad value. What depends on the method (the tile side's default,
the context margin) is checked by the planner (:func:`~inpaint_core.tiling.planner.tile_geometry`);
what depends on the output's codecs (``zstd_level`` needs zstd) when the output is laid out.
"""

from __future__ import annotations

import numbers
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from inpaint_core.errors import ParameterError
from inpaint_core.io.chunks import INTACT_MODES
from inpaint_core.io.layout import ZSTD_LEVELS
from inpaint_core.io.pyramid import PYRAMID_SIDE

#: When the output gets a pyramid (levels 1, 2, ...): ``always``; ``never``; ``auto``: when
#: the scan has one (an OME-Zarr with levels), so a plain zarr or TIFF scan's output is
#: level 0 alone, which a whole 32k pyramid would otherwise outweigh where little is restored.
PYRAMID_MODES = ("auto", "always", "never")


def _is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


@dataclass(frozen=True)
class RestoreOptions:
    """How a scan is restored (:func:`~inpaint_core.tiling.engine.restore_scan`).

    Attributes:
        tile: window side in px (None: ``info.preferred_tile``); the margin is always
            ``info.context_margin``.
        overlap: px by which pieces of a hole too large for one tile overlap and cross-fade
            (None: ``default_overlap``, ``margin // 2``, at least 1).
        batch: tiles restored per step (int >= 1); halved on CUDA out-of-memory (logged).
        device: ``auto``, ``cpu``, ``cuda``, ``cuda:N`` or ``mps``; given only to methods with
            a ``device`` parameter.
        params: the method's parameters (only with a method name).
        resume: continue an interrupted run into the output (same settings); the result is
            byte-identical to an uninterrupted run.
        seed: seeds the method's random generator (same for every tile).
        scheduler: ``tcp://HOST:PORT`` of a dask.distributed scheduler: tiles (``batch`` in
            flight at once, one task each) and hole-free chunk copies run on its workers, which
            must reach the scan and the output (shared filesystem). None: this process, with
            local threads for the copies.
        pyramid_side: levels are added until the long side is at most this (int >= 1).
        pyramid: whether the output gets a pyramid, one of :data:`PYRAMID_MODES`: ``auto``
            (default), when the scan has one, as the scan is stored; ``always``; ``never``.
            Without one the output is level 0 alone (still a valid OME-Zarr, with one level).
            Not a resume setting: the run that finishes the output decides.
        intact: how chunks without holes (and an OME-Zarr source's pyramid chunks over them)
            reach the output (:data:`INTACT_MODES`): ``copy`` their stored bytes (default), or
            ``link`` them, a hard link per chunk file, which costs no time or disk whatever the
            scan's size but needs an unsharded zarr v3 scan on the output's filesystem
            (:func:`~inpaint_core.io.chunks.check_linkable`). zarr replaces a chunk file when
            it writes one, so writing either store through zarr never changes the other.
        workers: local threads restoring ``batch``-tile groups at once (no ``scheduler``).
            For CPU methods that release the GIL while they compute (OpenCV's ``telea`` and
            ``navier-stokes``, NumPy-heavy ones); the method must be thread-safe (the built-in
            methods are). The CUDA out-of-memory back-off applies with 1 worker only.
        zstd_level: the zstd level of the chunks this run encodes (restored chunks and the
            pyramid's computed ones); None: the level the output declares, i.e. the scan's.
            The output keeps the scan's codecs in its metadata (so intact chunks still copy or
            link as stored bytes): zstd decodes a chunk alike whatever level made it. Level 1
            encodes faster than zstd's default 3, for somewhat larger chunks
            (``benchmarks/tiled_restore.py`` measures both). The output must be compressed with
            zstd (it is unless the scan is a zarr v3 array with another compressor). Recorded
            in the provenance's settings.
    """

    tile: int | None = None
    overlap: int | None = None
    batch: int = 1
    device: str = "auto"
    params: Mapping[str, Any] | None = field(default=None, hash=False)  # a dict: unhashable
    resume: bool = False
    seed: int = 0
    scheduler: str | None = None
    pyramid_side: int = PYRAMID_SIDE
    pyramid: str = "auto"
    intact: str = "copy"
    workers: int = 1
    zstd_level: int | None = None

    def __post_init__(self) -> None:
        if not _is_int(self.batch) or self.batch < 1:
            raise ParameterError(f"batch={self.batch!r} must be an int >= 1")
        if not _is_int(self.workers) or self.workers < 1:
            raise ParameterError(f"workers={self.workers!r} must be an int >= 1")
        if self.intact not in INTACT_MODES:
            raise ParameterError(
                f"intact={self.intact!r} must be one of {', '.join(INTACT_MODES)}"
            )
        for name in ("tile", "overlap"):
            value = getattr(self, name)
            if value is not None and not _is_int(value):
                raise ParameterError(f"{name}={value!r} must be an int (or None for the default)")
        if not _is_int(self.seed):
            raise ParameterError(f"seed={self.seed!r} must be an int")
        if not _is_int(self.pyramid_side) or self.pyramid_side < 1:
            raise ParameterError(f"pyramid_side={self.pyramid_side!r} must be an int >= 1")
        if self.pyramid not in PYRAMID_MODES:
            raise ParameterError(
                f"pyramid={self.pyramid!r} must be one of {', '.join(PYRAMID_MODES)}"
            )
        level = self.zstd_level
        if level is not None and (not _is_int(level) or level not in ZSTD_LEVELS):
            raise ParameterError(
                f"zstd_level={level!r} must be an int from {ZSTD_LEVELS[0]} to {ZSTD_LEVELS[-1]}"
            )
        if self.params is not None:  # a private copy: the caller's dict may change later
            object.__setattr__(self, "params", dict(self.params))

    @property
    def link(self) -> bool:
        """Whether intact chunks are hard-linked (``intact="link"``), not copied."""
        return self.intact == "link"

    def builds_pyramid(self, source_has_levels: bool) -> bool:
        """Whether the output gets a pyramid, for a scan with (or without) its own levels."""
        return self.pyramid == "always" or (self.pyramid == "auto" and source_has_levels)

    @classmethod
    def of(cls, options: RestoreOptions | None, settings: Mapping[str, Any]) -> RestoreOptions:
        """``options``, or options made from keyword ``settings`` (never both).

        Raises:
            ParameterError: both given, or a setting that is no option (naming the valid ones).
        """
        if options is not None and settings:
            raise ParameterError(
                f"give either options= or the settings {sorted(settings)} as keywords, not both"
            )
        if options is not None:
            return options
        names = [each.name for each in fields(cls)]
        unknown = sorted(set(settings) - set(names))
        if unknown:
            raise ParameterError(
                f"unknown restore setting(s) {unknown}; valid ones: {', '.join(names)}"
            )
        return cls(**settings)
