"""The method model: parameter schema, MethodInfo validation, defaults and parsing."""

from __future__ import annotations

from pathlib import Path

import pytest

from inpaint_core import Family, MethodInfo, Parameter, ParamType
from inpaint_core.errors import ParameterError, PluginError

RADIUS = Parameter("radius", ParamType.INT, 5, "radius", minimum=1, maximum=100)
STRENGTH = Parameter("strength", ParamType.FLOAT, 0.5, "strength", minimum=0.0, maximum=1.0)
MODE = Parameter("mode", ParamType.CHOICE, "fast", "mode", choices=("fast", "best"))
FLAG = Parameter("flag", ParamType.BOOL, True, "flag")
WEIGHTS = Parameter("weights", ParamType.PATH, None, "weights file")
INFO = MethodInfo(
    name="demo-method",
    family="cgan",
    summary="s",
    reference="r",
    parameters=(RADIUS, STRENGTH, MODE, FLAG, WEIGHTS),
)


def test_defaults_fill_missing_parameters() -> None:
    values = INFO.validate_params({"radius": 7})
    assert values == {
        "radius": 7, "strength": 0.5, "mode": "fast", "flag": True, "weights": None,
    }
    assert INFO.family is Family.CGAN


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ({"radius": 0}, r"method 'demo-method': radius=0 is out of range \[1, 100\]"),
        ({"radius": 2.5}, r"radius=2\.5 must be an integer"),
        ({"radius": True}, r"radius=True must be an integer"),
        ({"strength": float("nan")}, r"strength=nan must be finite"),
        ({"strength": 1.5}, r"strength=1\.5 is out of range \[0\.0, 1\.0\]"),
        ({"strength": "high"}, r"strength='high' must be a number"),
        ({"mode": "slow"}, r"mode='slow' is not one of: fast, best"),
        ({"flag": 1}, r"flag=1 must be true or false"),
        ({"weights": 3}, r"weights=3 must be a file path"),
        ({"radious": 3}, r"has no parameter 'radious'; its parameters: radius, strength, mode"),
    ],
)
def test_bad_values_name_the_parameter(given: dict, message: str) -> None:
    with pytest.raises(ParameterError, match=message):
        INFO.validate_params(given)


def test_parse_converts_cli_text() -> None:
    values = INFO.parse_params(
        {"radius": "9", "strength": "0.25", "mode": "best", "flag": "no", "weights": "w.st"}
    )
    assert values["radius"] == 9 and values["strength"] == 0.25
    assert values["mode"] == "best" and values["flag"] is False
    assert values["weights"] == Path("w.st")


@pytest.mark.parametrize(
    ("texts", "message"),
    [
        ({"radius": "five"}, r"radius='five' must be int"),
        ({"radius": "500"}, r"radius=500 is out of range"),
        ({"flag": "maybe"}, r"flag='maybe' must be true or false"),
        ({"strength": "x"}, r"strength='x' must be float"),
    ],
)
def test_parse_rejects_bad_text(texts: dict, message: str) -> None:
    with pytest.raises(ParameterError, match=message):
        INFO.parse_params(texts)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"name": "Bad Name"}, r"method name 'Bad Name' must be lowercase words"),
        ({"name": "trailing-"}, r"method name 'trailing-'"),
        ({"family": "gan"}, r"unknown method family 'gan'; valid: classical, context_encoder"),
        ({"parameters": (RADIUS, RADIUS)}, r"declares parameters twice: \['radius'\]"),
        ({"pad_multiple": 0}, r"pad_multiple must be >= 1"),
        ({"context_margin": -1}, r"context_margin must be >= 0"),
    ],
)
def test_method_info_rejects_bad_declarations(kwargs: dict, message: str) -> None:
    fields = {"name": "ok", "family": "classical", "summary": "s", "reference": "r"}
    with pytest.raises(PluginError, match=message):
        MethodInfo(**{**fields, **kwargs})


def test_parameter_rejects_a_bad_default_and_an_empty_choice() -> None:
    with pytest.raises(PluginError, match="default of parameter 'radius' is invalid"):
        Parameter("radius", ParamType.INT, 0, "r", minimum=1)
    with pytest.raises(PluginError, match="choice parameter 'mode' declares no choices"):
        Parameter("mode", ParamType.CHOICE, "a", "m")


def test_to_dict_is_json_ready() -> None:
    import json

    described = json.loads(json.dumps(INFO.to_dict()))
    assert described["family"] == "cgan"
    assert described["parameters"][2]["choices"] == ["fast", "best"]
    assert described["parameters"][0] == {
        "name": "radius", "type": "int", "default": 5, "help": "radius",
        "minimum": 1, "maximum": 100, "choices": [],
    }
