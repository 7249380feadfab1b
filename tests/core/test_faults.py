"""Bad inputs and faults (issue 23): every one ends in a clear error or a resumable output.

Methods that break the output contract (None, NaN, a wrong shape or dtype, values out of
range, a RuntimeError) are refused before anything is written, whoever calls them.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

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
                      reference="test", preferred_tile=128, context_margin=8)


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
    return (*write_scan(folder, image, mask), image)


def write_scan(folder: Path, image: np.ndarray, mask: np.ndarray) -> tuple[Path, Path]:
    """``folder/scan.zarr`` and ``folder/mask.zarr`` chunked ``CHUNK``, written from arrays."""
    for name, data in (("scan.zarr", image), ("mask.zarr", mask)):
        array = zarr.create_array(str(folder / name), shape=data.shape, dtype=data.dtype,
                                  chunks=(CHUNK, CHUNK, *data.shape[2:]))
        array[...] = data
    return folder / "scan.zarr", folder / "mask.zarr"


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
                 "--output", str(output)])
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
                 lambda: inpaint_batch([image, image], [hole, hole], method())):
        with pytest.raises(InpaintError if method is not Raises else RuntimeError) as raised:
            call()
        assert FAULTY[method] in str(raised.value)


def test_a_faulty_method_in_the_python_restore_raises(tmp_path: Path) -> None:
    scan, mask, _ = make_scan(tmp_path)
    with pytest.raises(MethodFailedError, match="returned None"):
        restore_scan(scan, mask, ReturnsNone(), tmp_path / "out.zarr")


# --- faults while writing: kills, interrupts, full and read-only disks, two writers --------

SLOW_SCRIPT = '''
import sys, time
import numpy as np
from inpaint_core.method import InpaintMethod, MethodInfo
from inpaint_core.tiling.engine import restore_scan

class SlowFill(InpaintMethod):
    info = MethodInfo(name="slow-fill", family="other", summary="s", reference="t",
                      preferred_tile=128, context_margin=8)

    def run(self, image, mask, rng):
        time.sleep(float(sys.argv[4]))
        out = image.copy()
        out[mask] = image[~mask].mean(axis=0)
        return out

restore_scan(sys.argv[1], sys.argv[2], SlowFill(), sys.argv[3], resume=len(sys.argv) > 5)
'''


def many_holes(folder: Path, side: int = 1024) -> tuple[Path, Path]:
    """A ``side`` px scan whose every other chunk holds a hole (tiles enough to kill a run
    between them)."""
    rng = np.random.default_rng(1)
    image = rng.integers(0, 256, (side, side, 3), dtype=np.uint8)
    mask = np.zeros((side, side), dtype=np.uint8)
    for row in range(20, side, CHUNK):
        for col in range(20 + (row // CHUNK % 2) * CHUNK, side, 2 * CHUNK):
            mask[row : row + 10, col : col + 14] = 1
    return write_scan(folder, image, mask)


def hashes(folder: Path) -> dict[str, str]:
    import hashlib

    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def marks(output: Path) -> int:
    folder = output / ".progress" / "c"
    return sum(1 for p in folder.rglob("*") if p.is_file()) if folder.is_dir() else 0


def slow_run(folder: Path, scan: Path, mask: Path, output: Path, delay: float,
             resume: bool = False) -> Any:
    import subprocess
    import sys

    script = folder / "slow.py"
    script.write_text(SLOW_SCRIPT)
    command = [sys.executable, str(script), str(scan), str(mask), str(output), str(delay)]
    return subprocess.Popen(command + (["resume"] if resume else []),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def wait_for(condition: Any, process: Any, seconds: float = 60) -> None:
    import time

    end = time.monotonic() + seconds
    while not condition():
        assert process.poll() is None, process.communicate()[1].decode()[-2000:]
        assert time.monotonic() < end, "timed out"
        time.sleep(0.01)


def test_kill_9_at_three_points_resumes_byte_identical_and_one_writer_at_a_time(
    tmp_path: Path,
) -> None:
    import os
    import signal

    from inpaint_core.io.guard import OutputLockedError

    scan, mask = many_holes(tmp_path)
    reference = tmp_path / "reference.zarr"
    finished = slow_run(tmp_path, scan, mask, reference, 0.0)
    assert finished.wait(120) == 0, finished.communicate()[1].decode()[-2000:]
    total = 64
    for number, point in enumerate((3, total // 2, total)):  # early, middle, after the last
        output = tmp_path / f"killed-{number}.zarr"
        process = slow_run(tmp_path, scan, mask, output, 0.05)
        wait_for(lambda output=output, point=point: marks(output) >= point, process)
        if number == 0:  # a second writer is refused while the first one lives
            with pytest.raises(OutputLockedError, match=f"process {process.pid}"):
                restore_scan(scan, mask, "telea", output, resume=True)
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
        resumed = slow_run(tmp_path, scan, mask, output, 0.0, resume=True)  # stale lock
        assert resumed.wait(120) == 0, resumed.communicate()[1].decode()[-2000:]
        assert hashes(output / "0") == hashes(reference / "0")
        assert zarr.open_group(str(output), mode="r").attrs["inpaint"]["complete"]
        assert not (output / ".inpaint.lock").exists()


def test_interrupt_at_start_leaves_nothing_and_a_rerun_works(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from inpaint_core.io import store

    scan, mask, _ = make_scan(tmp_path)
    output = tmp_path / "out.zarr"
    real = store.create_output

    def interrupted(*args: Any, **kwargs: Any) -> Any:
        real(*args, **kwargs)
        raise KeyboardInterrupt

    monkeypatch.setattr(store, "create_output", interrupted)
    with pytest.raises(KeyboardInterrupt):
        restore_scan(scan, mask, "telea", output)
    monkeypatch.undo()
    assert not output.exists() and not list(tmp_path.glob(".out.zarr*"))
    restore_scan(scan, mask, "telea", output)  # the same command, nothing deleted by hand
    reference = tmp_path / "reference.zarr"
    restore_scan(scan, mask, "telea", reference)
    assert hashes(output / "0") == hashes(reference / "0")


def test_a_failure_before_the_first_chunk_removes_the_output(tmp_path: Path) -> None:
    scan, _, _ = make_scan(tmp_path)
    everywhere = np.zeros((SIDE, SIDE), np.uint8)
    everywhere[::CHUNK, :] = 1  # a hole in every chunk: nothing is copied before the method
    for reason, method in (("returned None", ReturnsNone()), ("device-side", Raises())):
        output = tmp_path / "out.zarr"
        with pytest.raises(InpaintError, match=reason) as raised:
            restore_scan(scan, everywhere, method, output)
        assert not output.exists() and "--resume" not in str(raised.value)


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A tmpfs of 16 kB mounted for the test (root only), unmounted after."""
    import subprocess

    folder = tmp_path / "disk"
    folder.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16k", "tmpfs", str(folder)],
                             capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here (needs root): {mounted.stderr.decode()}")
    yield folder
    subprocess.run(["umount", "-l", str(folder)], check=False)


