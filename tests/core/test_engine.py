"""The tiled restoration engine on small real zarr stores: equality, resume, safety, CLI."""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
import logging
import os
import pickle
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import zarr

from inpaint_core.api import NO_HOLE, inpaint, prepare
from inpaint_core.arrays import to_float_colour
from inpaint_core.cli import main
from inpaint_core.errors import (
    InvalidInputError,
    MethodFailedError,
    OutputExistsError,
    ParameterError,
)
from inpaint_core.io import chunks
from inpaint_core.io.inputs import open_inputs
from inpaint_core.io.pyramid import write_pyramid
from inpaint_core.io.store import level_array
from inpaint_core.method import InpaintMethod, MethodInfo
from inpaint_core.tiling import Box, engine
from inpaint_core.tiling.engine import RestoreEvent, iter_restore, iter_tile_inputs, restore_scan
from inpaint_core.tiling.execution import usable_cores
from inpaint_core.tiling.executor import SerialExecutor, ThreadExecutor, paste, run_batch
from inpaint_core.tiling.options import RestoreOptions
from inpaint_core.tiling.plan import Tile
from inpaint_core.tiling.planner import RestorePlan, TileSchedule, plan_restore
from inpaint_core.tiling.regions import find_hole_regions
from inpaint_core.tiling.sink import OutputSink, output_session

ROOT = Path(__file__).resolve().parents[2]
SHAPE = (256, 320)
CHUNK = 64


class LocalMean(InpaintMethod):
    """Each hole pixel: the mean of the known pixels of its 3x3 neighbourhood (0.5 if none).

    Purely local (radius 1 < margin 4), and the sum runs in a fixed order, so a tile gives
    bit-for-bit what the whole image gives at every pixel with its margin of context."""

    info = MethodInfo(
        name="local-mean", family="other", summary="3x3 masked mean", reference="test",
        preferred_tile=64, context_margin=4,
    )

    def run(self, image: np.ndarray, mask: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        known = np.pad(~mask, 1).astype(np.float64)
        values = np.pad(image.astype(np.float64), ((1, 1), (1, 1), (0, 0)))
        total = np.zeros(image.shape, dtype=np.float64)
        count = np.zeros(mask.shape, dtype=np.float64)
        rows, cols = mask.shape
        for dr in range(3):
            for dc in range(3):
                weight = known[dr : dr + rows, dc : dc + cols]
                total += values[dr : dr + rows, dc : dc + cols] * weight[..., None]
                count += weight
        mean = np.where(count[..., None] > 0, total / np.maximum(count, 1)[..., None], 0.5)
        return mean.astype(np.float32)


class Identity(InpaintMethod):
    """Returns the image as given: the hole keeps its damaged values."""

    info = MethodInfo(
        name="identity", family="other", summary="no-op", reference="test",
        preferred_tile=64, context_margin=0,
    )

    def run(self, image: np.ndarray, mask: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        return image.copy()


def write_store(path: Path, array: np.ndarray, chunks: tuple[int, ...], zarr_format: int = 3):
    store = zarr.create_array(
        str(path), shape=array.shape, chunks=chunks, dtype=array.dtype, zarr_format=zarr_format
    )
    store[...] = array
    return path


def small_holes(shape: tuple[int, int] = SHAPE) -> np.ndarray:
    """Blobs that each fit a 64 px tile with margin 4: at the corners, on the borders and
    across chunk lines (rows/cols 64, 128, ...)."""
    mask = np.zeros(shape, dtype=bool)
    for row, col, height, width in [
        (0, 0, 5, 7), (250, 313, 6, 7), (0, 150, 4, 20), (120, 0, 15, 3), (60, 60, 9, 9),
        (125, 190, 8, 12), (200, 315, 20, 5), (30, 250, 40, 6), (180, 100, 3, 50),
        (62, 126, 4, 5), (66, 132, 3, 4),
    ]:
        mask[row : row + height, col : col + width] = True
    return mask


def long_crack(shape: tuple[int, int] = SHAPE) -> np.ndarray:
    """A 3 px crack across the whole scan plus a loss: holes no single tile holds."""
    mask = np.zeros(shape, dtype=bool)
    for col in range(shape[1]):
        row = int(100 + 40 * np.sin(col / 30))
        mask[row : row + 3, col] = True
    mask[150:230, 20:60] = True
    return mask


@pytest.fixture
def scene(tmp_path: Path) -> dict[str, Any]:
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (*SHAPE, 3), dtype=np.uint8)
    mask = small_holes()
    return {
        "image": image,
        "mask": mask,
        "scan": write_store(tmp_path / "scan.zarr", image, (CHUNK, CHUNK, 3)),
        "mask_path": write_store(tmp_path / "mask.zarr", mask, (CHUNK, CHUNK)),
        "tmp": tmp_path,
    }


#: How an output declares the scan's (H, W, C) chunks that it stores as (C, H, W).
TRANSPOSED = {"name": "transpose", "configuration": {"order": [1, 2, 0]}}


def restored(path: Path, level: str = "0") -> np.ndarray:
    """Output ``level`` as ``(H, W[, C])`` (stored channel first)."""
    return level_array(zarr.open_group(str(path), mode="r"), level)[...]


def file_hashes(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_tiled_equals_untiled_for_a_local_method(scene: dict[str, Any]) -> None:
    out = scene["tmp"] / "out.zarr"
    result = restore_scan(scene["scan"], scene["mask_path"], LocalMean(), out)
    expected = inpaint(scene["image"], scene["mask"], LocalMean())
    np.testing.assert_array_equal(restored(out), expected)
    assert result.tiles > 1 and not result.stopped
    assert result.chunks_restored + result.chunks_copied == result.chunks_total == 20


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32])
def test_identity_leaves_the_scan_bit_identical(tmp_path: Path, dtype: type) -> None:
    rng = np.random.default_rng(1)
    if np.issubdtype(dtype, np.integer):
        image = rng.integers(0, np.iinfo(dtype).max, SHAPE, dtype=dtype)  # grey (H, W)
    else:
        image = rng.random(SHAPE, dtype=np.float32)
    scan = write_store(tmp_path / "scan.zarr", image, (CHUNK, CHUNK))
    result = restore_scan(scan, long_crack(), Identity(), tmp_path / "out.zarr", overlap=8)
    np.testing.assert_array_equal(restored(tmp_path / "out.zarr"), image)
    assert result.tiles > 5  # the crack was split into overlapping pieces


