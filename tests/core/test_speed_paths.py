"""The fast paths: classical work never imports torch, learned methods load on first use."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import zarr

import inpaint_core
from inpaint_core.io.store import level_array
from inpaint_core.lazy import LazyMethod
from inpaint_core.learned import LearnedMethod
from inpaint_core.plugins import get_registry
from inpaint_methods.learned_infos import LEARNED_PLUGINS


def torch_after(code: str) -> str:
    """Run ``code`` in a fresh interpreter; return 'torch' or 'no torch' by ``sys.modules``."""
    script = textwrap.dedent(code) + textwrap.dedent(
        """
        import sys
        print('torch' if 'torch' in sys.modules else 'no torch')
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip().splitlines()[-1]


def test_telea_through_the_api_never_imports_torch() -> None:
    code = """
        import numpy as np
        import inpaint_core
        image = np.full((40, 50, 3), 120, np.uint8)
        mask = np.zeros((40, 50), bool)
        mask[10:20, 10:30] = True
        out = inpaint_core.inpaint(image, mask, "telea")
        assert out.shape == image.shape and out.dtype == np.uint8
    """
    assert torch_after(code) == "no torch"


@pytest.mark.parametrize("argv", [["methods"], ["methods", "--json"], ["methods", "lama"]])
def test_methods_command_never_imports_torch(argv: list[str]) -> None:
    code = f"""
        from inpaint_core.cli import main
        assert main({argv!r}) == 0
    """
    assert torch_after(code) == "no torch"


def test_help_never_imports_torch() -> None:
    code = """
        from inpaint_core.cli import main
        try:
            main(["--help"])
        except SystemExit as exited:
            assert exited.code == 0
    """
    assert torch_after(code) == "no torch"


def test_restore_telea_never_imports_torch(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    scan = rng.integers(0, 256, (96, 128, 3), dtype=np.uint8)
    mask = np.zeros((96, 128), bool)
    mask[30:40, 20:90] = True
    zarr.create_array(tmp_path / "scan.zarr", data=scan, chunks=(64, 64, 3))
    zarr.create_array(tmp_path / "mask.zarr", data=mask, chunks=(64, 64))
    code = f"""
        from inpaint_core.cli import main
        argv = ["restore", {str(tmp_path / "scan.zarr")!r}, "--mask",
                {str(tmp_path / "mask.zarr")!r}, "-m", "telea", "-o",
                {str(tmp_path / "out.zarr")!r}]
        assert main(argv) == 0
    """
    assert torch_after(code) == "no torch"
    restored = level_array(zarr.open_group(str(tmp_path / "out.zarr"), mode="r"), "0")[...]
    assert np.array_equal(restored[~mask], scan[~mask])


def test_learned_methods_are_listed_by_info_and_loaded_on_lookup() -> None:
    registry = get_registry()
    for module, (class_name, info) in LEARNED_PLUGINS.items():
        stand_in = registry.methods[info.name]
        assert issubclass(stand_in, LazyMethod) and stand_in.info is info
        real = inpaint_core.get_method(info.name)
        assert real.__name__ == class_name and real.__module__ == module
        assert issubclass(real, LearnedMethod) and real.info is info
    assert {info.name for info in inpaint_core.list_methods()} >= {
        info.name for _, info in LEARNED_PLUGINS.values()
    }


@pytest.mark.parametrize(
    ("method", "flag"), [("telea", "INPAINT_TELEA"), ("navier-stokes", "INPAINT_NS")]
)
@pytest.mark.parametrize("layout", ["rgb", "grey", "rgba"])
def test_uint8_opencv_methods_equal_one_script_call(method: str, flag: str, layout: str) -> None:
    import cv2

    rng = np.random.default_rng(3)
    rgb = cv2.GaussianBlur(rng.integers(0, 256, (64, 80, 3), dtype=np.uint8), (9, 9), 3)
    mask = np.zeros((64, 80), bool)
    mask[20:30, 10:60] = True
    mask[40:44, 5:75] = True
    image = {"rgb": rgb, "grey": rgb[:, :, 1].copy(), "rgba": np.dstack([rgb, rgb[:, :, :1]])}
    source = image[layout]
    restored = inpaint_core.inpaint(source, mask, method, radius=4)
    colour = source[:, :, :3] if layout == "rgba" else source
    script = cv2.inpaint(np.ascontiguousarray(colour), mask.astype(np.uint8), 4, getattr(cv2, flag))
    assert np.array_equal(restored[..., :3] if layout == "rgba" else restored, script)
    assert np.array_equal(restored[~mask], source[~mask])
    # The 16-bit plane-by-plane path (uint16 and float inputs) stays within a few grey levels:
    # OpenCV's Telea adds a gradient term of up to ~1.4 levels of the working bit depth.
    wide = inpaint_core.inpaint(source.astype(np.uint16) * 257, mask, method, radius=4)
    difference = np.abs(np.rint(wide / 257.0) - restored)[mask]
    assert difference.mean() < 2.0 and difference.max() <= 8