def _remount(folder: Path, options: str) -> None:
    import subprocess

    subprocess.run(["mount", "-o", f"remount,{options}", str(folder)], check=True)


def test_disk_full_at_start_and_mid_run_and_a_read_only_output(
    small_disk: Path, tmp_path: Path, capsys
) -> None:
    scan, mask, _ = make_scan(tmp_path)
    reference = tmp_path / "reference.zarr"
    restore_scan(scan, mask, "telea", reference)
    command = ["restore", str(scan), "--mask", str(mask), "--method", "telea", "--output"]
    output = small_disk / "out.zarr"
    assert main([*command, str(output)]) == 2  # full at start: the metadata does not fit
    error = capsys.readouterr().err.splitlines()[-1]
    assert error.startswith("inpaint: error: cannot write the output") and "No space" in error
    assert not output.exists() and not list(small_disk.iterdir())
    _remount(small_disk, "size=400k")  # room for the metadata and some chunks, not all
    assert main([*command, str(output)]) == 2
    error = capsys.readouterr().err.splitlines()[-1]
    assert "No space left on device" in error and "--resume" in error, error
    _remount(small_disk, "size=8m")
    assert main([*command, str(output), "--resume"]) == 0
    assert hashes(output / "0") == hashes(reference / "0")
    _remount(small_disk, "ro")
    assert main([*command, str(small_disk / "other.zarr")]) == 2
    error = capsys.readouterr().err.splitlines()[-1]
    assert error.startswith("inpaint: error: ") and "Read-only file system" in error


