"""Shared fixtures: real plugin installs (pip for the example, dist-info for broken ones)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

from inpaint_core.plugins import reset_registry

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE_PLUGIN = ROOT / "examples" / "inpaint-example-plugin"


@pytest.fixture(autouse=True)
def fresh_registry() -> Iterator[None]:
    """Every test starts and ends with no cached plugins, so sys.path changes take effect."""
    reset_registry()
    yield
    reset_registry()


@pytest.fixture(scope="session")
def example_plugin_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Install the example plugin with pip into a private folder, as a user would install it."""
    target = tmp_path_factory.mktemp("example-plugin-site")
    subprocess.run(
        [
            sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
            "--no-build-isolation", "--disable-pip-version-check",
            "--target", str(target), str(EXAMPLE_PLUGIN),
        ],
        check=True,
    )
    return target


@pytest.fixture
def example_plugin(example_plugin_site: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Put the pip-installed example plugin on sys.path (and PYTHONPATH for subprocesses)."""
    monkeypatch.syspath_prepend(str(example_plugin_site))
    monkeypatch.setenv("PYTHONPATH", str(example_plugin_site))
    return example_plugin_site


@pytest.fixture
def make_plugin(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Callable[[str, str], Path]:
    """Install a one-module plugin distribution: ``make_plugin(entry_name, module_source)``.

    Writes the module and a ``.dist-info`` folder whose ``entry_points.txt`` declares it in
    the ``inpaint_core`` group, exactly as pip would, and puts the folder on sys.path.
    """
    site = tmp_path / "site"
    site.mkdir()
    monkeypatch.syspath_prepend(str(site))
    created: list[str] = []

    def make(entry_name: str, source: str) -> Path:
        module = f"plugin_{entry_name.replace('-', '_')}_{len(created)}"
        (site / f"{module}.py").write_text(textwrap.dedent(source))
        info = site / f"{module}-0.1.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {module}\nVersion: 0.1\n")
        (info / "entry_points.txt").write_text(f"[inpaint_core]\n{entry_name} = {module}\n")
        created.append(module)
        return site

    yield make
    for module in created:
        sys.modules.pop(module, None)


@pytest.fixture
def samples() -> Path:
    """The bundled ``sample_data`` folder."""
    return ROOT / "sample_data"


@pytest.fixture
def rgb_image() -> np.ndarray:
    """uint8 ``(40, 56, 3)``: smooth colour gradients (easy to fill, easy to check)."""
    rows, columns = np.mgrid[0:40, 0:56].astype(np.float64)
    image = np.stack([rows / 39.0, columns / 55.0, 0.5 + 0.3 * np.sin(columns / 6.0)], axis=2)
    return np.rint(image * 255).astype(np.uint8)


@pytest.fixture
def hole_mask() -> np.ndarray:
    """bool ``(40, 56)``: a 10x12 block inside the image."""
    mask = np.zeros((40, 56), dtype=bool)
    mask[15:25, 20:32] = True
    return mask


@pytest.fixture
def one_torch_thread() -> Iterator[None]:
    """Tiny tensors: extra torch threads only add overhead (and fight other work for cores)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
