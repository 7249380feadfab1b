"""Presets: the widget's settings as one JSON record (no Qt).

A record holds the method, its parameters, the weights (the picker's value and, once run,
their sha256), the mask layers used with their label filters, the grow radius, and the
versions that made it. The dock widget saves and loads it as a ``.json`` file, and every
result layer keeps the record of its run in ``metadata["napari_inpaint"]["settings"]``.
"""

from __future__ import annotations

import json
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from inpaint_core.errors import InvalidInputError

#: The record's format; a file of another version is refused, naming both.
PRESET_VERSION = 1


def versions() -> dict[str, str]:
    """The versions of the packages that make a result."""
    found: dict[str, str] = {}
    for package in ("napari-inpaint", "napari", "torch", "numpy"):
        try:
            found[package] = version(package)
        except PackageNotFoundError:
            continue
    return found


def jsonable(value: Any) -> Any:
    """``value`` with paths as strings (parameters hold paths for files)."""
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    return value


def make_record(method: str, params: dict[str, Any], weights: Any,
                masks: list[dict[str, Any]], grow: int,
                weights_sha256: str | None = None) -> dict[str, Any]:
    """A settings record: see the module docstring. ``masks`` is ``[{"layer": name,
    "values": "1, 3-5"}]`` for the ticked mask layers."""
    record = {
        "preset_version": PRESET_VERSION,
        "method": method,
        "params": jsonable({k: v for k, v in params.items() if k != "weights"}),
        "weights": None if weights is None else str(weights),
        "masks": [dict(mask) for mask in masks],
        "grow": int(grow),
        "versions": versions(),
    }
    if weights_sha256:
        record["weights_sha256"] = weights_sha256
    return record


def save(record: dict[str, Any], path: str | Path) -> Path:
    """Write ``record`` as indented JSON to ``path``."""
    target = Path(path)
    target.write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
    return target


def load(path: str | Path) -> dict[str, Any]:
    """Read a record written by :func:`save`.

    Raises:
        InvalidInputError: unreadable, not JSON, not a preset, or another version.
    """
    try:
        record = json.loads(Path(path).read_text())
    except (OSError, ValueError) as error:
        raise InvalidInputError(f"cannot read preset {str(path)!r}: {error}") from error
    if not isinstance(record, dict) or "method" not in record:
        raise InvalidInputError(f"{str(path)!r} is not a napari-inpaint preset (no 'method')")
    if record.get("preset_version") != PRESET_VERSION:
        raise InvalidInputError(
            f"preset {str(path)!r} has version {record.get('preset_version')!r}; this "
            f"napari-inpaint reads version {PRESET_VERSION}"
        )
    return record
