"""napari-inpaint core: deep and classical inpainting behind one plugin contract.

Public API::

    from inpaint_core import inpaint, list_methods, get_method, hookimpl, restore_scan
    restored = inpaint(image, mask, method="telea", radius=5)
    restore_scan("scan.zarr", "mask.zarr", "telea", "restored.zarr")  # tiled, resumable
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from typing import Any

import pluggy

from inpaint_core.api import DEFAULT_METHOD, get_method, inpaint, list_methods, method_plugin
from inpaint_core.errors import InpaintError
from inpaint_core.hookspecs import PROJECT_NAME
from inpaint_core.method import (
    Family,
    InpaintMethod,
    MethodInfo,
    MethodResult,
    Parameter,
    ParamType,
)

try:
    __version__ = version("napari-inpaint")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0+unknown"

hookimpl = pluggy.HookimplMarker(PROJECT_NAME)
"""Marker for hook implementations: ``@hookimpl def register_inpaint_methods(register): ...``"""

__all__ = [
    "DEFAULT_METHOD",
    "Family",
    "InpaintError",
    "InpaintMethod",
    "MethodInfo",
    "MethodResult",
    "ParamType",
    "Parameter",
    "__version__",
    "get_method",
    "hookimpl",
    "inpaint",
    "list_methods",
    "method_plugin",
    "restore_scan",
]


def __getattr__(name: str) -> Any:
    if name == "restore_scan":  # imported on first use: the engine pulls in scipy, zarr, dask
        from inpaint_core.tiling.engine import restore_scan

        return restore_scan
    raise AttributeError(f"module 'inpaint_core' has no attribute {name!r}")