def test_large_holes_are_filled_everywhere(scene: dict[str, Any]) -> None:
    mask = long_crack()
    out = scene["tmp"] / "out.zarr"
    restore_scan(scene["scan"], mask, LocalMean(), out, tile=96, overlap=6)
    result = restored(out)
    np.testing.assert_array_equal(result[~mask], scene["image"][~mask])
    assert not np.array_equal(result[mask], scene["image"][mask])


def test_progress_events_count_tiles_and_chunks(scene: dict[str, Any]) -> None:
    events = list(iter_restore(scene["scan"], scene["mask_path"], LocalMean(), scene["tmp"] / "o"))
    assert all(isinstance(e, RestoreEvent) for e in events)
    done = [e.tiles_done for e in events]
    assert done == sorted(done) and done[-1] == events[-1].tiles_total > 0
    assert events[-1].chunks_done == events[-1].chunks_total == 20
    assert events[-1].phase == "done"
    calls: list[tuple[int, int]] = []
    restore_scan(scene["scan"], scene["mask_path"], LocalMean(), scene["tmp"] / "p",
                 progress=lambda d, t: calls.append((d, t)))
    assert calls[-1][0] == calls[-1][1]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="per-thread nice: Linux")
def test_chunks_are_written_below_the_methods_cpu_priority(scene: dict[str, Any]) -> None:
    def nice() -> int:
        return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())

    method_nice, writer_nice, copier_nice = set(), set(), set()

    class Recording(LocalMean):
        def run(self, image: np.ndarray, mask: np.ndarray, rng: np.random.Generator) -> Any:
            method_nice.add(nice())
            return super().run(image, mask, rng)

    class RecordingSink(OutputSink):
        def write_chunk(self, key: tuple[int, int], pixels: np.ndarray) -> None:
            writer_nice.add(nice())  # encodes, writes a restored chunk (blended just before)
            super().write_chunk(key, pixels)

        def copy_chunk(self, box: Box, key: tuple[int, int]) -> None:
            copier_nice.add(nice())  # copies a hole-free chunk and marks it
            super().copy_chunk(box, key)

    before = nice()
    assert before < 19  # room to lower it
    restore_scan(scene["scan"], scene["mask_path"], Recording(), scene["tmp"] / "out.zarr",
                 tile=64, sink=RecordingSink)
    assert method_nice == {before} and nice() == before  # the caller's thread is left alone
    lowered = {min(19, before + engine.IO_NICE)}
    assert writer_nice == copier_nice == lowered and engine.IO_NICE > 0
    np.testing.assert_array_equal(restored(scene["tmp"] / "out.zarr"),
                                  inpaint(scene["image"], scene["mask"], LocalMean()))


def test_the_method_does_not_run_ahead_of_the_chunk_writes(tmp_path: Path) -> None:
    """A chunk whose tiles are all computed is written before any tile of a later chunk is
    computed, so the last tiles do not leave a backlog of chunk writes for the end."""
    image = np.random.default_rng(1).integers(0, 256, (128, 192, 3), dtype=np.uint8)
    mask = np.zeros((128, 192), dtype=bool)
    mask[30:34, 60:68] = True  # across chunks (0, 0) and (0, 1): one tile for both
    mask[90:94, 150:154] = True  # inside chunk (1, 2): its own tile
    scan = write_store(tmp_path / "scan.zarr", image, (CHUNK, CHUNK, 3))
    holes = write_store(tmp_path / "mask.zarr", mask, (CHUNK, CHUNK))
    events = list(iter_restore(scan, holes, LocalMean(), tmp_path / "out.zarr"))
    assert events[-1].tiles_total == 2
    second = next(event for event in events if event.tiles_done == 2)
    assert second.chunks_done == 2  # both chunks of the first tile were written before
    np.testing.assert_array_equal(restored(tmp_path / "out.zarr")[~mask], image[~mask])


def test_tiles_are_read_two_steps_ahead_of_the_method(scene: dict[str, Any]) -> None:
    """While the method computes a tile, the windows of the next two are being read: one read
    queued behind chunk writes on the I/O threads would often keep the method waiting."""
    reads: list[Tile] = []

    class RecordingReads(SerialExecutor):
        def read(self, source: Any, mask: Any, tile: Tile, name: str) -> Any:
            reads.append(tile)
            return super().read(source, mask, tile, name)

    total = len(list(iter_tile_inputs(scene["scan"], scene["mask_path"], LocalMean())))
    reads.clear()
    seen: list[int] = []

    class Watching(LocalMean):
        def run(self, image, mask, rng):
            wanted = min(len(seen) + 3, total)  # this tile's read and the next two
            deadline = time.monotonic() + 5
            while len(reads) < wanted and time.monotonic() < deadline:
                time.sleep(0.005)
            seen.append(len(reads))
            return super().run(image, mask, rng)

    restore_scan(scene["scan"], scene["mask_path"], Watching(), scene["tmp"] / "out.zarr",
                 executor=RecordingReads())
    assert total >= 4 and len(seen) == total
    assert all(count >= min(number + 3, total) for number, count in enumerate(seen)), seen


def stop_after(polls: int) -> Any:
    """A ``should_stop`` that says True from its ``polls + 1``-th call on."""
    calls = iter(range(10_000))
    return lambda: next(calls) >= polls


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


@pytest.mark.parametrize(("polls", "workers"), [(None, 1), (None, 2), (3, 1), (9, 2)])
def test_pyramid_written_during_the_run_equals_one_written_after_it(
    scene: dict[str, Any], polls: int | None, workers: int
) -> None:
    args = (scene["scan"], scene["mask_path"], LocalMean())
    settings = {"tile": 64, "pyramid_side": 40, "workers": workers}
    out = scene["tmp"] / "out.zarr"
    if polls is not None:  # stopped part way (some pyramid chunks written), then resumed
        assert restore_scan(*args, out, should_stop=stop_after(polls), **settings).stopped
    result = restore_scan(*args, out, resume=polls is not None, **settings)
    assert result.levels == 4
    after = zarr.open_group(str(scene["tmp"] / "after.zarr"), mode="w")
    after.create_array("0", shape=(*SHAPE, 3), chunks=(CHUNK, CHUNK, 3),
                       dtype="uint8")[...] = restored(out)
    assert write_pyramid(after, "after", side=40) == 4
    for level in ("1", "2", "3"):
        np.testing.assert_array_equal(restored(out, level), after[level][...], err_msg=level)


