"""Checks shared by config dataclasses: each raises :class:`ParameterError` naming the value."""

from __future__ import annotations

import math
from enum import Enum
from typing import Any, TypeVar

from inpaint_core.errors import ParameterError

E = TypeVar("E", bound=Enum)


def require_ints(config: Any, names: tuple[str, ...], minimum: int = 1) -> None:
    """Raise ``name=value must be an integer >= minimum`` for the first field that is not."""
    for name in names:
        value = getattr(config, name)
        if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
            raise ParameterError(f"{name}={value!r} must be an integer >= {minimum}")


def require_weights(config: Any, names: tuple[str, ...]) -> None:
    """Raise ``name=value must be a finite number >= 0`` for the first field that is not (loss
    weights)."""
    for name in names:
        value = getattr(config, name)
        number = isinstance(value, int | float) and not isinstance(value, bool)
        if not (number and math.isfinite(value) and value >= 0):
            raise ParameterError(f"{name}={value!r} must be a finite number >= 0")


def require_fractions(config: Any, names: tuple[str, ...]) -> None:
    """Raise ``name=value must lie in [0, 1)`` for the first field that does not (Adam betas,
    dropout)."""
    for name in names:
        value = getattr(config, name)
        if not 0.0 <= value < 1.0:
            raise ParameterError(f"{name}={value!r} must lie in [0, 1)")


def parse_choice(kind: type[E], value: object, name: str) -> E:
    """The member of ``kind`` whose value is ``value``, or ``unknown NAME ...; valid: ...``."""
    try:
        return kind(value)
    except ValueError:
        valid = ", ".join(str(member.value) for member in kind)
        raise ParameterError(f"unknown {name} {value!r}; valid: {valid}") from None
