"""The method model: what every inpainting method, built-in or third-party, declares and does.

A method is a subclass of :class:`InpaintMethod` with a class attribute ``info``, a frozen
:class:`MethodInfo`. Its parameters are a typed schema (:class:`Parameter`) complete enough for
the CLI and the napari widget to build their inputs from it, with no code of the method's own.
"""

from __future__ import annotations

import math
import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any, ClassVar, NamedTuple

import numpy as np

from inpaint_core.arrays import is_integer
from inpaint_core.errors import ParameterError, PluginError

_NAME_PATTERN = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$")
_TRUE_WORDS = frozenset({"1", "true", "yes", "on"})
_FALSE_WORDS = frozenset({"0", "false", "no", "off"})


class Family(str, Enum):
    """The architecture family of a method (the survey's five, classical, fourier
    (Fourier convolutions, LaMa) and other)."""

    CLASSICAL = "classical"
    CONTEXT_ENCODER = "context_encoder"
    UNET = "unet"
    CGAN = "cgan"
    DCGAN = "dcgan"
    STACKGAN = "stackgan"
    FOURIER = "fourier"
    OTHER = "other"

    @classmethod
    def parse(cls, value: Family | str) -> Family:
        """Return the member for ``value``; an unknown value raises listing the valid ones."""
        try:
            return cls(value)
        except ValueError:
            valid = ", ".join(member.value for member in cls)
            raise PluginError(f"unknown method family {value!r}; valid: {valid}") from None


class ParamType(str, Enum):
    """The type of a method parameter, which decides its widget and its CLI parsing."""

    INT = "int"
    FLOAT = "float"
    BOOL = "bool"
    CHOICE = "choice"
    STR = "str"
    PATH = "path"


