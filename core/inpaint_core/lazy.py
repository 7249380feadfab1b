"""Methods registered by their :class:`MethodInfo` alone, whose module is imported on first use.

Listing methods, and running a classical one, must not import torch (about 1.3 s on two
cores). A built-in learned plugin is therefore registered through a stand-in class: an
:class:`InpaintMethod` subclass carrying the real class's ``info`` and the dotted path of that
class. The registry lists it like any method; :func:`resolve` (called by
``MethodRegistry.get``) imports the real class the first time a caller asks for it, so every
caller of ``get_method`` still receives the real class.
"""

from __future__ import annotations

import importlib
from typing import Any, ClassVar

import numpy as np

from inpaint_core.errors import PluginError
from inpaint_core.method import InpaintMethod, MethodInfo

__all__ = ["LazyMethod", "lazy_method", "resolve"]


class LazyMethod(InpaintMethod):
    """A stand-in for a method class in a module that has not been imported yet.

    Subclasses are made by :func:`lazy_method`; ``target`` is ``"package.module:ClassName"``.
    Instantiating a stand-in builds the real class instead.
    """

    target: ClassVar[str]

    def __new__(cls, *args: Any, **kwargs: Any) -> Any:
        return cls.load()(*args, **kwargs)

    @classmethod
    def load(cls) -> type[InpaintMethod]:
        """Import and return the real class; its ``info`` must equal the stand-in's.

        Raises:
            PluginError: the module fails to import, the class is missing or is not a method,
                or it declares another info.
        """
        module_name, _, class_name = cls.target.partition(":")
        try:
            module = importlib.import_module(module_name)
        except ImportError as error:
            raise PluginError(
                f"method {cls.info.name!r} is listed but its module {module_name} failed to "
                f"import: {error}"
            ) from error
        found = getattr(module, class_name, None)
        if not (isinstance(found, type) and issubclass(found, InpaintMethod)):
            raise PluginError(f"{cls.target} is not an InpaintMethod subclass")
        if found.info != cls.info:
            raise PluginError(
                f"{cls.target}.info differs from the info registered for {cls.info.name!r}; "
                "register the class's own info"
            )
        return found

    def run(self, image: np.ndarray, mask: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Never called: instantiating a stand-in returns the real class's instance."""
        raise NotImplementedError(f"{self.target} stand-in cannot run")


def lazy_method(info: MethodInfo, target: str) -> type[InpaintMethod]:
    """A stand-in class for the method ``target`` (``"module:Class"``) whose info is ``info``.

    Args:
        info: the real class's ``info`` (the very object, so that both cannot drift).
        target: where the real class lives; imported by :func:`resolve` on first use.
    """
    if ":" not in target:
        raise PluginError(f"lazy method target {target!r} must look like 'package.module:Class'")
    name = "Lazy" + "".join(part.title() for part in info.name.split("-"))
    return type(name, (LazyMethod,), {"info": info, "target": target})


def resolve(method: type[InpaintMethod]) -> type[InpaintMethod]:
    """The real class of ``method``: itself, or the class a :func:`lazy_method` stands for."""
    if isinstance(method, type) and issubclass(method, LazyMethod):
        return method.load()
    return method
