"""The zstd frame walk that checks copied chunks without decoding them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from numcodecs import Zstd

from inpaint_core.io.zstd_frames import frame_problem

RAW = (np.arange(300_000) % 251).astype(np.uint8).tobytes() + np.random.default_rng(0).bytes(
    200_000
)


@pytest.mark.parametrize("checksum", [False, True])
@pytest.mark.parametrize("level", [1, 19])
def test_whole_frames_pass(tmp_path: Path, checksum: bool, level: int) -> None:
    path = tmp_path / "chunk"
    path.write_bytes(Zstd(level=level, checksum=checksum).encode(RAW))
    assert frame_problem(path, len(RAW)) is None
    assert frame_problem(path) is None


def test_damage_is_named(tmp_path: Path) -> None:
    data = bytes(Zstd(level=3).encode(RAW))
    path = tmp_path / "chunk"
    for damaged, reason in (
        (data[: len(data) // 2], "cut"),
        (data[:-1], "cut"),
        (data + b"\0", "padded"),
        (b"\0" * 4 + data[4:], "magic"),
        (data[:5], "cut"),
    ):
        path.write_bytes(damaged)
        problem = frame_problem(path, len(RAW))
        assert problem is not None and reason in problem, (reason, problem)
    path.write_bytes(data)
    assert "declares 500000 bytes" in frame_problem(path, 1234)


def test_every_cut_of_a_small_frame_is_found(tmp_path: Path) -> None:
    data = bytes(Zstd(level=3).encode(RAW[:70_000]))
    path = tmp_path / "chunk"
    for length in range(0, len(data), max(1, len(data) // 200)):
        path.write_bytes(data[:length])
        assert frame_problem(path, 70_000) is not None, length