def test_hole_free_chunks_are_copied_while_the_tiles_are_restored(scene: dict[str, Any]) -> None:
    out = scene["tmp"] / "out.zarr"
    seen: list[int] = []

    class WaitsForACopy(LocalMean):  # its first tile waits until a hole-free chunk is marked
        def run(self, image: np.ndarray, mask: np.ndarray, rng: np.random.Generator) -> Any:
            if not seen:
                deadline = time.monotonic() + 30
                marked = 0
                while not marked and time.monotonic() < deadline:
                    time.sleep(0.02)  # no restored chunk can be written before this returns
                    marked = int(zarr.open_group(str(out), mode="r")[".progress"][...].sum())
                seen.append(marked)
            return super().run(image, mask, rng)

    result = restore_scan(scene["scan"], scene["mask_path"], WaitsForACopy(), out)
    assert seen[0] > 0 and result.chunks_copied == 7
    np.testing.assert_array_equal(restored(out), inpaint(scene["image"], scene["mask"],
                                                         LocalMean()))


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


def test_tile_inputs_are_the_windows_the_engine_gives_the_method(scene: dict[str, Any]) -> None:
    seen: list[tuple[np.ndarray, np.ndarray]] = []

    class Recording(LocalMean):
        def run(self, image: np.ndarray, mask: np.ndarray, rng: np.random.Generator) -> Any:
            seen.append((image.copy(), mask.copy()))
            return super().run(image, mask, rng)

    result = restore_scan(scene["scan"], scene["mask_path"], Recording(), scene["tmp"] / "o.zarr",
                          tile=96, overlap=5)
    inputs = list(iter_tile_inputs(scene["scan"], scene["mask_path"], LocalMean(), tile=96,
                                   overlap=5))
    assert len(inputs) == result.tiles == len(seen) > 1
    for tile, item in inputs:  # each tile's window of the scan (none is all hole here)
        assert item.colour is not None and item.hole.any()
        np.testing.assert_array_equal(item.hole, scene["mask"][tile.window.slices])
        pixels = scene["image"][tile.window.slices]
        np.testing.assert_array_equal(item.colour, to_float_colour(pixels))
    windows = {(item.colour.tobytes(), item.hole.tobytes()) for _, item in inputs}
    assert windows == {(image.tobytes(), hole.tobytes()) for image, hole in seen}  # any order
    with pytest.raises(ParameterError, match="overlap"):
        next(iter_tile_inputs(scene["scan"], scene["mask_path"], LocalMean(), overlap=0))


def test_a_window_without_a_hole_in_a_batch_is_passed_through() -> None:
    pixels = np.random.default_rng(1).integers(0, 256, (20, 30, 3), dtype=np.uint8)
    hole = np.zeros((20, 30), dtype=bool)
    holed = hole.copy()
    holed[5:9, 10:14] = True
    tiles = [Tile(0, 20, 0, 30, Box(2, 18, 2, 28)), Tile(0, 20, 0, 30, Box(2, 18, 2, 28))]
    items = [prepare(pixels, hole, "local-mean"), prepare(pixels, holed, "local-mean")]
    filled = run_batch(LocalMean(), tiles, items, 0)
    assert filled[0] is NO_HOLE and filled[1] is not NO_HOLE  # issue 23: None is no marker
    window = Box(0, 20, 0, 30)
    untouched, restored_tile = (
        paste("local-mean", tile, (item, window), result)
        for tile, item, result in zip(tiles, items, filled, strict=True)
    )
    np.testing.assert_array_equal(untouched, pixels)
    np.testing.assert_array_equal(restored_tile, inpaint(pixels, holed, LocalMean()))


def test_a_loss_larger_than_the_tile_is_restored_from_grown_windows(
    scene: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    mask = np.zeros(SHAPE, dtype=bool)
    mask[40:200, 40:200] = True  # interior 64 px windows of the split loss are all hole
    out = scene["tmp"] / "out.zarr"
    with caplog.at_level(logging.INFO, logger="inpaint_core.tiling.engine"):
        restore_scan(scene["scan"], mask, "telea", out, tile=64)
    assert "is all hole: restored within the window" in caplog.text
    result, image = restored(out), scene["image"]
    np.testing.assert_array_equal(result[~mask], image[~mask])
    assert np.abs(result[mask].astype(float) - image[~mask].mean()).mean() < 60  # filled
    whole = inpaint(image, mask, "telea")
    assert np.abs(result[mask].astype(float) - whole[mask].astype(float)).mean() < 40
    everything = np.ones(SHAPE, dtype=bool)
    everything[0, 0] = False  # one known pixel, far from the middle tiles
    with pytest.raises(InvalidInputError, match=r"tile rows .* all hole, and so is the .* window"
                       r" around it.*larger --tile"):
        restore_scan(scene["scan"], everything, LocalMean(), scene["tmp"] / "all.zarr", tile=16)


def test_the_source_is_untouched_and_never_overwritten(scene: dict[str, Any]) -> None:
    before = file_hashes(scene["tmp"])
    out = scene["tmp"] / "out.zarr"
    restore_scan(scene["scan"], scene["mask_path"], LocalMean(), out)
    after = {k: v for k, v in file_hashes(scene["tmp"]).items() if not k.startswith("out.zarr")}
    assert after == before
    for target in (out, scene["scan"], scene["scan"] / "inside.zarr", scene["mask_path"]):
        with pytest.raises(OutputExistsError, match=str(target.name)):
            restore_scan(scene["scan"], scene["mask_path"], LocalMean(), target)
    with pytest.raises(OutputExistsError, match="never written"):  # even when resuming
        restore_scan(scene["scan"], scene["mask_path"], LocalMean(), scene["scan"], resume=True)


def test_provenance_and_pyramid(scene: dict[str, Any]) -> None:
    out = scene["tmp"] / "out.zarr"
    result = restore_scan(
        scene["scan"], scene["mask_path"], LocalMean(), out, tile=96, overlap=5, pyramid_side=100
    )
    group = zarr.open_group(str(out), mode="r")
    assert result.levels == 3
    # Stored channel first (NGFF's order), each level naming its axes.
    assert [group[str(k)].shape for k in range(3)] == [(3, 256, 320), (3, 128, 160), (3, 64, 80)]
    assert group["0"].chunks == (3, CHUNK, CHUNK) and group["0"].dtype == np.uint8
    assert all(group[str(k)].metadata.dimension_names == ("c", "y", "x") for k in range(3))
    entry = group.attrs["ome"]["multiscales"][0]
    assert [d["path"] for d in entry["datasets"]] == ["0", "1", "2"]
    assert [axis["name"] for axis in entry["axes"]] == ["c", "y", "x"]
    assert group.attrs["multiscales"][0]["datasets"][2]["coordinateTransformations"][0][
        "scale"
    ] == [1.0, 4.0, 4.0]
    meta = group.attrs["inpaint"]
    assert meta["method"] == "local-mean" and meta["complete"]
    assert meta["settings"] == {
        "tile": 96, "margin": 4, "overlap": 5, "seed": 0, "intact": "copy", "zstd_level": None
    }
    assert meta["hole_fraction"] == pytest.approx(scene["mask"].mean())
    assert meta["mask"] == str(scene["mask_path"]) and meta["weights_sha256"] is None
    assert meta["software_version"] and meta["created"]
    level1 = restored(out, "1").astype(float)
    full = restored(out).astype(float)
    assert abs(level1[10, 20, 0] - full[20:22, 40:42, 0].mean()) <= 0.5


def test_telea_restores_the_sample_scan(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, str(ROOT / "sample_data" / "make_scan.py"), "--size", "512",
         "--chunk", "128", "--out", str(tmp_path / "mural")],
        check=True, capture_output=True,
    )
    scan, mask = tmp_path / "mural" / "scan.zarr", tmp_path / "mural" / "mask.zarr"
    result = restore_scan(scan, mask, "telea", tmp_path / "out.zarr", tile=128)
    source, hole = zarr.open(str(scan), mode="r")[...], zarr.open(str(mask), mode="r")[...]
    output = restored(tmp_path / "out.zarr")
    assert result.hole_fraction > 0.005
    np.testing.assert_array_equal(output[~hole], source[~hole])
    plaster = np.all(output[hole] == [222, 214, 196], axis=1)
    assert plaster.mean() < 0.05  # the plaster-coloured losses were painted over


