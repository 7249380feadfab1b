"""pyproject's explicit package list names every package of the core, so a wheel holds them."""

from __future__ import annotations

from pathlib import Path

import tomllib

ROOT = Path(__file__).resolve().parents[1]


def test_every_core_package_is_listed_in_pyproject() -> None:
    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(setuptools["packages"])
    core = ROOT / "core"
    found = {
        init.parent.relative_to(core).as_posix().replace("/", ".")
        for init in core.rglob("__init__.py")
    }
    assert found - listed == set(), "packages missing from pyproject's list"
    assert {name for name in listed if name.startswith("inpaint_core")} == found