@dataclass(frozen=True)
class Parameter:
    """One parameter of a method.

    Attributes:
        name: identifier, used as the keyword argument and as ``--param name=value``.
        type: the :class:`ParamType`.
        default: the value used when the caller gives none (``None`` only for PATH: "unset").
        help: one sentence for tooltips and ``inpaint methods NAME``.
        minimum, maximum: inclusive bounds for INT and FLOAT (``None``: unbounded).
        choices: the allowed strings for CHOICE.
    """

    name: str
    type: ParamType
    default: Any
    help: str
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.name.isidentifier():
            raise PluginError(f"parameter name {self.name!r} is not a Python identifier")
        object.__setattr__(self, "type", ParamType(self.type))
        object.__setattr__(self, "choices", tuple(self.choices))
        if self.type is ParamType.CHOICE and not self.choices:
            raise PluginError(f"choice parameter {self.name!r} declares no choices")
        if self.type is ParamType.PATH and self.default is None:
            return
        try:
            self.validate(self.default)
        except ParameterError as error:
            raise PluginError(f"default of parameter {self.name!r} is invalid: {error}") from None

    def validate(self, value: Any) -> Any:
        """Return ``value`` converted to this parameter's type, or raise :class:`ParameterError`.

        INT accepts integers (not bools, not 2.5); FLOAT accepts finite ints and floats; BOOL
        accepts only bools; CHOICE one of ``choices``; PATH a str or Path (returned as Path).
        """
        kind = self.type
        if kind is ParamType.BOOL:
            if not isinstance(value, (bool, np.bool_)):
                raise ParameterError(f"{self.name}={value!r} must be true or false")
            return bool(value)
        if kind is ParamType.INT:
            if not is_integer(value):
                raise ParameterError(f"{self.name}={value!r} must be an integer")
            return self._check_range(int(value))
        if kind is ParamType.FLOAT:
            if isinstance(value, (bool, np.bool_)) or not isinstance(
                value, (int, float, np.integer, np.floating)
            ):
                raise ParameterError(f"{self.name}={value!r} must be a number")
            if not math.isfinite(float(value)):
                raise ParameterError(f"{self.name}={value!r} must be finite")
            return self._check_range(float(value))
        if kind is ParamType.CHOICE:
            if value not in self.choices:
                raise ParameterError(
                    f"{self.name}={value!r} is not one of: {', '.join(self.choices)}"
                )
            return value
        if kind is ParamType.PATH:
            if value is None and self.default is None:
                return None
            if not isinstance(value, (str, Path)):
                raise ParameterError(f"{self.name}={value!r} must be a file path")
            return Path(value)
        if not isinstance(value, str):
            raise ParameterError(f"{self.name}={value!r} must be a string")
        return value

    def parse(self, text: str) -> Any:
        """Convert the text of ``--param name=text`` to a validated value."""
        kind = self.type
        if kind is ParamType.BOOL:
            word = text.strip().lower()
            if word not in _TRUE_WORDS | _FALSE_WORDS:
                raise ParameterError(f"{self.name}={text!r} must be true or false")
            return word in _TRUE_WORDS
        if kind in (ParamType.INT, ParamType.FLOAT):
            converter = int if kind is ParamType.INT else float
            try:
                value = converter(text)
            except ValueError:
                raise ParameterError(f"{self.name}={text!r} must be {kind.value}") from None
            return self.validate(value)
        return self.validate(text)

    def _check_range(self, value: float) -> float:
        low, high = self.minimum, self.maximum
        if (low is not None and value < low) or (high is not None and value > high):
            bounds = f"[{'-inf' if low is None else low}, {'inf' if high is None else high}]"
            raise ParameterError(f"{self.name}={value!r} is out of range {bounds}")
        return value

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready description (for ``inpaint methods --json`` and GUIs)."""
        default = str(self.default) if isinstance(self.default, Path) else self.default
        return {
            "name": self.name,
            "type": self.type.value,
            "default": default,
            "help": self.help,
            "minimum": self.minimum,
            "maximum": self.maximum,
            "choices": list(self.choices),
        }


@dataclass(frozen=True)
class MethodInfo:
    """What a method is: identity, provenance, parameters and tiling hints.

    Attributes:
        name: stable id, lowercase words joined by hyphens (``telea``, ``edge-gan``).
        family: the architecture :class:`Family`.
        summary: one line for method pickers.
        reference: the paper (or library) the method implements.
        learned: True for methods that need trained weights.
        parameters: the typed schema of the keyword arguments the method accepts.
        pad_multiple: the method needs height and width padded to a multiple of this.
        preferred_tile: tile edge in pixels the tiled engine should use.
        context_margin: known pixels the method needs around a hole, in pixels.
        supports_gpu: whether the method can run on a CUDA or MPS device.
    """

    name: str
    family: Family
    summary: str
    reference: str
    learned: bool = False
    parameters: tuple[Parameter, ...] = field(default_factory=tuple)
    pad_multiple: int = 1
    preferred_tile: int = 512
    context_margin: int = 32
    supports_gpu: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not _NAME_PATTERN.match(self.name):
            raise PluginError(
                f"method name {self.name!r} must be lowercase words joined by hyphens, "
                "e.g. 'edge-gan'"
            )
        object.__setattr__(self, "family", Family.parse(self.family))
        object.__setattr__(self, "parameters", tuple(self.parameters))
        names = [parameter.name for parameter in self.parameters]
        repeated = sorted({name for name in names if names.count(name) > 1})
        if repeated:
            raise PluginError(f"method {self.name!r} declares parameters twice: {repeated}")
        for attribute in ("pad_multiple", "preferred_tile"):
            if getattr(self, attribute) < 1:
                raise PluginError(f"method {self.name!r}: {attribute} must be >= 1")
        if self.context_margin < 0:
            raise PluginError(f"method {self.name!r}: context_margin must be >= 0")

    def parameter(self, name: str) -> Parameter:
        """Return the parameter called ``name``; an unknown name raises listing the valid ones."""
        for parameter in self.parameters:
            if parameter.name == name:
                return parameter
        valid = ", ".join(p.name for p in self.parameters) or "none"
        raise ParameterError(
            f"method {self.name!r} has no parameter {name!r}; its parameters: {valid}"
        )

    def validate_params(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """Return every parameter's value: the given ones validated, the rest defaulted."""
        return self._collect(params, Parameter.validate)

    def parse_params(self, texts: Mapping[str, str]) -> dict[str, Any]:
        """Like :meth:`validate_params`, for values given as text (``--param key=value``)."""
        return self._collect(texts, Parameter.parse)

    def _collect(
        self, given: Mapping[str, Any], convert: Callable[[Parameter, Any], Any]
    ) -> dict[str, Any]:
        values = {parameter.name: parameter.default for parameter in self.parameters}
        for name, value in given.items():
            parameter = self.parameter(name)
            try:
                values[name] = convert(parameter, value)
            except ParameterError as error:
                raise ParameterError(f"method {self.name!r}: {error}") from None
        return values

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready description of the method."""
        return {
            "name": self.name,
            "family": self.family.value,
            "summary": self.summary,
            "reference": self.reference,
            "learned": self.learned,
            "parameters": [parameter.to_dict() for parameter in self.parameters],
            "pad_multiple": self.pad_multiple,
            "preferred_tile": self.preferred_tile,
            "context_margin": self.context_margin,
            "supports_gpu": self.supports_gpu,
        }


class MethodResult(NamedTuple):
    """What :meth:`InpaintMethod.run` may return instead of a bare array: the filled image
    plus named extra outputs, e.g. ``{"edges": float32 (H, W) in [0, 1]}`` for ``edge-gan``'s
    predicted edge map (the napari widget adds each as a layer)."""

    image: np.ndarray
    extras: dict[str, np.ndarray]


class InpaintMethod(ABC):
    """Base class of every inpainting method.

    Subclasses set ``info`` and implement :meth:`run`. Construct with keyword parameters
    (validated against ``info.parameters``; missing ones take their defaults). Callers normally
    go through :func:`inpaint_core.inpaint`, which checks and converts arrays, handles alpha,
    dtypes and empty masks, and pastes only hole pixels back, so :meth:`run` sees one clean case.
    """

    info: ClassVar[MethodInfo]
    #: Integer dtype names (``"uint8"``, ``"uint16"``) that :meth:`run` takes as the caller
    #: gave them: for such an image it receives the colour channels in that dtype (read-only)
    #: instead of float32, and returns that dtype. Empty (the default): always float32.
    native_dtypes: ClassVar[frozenset[str]] = frozenset()

    def __init__(self, **params: Any) -> None:
        self.params: dict[str, Any] = self.info.validate_params(params)

    @abstractmethod
    def run(
        self, image: np.ndarray, mask: np.ndarray, rng: np.random.Generator
    ) -> np.ndarray | MethodResult:
        """Fill the hole of one image.

        Args:
            image: float32 ``(H, W, C)``, C in {1, 3}, values in [0, 1], C-contiguous (or the
                caller's integer dtype, read-only, if it is in :attr:`native_dtypes`). Hole
                pixels hold the damaged values; do not rely on them.
            mask: bool ``(H, W)``, True = hole; at least one hole and one known pixel.
            rng: the only source of randomness, so that a seed makes the result repeatable.

        Returns:
            float32 ``(H, W, C)`` in [0, 1]. Only the hole pixels are used. A method with
            extra outputs returns a :class:`MethodResult` holding that array and the extras.
        """

    def run_batch(
        self, images: list[np.ndarray], masks: list[np.ndarray], seed: int
    ) -> list[np.ndarray | MethodResult]:
        """Fill the holes of several images (the tiled engine's batches).

        Each item is as for :meth:`run`; each gets its own ``np.random.default_rng(seed)``,
        so a batch gives exactly what one :meth:`run` per item gives. This default runs them
        one by one; a method that gains from batching (a network on a GPU) overrides it.
        """
        return [
            self.run(image, mask, np.random.default_rng(seed))
            for image, mask in zip(images, masks, strict=True)
        ]

    def expect_windows(self, shapes: Mapping[tuple[int, int], int]) -> None:
        """Told before a run of many calls (the tiled engine's, once before its first
        :meth:`run_batch`): how many windows of each ``(H, W)`` it will pass, in all.

        A hint, not a promise: a resumed or stopped run passes fewer, and calls may come in
        any order and batching. This default ignores it; a method may use it to choose how it
        runs (learned methods' ``backend=auto`` compiles the network for a window size it
        will see often enough).

        Args:
            shapes: ``{(H, W): count}``, counts > 0.
        """
        del shapes

    def __repr__(self) -> str:
        arguments = ", ".join(f"{key}={value!r}" for key, value in self.params.items())
        return f"{type(self).__name__}({arguments})"