def test_the_sample_ome_zarr_is_valid_and_its_intact_chunks_are_linked(
    tmp_path: Path,
) -> None:
    from ome_zarr_models.v05 import Image as NgffImage

    for pyramid in ([], ["--pyramid"]):
        subprocess.run(
            [sys.executable, str(ROOT / "sample_data" / "make_scan.py"), "--size", "512",
             "--chunk", "128", "--damage", "0.002", "--out", str(tmp_path / f"m{len(pyramid)}"),
             *pyramid], check=True, capture_output=True,
        )
    scan = tmp_path / "m1" / "scan.zarr"
    NgffImage.from_zarr(zarr.open_group(str(scan), mode="r"))  # NGFF 0.5: channel first
    assert zarr.open_array(str(scan / "0"), mode="r").shape == (3, 512, 512)
    plain = zarr.open_array(str(tmp_path / "m0" / "scan.zarr"), mode="r")[...]
    assert np.array_equal(restored(scan), plain)  # the same picture as the bare array
    out = tmp_path / "out.zarr"
    result = restore_scan(scan, tmp_path / "m1" / "mask.zarr", "telea", out, tile=128,
                          intact="link", pyramid_side=128)
    NgffImage.from_zarr(zarr.open_group(str(out), mode="r"))
    assert 0 < result.chunks_restored < 16 and result.levels == 3
    files = [f.relative_to(out) for f in (out / "0" / "c").rglob("*") if f.is_file()]
    linked = [f for f in files if (out / f).stat().st_ino == (scan / f).stat().st_ino]
    assert len(linked) == 16 - result.chunks_restored  # the intact chunks: the scan's files


def test_damage_extent_gives_scans_of_two_sizes_identical_damage(tmp_path: Path) -> None:
    masks = []
    for size in (256, 512):
        damage = 0.05 * 256**2 / size**2  # the same damaged area at both sizes
        subprocess.run(
            [sys.executable, str(ROOT / "sample_data" / "make_scan.py"), "--size", str(size),
             "--chunk", "128", "--damage", f"{damage}", "--damage-extent", "256",
             "--out", str(tmp_path / str(size))],
            check=True, capture_output=True,
        )
        masks.append(zarr.open_array(str(tmp_path / str(size) / "mask.zarr"), mode="r")[...])
    small, large = masks
    assert small.mean() > 0.02
    np.testing.assert_array_equal(large[:256, :256], small)
    assert not large[256:].any() and not large[:, 256:].any()
    refused = subprocess.run(
        [sys.executable, str(ROOT / "sample_data" / "make_scan.py"), "--size", "256",
         "--damage-extent", "300", "--out", str(tmp_path / "bad")],
        capture_output=True, text=True,
    )
    assert refused.returncode != 0 and "--damage-extent 300" in refused.stderr


def test_cli_restore_and_its_errors(scene: dict[str, Any], capsys: pytest.CaptureFixture) -> None:
    scan, mask = str(scene["scan"]), str(scene["mask_path"])
    out = str(scene["tmp"] / "cli.zarr")
    assert main(["restore", scan, "--mask", mask, "--method", "telea", "-o", out,
                 "--tile", "64", "--param", "radius=3"]) == 0
    assert "wrote" in capsys.readouterr().out
    assert zarr.open_group(out, mode="r").attrs["inpaint"]["parameters"] == {"radius": 3}
    for argv, named in [
        (["--tile", "8"], "tile=8"),
        (["--overlap", "0"], "overlap=0"),
        (["--batch", "0"], "batch=0"),
        (["--param", "radius=0"], "radius=0"),
        (["--weights", "w.safetensors"], "--weights"),
        (["--method", "nope"], "nope"),
        (["--zstd-level", "99"], "zstd_level=99"),
    ]:
        target = str(scene["tmp"] / "bad.zarr")
        assert main(["restore", scan, "--mask", mask, "-m", "telea", "-o", target, *argv]) == 2
        assert named in capsys.readouterr().err
    assert main(["restore", scan, "--mask", mask, "-o", out]) == 2
    assert "already exists" in capsys.readouterr().err
    linked = scene["tmp"] / "linked.zarr"
    assert main(["restore", scan, "--mask", mask, "-m", "telea", "-o", str(linked),
                 "--tile", "64", "--param", "radius=3", "--intact", "link"]) == 0
    assert np.array_equal(restored(linked), restored(Path(out)))
    # Chunk (3, 1) has no hole: the scan's file "c/3/1/0", stored channel first "c/0/3/1".
    assert (linked / "0" / "c" / "0" / "3" / "1").stat().st_nlink == 2


