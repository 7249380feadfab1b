"""How the engine runs things: the method, batches with CUDA out-of-memory back-off, the dask
client, and the checks that make a resumed run restore exactly what the first one did."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from inpaint_core.errors import MethodFailedError, ParameterError
from inpaint_core.method import InpaintMethod
from inpaint_core.tiling.plan import Tile
from inpaint_core.tiling.regions import HoleRegions

if TYPE_CHECKING:
    from inpaint_core.checkpoint import CheckpointInfo

logger = logging.getLogger(__name__)

_UNCHECKED_PARAMETERS = ("device",)  # may change between a run and its resumption


def default_overlap(tile: int, margin: int) -> int:
    """``margin // 2``, kept in ``[1, tile - 2 * margin - 1]``: split holes cross-fade over it."""
    return max(1, min(margin // 2, tile - 2 * margin - 1))


def describe(tile: Tile) -> str:
    """``tile rows 0:96, cols 64:160`` for messages."""
    return f"tile rows {tile.row0}:{tile.row1}, cols {tile.col0}:{tile.col1}"


def oom_errors() -> tuple[type[BaseException], ...]:
    """``(torch.cuda.OutOfMemoryError,)`` once torch is imported, else ``()`` (catches none)."""
    torch = sys.modules.get("torch")  # only a method that imported torch can run out of CUDA
    error = getattr(getattr(torch, "cuda", None), "OutOfMemoryError", None)
    return (error,) if error is not None else ()


def make_method(
    method: str | InpaintMethod, params: Mapping[str, Any] | None, device: str
) -> InpaintMethod:
    """The method instance; ``device`` is passed only to a method with a ``device`` parameter
    (an instance keeps the device it was made with)."""
    if isinstance(method, InpaintMethod):
        if params:
            raise ParameterError(
                f"parameters {sorted(params)} were given with a method instance; "
                "pass them to its constructor instead"
            )
        return method
    from inpaint_core.api import get_method

    method_class = get_method(method)
    values = dict(params or {})
    if "device" in {parameter.name for parameter in method_class.info.parameters}:
        values.setdefault("device", device)
    elif device != "auto":
        logger.info("method %r runs on the CPU; device=%r is not used", method, device)
    return method_class(**values)


def weights_sha256(method: InpaintMethod) -> str | None:
    """The sha256 of a learned method's weights (from the sidecar), None for other methods."""
    if not method.info.learned or not hasattr(method, "weights_path"):
        return None
    from inpaint_core.checkpoint import CheckpointInfo, checkpoint_paths, sha256_file
    from inpaint_core.errors import MissingWeightsError

    weights, sidecar = checkpoint_paths(method.weights_path())
    if sidecar.is_file():
        return CheckpointInfo.from_json(sidecar.read_text()).sha256
    if weights.is_file():
        return sha256_file(weights)
    raise MissingWeightsError(f"weights file {weights} of method {method.info.name!r} is missing")


def weights_source(method: InpaintMethod) -> dict[str, Any] | None:
    """Where a learned method's weights come from (None for other methods).

    Returns:
        ``path`` (the ``.safetensors`` file), ``source`` (the catalogue name or the published
        format they were imported from, else ``"trained here"``) and ``licence`` (as the
        sidecar records it, else ``""``).
    """
    if not method.info.learned or not hasattr(method, "weights_path"):
        return None
    from inpaint_core.checkpoint import CheckpointInfo, checkpoint_paths

    weights, sidecar = checkpoint_paths(method.weights_path())
    info = CheckpointInfo.from_json(sidecar.read_text()) if sidecar.is_file() else None
    return {"path": str(weights), **published_source(info)}


def published_source(info: CheckpointInfo | None) -> dict[str, str]:
    """``source`` (the catalogue name or the published format the weights were imported from,
    else ``"trained here"``) and ``licence`` (else ``""``) from a weights sidecar (None: the
    weights have none)."""
    published = (info.extra.get("published") or {}) if info is not None else {}
    source = published.get("catalogue") or (
        f"{published['format']} import" if published.get("format") else "trained here"
    )
    return {"source": source, "licence": published.get("licence", "")}


def usable_cores() -> int:
    """The CPU cores this process may run on: its CPU affinity where the OS reports one
    (Linux: a container's or ``taskset``'s limit), else all of the machine's."""
    affinity = getattr(os, "sched_getaffinity", None)
    return len(affinity(0)) if affinity is not None else os.cpu_count() or 1


def run_with_backoff(
    run: Callable[[Sequence[Tile]], list[np.ndarray]], tiles: Sequence[Tile], batch: int
) -> tuple[list[np.ndarray], int]:
    """Run ``tiles`` ``batch`` at a time; on CUDA out-of-memory halve the batch and retry.

    Returns the results in order and the batch size that worked (keep using it)."""
    results: list[np.ndarray] = []
    start = 0
    while start < len(tiles):
        part = tiles[start : start + batch]
        try:
            results.extend(run(part))
        except oom_errors() as error:
            if batch == 1:
                raise MethodFailedError(
                    f"{describe(part[0])}: CUDA out of memory with a single tile; use a smaller "
                    "--tile or --device cpu"
                ) from error
            batch = max(1, batch // 2)
            logger.warning(
                "CUDA out of memory on %d tiles; retrying with batch %d", len(part), batch
            )
            torch = sys.modules.get("torch")
            if torch is not None and torch.cuda.is_available():
                torch.cuda.empty_cache()
            continue
        start += len(part)
    return results, batch


@contextmanager
def connect(address: str | None) -> Iterator[Any]:
    """Yield a ``distributed.Client`` of the scheduler at ``tcp://HOST:PORT`` and close it
    afterwards; yield None for ``address=None`` (run in this process).

    Raises:
        ParameterError: dask.distributed is not installed, or the scheduler cannot be reached.
    """
    if address is None:
        yield None
        return
    try:
        from distributed import Client
    except ImportError as error:
        raise ParameterError(
            f"--scheduler {address!r} needs dask.distributed: "
            "pip install 'napari-inpaint[distributed]'"
        ) from error
    try:
        client = Client(address, timeout="30s")
    except OSError as error:
        raise ParameterError(f"cannot reach the dask scheduler {address!r}: {error}") from error
    try:
        yield client
    finally:
        client.close()


def check_resumable(path: Path, stored: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """The stored provenance, if ``new`` restores the same thing the same way; else raise.

    Raises:
        ParameterError: the output's settings were never recorded (a stub of a run stopped
            while creating it); the mask's content differs from the first run's (its
            ``mask_digest``: an edited mask, even with the same path and hole count); or a
            setting differs, each named with both values.
    """
    if not stored or "method" not in stored:
        raise ParameterError(
            f"cannot resume {str(path)!r}: its settings were never recorded (the run that "
            "created it stopped before writing them); delete it and run again without --resume"
        )
    if stored.get("mask_digest") != new.get("mask_digest"):
        recorded = stored.get("mask_digest")
        detail = ("the first run recorded no mask fingerprint (an older version made it), so "
                  "the mask cannot be checked" if recorded is None else
                  f"its content changed since the first run (fingerprint {recorded[:19]}... -> "
                  f"{str(new.get('mask_digest'))[:19]}...; hole pixels "
                  f"{stored.get('hole_pixels')} -> {new.get('hole_pixels')})")
        raise ParameterError(
            f"cannot resume {str(path)!r} with the mask {new.get('mask')!r}: {detail}; resume "
            "with the first run's mask unchanged, or write a new output"
        )
    keys = ("method", "parameters", "weights_sha256", "scan", "mask", "hole_pixels", "settings")

    def comparable(record: dict[str, Any], key: str) -> Any:
        value = record.get(key)
        if key == "parameters" and isinstance(value, dict):
            return {k: v for k, v in value.items() if k not in _UNCHECKED_PARAMETERS}
        return value

    differing = [key for key in keys if comparable(stored, key) != comparable(new, key)]
    if differing:
        detail = "; ".join(f"{k}: {stored.get(k)!r} -> {new.get(k)!r}" for k in differing)
        raise ParameterError(
            f"cannot resume {str(path)!r} with other settings ({detail}); repeat the first "
            "run's settings, or write a new output"
        )
    return stored


def describe_run(
    method: InpaintMethod, inputs: Mapping[str, str], regions: HoleRegions,
    settings: Mapping[str, Any], tiles: int,
) -> dict[str, Any]:
    """The provenance stored in the output's ``"inpaint"`` attribute (JSON-ready)."""
    from inpaint_core import __version__

    parameters = {k: str(v) if isinstance(v, Path) else v for k, v in method.params.items()}
    return {
        "method": method.info.name, "parameters": parameters,
        "weights_sha256": weights_sha256(method), "weights": weights_source(method), **inputs,
        "hole_pixels": regions.hole_pixels, "hole_fraction": regions.hole_fraction,
        "software_version": __version__, "settings": dict(settings), "tiles": tiles,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"), "complete": False,
    }
