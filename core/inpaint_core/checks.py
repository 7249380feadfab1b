"""Checks shared by config dataclasses: each raises :class:`ParameterError` naming the value.

A config's ``__post_init__`` reads as a list of rules: :func:`parse_fields` turns texts into
enum members, :func:`require_ints`, :func:`require_positive`, :func:`require_weights` and
:func:`require_fractions` check numbers, and :func:`require_fixed` refuses the options a
published architecture does not have.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from enum import Enum
from typing import Any, TypeVar

from inpaint_core.errors import InvalidInputError, ParameterError

E = TypeVar("E", bound=Enum)

#: How :func:`parse_fields` parses one field: an enum class (any member), a tuple of members
#: of one enum (only those), or a function of the value that raises InvalidInputError or
#: ParameterError on a bad one.
FieldParser = type[Enum] | tuple[Enum, ...] | Callable[[Any], Any]


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


def parse_choice(
    kind: type[E], value: object, name: str, allowed: tuple[E, ...] | None = None
) -> E:
    """The member of ``kind`` whose value is ``value``, or ``unknown NAME ...; valid: ...``.

    ``allowed`` limits the valid members (a method that has only some of a shared enum's).
    """
    members = tuple(kind) if allowed is None else allowed
    try:
        member = kind(value)
    except ValueError:
        member = None
    if member not in members:
        valid = ", ".join(str(choice.value) for choice in members)
        raise ParameterError(f"unknown {name} {_shown(value)!r}; valid: {valid}")
    return member  # type: ignore[return-value]


def _shown(value: object) -> object:
    """An enum member by its value, anything else as is (for messages)."""
    return value.value if isinstance(value, Enum) else value


def parse_fields(config: Any, **parsers: FieldParser) -> None:
    """Replace each named field of the frozen dataclass ``config`` by its parsed value.

    Fields are parsed in the order given; the first bad one raises.

    Args:
        config: a frozen dataclass instance (in its ``__post_init__``).
        parsers: field name -> :data:`FieldParser`.

    Raises:
        ParameterError: ``unknown NAME VALUE; valid: ...`` for an enum field, or the parser's
            own message (an :class:`InvalidInputError` is re-raised as a ParameterError).
    """
    for name, parser in parsers.items():
        value = getattr(config, name)
        try:
            if isinstance(parser, tuple):
                parsed: Any = parse_choice(type(parser[0]), value, name, allowed=parser)
            elif isinstance(parser, type) and issubclass(parser, Enum):
                parsed = parse_choice(parser, value, name)
            else:
                parsed = parser(value)
        except InvalidInputError as error:
            raise ParameterError(str(error)) from None
        object.__setattr__(config, name, parsed)


def require_positive(config: Any, names: tuple[str, ...]) -> None:
    """Raise for the first field that is not a finite number > 0 (learning rates, scales):
    ``name=value must be > 0``, or ``... must be a finite number > 0`` for NaN, infinities and
    non-numbers."""
    for name in names:
        value = getattr(config, name)
        number = isinstance(value, int | float) and not isinstance(value, bool)
        if not (number and math.isfinite(value)):
            raise ParameterError(f"{name}={value!r} must be a finite number > 0")
        if not value > 0:
            raise ParameterError(f"{name}={value!r} must be > 0")


def require_fixed(
    config: Any, architecture: Enum, fixed: Mapping[str, object], source: str
) -> None:
    """Refuse the options a published architecture fixes (no silent defaults).

    Args:
        config: the config dataclass; ``getattr(config, name)`` is compared with each value.
        architecture: the member naming the published architecture (for the message).
        fixed: field name -> the only value that architecture has.
        source: whose architecture it is, e.g. ``"OpenMMLab's generator"``.

    Raises:
        ParameterError: ``NAME=VALUE does not exist in architecture='ARCH': SOURCE takes
            NAME=NEEDED ..., not NAME=VALUE; use architecture='lite' to change it``.
    """
    takes = " and ".join(f"{key}={_shown(needed)!r}" for key, needed in fixed.items())
    for name, needed in fixed.items():
        value = getattr(config, name)
        if value != needed:
            shown = f"{name}={_shown(value)!r}"
            raise ParameterError(
                f"{shown} does not exist in architecture={_shown(architecture)!r}: {source} "
                f"takes {takes}, not {shown}; use architecture='lite' to change it"
            )
