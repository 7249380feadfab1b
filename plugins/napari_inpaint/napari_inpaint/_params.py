"""magicgui widgets generated from a method's parameter schema (``MethodInfo.parameters``).

A third-party method gets its inputs here with no widget code of its own: each
:class:`~inpaint_core.Parameter` type maps to one widget, with its bounds, choices, default
and help text (as the tooltip). A learned method's ``weights`` gets the weights picker
(:class:`~napari_inpaint._weights.WeightsPicker`: shipped, published or a file) instead of a
free path field.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

from magicgui import widgets

from inpaint_core.method import MethodInfo, Parameter, ParamType
from napari_inpaint._weights import WeightsPicker

#: Parameters the dock widget sets itself (its device picker), so they get no input here.
OWN_PARAMETERS = frozenset({"device"})


def _float_step(parameter: Parameter) -> float:
    """A spin-box step from the schema: a power of ten near a hundredth of the range (bounded),
    fine enough for the default and the bounds, at most 0.1."""
    values = [parameter.default, parameter.minimum, parameter.maximum]
    finest = 0.1
    if parameter.minimum is not None and parameter.maximum is not None:
        span = float(parameter.maximum) - float(parameter.minimum)
        if span > 0 and math.isfinite(span):
            finest = min(finest, 10.0 ** round(math.log10(span / 100)))
    for value in values:
        if value is not None and value != 0 and math.isfinite(value):
            finest = min(finest, 10.0 ** math.floor(math.log10(abs(value))))
    return finest


def _open_bound(default: float | None) -> float:
    """The spin-box limit of an unbounded side: 1000 x the default's size (at least 1000),
    not a float's range."""
    size = abs(float(default)) if default else 1.0
    return float(10 ** math.ceil(math.log10(max(size, 1.0) * 1000)))


def parameter_widget(parameter: Parameter) -> widgets.ValueWidget:
    """The magicgui input for one parameter, named after it, its help text as the tooltip."""
    common: dict[str, Any] = {"name": parameter.name, "label": parameter.name,
                              "tooltip": parameter.help}
    kind = parameter.type
    if kind is ParamType.BOOL:
        return widgets.CheckBox(value=bool(parameter.default), **common)
    if kind is ParamType.INT:
        reach = int(_open_bound(parameter.default))
        low = -reach if parameter.minimum is None else int(parameter.minimum)
        high = reach if parameter.maximum is None else int(parameter.maximum)
        return widgets.SpinBox(value=int(parameter.default), min=low, max=high, **common)
    if kind is ParamType.FLOAT:
        reach = _open_bound(parameter.default)
        low = -reach if parameter.minimum is None else float(parameter.minimum)
        high = reach if parameter.maximum is None else float(parameter.maximum)
        return widgets.FloatSpinBox(
            value=float(parameter.default), min=low, max=high, step=_float_step(parameter),
            **common,
        )
    if kind is ParamType.CHOICE:
        return widgets.ComboBox(value=parameter.default, choices=parameter.choices, **common)
    if kind is ParamType.PATH:
        default = "" if parameter.default is None else str(parameter.default)
        edit = widgets.FileEdit(value=default, mode="r", **common)
        edit.line_edit.native.setPlaceholderText("optional: a file")
        return edit
    line = widgets.LineEdit(value=str(parameter.default), **common)
    line.native.setPlaceholderText(parameter.help or parameter.name)
    return line


def parameter_widgets(
    info: MethodInfo, get_weights: Callable[[str], None] | None = None
) -> list[widgets.Widget]:
    """One input per parameter of the method, except :data:`OWN_PARAMETERS`; a learned
    method's ``weights`` is a :class:`WeightsPicker` whose "Get weights…" calls
    ``get_weights(catalogue_name)``."""
    inputs: list[widgets.Widget] = []
    for parameter in info.parameters:
        if parameter.name in OWN_PARAMETERS:
            continue
        if info.learned and parameter.name == "weights" and parameter.type is ParamType.PATH:
            inputs.append(WeightsPicker(info.name, get_weights, tooltip=parameter.help))
        else:
            inputs.append(parameter_widget(parameter))
    return inputs


def read_value(parameter: Parameter, widget: widgets.Widget) -> Any:
    """The widget's value in the parameter's terms (an empty path is "unset": None; the
    weights picker gives None, a catalogue name or a path)."""
    if isinstance(widget, WeightsPicker):
        return widget.parameter_value()
    value = widget.value  # type: ignore[attr-defined]
    if parameter.type is ParamType.PATH:
        text = "" if value is None else str(value)
        return None if text in ("", ".") else Path(text)
    return value


def read_values(info: MethodInfo, inputs: list[widgets.Widget]) -> dict[str, Any]:
    """``{name: value}`` of the inputs, for ``info.validate_params``; unset paths are left out."""
    by_name = {widget.name: widget for widget in inputs}
    values: dict[str, Any] = {}
    for parameter in info.parameters:
        if parameter.name in by_name:
            value = read_value(parameter, by_name[parameter.name])
            if value is not None or parameter.type is not ParamType.PATH:
                values[parameter.name] = value
    return values