def smooth_scene(tmp_path: Path) -> tuple[Path, Path, np.ndarray]:
    """A compressible (smooth, lightly noisy) OME-Zarr scan with small holes, and its mask."""
    rng = np.random.default_rng(2)
    ramp = np.add.outer(np.arange(SHAPE[0]), np.arange(SHAPE[1])) // 5
    image = (ramp[..., None] + rng.integers(0, 3, (*SHAPE, 3))).astype(np.uint8)
    mask = small_holes()
    scan = tmp_path / "smooth.zarr"
    group = zarr.open_group(str(scan), mode="w", zarr_format=3)
    group.create_array("0", data=image, chunks=(CHUNK, CHUNK, 3))
    write_pyramid(group, "smooth", side=100)
    return scan, write_store(tmp_path / "smooth-mask.zarr", mask, (CHUNK, CHUNK)), mask


@pytest.mark.parametrize("intact", ["copy", "link"])
def test_zstd_level_changes_only_the_encoding_of_the_written_chunks(
    tmp_path: Path, intact: str
) -> None:
    scan, mask_path, _ = smooth_scene(tmp_path)
    outputs = {}
    for level in (None, 19, -5):
        out = tmp_path / f"out{level}.zarr"
        restore_scan(scan, mask_path, LocalMean(), out, zstd_level=level, intact=intact,
                     pyramid_side=100)
        outputs[level] = out
        assert zarr.open_group(str(out)).attrs["inpaint"]["settings"]["zstd_level"] == level
    for name in ("0", "1", "2"):
        declared = json.loads((scan / name / "zarr.json").read_text())["codecs"]
        for out in outputs.values():  # the same pixels, the scan's codecs declared
            np.testing.assert_array_equal(restored(out, name), restored(outputs[None], name))
            codecs = json.loads((out / name / "zarr.json").read_text())["codecs"]
            assert codecs == [TRANSPOSED, *declared]
    hole_chunk = ("0", "c", "0", "0", "0")  # a hole at (0, 0); chunk (3, 1) has none
    sizes = {level: out.joinpath(*hole_chunk).stat().st_size for level, out in outputs.items()}
    assert sizes[19] < sizes[None] < sizes[-5], sizes
    upper = ("1", "c", "0", "0", "0")  # level 1 over the restored chunk: computed, re-encoded
    assert outputs[19].joinpath(*upper).stat().st_size < outputs[-5].joinpath(*upper).stat().st_size
    for out in outputs.values():  # intact chunks: the scan's bytes, whatever the level
        assert (out / "0/c/0/3/1").read_bytes() == (scan / "0/c/3/1/0").read_bytes()
        if intact == "link":
            assert (out / "0/c/0/3/1").stat().st_ino == (scan / "0/c/3/1/0").stat().st_ino


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


@pytest.mark.parametrize("method", ["local-mean", "telea"])
def test_worker_threads_give_the_single_thread_bytes(scene: dict[str, Any], method: str) -> None:
    scan, mask = scene["scan"], long_crack()  # large holes: split tiles, many per step
    instance = LocalMean() if method == "local-mean" else method
    one, four = scene["tmp"] / "one.zarr", scene["tmp"] / "four.zarr"
    restore_scan(scan, mask, instance, one, tile=64, pyramid_side=100)
    result = restore_scan(scan, mask, instance, four, tile=64, pyramid_side=100, workers=4,
                          batch=2)
    assert result.tiles > 8
    assert file_hashes(one / "0") == file_hashes(four / "0")
    with pytest.raises(ParameterError, match=r"workers=0 must be an int >= 1"):
        restore_scan(scan, mask, instance, scene["tmp"] / "bad.zarr", workers=0)
    assert main(["restore", str(scan), "--mask", str(scene["mask_path"]), "-m", "telea",
                 "-o", str(scene["tmp"] / "cli.zarr"), "--workers", "2"]) == 0


def test_distributed_scheduler_gives_the_local_result(scene: dict[str, Any]) -> None:
    distributed = pytest.importorskip("distributed", reason="the [distributed] extra is missing")
    args = (scene["scan"], scene["mask_path"], LocalMean())
    restore_scan(*args, scene["tmp"] / "local.zarr")
    with distributed.LocalCluster(processes=False, n_workers=1) as cluster:
        restore_scan(*args, scene["tmp"] / "cluster.zarr", scheduler=cluster.scheduler_address)
    np.testing.assert_array_equal(
        restored(scene["tmp"] / "cluster.zarr"), restored(scene["tmp"] / "local.zarr")
    )


def test_scheduler_without_distributed_is_a_clear_error(
    scene: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "distributed", None)  # as if the extra were missing
    with pytest.raises(ParameterError, match=r"tcp://h:8786.*napari-inpaint\[distributed\]"):
        restore_scan(scene["scan"], scene["mask_path"], LocalMean(), scene["tmp"] / "o.zarr",
                     scheduler="tcp://h:8786")


def test_weights_sha256_of_learned_methods(tmp_path: Path) -> None:
    pytest.importorskip("torch").set_num_threads(1)
    from inpaint_core.checkpoint import CheckpointInfo
    from inpaint_core.errors import MissingWeightsError
    from inpaint_core.tiling.execution import weights_sha256

    class Learned(LocalMean):
        info = MethodInfo(name="fake-learned", family="other", summary="x", reference="t",
                          learned=True)
        path = tmp_path / "fake.safetensors"

        def weights_path(self) -> Path:
            return self.path

    assert weights_sha256(LocalMean()) is None
    with pytest.raises(MissingWeightsError, match=r"fake\.safetensors"):
        weights_sha256(Learned())
    Learned.path.write_bytes(b"weights")
    assert weights_sha256(Learned()) == hashlib.sha256(b"weights").hexdigest()
    sidecar = CheckpointInfo(
        method="fake-learned", config={}, step=1, created="", software_version="",
        training_data={}, losses={}, hardware={}, wall_seconds=0.0, sha256="ab" * 32,
        dtype="float32",
    )
    (tmp_path / "fake.json").write_text(sidecar.to_json())
    assert weights_sha256(Learned()) == "ab" * 32


def chunk_file(store: Path, *coords: int) -> bytes:
    return (store.joinpath("c", *map(str, coords))).read_bytes()


