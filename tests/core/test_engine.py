"""The tiled engine on small real zarr stores: tiled equals whole, progress, windows, CLI."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import zarr

from inpaint_core.api import NO_HOLE, inpaint, prepare
from inpaint_core.arrays import to_float_colour
from inpaint_core.cli import main
from inpaint_core.errors import InvalidInputError, ParameterError
from inpaint_core.method import InpaintMethod, MethodInfo
from inpaint_core.tiling import Box, engine
from inpaint_core.tiling.engine import RestoreEvent, iter_restore, iter_tile_inputs, restore_scan
from inpaint_core.tiling.executor import SerialExecutor, paste, run_batch
from inpaint_core.tiling.plan import Tile
from inpaint_core.tiling.sink import OutputSink

from .engine_helpers import CHUNK, ROOT, SHAPE, LocalMean, file_hashes, restored, write_store


class Identity(InpaintMethod):
    """Returns the image as given: the hole keeps its damaged values."""

    info = MethodInfo(
        name="identity", family="other", summary="no-op", reference="test",
        preferred_tile=64, context_margin=0,
    )

    def run(self, image: np.ndarray, mask: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        return image.copy()


def long_crack(shape: tuple[int, int] = SHAPE) -> np.ndarray:
    """A 3 px crack across the whole scan plus a loss: holes no single tile holds."""
    mask = np.zeros(shape, dtype=bool)
    for col in range(shape[1]):
        row = int(100 + 40 * np.sin(col / 30))
        mask[row : row + 3, col] = True
    mask[150:230, 20:60] = True
    return mask


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
