"""The tiled engine stopped, crashed, out of memory or failing a tile, and resumed."""

from __future__ import annotations

import itertools
import logging
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import zarr

from inpaint_core.api import inpaint
from inpaint_core.errors import MethodFailedError, ParameterError
from inpaint_core.io.store import level_array
from inpaint_core.tiling import Box
from inpaint_core.tiling.engine import iter_restore, restore_scan
from inpaint_core.tiling.executor import SerialExecutor
from inpaint_core.tiling.sink import OutputSink

from .engine_helpers import CHUNK, LocalMean, file_hashes, restored, smooth_scene, stop_after


def test_resume_after_stop_gives_identical_bytes(scene: dict[str, Any]) -> None:
    args = (scene["scan"], scene["mask_path"], LocalMean())
    restore_scan(*args, scene["tmp"] / "whole.zarr")
    # 13 chunks hold holes (one poll each), then one poll before waiting for the 7 copies
    # (one group, copied in the background from the start: done or not when the run stops).
    for polls, restored_first in ((3, 3), (13, 13)):
        out = scene["tmp"] / f"resumed{polls}.zarr"
        first = restore_scan(*args, out, should_stop=stop_after(polls))
        assert first.stopped and first.levels == 0 and first.chunks_copied in (0, 7)
        assert first.chunks_restored == restored_first
        assert not zarr.open_group(str(out), mode="r").attrs["inpaint"]["complete"]
        marked = int(zarr.open_group(str(out), mode="r")[".progress"][...].sum())
        assert marked == first.chunks_restored + first.chunks_copied  # every copy is marked
        second = restore_scan(*args, out, resume=True)
        assert not second.stopped and first.chunks_copied + second.chunks_copied == 7
        assert second.chunks_restored == 13 - restored_first
        np.testing.assert_array_equal(restored(out), restored(scene["tmp"] / "whole.zarr"))
        assert file_hashes(out / "0") == file_hashes(scene["tmp"] / "whole.zarr" / "0")
    again = restore_scan(*args, out, resume=True)  # a finished run: nothing left to do
    assert (again.chunks_restored, again.chunks_copied, again.levels) == (0, 0, 1)


def test_a_failed_background_copy_stops_the_run_and_resume_finishes_it(
    scene: dict[str, Any],
) -> None:
    args = (scene["scan"], scene["mask_path"], LocalMean())

    class DiskFull(OutputSink):
        def copy_chunk(self, box: Box, key: tuple[int, int]) -> None:
            if key == (0, 4):  # a hole-free chunk of the scene
                raise OSError("No space left on device")
            super().copy_chunk(box, key)

    out = scene["tmp"] / "out.zarr"
    with pytest.raises(OSError, match="No space left"):
        restore_scan(*args, out, sink=DiskFull)
    group = zarr.open_group(str(out), mode="r")
    assert not group.attrs["inpaint"]["complete"] and not group[".progress"][0, 4]
    result = restore_scan(*args, out, resume=True)
    assert not result.stopped and result.chunks_copied >= 1
    np.testing.assert_array_equal(restored(out), inpaint(scene["image"], scene["mask"],
                                                         LocalMean()))


def test_closing_the_generator_early_leaves_a_resumable_store(scene: dict[str, Any]) -> None:
    args = (scene["scan"], scene["mask_path"], LocalMean())
    restore_scan(*args, scene["tmp"] / "whole.zarr")
    events = iter_restore(*args, scene["tmp"] / "closed.zarr")
    for _ in range(5):
        next(events)
    events.close()  # as a napari worker does when the user cancels
    restore_scan(*args, scene["tmp"] / "closed.zarr", resume=True)
    whole = restored(scene["tmp"] / "whole.zarr")
    np.testing.assert_array_equal(restored(scene["tmp"] / "closed.zarr"), whole)


def test_resume_after_a_crash_between_write_and_mark(scene: dict[str, Any]) -> None:
    args = (scene["scan"], scene["mask_path"], LocalMean())
    restore_scan(*args, scene["tmp"] / "whole.zarr")
    marked: list[Any] = []

    class CrashOnThird(OutputSink):
        def mark(self, key: tuple[int, int]) -> None:
            if len(marked) == 2:
                raise RuntimeError("killed")
            marked.append(key)
            super().mark(key)

    out = scene["tmp"] / "crashed.zarr"
    with pytest.raises(RuntimeError, match="killed"):
        restore_scan(*args, out, sink=CrashOnThird)
    progress = zarr.open_group(str(out), mode="r")[".progress"][...]
    assert 2 <= int(progress.sum()) < progress.size  # writes in flight finished and marked
    restore_scan(*args, out, resume=True)
    assert file_hashes(out / "0") == file_hashes(scene["tmp"] / "whole.zarr" / "0")


def test_resume_refuses_other_settings(scene: dict[str, Any]) -> None:
    out = scene["tmp"] / "out.zarr"
    restore_scan(scene["scan"], scene["mask_path"], LocalMean(), out, should_stop=lambda: True)
    with pytest.raises(ParameterError, match="tile"):
        restore_scan(scene["scan"], scene["mask_path"], LocalMean(), out, tile=96, resume=True)


