"""What the published-weights tests share: fixtures' make scripts, the CLI round trip, the
comparison with a reference output, and a pickled payload that would run a command.

Each ``tests/methods/test_*`` file that proves a converter equal to its reference imports these
(``from ..reference import ...``, as the download tests import ``tests/http_server.py``) and
keeps its own specifics: which fixture, which cases, which keys, any tighter bound.
"""

from __future__ import annotations

import importlib.util
import io
import os
import pickle
import zipfile
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
import torch
from PIL import Image

from inpaint_core.cli import main

#: The task's bounds against a reference output, in grey levels over the hole (uint8).
MAX_DIFFERENCE, MEAN_DIFFERENCE = 2, 0.6


def load_maker(fixture: Path, name: str) -> ModuleType:
    """Import ``fixture/make_fixture.py`` as a module called ``name`` (it is no package)."""
    spec = importlib.util.spec_from_file_location(name, fixture / "make_fixture.py")
    assert spec is not None and spec.loader is not None, fixture
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def cli(*argv: object) -> int:
    """``inpaint ARGV...`` in-process; every argument is passed as ``str``. Returns the code."""
    return main([str(arg) for arg in argv])


def read_rgb(path: Path) -> np.ndarray:
    """The picture at ``path`` as an ``(H, W, 3)`` uint8 array."""
    return np.asarray(Image.open(path).convert("RGB"))


def read_hole(path: Path) -> np.ndarray:
    """The mask at ``path`` as an ``(H, W)`` bool array, True where it is non-zero (grey)."""
    return np.asarray(Image.open(path).convert("L")) > 0


def import_published(format_name: str, source: Path, output: Path) -> Path:
    """``inpaint weights import FORMAT SOURCE --output OUTPUT``, which must succeed."""
    assert cli("weights", "import", format_name, source, "--output", output) == 0
    return output


def run_method(image: Path, mask: Path, method: str, weights: Path | str, output: Path,
               *options: str) -> np.ndarray:
    """``inpaint run`` on the CPU with ``--weights`` a file or a catalogue name, which must
    succeed; returns the written picture as read (``(H, W, C)``, the input's dtype)."""
    assert cli("run", image, mask, "--method", method, "--weights", weights, "--device", "cpu",
               "--output", output, *options) == 0
    return np.asarray(Image.open(output))


def hole_difference(result: np.ndarray, expected: np.ndarray, image: np.ndarray,
                    hole: np.ndarray) -> np.ndarray:
    """``|result - expected|`` over the hole, as int64, after checking that the three pictures
    (``(H, W, C)`` uint8) have one shape and that ``result`` kept every pixel outside ``hole``
    (``(H, W)`` bool) byte for byte."""
    assert result.shape == expected.shape == image.shape, (result.shape, expected.shape,
                                                           image.shape)
    assert result.dtype == np.uint8, result.dtype
    assert np.array_equal(result[~hole], image[~hole]), "pixels outside the hole changed"
    return np.abs(result.astype(np.int64) - expected.astype(np.int64))[hole]


def assert_within_bounds(difference: np.ndarray, max_difference: int = MAX_DIFFERENCE,
                         mean_difference: float = MEAN_DIFFERENCE) -> None:
    """The hole's grey-level differences (from :func:`hole_difference`) meet the bounds."""
    assert difference.max() <= max_difference and difference.mean() <= mean_difference, (
        f"max {difference.max()}, mean {difference.mean():.4f} grey levels over the hole"
    )


class RunsCommand:
    """Pickles as ``os.system(command)``: loading it freely would run the command."""

    def __init__(self, command: str) -> None:
        self.command = command

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.system, (self.command,))


def touches(marker: Path) -> RunsCommand:
    """A payload that, unpickled freely, creates the file ``marker``."""
    return RunsCommand(f"touch {marker}")


class _FreeUnpickler(pickle.Unpickler):
    """Python's own unpickler, which imports and calls whatever a pickle names (what a free
    ``torch.load`` does), except torch's own tensor rebuilders and storages: tensors come
    back as None, every other global is imported and called as the pickle says."""

    def persistent_load(self, pid: object) -> None:
        return None

    def find_class(self, module: str, name: str) -> object:
        if module == "torch" or module.startswith("torch."):
            return lambda *args, **kwargs: None
        return super().find_class(module, name)


def _unpickle_freely(path: Path) -> None:
    """Unpickle every pickle of a ``torch.save`` file as a free load would: a zip archive's
    ``data.pkl``, or the legacy layout's magic, protocol, system info and object."""
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            (name,) = [n for n in archive.namelist() if n.endswith("/data.pkl")]
            _FreeUnpickler(io.BytesIO(archive.read(name))).load()
        return
    with open(path, "rb") as handle:
        for _ in range(4):
            _FreeUnpickler(handle).load()


def assert_payload_runs(path: Path, marker: Path) -> None:
    """The checkpoint at ``path`` really runs its payload when unpickled freely (it creates
    ``marker``, which is then removed): a test that it is never run proves something. The
    file's pickles go through Python's plain unpickler, never ``torch.load``."""
    _unpickle_freely(path)
    assert marker.exists(), f"unpickling {path} freely did not create {marker}"
    marker.unlink()


def refused_import(format_name: str, source: Path, output: Path,
                   capsys: pytest.CaptureFixture[str]) -> str:
    """``inpaint weights import FORMAT SOURCE --output OUTPUT`` must exit 2 and write nothing;
    returns what it wrote to stderr (the message a test checks for the keys it names)."""
    capsys.readouterr()  # what earlier steps wrote is not this command's message
    assert cli("weights", "import", format_name, source, "--output", output) == 2
    assert not output.exists(), f"a refused import wrote {output}"
    return capsys.readouterr().err


def forbid_torchscript_loading(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make ``torch.jit.load`` fail for the rest of the test: a converter that reads a
    TorchScript archive must read its tensors without loading (running) its code."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("the TorchScript archive must not be loaded as code")

    monkeypatch.setattr(torch.jit, "load", refuse)