def test_hole_free_chunks_are_copied_as_stored_bytes(tmp_path: Path) -> None:
    image = np.random.default_rng(1).integers(0, 256, (*SHAPE, 3), dtype=np.uint8)
    scan = tmp_path / "scan.zarr"
    gzip = zarr.codecs.GzipCodec(level=9)
    source = zarr.create_array(str(scan), shape=image.shape, chunks=(CHUNK, CHUNK, 3),
                               dtype="uint8", compressors=gzip)
    source[...] = image
    source[:CHUNK, CHUNK : 2 * CHUNK] = 0  # an all-fill chunk: zarr stores no file for it
    expected = source[...]
    mask = np.zeros(SHAPE, dtype=bool)
    mask[130:140, 140:150] = True  # inside chunk (2, 2) only
    out = tmp_path / "out.zarr"
    restore_scan(scan, mask, LocalMean(), out, tile=64, pyramid_side=100)
    level0 = zarr.open_group(str(out), mode="r")["0"]
    assert level0.compressors == source.compressors  # the source's encoding is kept
    assert chunk_file(out / "0", 0, 0, 0) == chunk_file(scan, 0, 0, 0)
    assert chunk_file(out / "0", 0, 3, 4) == chunk_file(scan, 3, 4, 0)  # stored c, y, x
    assert not (out / "0" / "c" / "0" / "0" / "1").exists()  # missing in the source, here too
    restored_pixels = restored(out)
    assert np.array_equal(restored_pixels[~mask], expected[~mask])
    assert not np.array_equal(restored_pixels[mask], expected[mask])


@pytest.mark.parametrize("axes", ["yxc", "cyx"])
def test_pyramid_reuses_the_sources_levels_outside_restored_chunks(
    tmp_path: Path, axes: str
) -> None:
    image = np.random.default_rng(2).integers(0, 256, (*SHAPE, 3), dtype=np.uint8)
    group = zarr.open_group(str(tmp_path / "scan.zarr"), mode="w")
    order = ["yxc".index(name) for name in axes]  # stored channel last, or first (NGFF's)

    def level(name: str, pixels: np.ndarray, side: int) -> None:
        chunks = tuple(side if axis in "yx" else 3 for axis in axes)
        stored = pixels.transpose(order)
        group.create_array(name, shape=stored.shape, chunks=chunks, dtype="uint8")[...] = stored

    level("0", image, CHUNK)
    # A source pyramid made its own way (constant 7): reused chunks show it, recomputed don't.
    for number, shape in enumerate([(128, 160, 3), (64, 80, 3)], start=1):
        level(str(number), np.full(shape, 7, np.uint8), 32)
    datasets = [{"path": str(k), "coordinateTransformations": [{"type": "scale", "scale": [
        1.0 if axis == "c" else 2.0**k for axis in axes]}]} for k in range(3)]
    group.attrs["multiscales"] = [{"version": "0.4", "datasets": datasets,
                                   "axes": [{"name": n} for n in axes]}]
    mask = np.zeros(SHAPE, dtype=bool)
    mask[130:140, 140:150] = True  # level-0 chunk (2, 2): rows 128-191, cols 128-191
    out = tmp_path / "out.zarr"
    result = restore_scan(tmp_path / "scan.zarr", mask, LocalMean(), out, tile=64,
                          pyramid_side=100)
    assert result.levels == 3
    restored_group = zarr.open_group(str(out), mode="r")
    assert restored_group["1"].chunks == (3, 32, 32)  # the source level's, for byte copies
    level1, level2 = restored(out, "1"), restored(out, "2")
    assert (level1[:64, :] == 7).all() and (level1[96:, :] == 7).all()  # untouched: reused
    assert (level1[64:96, :64] == 7).all() and (level1[64:96, 96:] == 7).all()
    computed = level1[64:96, 64:96].astype(float)  # from level 0's rows/cols 128-191
    full = restored(out)[128:192, 128:192].astype(float)
    assert np.abs(computed - full.reshape(32, 2, 32, 2, 3).mean(axis=(1, 3))).max() <= 0.5
    assert (level2[32:64, 32:64] != 7).any() and (level2[:32, :] == 7).all()


def test_a_learned_method_restores_tile_batches_like_single_tiles(tmp_path: Path) -> None:
    """Batches of same-sized tiles run as one forward pass and give the single-tile result."""
    torch = pytest.importorskip("torch")
    torch.set_num_threads(1)
    from inpaint_core.checkpoint import flatten_state, save_checkpoint
    from inpaint_core.learned import config_to_dict
    from inpaint_methods.edge_gan import EdgeGan, EdgeGanConfig

    config = EdgeGanConfig(**EdgeGan.smoke_test_options)  # type: ignore[arg-type]
    torch.manual_seed(0)
    networks = EdgeGan.build_networks(config)
    weights = tmp_path / "edge-gan.safetensors"
    save_checkpoint(weights, flatten_state({n: c.state_dict() for n, c in
                                            networks.named_children()}),
                    method="edge-gan", config=config_to_dict(config), step=0)
    image = np.random.default_rng(3).random((*SHAPE, 3)).astype(np.float32)
    mask = long_crack()  # split into full-size tiles, which can share a batch
    method = EdgeGan(weights=str(weights), device="cpu")
    calls: list[int] = []
    real = EdgeGan.predict

    def counting(self: Any, nets: Any, batch: Any, holes: Any) -> Any:
        calls.append(batch.shape[0])
        return real(self, nets, batch, holes)

    EdgeGan.predict = counting  # type: ignore[method-assign]
    try:
        restore_scan(image, mask, method, tmp_path / "one.zarr", tile=160, batch=1)
        singles = list(calls)
        calls.clear()
        restore_scan(image, mask, method, tmp_path / "many.zarr", tile=160, batch=4)
    finally:
        EdgeGan.predict = real  # type: ignore[method-assign]
    assert set(singles) == {1} and max(calls) > 1  # same-sized tiles went through together
    np.testing.assert_allclose(restored(tmp_path / "many.zarr"), restored(tmp_path / "one.zarr"),
                               atol=1e-5)


def linked_scene(tmp_path: Path) -> tuple[Path, np.ndarray, np.ndarray]:
    """An OME-Zarr scan with a 2-level pyramid, and a mask with holes in chunk (2, 2) only."""
    image = np.random.default_rng(3).integers(0, 256, (*SHAPE, 3), dtype=np.uint8)
    scan = tmp_path / "scan.zarr"
    group = zarr.open_group(str(scan), mode="w")
    group.create_array("0", shape=image.shape, chunks=(CHUNK, CHUNK, 3), dtype="uint8")[...] = image
    group.create_array("1", shape=(128, 160, 3), chunks=(32, 32, 3), dtype="uint8")[...] = 7
    datasets = [{"path": str(k), "coordinateTransformations": [
        {"type": "scale", "scale": [2.0**k, 2.0**k, 1.0]}]} for k in range(2)]
    group.attrs["multiscales"] = [{"version": "0.4", "datasets": datasets,
                                   "axes": [{"name": n} for n in "yxc"]}]
    mask = np.zeros(SHAPE, dtype=bool)
    mask[130:140, 140:150] = True
    return scan, image, mask


