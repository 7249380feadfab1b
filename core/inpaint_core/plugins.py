"""The plugin manager: loads built-in and third-party method plugins once, lazily.

Built-ins are the modules in :data:`DEFAULT_PLUGINS`; third parties are entry points of the
group ``inpaint_core``. Plugins named in ``INPAINT_DISABLE_PLUGINS`` (comma-separated: a
built-in's module name or an entry point's name) are not loaded. A plugin that fails to import
is logged and skipped; a plugin with an unknown hook is an error that names it and how to
disable it. A method name registered by two plugins keeps the built-in's (else the first
plugin's) method and disables only the other plugin's, with a warning naming both.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import logging
import os
import threading
from dataclasses import dataclass, field

import pluggy

from inpaint_core import hookspecs
from inpaint_core.errors import DuplicateMethodError, PluginError, UnknownMethodError
from inpaint_core.lazy import resolve
from inpaint_core.method import InpaintMethod, MethodInfo

logger = logging.getLogger(__name__)

DEFAULT_PLUGINS: tuple[str, ...] = (
    "inpaint_methods.classical",
    "inpaint_methods.edge_gan",
    "inpaint_methods.pix2pix",
    "inpaint_methods.glcic",
    "inpaint_methods.context_encoder",
    "inpaint_methods.partial_conv_unet",
    "inpaint_methods.deepfill_v2",
    "inpaint_methods.lama",
    "inpaint_methods.mi_gan",
)
ENTRY_POINT_GROUP = "inpaint_core"
DISABLE_VARIABLE = "INPAINT_DISABLE_PLUGINS"


@dataclass
class MethodRegistry:
    """The loaded plugins and the methods they registered, by method name."""

    manager: pluggy.PluginManager
    methods: dict[str, type[InpaintMethod]] = field(default_factory=dict)
    plugin_of: dict[str, str] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)  # plugin name -> import error
    clashes: dict[str, str] = field(default_factory=dict)  # method name -> the warning given

    def get(self, name: str) -> type[InpaintMethod]:
        """Return the method class called ``name``, or raise listing the valid names."""
        try:
            return resolve(self.methods[name])
        except KeyError:
            valid = ", ".join(sorted(self.methods)) or "none (every plugin is disabled)"
            raise UnknownMethodError(f"unknown method {name!r}; valid methods: {valid}") from None

    def add(self, method: object, plugin: str) -> None:
        """Add one method class registered by ``plugin``; reject bad classes and clashes."""
        if not (isinstance(method, type) and issubclass(method, InpaintMethod)):
            raise PluginError(
                f"plugin {plugin!r} registered {method!r}, which is not a subclass of "
                "inpaint_core.InpaintMethod"
            )
        info = getattr(method, "info", None)
        if not isinstance(info, MethodInfo):
            raise PluginError(
                f"plugin {plugin!r} registered {method.__name__}, whose 'info' is not a MethodInfo"
            )
        if info.name in self.methods:
            holder = self.plugin_of[info.name]
            if holder == plugin:
                raise DuplicateMethodError(
                    f"plugin {plugin!r} registers method {info.name!r} twice; fix the plugin "
                    f"or set {DISABLE_VARIABLE}={plugin}"
                )
            kept, dropped = (plugin, holder) if plugin in DEFAULT_PLUGINS else (holder, plugin)
            message = (
                f"method {info.name!r} is registered by both plugin {holder!r} and plugin "
                f"{plugin!r}; plugin {dropped!r}'s method is disabled and {kept!r}'s is used "
                f"(uninstall {dropped!r}, or set {DISABLE_VARIABLE}={dropped})"
            )
            logger.warning("%s", message)
            self.clashes[info.name] = message
            if kept == holder:
                return
        self.methods[info.name] = method
        self.plugin_of[info.name] = plugin


_lock = threading.Lock()
_registry: MethodRegistry | None = None


def disabled_plugins() -> frozenset[str]:
    """The plugin names listed in ``INPAINT_DISABLE_PLUGINS``."""
    text = os.environ.get(DISABLE_VARIABLE, "")
    return frozenset(name.strip() for name in text.split(",") if name.strip())


def _candidate_plugins() -> list[tuple[str, object]]:
    """Import the enabled built-ins and entry points; log and skip the ones that fail."""
    disabled = disabled_plugins()
    # Learned built-ins register by their info alone; their torch modules load on first use.
    from inpaint_methods.learned_infos import LEARNED_PLUGINS, lazy_plugin

    loaders: list[tuple[str, object]] = [
        (module, lambda module=module: lazy_plugin(module))
        if module in LEARNED_PLUGINS
        else (module, lambda module=module: importlib.import_module(module))
        for module in DEFAULT_PLUGINS
    ]
    for entry_point in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        loaders.append((entry_point.name, entry_point.load))
    plugins = []
    for name, load in loaders:
        if name in disabled:
            logger.info("plugin %r skipped: listed in %s", name, DISABLE_VARIABLE)
            continue
        try:
            plugins.append((name, load()))
        except Exception as error:  # a broken third-party plugin must not take the others down
            logger.error("plugin %r failed to import and was skipped: %r", name, error)
            plugins.append((name, error))
    return plugins


def build_registry() -> MethodRegistry:
    """Build a fresh plugin manager and method registry (not cached; see :func:`get_registry`)."""
    manager = pluggy.PluginManager(hookspecs.PROJECT_NAME)
    manager.add_hookspecs(hookspecs)
    registry = MethodRegistry(manager)
    for name, plugin in _candidate_plugins():
        if isinstance(plugin, Exception):
            registry.failed[name] = repr(plugin)
            continue
        try:
            manager.register(plugin, name=name)
        except pluggy.PluginValidationError as error:
            raise PluginError(
                f"plugin {name!r} is invalid: {_one_line(error)}; fix it or set "
                f"{DISABLE_VARIABLE}={name}"
            ) from error
    try:
        manager.check_pending()
    except pluggy.PluginValidationError as error:
        plugin_name = manager.get_name(error.plugin)
        raise PluginError(
            f"plugin {plugin_name!r} implements a hook that does not exist ({_one_line(error)}); "
            f"known hooks: {', '.join(_hook_names())}. Fix the plugin or set "
            f"{DISABLE_VARIABLE}={plugin_name}"
        ) from error
    for name, plugin in manager.list_name_plugin():
        caller = manager.subset_hook_caller(
            "register_inpaint_methods",
            remove_plugins=[other for other in manager.get_plugins() if other is not plugin],
        )
        caller(register=lambda method, name=name: registry.add(method, name))
    return registry


def _one_line(error: Exception) -> str:
    return "; ".join(line.strip() for line in str(error).splitlines() if line.strip())


def _hook_names() -> list[str]:
    return sorted(
        name
        for name, value in vars(hookspecs).items()
        if callable(value) and hasattr(value, f"{hookspecs.PROJECT_NAME}_spec")
    )


def get_registry() -> MethodRegistry:
    """Return the process-wide registry, building it on first use (thread-safe)."""
    global _registry
    with _lock:
        if _registry is None:
            _registry = build_registry()
        return _registry


def reset_registry() -> None:
    """Forget the loaded plugins, so the next call reloads them (for tests and after installs)."""
    global _registry
    with _lock:
        _registry = None