def test_a_corrupt_source_chunk_is_named_and_never_copied(tmp_path: Path, capsys) -> None:
    scan, mask, _ = make_scan(tmp_path)
    for chunk in ("c/3/0/0", "c/0/0/0"):  # hole-free (copied as bytes), holed (read by zarr)
        damaged = scan / chunk
        original = damaged.read_bytes()
        damaged.write_bytes(original[: len(original) // 2])
        for intact in ("copy", "link"):
            output = tmp_path / f"out-{intact}.zarr"
            code = main(["restore", str(scan), "--mask", str(mask), "--method", "telea",
                         "--output", str(output), "--intact", intact])
            error = capsys.readouterr().err.splitlines()[-1]
            assert code == 2 and error.startswith("inpaint: error: "), error
            assert "corrupt" in error and chunk in error, error
            if output.exists():
                assert not zarr.open_group(str(output), mode="r").attrs["inpaint"]["complete"]
                import shutil

                shutil.rmtree(output)
        assert len(damaged.read_bytes()) == len(original) // 2  # the scan is never "repaired"
        damaged.write_bytes(original)


def test_resume_refuses_an_edited_mask_and_names_a_stub(tmp_path: Path) -> None:
    from inpaint_core.errors import ImageIOError, ParameterError

    scan, mask, _ = make_scan(tmp_path)
    output = tmp_path / "out.zarr"
    calls = iter(range(100))
    restore_scan(scan, mask, "telea", output, should_stop=lambda: next(calls) >= 1)
    hole = zarr.open_array(str(mask), mode="r+")
    hole[...] = np.roll(hole[...], 300, axis=1)  # the same hole count, elsewhere
    with pytest.raises(ParameterError, match="content changed since the first run"):
        restore_scan(scan, mask, "telea", output, resume=True)
    stub = tmp_path / "stub.zarr"
    zarr.open_group(str(stub), mode="w", zarr_format=3)
    with pytest.raises(ImageIOError, match="settings were never recorded"):
        restore_scan(scan, mask, "telea", stub, resume=True)


# --- bad inputs: each answered with exit 2 and one clear line -----------------------------


def _bad_inputs(folder: Path) -> list[tuple[str, list[str], str]]:
    """(case, argv, expected words) for inputs each refused with exit 2."""
    import imageio.v3 as iio

    scan, mask, image = make_scan(folder)
    nan_mask = zarr.create_array(str(folder / "nan.zarr"), shape=(SIDE, SIDE),
                                 chunks=(CHUNK, CHUNK), dtype=np.float32)
    values = np.zeros((SIDE, SIDE), np.float32)
    values[5, 7] = np.nan
    values[50:60, 50:60] = 1
    nan_mask[...] = values
    ones = zarr.create_array(str(folder / "ones.zarr"), shape=(SIDE, SIDE),
                             chunks=(CHUNK, CHUNK), dtype=np.uint8, fill_value=1)
    ones[...] = 1
    iio.imwrite(folder / "scan.png", image)
    nan_scan = zarr.create_array(str(folder / "nanscan.zarr"), shape=(SIDE, SIDE),
                                 chunks=(CHUNK, CHUNK), dtype=np.float32)
    pixels = np.full((SIDE, SIDE), 0.5, np.float32)
    pixels[45, 45] = np.nan  # inside a hole's window
    nan_scan[...] = pixels
    restore = ["restore", "--method", "telea", "--output"]
    out = str(folder / "out.zarr")
    return [
        ("NaN in a float mask", [*restore, out, str(scan), "--mask", str(folder / "nan.zarr")],
         "NaN values (first at row 5, column 7)"),
        ("all-one mask", [*restore, out, str(scan), "--mask", str(folder / "ones.zarr")],
         "covers every pixel"),
        ("PNG as the scan", [*restore, out, str(folder / "scan.png"), "--mask", str(mask)],
         "restore a PNG or JPEG with `inpaint run`"),
        ("NaN in the scan", [*restore, out, str(folder / "nanscan.zarr"), "--mask", str(mask)],
         "NaN"),
        ("tile below the margin", [*restore, out, str(scan), "--mask", str(mask),
                                   "--tile", "8"], "use --tile"),
        ("output is the scan", [*restore, str(scan), str(scan), "--mask", str(mask)],
         "never written"),
        ("missing mask", [*restore, out, str(scan), "--mask", str(folder / "none.zarr")],
         "does not exist"),
        ("resume of a missing run's stub", [*restore, str(folder), str(scan), "--mask",
                                            str(mask), "--resume"], "never written"),
        ("unknown method", ["restore", str(scan), "--mask", str(mask), "--method", "nope",
                            "--output", out], "valid methods"),
    ]


def test_bad_inputs_get_exit_2_one_clear_line_and_leave_nothing(tmp_path: Path, capsys) -> None:
    cases = _bad_inputs(tmp_path)
    for case, argv, words in cases:
        code = main(argv)
        lines = capsys.readouterr().err.splitlines()
        assert code == 2, (case, lines)
        assert lines[-1].startswith("inpaint: error: ") and words in lines[-1], (case, lines)
        assert not (tmp_path / "out.zarr").exists() or case == "NaN in the scan", case
        if (tmp_path / "out.zarr").exists():  # NaN found in a tile after copies began
            assert "--resume" in lines[-1]
            import shutil

            shutil.rmtree(tmp_path / "out.zarr")


def test_a_colour_zarr_mask_is_accepted(tmp_path: Path) -> None:
    scan, mask, _ = make_scan(tmp_path)
    grey = np.asarray(zarr.open_array(str(mask), mode="r")[...])
    colour = zarr.create_array(str(tmp_path / "colour.zarr"), shape=(SIDE, SIDE, 3),
                               chunks=(CHUNK, CHUNK, 3), dtype=np.uint8)
    colour[...] = np.stack([grey * 255, np.zeros_like(grey), np.zeros_like(grey)], axis=-1)
    restore_scan(scan, tmp_path / "colour.zarr", "telea", tmp_path / "a.zarr")
    restore_scan(scan, mask, "telea", tmp_path / "b.zarr")
    assert hashes(tmp_path / "a.zarr" / "0") == hashes(tmp_path / "b.zarr" / "0")


def test_cli_small_fixes(tmp_path: Path, capsys) -> None:
    import subprocess
    import sys

    import imageio.v3 as iio

    piped = subprocess.run(f"{sys.executable} -m inpaint_core.cli methods --json | head -1",
                           shell=True, capture_output=True, text=True)
    assert "Traceback" not in piped.stderr and "BrokenPipe" not in piped.stderr
    image = np.zeros((32, 32, 3), np.uint8)
    iio.imwrite(tmp_path / "image.png", image)
    iio.imwrite(tmp_path / "mask.png", np.zeros((32, 32), np.uint8))
    code = main(["run", str(tmp_path / "image.png"), str(tmp_path / "mask.png"),
                 "--method", "telea", "--output", str(tmp_path / "out.png")])
    assert code == 0 and "nothing to restore" in capsys.readouterr().out


def test_atomic_write_fsyncs_the_file_and_its_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import os

    from inpaint_core.io import atomic

    synced: list[str] = []
    real = os.fsync

    def recording(handle: int) -> None:
        synced.append(os.readlink(f"/proc/self/fd/{handle}"))
        real(handle)

    monkeypatch.setattr(os, "fsync", recording)
    with atomic.atomic_write(tmp_path / "file.txt") as temporary:
        temporary.write_text("data")
    assert synced[0].startswith(str(tmp_path / ".file.txt")) and synced[1] == str(tmp_path)
