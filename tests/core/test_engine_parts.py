"""The tiled engine's parts alone: RestoreOptions, schedule, executors, sink, I/O threads."""

from __future__ import annotations

import dataclasses
import os
import pickle
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import pytest
import zarr

from inpaint_core.errors import ParameterError
from inpaint_core.io.inputs import open_inputs
from inpaint_core.tiling import Box, engine
from inpaint_core.tiling.execution import usable_cores
from inpaint_core.tiling.executor import SerialExecutor, ThreadExecutor
from inpaint_core.tiling.options import RestoreOptions
from inpaint_core.tiling.plan import Tile
from inpaint_core.tiling.planner import RestorePlan, TileSchedule, plan_restore
from inpaint_core.tiling.regions import find_hole_regions
from inpaint_core.tiling.sink import OutputSink, output_session

from .engine_helpers import CHUNK, LocalMean, restored


def test_io_threads_follow_the_usable_cores(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2}, raising=False)
    assert usable_cores() == 3  # the affinity (a container's limit), not the machine's
    monkeypatch.delattr(os, "sched_getaffinity", raising=False)  # macOS, Windows
    monkeypatch.setattr(os, "cpu_count", lambda: 12)
    assert usable_cores() == 12
    assert 2 <= engine.IO_THREADS <= 8 and engine.MAX_PENDING_WRITES == 2 * engine.IO_THREADS


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
