"""What the tiled engine writes: pyramid, provenance, intact chunks as stored bytes."""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import zarr

from inpaint_core.api import inpaint
from inpaint_core.cli import main
from inpaint_core.errors import OutputExistsError, ParameterError
from inpaint_core.io.pyramid import write_pyramid
from inpaint_core.method import MethodInfo
from inpaint_core.tiling.engine import restore_scan

from .engine_helpers import (
    CHUNK,
    ROOT,
    SHAPE,
    LocalMean,
    file_hashes,
    restored,
    smooth_scene,
    stop_after,
)


@pytest.mark.parametrize(("polls", "workers"), [(None, 1), (None, 2), (3, 1), (9, 2)])
def test_pyramid_written_during_the_run_equals_one_written_after_it(
    scene: dict[str, Any], polls: int | None, workers: int
) -> None:
    args = (scene["scan"], scene["mask_path"], LocalMean())
    settings = {"tile": 64, "pyramid_side": 40, "workers": workers, "pyramid": "always"}
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
        scene["scan"], scene["mask_path"], LocalMean(), out, tile=96, overlap=5, pyramid_side=100,
        pyramid="always",
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
                          intact="link", pyramid_side=128, pyramid="always")
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


def test_the_pyramid_option_builds_levels_always_never_or_as_the_scan_has_them(
    scene: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = (scene["scan"], scene["mask_path"], LocalMean())
    always = restore_scan(*args, tmp_path / "always.zarr", pyramid_side=100, pyramid="always")
    assert always.levels == 3
    assert restore_scan(*args, tmp_path / "default.zarr", pyramid_side=100).levels == 1
    plain = tmp_path / "auto.zarr"  # a plain zarr scan has no levels: auto, the default, adds none
    assert main(["restore", str(scene["scan"]), "--mask", str(scene["mask_path"]), "-m",
                 "telea", "-o", str(plain)]) == 0
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
    restore_scan(*args, stopped, pyramid_side=100, pyramid="always",
                 should_stop=lambda: next(calls) > 3)
    assert "1" in zarr.open_group(str(stopped), mode="r").array_keys()
    assert restore_scan(*args, stopped, resume=True, pyramid="never").levels == 1
    assert sorted(zarr.open_group(str(stopped), mode="r").array_keys()) == [".progress", "0"]
    with pytest.raises(ParameterError, match=r"pyramid='some' must be one of auto, always"):
        restore_scan(*args, tmp_path / "bad.zarr", pyramid="some")
