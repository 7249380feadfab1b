"""Config dataclasses to and from JSON-ready dicts and ``key=value`` strings (torch-free).

A learned method's architecture and training settings are a frozen dataclass. Its sidecar
stores :func:`config_to_dict`; loading weights rebuilds it with :func:`config_from_dict`;
``inpaint train --option key=value`` goes through :func:`parse_options`.
"""

from __future__ import annotations

import dataclasses
import typing
from enum import Enum
from typing import Any

from inpaint_core.errors import InvalidWeightsError, ParameterError

__all__ = ["config_from_dict", "config_to_dict", "parse_options"]


def config_to_dict(config: Any) -> dict[str, Any]:
    """A config dataclass as a JSON-ready dict (enums by value, tuples as lists)."""
    out: dict[str, Any] = {}
    for field in dataclasses.fields(config):
        value = getattr(config, field.name)
        out[field.name] = value.value if isinstance(value, Enum) else value
        if isinstance(value, tuple):
            out[field.name] = list(value)
    return out


def _field_types(config_class: type) -> dict[str, Any]:
    hints = typing.get_type_hints(config_class)
    return {field.name: hints[field.name] for field in dataclasses.fields(config_class)}


def config_from_dict(config_class: type, data: dict[str, Any]) -> Any:
    """Rebuild a config dataclass from :func:`config_to_dict` output; unknown keys are errors."""
    types = _field_types(config_class)
    unknown = sorted(set(data) - set(types))
    if unknown:
        raise InvalidWeightsError(
            f"config keys {unknown} are unknown to {config_class.__name__} (valid: "
            f"{', '.join(types)}); the weights were made by another version or method"
        )
    values = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items()}
    return config_class(**values)


def parse_options(config_class: type, texts: dict[str, str], base: Any = None) -> Any:
    """Apply ``key=value`` strings (``inpaint train --option``) to a config dataclass.

    Values are converted by the field's type: int, float, bool (true/false/1/0/yes/no), str or
    an enum (by value). Unknown keys and bad values raise :class:`ParameterError` naming the
    valid keys or the expected type.
    """
    types = _field_types(config_class)
    values: dict[str, Any] = {}
    for key, text in texts.items():
        if key not in types:
            raise ParameterError(
                f"unknown option {key!r} for {config_class.__name__}; valid: {', '.join(types)}"
            )
        kind = types[key]
        try:
            if kind is bool:
                lowered = text.strip().lower()
                if lowered not in ("true", "false", "1", "0", "yes", "no"):
                    raise ValueError(text)
                values[key] = lowered in ("true", "1", "yes")
            elif (isinstance(kind, type) and issubclass(kind, Enum)) or kind in (int, float, str):
                values[key] = kind(text)
            else:
                raise ParameterError(f"option {key!r} cannot be set from the command line")
        except ParameterError:
            raise
        except ValueError:
            if isinstance(kind, type) and issubclass(kind, Enum):
                expected = "one of " + ", ".join(str(member.value) for member in kind)
            else:
                expected = getattr(kind, "__name__", str(kind))
            raise ParameterError(
                f"option {key}={text!r} is not valid; expected {expected}"
            ) from None
    if base is None:
        return config_class(**values)
    return dataclasses.replace(base, **values)
