"""Result layers: their names, their provenance, and the compare views (no Qt).

A result is named ``METHOD (WEIGHTS) IMAGE`` for a learned method (``edge-gan (lite)
picture``, ``lama (big-lama) scan``) and ``METHOD IMAGE`` for a classical one; its metadata
holds the method, its parameters, the weights and the settings record of the run (the same
record a preset holds: :mod:`napari_inpaint._presets`).

Compare views: :func:`difference` (``|A - B|`` per pixel, the largest channel, in [0, 1]) and
:func:`split` (A left of a vertical line, B right of it), each a new array to show as a layer.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np


def weights_label(weights: dict[str, Any] | None) -> str | None:
    """A short name for the weights a result was made with: ``lite`` (shipped), the catalogue
    name, or a file's stem; None for a method without weights."""
    if not weights:
        return None
    given = str(weights.get("weights") or "shipped")
    if given == "shipped":
        return "lite"
    return Path(given).stem if given.endswith(".safetensors") else given


def result_name(method: str, weights: dict[str, Any] | None, image: str) -> str:
    """``METHOD (WEIGHTS) IMAGE``, or ``METHOD IMAGE`` without weights."""
    label = weights_label(weights)
    return f"{method} ({label}) {image}" if label else f"{method} {image}"


def as_float(data: Any) -> np.ndarray:
    """An image layer's pixels as float32 in [0, 1] (integers scaled by their dtype's max)."""
    array = np.asarray(data)
    if np.issubdtype(array.dtype, np.integer):
        return array.astype(np.float32) / float(np.iinfo(array.dtype).max)
    return array.astype(np.float32)


def difference(a: Any, b: Any) -> np.ndarray:
    """``|a - b|`` ``(H, W)`` float32 in [0, 1]: the largest over the colour channels.

    Raises:
        ValueError: the two images differ in shape.
    """
    first, second = as_float(a), as_float(b)
    if first.shape != second.shape:
        raise ValueError(f"cannot compare images of shapes {first.shape} and {second.shape}")
    gap = np.abs(first - second)
    return gap.max(axis=2) if gap.ndim == 3 else gap


def split(a: Any, b: Any, position: float) -> np.ndarray:
    """``a`` left of column ``position * W``, ``b`` right of it (same shape and dtype as
    ``a``), with a one-pixel white line at the split."""
    first, second = np.asarray(a), np.asarray(b)
    if first.shape != second.shape:
        raise ValueError(f"cannot compare images of shapes {first.shape} and {second.shape}")
    column = round(float(np.clip(position, 0.0, 1.0)) * (first.shape[1] - 1))
    view = first.copy()
    view[:, column:] = second[:, column:]
    top = np.iinfo(first.dtype).max if np.issubdtype(first.dtype, np.integer) else 1.0
    view[:, column] = top
    return view