def test_intact_link_hard_links_unchanged_chunks_and_gives_the_copied_result(
    tmp_path: Path,
) -> None:
    scan, _, mask = linked_scene(tmp_path)
    copied, linked = tmp_path / "copied.zarr", tmp_path / "linked.zarr"
    restore_scan(scan, mask, LocalMean(), copied, tile=64, pyramid_side=100)
    result = restore_scan(scan, mask, LocalMean(), linked, tile=64, pyramid_side=100,
                          intact="link")
    assert result.chunks_copied == 19 and result.chunks_restored == 1
    for level in ("0", "1"):
        assert np.array_equal(restored(linked, level), restored(copied, level))
    source_file = scan / "0" / "c" / "0" / "0" / "0"
    assert (linked / "0" / "c" / "0" / "0" / "0").stat().st_ino == source_file.stat().st_ino
    assert (linked / "1" / "c" / "0" / "0" / "0").stat().st_ino == (
        scan / "1" / "c" / "0" / "0" / "0").stat().st_ino
    restored_file = linked / "0" / "c" / "0" / "2" / "2"  # the chunk with the holes
    assert restored_file.stat().st_nlink == 1
    assert (copied / "0" / "c" / "0" / "0" / "0").stat().st_nlink == 1  # copy: own files
    attrs = zarr.open_group(str(linked), mode="r").attrs["inpaint"]
    assert attrs["settings"]["intact"] == "link"


def test_writing_a_linked_output_through_zarr_leaves_the_source_alone(tmp_path: Path) -> None:
    scan, image, mask = linked_scene(tmp_path)
    out = tmp_path / "out.zarr"
    restore_scan(scan, mask, LocalMean(), out, tile=64, pyramid_side=100, intact="link")
    before = file_hashes(scan)
    zarr.open_group(str(out), mode="r+")["0"][:, :CHUNK, :CHUNK] = 0  # a linked chunk
    assert file_hashes(scan) == before
    assert np.array_equal(zarr.open_array(str(scan / "0"), mode="r")[...], image)
    assert (restored(out)[:CHUNK, :CHUNK] == 0).all()


def test_intact_link_errors_name_the_way_out(
    tmp_path: Path, scene: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    v2 = write_store(tmp_path / "v2.zarr", scene["image"], (CHUNK, CHUNK, 3), zarr_format=2)
    with pytest.raises(InvalidInputError, match=r"zarr v2 array.*--intact copy"):
        restore_scan(v2, scene["mask"], LocalMean(), tmp_path / "a.zarr", intact="link")
    sharded = zarr.create_array(str(tmp_path / "sharded.zarr"), shape=scene["image"].shape,
                                chunks=(32, 32, 3), shards=(CHUNK, CHUNK, 3), dtype="uint8")
    sharded[...] = scene["image"]
    with pytest.raises(InvalidInputError, match=r"a sharded zarr v3 array"):
        restore_scan(sharded, scene["mask"], LocalMean(), tmp_path / "b.zarr", intact="link")
    monkeypatch.setattr(chunks, "filesystem_id", lambda path: hash(path.name))
    with pytest.raises(InvalidInputError, match=r"different ones: use --intact copy"):
        restore_scan(scene["scan"], scene["mask"], LocalMean(), tmp_path / "c.zarr",
                     intact="link")
    with pytest.raises(ParameterError, match=r"intact='move' must be one of copy, link"):
        restore_scan(scene["scan"], scene["mask"], LocalMean(), tmp_path / "d.zarr",
                     intact="move")
    assert not any((tmp_path / name).exists() for name in ("a.zarr", "b.zarr", "c.zarr", "d.zarr"))


def test_io_threads_follow_the_usable_cores(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2}, raising=False)
    assert usable_cores() == 3  # the affinity (a container's limit), not the machine's
    monkeypatch.delattr(os, "sched_getaffinity", raising=False)  # macOS, Windows
    monkeypatch.setattr(os, "cpu_count", lambda: 12)
    assert usable_cores() == 12
    assert 2 <= engine.IO_THREADS <= 8 and engine.MAX_PENDING_WRITES == 2 * engine.IO_THREADS


