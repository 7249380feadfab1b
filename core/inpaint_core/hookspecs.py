"""Hook specifications of napari-inpaint: the contract between the core and method plugins.

Specs only. A plugin implements a hook by defining a function of the same name decorated with
:data:`inpaint_core.hookimpl`; it may accept any subset of the arguments (hooks only grow).
Third-party plugins are found through the entry-point group ``inpaint_core``.
"""

from __future__ import annotations

from collections.abc import Callable

import pluggy

from inpaint_core.method import InpaintMethod

PROJECT_NAME = "inpaint_core"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)


@hookspec
def register_inpaint_methods(register: Callable[[type[InpaintMethod]], None]) -> None:
    """Register inpainting methods.

    Call ``register(MethodClass)`` once per method. ``MethodClass`` is a subclass of
    :class:`inpaint_core.InpaintMethod` whose ``info`` is a :class:`inpaint_core.MethodInfo`;
    its ``info.name`` must be unique across all loaded plugins (a clash raises
    :class:`inpaint_core.errors.DuplicateMethodError` naming both plugins).

    Args:
        register: the callback that adds one method class to the registry.

    Returns:
        Nothing; return values are ignored.

    Since: 0.1.0
    """