def test_oom_halves_the_batch(scene: dict[str, Any], caplog: pytest.LogCaptureFixture) -> None:
    torch = pytest.importorskip("torch")
    torch.set_num_threads(1)
    args = (scene["scan"], scene["mask_path"], LocalMean())
    restore_scan(*args, scene["tmp"] / "one.zarr", batch=1)
    sizes: list[int] = []

    class SmallGpu(SerialExecutor):
        def run_batch(self, method: Any, tiles: Any, windows: Any, seed: int) -> Any:
            sizes.append(len(tiles))
            if len(tiles) > 2:
                raise torch.cuda.OutOfMemoryError("CUDA out of memory (simulated)")
            return super().run_batch(method, tiles, windows, seed)

    with caplog.at_level(logging.WARNING, logger="inpaint_core.tiling.engine"):
        restore_scan(*args, scene["tmp"] / "eight.zarr", executor=SmallGpu(batch=8))
    assert sizes[0] == 8 and 4 in sizes and max(sizes[sizes.index(2) :]) == 2
    assert "retrying with batch 4" in caplog.text and "retrying with batch 2" in caplog.text
    np.testing.assert_array_equal(
        restored(scene["tmp"] / "eight.zarr"), restored(scene["tmp"] / "one.zarr")
    )


def test_failing_tile_names_it_and_marks_only_written_chunks(scene: dict[str, Any]) -> None:
    class FailsThird(LocalMean):
        calls = 0

        def run(self, image: np.ndarray, mask: np.ndarray, rng: np.random.Generator) -> Any:
            FailsThird.calls += 1
            if FailsThird.calls == 3:
                raise ValueError("boom")
            return super().run(image, mask, rng)

    out = scene["tmp"] / "failed.zarr"
    with pytest.raises(MethodFailedError, match=r"tile rows \d+:\d+, cols \d+:\d+") as caught:
        restore_scan(scene["scan"], scene["mask_path"], FailsThird(), out)
    assert isinstance(caught.value.__cause__, ValueError)
    group = zarr.open_group(str(out), mode="r")
    level0 = level_array(group, "0")
    expected = inpaint(scene["image"], scene["mask"], LocalMean())
    for row, col in np.argwhere(group[".progress"][...]):
        rows, cols = slice(row * CHUNK, (row + 1) * CHUNK), slice(col * CHUNK, (col + 1) * CHUNK)
        np.testing.assert_array_equal(level0[rows, cols], expected[rows, cols])


@pytest.mark.parametrize("workers", [1, 2])
def test_a_nan_result_names_its_tile_and_is_never_written(
    scene: dict[str, Any], workers: int
) -> None:
    calls = itertools.count(1)  # next() is atomic: worker threads count right

    class NaNOnThird(LocalMean):  # results are checked and pasted on the I/O threads
        def run(self, image: np.ndarray, mask: np.ndarray, rng: np.random.Generator) -> Any:
            result = super().run(image, mask, rng)
            if next(calls) == 3:
                result[mask] = np.nan
            return result

    out = scene["tmp"] / "nan.zarr"
    with pytest.raises(MethodFailedError, match=r"tile rows \d+:\d+, cols \d+:\d+ \(core .*\): "
                       r"method 'local-mean' returned NaN"):
        restore_scan(scene["scan"], scene["mask_path"], NaNOnThird(), out, workers=workers)
    group = zarr.open_group(str(out), mode="r")
    level0 = level_array(group, "0")
    written = np.argwhere(group[".progress"][...])
    assert len(written) < group[".progress"].size  # it stopped
    expected = inpaint(scene["image"], scene["mask"], LocalMean())
    for row, col in written:  # no NaN-made pixels in any chunk marked written
        rows, cols = slice(row * CHUNK, (row + 1) * CHUNK), slice(col * CHUNK, (col + 1) * CHUNK)
        np.testing.assert_array_equal(level0[rows, cols], expected[rows, cols])


def test_zstd_level_errors_and_resume(tmp_path: Path) -> None:
    scan, mask_path, _ = smooth_scene(tmp_path)
    out = tmp_path / "out.zarr"
    for bad in (23, -131073, 1.0, True, "1"):
        with pytest.raises(ParameterError, match=r"zstd_level=.* must be an int from -131072"):
            restore_scan(scan, mask_path, LocalMean(), out, zstd_level=bad)
    gzip_scan = tmp_path / "gzip.zarr"
    zarr.create_array(str(gzip_scan), data=zarr.open_array(str(scan / "0"))[...],
                      chunks=(CHUNK, CHUNK, 3), compressors=zarr.codecs.GzipCodec())
    with pytest.raises(ParameterError, match=r"needs an output compressed with zstd.*GzipCodec"):
        restore_scan(gzip_scan, mask_path, LocalMean(), out, zstd_level=1)
    assert not out.exists()  # refused before anything was created
    restore_scan(gzip_scan, mask_path, LocalMean(), out)  # without the level: the scan's gzip
    assert isinstance(zarr.open_array(str(out / "0")).compressors[0], zarr.codecs.GzipCodec)
    stopped = tmp_path / "stopped.zarr"
    restore_scan(scan, mask_path, LocalMean(), stopped, zstd_level=1, should_stop=stop_after(2))
    with pytest.raises(ParameterError, match="zstd_level"):
        restore_scan(scan, mask_path, LocalMean(), stopped, resume=True)
    restore_scan(scan, mask_path, LocalMean(), stopped, zstd_level=1, resume=True)
    whole = tmp_path / "whole.zarr"
    restore_scan(scan, mask_path, LocalMean(), whole, zstd_level=1)
    assert file_hashes(stopped / "0") == file_hashes(whole / "0")
