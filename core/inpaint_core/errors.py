"""The exception hierarchy of napari-inpaint.

Every error a user can cause derives from :class:`InpaintError`, so the CLI and the napari
widget catch one type and show its message. Messages name the bad value and say how to fix it.
"""

from __future__ import annotations


class InpaintError(Exception):
    """Base class of every napari-inpaint error meant to be shown to a user."""


class InvalidInputError(InpaintError, ValueError):
    """An image or mask that breaks the array contract (shape, dtype, range, NaN)."""


class ParameterError(InpaintError, ValueError):
    """An unknown, mistyped or out-of-range method parameter."""


class UnknownMethodError(InpaintError, LookupError):
    """A method name that no loaded plugin registered."""


class PluginError(InpaintError):
    """A plugin that breaks the plugin contract (bad hook, bad method class)."""


class DuplicateMethodError(PluginError):
    """Two plugins registered a method under the same name."""


class MethodFailedError(InpaintError):
    """A method returned something that breaks its output contract (wrong shape, NaN)."""


class ImageIOError(InpaintError, OSError):
    """A file that cannot be read or written as an image or mask."""


class OutputExistsError(ImageIOError, FileExistsError):
    """An output path that exists, or that is one of the inputs; nothing is overwritten."""


class MissingWeightsError(InpaintError, FileNotFoundError):
    """Weights a method or a loss needs were not given, or the given file does not exist."""


class InvalidWeightsError(InpaintError, ValueError):
    """A weights file that cannot be read, fails its checksum, lacks a key or has a wrong shape."""
