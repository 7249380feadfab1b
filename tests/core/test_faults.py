"""Bad inputs and faults (issue 23): every one ends in a clear error or a resumable output.

Methods that break the output contract (None, NaN, a wrong shape or dtype, values out of
range, a RuntimeError) are refused before anything is written, whoever calls them.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import zarr

from inpaint_core import plugins
from inpaint_core.api import inpaint, inpaint_batch
from inpaint_core.cli import main
from inpaint_core.errors import InpaintError, MethodFailedError
from inpaint_core.method import InpaintMethod, MethodInfo
from inpaint_core.tiling.engine import restore_scan

SIDE = 512
CHUNK = 128


def _info(name: str) -> MethodInfo:
    return MethodInfo(name=name, family="other", summary="a faulty test method",
                      reference="test", preferred_tile=128, context_margin=8)  # fmt: skip


class ReturnsNone(InpaintMethod):
    info = _info("returns-none")

    def run(self, image, mask, rng):  # type: ignore[no-untyped-def]
        return None


class ReturnsNaN(InpaintMethod):
    info = _info("returns-nan")

    def run(self, image, mask, rng):  # type: ignore[no-untyped-def]
        out = image.copy()
        out[mask] = np.nan
        return out


class WrongShape(InpaintMethod):
    info = _info("wrong-shape")

    def run(self, image, mask, rng):  # type: ignore[no-untyped-def]
        return image[1:]


class WrongDtype(InpaintMethod):
    info = _info("wrong-dtype")

    def run(self, image, mask, rng):  # type: ignore[no-untyped-def]
        return np.rint(image * 255).astype(np.uint8)


class OutOfRange(InpaintMethod):
    info = _info("out-of-range")

    def run(self, image, mask, rng):  # type: ignore[no-untyped-def]
        out = image.copy()
        out[mask] = 5.0
        return out


class Raises(InpaintMethod):
    info = _info("raises")

    def run(self, image, mask, rng):  # type: ignore[no-untyped-def]
        raise RuntimeError("CUDA error: device-side assert triggered")


FAULTY = {
    ReturnsNone: "returned None",
    ReturnsNaN: "NaN or infinite",
    WrongShape: "returned shape",
    WrongDtype: "returned dtype uint8",
    OutOfRange: "results must lie in [0, 1]",
    Raises: "device-side assert",
}


def make_scan(folder: Path, side: int = SIDE) -> tuple[Path, Path, np.ndarray]:
    """A ``side`` px RGB uint8 zarr scan chunked ``CHUNK`` and a zarr mask with a few holes."""
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (side, side, 3), dtype=np.uint8)
    mask = np.zeros((side, side), dtype=np.uint8)
    for row, col in [(40, 40), (200, 300), (400, 100), (300, 450)]:
        mask[row : row + 12, col : col + 20] = 1
    scan = zarr.create_array(str(folder / "scan.zarr"), shape=image.shape,
                             chunks=(CHUNK, CHUNK, 3), dtype=np.uint8)  # fmt: skip
    scan[...] = image
    hole = zarr.create_array(str(folder / "mask.zarr"), shape=mask.shape,
                             chunks=(CHUNK, CHUNK), dtype=np.uint8)  # fmt: skip
    hole[...] = mask
    return folder / "scan.zarr", folder / "mask.zarr", image


@pytest.fixture
def registered() -> Iterator[None]:
    """The faulty methods registered as a third-party plugin would register them."""
    registry = plugins.get_registry()
    for method in FAULTY:
        registry.add(method, "faulty-plugin")
    yield
    plugins.reset_registry()


@pytest.mark.parametrize("method", list(FAULTY), ids=lambda m: m.info.name)
def test_a_faulty_method_is_refused_before_anything_is_written(
    method: type[InpaintMethod], tmp_path: Path, registered: None, capsys
) -> None:
    scan, mask, _ = make_scan(tmp_path)
    output = tmp_path / "out.zarr"
    code = main(["restore", str(scan), "--mask", str(mask), "--method", method.info.name,
                 "--output", str(output)])  # fmt: skip
    error = capsys.readouterr().err.splitlines()[-1]
    assert code == 2, error
    assert error.startswith("inpaint: error: ") and "Traceback" not in error
    assert FAULTY[method] in error and method.info.name in error
    assert "tile rows" in error  # the tile is named
    # Hole-free chunks are copied from the start: an output with chunks is kept and says so;
    # one that failed before its first chunk is removed.
    assert "--resume" in error if output.exists() else "--resume" not in error
    image = np.zeros((32, 32, 3), np.uint8)
    hole = np.zeros((32, 32), bool)
    hole[10:14, 10:14] = True
    for call in (lambda: inpaint(image, hole, method()),
                 lambda: inpaint_batch([image, image], [hole, hole], method())):  # fmt: skip
        with pytest.raises(InpaintError if method is not Raises else RuntimeError) as raised:
            call()
        assert FAULTY[method] in str(raised.value)


def test_a_faulty_method_in_the_python_restore_raises(tmp_path: Path) -> None:
    scan, mask, _ = make_scan(tmp_path)
    with pytest.raises(MethodFailedError, match="returned None"):
        restore_scan(scan, mask, ReturnsNone(), tmp_path / "out.zarr")
