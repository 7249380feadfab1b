"""The plugin manager: built-ins, entry points, broken, duplicate, disabled, misspelled hooks."""

from __future__ import annotations

import logging
import subprocess
import sys

import pytest

import inpaint_core
from inpaint_core import plugins
from inpaint_core.errors import PluginError, UnknownMethodError

BUILT_INS = {"telea", "navier-stokes", "biharmonic", "push-pull", "telea-pushpull", "exemplar",
             "edge-gan", "context-encoder",
             "partial-conv-unet", "pix2pix", "glcic", "deepfill-v2", "lama"}
LEARNED = {"edge-gan": "edge_gan", "context-encoder": "context_encoder", "pix2pix": "pix2pix",
           "partial-conv-unet": "partial_conv_unet", "glcic": "glcic",
           "deepfill-v2": "deepfill_v2", "lama": "lama"}

DUPLICATE_TELEA = """
    from inpaint_core import hookimpl
    from inpaint_methods.classical import Telea

    class AnotherTelea(Telea):
        pass

    @hookimpl
    def register_inpaint_methods(register):
        register(AnotherTelea)
"""


def method_names() -> set[str]:
    return {info.name for info in inpaint_core.list_methods()}


def test_built_ins_register_through_the_hook() -> None:
    registry = plugins.get_registry()
    assert set(registry.methods) >= BUILT_INS
    owners = {name: registry.plugin_of[name] for name in BUILT_INS}
    for name, module in LEARNED.items():  # one module per learned method
        assert owners.pop(name) == f"inpaint_methods.{module}"
    assert set(owners.values()) == {"inpaint_methods.classical"}
    for module in plugins.DEFAULT_PLUGINS:
        assert registry.manager.get_plugin(module) is not None


def test_registry_is_built_once_lazily() -> None:
    assert plugins._registry is None  # the autouse fixture reset it: nothing loaded yet
    first = plugins.get_registry()
    assert plugins.get_registry() is first


def test_entry_point_plugin_is_discovered(example_plugin) -> None:
    assert "ring-mean" in method_names()
    assert inpaint_core.method_plugin("ring-mean") == "example"
    assert inpaint_core.get_method("ring-mean").info.family.value == "other"


def test_broken_plugin_is_logged_and_skipped(make_plugin, example_plugin, caplog) -> None:
    make_plugin("broken", "raise ImportError('missing dependency: frobnicate')\n")
    with caplog.at_level(logging.ERROR, logger="inpaint_core.plugins"):
        names = method_names()
    assert BUILT_INS | {"ring-mean"} <= names
    assert "plugin 'broken' failed to import" in caplog.text
    assert "frobnicate" in caplog.text
    assert "frobnicate" in plugins.get_registry().failed["broken"]


def test_duplicate_method_names_both_plugins(make_plugin, caplog) -> None:
    # Issue 23: the clash disables only the third-party plugin's method, with a warning (it
    # was an error that disabled every command).
    make_plugin("copycat", DUPLICATE_TELEA)
    with caplog.at_level(logging.WARNING, logger="inpaint_core.plugins"):
        registry = plugins.get_registry()
    assert registry.plugin_of["telea"] == "inpaint_methods.classical"
    assert method_names() >= BUILT_INS
    message = registry.clashes["telea"]
    assert message in caplog.text  # a warning
    assert "'telea'" in message
    assert "'inpaint_methods.classical'" in message and "'copycat'" in message
    assert "INPAINT_DISABLE_PLUGINS=copycat" in message


def test_disabled_plugins_are_not_loaded(make_plugin, example_plugin, monkeypatch) -> None:
    make_plugin("copycat", DUPLICATE_TELEA)
    monkeypatch.setenv("INPAINT_DISABLE_PLUGINS", "copycat, example")
    names = method_names()
    assert "ring-mean" not in names
    assert names >= BUILT_INS
    assert plugins.get_registry().manager.get_plugin("copycat") is None


def test_built_ins_can_be_disabled(monkeypatch) -> None:
    from inpaint_core.plugins import DEFAULT_PLUGINS

    monkeypatch.setenv("INPAINT_DISABLE_PLUGINS", ", ".join(DEFAULT_PLUGINS))
    assert not BUILT_INS & method_names()
    with pytest.raises(UnknownMethodError, match="every plugin is disabled"):
        inpaint_core.get_method("telea")


def test_misspelled_hook_is_caught(make_plugin) -> None:
    make_plugin(
        "typo",
        """
        from inpaint_core import hookimpl

        @hookimpl
        def register_inpaint_method(register):
            pass
        """,
    )
    with pytest.raises(PluginError) as raised:
        plugins.get_registry()
    message = str(raised.value)
    assert "'typo'" in message and "register_inpaint_method" in message
    assert "known hooks: register_inpaint_methods" in message


def test_hook_with_unknown_argument_is_rejected(make_plugin) -> None:
    make_plugin(
        "badargs",
        """
        from inpaint_core import hookimpl

        @hookimpl
        def register_inpaint_methods(register, colour):
            pass
        """,
    )
    with pytest.raises(PluginError, match=r"plugin 'badargs' is invalid.*colour"):
        plugins.get_registry()


def test_registering_a_non_method_is_rejected(make_plugin) -> None:
    make_plugin(
        "notamethod",
        """
        from inpaint_core import hookimpl

        class Thing:
            pass

        @hookimpl
        def register_inpaint_methods(register):
            register(Thing)
        """,
    )
    with pytest.raises(PluginError, match=r"'notamethod' registered .*Thing.*not a subclass"):
        plugins.get_registry()


def test_cli_lists_and_runs_the_installed_plugin(example_plugin, samples, tmp_path) -> None:
    listing = subprocess.run(
        [sys.executable, "-m", "inpaint_core.cli", "methods"],
        capture_output=True, text=True, check=True,
    )
    assert "ring-mean" in listing.stdout and "other" in listing.stdout
    from inpaint_core.io import read_image, read_mask

    output = tmp_path / "restored.png"
    subprocess.run(
        [
            sys.executable, "-m", "inpaint_core.cli", "run",
            str(samples / "astronaut_damaged.png"),
            str(samples / "astronaut_mask.png"),
            "--method", "ring-mean", "--param", "ring=2", "--output", str(output),
        ],
        capture_output=True, text=True, check=True,
    )
    damaged = read_image(samples / "astronaut_damaged.png")
    restored = read_image(output)
    mask = read_mask(samples / "astronaut_mask.png") != 0
    assert (restored[~mask] == damaged[~mask]).all()
    assert (restored[mask] != damaged[mask]).any()

