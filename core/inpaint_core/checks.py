"""Checks shared by config dataclasses: each raises :class:`ParameterError` naming the value."""

from __future__ import annotations

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


def parse_choice(kind: type[E], value: object, name: str) -> E:
    """The member of ``kind`` whose value is ``value``, or ``unknown NAME ...; valid: ...``."""
    try:
        return kind(value)
    except ValueError:
        valid = ", ".join(str(member.value) for member in kind)
        raise ParameterError(f"unknown {name} {value!r}; valid: {valid}") from None