def test_chunks_are_flushed_once_before_the_output_is_marked_complete(
    scene: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two fsyncs per chunk would cost more than the chunk: one os.sync before "complete"."""
    calls: list[str] = []
    real_fsync, real_sync = os.fsync, os.sync
    monkeypatch.setattr(os, "fsync", lambda fd: (calls.append("fsync"), real_fsync(fd))[1])
    monkeypatch.setattr(os, "sync", lambda: (calls.append("sync"), real_sync())[1])
    out = scene["tmp"] / "out.zarr"
    result = restore_scan(scene["scan"], scene["mask_path"], LocalMean(), out)
    assert result.chunks_restored + result.chunks_copied == 20
    assert calls.count("sync") == 1
    assert calls.count("fsync") < 20  # the few metadata files, never one per chunk
    assert json.loads((out / "zarr.json").read_text())["attributes"]["inpaint"]["complete"]


# The engine's parts, each alone: options, planner, executors, sink.


def test_restore_options_are_checked_once_naming_the_bad_value() -> None:
    for settings, named in [
        ({"batch": 0}, r"batch=0 must be an int >= 1"),
        ({"workers": True}, r"workers=True must be an int >= 1"),
        ({"intact": "move"}, r"intact='move' must be one of copy, link"),
        ({"zstd_level": 99}, r"zstd_level=99 must be an int from -131072 to 22"),
        ({"pyramid_side": 0}, r"pyramid_side=0 must be an int >= 1"),
        ({"tile": "big"}, r"tile='big' must be an int"),
        ({"seed": 1.5}, r"seed=1.5 must be an int"),
    ]:
        with pytest.raises(ParameterError, match=named):
            RestoreOptions(**settings)
    options = RestoreOptions(tile=96, intact="link", params={"radius": 3})
    assert options.link and not RestoreOptions().link
    with pytest.raises(dataclasses.FrozenInstanceError):
        options.tile = 64  # type: ignore[misc]
    assert RestoreOptions.of(None, {"tile": 96}) == RestoreOptions(tile=96)
    assert RestoreOptions.of(options, {}) is options
    with pytest.raises(ParameterError, match=r"unknown restore setting\(s\) \['tiel'\]; valid "
                       r"ones: tile, overlap"):
        RestoreOptions.of(None, {"tiel": 96})
    with pytest.raises(ParameterError, match=r"not both"):
        RestoreOptions.of(options, {"tile": 64})


def test_the_schedule_computes_a_chunks_missing_tiles_and_frees_results_once_unused() -> None:
    box = Box(0, 8, 0, 8)
    tiles = [Tile(0, 8, 0, 8, box) for _ in range(4)]
    boxes = {(0, 0): box, (0, 1): box, (1, 0): box, (1, 1): box}
    users = {(0, 0): [0, 1], (0, 1): [1, 2], (1, 0): [3]}  # (1, 1) has no hole: copied
    plan = RestorePlan(find_hole_regions(np.zeros((8, 8), bool)), tiles, None, None, boxes,
                       users)
    done = np.zeros((2, 2), bool)
    assert plan.restored(done) == [(0, 0), (0, 1), (1, 0)] and plan.copied(done) == [(1, 1)]
    schedule = TileSchedule(plan, plan.restored(done))
    assert schedule.tiles_done == 0
    assert schedule.wanted(0, {}, step=1) == [0, 1]  # the first chunk's tiles, whatever step
    assert schedule.wanted(0, {0: "r", 1: "r"}, step=1) == []  # never ahead of the writes
    assert schedule.wanted(1, {0: "r", 1: "r"}, step=2) == [2, 3]  # and the next chunk's
    assert schedule.written((0, 0)) == [0]
    assert schedule.written((0, 1)) == [1, 2]
    done[0, 0] = done[0, 1] = True  # resumed: their tiles count as done
    assert TileSchedule(plan, plan.restored(done)).tiles_done == 3


def test_each_executor_gives_the_serial_results(scene: dict[str, Any]) -> None:
    method = LocalMean()
    opened = open_inputs(scene["scan"], scene["mask_path"])
    plan = plan_restore(opened.scan, opened.mask, method.info, 64, 2, (CHUNK, CHUNK))
    results = []
    for executor in (SerialExecutor(batch=2), ThreadExecutor(batch=1, workers=2)):
        with executor, ThreadPoolExecutor(2) as pool:
            windows = [executor.read(plan.pixels, plan.damage, tile, "local-mean")
                       for tile in plan.tiles]
            futures = executor.compute(method, plan.tiles, windows, 0, pool)
            results.append([future.result() for future in futures])
            copied: list[tuple[int, int]] = []
            executor.copy(copied.append, [(0, 0), (0, 1)])
            assert sorted(copied) == [(0, 0), (0, 1)]
    assert len(results[0]) == len(plan.tiles) > 4
    for serial, threaded, tile in zip(*results, plan.tiles, strict=True):
        assert serial.shape[:2] == tile.window.shape
        np.testing.assert_array_equal(serial, threaded)


def test_the_sink_writes_copies_and_marks_chunks_and_travels_without_its_pyramid(
    scene: dict[str, Any],
) -> None:
    source = zarr.open_array(str(scene["scan"]), mode="r")
    path = scene["tmp"] / "out.zarr"
    with output_session(path, source, {"complete": False}, None, resume=False) as session:
        sink = OutputSink(session.group, source, restored=session.restored)
        assert sink.block == (CHUNK, CHUNK) and not sink.done(resuming=False).any()
        pixels = np.full((CHUNK, CHUNK, 3), 7, np.uint8)
        sink.write_chunk((1, 2), pixels)
        assert session.restored.is_set()
        sink.copy_chunk(Box(0, CHUNK, 0, CHUNK), (0, 0))
        travelled = pickle.loads(pickle.dumps(sink))  # as a dask worker gets it
        assert travelled.pyramid is None and not travelled.restored.is_set()
        travelled.copy_chunk(Box(0, CHUNK, CHUNK, 2 * CHUNK), (0, 1))
        np.testing.assert_array_equal(sink.done(resuming=True), np.isin(
            np.arange(20).reshape(4, 5), [0, 1, 7]))
    level0 = restored(path)
    np.testing.assert_array_equal(level0[CHUNK : 2 * CHUNK, 2 * CHUNK : 3 * CHUNK], pixels)
    np.testing.assert_array_equal(level0[:CHUNK, : 2 * CHUNK],
                                  scene["image"][:CHUNK, : 2 * CHUNK])


def test_the_pyramid_option_builds_levels_always_never_or_as_the_scan_has_them(
    scene: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = (scene["scan"], scene["mask_path"], LocalMean())
    always = restore_scan(*args, tmp_path / "always.zarr", pyramid_side=100)
    assert always.levels == 3
    plain = tmp_path / "auto.zarr"  # a plain zarr scan has no levels: auto builds none
    assert main(["restore", str(scene["scan"]), "--mask", str(scene["mask_path"]), "-m",
                 "telea", "-o", str(plain), "--pyramid", "auto"]) == 0
    plain_group = zarr.open_group(str(plain), mode="r")
    assert sorted(plain_group.array_keys()) == [".progress", "0"]
    assert len(plain_group.attrs["ome"]["multiscales"][0]["datasets"]) == 1
    assert plain_group.attrs["inpaint"]["complete"]
    never = restore_scan(*args, tmp_path / "never.zarr", pyramid="never")
    assert never.levels == 1 and file_hashes(tmp_path / "never.zarr" / "0") == file_hashes(
        tmp_path / "always.zarr" / "0")
    scan, mask, _ = smooth_scene(tmp_path)  # an OME-Zarr with levels: auto builds them
    assert restore_scan(scan, mask, LocalMean(), tmp_path / "ome.zarr", pyramid="auto",
                        pyramid_side=100).levels == 3
    stopped = tmp_path / "stopped.zarr"  # begun with a pyramid, finished without one
    calls = itertools.count()
    restore_scan(*args, stopped, pyramid_side=100, should_stop=lambda: next(calls) > 3)
    assert "1" in zarr.open_group(str(stopped), mode="r").array_keys()
    assert restore_scan(*args, stopped, resume=True, pyramid="never").levels == 1
    assert sorted(zarr.open_group(str(stopped), mode="r").array_keys()) == [".progress", "0"]
    with pytest.raises(ParameterError, match=r"pyramid='some' must be one of auto, always"):
        restore_scan(*args, tmp_path / "bad.zarr", pyramid="some")
